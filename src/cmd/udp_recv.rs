//! `sonda udp-recv [HOST] PORT`: receive datagrams, grow to fit, report.

use std::io::{self, BufRead};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;
use socket2::Type;

use crate::config::udp::{Format, UdpRecv, INET_DATAGRAM_MAX};
use crate::config::Target;
use crate::engine::diag::SocketTable;
use crate::engine::multicast::{self, Join};
use crate::engine::socket::{bind_inet, display_addr, interface_name, Proto, SocketOpts};
use crate::engine::stdio;
use crate::engine::sys::PacketInfo;
use crate::engine::transport::unix::{self, BindOpts};
use crate::engine::transport::{Datagram as _, Peer};
use crate::engine::udp::{kernel_drops, Datagram, Receiver};
use crate::error::{Error, Exit};
use crate::{report, signals};

/// What `-v` reports at exit.
#[derive(Clone, Copy, Debug, Default)]
struct Summary {
    datagrams: u64,
    bytes: u64,
    truncated: u64,
    largest: usize,
}

impl Summary {
    /// The -v line at exit; `drops` is the kernel's count of datagrams it
    /// threw away for this socket (receive buffer full), so loss is
    /// explained, not hidden.
    fn report(&self, drops: Option<u64>) {
        let drops = match drops {
            Some(n) => format!("; {n} dropped by the kernel (receive buffer full)"),
            None => String::new(),
        };
        let noun = if self.datagrams == 1 {
            "datagram"
        } else {
            "datagrams"
        };
        report::info(format!(
            "received {} {noun}, {}; {} truncated; largest {} bytes{drops}",
            self.datagrams,
            report::bytes(self.bytes),
            self.truncated,
            self.largest
        ));
    }
}

#[derive(Serialize)]
struct JsonDatagram<'a> {
    time: &'a str,
    from: &'a str,
    /// The destination address (a group, a broadcast address, or this
    /// host's), its TTL or hop limit, TOS or traffic class, and the
    /// interface it came in on: null for a Unix socket.
    to: Option<String>,
    ttl: Option<u8>,
    tos: Option<u8>,
    interface: Option<String>,
    len: usize,
    original_len: usize,
    truncated: bool,
    payload_base64: &'a str,
}

pub fn run(cfg: &UdpRecv) -> anyhow::Result<Exit> {
    // SO_REUSEADDR only when asked: on UDP it lets a second receiver bind
    // a held port and silently take its datagrams.
    let opts = SocketOpts {
        reuseaddr: cfg.reuseaddr,
        ..cfg.sock.clone()
    };
    // A Unix socket's file, removed when this goes (at any exit).
    let mut bound = None;
    let sock = match &cfg.target {
        Target::Inet { host, port } => {
            bind_inet(host.as_deref(), *port, cfg.family, Proto::Udp, &opts)?
        }
        Target::Unix(addr) => {
            let b = unix::bind(addr, Type::DGRAM, BindOpts::default(), &SocketTable)?;
            let sock = b
                .try_clone_socket()
                .map_err(|e| Error::io("dup socket", &e))?;
            bound = Some(b);
            sock
        }
    };
    match (&bound, sock.local_addr().ok().and_then(|a| a.as_socket())) {
        (Some(b), _) => report::info(format!("listening on {} (Unix datagram)", b.addr())),
        (None, Some(local)) => report::info(format!("listening on {} (UDP)", display_addr(&local))),
        (None, None) => {}
    }
    if !cfg.joins.is_empty() {
        join_all(&sock, &cfg.joins)?;
    }
    sock.set_read_timeout(cfg.timeout)
        .map_err(|e| Error::io("set receive timeout", &e))?;
    let format = cfg.format;
    let replies = match cfg.reply {
        Some(lines) => Some(Replies::start(&sock, lines)?),
        None => None,
    };

    let summary = Arc::new(Mutex::new(Summary::default()));
    let watch = sock.try_clone().ok();
    {
        let summary = summary.clone();
        signals::at_interrupt(move || {
            let drops = watch.as_ref().and_then(kernel_drops);
            summary
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .report(drops)
        });
    }
    let mut rx = Receiver::new(sock, cfg.buffer, cfg.max_size, cfg.grow);
    // What the IP header said, for the formats that show it.
    if format != Format::Raw && bound.is_none() {
        rx = rx
            .with_packet_info()
            .map_err(|e| Error::io("ask for TTL, TOS and destination", &e))?;
    }
    let limit = cfg.count.unwrap_or(u64::MAX);
    let mut received = 0u64;
    let result = loop {
        if received >= limit {
            break Ok(Exit::Success);
        }
        let (d, growth) = match rx.recv() {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let idle = cfg.timeout.unwrap_or_default();
                break Err(Error::new(
                    Exit::TimedOut,
                    "receive",
                    format!(
                        "no datagram for {} (--timeout)",
                        humantime::format_duration(idle)
                    ),
                ));
            }
            Err(e) => break Err(Error::io("receive", &e)),
        };
        received += 1;
        if let Some(g) = growth {
            report::info(format!(
                "grew buffer {} -> {} for a {}-byte datagram",
                g.from, g.to, g.datagram
            ));
        }
        if d.truncated() {
            report::warn(format!(
                "datagram from {} truncated: {} bytes, {} delivered ({})",
                d.from,
                d.original_len,
                d.len,
                if !cfg.grow { "--no-grow" } else { "--max-size" }
            ));
        }
        {
            let mut s = summary.lock().unwrap_or_else(|p| p.into_inner());
            s.datagrams += 1;
            s.bytes += d.len as u64;
            s.truncated += d.truncated() as u64;
            s.largest = s.largest.max(d.original_len);
        }
        if let Some(r) = &replies {
            r.peer(&d.from);
        }
        let payload = rx.payload(&d);
        match emit(format, &d, payload) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break Ok(Exit::Success),
            Err(e) => break Err(Error::io("write to stdout", &e)),
        }
        if cfg.echo {
            if let Err(e) = rx.send_to(payload, &d.from) {
                report::info(format!(
                    "echo to {}: {}",
                    d.from,
                    crate::error::describe(&e)
                ));
            }
        }
    };
    if let Some(r) = &replies {
        r.flush();
    }
    let drops = kernel_drops(rx.socket());
    summary
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .report(drops);
    Ok(result?)
}

