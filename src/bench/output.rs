//! Bench results: combining both sides' reports, the summary table and the
//! JSON document.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::rr::{new_histogram, RrShared};
use super::{Direction, Flow, Interval, Mode, Params, Proto, SideReport};

/// rr latency, merged over the client's streams, in microseconds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Latency {
    pub transactions: u64,
    pub transactions_per_second: f64,
    pub lost: u64,
    pub min_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p99_9_us: f64,
    pub max_us: f64,
    pub client_cpu: Option<usize>,
    pub server_cpu: Option<usize>,
}

impl Latency {
    /// The streams' figures merged, the rate over `measured`. Each stream
    /// is locked only while it is merged, so running workers go on.
    pub fn from_parts(parts: &[RrShared], measured: Duration) -> Latency {
        let mut hist = new_histogram();
        let (mut transactions, mut lost) = (0, 0);
        for p in parts {
            let p = p.lock();
            let _ = hist.add(&p.hist);
            transactions += p.transactions;
            lost += p.lost;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        let q = |x: f64| us(hist.value_at_quantile(x));
        Latency {
            transactions,
            transactions_per_second: transactions as f64 / measured.as_secs_f64().max(1e-9),
            lost,
            min_us: us(hist.min()),
            p50_us: q(0.50),
            p90_us: q(0.90),
            p99_us: q(0.99),
            p99_9_us: q(0.999),
            max_us: us(hist.max()),
            client_cpu: None,
            server_cpu: None,
        }
    }
}

/// One direction's figures.
#[derive(Clone, Debug, Serialize)]
pub struct DirectionResult {
    pub direction: &'static str,
    /// "receiver", or "sender" when an interrupted test never got the
    /// receiver's figures (a --client test whose server counts them).
    pub counted_by: &'static str,
    pub streams: u16,
    pub bytes: u64,
    pub seconds: f64,
    pub bits_per_second: f64,
    pub sender_cpu_percent: f64,
    pub receiver_cpu_percent: f64,
    pub bytes_per_send_call: f64,
    pub bytes_per_recv_call: f64,
    pub datagrams_sent: Option<u64>,
    pub datagrams_received: Option<u64>,
    pub lost: Option<u64>,
    pub loss_percent: Option<f64>,
    pub reordered: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub version: &'static str,
    pub params: Params,
    pub target: String,
    pub results: Vec<DirectionResult>,
    pub intervals: Vec<Interval>,
    pub latency: Option<Latency>,
    /// Ctrl-C (or SIGTERM) ended the test: the figures are those so far.
    pub interrupted: bool,
}

fn direction(
    name: &'static str,
    p: &Params,
    sender: &Flow,
    receiver: &Flow,
    test_secs: f64,
) -> DirectionResult {
    let udp = p.proto == Proto::Udp;
    let per_call = |f: &Flow| {
        if f.calls > 0 {
            f.total_bytes as f64 / f.calls as f64
        } else {
            0.0
        }
    };
    let lost = sender.datagrams.saturating_sub(receiver.datagrams);
    DirectionResult {
        direction: name,
        counted_by: "receiver",
        streams: p.streams,
        bytes: receiver.bytes,
        seconds: receiver.seconds,
        bits_per_second: if receiver.seconds > 0.0 {
            receiver.bytes as f64 * 8.0 / receiver.seconds
        } else {
            0.0
        },
        sender_cpu_percent: 100.0 * sender.cpu_seconds / test_secs,
        receiver_cpu_percent: 100.0 * receiver.cpu_seconds / test_secs,
        bytes_per_send_call: per_call(sender),
        bytes_per_recv_call: per_call(receiver),
        datagrams_sent: udp.then_some(sender.datagrams),
        datagrams_received: udp.then_some(receiver.datagrams),
        lost: udp.then_some(lost),
        loss_percent: udp.then(|| {
            if sender.datagrams > 0 {
                100.0 * lost as f64 / sender.datagrams as f64
            } else {
                0.0
            }
        }),
        reordered: udp.then_some(receiver.reordered),
    }
}

/// Both sides' reports into the figures of each direction.
pub fn combine(p: &Params, target: String, client: SideReport, server: SideReport) -> Outcome {
    let secs = if p.bytes.is_some() {
        client
            .sent
            .wall_seconds
            .max(server.sent.wall_seconds)
            .max(1e-9)
    } else {
        p.total().as_secs_f64()
    };
    let mut results = Vec::new();
    let mut intervals = Vec::new();
    if p.mode == Mode::Stream {
        if p.direction != Direction::Down {
            results.push(direction(
                "client->server",
                p,
                &client.sent,
                &server.received,
                secs,
            ));
            intervals = server.intervals.clone();
        }
        if p.direction != Direction::Up {
            results.push(direction(
                "server->client",
                p,
                &server.sent,
                &client.received,
                secs,
            ));
            if intervals.is_empty() {
                intervals = client.intervals.clone();
            }
        }
    }
    let latency = client.latency.map(|mut l| {
        l.client_cpu = client.cpu;
        l.server_cpu = server.cpu;
        l
    });
    Outcome {
        version: env!("CARGO_PKG_VERSION"),
        params: p.clone(),
        target,
        results,
        intervals,
        latency,
        interrupted: false,
    }
}

/// The figures of a test interrupted now. `server` is there when the
/// server runs in this process (a local run); otherwise a direction the
/// server receives is given as the client sent it, and says so.
pub fn interrupted(
    p: &Params,
    target: String,
    client: SideReport,
    server: Option<SideReport>,
) -> Outcome {
    let known = server.is_some();
    let server = server.unwrap_or_else(|| SideReport {
        sent: client.received.clone(),
        received: client.sent.clone(),
        ..SideReport::default()
    });
    let mut o = combine(p, target, client, server);
    if !known {
        for r in o
            .results
            .iter_mut()
            .filter(|r| r.direction == "client->server")
        {
            r.counted_by = "sender";
        }
    }
    o.interrupted = true;
    o
}

fn gbits(bps: f64) -> String {
    if bps >= 1e9 {
        format!("{:.2} Gbit/s", bps / 1e9)
    } else {
        format!("{:.1} Mbit/s", bps / 1e6)
    }
}

fn gib(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    }
}

