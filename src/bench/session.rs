//! One test, on either side: set up the data channels the client and server
//! agreed on, run the workers, and exchange the figures.
//!
//! The exchange is symmetric: each side says `SendDone` when its senders have
//! finished (UDP receivers then drain what is still in flight), then
//! `Report` when its receivers have; each waits for the peer's two messages.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use socket2::{Socket, Type};

use super::control::{Control, Msg};
use super::output::Latency;
use super::rr::{self, RrShared};
use super::sampler::{recv_flow, Clock, Live, Sampler, Tally};
use super::{
    current_cpu, pin_to, stream, udp, Direction, Flow, Meter, Mode, Params, Proto, SideReport,
};
use crate::engine::connect::{connect_any, ConnectOpts};
use crate::engine::diag::SocketTable;
use crate::engine::multicast;
use crate::engine::poll::{self, Events};
use crate::engine::socket::{bound, Proto as SockProto, SocketOpts};
use crate::engine::transport::unix::{self, peer_cred, BindOpts, Bound, Kind};
use crate::engine::transport::{Cred, UnixAddr};
use crate::error::{Error, Exit};
use crate::report;

/// What each data connection carries, sent by the client as its first byte.
const TAG_UP: u8 = 0;
const TAG_DOWN: u8 = 1;
const TAG_RR: u8 = 2;
const HELLO: &[u8] = b"SONDA-BENCH-HELLO";
const ACK: &[u8] = b"SONDA-BENCH-ACK";
/// The UDP receive buffer asked for unless --rcvbuf: measured here, 4 MiB cut
/// loss at full speed from about 7 % to 0.25 %.
const UDP_RCVBUF: usize = 4 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// The data sockets of one test on one side. Byte streams of either
/// transport are held as `Socket`s, so the workers are the same for both.
#[derive(Default)]
pub struct Channels {
    up_stream: Vec<Socket>,
    down_stream: Vec<Socket>,
    rr_stream: Vec<Socket>,
    up_udp: Vec<UdpSocket>,
    down_udp: Vec<UdpSocket>,
    rr_udp: Vec<UdpSocket>,
}

/// Once the control connection is up, everything that fails is exit 1,
/// timeouts included: the peer answered, but not as a working sonda bench
/// peer (DESIGN, Settled details).
fn data_fail(what: &str, e: &std::io::Error) -> Error {
    let why = match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            "nothing moved in time (the peer stopped)".to_string()
        }
        _ => crate::error::describe(e),
    };
    Error::new(Exit::Failure, format!("bench data channel: {what}"), why)
}

/// How often a wait for the client's data sockets looks whether the client
/// has gone away (it closed the control connection): a vanished client
/// frees the server at once, not after the control timeout.
const CLIENT_CHECK: Duration = Duration::from_millis(100);
/// The longest a --bytes test runs.
pub const BYTES_LIMIT: Duration = Duration::from_secs(3600);

fn client_gone() -> Error {
    Error::new(
        Exit::Failure,
        "bench data channel",
        "the client closed the control connection",
    )
}

/// A TCP listener for data connections, with this side's IP options.
fn data_listener(addr: SocketAddr, sock: &SocketOpts) -> std::io::Result<TcpListener> {
    let opts = SocketOpts {
        reuseaddr: true,
        ..sock.clone()
    };
    let s = bound(addr, SockProto::Tcp, &opts, None)?;
    s.listen(128)?;
    Ok(s.into())
}

/// A UDP data socket bound to `addr`, with this side's IP options.
fn udp_with(addr: SocketAddr, sock: &SocketOpts) -> std::io::Result<UdpSocket> {
    bound(addr, SockProto::Udp, sock, None).map(UdpSocket::from)
}

/// `addr` with another port; an IPv6 link-local address keeps its scope,
/// which a bare IpAddr would lose (bind and connect then fail, EINVAL).
fn at_port(mut addr: SocketAddr, port: u16) -> SocketAddr {
    addr.set_port(port);
    addr
}

fn wildcard_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::from([0u8; 4]),
        IpAddr::V6(_) => IpAddr::from([0u16; 8]),
    }
}

/// A `--multicast` receiver: bound to the group itself (so it takes that
/// group's datagrams and nothing else) on `port` (0: one of its own),
/// joined on the interface that holds `local`, the address the client
/// reached, with IP_MULTICAST_ALL off. SO_REUSEADDR lets a further
/// receiver on this host bind the same group and port; each gets a copy.
fn group_receiver(
    group: IpAddr,
    port: u16,
    local: SocketAddr,
    sock: &SocketOpts,
) -> Result<UdpSocket, Error> {
    let ifindex = multicast::holding(local).ok_or_else(|| {
        Error::new(
            Exit::Failure,
            "bench data channel",
            format!("no interface holds {}, to join {group} on", local.ip()),
        )
    })?;
    // A link-local group (ff02::/16) is bound with the scope it is joined on.
    let at = match group {
        IpAddr::V6(g) => SocketAddr::V6(std::net::SocketAddrV6::new(g, port, 0, ifindex)),
        IpAddr::V4(_) => SocketAddr::new(group, port),
    };
    let shared = SocketOpts {
        reuseaddr: true,
        ..sock.clone()
    };
    let s =
        udp_with(at, &shared).map_err(|e| data_fail(&format!("bind {group} port {port}"), &e))?;
    let s = Socket::from(s);
    multicast::only_joined_groups(&s).map_err(|e| data_fail("set IP_MULTICAST_ALL", &e))?;
    multicast::join(
        &s,
        &multicast::Join {
            group,
            iface: Some(crate::engine::socket::interface_name(ifindex)),
            source: None,
        },
    )?;
    Ok(UdpSocket::from(s))
}

