//! `sonda bench`: local (server and client in one process over loopback),
//! `--server`, or `--client`.

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use crate::bench::control::{Control, Msg, VERSION};
use crate::bench::output::{combine, render, Outcome};
use crate::bench::session::{self, client_channels, server_channels, Live, Role};
use crate::bench::{Direction, Meter, Params};
use crate::cli::{BenchArgs, BenchMode, BenchProto};
use crate::engine::addr::{parse_host, parse_port, resolve, Family};
use crate::engine::connect::{connect_any, ConnectOpts};
use crate::engine::socket::{display_addr, listen_on, listen_wildcard, SocketOpts};
use crate::error::{Error, Exit};
use crate::report;

use super::{print_stdout, Global};

/// The default control port (iperf3 uses 5201; this one does not collide).
pub const DEFAULT_PORT: u16 = 5205;

pub fn run(global: &Global, args: BenchArgs) -> anyhow::Result<Exit> {
    let params = to_params(&args)?;
    if let Some(addr) = &args.server {
        return serve(global, addr, args.once, args.control_timeout);
    }
    let (outcome, title) = match &args.client {
        Some(addr) => {
            let (host, port) = host_port(addr, true)?;
            let host = host.unwrap_or_default();
            client(&host, port, global.family, &params, &args)?
        }
        None => local(global.family, &params, &args)?,
    };
    if args.json {
        let text = serde_json::to_string_pretty(&outcome)?;
        print_stdout(&format!("{text}\n"))?;
    } else {
        print_stdout(&render(&outcome, &title))?;
    }
    Ok(Exit::Success)
}

/// Checks and completes the parameters; a contradiction is a usage error.
fn to_params(a: &BenchArgs) -> Result<Params, Error> {
    let usage = |what: &str, why: &str| Error::usage(what.to_string(), why.to_string());
    if a.mode == BenchMode::Rr && (a.reverse || a.bidir) {
        return Err(usage(
            "--reverse/--bidir",
            "apply to --mode stream; rr always measures the client's round trips",
        ));
    }
    if a.mode == BenchMode::Rr && a.bytes.is_some() {
        return Err(usage("--bytes", "applies to --mode stream"));
    }
    if a.rate.is_some() && !(a.proto == BenchProto::Udp && a.mode == BenchMode::Stream) {
        return Err(usage("--rate", "applies to --proto udp --mode stream"));
    }
    if a.duration.is_zero() {
        return Err(usage(
            "invalid duration '0'",
            "--duration must be longer than 0",
        ));
    }
    if a.bytes == Some(0) {
        return Err(usage("invalid size '0'", "--bytes must be at least 1"));
    }
    let size = a.size.unwrap_or(match (a.proto, a.mode) {
        (_, BenchMode::Rr) => 1,
        (BenchProto::Tcp, BenchMode::Stream) => 1 << 20,
        (BenchProto::Udp, BenchMode::Stream) => 1472,
    });
    if a.proto == BenchProto::Udp {
        let low = if a.mode == BenchMode::Stream {
            crate::bench::udp_header()
        } else {
            1
        };
        if !(low..=65527).contains(&size) {
            return Err(usage(
                &format!("invalid size '{size}'"),
                &format!(
                    "a UDP {} datagram holds {low} to 65527 bytes",
                    if a.mode == BenchMode::Stream {
                        "stream"
                    } else {
                        "rr"
                    }
                ),
            ));
        }
    }
    Ok(Params {
        proto: a.proto,
        mode: a.mode,
        direction: if a.bidir {
            Direction::Both
        } else if a.reverse {
            Direction::Down
        } else {
            Direction::Up
        },
        size,
        rate_bps: a.rate,
        streams: a.streams,
        duration_ms: a.duration.as_millis().min(u64::MAX as u128) as u64,
        bytes: a.bytes,
        omit_ms: a.omit.as_millis().min(u64::MAX as u128) as u64,
        interval_ms: a
            .interval
            .filter(|d| !d.is_zero())
            .map(|d| d.as_millis().max(1) as u64),
        gso: !a.no_gso,
        sndbuf: a.sndbuf,
        rcvbuf: a.rcvbuf,
        rcvlowat: match (a.proto, a.mode, a.rcvlowat) {
            (BenchProto::Tcp, BenchMode::Stream, None) => Some(size),
            (_, _, Some(0)) | (_, _, None) => None,
            (_, _, Some(n)) => Some(n.min(i32::MAX as u64) as usize),
        },
        pin: a.pin,
    })
}

