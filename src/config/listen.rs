//! `sonda listen`: what to bind and how each client is served.

use std::time::Duration;

use crate::cli::ListenArgs;
use crate::engine::addr::parse_port;
use crate::engine::addr::{Acl, Family};
use crate::engine::relay::RelayOpts;
use crate::engine::socket::SocketOpts;
use crate::engine::tls::{ClientOpts, ServerOpts};
use crate::engine::transport::unix::{BindOpts, Kind};
use crate::engine::transport::UnixAddr;
use crate::error::Error;

use super::connect::alpn_list;
use super::{host_and_port, split_addr, unix_only, Target};

/// Clients a `-k` listener serves at once unless --max-conns says.
pub const DEFAULT_MAX_CONNS: u32 = 100;

/// What is done with each client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Relay,
    Echo,
    Sink,
    /// `--to`: each client to its own upstream connection.
    Forward,
}

/// `--to`: where each client is forwarded, and how.
#[derive(Clone, Debug)]
pub struct Forward {
    pub target: Target,
    /// The bound on each upstream connect.
    pub timeout: Duration,
    /// `--to-tls`.
    pub tls: Option<ClientOpts>,
    /// splice(2) between two kernel sockets (off with `--no-splice`).
    pub splice: bool,
}

/// An upstream connect takes at most this long unless --to-timeout says.
pub const FORWARD_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct Listen {
    pub target: Target,
    pub family: Family,
    /// For a Unix target: stream or seqpacket.
    pub kind: Kind,
    pub unix_bind: BindOpts,
    pub backlog: i32,
    /// `-k`: clients concurrently, and listening goes on.
    pub keep_open: bool,
    pub max_conns: usize,
    pub acl: Acl,
    pub service: Service,
    pub relay: RelayOpts,
    pub sock: SocketOpts,
    pub progress: bool,
    /// Say so when the client's EOF ends a terminal session.
    pub notice_peer_eof: bool,
    /// TLS to each client (`--tls`).
    pub tls: Option<ServerOpts>,
    /// `--to`.
    pub forward: Option<Forward>,
}

impl TryFrom<(&ListenArgs, Family)> for Listen {
    type Error = Error;

    fn try_from((args, family): (&ListenArgs, Family)) -> Result<Listen, Error> {
        if args.keep_open {
            args.relay.single_session_only()?;
        }
        if let (Some(n), false) = (args.max_conns, args.keep_open) {
            return Err(Error::usage(
                format!("--max-conns '{n}'"),
                "applies only with -k/--keep-open (without it one client is served)",
            ));
        }
        let target = match &args.unix {
            Some(addr) => unix_only(addr, family, Some(&args.socket), None)?,
            None => {
                let (host, port) = split_addr(&args.addr)?;
                Target::Inet { host, port }
            }
        };
        let mut sock = args.socket.to_opts();
        sock.reuseaddr = !args.no_reuseaddr;
        sock.reuseport = args.reuseport;
        Ok(Listen {
            family,
            kind: Kind::stream(args.seqpacket),
            unix_bind: BindOpts {
                unlink_stale: args.unlink_stale,
            },
            backlog: args.backlog,
            keep_open: args.keep_open,
            max_conns: args.max_conns.unwrap_or(DEFAULT_MAX_CONNS) as usize,
            acl: Acl {
                allow: args.allow.clone(),
                deny: args.deny.clone(),
            },
            service: if args.forward.to.is_some() {
                Service::Forward
            } else if args.echo {
                Service::Echo
            } else if args.sink {
                Service::Sink
            } else {
                Service::Relay
            },
            relay: args.relay.to_opts()?,
            sock,
            progress: args.progress && !args.keep_open,
            notice_peer_eof: args.relay.ends_at_peer_eof_for_terminal(),
            tls: args
                .tls
                .tls
                .then(|| server_opts(args, &target))
                .transpose()?,
            forward: forward(args)?,
            target,
        })
    }
}

/// `--to TARGET` and its flags.
fn forward(args: &ListenArgs) -> Result<Option<Forward>, Error> {
    let f = &args.forward;
    let Some(to) = &f.to else {
        return Ok(None);
    };
    let target = match to.strip_prefix("unix:") {
        Some(path) => Target::Unix(
            UnixAddr::parse(std::ffi::OsStr::new(path))
                .map_err(|why| Error::usage(format!("--to '{to}'"), why))?,
        ),
        None => {
            let (host, port) = host_and_port(to, None).map_err(|e| {
                let expected = "expected HOST:PORT, [V6]:PORT or unix:PATH";
                let why = if e.why.starts_with("a port is needed") {
                    expected.to_string()
                } else {
                    format!("{}; {expected}", e.why)
                };
                Error::usage(format!("--to '{to}'"), why)
            })?;
            let port = parse_port(&port)
                .map_err(|why| Error::usage(format!("--to '{to}': invalid port '{port}'"), why))?;
            if port == 0 {
                return Err(Error::usage(
                    format!("--to '{to}'"),
                    "port 0 cannot be connected to: give the upstream's port",
                ));
            }
            Target::Inet {
                host: Some(host),
                port,
            }
        }
    };
    let tls = match (&target, f.to_tls) {
        (_, false) => None,
        (Target::Unix(_), true) if f.to_servername.is_none() => {
            return Err(Error::usage(
                "--to-tls with --to unix:PATH",
                "a Unix socket has no host name to verify the certificate for: give --to-servername NAME",
            ))
        }
        (target, true) => {
            let host = match target {
                Target::Inet { host, .. } => host.clone().unwrap_or_default(),
                Target::Unix(_) => String::new(),
            };
            let name = f.to_servername.clone().unwrap_or(host);
            Some(ClientOpts {
                ca: f.to_ca.clone(),
                insecure: f.to_insecure,
                name: name.trim_start_matches('[').trim_end_matches(']').to_string(),
                sni: true,
                pin: f.to_pin_sha256,
                ..ClientOpts::default()
            })
        }
    };
    Ok(Some(Forward {
        target,
        timeout: f.to_timeout.unwrap_or(FORWARD_CONNECT_TIMEOUT),
        tls,
        splice: !args.relay.no_splice,
    }))
}

/// `--tls` and its flags. An ephemeral certificate names the listening
/// host (when one is given) and the loopback names a local client uses.
fn server_opts(args: &ListenArgs, target: &Target) -> Result<ServerOpts, Error> {
    let t = &args.tls;
    let mut names = Vec::new();
    if let Target::Inet { host: Some(h), .. } = target {
        let h = h.trim_start_matches('[').trim_end_matches(']');
        let wildcard = h
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        if !wildcard {
            names.push(h.to_string());
        }
    }
    for n in ["localhost", "127.0.0.1", "::1"] {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    }
    Ok(ServerOpts {
        identity: t.cert.clone().zip(t.key.clone()),
        names,
        client_ca: t.client_ca.clone(),
        alpn: alpn_list(t.alpn.as_deref())?,
    })
}
