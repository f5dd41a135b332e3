//! `sonda bench`: local (server and client in one process, over loopback
//! or a Unix socket), `--server`, or `--client`.

use std::fmt;
use std::io::IsTerminal;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use socket2::Socket;

use crate::bench::control::{Control, Msg, MAX_HELLO, VERSION};
use crate::bench::output::{combine, combine_group, interrupted, render, Outcome};
use crate::bench::sampler::{Beat, Live, Tally};
use crate::bench::session::{
    self, client_channels, client_unix_channels, server_channels, Role, Via,
};
use crate::bench::{Direction, Meter, Mode, Params, Side};
use crate::cli::BenchArgs;
use crate::config::bench::{Bench, Plan};
use crate::config::Target;
use crate::engine::addr::resolve;
use crate::engine::connect::{connect_any, ConnectOpts};
use crate::engine::diag::SocketTable;
use crate::engine::socket::{self, display_addr, listen_inet, SocketOpts};
use crate::engine::transport::unix::{self, peer_cred, Bound, Kind};
use crate::engine::transport::{Peer, UnixAddr, UnixName};
use crate::error::{Error, Exit};
use crate::report;

use super::{print_stdout, Global};

pub fn run(global: &Global, args: BenchArgs) -> anyhow::Result<Exit> {
    let cfg = Bench::try_from((&args, global.family))?;
    let report = Report::new(&cfg);
    let outcome = match &cfg.plan {
        Plan::Server { once } => return serve(&cfg, *once),
        Plan::Client(p) => client(p, &cfg, &report)?,
        Plan::Local(p) => local(p, &cfg, &report)?,
    };
    report.print(&outcome)?;
    Ok(Exit::Success)
}

/// Prints the result once: the whole test's, or (Ctrl-C or SIGTERM) the
/// figures so far; whichever comes first, the other prints nothing.
struct Report {
    json: bool,
    title: Arc<Mutex<String>>,
    printed: Arc<Mutex<bool>>,
}

impl Report {
    fn new(cfg: &Bench) -> Report {
        Report {
            json: cfg.json,
            title: Arc::default(),
            printed: Arc::default(),
        }
    }

    fn text(json: bool, o: &Outcome, title: &str) -> Result<String, Error> {
        if json {
            let text = serde_json::to_string_pretty(o)
                .map_err(|e| Error::new(Exit::Failure, "bench: render JSON", e.to_string()))?;
            Ok(format!("{text}\n"))
        } else {
            Ok(render(o, title))
        }
    }

    fn print(&self, o: &Outcome) -> Result<(), Error> {
        let mut printed = self.printed.lock().unwrap_or_else(|e| e.into_inner());
        if *printed {
            return Ok(());
        }
        let title = self.title.lock().unwrap_or_else(|e| e.into_inner()).clone();
        *printed = true;
        print_stdout(&Self::text(self.json, o, &title)?)
    }

    /// Arms the interrupt report of a test about to run: `client` is this
    /// process's client side, `server` the server side when it runs here.
    fn arm(
        &self,
        p: &Params,
        target: String,
        title: String,
        client: Arc<Tally>,
        server: Option<Arc<Tally>>,
    ) {
        *self.title.lock().unwrap_or_else(|e| e.into_inner()) = title.clone();
        let (p, json, printed) = (p.clone(), self.json, self.printed.clone());
        let started = Instant::now();
        crate::signals::at_interrupt(move || {
            let mut done = printed.lock().unwrap_or_else(|e| e.into_inner());
            let Some(mine) = client.so_far() else { return };
            if *done {
                return;
            }
            let peer = server.as_ref().and_then(|s| s.so_far());
            let o = interrupted(&p, target.clone(), mine, peer);
            let title = format!(
                "{title}, interrupted after {:.2} s",
                started.elapsed().as_secs_f64()
            );
            if let Ok(text) = Self::text(json, &o, &title) {
                let _ = print_stdout(&text);
            }
            *done = true;
        });
    }
}

/// A listening control socket: TCP, or a Unix socket whose file goes with
/// it (when it drops, and at SIGINT or SIGTERM).
enum ControlListener {
    Tcp(TcpListener),
    Unix(Bound),
}

