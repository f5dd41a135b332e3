//! SOCKS4a CONNECT: the name goes to the proxy (address 0.0.0.1); an IPv4
//! address (`--proxy-dns local`, or a literal) goes as plain SOCKS4.

use std::net::SocketAddr;
use std::time::Instant;

use super::wire::Wire;
use super::{Dest, ProxyUrl, Stage};
use crate::error::{Error, Exit};

pub fn tunnel(
    wire: &Wire,
    proxy: &ProxyUrl,
    dest: &Dest,
    report: &mut dyn FnMut(Stage),
) -> Result<(), Error> {
    let started = Instant::now();
    let user = proxy.user.as_deref().unwrap_or_default();
    if user.contains('\0') {
        return Err(Error::usage("--proxy", "a SOCKS4 user id has no NUL byte"));
    }
    let mut msg = vec![4, 1];
    match dest {
        Dest::Addr(SocketAddr::V4(a)) => {
            msg.extend_from_slice(&a.port().to_be_bytes());
            msg.extend_from_slice(&a.ip().octets());
            msg.extend_from_slice(user.as_bytes());
            msg.push(0);
        }
        Dest::Addr(SocketAddr::V6(_)) => {
            return Err(wire.error(
                Exit::Failure,
                format!("SOCKS4a cannot carry the IPv6 address {dest}; use a socks5:// proxy"),
            ))
        }
        Dest::Name(name, port) => {
            if name.contains('\0') {
                return Err(Error::usage("HOST", "a name has no NUL byte"));
            }
            msg.extend_from_slice(&port.to_be_bytes());
            msg.extend_from_slice(&[0, 0, 0, 1]);
            msg.extend_from_slice(user.as_bytes());
            msg.push(0);
            msg.extend_from_slice(name.as_bytes());
            msg.push(0);
        }
    }
    wire.send(&msg, "connect request")?;
    let mut reply = [0u8; 8];
    wire.recv_exact(&mut reply, "connect request")?;
    if reply[0] != 0 {
        return Err(wire.error(
            Exit::Failure,
            format!(
                "the reply is not SOCKS4 (version byte {:#04x}, not 0)",
                reply[0]
            ),
        ));
    }
    let (exit, words) = match reply[1] {
        90 => {
            report(Stage {
                what: format!("reply: request granted, connected to {dest}"),
                took: started.elapsed(),
            });
            return Ok(());
        }
        91 => (
            Exit::Refused,
            "request rejected or failed (the proxy could not connect, or its rules refuse it)",
        ),
        92 => (
            Exit::Failure,
            "request rejected: the proxy cannot reach an identd on this host",
        ),
        93 => (
            Exit::Failure,
            "request rejected: identd reports a different user id",
        ),
        _ => (Exit::Failure, "an unknown reply code"),
    };
    Err(wire.error(
        exit,
        format!(
            "connect to {dest} through the proxy: {words} (SOCKS4 reply {})",
            reply[1]
        ),
    ))
}
