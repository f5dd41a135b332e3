//! SOCKS5 (RFC 1928) CONNECT, with username/password (RFC 1929) when the
//! URL has a user.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use super::wire::Wire;
use super::{Dest, ProxyUrl, Stage};
use crate::engine::socket::display_addr;
use crate::error::{Error, Exit};

const NO_AUTH: u8 = 0x00;
const USER_PASS: u8 = 0x02;
const NO_ACCEPTABLE: u8 = 0xff;

pub fn tunnel(
    wire: &Wire,
    proxy: &ProxyUrl,
    dest: &Dest,
    report: &mut dyn FnMut(Stage),
) -> Result<(), Error> {
    let started = Instant::now();
    let greeting: &[u8] = match proxy.user {
        Some(_) => &[5, 2, NO_AUTH, USER_PASS],
        None => &[5, 1, NO_AUTH],
    };
    wire.send(greeting, "method selection")?;
    let mut choice = [0u8; 2];
    wire.recv_exact(&mut choice, "method selection")?;
    if choice[0] != 5 {
        return Err(not_socks5(wire, choice[0]));
    }
    let method = match choice[1] {
        NO_AUTH => "no authentication",
        USER_PASS if proxy.user.is_some() => "username/password",
        NO_ACCEPTABLE if proxy.user.is_none() => {
            return Err(wire
                .error(Exit::Failure, "authentication rejected: the proxy accepts no method offered (no authentication)")
                .with_hint("the proxy wants credentials: --proxy socks5://USER@HOST:PORT, the password in SONDA_PROXY_PASSWORD"))
        }
        NO_ACCEPTABLE => {
            return Err(wire.error(
                Exit::Failure,
                "authentication rejected: the proxy accepts neither username/password nor no authentication",
            ))
        }
        other => {
            return Err(wire.error(
                Exit::Failure,
                format!("the proxy chose method {other:#04x}, which was not offered"),
            ))
        }
    };
    report(Stage {
        what: format!("method: {method}"),
        took: started.elapsed(),
    });
    if choice[1] == USER_PASS {
        authenticate(wire, proxy, report)?;
    }
    let started = Instant::now();
    wire.send(&request(wire, dest)?, "connect request")?;
    let mut head = [0u8; 4];
    wire.recv_exact(&mut head, "connect request")?;
    if head[0] != 5 {
        return Err(not_socks5(wire, head[0]));
    }
    // The bound address is read whole even on a failure, whatever its type
    // (a name, ATYP 3, included), so nothing of it is left on the stream.
    let bound = bound_address(wire, head[3])?;
    if head[1] != 0 {
        return Err(refusal(wire, head[1], dest));
    }
    report(Stage {
        what: format!("reply: succeeded, the proxy connected to {dest} from {bound}"),
        took: started.elapsed(),
    });
    Ok(())
}

fn not_socks5(wire: &Wire, version: u8) -> Error {
    let why = if version == b'H' {
        "the proxy answered in HTTP, not SOCKS5: try --proxy http://".to_string()
    } else {
        format!("the reply is not SOCKS5 (version byte {version:#04x})")
    };
    wire.error(Exit::Failure, why)
}

fn authenticate(wire: &Wire, proxy: &ProxyUrl, report: &mut dyn FnMut(Stage)) -> Result<(), Error> {
    let started = Instant::now();
    let user = proxy.user.as_deref().unwrap_or_default().as_bytes();
    let pass = proxy.password.as_deref().unwrap_or_default().as_bytes();
    // The URL's parser does not know the scheme's limits; checked here.
    if user.len() > 255 || pass.len() > 255 {
        return Err(Error::usage(
            "--proxy",
            "a SOCKS5 user name and password are at most 255 bytes each",
        ));
    }
    let mut msg = Vec::with_capacity(3 + user.len() + pass.len());
    msg.push(1);
    msg.push(user.len() as u8);
    msg.extend_from_slice(user);
    msg.push(pass.len() as u8);
    msg.extend_from_slice(pass);
    wire.send(&msg, "authentication")?;
    let mut status = [0u8; 2];
    wire.recv_exact(&mut status, "authentication")?;
    if status[1] != 0 {
        let err = wire.error(
            Exit::Failure,
            format!(
                "authentication rejected for user '{}' (status {:#04x})",
                proxy.user.as_deref().unwrap_or_default(),
                status[1]
            ),
        );
        return Err(if proxy.password.is_none() {
            err.with_hint(
                "an empty password was sent: the URL has none and SONDA_PROXY_PASSWORD is not set",
            )
        } else {
            err
        });
    }
    report(Stage {
        what: format!(
            "authenticated as '{}'",
            proxy.user.as_deref().unwrap_or_default()
        ),
        took: started.elapsed(),
    });
    Ok(())
}