fn udp_socket_count(p: &Params) -> (usize, usize, usize) {
    let n = p.streams as usize;
    match p.mode {
        Mode::Rr => (0, 0, n),
        Mode::Stream => (
            if p.sends_up() { n } else { 0 },
            if p.sends_down() { n } else { 0 },
            0,
        ),
    }
}

/// What the server knows of its control connection, which decides where
/// the data sockets go.
#[derive(Clone, Debug)]
pub enum Via {
    /// Over IP: this side's address of the control connection (its port
    /// aside), an IPv6 scope id included.
    Inet(SocketAddr),
    /// Over a Unix socket: the client's credentials (SO_PEERCRED), which
    /// every data connection must share.
    Unix { client: Option<Cred> },
}

/// The abstract names a server's Unix data listener takes:
/// `@sonda-bench-PID-N`.
pub const DATA_SOCKET_PREFIX: &str = "sonda-bench-";

/// Server: binds the data sockets where `via` says, tells the client
/// where, and waits (bounded) for the client's side of them.
pub fn server_channels(
    p: &Params,
    via: &Via,
    sock: &SocketOpts,
    control: &mut Control,
    timeout: Duration,
) -> Result<Channels, Error> {
    let mut ch = Channels::default();
    match (p.proto, via) {
        (Proto::Tcp, Via::Inet(local)) => {
            let listener =
                data_listener(at_port(*local, 0), sock).map_err(|e| data_fail("bind", &e))?;
            let port = listener
                .local_addr()
                .map_err(|e| data_fail("bind", &e))?
                .port();
            control.send(&Msg::Accept {
                data_ports: vec![port],
                data_socket: None,
            })?;
            let admit = |_: &Socket| true;
            accept_streams(
                &Socket::from(listener),
                p,
                control,
                timeout,
                &admit,
                &mut ch,
            )?;
        }
        (Proto::Unix, Via::Unix { client }) => {
            let listener = unix_data_listener(p)?;
            control.send(&Msg::Accept {
                data_ports: Vec::new(),
                data_socket: Some(listener.addr().to_string()),
            })?;
            let admit = |s: &Socket| same_process(client.as_ref(), peer_cred(s).as_ref());
            accept_streams(listener.socket(), p, control, timeout, &admit, &mut ch)?;
        }
        (Proto::Udp, Via::Inet(local)) => {
            udp_server_channels(p, *local, sock, control, timeout, &mut ch)?
        }
        // Params::check_transport refuses these before any channel opens.
        _ => {
            return Err(Error::new(
                Exit::Failure,
                "bench data channel",
                "the test's transport is not the control connection's",
            ))
        }
    }
    Ok(ch)
}

/// The server's UDP sockets on `ip`, announced; a server-to-client socket
/// waits (bounded) for the client's hello to learn where to send.
fn udp_server_channels(
    p: &Params,
    local: SocketAddr,
    sock: &SocketOpts,
    control: &mut Control,
    timeout: Duration,
    ch: &mut Channels,
) -> Result<(), Error> {
    let (up, down, rrn) = udp_socket_count(p);
    let bind = || udp_with(at_port(local, 0), sock).map_err(|e| data_fail("bind", &e));
    for i in 0..up {
        let s = match p.multicast {
            Some(group) => {
                let port = p.group_ports.get(i).copied().unwrap_or(0);
                group_receiver(group, port, local, sock)?
            }
            None => bind()?,
        };
        udp::set_rcvbuf(&s, p.rcvbuf.unwrap_or(UDP_RCVBUF));
        ch.up_udp.push(s);
    }
    for _ in 0..down {
        let s = bind()?;
        if let Some(n) = p.sndbuf {
            udp::set_sndbuf(&s, n);
        }
        ch.down_udp.push(s);
    }
    for _ in 0..rrn {
        ch.rr_udp.push(bind()?);
    }
    let ports: Vec<u16> = ch
        .up_udp
        .iter()
        .chain(&ch.down_udp)
        .chain(&ch.rr_udp)
        .map(|s| s.local_addr().map(|a| a.port()).unwrap_or(0))
        .collect();
    control.send(&Msg::Accept {
        data_ports: ports,
        data_socket: None,
    })?;
    // A server-to-client socket learns where to send from the
    // client's hello, and acknowledges it.
    let deadline = Instant::now() + timeout;
    for s in &ch.down_udp {
        s.set_read_timeout(Some(CLIENT_CHECK))
            .map_err(|e| data_fail("setup", &e))?;
        let mut buf = [0u8; 64];
        loop {
            let (n, from) = match s.recv_from(&mut buf) {
                Ok(got) => got,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if control.peer_closed() {
                        return Err(client_gone());
                    }
                    if Instant::now() >= deadline {
                        return Err(Error::new(
                            Exit::Failure,
                            "bench data channel",
                            "the client sent no UDP hello in time",
                        ));
                    }
                    continue;
                }
                Err(e) => return Err(data_fail("wait for the client's hello", &e)),
            };
            if &buf[..n] == HELLO {
                s.connect(from).map_err(|e| data_fail("connect", &e))?;
                let _ = s.send(ACK);
                break;
            }
        }
        s.set_read_timeout(None)
            .map_err(|e| data_fail("setup", &e))?;
    }
    Ok(())
}