/// `[HOST] [PORT]`: one value is a port if it is a number, else a host.
fn host_port(v: &[String], need_host: bool) -> Result<(Option<String>, u16), Error> {
    let host =
        |h: &String| parse_host(h).map_err(|why| Error::usage(format!("invalid host '{h}'"), why));
    let port =
        |p: &String| parse_port(p).map_err(|why| Error::usage(format!("invalid port '{p}'"), why));
    match v {
        [] => Ok((None, DEFAULT_PORT)),
        [one] if !need_host && one.bytes().all(|b| b.is_ascii_digit()) => Ok((None, port(one)?)),
        [one] => Ok((Some(host(one)?), DEFAULT_PORT)),
        [h, p] => Ok((Some(host(h)?), port(p)?)),
        _ => Err(Error::usage("bench", "expected HOST [PORT]")),
    }
}

fn serve(global: &Global, addr: &[String], once: bool, ct: Duration) -> anyhow::Result<Exit> {
    let (host, port) = host_port(addr, false)?;
    let opts = SocketOpts {
        reuseaddr: true,
        ..SocketOpts::default()
    };
    let listener = match host {
        None => listen_wildcard(port, global.family, &opts, 16)?,
        Some(h) => listen_on(resolve(&h, port, global.family)?[0], &opts, 16, None)?,
    };
    if let Ok(local) = listener.local_addr() {
        report::info(format!(
            "bench server listening on {}",
            display_addr(&local)
        ));
    }
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                report::warn(format!(
                    "bench server: accept: {}",
                    crate::error::describe(&e)
                ));
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let peer = display_addr(&peer);
        match serve_test(stream, peer.clone(), ct) {
            Ok(p) => report::info(format!(
                "bench test from {peer} done: {}",
                session::describe(&p)
            )),
            Err(e) => report::warn(format!("bench test from {peer}: {e}")),
        }
        if once {
            return Ok(Exit::Success);
        }
    }
}

/// One test on the server side, start to end.
fn serve_test(stream: TcpStream, peer: String, ct: Duration) -> Result<Params, Error> {
    let local_ip = stream
        .local_addr()
        .map(|a| a.ip())
        .map_err(|e| Error::io("getsockname", &e))?;
    let mut ctrl = Control::new(stream, peer);
    ctrl.set_timeout(ct)?;
    ctrl.expect_magic()?;
    ctrl.send_magic()?;
    let params = match ctrl.recv()? {
        Msg::Hello { version, params } if version == VERSION => params,
        Msg::Hello { version, .. } => {
            let reason = format!("protocol version {version} is not {VERSION}");
            let _ = ctrl.send(&Msg::Reject {
                reason: reason.clone(),
            });
            return Err(Error::new(
                Exit::Failure,
                format!("bench control with {}", ctrl.peer()),
                reason,
            ));
        }
        _ => {
            return Err(Error::new(
                Exit::Failure,
                format!("bench control with {}", ctrl.peer()),
                "expected a hello",
            ))
        }
    };
    let result = (|| {
        let ch = server_channels(&params, local_ip, &mut ctrl, ct)?;
        match ctrl.recv()? {
            Msg::Start => {}
            _ => return Err(Error::new(Exit::Failure, "bench control", "expected start")),
        }
        session::run(Role::Server, &params, ch, &mut ctrl, ct, None)
    })();
    if let Err(e) = &result {
        let _ = ctrl.send(&Msg::Error {
            reason: e.to_string(),
        });
    }
    result.map(|_| params)
}

fn client(
    host: &str,
    port: u16,
    family: Family,
    p: &Params,
    a: &BenchArgs,
) -> Result<(Outcome, String), Error> {
    let addrs = resolve(host, port, family)?;
    let opts = ConnectOpts {
        timeout: Some(a.control_timeout),
        ..ConnectOpts::default()
    };
    let (stream, addr, _) = connect_any(&addrs, &opts, |_| {})?;
    run_client(stream, addr, p, a)
}

fn run_client(
    stream: TcpStream,
    addr: SocketAddr,
    p: &Params,
    a: &BenchArgs,
) -> Result<(Outcome, String), Error> {
    let ct = a.control_timeout;
    let target = display_addr(&addr);
    let mut ctrl = Control::new(stream, target.clone());
    ctrl.set_timeout(ct)?;
    ctrl.send_magic()?;
    ctrl.expect_magic()?;
    ctrl.send(&Msg::Hello {
        version: VERSION,
        params: p.clone(),
    })?;
    let ports = match ctrl.recv()? {
        Msg::Accept { data_ports } => data_ports,
        Msg::Reject { reason } => {
            return Err(Error::new(
                Exit::Failure,
                format!("bench with {target}"),
                format!("the server refused the test: {reason}"),
            ))
        }
        _ => {
            return Err(Error::new(
                Exit::Failure,
                format!("bench with {target}"),
                "unexpected answer to hello",
            ))
        }
    };
    let ch = client_channels(p, addr.ip(), &ports, ct)?;
    ctrl.send(&Msg::Start)?;
    let bar = Progress::new(p, a.json);
    let (mine, peer) = session::run(Role::Client, p, ch, &mut ctrl, ct, bar.live())?;
    bar.finish();
    let title = session::describe(p);
    Ok((combine(p, target, mine, peer), title))
}

