//! `sonda connect HOST PORT` / `-U PATH`: connect within a deadline
//! (retrying if asked), then relay; with -z, scan instead.

use std::time::{Duration, Instant};

use crate::config::connect::{Connect, Plan};
use crate::config::Target;
use crate::engine::addr::{resolve, Family};
use crate::engine::connect::{Attempt, ConnectOpts};
use crate::engine::proxy::{self, Dest, Scheme, Via};
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
    // Through a proxy the socket's peer is the proxy: name the target.
    let to = match (&cfg.proxy, &cfg.target) {
        (Some(via), Target::Inet { host, port }) => format!(
            "{} through {}",
            Dest::new(host.as_deref().unwrap_or("localhost"), *port),
            via.url.display()
        ),
        _ => stream.peer().to_string(),
    };
    if report::verbose() {
        let local = stream.local().unwrap_or_else(|| "?".into());
        let mut line = format!(
            "connected to {to} from {local} in {}",
            report::duration(took)
        );
        if let Some(cred) = stream.peer().credentials() {
            line.push_str(&format!(" (listener {cred})"));
        }
        report::info(line);
    }
    let stream = match &client {
        Some(client) => {
            let secured = super::tls_report::handshake(client, stream, &to, &cfg, report_only)?;
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
        "{to}: sent {}, received {} in {}",
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
    match (&cfg.target, &cfg.proxy) {
        (Target::Unix(addr), _) => {
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
        (Target::Inet { host, port }, Some(via)) => {
            connect_via(via, host.as_deref().unwrap_or("localhost"), *port, cfg)
        }
        (Target::Inet { host, port }, None) => {
            let host = host.as_deref().unwrap_or("localhost");
            let addrs = resolve(host, *port, cfg.family)?;
            let total = addrs.len();
            let mut tried = 0;
            let mut failed = 0;
            let mut last_took = Duration::ZERO;
            let result = tcp::connect(&addrs, &cfg.connect, |a| match a {
                Attempt::Trying(addr) => {
                    tried += 1;
                    report::info(format!(
                        "trying {} ({tried} of {total})",
                        display_addr(addr)
                    ));
                }
                // The last address's failure is the command's error, which
                // main prints (or the retry line quotes): say it once.
                Attempt::Failed(_, err, took) => {
                    failed += 1;
                    last_took = took;
                    if failed < total && err.exit == Exit::TimedOut {
                        // A timeout's message has its time already.
                        report::info(err);
                    } else if failed < total {
                        report::info(format!("{err} (after {})", report::duration(took)));
                    }
                }
                Attempt::Slow(addr, after) => report::info(format!(
                    "{}: no answer after {}, racing the next address",
                    display_addr(addr),
                    report::duration(after)
                )),
                Attempt::Overtaken(addr, after) => report::info(format!(
                    "{}: no answer after {}, closed (another address connected first)",
                    display_addr(addr),
                    report::duration(after)
                )),
            });
            // Only the last failure is the error: with -v it has its time
            // as the others had; without, it says the others failed too.
            result.map_err(|e| {
                let why = if failed == 0 || failed < total {
                    return e;
                } else if report::verbose() && e.exit == Exit::TimedOut {
                    // A timeout's message has its time already.
                    return e;
                } else if report::verbose() {
                    format!("{} (after {})", e.why, report::duration(last_took))
                } else if total > 1 {
                    format!(
                        "{} (the last of {total} addresses of '{host}', all failed; -v shows each)",
                        e.why
                    )
                } else {
                    return e;
                };
                Error { why, ..e }
            })
        }
    }
}

/// How long a proxy may take to answer without -w: its own connect to the
/// target is part of the answer, and a kernel's connect gives up after
/// about two minutes, but a silent proxy should not hold sonda that long.
pub const PROXY_ANSWER: Duration = Duration::from_secs(30);

/// TCP to the proxy, then its tunnel to HOST PORT; -w bounds both
/// together. Each stage is reported with -v.
fn connect_via(via: &Via, host: &str, port: u16, cfg: &Connect) -> Result<(Conn, Duration), Error> {
    let started = Instant::now();
    let conn = reach_proxy(via, cfg.family, &cfg.connect)?;
    let dest = proxy_dest(via, host, port, cfg.family)?;
    let deadline = match cfg.connect.timeout {
        Some(t) => started + t,
        None => Instant::now() + PROXY_ANSWER,
    };
    through(&conn, via, &dest, deadline)?;
    Ok((conn, started.elapsed()))
}

/// The TCP connection to the proxy itself; its errors say it was the
/// proxy that could not be reached.
pub fn reach_proxy(via: &Via, family: Family, opts: &ConnectOpts) -> Result<Conn, Error> {
    let url = &via.url;
    let label = format!("{} proxy", url.scheme.name());
    let named = |e: Error| Error {
        what: format!("{label}: {}", e.what),
        ..e
    };
    let addrs = resolve(&url.host, url.port, family).map_err(named)?;
    let (conn, took) = tcp::connect(&addrs, opts, |a| {
        if let Attempt::Trying(addr) = a {
            report::info(format!("proxy: trying {label} {}", display_addr(addr)));
        }
    })
    .map_err(named)?;
    report::info(format!(
        "proxy: TCP to {} in {}",
        conn.peer(),
        report::duration(took)
    ));
    if url.user.is_some() && url.password.is_none() && url.scheme != Scheme::Socks4a {
        report::info(
            "proxy: no password in the URL and SONDA_PROXY_PASSWORD is not set: sending an empty one",
        );
    }
    Ok(conn)
}

/// HOST as the proxy is asked for it: the name, or with `--proxy-dns
/// local` its first address here.
pub fn proxy_dest(via: &Via, host: &str, port: u16, family: Family) -> Result<Dest, Error> {
    if via.remote_dns {
        return Ok(Dest::new(host, port));
    }
    let addrs = resolve(host, port, family)?;
    addrs
        .first()
        .map(|a| Dest::Addr(*a))
        .ok_or_else(|| Error::new(Exit::Resolve, format!("resolve '{host}'"), "no address"))
}

/// The proxy's tunnel to `dest` over `conn`, each stage reported with -v.
pub fn through(conn: &Conn, via: &Via, dest: &Dest, deadline: Instant) -> Result<(), Error> {
    proxy::tunnel(&**conn, &via.url, dest, Some(deadline), &mut |stage| {
        report::info(format!(
            "proxy: {} in {}",
            stage.what,
            report::duration(stage.took)
        ))
    })
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