/// How many stream connections a test opens.
fn stream_count(p: &Params) -> usize {
    let per = (p.sends_up() as usize + p.sends_down() as usize).max(1);
    p.streams as usize * per
}

/// The server's Unix data listener, bound to an abstract name of its own.
///
/// Not the control listener: the next client's control connection may
/// already be queued there, and must not be taken for a data connection.
/// Abstract, not a file: there is nothing to create in a directory the
/// server may not write to, and nothing to remove, as the name goes with
/// the socket however the process ends. The price is that the data
/// connections need the server's network namespace, which a client that
/// reached a path in another one does not have. The backlog holds every
/// connection of the test, so the client's connects never wait.
fn unix_data_listener(p: &Params) -> Result<Bound, Error> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut last = None;
    // A name another process holds (by chance or on purpose) is skipped.
    for _ in 0..16 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{DATA_SOCKET_PREFIX}{}-{n}", std::process::id());
        let addr = UnixAddr::Abstract(name.into_bytes());
        match unix::bind(&addr, Type::STREAM, BindOpts::default(), &SocketTable) {
            Ok(bound) => {
                let backlog = stream_count(p).min(i32::MAX as usize) as i32;
                bound
                    .socket()
                    .listen(backlog)
                    .map_err(|e| data_fail("listen", &e))?;
                return Ok(bound);
            }
            Err(e) if e.exit == Exit::AddrInUse => last = Some(e),
            Err(e) => {
                return Err(Error::new(
                    Exit::Failure,
                    "bench data channel",
                    e.to_string(),
                ))
            }
        }
    }
    let why = last.map_or_else(String::new, |e| e.to_string());
    Err(Error::new(Exit::Failure, "bench data channel: bind", why))
}

/// Whether a Unix data connection comes from the process that holds the
/// control connection. Another local process could find the abstract name
/// (in /proc/net/unix) and connect first; its connection is not the
/// client's, and is closed unread. Without credentials on either side
/// there is nothing to compare, and the connection is taken.
fn same_process(client: Option<&Cred>, peer: Option<&Cred>) -> bool {
    match (client, peer) {
        (Some(c), Some(p)) => c.pid == p.pid && c.uid == p.uid,
        _ => true,
    }
}

/// Accepts the client's stream connections (TCP or Unix), each announced
/// by its tag byte, until every one the test needs is there (bounded).
/// A connection `admit` refuses is closed and not counted.
fn accept_streams(
    listener: &Socket,
    p: &Params,
    control: &Control,
    timeout: Duration,
    admit: &dyn Fn(&Socket) -> bool,
    ch: &mut Channels,
) -> Result<(), Error> {
    let expected = stream_count(p);
    let deadline = Instant::now() + timeout;
    let mut taken = 0;
    while taken < expected {
        let mut s = accept_until(listener, deadline, control)?;
        if !admit(&s) {
            let who = peer_cred(&s).map_or_else(|| "?".to_string(), |c| c.pid.to_string());
            report::info(format!(
                "bench data channel: closed a connection from pid {who}, not the client's process"
            ));
            continue;
        }
        taken += 1;
        s.set_read_timeout(Some(timeout))
            .map_err(|e| data_fail("setup", &e))?;
        let mut tag = [0u8; 1];
        s.read_exact(&mut tag)
            .map_err(|e| data_fail("read tag", &e))?;
        s.set_read_timeout(None)
            .map_err(|e| data_fail("setup", &e))?;
        tune_stream(&s, p);
        match tag[0] {
            TAG_UP => ch.up_stream.push(s),
            TAG_DOWN => ch.down_stream.push(s),
            TAG_RR => ch.rr_stream.push(s),
            t => {
                return Err(Error::new(
                    Exit::Failure,
                    "bench data channel",
                    format!("unknown tag {t}"),
                ))
            }
        }
    }
    Ok(())
}

