//! `sonda listen [HOST] PORT` / `-U PATH`: one client by default, or many
//! with `-k`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::config::listen::{Listen, Service};
use crate::config::Target;
use crate::engine::addr::Acl;
use crate::engine::hub::{self, Chunk, Hub};
use crate::engine::relay::{
    echo, relay, socket_to_output, Counters, Direction, End, Output, RecvError, Stats,
};
use crate::engine::socket::listen_inet;
use crate::engine::tls;
use crate::engine::transport::tcp::TcpListener;
use crate::engine::transport::{unix, Conn, Listener, Peer, Stream};
use crate::error::{Error, Exit};
use crate::{report, signals};

use super::forward::{self, Upstream};
use super::progress::Progress;

pub fn run(cfg: Listen) -> anyhow::Result<Exit> {
    // PEM files are read, or the certificate made, before the port opens.
    let tls = cfg.tls.as_ref().map(tls::Server::new).transpose()?;
    let upstream = cfg
        .forward
        .as_ref()
        .map(|f| Upstream::new(f, cfg.family, &cfg.sock))
        .transpose()?;
    let listener = open(&cfg)?;
    report::info(format!("listening on {}", listener.local()));
    if let (Some(server), Some(opts)) = (&tls, &cfg.tls) {
        let fp = &server.fingerprint;
        if server.ephemeral {
            // The one way a client can trust this certificate: say it
            // unless -q.
            report::warn(format!(
                "TLS: ephemeral self-signed certificate for {}, SHA-256 {fp} (connect --tls --pin-sha256 {fp})",
                opts.names.join(", ")
            ));
        } else {
            report::info(format!("TLS: certificate SHA-256 {fp}"));
        }
    }
    let tls = tls.map(Arc::new);
    if cfg.keep_open {
        serve_forever(listener, Arc::new(cfg), tls, upstream.map(Arc::new))
    } else {
        serve_one(listener, &cfg, tls.as_deref(), upstream.as_ref())
    }
}

/// A handshake with no limit given still ends: a client that connects and
/// says nothing holds its slot for ever otherwise.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server side of TLS on an accepted client; -v names what was
/// negotiated and the client certificate's subject.
fn secure(server: &tls::Server, stream: Conn, cfg: &Listen) -> Result<Conn, Error> {
    let peer = stream.peer().to_string();
    let timeout = cfg.relay.idle_timeout.or(Some(HANDSHAKE_TIMEOUT));
    let secured = server
        .accept(stream, timeout)
        .map_err(|f| f.into_error(&format!("TLS with {peer}"), timeout, false))?;
    if report::verbose() {
        let session = secured.session();
        let suite = session
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        let version = session
            .protocol_version()
            .map(|v| format!("{}, ", tls::report::version_name(v)))
            .unwrap_or_default();
        let alpn = session
            .alpn_protocol()
            .map(|p| format!(", ALPN {}", String::from_utf8_lossy(p)))
            .unwrap_or_default();
        let client = tls::peer_subject(&session)
            .map(|s| format!(", client certificate {s}"))
            .unwrap_or_default();
        report::info(format!("TLS with {peer}: {version}{suite}{alpn}{client}"));
    }
    Ok(secured)
}

/// The listening socket of the configured transport.
fn open(cfg: &Listen) -> Result<Arc<dyn Listener>, Error> {
    match &cfg.target {
        Target::Inet { host, port } => Ok(Arc::new(TcpListener::new(listen_inet(
            host.as_deref(),
            *port,
            cfg.family,
            &cfg.sock,
            cfg.backlog,
        )?))),
        Target::Unix(addr) => {
            let bound = unix::bind(
                addr,
                cfg.kind.socket_type(),
                cfg.unix_bind,
                &crate::engine::diag::SocketTable,
            )?;
            Ok(Arc::new(bound.listen(cfg.backlog)?))
        }
    }
}