/// The server a client's control connection reached.
enum Reached {
    Inet(SocketAddr),
    Unix(UnixAddr),
}

impl fmt::Display for Reached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reached::Inet(addr) => f.write_str(&display_addr(addr)),
            Reached::Unix(addr) => addr.fmt(f),
        }
    }
}

/// The server's control socket at `target`: every interface, a named
/// address, or a Unix socket. A local run listens where its client alone
/// can reach it: loopback, port 0.
fn control_listener(cfg: &Bench, local: bool) -> Result<ControlListener, Error> {
    let opts = SocketOpts {
        reuseaddr: true,
        ..cfg.sock.clone()
    };
    match &cfg.target {
        Target::Inet {
            host: Some(h),
            port,
        } if local => {
            let addr = resolve(h, *port, cfg.family)?[0];
            socket::tcp_listener(addr)
                .map(ControlListener::Tcp)
                .map_err(|e| Error::io("bench: bind a loopback control port", &e))
        }
        Target::Inet { host, port } => {
            listen_inet(host.as_deref(), *port, cfg.family, &opts, 16).map(ControlListener::Tcp)
        }
        Target::Unix(addr) => {
            let bound = unix::bind(addr, socket2::Type::STREAM, cfg.unix_bind, &SocketTable)?;
            bound
                .socket()
                .listen(16)
                .map_err(|e| Error::io(format!("listen on {addr}"), &e))?;
            Ok(ControlListener::Unix(bound))
        }
    }
}

impl ControlListener {
    fn local(&self) -> String {
        match self {
            ControlListener::Tcp(l) => l
                .local_addr()
                .map(|a| display_addr(&a))
                .unwrap_or_else(|_| "?".to_string()),
            ControlListener::Unix(b) => b.addr().to_string(),
        }
    }

    /// accept(2): the control connection, what the server knows of it, and
    /// the client's name for the log (its address, or for a Unix client
    /// its process).
    fn accept(&self) -> std::io::Result<(Socket, Via, String)> {
        match self {
            ControlListener::Tcp(l) => {
                let (stream, peer) = l.accept()?;
                let local = stream.local_addr()?;
                Ok((stream.into(), Via::Inet(local), display_addr(&peer)))
            }
            ControlListener::Unix(b) => {
                let (sock, addr) = b.socket().accept()?;
                let cred = peer_cred(&sock);
                let peer = Peer::Unix {
                    name: UnixName::of(&addr),
                    cred: cred.clone(),
                };
                Ok((sock, Via::Unix { client: cred }, peer.to_string()))
            }
        }
    }

    /// A local run's client: connects to this listener, which queues the
    /// connection until the server thread accepts it.
    fn connect_here(&self, ct: Duration) -> Result<(Socket, Reached), Error> {
        match self {
            ControlListener::Tcp(l) => {
                let addr = l.local_addr().map_err(|e| Error::io("getsockname", &e))?;
                let stream = TcpStream::connect_timeout(&addr, ct)
                    .map_err(|e| Error::io("bench: connect", &e))?;
                Ok((stream.into(), Reached::Inet(addr)))
            }
            ControlListener::Unix(b) => {
                let sock = unix::connect_socket(b.addr(), Kind::Stream, Some(ct), &SocketTable)?;
                Ok((sock, Reached::Unix(b.addr().clone())))
            }
        }
    }
}