fn accept_until(listener: &Socket, deadline: Instant, control: &Control) -> Result<Socket, Error> {
    loop {
        if control.peer_closed() {
            return Err(client_gone());
        }
        let left = deadline
            .saturating_duration_since(Instant::now())
            .min(CLIENT_CHECK);
        if deadline <= Instant::now() {
            return Err(Error::new(
                Exit::Failure,
                "bench data channel",
                "the client did not open its data connections in time",
            ));
        }
        // In steps of at most CLIENT_CHECK, to look at the control
        // connection in between.
        let readable = poll::ready(listener.as_fd(), Events::POLLIN, Some(left))
            .map_err(|e| data_fail("wait for a data connection", &e))?;
        if readable {
            return listener
                .accept()
                .map(|(s, _)| s)
                .map_err(|e| data_fail("accept", &e));
        }
    }
}

fn tune_stream(sock: &Socket, p: &Params) {
    if p.mode == Mode::Rr && p.proto == Proto::Tcp {
        let _ = sock.set_nodelay(true);
    }
    if let Some(n) = p.sndbuf {
        let _ = sock.set_send_buffer_size(n);
    } else if p.proto == Proto::Unix && p.mode == Mode::Stream {
        unix::widen_send_buffer(sock);
    }
    if let Some(n) = p.rcvbuf {
        let _ = sock.set_recv_buffer_size(n);
    }
}

/// Client over IP: opens its side of the data channels the server
/// announced (for a Unix socket test, see [`client_unix_channels`]).
pub fn client_channels(
    p: &Params,
    server: SocketAddr,
    ports: &[u16],
    sock: &SocketOpts,
    timeout: Duration,
) -> Result<Channels, Error> {
    let mut ch = Channels::default();
    match p.proto {
        Proto::Unix => {
            return Err(Error::new(
                Exit::Failure,
                "bench data channel",
                "a Unix socket test has no data ports",
            ))
        }
        Proto::Tcp => {
            let port = *ports.first().ok_or_else(|| {
                Error::new(
                    Exit::Failure,
                    "bench control",
                    "the server announced no data port",
                )
            })?;
            let addr = at_port(server, port);
            open_streams(
                p,
                || {
                    let opts = ConnectOpts {
                        timeout: Some(timeout),
                        sock: sock.clone(),
                        ..ConnectOpts::default()
                    };
                    connect_any(&[addr], &opts, |_| {})
                        .map(|(s, _, _)| Socket::from(s))
                        .map_err(|e| Error::new(Exit::Failure, "bench data channel", e.to_string()))
                },
                &mut ch,
            )?;
        }
        Proto::Udp => {
            let (up, down, rrn) = udp_socket_count(p);
            if ports.len() != up + down + rrn {
                return Err(Error::new(
                    Exit::Failure,
                    "bench control",
                    "the server announced the wrong number of data ports",
                ));
            }
            let open = |port: u16| -> Result<UdpSocket, Error> {
                let s = udp_with(SocketAddr::new(wildcard_like(server.ip()), 0), sock)
                    .map_err(|e| data_fail("bind", &e))?;
                s.connect(at_port(server, port))
                    .map_err(|e| data_fail("connect", &e))?;
                Ok(s)
            };
            // To a group: out of the interface toward the server, with
            // --ttl as the multicast TTL (else 1, one link) and loopback on,
            // set before connect(2), which picks the route.
            let open_up = |port: u16| -> Result<UdpSocket, Error> {
                let Some(group) = p.multicast else {
                    return open(port);
                };
                let s = udp_with(SocketAddr::new(wildcard_like(group), 0), sock)
                    .map_err(|e| data_fail("bind", &e))?;
                let s = Socket::from(s);
                multicast::sender(&s, group, multicast::toward(server), sock.ttl, true)?;
                s.connect(&SocketAddr::new(group, port).into())
                    .map_err(|e| match e.raw_os_error() {
                        Some(libc::ENETUNREACH) if group.is_ipv6() && server.ip().is_loopback() => {
                            data_fail("connect", &e).with_hint(
                                "IPv6 multicast does not pass over loopback (lo has no multicast route): measure between two hosts, --server and --client",
                            )
                        }
                        _ => data_fail("connect", &e),
                    })?;
                Ok(UdpSocket::from(s))
            };
            let mut it = ports.iter();
            for port in it.by_ref().take(up) {
                let s = open_up(*port)?;
                if let Some(n) = p.sndbuf {
                    udp::set_sndbuf(&s, n);
                }
                ch.up_udp.push(s);
            }
            for port in it.by_ref().take(down) {
                let s = open(*port)?;
                udp::set_rcvbuf(&s, p.rcvbuf.unwrap_or(UDP_RCVBUF));
                hello(&s, timeout)?;
                ch.down_udp.push(s);
            }
            for port in it.take(rrn) {
                ch.rr_udp.push(open(*port)?);
            }
        }
    }
    Ok(ch)
}

