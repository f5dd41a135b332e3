//! `sonda connect -z HOST PORTS`: which ports accept.
//!
//! Every address HOST resolves to is scanned, each reported on its own
//! lines: a name with an IPv4 and an IPv6 address may have a port open on
//! one and closed on the other, and that is exactly what a scan is for
//! (nc scans only the first address, which hides it).

use serde::Serialize;

use std::net::SocketAddr;
use std::time::Instant;

use crate::config::connect::Scan;
use crate::engine::addr::resolve;
use crate::engine::connect::ConnectOpts;
use crate::engine::proxy::{self, Via};
use crate::engine::scan::{self, PortResult, State};
use crate::engine::socket::{Proto, ShownIp};
use crate::error::{Error, Exit};
use crate::report;

use super::connect::{proxy_dest, reach_proxy, through};
use super::print_stdout;

/// Probes in flight by default: enough to cover a slow network's timeouts,
/// well under the usual descriptor limits.
const DEFAULT_CONCURRENCY: u64 = 512;

#[derive(Serialize)]
struct JsonPort<'a> {
    host: &'a str,
    port: u16,
    proto: &'static str,
    state: &'static str,
    rtt_ms: Option<f64>,
}

pub fn run(args: &Scan) -> anyhow::Result<Exit> {
    if let Some(via) = &args.proxy {
        return through_proxy(args, via);
    }
    let (host, ports, timeout) = (&args.host, &args.ports, args.timeout);
    let addrs = in_source_family(resolve(host, 0, args.family)?, &args.local)?;
    let proto = if args.udp { Proto::Udp } else { Proto::Tcp };
    if let Some(first) = addrs.first() {
        scan::preflight(first, proto, &args.local)?;
    }
    let limit = scan::raise_nofile();
    let fit = limit.saturating_sub(64).max(1);
    let concurrency = args.concurrency.unwrap_or(DEFAULT_CONCURRENCY).min(fit) as usize;
    let loops = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let results = scan::scan(
        &addrs,
        ports,
        proto,
        timeout,
        &args.local,
        concurrency,
        loops,
    )
    .map_err(|e| Error::io(format!("scan {host}"), &e))?;

    let pname = if args.udp { "udp" } else { "tcp" };
    let mut out = String::new();
    for r in &results {
        let host = ShownIp(&r.addr).to_string();
        if args.json {
            let rec = JsonPort {
                host: &host,
                port: r.port,
                proto: pname,
                state: r.state.name(),
                rtt_ms: r
                    .rtt
                    .filter(|_| r.state != State::Filtered)
                    .map(|d| d.as_secs_f64() * 1e3),
            };
            out.push_str(&serde_json::to_string(&rec)?);
            out.push('\n');
        } else if shown(r) {
            out.push_str(&format!("{host} {}/{pname} {}", r.port, r.state.name()));
            if let (State::Open, Some(rtt)) = (r.state, r.rtt) {
                out.push_str(&format!(" {}", report::duration(rtt)));
            }
            out.push('\n');
        }
    }
    print_stdout(&out)?;
    for addr in &addrs {
        let count = |s: State| {
            results
                .iter()
                .filter(|r| r.addr.ip() == addr.ip() && r.state == s)
                .count()
        };
        report::info(format!(
            "scanned {} {pname} ports on {}: {} open, {} closed, {} {}",
            ports.len(),
            ShownIp(addr),
            count(State::Open),
            count(State::Closed),
            count(State::Filtered) + count(State::OpenFiltered),
            if args.udp {
                "open|filtered"
            } else {
                "filtered"
            }
        ));
    }
    Ok(exit_status(&results))
}

/// Only the --source address's family can be reached from it, as for a
/// relay's connect.
fn in_source_family(addrs: Vec<SocketAddr>, local: &ConnectOpts) -> Result<Vec<SocketAddr>, Error> {
    let Some(src) = local.source else {
        return Ok(addrs);
    };
    let kept: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| a.is_ipv4() == src.is_ipv4())
        .collect();
    if kept.is_empty() {
        return Err(Error::new(
            Exit::Resolve,
            "connect",
            "no resolved address is in the family of the --source address",
        ));
    }
    Ok(kept)
}

/// DESIGN "Exit status", over every address scanned: 0 when any port
/// accepted; for UDP a silent port counts too, since open|filtered is all
/// a service that reads and never answers can ever give. 3 when a port was
/// refused and none accepted; 4 when every probe timed out.
fn exit_status(results: &[PortResult]) -> Exit {
    let any = |s: State| results.iter().any(|r| r.state == s);
    if any(State::Open) || any(State::OpenFiltered) {
        Exit::Success
    } else if any(State::Closed) {
        Exit::Refused
    } else {
        Exit::TimedOut
    }
}

/// Open ports always; UDP's open|filtered too (it may be open); closed and
/// filtered with -v.
fn shown(r: &PortResult) -> bool {
    matches!(r.state, State::Open | State::OpenFiltered) || report::verbose()
}

/// `-z --proxy`: each port asked of the proxy in turn, within the probe
/// timeout. The proxy's refusal is closed and its silence filtered; a
/// proxy that cannot be reached or refuses the credentials ends the scan.
fn through_proxy(args: &Scan, via: &Via) -> anyhow::Result<Exit> {
    let opts = &args.local;
    let mut states = Vec::with_capacity(args.ports.len());
    for &port in &args.ports {
        let started = Instant::now();
        let conn = reach_proxy(via, args.family, opts)?;
        let dest = proxy_dest(via, &args.host, port, args.family)?;
        let state = match through(&conn, via, &dest, started + args.timeout) {
            Ok(()) => State::Open,
            Err(e) if e.exit == Exit::Refused => State::Closed,
            Err(e) if e.exit == Exit::TimedOut || proxy::is_forbidden(&e) => State::Filtered,
            Err(e) => return Err(e.into()),
        };
        let rtt = started.elapsed();
        states.push(state);
        let line = if args.json {
            serde_json::to_string(&JsonPort {
                host: &args.host,
                port,
                proto: "tcp",
                state: state.name(),
                rtt_ms: (state != State::Filtered).then_some(rtt.as_secs_f64() * 1e3),
            })?
        } else if state == State::Open || report::verbose() {
            let mut line = format!("{} {port}/tcp {}", args.host, state.name());
            if state == State::Open {
                line.push_str(&format!(" {}", report::duration(rtt)));
            }
            line
        } else {
            continue;
        };
        print_stdout(&format!("{line}\n"))?;
    }
    let count = |s: State| states.iter().filter(|&&t| t == s).count();
    report::info(format!(
        "scanned {} tcp ports on {} through {}: {} open, {} closed, {} filtered",
        args.ports.len(),
        args.host,
        via.url.display(),
        count(State::Open),
        count(State::Closed),
        count(State::Filtered)
    ));
    Ok(if count(State::Open) > 0 {
        Exit::Success
    } else if count(State::Closed) > 0 {
        Exit::Refused
    } else {
        Exit::TimedOut
    })
}
