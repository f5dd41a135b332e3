//! `sonda udp-send` and `sonda udp-recv`: targets, payload sources and
//! receive buffers, checked per transport.

use std::net::SocketAddr;
use std::time::Duration;

use crate::cli::{UdpRecvArgs, UdpSendArgs};
use crate::engine::addr::{parse_port, Family};
use crate::engine::multicast::Join;
use crate::engine::socket::SocketOpts;
use crate::engine::udp::Fanout;
use crate::error::Error;

use super::{host_and_port, nonzero, split_addr, unix_only, Target};

/// The largest UDP payload (IPv6; IPv4 carries 20 bytes less).
pub const INET_DATAGRAM_MAX: usize = 65527;
/// The largest receive buffer for UDP: every IPv4 or IPv6 payload fits.
pub const INET_BUFFER_MAX: usize = 65536;
/// A Unix datagram is bounded by the socket buffer, not by a header field;
/// this caps what sonda sends or allocates for one (16 MiB).
pub const UNIX_DATAGRAM_MAX: usize = 16 << 20;

/// Where datagrams come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// `--message`: the same text each time.
    Message(Vec<u8>),
    /// `--lines`: one line of stdin each, without its newline.
    Lines,
    /// One read(2) of stdin each.
    Chunks,
}

#[derive(Clone, Debug)]
pub struct UdpSend {
    pub target: Target,
    pub family: Family,
    pub source: Option<SocketAddr>,
    /// `-p` without `-s`: this port on the wildcard address.
    pub source_port: Option<u16>,
    pub payload: Payload,
    /// Largest datagram cut from stdin.
    pub size: usize,
    /// Datagrams to send at most.
    pub count: u64,
    pub interval: Option<Duration>,
    pub wait_reply: Option<Duration>,
    /// --broadcast, --multicast-if, --no-multicast-loop.
    pub fanout: Fanout,
    /// --mark, --bind-device, --tos, --ttl.
    pub sock: SocketOpts,
}

impl TryFrom<(&UdpSendArgs, Family)> for UdpSend {
    type Error = Error;

    fn try_from((args, family): (&UdpSendArgs, Family)) -> Result<UdpSend, Error> {
        let target = match (&args.unix, &args.host) {
            (Some(addr), _) => {
                if args.multicast_if.is_some() || args.no_multicast_loop {
                    return Err(Error::usage(
                        "'--multicast-if' and '--no-multicast-loop'",
                        "do not apply to -U (a Unix socket has no multicast)",
                    ));
                }
                unix_only(addr, family, None, Some(&args.ip))?
            }
            (None, Some(host)) => {
                let (host, port) = host_and_port(host, args.port.as_deref())?;
                let port = parse_port(&port)
                    .map_err(|why| Error::usage(format!("invalid port '{port}'"), why))?;
                if args.size > INET_DATAGRAM_MAX {
                    return Err(too_big("--size", args.size, INET_DATAGRAM_MAX));
                }
                Target::Inet {
                    host: Some(host),
                    port,
                }
            }
            (None, None) => return Err(Error::usage("arguments", "expected HOST PORT or -U PATH")),
        };
        let payload = match (&args.message, args.lines) {
            (Some(m), _) => Payload::Message(m.clone().into_bytes()),
            (None, true) => Payload::Lines,
            (None, false) => Payload::Chunks,
        };
        // A message is sent once unless --count says otherwise; stdin is
        // sent to its end unless --count stops it earlier.
        let default_count = if args.message.is_some() { 1 } else { u64::MAX };
        let (source, source_port) = super::source_and_port(args.source, args.source_port)?;
        Ok(UdpSend {
            target,
            family,
            source,
            source_port,
            payload,
            size: args.size,
            count: args.count.unwrap_or(default_count),
            interval: args.interval,
            wait_reply: args.wait_reply,
            fanout: Fanout {
                broadcast: args.broadcast,
                multicast_if: args.multicast_if.clone(),
                multicast_loop: !args.no_multicast_loop,
                replies: args.wait_reply.is_some(),
            },
            sock: args.ip.to_opts(),
        })
    }
}

fn too_big(flag: &str, n: usize, max: usize) -> Error {
    Error::usage(
        format!("invalid value '{n}' for '{flag}'"),
        format!("above {max}, the most a UDP datagram holds (a Unix socket, -U, takes more)"),
    )
}

/// How received datagrams are written to stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Raw,
    Show,
    Json,
}

#[derive(Clone, Debug)]
pub struct UdpRecv {
    pub target: Target,
    pub family: Family,
    pub reuseaddr: bool,
    /// The receive buffer's first size, and the most it grows to.
    pub buffer: usize,
    pub max_size: usize,
    pub grow: bool,
    pub format: Format,
    pub count: Option<u64>,
    /// Idle limit (exit 4); zero means none.
    pub timeout: Option<Duration>,
    pub echo: bool,
    /// --join, each with --source when given.
    pub joins: Vec<Join>,
    /// --reply: stdin to the last sender, by lines (true) or reads.
    pub reply: Option<bool>,
    /// --mark, --bind-device, --tos, --ttl.
    pub sock: SocketOpts,
}