/// Client over a Unix socket: checks the data socket the server announced
/// (`announced`, from its Accept), then opens the data connections there.
pub fn client_unix_channels(
    p: &Params,
    announced: Option<&str>,
    timeout: Duration,
) -> Result<Channels, Error> {
    let addr = check_data_socket(announced)?;
    let mut ch = Channels::default();
    open_streams(
        p,
        || {
            unix::connect_socket(&addr, Kind::Stream, Some(timeout), &SocketTable).map_err(|e| {
                // Exit 1 like any failure once the control exchange is up.
                Error::new(
                    Exit::Failure,
                    format!("bench data channel: {}", e.what),
                    e.why,
                )
            })
        },
        &mut ch,
    )?;
    Ok(ch)
}

/// The data socket a server announced, if it is one a sonda server makes:
/// an abstract name `@sonda-bench-PID-N`, at most 107 bytes. Anything else
/// is refused before any connect: a server that could name any socket
/// would have this client connect to it and write there (a daemon's
/// control socket, say) on the server's word.
pub fn check_data_socket(announced: Option<&str>) -> Result<UnixAddr, Error> {
    let fail = |why: String| Error::new(Exit::Failure, "bench control", why);
    let Some(text) = announced else {
        return Err(fail("the server announced no data socket".to_string()));
    };
    let shown = || crate::report::escape_preview(text.as_bytes(), 120);
    let expected = || {
        fail(format!(
            "the server announced the data socket \"{}\", not an abstract name @{DATA_SOCKET_PREFIX}PID-N",
            shown()
        ))
    };
    let Some(rest) = text
        .strip_prefix('@')
        .and_then(|name| name.strip_prefix(DATA_SOCKET_PREFIX))
    else {
        return Err(expected());
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match rest.split_once('-') {
        Some((pid, n)) if digits(pid) && digits(n) => {}
        _ => return Err(expected()),
    }
    UnixAddr::parse(std::ffi::OsStr::new(text)).map_err(|why| {
        fail(format!(
            "the server announced the data socket \"{}\": {why}",
            shown()
        ))
    })
}

/// Opens the client's stream connections (TCP or Unix) with `connect`, each
/// announced by its tag byte.
fn open_streams(
    p: &Params,
    connect: impl Fn() -> Result<Socket, Error>,
    ch: &mut Channels,
) -> Result<(), Error> {
    let open = |tag: u8| -> Result<Socket, Error> {
        let mut s = connect()?;
        tune_stream(&s, p);
        s.write_all(&[tag]).map_err(|e| data_fail("send tag", &e))?;
        Ok(s)
    };
    for _ in 0..p.streams {
        match p.mode {
            Mode::Rr => ch.rr_stream.push(open(TAG_RR)?),
            Mode::Stream => {
                if p.sends_up() {
                    ch.up_stream.push(open(TAG_UP)?);
                }
                if p.sends_down() {
                    ch.down_stream.push(open(TAG_DOWN)?);
                }
            }
        }
    }
    Ok(())
}

/// Sends hellos every 50 ms until the server acknowledges (bounded).
fn hello(s: &UdpSocket, timeout: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    s.set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| data_fail("setup", &e))?;
    let mut buf = [0u8; 64];
    loop {
        if Instant::now() >= deadline {
            return Err(Error::new(
                Exit::Failure,
                "bench data channel",
                "the server did not acknowledge the UDP hello",
            ));
        }
        let _ = s.send(HELLO);
        if let Ok(n) = s.recv(&mut buf) {
            if &buf[..n] == ACK {
                return s.set_read_timeout(None).map_err(|e| data_fail("setup", &e));
            }
        }
    }
}