fn request(wire: &Wire, dest: &Dest) -> Result<Vec<u8>, Error> {
    let mut msg = vec![5, 1, 0];
    let port = match dest {
        Dest::Addr(SocketAddr::V4(a)) => {
            msg.push(1);
            msg.extend_from_slice(&a.ip().octets());
            a.port()
        }
        Dest::Addr(SocketAddr::V6(a)) => {
            msg.push(4);
            msg.extend_from_slice(&a.ip().octets());
            a.port()
        }
        Dest::Name(name, port) => {
            if name.is_empty() || name.len() > 255 {
                return Err(wire.error(
                    Exit::Usage,
                    format!("the name '{name}' cannot go in a SOCKS5 request (1 to 255 bytes)"),
                ));
            }
            msg.push(3);
            msg.push(name.len() as u8);
            msg.extend_from_slice(name.as_bytes());
            *port
        }
    };
    msg.extend_from_slice(&port.to_be_bytes());
    Ok(msg)
}

fn bound_address(wire: &Wire, atyp: u8) -> Result<String, Error> {
    let stage = "connect request";
    Ok(match atyp {
        1 => {
            let mut b = [0u8; 6];
            wire.recv_exact(&mut b, stage)?;
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            display_addr(&SocketAddr::new(
                IpAddr::V4(ip),
                u16::from_be_bytes([b[4], b[5]]),
            ))
        }
        4 => {
            let mut b = [0u8; 18];
            wire.recv_exact(&mut b, stage)?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&b[..16]);
            let ip = Ipv6Addr::from(octets);
            display_addr(&SocketAddr::new(
                IpAddr::V6(ip),
                u16::from_be_bytes([b[16], b[17]]),
            ))
        }
        3 => {
            let len = wire.byte(stage)? as usize;
            let mut b = vec![0u8; len + 2];
            wire.recv_exact(&mut b, stage)?;
            let name = String::from_utf8_lossy(&b[..len]).into_owned();
            format!("{name}:{}", u16::from_be_bytes([b[len], b[len + 1]]))
        }
        other => {
            return Err(wire.error(
                Exit::Failure,
                format!("the reply's address type {other:#04x} is not SOCKS5's (1, 3 or 4)"),
            ))
        }
    })
}

/// RFC 1928's reply codes in words, with the exit status each maps to.
fn refusal(wire: &Wire, code: u8, dest: &Dest) -> Error {
    let (exit, words) = match code {
        1 => (Exit::Failure, "general SOCKS server failure"),
        2 => (Exit::Failure, "connection not allowed by ruleset"),
        3 => (Exit::Failure, "network unreachable"),
        4 => (Exit::Failure, "host unreachable"),
        5 => (Exit::Refused, "connection refused"),
        6 => (
            Exit::TimedOut,
            "TTL expired (the proxy's connect timed out)",
        ),
        7 => (Exit::Failure, "command not supported"),
        8 => (Exit::Failure, "address type not supported"),
        _ => (Exit::Failure, "unassigned reply code"),
    };
    let err = wire.error(
        exit,
        format!("connect to {dest} through the proxy: {words} (SOCKS5 reply {code})"),
    );
    if code == 2 {
        super::forbidden(err)
    } else {
        err
    }
}
