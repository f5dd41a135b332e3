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

/// One direction's figures. A figure nobody measured is None (null in
/// JSON, "unknown" in the table), never a guess: the peer's side of an
/// interrupted --client test, and CPU time while the workers still run.
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
    pub sender_cpu_percent: Option<f64>,
    pub receiver_cpu_percent: Option<f64>,
    pub bytes_per_send_call: Option<f64>,
    pub bytes_per_recv_call: Option<f64>,
    pub datagrams_sent: Option<u64>,
    pub datagrams_received: Option<u64>,
    pub lost: Option<u64>,
    pub loss_percent: Option<f64>,
    pub reordered: Option<u64>,
    /// A `--multicast` test: the receiver (a server's address) that
    /// counted this result; each receiver has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
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

/// One direction from what each end counted; `None` is an end whose
/// figures this process does not have. The throughput is the receiver's
/// when it is known, else the sender's (and says so in `counted_by`).
fn direction(
    name: &'static str,
    p: &Params,
    sender: Option<&Flow>,
    receiver: Option<&Flow>,
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
    let none = Flow::default();
    let counted = receiver.or(sender).unwrap_or(&none);
    let cpu = |f: &Flow| 100.0 * f.cpu_seconds / test_secs;
    let both = sender.zip(receiver).filter(|_| udp);
    let lost = both.map(|(s, r)| s.datagrams.saturating_sub(r.datagrams));
    DirectionResult {
        direction: name,
        counted_by: if receiver.is_some() {
            "receiver"
        } else {
            "sender"
        },
        streams: p.streams,
        bytes: counted.bytes,
        seconds: counted.seconds,
        bits_per_second: if counted.seconds > 0.0 {
            counted.bytes as f64 * 8.0 / counted.seconds
        } else {
            0.0
        },
        sender_cpu_percent: sender.map(cpu),
        receiver_cpu_percent: receiver.map(cpu),
        bytes_per_send_call: sender.map(per_call),
        bytes_per_recv_call: receiver.map(per_call),
        datagrams_sent: sender.filter(|_| udp).map(|f| f.datagrams),
        datagrams_received: receiver.filter(|_| udp).map(|f| f.datagrams),
        lost,
        loss_percent: both.zip(lost).map(|((s, _), lost)| {
            if s.datagrams > 0 {
                100.0 * lost as f64 / s.datagrams as f64
            } else {
                0.0
            }
        }),
        reordered: receiver.filter(|_| udp).map(|f| f.reordered),
        receiver: None,
    }
}

/// Both sides' reports into the figures of each direction.
pub fn combine(p: &Params, target: String, client: SideReport, server: SideReport) -> Outcome {
    build(p, target, &client, Some(&server))
}

/// A `--multicast` test: the client's sending against what each receiver
/// counted, a result per receiver, in the order given (the first is the
/// `--client` server, whose intervals the outcome carries).
pub fn combine_group(
    p: &Params,
    client: SideReport,
    receivers: Vec<(String, SideReport)>,
) -> Outcome {
    let mut it = receivers.into_iter();
    let Some((first, server)) = it.next() else {
        return build(p, String::new(), &client, None);
    };
    let mut o = build(p, first.clone(), &client, Some(&server));
    for r in &mut o.results {
        r.receiver = Some(first.clone());
    }
    let secs = test_secs(p, &client, Some(&server));
    for (target, server) in it {
        o.results.push(DirectionResult {
            receiver: Some(target),
            ..direction(
                "client->server",
                p,
                Some(&client.sent),
                Some(&server.received),
                secs,
            )
        });
    }
    o
}

/// The seconds the figures are over: a timed test's length, or how long a
/// --bytes test's senders ran.
fn test_secs(p: &Params, client: &SideReport, server: Option<&SideReport>) -> f64 {
    if p.bytes.is_some() {
        let server_wall = server.map_or(0.0, |s| s.sent.wall_seconds);
        client.sent.wall_seconds.max(server_wall).max(1e-9)
    } else {
        p.total().as_secs_f64()
    }
}

