//! `sonda connect HOST PORT` / `-U PATH`: connect within a deadline
//! (retrying if asked), then relay; with -z, scan instead.

use std::time::{Duration, Instant};

use crate::config::connect::{Connect, Plan};
use crate::config::Target;
use crate::engine::addr::resolve;
use crate::engine::connect::Attempt;
use crate::engine::relay::{relay, Counters, End};
use crate::engine::socket::display_addr;
use crate::engine::tls;
use crate::engine::transport::{tcp, unix, Conn};
use crate::error::{Error, Exit};
use crate::report;

use super::progress::Progress;

pub fn run(plan: Plan) -> anyhow::Result<Exit> {
    let (cfg, report_only) = match plan {
        Plan::Scan(scan) => return super::scan::run(&scan),
        Plan::Relay(cfg) => (cfg, false),
        Plan::Handshake(cfg) => (cfg, true),
    };
    // PEM files and flags are checked before any connect.
    // -z reports on a handshake carried to its end, trusted or not.
    let client = cfg
        .tls
        .as_ref()
        .map(|o| {
            let mut o = o.clone();
            o.insecure |= report_only;
            tls::Client::new(&o)
        })
        .transpose()?;
    let (stream, took) = connect_with_retries(&cfg)?;
    if report::verbose() {
        let local = stream.local().unwrap_or_else(|| "?".into());
        let mut line = format!(
            "connected to {} from {local} in {}",
            stream.peer(),
            report::duration(took)
        );
        if let Some(cred) = stream.peer().credentials() {
            line.push_str(&format!(" (listener {cred})"));
        }
        report::info(line);
    }
    let stream = match &client {
        Some(client) => {
            let secured = super::tls_report::handshake(client, stream, &cfg, report_only)?;
            match secured {
                Some(s) => s,
                None => return Ok(Exit::Success),
            }
        }
        None => stream,
    };
    let counters = Counters::new();
    let bar = if cfg.progress {
        Progress::start(&counters)
    } else {
        None
    };
    let result = relay(&stream, &cfg.relay, &counters);
    drop(bar);
    let stats = counters.stats();
    report::info(format!(
        "{}: sent {}, received {} in {}",
        stream.peer(),
        report::bytes(stats.sent),
        report::bytes(stats.received),
        report::duration(stats.elapsed)
    ));
    if result? == End::PeerClosed && cfg.notice_peer_eof {
        super::notice_peer_eof();
    }
    Ok(Exit::Success)
}

/// One connect to the target: every address a name resolves to in turn,
/// or the Unix socket.
fn connect_once(cfg: &Connect) -> Result<(Conn, Duration), Error> {
    match &cfg.target {
        Target::Unix(addr) => {
            report::info(format!("trying {addr}"));
            let started = Instant::now();
            let stream = unix::connect(
                addr,
                cfg.kind,
                cfg.connect.timeout,
                &crate::engine::diag::SocketTable,
            )?;
            stream
                .configure(&cfg.connect.sock)
                .map_err(|e| Error::io("set socket options", &e))?;
            Ok((stream, started.elapsed()))
        }
        Target::Inet { host, port } => {
            let host = host.as_deref().unwrap_or("localhost");
            let addrs = resolve(host, *port, cfg.family)?;
            let total = addrs.len();
            let mut tried = 0;
            tcp::connect(&addrs, &cfg.connect, |a| match a {
                Attempt::Trying(addr) => {
                    tried += 1;
                    report::info(format!(
                        "trying {} ({tried} of {total})",
                        display_addr(addr)
                    ));
                }
                // The last address's failure is the command's error, which
                // main prints (or the retry line quotes): say it once.
                Attempt::Failed(_, err) if tried < total => report::info(err),
                Attempt::Failed(..) => {}
            })
        }
    }
}

/// Connects, again after a failure while `--retry` allows: the delay
/// doubles from `--retry-delay` up to ten times it, and `--retry-until`
/// bounds the whole. The last attempt's error is returned.
fn connect_with_retries(cfg: &Connect) -> Result<(Conn, Duration), Error> {
    let started = Instant::now();
    let attempts = cfg.retries.saturating_add(1);
    let cap = cfg.retry_delay.saturating_mul(10);
    let mut delay = cfg.retry_delay;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let err = match connect_once(cfg) {
            Ok(ok) => return Ok(ok),
            Err(e) => e,
        };
        let retryable = matches!(
            err.exit,
            Exit::Refused | Exit::TimedOut | Exit::Resolve | Exit::Failure
        );
        let out_of_time = cfg
            .retry_until
            .is_some_and(|until| started.elapsed() + delay > until);
        if attempt == attempts || !retryable || out_of_time {
            return Err(err);
        }
        report::info(format!(
            "attempt {attempt} of {attempts} failed ({err}); next in {}",
            report::duration(delay)
        ));
        std::thread::sleep(delay);
        delay = (delay * 2).min(cap.max(cfg.retry_delay));
    }
}
