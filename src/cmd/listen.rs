//! `sonda listen [HOST] PORT`: one client by default, or many with `-k`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::cli::ListenArgs;
use crate::engine::addr::{resolve, Acl};
use crate::engine::hub::{self, Chunk, Hub};
use crate::engine::relay::{
    echo, relay, socket_to_output, Counters, Direction, End, Output, RecvError, RelayOpts, Stats,
};
use crate::engine::socket::{
    configure_accepted, display_addr, listen_on, listen_wildcard, SocketOpts,
};
use crate::error::{Error, Exit};
use crate::{report, signals};

use super::progress::Progress;
use super::Global;

/// What is done with each client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    Relay,
    Echo,
    Sink,
}

struct Config {
    service: Service,
    relay: RelayOpts,
    sock: SocketOpts,
    acl: Acl,
    max_conns: usize,
    progress: bool,
    /// Say so when the client's EOF ends a terminal session.
    notice_peer_eof: bool,
}

/// Clients a `-k` listener serves at once unless --max-conns says.
const DEFAULT_MAX_CONNS: u32 = 100;

pub fn run(global: &Global, args: ListenArgs) -> anyhow::Result<Exit> {
    if let (Some(n), false) = (args.max_conns, args.keep_open) {
        return Err(Error::usage(
            format!("--max-conns '{n}'"),
            "applies only with -k/--keep-open (without it one client is served)",
        )
        .into());
    }
    let (host, port) = super::split_addr(&args.addr)?;
    let mut sock = args.socket.to_opts();
    sock.reuseaddr = !args.no_reuseaddr;
    sock.reuseport = args.reuseport;
    let listener = match host {
        None => listen_wildcard(port, global.family, &sock, args.backlog)?,
        Some(host) => {
            let addr = resolve(&host, port, global.family)?[0];
            let v6only = (global.family == crate::engine::addr::Family::V6).then_some(true);
            listen_on(addr, &sock, args.backlog, v6only)?
        }
    };
    if let Ok(local) = listener.local_addr() {
        report::info(format!(
            "listening on {}",
            listening_addr(&listener, &local)
        ));
    }
    let cfg = Config {
        service: if args.echo {
            Service::Echo
        } else if args.sink {
            Service::Sink
        } else {
            Service::Relay
        },
        relay: args.relay.to_opts(),
        sock,
        acl: Acl {
            allow: args.allow,
            deny: args.deny,
        },
        max_conns: args.max_conns.unwrap_or(DEFAULT_MAX_CONNS) as usize,
        progress: args.progress && !args.keep_open,
        notice_peer_eof: args.relay.ends_at_peer_eof_for_terminal(),
    };
    if args.keep_open {
        serve_forever(listener, Arc::new(cfg))
    } else {
        serve_one(listener, &cfg)
    }
}

fn listening_addr(listener: &TcpListener, local: &SocketAddr) -> String {
    let dual = local.is_ipv6()
        && local.ip().is_unspecified()
        && socket2::SockRef::from(listener)
            .only_v6()
            .map(|v| !v)
            .unwrap_or(false);
    if dual {
        format!("{} (IPv4 and IPv6)", display_addr(local))
    } else {
        display_addr(local)
    }
}

/// accept(2) until a client the ACL admits; denied peers are closed unread.
/// With `stop`, gives up as soon as a client thread has ended the listener,
/// with the outcome it left.
fn accept_admitted(
    listener: &TcpListener,
    acl: &Acl,
    stop: Option<&Stop>,
) -> anyhow::Result<Accepted> {
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                if let Some(outcome) = stop.and_then(Stop::take) {
                    return Ok(Accepted::Stopped(outcome));
                }
                if transient_accept_error(&e) {
                    continue;
                }
                return Err(Error::io("accept", &e).into());
            }
        };
        if acl.permits(peer.ip()) {
            return Ok(Accepted::Client(stream, peer));
        }
        report::info(format!(
            "denied connection from {} (--allow/--deny)",
            display_addr(&peer)
        ));
    }
}

fn transient_accept_error(e: &std::io::Error) -> bool {
    match e.raw_os_error() {
        Some(libc::EINTR) | Some(libc::ECONNABORTED) | Some(libc::EPROTO) => true,
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM) => {
            // Out of descriptors or memory: back off instead of spinning;
            // the queue is served again once clients close.
            report::warn(format!("accept: {}; retrying", crate::error::describe(e)));
            thread::sleep(Duration::from_millis(50));
            true
        }
        _ => false,
    }
}

enum Accepted {
    Client(TcpStream, SocketAddr),
    /// A client thread ended the listener (stdout closed or failed).
    Stopped(anyhow::Result<Exit>),
}