/// One datagram to stdout in the chosen format.
fn emit(format: Format, d: &Datagram, payload: &[u8]) -> io::Result<()> {
    match format {
        Format::Raw => stdio::write_stdout(payload),
        Format::Show => {
            let truncated = if d.truncated() {
                format!(" truncated from {}", d.original_len)
            } else {
                String::new()
            };
            let header = match d.info {
                Some(i) => header_text(&i),
                None => String::new(),
            };
            let line = format!(
                "{} {}{header} {} bytes{truncated} \"{}\"\n",
                report::now_rfc3339(),
                d.from,
                d.len,
                report::escape_preview(payload, 64)
            );
            stdio::write_stdout(line.as_bytes())
        }
        Format::Json => {
            let record = JsonDatagram {
                time: &report::now_rfc3339(),
                from: &d.from.to_string(),
                to: d
                    .info
                    .and_then(|i| i.dst)
                    .map(|a| a.to_canonical().to_string()),
                ttl: d.info.and_then(|i| i.ttl),
                tos: d.info.and_then(|i| i.tos),
                interface: d.info.and_then(|i| i.ifindex).map(interface_name),
                len: d.len,
                original_len: d.original_len,
                truncated: d.truncated(),
                payload_base64: &base64::engine::general_purpose::STANDARD.encode(payload),
            };
            let mut line = serde_json::to_vec(&record).map_err(io::Error::other)?;
            line.push(b'\n');
            stdio::write_stdout(&line)
        }
    }
}

/// " -> 239.1.2.3%eth1 ttl 7 tos 0x28": where a datagram went and what its
/// IP header carried.
fn header_text(i: &PacketInfo) -> String {
    let mut out = String::new();
    if let Some(dst) = i.dst {
        out.push_str(&format!(" -> {}", dst.to_canonical()));
        if let Some(ix) = i.ifindex {
            out.push_str(&format!("%{}", interface_name(ix)));
        }
    }
    if let Some(t) = i.ttl {
        out.push_str(&format!(" ttl {t}"));
    }
    if let Some(t) = i.tos {
        out.push_str(&format!(" tos 0x{t:02x}"));
    }
    out
}