/// Runs the test on this side and returns (this side's report, each
/// peer's). A server has one peer; a `--multicast` client has a control
/// connection to each receiver, which report in the order given.
pub fn run(
    role: Role,
    p: &Params,
    ch: Channels,
    controls: &mut [Control],
    control_timeout: Duration,
    live: Option<Live>,
    tally: &Tally,
) -> Result<(SideReport, Vec<SideReport>), Error> {
    let epoch = Instant::now();
    // A --bytes test has no set length, but still an end: a peer that
    // asks for a petabyte at 1 bit/s must not hold this side for ever.
    let deadline = epoch
        + if p.bytes.is_some() {
            BYTES_LIMIT
        } else {
            p.total()
        };
    let measure_from = epoch + p.omit();
    let send_meter = Arc::new(Meter::new(epoch));
    let recv_meter = Arc::new(Meter::new(epoch));
    let peer_done = Arc::new(AtomicBool::new(false));
    let cpu = match role {
        Role::Client => p.pin.map(|x| x.0),
        Role::Server => p.pin.map(|x| x.1),
    };
    let (sends, receives) = match role {
        Role::Client => ((ch.up_stream, ch.up_udp), (ch.down_stream, ch.down_udp)),
        Role::Server => ((ch.down_stream, ch.down_udp), (ch.up_stream, ch.up_udp)),
    };
    let streams_sent = (sends.0.len() + sends.1.len()) as u16;
    let streams_received = (receives.0.len() + receives.1.len()) as u16;
    let budget = |i: usize, n: usize| {
        p.bytes
            .map(|b| b / n as u64 + if i == 0 { b % n as u64 } else { 0 })
    };
    let give_up = deadline + control_timeout + Duration::from_secs(5);

    let mut senders: Vec<JoinHandle<std::io::Result<()>>> = Vec::new();
    let mut receivers: Vec<JoinHandle<std::io::Result<()>>> = Vec::new();
    // The client's rr streams, one each, readable while the test runs.
    let mut rr_parts: Vec<RrShared> = Vec::new();
    let last_cpu: Arc<Mutex<Option<usize>>> = Arc::default();
    let spawn_fail = |e: std::io::Error| Error::io("start bench worker", &e);

    // A peer that stops reading must not hold a sender in write(2) for
    // ever: the same bound as the receivers' reads.
    let recv_timeout = p.total() + control_timeout;
    let io_bound = if p.bytes.is_some() {
        BYTES_LIMIT
    } else {
        recv_timeout
    };
    let n = sends.0.len().max(1);
    for (i, s) in sends.0.into_iter().enumerate() {
        let (m, size, b) = (send_meter.clone(), p.size, budget(i, n));
        senders.push(
            thread::Builder::new()
                .spawn(move || {
                    pin_to(cpu);
                    stream::send(&s, size, deadline, b, io_bound, &m)
                })
                .map_err(spawn_fail)?,
        );
    }
    let n = sends.1.len().max(1);
    for (i, s) in sends.1.into_iter().enumerate() {
        let (m, size, gso, rate, b) = (
            send_meter.clone(),
            p.size,
            p.gso,
            // Never 0: a rate below one bit/s per stream still paces.
            p.rate_bps.map(|r| (r / n as u64).max(1)),
            budget(i, n),
        );
        senders.push(
            thread::Builder::new()
                .spawn(move || {
                    pin_to(cpu);
                    udp::send(&s, size, gso, rate, deadline, b, &m)
                })
                .map_err(spawn_fail)?,
        );
    }
    // Each stream receiver says when it has seen its EOF; `cut` ends the
    // reads of those still waiting once the drain after the test is over.
    let (finished_tx, finished) = mpsc::channel::<()>();
    let mut cut: Vec<Socket> = Vec::new();
    for s in receives.0 {
        let (m, size, lowat) = (recv_meter.clone(), p.size, p.rcvlowat);
        let _ = s.set_read_timeout(Some(io_bound));
        if let Ok(dup) = s.try_clone() {
            cut.push(dup);
        }
        let finished_tx = finished_tx.clone();
        receivers.push(
            thread::Builder::new()
                .spawn(move || {
                    pin_to(cpu);
                    let r = stream::receive(&s, size, lowat, &m);
                    let _ = finished_tx.send(());
                    r
                })
                .map_err(spawn_fail)?,
        );
    }
    drop(finished_tx);
    for s in receives.1 {
        let (m, gro, done) = (recv_meter.clone(), p.gso, peer_done.clone());
        let give_up = if p.bytes.is_some() {
            epoch + BYTES_LIMIT
        } else {
            give_up
        };
        receivers.push(
            thread::Builder::new()
                .spawn(move || {
                    pin_to(cpu);
                    udp::receive(&s, gro, &done, give_up, &m)
                })
                .map_err(spawn_fail)?,
        );
    }
    // rr: the client's transactions are its "sends"; the server echoes.
    for s in ch.rr_stream {
        let _ = s.set_read_timeout(Some(io_bound));
        let _ = s.set_write_timeout(Some(io_bound));
        let part = RrShared::default();
        if role == Role::Client {
            rr_parts.push(part.clone());
        }
        let (m, size, last) = (send_meter.clone(), p.size, last_cpu.clone());
        let h = thread::Builder::new()
            .spawn(move || {
                pin_to(cpu);
                let r = match role {
                    Role::Client => rr::stream_client(&s, size, measure_from, deadline, &m, &part),
                    Role::Server => rr::stream_server(&s, size, &m),
                };
                *last.lock().unwrap_or_else(|e| e.into_inner()) = current_cpu();
                r
            })
            .map_err(spawn_fail)?;
        match role {
            Role::Client => senders.push(h),
            Role::Server => receivers.push(h),
        }
    }
    for s in ch.rr_udp {
        let part = RrShared::default();
        if role == Role::Client {
            rr_parts.push(part.clone());
        }
        let (m, size, last, done) = (
            send_meter.clone(),
            p.size,
            last_cpu.clone(),
            peer_done.clone(),
        );
        let h = thread::Builder::new()
            .spawn(move || {
                pin_to(cpu);
                let r = match role {
                    Role::Client => rr::udp_client(
                        &s,
                        size,
                        measure_from,
                        deadline,
                        Duration::from_secs(1),
                        &m,
                        &part,
                    ),
                    Role::Server => rr::udp_server(&s, &done, &m),
                };
                *last.lock().unwrap_or_else(|e| e.into_inner()) = current_cpu();
                r
            })
            .map_err(spawn_fail)?;
        match role {
            Role::Client => senders.push(h),
            Role::Server => receivers.push(h),
        }
    }

    let sampler = Sampler::start(
        recv_meter.clone(),
        send_meter.clone(),
        Clock {
            epoch,
            measure_from,
            duration: p.bytes.is_none().then(|| p.duration()),
            interval: p.interval_ms.map(Duration::from_millis),
            tick: live.as_ref().map(|_| Duration::from_millis(100)),
        },
        live,
    );
    tally.attach(
        &sampler,
        send_meter.clone(),
        recv_meter.clone(),
        measure_from,
        (streams_sent, streams_received),
        rr_parts.clone(),
    );

    let send_result = join_all(senders);
    let sent = send_flow(&send_meter, streams_sent, p);
    for control in controls.iter_mut() {
        control.send(&Msg::SendDone {
            report: SideReport {
                sent: sent.clone(),
                ..SideReport::default()
            },
        })?;
    }
    let wait = if p.bytes.is_some() {
        BYTES_LIMIT
    } else {
        p.total()
    } + control_timeout;
    let mut peers_sent = Vec::with_capacity(controls.len());
    for control in controls.iter_mut() {
        control.set_timeout(wait)?;
        match control.recv()? {
            Msg::SendDone { report } => peers_sent.push(report.sent),
            other => return Err(unexpected(&other)),
        }
    }
    peer_done.store(true, Ordering::Relaxed);
    if p.bytes.is_none() {
        drain(&finished, &cut, control_timeout / DRAIN_SHARE);
    }
    let recv_result = join_all(receivers);
    let (snapshot, intervals) = sampler.stop();
    send_result.map_err(|e| {
        let err = data_fail("send", &e);
        if e.raw_os_error() == Some(libc::EMSGSIZE) && p.proto == Proto::Udp {
            err.with_hint("a datagram of --size does not fit the path MTU: 1472 fits IPv4 over a 1500-byte MTU, IPv6 takes at most 1452 (or --no-gso lets the kernel fragment)")
        } else {
            err
        }
    })?;
    recv_result.map_err(|e| data_fail("receive", &e))?;

    let latency = (!rr_parts.is_empty()).then(|| Latency::from_parts(&rr_parts, p.duration()));
    let mine = SideReport {
        sent,
        received: recv_flow(
            &recv_meter,
            snapshot,
            streams_received,
            p.bytes.is_none().then(|| p.total()),
        ),
        intervals,
        latency,
        cpu: *last_cpu.lock().unwrap_or_else(|e| e.into_inner()),
    };
    for control in controls.iter_mut() {
        control.send(&Msg::Report {
            report: mine.clone(),
        })?;
    }
    let mut peers = Vec::with_capacity(controls.len());
    for (control, sent) in controls.iter_mut().zip(peers_sent) {
        control.set_timeout(control_timeout)?;
        let mut peer = match control.recv()? {
            Msg::Report { report } => report,
            other => return Err(unexpected(&other)),
        };
        peer.sent = sent;
        peers.push(peer);
    }
    Ok((mine, peers))
}