/// The summary table.
pub fn render(o: &Outcome, title: &str) -> String {
    let mut out = format!("sonda bench: {title} to {}\n", o.target);
    for r in &o.results {
        let gibps = r.bits_per_second / 8.0 / (1u64 << 30) as f64;
        out.push_str(&format!(
            "  {:<15} {} ({:.2} GiB/s)  {} in {:.2} s\n",
            r.direction,
            gbits(r.bits_per_second),
            gibps,
            gib(r.bytes),
            r.seconds
        ));
        out.push_str(&format!(
            "  {:<15} CPU sender {:.0}%, receiver {:.0}%; bytes per call: send {:.0}, receive {:.0}\n",
            "",
            r.sender_cpu_percent,
            r.receiver_cpu_percent,
            r.bytes_per_send_call,
            r.bytes_per_recv_call
        ));
        if let (Some(sent), Some(got), Some(lost), Some(pct), Some(reo)) = (
            r.datagrams_sent,
            r.datagrams_received,
            r.lost,
            r.loss_percent,
            r.reordered,
        ) {
            out.push_str(&format!(
                "  {:<15} datagrams: {sent} sent, {got} received, {lost} lost ({pct:.2}%), {reo} out of order\n",
                ""
            ));
        }
    }
    if let Some(l) = &o.latency {
        out.push_str(&format!(
            "  latency (us)    min {:.1}  p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}\n",
            l.min_us, l.p50_us, l.p90_us, l.p99_us, l.p99_9_us, l.max_us
        ));
        out.push_str(&format!(
            "  transactions    {} ({:.0}/s), {} lost\n",
            l.transactions, l.transactions_per_second, l.lost
        ));
        let place = match (l.client_cpu, l.server_cpu) {
            (Some(c), Some(s)) if c == s => format!("client and server on CPU {c} (same vCPU)"),
            (Some(c), Some(s)) => format!("client on CPU {c}, server on CPU {s} (different vCPUs)"),
            _ => "unknown".to_string(),
        };
        out.push_str(&format!("  placement       {place}\n"));
    }
    out
}