fn serve(cfg: &Bench, once: bool) -> anyhow::Result<Exit> {
    let ct = cfg.control_timeout;
    let listener = control_listener(cfg, false)?;
    report::info(format!("bench server listening on {}", listener.local()));
    loop {
        let (stream, via, peer) = match listener.accept() {
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
        match serve_test(stream, &via, peer.clone(), &cfg.sock, ct, &Tally::default()) {
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

/// One test on the server side, start to end. A request that does not
/// pass the checks the client runs, or asks for a transport other than the
/// control connection's, is refused with the reason, before any data
/// socket opens.
fn serve_test(
    stream: Socket,
    via: &Via,
    peer: String,
    sock: &SocketOpts,
    ct: Duration,
    tally: &Tally,
) -> Result<Params, Error> {
    let mut ctrl = Control::server(stream, peer);
    ctrl.set_timeout(ct)?;
    ctrl.expect_magic()?;
    ctrl.send_magic()?;
    let refuse = |ctrl: &mut Control, reason: String| {
        let _ = ctrl.send(&Msg::Reject {
            reason: reason.clone(),
        });
        Error::new(
            Exit::Failure,
            ctrl.what(),
            format!("refused the test: {reason}"),
        )
    };
    let params = match ctrl.recv_within(MAX_HELLO) {
        Ok(Msg::Hello { version, params }) if version == VERSION => params,
        Ok(Msg::Hello { version, .. }) => {
            let reason = format!("protocol version {version} is not {VERSION}");
            return Err(refuse(&mut ctrl, reason));
        }
        Ok(_) => return Err(refuse(&mut ctrl, "expected a hello".to_string())),
        Err(e) => {
            // A hello that does not parse still gets an answer, if the
            // connection is there to carry one.
            let _ = ctrl.send(&Msg::Reject {
                reason: e.why.clone(),
            });
            return Err(e);
        }
    };
    let checked = params
        .validate(Side::Server)
        .and_then(|()| params.check_transport(matches!(via, Via::Unix { .. })))
        .and_then(|()| match via {
            Via::Inet(local) => params.check_family(local.ip()),
            Via::Unix { .. } => Ok(()),
        });
    if let Err(e) = checked {
        return Err(refuse(&mut ctrl, e.to_string()));
    }
    let result = (|| {
        let ch = server_channels(&params, via, sock, &mut ctrl, ct)?;
        match ctrl.recv()? {
            Msg::Start => {}
            _ => return Err(Error::new(Exit::Failure, "bench control", "expected start")),
        }
        session::run(
            Role::Server,
            &params,
            ch,
            std::slice::from_mut(&mut ctrl),
            ct,
            None,
            tally,
        )
    })();
    if let Err(e) = &result {
        let _ = ctrl.send(&Msg::Error {
            reason: e.to_string(),
        });
    }
    result.map(|_| params)
}

/// The control connection to the server at `target`, bounded by the
/// control timeout.
fn connect_control(target: &Target, cfg: &Bench) -> Result<(Socket, Reached), Error> {
    Ok(match target {
        Target::Inet { host, port } => {
            let addrs = resolve(host.as_deref().unwrap_or_default(), *port, cfg.family)?;
            let opts = ConnectOpts {
                timeout: Some(cfg.control_timeout),
                sock: cfg.sock.clone(),
                ..ConnectOpts::default()
            };
            let (stream, addr, _) = connect_any(&addrs, &opts, |_| {})?;
            (Socket::from(stream), Reached::Inet(addr))
        }
        Target::Unix(addr) => (
            unix::connect_socket(addr, Kind::Stream, Some(cfg.control_timeout), &SocketTable)?,
            Reached::Unix(addr.clone()),
        ),
    })
}

fn client(p: &Params, cfg: &Bench, report: &Report) -> Result<Outcome, Error> {
    let (stream, reached) = connect_control(&cfg.target, cfg)?;
    let title = session::describe(p);
    run_client(stream, reached, p, cfg, |target, tally| {
        report.arm(p, target, title, tally, None)
    })
}

/// The client's side of one test; `arm` is told the target and the
/// client's tally just before the test starts.
fn run_client(
    stream: Socket,
    reached: Reached,
    p: &Params,
    cfg: &Bench,
    arm: impl FnOnce(String, Arc<Tally>),
) -> Result<Outcome, Error> {
    if let Reached::Inet(addr) = &reached {
        p.check_family(addr.ip())?;
    }
    let ct = cfg.control_timeout;
    let target = reached.to_string();
    let mut ctrl = Control::new(stream, target.clone());
    let (ports, data_socket) = agree(&mut ctrl, p, ct)?;
    let mut controls = vec![ctrl];
    let mut names = vec![target.clone()];
    if !cfg.receivers.is_empty() {
        // The further receivers bind the group on the first one's ports,
        // so each datagram sent reaches them all.
        let further = Params {
            group_ports: ports.iter().take(p.streams as usize).copied().collect(),
            ..p.clone()
        };
        for (host, port) in &cfg.receivers {
            let at = Target::Inet {
                host: Some(host.clone()),
                port: *port,
            };
            let (stream, reached) = connect_control(&at, cfg)?;
            if let Reached::Inet(addr) = &reached {
                further.check_family(addr.ip())?;
            }
            let name = reached.to_string();
            // A server serves one test at a time: asked twice, it would
            // never answer the second.
            if names.contains(&name) {
                return Err(Error::usage(
                    format!("'--receiver {host}'"),
                    format!("{name} is already a receiver of this test"),
                ));
            }
            let mut c = Control::new(stream, name.clone());
            let (theirs, _) = agree(&mut c, &further, ct)?;
            if theirs != further.group_ports {
                return Err(Error::new(
                    Exit::Failure,
                    format!("bench with {name}"),
                    "the receiver did not bind the group's ports",
                ));
            }
            controls.push(c);
            names.push(name);
        }
    }
    let ch = match &reached {
        Reached::Inet(addr) => client_channels(p, *addr, &ports, &cfg.sock, ct)?,
        Reached::Unix(_) => client_unix_channels(p, data_socket.as_deref(), ct)?,
    };
    let tally = Arc::new(Tally::default());
    arm(target.clone(), tally.clone());
    for c in &mut controls {
        c.send(&Msg::Start)?;
    }
    report::info(format!(
        "bench: test running with {}: {}",
        names.join(", "),
        session::describe(p)
    ));
    let bar = Progress::new(p, cfg.json);
    let (mine, mut peers) =
        session::run(Role::Client, p, ch, &mut controls, ct, bar.live(), &tally)?;
    bar.finish();
    if p.multicast.is_some() {
        return Ok(combine_group(
            p,
            mine,
            names.into_iter().zip(peers).collect(),
        ));
    }
    let peer = peers
        .pop()
        .ok_or_else(|| Error::new(Exit::Failure, format!("bench with {target}"), "no report"))?;
    Ok(combine(p, target, mine, peer))
}

/// The opening of a test on a fresh control connection: magic both ways,
/// the parameters, and the server's answer: its data ports and (a Unix
/// test) its data socket's name.
fn agree(
    ctrl: &mut Control,
    p: &Params,
    ct: Duration,
) -> Result<(Vec<u16>, Option<String>), Error> {
    let target = ctrl.peer().to_string();
    ctrl.set_timeout(ct)?;
    ctrl.send_magic()?;
    ctrl.expect_magic()?;
    ctrl.send(&Msg::Hello {
        version: VERSION,
        params: p.clone(),
    })?;
    match ctrl.recv()? {
        Msg::Accept {
            data_ports,
            data_socket,
        } => Ok((data_ports, data_socket)),
        Msg::Reject { reason } => Err(Error::new(
            Exit::Failure,
            format!("bench with {target}"),
            format!("the server refused the test: {reason}"),
        )),
        Msg::Error { reason } => Err(Error::new(
            Exit::Failure,
            format!("bench with {target}"),
            format!("the server failed to set up the test: {reason}"),
        )),
        _ => Err(Error::new(
            Exit::Failure,
            format!("bench with {target}"),
            "unexpected answer to hello",
        )),
    }
}

/// Server and client in this process, over loopback or the Unix socket the
/// target names (made here, and removed when the run ends however it ends).
fn local(p: &Params, cfg: &Bench, report: &Report) -> Result<Outcome, Error> {
    let listener = control_listener(cfg, true)?;
    let ct = cfg.control_timeout;
    // The client connects before the server thread exists: a connect that
    // fails returns here with the listener (and a Unix socket's file) still
    // owned by this thread, so it goes, rather than staying in a thread
    // blocked in accept(2) for ever.
    let (stream, reached) = listener.connect_here(ct)?;
    // The server's counts are here too: an interrupt reports what the
    // receiver counted, whichever side receives.
    let server_tally = Arc::new(Tally::default());
    let tally = server_tally.clone();
    let sock = cfg.sock.clone();
    let server = thread::Builder::new()
        .name("bench-server".into())
        .spawn(move || -> Result<(), Error> {
            let (stream, via, peer) = listener
                .accept()
                .map_err(|e| Error::io("bench: accept", &e))?;
            serve_test(stream, &via, peer, &sock, ct, &tally).map(|_| ())
        })
        .map_err(|e| Error::io("start bench server", &e))?;
    let title = format!("{}, local", session::describe(p));
    let client = run_client(stream, reached, p, cfg, |target, tally| {
        report.arm(p, target, title, tally, Some(server_tally))
    });
    let server = server
        .join()
        .unwrap_or_else(|_| Err(Error::new(Exit::Failure, "bench server", "panicked")));
    match (client, server) {
        // The client only hears that its peer failed; the server thread
        // has the failure itself, and it is this process's own.
        (Err(c), Err(s)) if c.why.starts_with("the peer failed") => Err(Error {
            what: s.what.replacen("bench ", "bench (local server) ", 1),
            ..s
        }),
        (client, server) => {
            let outcome = client?;
            server?;
            Ok(outcome)
        }
    }
}

/// The live view: a spinner with the current rate on stderr (only when
/// stderr is a terminal), and with --interval a line per interval on stdout
/// (the client's side of the flow; the receiver's intervals are in --json),
/// at the boundaries the sampler keeps, the last partial one included.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    intervals: bool,
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
            intervals: p.interval_ms.is_some() && !json,
            direction: p.direction,
            rr: p.mode == Mode::Rr,
        }
    }

    fn live(&self) -> Option<Live> {
        if self.bar.is_none() && !self.intervals {
            return None;
        }
        let (bar, intervals) = (self.bar.clone(), self.intervals);
        let (direction, rr) = (self.direction, self.rr);
        // (time, count) at the last tick; the count when the open interval
        // began.
        let state = Mutex::new(((Duration::ZERO, 0u64), 0u64));
        let unit = if rr { "transactions" } else { "bytes" };
        let text = move |r: f64| {
            if rr {
                format!("{r:.0} transactions/s")
            } else {
                format!("{:.2} Gbit/s", r * 8.0 / 1e9)
            }
        };
        Some(Box::new(
            move |send: &Meter, recv: &Meter, elapsed: Duration, beat: Beat| {
                let now = match (rr, direction) {
                    (true, _) => send.datagrams.load(std::sync::atomic::Ordering::Relaxed),
                    (false, Direction::Up) => send.bytes(),
                    (false, Direction::Down) => recv.bytes(),
                    (false, Direction::Both) => send.bytes() + recv.bytes(),
                };
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                match beat {
                    Beat::Tick => {
                        if let Some(b) = &bar {
                            let dt = elapsed.saturating_sub(st.0 .0).as_secs_f64();
                            let rate = if dt > 0.0 {
                                now.saturating_sub(st.0 .1) as f64 / dt
                            } else {
                                0.0
                            };
                            b.set_message(format!("{}, {now} {unit}", text(rate)));
                            b.tick();
                        }
                        st.0 = (elapsed, now);
                    }
                    Beat::Measure => st.1 = now,
                    Beat::Interval { start, end } if intervals => {
                        let moved = now.saturating_sub(st.1);
                        let secs = end.saturating_sub(start).as_secs_f64();
                        let rate = if secs > 0.0 { moved as f64 / secs } else { 0.0 };
                        let line = format!(
                            "  {:>7.2}-{:<7.2} s  {:>14} {unit}  {}\n",
                            start.as_secs_f64(),
                            end.as_secs_f64(),
                            moved,
                            text(rate)
                        );
                        match &bar {
                            Some(b) => b.suspend(|| print_stdout(&line)),
                            None => print_stdout(&line),
                        }
                        .ok();
                        st.1 = now;
                    }
                    Beat::Interval { .. } => {}
                }
            },
        ))
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
