//! `sonda udp-send HOST PORT`: datagrams from stdin or `--message`.

use std::io::{BufRead, BufReader, Read};
use std::thread;
use std::time::Duration;

use socket2::Socket;

use crate::config::udp::{Payload, UdpSend};
use crate::config::Target;
use crate::engine::addr::resolve;
use crate::engine::transport::{unix, Peer, UnixName};
use crate::engine::udp;
use crate::engine::{splice, stdio};
use crate::error::{Error, Exit};
use crate::report;

/// How long to listen for an ICMP port unreachable after the last datagram
/// when no reply is awaited: it comes back within a round trip, at once on
/// loopback.
const UNREACHABLE_WAIT: Duration = Duration::from_millis(100);

pub fn run(cfg: &UdpSend) -> anyhow::Result<Exit> {
    let (sock, peer, host) = match &cfg.target {
        Target::Inet { host, port } => {
            let host = host.clone().unwrap_or_default();
            let addrs = resolve(&host, *port, cfg.family)?;
            let (sock, peer) = udp::connect(
                &addrs,
                (cfg.source, cfg.source_port),
                &cfg.fanout,
                &cfg.sock,
            )
            .map_err(|e| access_hint(e, &host, cfg.fanout.broadcast))
            .map_err(|e| multicast_hint(e, &addrs, &cfg.fanout))?;
            (sock, peer, host)
        }
        Target::Unix(addr) => {
            let (sock, peer) =
                unix::connect_datagram(addr, cfg.size, &crate::engine::diag::SocketTable)?;
            (sock, peer, addr.to_string())
        }
    };
    match sock.local_addr().ok().map(|a| UnixName::of(&a)) {
        Some(UnixName::Bound(me)) if peer.ip().is_none() => {
            report::info(format!("sending to {peer} from {me}"))
        }
        _ => report::info(format!("sending to {peer}")),
    }

    // A default pipe hands over 64 KiB per read: let a larger datagram
    // (Unix) come out of one read when its writer wrote it in one.
    if cfg.size > 64 * 1024 && splice::kind(libc::STDIN_FILENO) == splice::Kind::Pipe {
        splice::grow_pipe(libc::STDIN_FILENO);
    }
    let mut source = Source::new(cfg);
    let (mut sent, mut bytes) = (0u64, 0u64);
    let mut buf = Vec::with_capacity(cfg.size);
    while sent < cfg.count && source.next(&mut buf)? {
        if sent > 0 {
            if let Some(pause) = cfg.interval {
                thread::sleep(pause);
            }
        }
        udp::send(&sock, &buf, &peer).map_err(|e| access_hint(e, &host, cfg.fanout.broadcast))?;
        sent += 1;
        bytes += buf.len() as u64;
    }
    report::info(format!(
        "sent {sent} {}, {} to {}",
        if sent == 1 { "datagram" } else { "datagrams" },
        report::bytes(bytes),
        peer
    ));

    match cfg.wait_reply {
        None => {
            udp::check_unreachable(&sock, &peer, UNREACHABLE_WAIT)?;
            Ok(Exit::Success)
        }
        Some(wait) => wait_replies(&sock, &peer, wait, cfg.size),
    }
}

/// A group with no route (ENETUNREACH), or a link-local group with no
/// interface (EINVAL): say which option names one.
fn multicast_hint(
    e: Error,
    addrs: &[std::net::SocketAddr],
    fanout: &crate::engine::udp::Fanout,
) -> Error {
    let group = addrs.iter().any(|a| a.ip().is_multicast());
    match e.errno {
        Some(libc::ENETUNREACH | libc::EINVAL | libc::EADDRNOTAVAIL)
            if group && fanout.multicast_if.is_none() && e.hint.is_none() =>
        {
            e.with_hint("a group is reached through an interface: name it with --multicast-if IFACE (no route leads to this group)")
        }
        _ => e,
    }
}