/// The figures of each direction from the client's report and, when this
/// process has it, the server's.
fn build(p: &Params, target: String, client: &SideReport, server: Option<&SideReport>) -> Outcome {
    let secs = test_secs(p, client, server);
    let mut results = Vec::new();
    let mut intervals = Vec::new();
    if p.mode == Mode::Stream {
        if p.direction != Direction::Down {
            results.push(direction(
                "client->server",
                p,
                Some(&client.sent),
                server.map(|s| &s.received),
                secs,
            ));
            intervals = server.map(|s| s.intervals.clone()).unwrap_or_default();
        }
        if p.direction != Direction::Up {
            results.push(direction(
                "server->client",
                p,
                server.map(|s| &s.sent),
                Some(&client.received),
                secs,
            ));
            if intervals.is_empty() {
                intervals = client.intervals.clone();
            }
        }
    }
    let latency = client.latency.clone().map(|mut l| {
        l.client_cpu = client.cpu;
        l.server_cpu = server.and_then(|s| s.cpu);
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
/// server runs in this process (a local run); otherwise what the server
/// counted is unknown: a direction it receives is given as the client sent
/// it, and says so. The workers are still running, so their CPU time is
/// not known either.
pub fn interrupted(
    p: &Params,
    target: String,
    client: SideReport,
    server: Option<SideReport>,
) -> Outcome {
    let mut o = build(p, target, &client, server.as_ref());
    for r in &mut o.results {
        r.sender_cpu_percent = None;
        r.receiver_cpu_percent = None;
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

fn or_unknown<T>(v: Option<T>, show: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "unknown".to_string(), show)
}

/// "N sent", or "sent unknown".
fn count(v: Option<u64>, what: &str) -> String {
    v.map_or_else(|| format!("{what} unknown"), |n| format!("{n} {what}"))
}

/// The summary table.
pub fn render(o: &Outcome, title: &str) -> String {
    let receivers: Vec<&str> = o
        .results
        .iter()
        .filter_map(|r| r.receiver.as_deref())
        .collect();
    let to = if receivers.len() > 1 {
        receivers.join(", ")
    } else {
        o.target.clone()
    };
    let mut out = format!("sonda bench: {title} to {to}\n");
    for r in &o.results {
        if let (Some(who), true) = (&r.receiver, receivers.len() > 1) {
            out.push_str(&format!("  receiver {who}\n"));
        }
        let gibps = r.bits_per_second / 8.0 / (1u64 << 30) as f64;
        let whose = if r.counted_by == "sender" {
            ", as sent (the receiver's count is unknown here)"
        } else {
            ""
        };
        out.push_str(&format!(
            "  {:<15} {} ({:.2} GiB/s)  {} in {:.2} s{whose}\n",
            r.direction,
            gbits(r.bits_per_second),
            gibps,
            gib(r.bytes),
            r.seconds
        ));
        let pct = |v: f64| format!("{v:.0}%");
        let bytes = |v: f64| format!("{v:.0}");
        out.push_str(&format!(
            "  {:<15} CPU sender {}, receiver {}; bytes per call: send {}, receive {}\n",
            "",
            or_unknown(r.sender_cpu_percent, pct),
            or_unknown(r.receiver_cpu_percent, pct),
            or_unknown(r.bytes_per_send_call, bytes),
            or_unknown(r.bytes_per_recv_call, bytes)
        ));
        if r.datagrams_sent.is_some() || r.datagrams_received.is_some() {
            let lost = match (r.lost, r.loss_percent) {
                (Some(n), Some(pct)) => format!("{n} lost ({pct:.2}%)"),
                _ => "lost unknown".to_string(),
            };
            out.push_str(&format!(
                "  {:<15} datagrams: {}, {}, {lost}, {}\n",
                "",
                count(r.datagrams_sent, "sent"),
                count(r.datagrams_received, "received"),
                count(r.reordered, "out of order"),
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