/// The way a `-k` client thread ends the whole listener: it leaves the
/// outcome here and shuts the listening socket down, which wakes the
/// accept loop (accept(2) fails at once) to return the outcome to `main`,
/// so the exit status has one road out of the process.
struct Stop {
    outcome: Mutex<Option<anyhow::Result<Exit>>>,
    listener: Arc<TcpListener>,
}

impl Stop {
    fn new(listener: Arc<TcpListener>) -> Stop {
        Stop {
            outcome: Mutex::new(None),
            listener,
        }
    }

    /// Ends the listener with `outcome`, unless another client already did.
    fn end(&self, outcome: anyhow::Result<Exit>) {
        let mut slot = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(outcome);
            // shutdown(SHUT_RD) of a listening socket stops it listening;
            // a blocked accept(2) returns EINVAL.
            let _ = socket2::SockRef::from(&*self.listener).shutdown(std::net::Shutdown::Read);
        }
    }

    /// The outcome a client thread left, if one has ended the listener.
    fn take(&self) -> Option<anyhow::Result<Exit>> {
        self.outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

fn serve_one(listener: TcpListener, cfg: &Config) -> anyhow::Result<Exit> {
    let (stream, peer) = match accept_admitted(&listener, &cfg.acl, None)? {
        Accepted::Client(stream, peer) => (stream, peer),
        Accepted::Stopped(outcome) => return outcome,
    };
    // One client only: stop accepting, so later connects are refused.
    drop(listener);
    report::info(format!("connection from {}", display_addr(&peer)));
    configure_accepted(&stream, &cfg.sock).map_err(|e| Error::io("set socket options", &e))?;
    let counters = Counters::new();
    let bar = cfg.progress.then(|| Progress::start(&counters));
    let result = match cfg.service {
        Service::Relay => relay(stream, peer, &cfg.relay, &counters),
        Service::Echo | Service::Sink => {
            serve_unattended(&stream, peer, cfg, &counters).map(|()| End::Done)
        }
    };
    drop(bar);
    report_end(peer, &counters.stats(), cfg.service);
    if result? == End::PeerClosed && cfg.notice_peer_eof {
        super::notice_peer_eof();
    }
    Ok(Exit::Success)
}

/// `--echo` and `--sink` on one client, in the calling thread.
fn serve_unattended(
    stream: &TcpStream,
    peer: SocketAddr,
    cfg: &Config,
    counters: &Counters,
) -> Result<(), Error> {
    let idle = cfg.relay.idle_timeout;
    match cfg.service {
        Service::Echo => echo(stream, peer, counters, CLIENT_BUF, idle),
        _ => match socket_to_output(stream, peer, counters, Output::Discard, CLIENT_BUF, idle) {
            Ok(()) => Ok(()),
            Err(RecvError::Socket(e) | RecvError::Stdout(e)) => Err(e),
            Err(RecvError::StdoutClosed) => Ok(()),
        },
    }
}

fn report_end(peer: SocketAddr, stats: &Stats, service: Service) {
    if !report::verbose() {
        return;
    }
    let peer = display_addr(&peer);
    let took = report::duration(stats.elapsed);
    match service {
        Service::Sink => report::info(format!(
            "connection from {peer} closed: received {} in {took}",
            report::bytes(stats.received)
        )),
        _ => report::info(format!(
            "connection from {peer} closed: received {}, sent {} in {took}",
            report::bytes(stats.received),
            report::bytes(stats.sent)
        )),
    }
}

/// `-k`: accept forever, one thread per client (two when stdin is relayed).
fn serve_forever(listener: TcpListener, cfg: Arc<Config>) -> anyhow::Result<Exit> {
    let hub = Hub::new();
    let sends = cfg.service == Service::Relay && cfg.relay.direction != Direction::RecvOnly;
    if sends {
        let hub = hub.clone();
        thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                if let Err(e) = hub.pump_stdin() {
                    report::warn(format!("read stdin: {}", crate::error::describe(&e)));
                }
            })
            .map_err(|e| Error::io("start stdin thread", &e))?;
    }
    let active = Arc::new(AtomicUsize::new(0));
    let next_id = AtomicU64::new(0);
    let listener = Arc::new(listener);
    let stop = Arc::new(Stop::new(listener.clone()));
    let totals = Arc::new(Totals::default());
    {
        // Ctrl-C ends -k: say what was served before exiting 130.
        let (totals, active) = (totals.clone(), active.clone());
        signals::at_interrupt(move || {
            report::info(format!(
                "interrupted: served {} clients ({} still connected); received {}, sent {}",
                totals.clients.load(Ordering::Relaxed),
                active.load(Ordering::Relaxed),
                report::bytes(totals.received.load(Ordering::Relaxed)),
                report::bytes(totals.sent.load(Ordering::Relaxed))
            ))
        });
    }
    loop {
        let (stream, peer) = match accept_admitted(&listener, &cfg.acl, Some(&stop))? {
            Accepted::Client(stream, peer) => (stream, peer),
            Accepted::Stopped(outcome) => return outcome,
        };
        if active.load(Ordering::SeqCst) >= cfg.max_conns {
            report::info(format!(
                "refused connection from {}: {} clients already (--max-conns)",
                display_addr(&peer),
                cfg.max_conns
            ));
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        // Join the fan-out before the connection is announced, so every
        // byte of stdin read after the announcement reaches this client.
        let queue = if sends { hub.join(id) } else { None };
        report::info(format!("connection from {}", display_addr(&peer)));
        let client = Client {
            id,
            stream,
            peer,
            cfg: cfg.clone(),
            hub: sends.then(|| hub.clone()),
            queue,
            active: active.clone(),
            totals: totals.clone(),
            stop: stop.clone(),
        };
        let spawned = thread::Builder::new()
            .name(format!("client-{id}"))
            .stack_size(CLIENT_STACK)
            .spawn(move || client.serve());
        if let Err(e) = spawned {
            hub.leave(id);
            active.fetch_sub(1, Ordering::SeqCst);
            report::warn(format!(
                "serve {}: {}",
                display_addr(&peer),
                crate::error::describe(&e)
            ));
        }
    }
}