/// EACCES from connect(2) or send(2) on UDP is, nearly always, a broadcast
/// address on a socket without SO_BROADCAST, and "permission denied" alone
/// does not say so. With --broadcast set it can only be a prohibit route or
/// a firewall rule. A bind error (privileged --source port) has its own
/// hint already and is left alone.
fn access_hint(e: Error, host: &str, broadcast: bool) -> Error {
    if e.errno != Some(libc::EACCES) || e.hint.is_some() {
        return e;
    }
    let route = format!(
        "a prohibit route or a firewall rule refused it ('ip route get {host}' shows the route)"
    );
    if broadcast {
        e.with_hint(route)
    } else {
        e.with_hint(format!(
            "to send to a broadcast address, add --broadcast (SO_BROADCAST); otherwise {route}"
        ))
    }
}

/// Prints each reply's payload until `wait` passes without one.
fn wait_replies(sock: &Socket, peer: &Peer, wait: Duration, size: usize) -> anyhow::Result<Exit> {
    sock.set_read_timeout(Some(wait.max(Duration::from_micros(1))))
        .map_err(|e| Error::io("set receive timeout", &e))?;
    // A Unix reply may be as large as what was sent.
    let mut buf = vec![0u8; 65536.max(size)];
    let mut replies = 0u64;
    while let Some(n) = udp::recv_reply(sock, &mut buf, peer)? {
        replies += 1;
        match stdio::write_stdout(&buf[..n]) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(Exit::Success),
            Err(e) => return Err(Error::io("write to stdout", &e).into()),
        }
    }
    report::info(format!(
        "{replies} {}",
        if replies == 1 { "reply" } else { "replies" }
    ));
    if replies == 0 {
        return Err(Error::new(
            Exit::TimedOut,
            format!("wait for a reply from {peer}"),
            format!("none within {}", humantime::format_duration(wait)),
        )
        .into());
    }
    Ok(Exit::Success)
}

/// Where datagrams come from.
enum Source {
    /// `--message`: the same text each time.
    Message(Vec<u8>),
    /// `--lines`: a line of stdin each, without its newline, at most `size`
    /// bytes, sent as soon as its newline has been read (read_until returns
    /// then; it never waits for its buffer to fill).
    Lines {
        reader: BufReader<std::io::Stdin>,
        size: usize,
        line: u64,
    },
    /// One read(2) of stdin, at most `size` bytes, per datagram, sent as
    /// soon as the read returns (as nc -u does): a live writer such as
    /// `tail -f` gets each burst delivered at once, never held back to fill
    /// a datagram or merged with the next one.
    Chunks { size: usize },
}

impl Source {
    fn new(cfg: &UdpSend) -> Source {
        match &cfg.payload {
            Payload::Message(m) => Source::Message(m.clone()),
            Payload::Lines => Source::Lines {
                reader: BufReader::with_capacity(64 * 1024, std::io::stdin()),
                size: cfg.size,
                line: 0,
            },
            Payload::Chunks => Source::Chunks { size: cfg.size },
        }
    }

    /// Puts the next datagram in `buf`; false when there is none.
    fn next(&mut self, buf: &mut Vec<u8>) -> Result<bool, Error> {
        let read_fail = |e: std::io::Error| Error::io("read stdin", &e);
        buf.clear();
        match self {
            Source::Message(m) => {
                buf.extend_from_slice(m);
                Ok(true)
            }
            Source::Lines { reader, size, line } => {
                // Read at most one datagram and its newline, so a line with
                // no end cannot grow memory.
                let limit = *size as u64 + 1;
                let n = reader
                    .by_ref()
                    .take(limit)
                    .read_until(b'\n', buf)
                    .map_err(read_fail)?;
                if n == 0 {
                    return Ok(false);
                }
                *line += 1;
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                } else if n as u64 == limit {
                    return Err(Error::new(
                        Exit::Failure,
                        format!("read line {line} of stdin"),
                        format!("longer than --size {size} bytes, the largest datagram allowed; raise --size (up to 65507 over IPv4, 65527 over IPv6)"),
                    ));
                }
                Ok(true)
            }
            Source::Chunks { size } => {
                buf.resize(*size, 0);
                let n = stdio::read_stdin(buf).map_err(read_fail)?;
                buf.truncate(n);
                Ok(n > 0)
            }
        }
    }
}
