//! What each command will do, validated and typed, built from its parsed
//! flags (`cli.rs`) before any socket opens. `cmd/` and `engine/` read these
//! types, never clap's: the one seam between what a user typed and what the
//! engine needs.

pub mod bench;
pub mod connect;
pub mod listen;
pub mod probe;
pub mod udp;

use std::sync::Arc;
use std::time::Duration;

use crate::cli::{IpArgs, RelayArgs, SocketArgs};
use crate::engine::addr::{parse_host, parse_port, split_port_text, Family};
use crate::engine::dump::Dump;
use crate::engine::relay::{Direction, RelayOpts};
use crate::engine::socket::SocketOpts;
use crate::engine::stdio;
use crate::engine::transport::UnixAddr;
use crate::error::Error;

/// Where a command's socket goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A host name or address (`None`: every interface) and a port. Names
    /// are resolved when the socket is made, so a retry resolves again.
    Inet { host: Option<String>, port: u16 },
    /// A Unix socket path or abstract name (`-U`).
    Unix(UnixAddr),
}

/// -U with a flag that means something only for IP or TCP: a usage error
/// rather than a flag silently ignored.
pub fn unix_only(
    addr: &UnixAddr,
    family: Family,
    sock: Option<&SocketArgs>,
    ip: Option<&IpArgs>,
) -> Result<Target, Error> {
    let ip = ip.or(sock.map(|s| &s.ip));
    let flag = match (family, sock, ip) {
        (Family::V4, ..) => Some("-4"),
        (Family::V6, ..) => Some("-6"),
        (_, Some(s), _) if s.nodelay => Some("--nodelay"),
        (_, Some(s), _) if s.keepalive.is_some() => Some("--keepalive"),
        (_, _, Some(i)) => i.first_set(),
        _ => None,
    };
    match flag {
        Some(flag) => Err(Error::usage(
            format!("'{flag}'"),
            "does not apply to -U (an IP or TCP option; a Unix socket has no such thing)",
        )),
        None => Ok(Target::Unix(addr.clone())),
    }
}

/// `-s ADDR` and `-p PORT` together are `-s ADDR:PORT` (the nc idiom
/// `nc -s ADDR -p PORT`); a port given both ways is a usage error. Returns
/// the source address and the port that stays alone (no -s).
pub fn source_and_port(
    source: Option<std::net::SocketAddr>,
    port: Option<u16>,
) -> Result<(Option<std::net::SocketAddr>, Option<u16>), Error> {
    match (source, port) {
        (Some(s), Some(_)) if s.port() != 0 => Err(Error::usage(
            "'-p'",
            format!("-s {s} already gives the source port; give it once"),
        )),
        (Some(mut s), Some(p)) => {
            s.set_port(p);
            Ok((Some(s), None))
        }
        other => Ok(other),
    }
}

/// "Zero means none" for the durations that turn something off at 0.
pub fn nonzero(d: Option<Duration>) -> Option<Duration> {
    d.filter(|d| !d.is_zero())
}

impl SocketArgs {
    pub fn to_opts(&self) -> SocketOpts {
        SocketOpts {
            nodelay: self.nodelay,
            sndbuf: self.sndbuf,
            rcvbuf: self.rcvbuf,
            keepalive: self.keepalive,
            ..self.ip.to_opts()
        }
    }
}

impl IpArgs {
    /// The first of these options given, for a usage error where none
    /// applies.
    pub fn first_set(&self) -> Option<&'static str> {
        [
            (self.tos.is_some(), "--tos"),
            (self.ttl.is_some(), "--ttl"),
            (self.bind_device.is_some(), "--bind-device"),
            (self.mark.is_some(), "--mark"),
        ]
        .into_iter()
        .find_map(|(set, flag)| set.then_some(flag))
    }

    pub fn to_opts(&self) -> SocketOpts {
        SocketOpts {
            mark: self.mark,
            bind_device: self.bind_device.clone(),
            tos: self.tos,
            ttl: self.ttl,
            ..SocketOpts::default()
        }
    }
}