impl TryFrom<(&UdpRecvArgs, Family)> for UdpRecv {
    type Error = Error;

    fn try_from((args, family): (&UdpRecvArgs, Family)) -> Result<UdpRecv, Error> {
        let (target, default_max) = match &args.unix {
            Some(addr) => (
                unix_only(addr, family, None, Some(&args.ip))?,
                UNIX_DATAGRAM_MAX,
            ),
            None => {
                let (host, port) = split_addr(&args.addr)?;
                for (flag, n) in [
                    ("--buffer", Some(args.buffer)),
                    ("--max-size", args.max_size),
                ] {
                    if let Some(n) = n.filter(|&n| n > INET_BUFFER_MAX) {
                        return Err(too_big(flag, n, INET_BUFFER_MAX));
                    }
                }
                // Without --max-size the largest IPv4 or IPv6 payload fits.
                (Target::Inet { host, port }, 65535)
            }
        };
        // The buffer starts at --buffer and only grows, so a smaller limit
        // is a contradiction (it used to be ignored, and a truncation then
        // blamed --max-size).
        let max_size = match args.max_size {
            Some(max) if max < args.buffer => {
                return Err(Error::usage(
                    format!("invalid value '{max}' for '--max-size'"),
                    format!(
                        "below '--buffer' {}: the buffer starts at --buffer and only grows, so --max-size must be at least --buffer",
                        args.buffer
                    ),
                ))
            }
            Some(max) => max,
            None => default_max.max(args.buffer),
        };
        if let Some(s) = args.source {
            let unicast = !(s.is_unspecified()
                || s.is_multicast()
                || s == std::net::IpAddr::from([255, 255, 255, 255]));
            if !unicast {
                return Err(Error::usage(
                    format!("'--source {s}'"),
                    "a source is the unicast address of a sender",
                ));
            }
            if let Some((g, _)) = args.join.iter().find(|(g, _)| g.is_ipv4() != s.is_ipv4()) {
                return Err(Error::usage(
                    format!("'--source {s}'"),
                    format!("is not of the family of the group {g}"),
                ));
            }
        }
        // --bind-device restricts the socket to one interface: a join
        // elsewhere could deliver nothing, and one without @IFACE goes there.
        let device = args.ip.bind_device.as_deref();
        if let (Some(dev), Some((g, Some(i)))) = (
            device,
            args.join
                .iter()
                .find(|(_, i)| i.is_some() && i.as_deref() != device),
        ) {
            return Err(Error::usage(
                format!("'--join {g}@{i}'"),
                format!("is not on the --bind-device interface {dev}, so nothing joined there can arrive"),
            ));
        }
        let joins: Vec<Join> = args
            .join
            .iter()
            .map(|(group, iface)| Join {
                group: *group,
                iface: iface.clone().or_else(|| device.map(str::to_string)),
                source: args.source,
            })
            .collect();
        // A socket bound to an address receives only datagrams sent to it:
        // with --join, HOST is the wildcard or the one group joined.
        if let (Target::Inet { host: Some(h), .. }, false) = (&target, joins.is_empty()) {
            let bound: Option<std::net::IpAddr> =
                h.trim_matches(|c| c == '[' || c == ']').parse().ok();
            let fits = match bound {
                Some(ip) if ip.is_unspecified() => {
                    joins.iter().all(|j| ip.is_ipv6() || j.group.is_ipv4())
                }
                Some(ip) => joins.len() == 1 && joins[0].group == ip,
                None => false,
            };
            if !fits {
                return Err(Error::usage(
                    format!("'{h}'"),
                    "with --join, bind the wildcard (no HOST, 0.0.0.0 or ::) or the one group joined: a socket bound to another address never receives the group",
                ));
            }
        }
        // Joining IPv4 groups only, with no address to bind, binds 0.0.0.0
        // rather than the dual-stack [::].
        let v4_groups = !joins.is_empty() && joins.iter().all(|j| j.group.is_ipv4());
        let family = match (&target, family) {
            (Target::Inet { host: None, .. }, Family::Any) if v4_groups => Family::V4,
            _ => family,
        };
        if let Some(j) = joins.iter().find(|j| match family {
            Family::V4 => j.group.is_ipv6(),
            Family::V6 => j.group.is_ipv4(),
            Family::Any => false,
        }) {
            return Err(Error::usage(
                format!("'--join {}'", j.group),
                "is not in the family the socket is bound in (-4/-6, or HOST)",
            ));
        }
        Ok(UdpRecv {
            target,
            family,
            reuseaddr: args.reuseaddr,
            buffer: args.buffer,
            max_size,
            grow: !args.no_grow,
            format: if args.json {
                Format::Json
            } else if args.show {
                Format::Show
            } else {
                Format::Raw
            },
            count: args.count,
            timeout: nonzero(args.timeout),
            echo: args.echo,
            joins,
            reply: args.reply.then_some(args.lines),
            sock: args.ip.to_opts(),
        })
    }
}