/// Server and client in this process, over loopback.
fn local(family: Family, p: &Params, a: &BenchArgs) -> Result<(Outcome, String), Error> {
    let ip = match family {
        Family::V6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let listener = TcpListener::bind((ip, 0))
        .map_err(|e| Error::io("bench: bind a loopback control port", &e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("getsockname", &e))?;
    let ct = a.control_timeout;
    let server = thread::Builder::new()
        .name("bench-server".into())
        .spawn(move || -> Result<(), Error> {
            let (stream, peer) = listener
                .accept()
                .map_err(|e| Error::io("bench: accept", &e))?;
            serve_test(stream, display_addr(&peer), ct).map(|_| ())
        })
        .map_err(|e| Error::io("start bench server", &e))?;
    let stream =
        TcpStream::connect_timeout(&addr, ct).map_err(|e| Error::io("bench: connect", &e))?;
    let client = run_client(stream, addr, p, a);
    let server = server
        .join()
        .unwrap_or_else(|_| Err(Error::new(Exit::Failure, "bench server", "panicked")));
    let (outcome, title) = client?;
    server?;
    Ok((outcome, format!("{title}, local")))
}

/// The live view: a spinner with the current rate on stderr (only when
/// stderr is a terminal), and with --interval a line per interval on stdout
/// (the client's side of the flow; the receiver's intervals are in --json).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    interval: Option<Duration>,
    omit: Duration,
    direction: Direction,
    rr: bool,
}

impl Progress {
    fn new(p: &Params, json: bool) -> Progress {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            b
        });
        Progress {
            bar,
            interval: p.interval_ms.filter(|_| !json).map(Duration::from_millis),
            omit: p.omit(),
            direction: p.direction,
            rr: p.mode == BenchMode::Rr,
        }
    }

    fn live(&self) -> Option<Live> {
        if self.bar.is_none() && self.interval.is_none() {
            return None;
        }
        let (bar, interval, omit) = (self.bar.clone(), self.interval, self.omit);
        let (direction, rr) = (self.direction, self.rr);
        // (time, count) at the last tick and at the last interval line.
        let state = Mutex::new(((Duration::ZERO, 0u64), (omit, 0u64)));
        let unit = if rr { "transactions" } else { "bytes" };
        Some(Box::new(
            move |send: &Meter, recv: &Meter, elapsed: Duration| {
                let now = match (rr, direction) {
                    (true, _) => send.datagrams.load(std::sync::atomic::Ordering::Relaxed),
                    (false, Direction::Up) => send.bytes(),
                    (false, Direction::Down) => recv.bytes(),
                    (false, Direction::Both) => send.bytes() + recv.bytes(),
                };
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                let rate = |from: (Duration, u64)| {
                    let dt = elapsed.saturating_sub(from.0).as_secs_f64();
                    if dt > 0.0 {
                        now.saturating_sub(from.1) as f64 / dt
                    } else {
                        0.0
                    }
                };
                let text = |r: f64| {
                    if rr {
                        format!("{r:.0} transactions/s")
                    } else {
                        format!("{:.2} Gbit/s", r * 8.0 / 1e9)
                    }
                };
                if let Some(b) = &bar {
                    b.set_message(format!("{}, {now} {unit}", text(rate(st.0))));
                    b.tick();
                }
                if let Some(d) = interval {
                    if elapsed < omit {
                        st.1 = (elapsed, now);
                    } else if elapsed >= st.1 .0 + d {
                        let line = format!(
                            "  {:>7.2}-{:<7.2} s  {:>14} {unit}  {}\n",
                            st.1 .0.saturating_sub(omit).as_secs_f64(),
                            elapsed.saturating_sub(omit).as_secs_f64(),
                            now - st.1 .1,
                            text(rate(st.1))
                        );
                        match &bar {
                            Some(b) => b.suspend(|| print_stdout(&line)),
                            None => print_stdout(&line),
                        }
                        .ok();
                        st.1 = (elapsed, now);
                    }
                }
                st.0 = (elapsed, now);
            },
        ))
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
