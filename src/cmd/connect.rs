//! `sonda connect HOST PORT`: connect within a deadline (retrying if
//! asked), then relay; with -z, scan instead.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::cli::{ConnectArgs, TimeoutMethodArg};
use crate::engine::addr::{parse_port, resolve};
use crate::engine::connect::{connect_any, Attempt, ConnectOpts, TimeoutMethod};
use crate::engine::relay::{relay, Counters, End};
use crate::engine::socket::display_addr;
use crate::error::{Error, Exit};
use crate::report;

use super::progress::Progress;
use super::Global;

pub fn run(global: &Global, args: ConnectArgs) -> anyhow::Result<Exit> {
    let (host, port_text) = super::host_and_port(&args.host, args.port.as_deref())?;
    if args.zero_io {
        return super::scan::run(global, &args, &host, &port_text);
    }
    let port = parse_port(&port_text).map_err(|why| {
        let hint = if port_text.contains([',', '-']) {
            " (port lists need -z)"
        } else {
            ""
        };
        Error::usage(
            format!("invalid port '{port_text}'"),
            format!("{why}{hint}"),
        )
    })?;
    let (stream, peer, took) = connect_with_retries(global, &args, &host, port)?;
    if report::verbose() {
        let local = stream
            .local_addr()
            .map(|a| display_addr(&a))
            .unwrap_or_else(|_| "?".into());
        report::info(format!(
            "connected to {} from {local} in {}",
            display_addr(&peer),
            report::duration(took)
        ));
    }
    let counters = Counters::new();
    let bar = if args.progress {
        Progress::start(&counters)
    } else {
        None
    };
    let result = relay(stream, peer, &args.relay.to_opts(), &counters);
    drop(bar);
    let stats = counters.stats();
    report::info(format!(
        "{}: sent {}, received {} in {}",
        display_addr(&peer),
        report::bytes(stats.sent),
        report::bytes(stats.received),
        report::duration(stats.elapsed)
    ));
    if result? == End::PeerClosed && args.relay.ends_at_peer_eof_for_terminal() {
        super::notice_peer_eof();
    }
    Ok(Exit::Success)
}

/// Resolves and connects, again after a failure while `--retry` allows:
/// the delay doubles from `--retry-delay` up to ten times it, and
/// `--retry-until` bounds the whole. The last attempt's error is returned.
fn connect_with_retries(
    global: &Global,
    args: &ConnectArgs,
    host: &str,
    port: u16,
) -> Result<(TcpStream, SocketAddr, Duration), Error> {
    let opts = ConnectOpts {
        timeout: args.timeout.filter(|d| !d.is_zero()),
        method: match args.timeout_method {
            TimeoutMethodArg::Poll => TimeoutMethod::Poll,
            TimeoutMethodArg::Alarm => TimeoutMethod::Alarm,
        },
        source: args.source,
        sock: args.socket.to_opts(),
    };
    let started = Instant::now();
    let attempts = args.retry.saturating_add(1);
    let cap = args.retry_delay.saturating_mul(10);
    let mut delay = args.retry_delay;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = resolve(host, port, global.family).and_then(|addrs| {
            let total = addrs.len();
            let mut tried = 0;
            connect_any(&addrs, &opts, |a| match a {
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
        });
        let err = match result {
            Ok(ok) => return Ok(ok),
            Err(e) => e,
        };
        let retryable = matches!(
            err.exit,
            Exit::Refused | Exit::TimedOut | Exit::Resolve | Exit::Failure
        );
        let out_of_time = args
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
        delay = (delay * 2).min(cap.max(args.retry_delay));
    }
}