/// accept(2) until a client the ACL admits; denied peers are closed unread.
/// With `stop`, gives up as soon as a client thread has ended the listener,
/// with the outcome it left.
fn accept_admitted(
    listener: &dyn Listener,
    acl: &Acl,
    stop: Option<&Stop>,
) -> anyhow::Result<Accepted> {
    loop {
        let stream = match listener.accept() {
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
        // A Unix peer has no address to decide on; -U rules ACLs out.
        if stream.peer().ip().is_none_or(|ip| acl.permits(ip)) {
            return Ok(Accepted::Client(stream));
        }
        report::info(format!(
            "denied connection from {} (--allow/--deny)",
            stream.peer()
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
    Client(Conn),
    /// A client thread ended the listener (stdout closed or failed).
    Stopped(anyhow::Result<Exit>),
}

/// The way a `-k` client thread ends the whole listener: it leaves the
/// outcome here and shuts the listening socket down, which wakes the
/// accept loop (accept(2) fails at once) to return the outcome to `main`,
/// so the exit status has one road out of the process.
struct Stop {
    outcome: Mutex<Option<anyhow::Result<Exit>>>,
    listener: Arc<dyn Listener>,
}

impl Stop {
    fn new(listener: Arc<dyn Listener>) -> Stop {
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
            self.listener.stop();
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

fn serve_one(
    listener: Arc<dyn Listener>,
    cfg: &Listen,
    tls: Option<&tls::Server>,
    upstream: Option<&Upstream>,
) -> anyhow::Result<Exit> {
    let stream = match accept_admitted(&*listener, &cfg.acl, None)? {
        Accepted::Client(stream) => stream,
        Accepted::Stopped(outcome) => return outcome,
    };
    // One client only: stop accepting, so later connects are refused.
    drop(listener);
    announce(stream.peer());
    let stream = match tls {
        Some(server) => secure(server, stream, cfg)?,
        None => stream,
    };
    stream
        .configure(&cfg.sock)
        .map_err(|e| Error::io("set socket options", &e))?;
    let counters = Counters::new();
    if let Some(up) = upstream {
        forward::serve(&stream, up, cfg.relay.idle_timeout, &counters)?;
        return Ok(Exit::Success);
    }
    let bar = cfg.progress.then(|| Progress::start(&counters));
    let result = match cfg.service {
        Service::Relay | Service::Forward => relay(&stream, &cfg.relay, &counters),
        Service::Echo | Service::Sink => {
            serve_unattended(&*stream, cfg, &counters).map(|()| End::Done)
        }
    };
    drop(bar);
    report_end(stream.peer(), &counters.stats(), cfg.service);
    if result? == End::PeerClosed && cfg.notice_peer_eof {
        super::notice_peer_eof();
    }
    Ok(Exit::Success)
}

/// `--echo` and `--sink` on one client, in the calling thread.
fn serve_unattended(stream: &dyn Stream, cfg: &Listen, counters: &Counters) -> Result<(), Error> {
    let idle = cfg.relay.idle_timeout;
    match cfg.service {
        Service::Echo => echo(stream, counters, CLIENT_BUF, idle),
        _ => match socket_to_output(stream, counters, Output::Discard, CLIENT_BUF, idle, None) {
            Ok(()) => Ok(()),
            Err(RecvError::Socket(e) | RecvError::Stdout(e)) => Err(e),
            Err(RecvError::StdoutClosed) => Ok(()),
        },
    }
}

/// "connection from ...", with a Unix client's credentials (SO_PEERCRED).
fn announce(peer: &Peer) {
    if !report::verbose() {
        return;
    }
    match peer.credentials() {
        Some(cred) => report::info(format!("connection from {cred}")),
        None => report::info(format!("connection from {peer}")),
    }
}

fn report_end(peer: &Peer, stats: &Stats, service: Service) {
    // A forwarded client's line names its upstream (cmd/forward.rs).
    if !report::verbose() || service == Service::Forward {
        return;
    }
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
fn serve_forever(
    listener: Arc<dyn Listener>,
    cfg: Arc<Listen>,
    tls: Option<Arc<tls::Server>>,
    upstream: Option<Arc<Upstream>>,
) -> anyhow::Result<Exit> {
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
    let stop = Arc::new(Stop::new(listener.clone()));
    let totals = Arc::new(Totals::default());
    {
        // Ctrl-C ends -k: say what was served before exiting 130.
        let (totals, active) = (totals.clone(), active.clone());
        signals::at_interrupt(move || {
            report::info(format!(
                "interrupted: served {} ({} still connected); received {}, sent {}",
                report::count(totals.clients.load(Ordering::Relaxed), "client", "clients"),
                active.load(Ordering::Relaxed),
                report::bytes(totals.received.load(Ordering::Relaxed)),
                report::bytes(totals.sent.load(Ordering::Relaxed))
            ))
        });
    }
    loop {
        let stream = match accept_admitted(&*listener, &cfg.acl, Some(&stop))? {
            Accepted::Client(stream) => stream,
            Accepted::Stopped(outcome) => return outcome,
        };
        if active.load(Ordering::SeqCst) >= cfg.max_conns {
            report::info(format!(
                "refused connection from {}: {} already (--max-conns)",
                stream.peer(),
                report::count(cfg.max_conns as u64, "client", "clients")
            ));
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        // Join the fan-out before the connection is announced, so every
        // byte of stdin read after the announcement reaches this client.
        let queue = if sends { hub.join(id) } else { None };
        announce(stream.peer());
        let peer = stream.peer().to_string();
        let client = Client {
            id,
            stream,
            cfg: cfg.clone(),
            hub: sends.then(|| hub.clone()),
            queue,
            active: active.clone(),
            totals: totals.clone(),
            stop: stop.clone(),
            tls: tls.clone(),
            upstream: upstream.clone(),
        };
        let spawned = thread::Builder::new()
            .name(format!("client-{id}"))
            .stack_size(CLIENT_STACK)
            .spawn(move || client.serve());
        if let Err(e) = spawned {
            hub.leave(id);
            active.fetch_sub(1, Ordering::SeqCst);
            report::warn(format!("serve {peer}: {}", crate::error::describe(&e)));
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
    stream: Conn,
    cfg: Arc<Listen>,
    /// The fan-out, when stdin is relayed to clients.
    hub: Option<Arc<Hub>>,
    /// This client's share of stdin; `None` once stdin has ended.
    queue: Option<Receiver<Chunk>>,
    active: Arc<AtomicUsize>,
    totals: Arc<Totals>,
    stop: Arc<Stop>,
    /// The handshake to run first, in this client's thread.
    tls: Option<Arc<tls::Server>>,
    /// `--to`: where this client is forwarded.
    upstream: Option<Arc<Upstream>>,
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
        if self.upstream.is_none() {
            // A forwarded session ends its streams itself (a reset, when
            // it failed, must not become a FIN here).
            let _ = self.stream.shutdown(std::net::Shutdown::Both);
        }
        self.active.fetch_sub(1, Ordering::SeqCst);
        let stats = counters.stats();
        self.totals.clients.fetch_add(1, Ordering::Relaxed);
        self.totals
            .received
            .fetch_add(stats.received, Ordering::Relaxed);
        self.totals.sent.fetch_add(stats.sent, Ordering::Relaxed);
        report_end(self.stream.peer(), &stats, self.cfg.service);
        match result {
            Ok(()) => {}
            // stdout is shared by every client: once it is gone, nothing
            // more can be delivered, so the listener ends.
            Err(RecvError::StdoutClosed) => self.stop.end(Ok(Exit::Success)),
            Err(RecvError::Stdout(e)) => self.stop.end(Err(e.into())),
            // An operator of a forwarder wants to see its failures.
            Err(RecvError::Socket(e)) if self.upstream.is_some() => report::warn(e),
            Err(RecvError::Socket(e)) => report::info(e),
        }
    }

    fn serve_inner(&mut self, counters: &Arc<Counters>) -> Result<(), RecvError> {
        if let Some(server) = self.tls.take() {
            // A failed handshake ends this client only.
            self.stream =
                secure(&server, self.stream.clone(), &self.cfg).map_err(RecvError::Socket)?;
        }
        let fail = |e: std::io::Error| RecvError::Socket(Error::io("set socket options", &e));
        self.stream.configure(&self.cfg.sock).map_err(fail)?;
        match (self.cfg.service, &self.upstream) {
            (_, Some(up)) => {
                return forward::serve(&self.stream, up, self.cfg.relay.idle_timeout, counters)
                    .map_err(RecvError::Socket)
            }
            (Service::Echo | Service::Sink, None) => {
                return serve_unattended(&*self.stream, &self.cfg, counters)
                    .map_err(RecvError::Socket)
            }
            _ => {}
        }
        if self.hub.is_some() {
            let queue = self.queue.take();
            let sock = self.stream.clone();
            let (counters, half_close) = (counters.clone(), self.cfg.relay.half_close);
            thread::Builder::new()
                .name(format!("client-{}-tx", self.id))
                .stack_size(CLIENT_STACK)
                .spawn(move || hub::write_queue(&*sock, queue, &counters, half_close))
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
        socket_to_output(&*self.stream, counters, out, CLIENT_BUF, idle, None)
    }
}