/// Client threads keep their buffers on the heap; a small stack lets a
/// thousand clients cost little.
const CLIENT_STACK: usize = 128 * 1024;
/// Read size per client: with many clients, memory is clients x this (a
/// thousand clients stay under 16 MiB), and the one-session relay's larger
/// buffer buys little when they share stdout.
const CLIENT_BUF: usize = 16 * 1024;

struct Client {
    id: u64,
    stream: TcpStream,
    peer: SocketAddr,
    cfg: Arc<Config>,
    /// The fan-out, when stdin is relayed to clients.
    hub: Option<Arc<Hub>>,
    /// This client's share of stdin; `None` once stdin has ended.
    queue: Option<Receiver<Chunk>>,
    active: Arc<AtomicUsize>,
    totals: Arc<Totals>,
    stop: Arc<Stop>,
}

/// What a `-k` listener has served, for its summary when interrupted.
#[derive(Default)]
struct Totals {
    clients: AtomicU64,
    received: AtomicU64,
    sent: AtomicU64,
}

impl Client {
    fn serve(mut self) {
        let counters = Counters::new();
        let result = self.serve_inner(&counters);
        // Free the slot as soon as the client is done, whatever stdin does.
        if let Some(hub) = &self.hub {
            hub.leave(self.id);
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        self.active.fetch_sub(1, Ordering::SeqCst);
        let stats = counters.stats();
        self.totals.clients.fetch_add(1, Ordering::Relaxed);
        self.totals
            .received
            .fetch_add(stats.received, Ordering::Relaxed);
        self.totals.sent.fetch_add(stats.sent, Ordering::Relaxed);
        report_end(self.peer, &stats, self.cfg.service);
        match result {
            Ok(()) => {}
            // stdout is shared by every client: once it is gone, nothing
            // more can be delivered, so the listener ends.
            Err(RecvError::StdoutClosed) => self.stop.end(Ok(Exit::Success)),
            Err(RecvError::Stdout(e)) => self.stop.end(Err(e.into())),
            Err(RecvError::Socket(e)) => report::info(e),
        }
    }

    fn serve_inner(&mut self, counters: &Arc<Counters>) -> Result<(), RecvError> {
        let fail = |e: std::io::Error| RecvError::Socket(Error::io("set socket options", &e));
        configure_accepted(&self.stream, &self.cfg.sock).map_err(fail)?;
        match self.cfg.service {
            Service::Echo | Service::Sink => {
                return serve_unattended(&self.stream, self.peer, &self.cfg, counters)
                    .map_err(RecvError::Socket)
            }
            Service::Relay => {}
        }
        if self.hub.is_some() {
            let queue = self.queue.take();
            let sock = self.stream.try_clone().map_err(fail)?;
            let (counters, half_close) = (counters.clone(), self.cfg.relay.half_close);
            thread::Builder::new()
                .name(format!("client-{}-tx", self.id))
                .stack_size(CLIENT_STACK)
                .spawn(move || hub::write_queue(&sock, queue, &counters, half_close))
                .map_err(fail)?;
        }
        let out = match self.cfg.relay.direction {
            Direction::SendOnly => Output::Discard,
            _ => Output::Stdout,
        };
        // The idle limit is watched here, on the counters both directions
        // share; when it ends the client, `serve` shuts the socket down,
        // which also releases a writer blocked on a client that stopped
        // reading.
        let idle = self.cfg.relay.idle_timeout;
        socket_to_output(&self.stream, self.peer, counters, out, CLIENT_BUF, idle)
    }
}