impl RelayArgs {
    /// The first relay flag given, for commands that relay nothing (-z).
    pub fn first_set(&self) -> Option<&'static str> {
        [
            (self.idle_timeout.is_some(), "--idle-timeout"),
            (self.send_only, "--send-only"),
            (self.recv_only, "--recv-only"),
            (self.no_shutdown, "--no-shutdown"),
            (self.exit_on_eof, "--exit-on-eof"),
            (self.stay_open, "--stay-open"),
            (self.no_splice, "--no-splice"),
            (self.crlf, "--crlf"),
            (self.hexdump.is_some(), "--hexdump"),
            (self.quit_after.is_some(), "--quit-after"),
        ]
        .into_iter()
        .find_map(|(set, flag)| set.then_some(flag))
    }

    /// The relay's options; a --hexdump file is created here, so a path
    /// that cannot be written fails before any socket opens.
    pub fn to_opts(&self) -> Result<RelayOpts, Error> {
        let dump = match self.hexdump.as_deref() {
            None => None,
            Some(p) if p == std::path::Path::new("-") => {
                Some(Arc::new(Dump::new(Box::new(std::io::stderr()))))
            }
            Some(p) => {
                let file = std::fs::File::create(p).map_err(|e| {
                    Error::io(format!("create the --hexdump file {}", p.display()), &e)
                })?;
                Some(Arc::new(Dump::new(Box::new(std::io::LineWriter::new(
                    file,
                )))))
            }
        };
        Ok(RelayOpts {
            idle_timeout: nonzero(self.idle_timeout),
            half_close: !self.no_shutdown,
            direction: if self.send_only {
                Direction::SendOnly
            } else if self.recv_only {
                Direction::RecvOnly
            } else {
                Direction::Both
            },
            end_on_socket_eof: self.exit_on_eof || self.ends_at_peer_eof_for_terminal(),
            // splice would move the bytes past the dump.
            fast: !self.no_splice && dump.is_none(),
            crlf: self.crlf,
            quit_after: self.quit_after,
            dump,
        })
    }

    /// -k fans stdin out through its own queues: the line and dump modes
    /// are for one session.
    pub fn single_session_only(&self) -> Result<(), Error> {
        for (on, flag) in [
            (self.crlf, "--crlf"),
            (self.hexdump.is_some(), "--hexdump"),
            (self.quit_after.is_some(), "--quit-after"),
        ] {
            if on {
                return Err(Error::usage(
                    format!("'{flag}'"),
                    "works on one session; not with -k",
                ));
            }
        }
        Ok(())
    }

    /// An interactive user has nothing scripted left to send once the peer
    /// has closed, so a terminal session ends there (unless --stay-open); a
    /// pipe or a file may still be wanted by a peer that only half-closed.
    pub fn ends_at_peer_eof_for_terminal(&self) -> bool {
        !self.exit_on_eof && !self.stay_open && stdio::stdin_is_terminal()
    }
}

/// `[HOST] PORT` as typed into its parts (listen, udp-recv, probe): a lone
/// number is the port; HOST may carry it instead (`HOST:PORT`,
/// `[V6]:PORT`). A bad value is a usage error naming it.
pub fn split_addr(addr: &[String]) -> Result<(Option<String>, u16), Error> {
    let (host, port) = match addr {
        [port] if port.bytes().all(|b| b.is_ascii_digit()) => (None, port.clone()),
        [one] => {
            let (host, port) = host_and_port(one, None)?;
            (Some(host), port)
        }
        [host, port] => {
            let (host, port) = host_and_port(host, Some(port))?;
            (Some(host), port)
        }
        _ => return Err(Error::usage("arguments", "expected [HOST] PORT")),
    };
    let port =
        parse_port(&port).map_err(|why| Error::usage(format!("invalid port '{port}'"), why))?;
    Ok((host, port))
}

/// `HOST PORT`, or one `HOST:PORT` (`[V6]:PORT`; a bare IPv6 literal such
/// as `::1` is a host): the checked host, and the port as typed (connect -z
/// takes a list there).
pub fn host_and_port(host: &str, port: Option<&str>) -> Result<(String, String), Error> {
    let bad = |why: String| Error::usage(format!("invalid host '{host}'"), why);
    let (h, embedded) = split_port_text(host).map_err(bad)?;
    let h = parse_host(h).map_err(bad)?;
    match (embedded, port) {
        (Some(p), None) | (None, Some(p)) => Ok((h, p.to_string())),
        (Some(_), Some(p)) => Err(bad(format!("the port is given twice (and again as '{p}')"))),
        (None, None) => Err(Error::usage(
            format!("'{host}'"),
            "a port is needed: HOST PORT or HOST:PORT",
        )),
    }
}
