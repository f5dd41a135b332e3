//! `sonda udp-recv [HOST] PORT`: receive datagrams, grow to fit, report.

use std::io;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde::Serialize;
use socket2::Type;

use crate::config::udp::{Format, UdpRecv};
use crate::config::Target;
use crate::engine::diag::SocketTable;
use crate::engine::socket::{bind_inet, display_addr, Proto, SocketOpts};
use crate::engine::stdio;
use crate::engine::transport::unix::{self, BindOpts};
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
    sock.set_read_timeout(cfg.timeout)
        .map_err(|e| Error::io("set receive timeout", &e))?;
    let format = cfg.format;

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
            let line = format!(
                "{} {} {} bytes{truncated} \"{}\"\n",
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