/// What share of the control timeout a timed test's stream receivers wait,
/// after the peer's senders have finished, for the bytes still queued. A
/// sender's send queue can hold megabytes that a tiny receive window lets
/// through at a few KB per delayed ACK (measured here: 880 KB at 87 KB/s
/// with --rcvbuf 8965); waiting for all of it would outlast the peer's
/// patience for the report, and those bytes are past the test anyway.
const DRAIN_SHARE: u32 = 4;

/// Waits up to `bound` for every stream receiver's EOF, then ends the reads
/// of those still waiting (shutdown(SHUT_RD) wakes a blocked read with 0):
/// what had arrived is what they counted.
fn drain(finished: &mpsc::Receiver<()>, cut: &[Socket], bound: Duration) {
    let until = Instant::now() + bound;
    let mut left = cut.len();
    while left > 0 {
        let wait = until.saturating_duration_since(Instant::now());
        if finished.recv_timeout(wait).is_err() {
            break;
        }
        left -= 1;
    }
    if left > 0 {
        report::warn(format!(
            "bench: data was still arriving {bound:.1?} after the test ended; \
             counted what had arrived"
        ));
        for s in cut {
            let _ = s.shutdown(std::net::Shutdown::Read);
        }
    }
}

fn unexpected(m: &Msg) -> Error {
    let name = match m {
        Msg::Hello { .. } => "hello",
        Msg::Accept { .. } => "accept",
        Msg::Reject { .. } => "reject",
        Msg::Start => "start",
        Msg::SendDone { .. } => "send-done",
        Msg::Report { .. } => "report",
        Msg::Error { .. } => "error",
    };
    Error::new(
        Exit::Failure,
        "bench control",
        format!("unexpected '{name}' message from the peer"),
    )
}

