//! `sonda listen`: what to bind and how each client is served.

use crate::cli::ListenArgs;
use crate::engine::addr::{Acl, Family};
use crate::engine::relay::RelayOpts;
use crate::engine::socket::SocketOpts;
use crate::engine::tls::ServerOpts;
use crate::engine::transport::unix::{BindOpts, Kind};
use crate::error::Error;

use super::connect::alpn_list;
use super::{split_addr, unix_only, Target};

/// Clients a `-k` listener serves at once unless --max-conns says.
pub const DEFAULT_MAX_CONNS: u32 = 100;

/// What is done with each client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Relay,
    Echo,
    Sink,
}

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
            Some(addr) => unix_only(addr, family, Some(&args.socket))?,
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
            service: if args.echo {
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
            target,
        })
    }
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