/// Joins every group, IP_MULTICAST_ALL off first, and says with -v where
/// each join went; warns when strict reverse-path filtering on that
/// interface would drop the traffic before any socket sees it.
fn join_all(sock: &socket2::Socket, joins: &[Join]) -> Result<(), Error> {
    multicast::only_joined_groups(sock).map_err(|e| Error::io("set IP_MULTICAST_ALL off", &e))?;
    for j in joins {
        let joined = multicast::join(sock, j)?;
        let how = match (&j.iface, j.source) {
            (Some(_), Some(s)) => format!("source-specific, from {s} only"),
            (None, Some(s)) => {
                format!("source-specific, from {s} only; the interface of the group's route")
            }
            (Some(_), None) => "any source".to_string(),
            (None, None) => "any source; the interface of the group's route".to_string(),
        };
        report::info(format!(
            "joined {} on {} (index {}, {how})",
            j.group, joined.ifname, joined.ifindex
        ));
        if j.group.is_ipv4() && multicast::rp_filter(&joined.ifname) == Some(1) {
            match j.source {
                Some(s) if multicast::route_interface(s) != Some(joined.ifindex) => {
                    report::warn(format!(
                        "rp_filter is strict on {} and the route back to {s} does not leave by it: the kernel drops {s}'s datagrams before any socket sees them (sysctl net.ipv4.conf.{}.rp_filter=2 for loose)",
                        joined.ifname, joined.ifname
                    ))
                }
                Some(_) => {}
                None => report::info(format!(
                    "rp_filter is strict on {}: datagrams from a sender whose route back does not leave by {} are dropped before any socket sees them",
                    joined.ifname, joined.ifname
                )),
            }
        }
    }
    Ok(())
}

/// `--reply`: a thread reads stdin and sends each read (or line) to the
/// sender of the latest datagram, waiting for the first one to name it.
struct Replies {
    state: Arc<(Mutex<ReplyState>, Condvar)>,
}

#[derive(Default)]
struct ReplyState {
    peer: Option<Peer>,
    /// A read of stdin is waiting for a peer or being sent.
    pending: bool,
}

/// How long an exit (--count reached, --timeout) waits for a reply
/// already read from stdin to go out.
const REPLY_FLUSH: Duration = Duration::from_secs(1);

impl Replies {
    fn start(sock: &socket2::Socket, lines: bool) -> Result<Replies, Error> {
        let out = sock.try_clone().map_err(|e| Error::io("dup socket", &e))?;
        let state: Arc<(Mutex<ReplyState>, Condvar)> = Arc::default();
        let shared = state.clone();
        std::thread::Builder::new()
            .name("reply".into())
            .spawn(move || reply_loop(&out, &shared, lines))
            .map_err(|e| Error::io("start the reply thread", &e))?;
        Ok(Replies { state })
    }

    /// The sender of the datagram just received: replies go there now.
    fn peer(&self, from: &Peer) {
        let (lock, changed) = &*self.state;
        lock.lock().unwrap_or_else(|p| p.into_inner()).peer = Some(from.clone());
        changed.notify_all();
    }

    /// Waits (bounded) until a reply already read from stdin has gone to
    /// a known peer, so that `--count 1` still answers.
    fn flush(&self) {
        let (lock, changed) = &*self.state;
        let deadline = std::time::Instant::now() + REPLY_FLUSH;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        while st.pending && st.peer.is_some() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            st = changed
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// One read of stdin, or one line without its newline; None at the end.
fn next_reply(input: &mut impl BufRead, lines: bool) -> Option<Vec<u8>> {
    let mut chunk = Vec::new();
    let failed = |e: io::Error| {
        report::warn(format!(
            "read stdin for --reply: {}; no more replies",
            crate::error::describe(&e)
        ));
    };
    if lines {
        match input.read_until(b'\n', &mut chunk) {
            Ok(0) => return None,
            Err(e) => {
                failed(e);
                return None;
            }
            Ok(_) => {
                if chunk.last() == Some(&b'\n') {
                    chunk.pop();
                }
            }
        }
    } else {
        chunk.resize(INET_DATAGRAM_MAX, 0);
        match input.read(&mut chunk) {
            Ok(0) => return None,
            Err(e) => {
                failed(e);
                return None;
            }
            Ok(n) => chunk.truncate(n),
        }
    }
    Some(chunk)
}

fn reply_loop(sock: &socket2::Socket, state: &(Mutex<ReplyState>, Condvar), lines: bool) {
    let stdin = io::stdin();
    let mut input = io::BufReader::with_capacity(INET_DATAGRAM_MAX, stdin.lock());
    let (lock, changed) = state;
    while let Some(chunk) = next_reply(&mut input, lines) {
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        st.pending = true;
        while st.peer.is_none() {
            st = changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        let to = st.peer.clone();
        drop(st);
        if let Some(to) = to {
            if let Err(e) = sock.send_datagram_to(&chunk, &to) {
                report::warn(format!("reply to {to}: {}", crate::error::describe(&e)));
            }
        }
        lock.lock().unwrap_or_else(|p| p.into_inner()).pending = false;
        changed.notify_all();
    }
}