fn join_all(handles: Vec<JoinHandle<std::io::Result<()>>>) -> std::io::Result<()> {
    let mut first = Ok(());
    for h in handles {
        let r = h
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("a bench worker panicked")));
        if first.is_ok() {
            first = r;
        }
    }
    first
}

fn send_flow(m: &Meter, streams: u16, p: &Params) -> Flow {
    let bytes = m.bytes();
    let wall = m.wall_ns.load(Ordering::Relaxed) as f64 / 1e9 / streams.max(1) as f64;
    Flow {
        bytes,
        total_bytes: bytes,
        seconds: if p.bytes.is_some() {
            wall
        } else {
            p.total().as_secs_f64().min(wall.max(1e-9))
        },
        calls: m.calls.load(Ordering::Relaxed),
        datagrams: m.datagrams.load(Ordering::Relaxed),
        reordered: 0,
        cpu_seconds: m.cpu_ns.load(Ordering::Relaxed) as f64 / 1e9,
        wall_seconds: wall,
        streams,
    }
}

/// The direction of a test, for messages.
pub fn describe(p: &Params) -> String {
    let up = match p.multicast {
        Some(g) => format!("client -> group {g} -> server"),
        None => "client -> server".to_string(),
    };
    let dir = match p.direction {
        Direction::Up => up.as_str(),
        Direction::Down => "server -> client",
        Direction::Both => "both ways",
    };
    let dir = if p.mode == Mode::Rr {
        String::new()
    } else {
        format!(" {dir}")
    };
    format!(
        "{} {}{}, {} stream{}",
        p.proto.name(),
        match p.mode {
            Mode::Stream => "stream",
            Mode::Rr => "rr",
        },
        dir,
        p.streams,
        if p.streams == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sonda_data_socket_name_is_accepted() {
        let ok = check_data_socket(Some("@sonda-bench-4242-0")).unwrap();
        assert_eq!(ok, UnixAddr::Abstract(b"sonda-bench-4242-0".to_vec()));
        let long = format!("@sonda-bench-1-{}", "9".repeat(120));
        for bad in [
            None,
            Some(""),
            Some("@"),
            Some("/var/run/docker.sock"),
            Some("sonda-bench-1-2"),
            Some("@sonda-bench-"),
            Some("@sonda-bench-1"),
            Some("@sonda-bench-1-"),
            Some("@sonda-bench--2"),
            Some("@sonda-bench-1-2/../x"),
            Some("@sonda-bench-1-2\n"),
            Some("@other-1-2"),
            Some(long.as_str()),
        ] {
            let e = check_data_socket(bad).unwrap_err();
            assert_eq!(e.exit, Exit::Failure, "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_refused_name_is_shown_escaped() {
        let e = check_data_socket(Some("@x\x1b[2J")).unwrap_err();
        assert!(!e.to_string().contains('\x1b'), "{e}");
    }

    #[test]
    fn unix_stream_senders_get_a_larger_send_buffer() {
        use std::os::unix::net::UnixStream;
        let p = Params {
            proto: Proto::Unix,
            ..Params::example()
        };
        let (a, _b) = UnixStream::pair().unwrap();
        let a = Socket::from(a);
        let before = a.send_buffer_size().unwrap();
        tune_stream(&a, &p);
        // SO_SNDBUF is capped by net.core.wmem_max unless forced (root).
        let cap = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
            .ok()
            .and_then(|t| t.trim().parse::<usize>().ok())
            .unwrap_or(unix::STREAM_SNDBUF);
        let now = a.send_buffer_size().unwrap();
        assert!(now >= unix::STREAM_SNDBUF.min(cap), "{before} -> {now}");
        // rr moves a few bytes at a time: the kernel's default stays.
        let (c, _d) = UnixStream::pair().unwrap();
        let c = Socket::from(c);
        let default = c.send_buffer_size().unwrap();
        tune_stream(
            &c,
            &Params {
                mode: Mode::Rr,
                ..p.clone()
            },
        );
        assert_eq!(c.send_buffer_size().unwrap(), default);
    }

    #[test]
    fn data_connections_come_from_the_clients_process() {
        let cred = |pid, uid| Cred {
            pid,
            uid,
            gid: 0,
            command: None,
        };
        assert!(same_process(Some(&cred(10, 1)), Some(&cred(10, 1))));
        assert!(!same_process(Some(&cred(10, 1)), Some(&cred(11, 1))));
        assert!(!same_process(Some(&cred(10, 1)), Some(&cred(10, 2))));
        assert!(same_process(None, Some(&cred(11, 1))));
    }
}
