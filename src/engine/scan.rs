//! `connect -z`: many non-blocking connects in flight at once, watched with
//! epoll(7), one event loop per CPU over an interleaved share of the ports.
//!
//! TCP: a port that accepts is open, one that answers RST is closed, one
//! that does not answer within the timeout is filtered. A connect from the
//! port to itself (loopback simultaneous open, when the kernel picks the
//! scanned port as the source port) is not an open port. UDP: an empty
//! datagram; ICMP port unreachable means closed, a reply means open, silence
//! means open|filtered (as nmap says).
//!
//! A target is a whole socket address, so an IPv6 scope id (`fe80::1%eth0`)
//! reaches connect(2): without it a link-local address is EINVAL.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Open,
    Closed,
    Filtered,
    /// UDP without an answer.
    OpenFiltered,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Closed => "closed",
            State::Filtered => "filtered",
            State::OpenFiltered => "open|filtered",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct PortResult {
    /// The address scanned, with its port and scope id.
    pub addr: SocketAddr,
    pub port: u16,
    pub state: State,
    /// Time to the answer (open or closed).
    pub rtt: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the soft
/// limit in force afterwards.
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit on a valid rlimit struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
        lim.rlim_cur
    }
}

/// Scans `ports` on every address of `addrs` (their ports are ignored)
/// with at most `concurrency` probes in flight over `loops` event loops;
/// results by address in the order given, then in port order.
pub fn scan(
    addrs: &[SocketAddr],
    ports: &[u16],
    proto: Proto,
    timeout: Duration,
    concurrency: usize,
    loops: usize,
) -> io::Result<Vec<PortResult>> {
    let total = addrs.len() * ports.len();
    let loops = loops.clamp(1, total.max(1));
    let per_loop = (concurrency / loops).max(1);
    let mut shares: Vec<Vec<SocketAddr>> = vec![Vec::new(); loops];
    let targets = addrs.iter().flat_map(|a| {
        ports.iter().map(move |&p| {
            let mut t = *a;
            t.set_port(p);
            t
        })
    });
    for (i, t) in targets.enumerate() {
        shares[i % loops].push(t);
    }
    let handles: Vec<_> = shares
        .into_iter()
        .map(|share| thread::spawn(move || event_loop(&share, proto, timeout, per_loop)))
        .collect();
    let mut all = Vec::with_capacity(total);
    for h in handles {
        let part = h
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("a scan thread panicked")))?;
        all.extend(part);
    }
    let rank = |a: &SocketAddr| addrs.iter().position(|x| x.ip() == a.ip()).unwrap_or(0);
    all.sort_by_key(|r| (rank(&r.addr), r.port));
    Ok(all)
}

struct Probe {
    addr: SocketAddr,
    sock: OwnedFd,
    started: Instant,
}

fn event_loop(
    targets: &[SocketAddr],
    proto: Proto,
    timeout: Duration,
    width: usize,
) -> io::Result<Vec<PortResult>> {
    // SAFETY: epoll_create1 returns a fresh descriptor, owned at once.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ep is a fresh descriptor nobody else owns.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    let mut out = Vec::with_capacity(targets.len());
    let mut inflight: HashMap<u64, Probe> = HashMap::with_capacity(width);
    // Probes in start order: with one timeout for all, the front expires first.
    let mut order: VecDeque<(Instant, u64)> = VecDeque::with_capacity(width);
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut next = 0usize;
    let mut token = 0u64;
    loop {
        while inflight.len() < width && next < targets.len() {
            let addr = targets[next];
            next += 1;
            match start(addr, proto) {
                Ok(Started::Done(state)) => out.push(PortResult {
                    addr,
                    port: addr.port(),
                    state,
                    rtt: Some(Duration::ZERO),
                }),
                Ok(Started::Pending(sock)) => {
                    token += 1;
                    let interest = match proto {
                        Proto::Tcp => libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP,
                        Proto::Udp => libc::EPOLLIN | libc::EPOLLERR,
                    };
                    let mut ev = libc::epoll_event {
                        events: interest as u32,
                        u64: token,
                    };
                    // SAFETY: both descriptors are open; ev is valid.
                    let rc = unsafe {
                        libc::epoll_ctl(
                            ep.as_raw_fd(),
                            libc::EPOLL_CTL_ADD,
                            sock.as_raw_fd(),
                            &mut ev,
                        )
                    };
                    if rc != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    let started = Instant::now();
                    inflight.insert(
                        token,
                        Probe {
                            addr,
                            sock,
                            started,
                        },
                    );
                    order.push_back((started + timeout, token));
                }
                Err(e) if is_resource_error(&e) => {
                    // Out of descriptors or ephemeral ports: wait for the
                    // probes in flight, then try this port again.
                    next -= 1;
                    if inflight.is_empty() {
                        return Err(e);
                    }
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if inflight.is_empty() && next >= targets.len() {
            return Ok(out);
        }
        let wait = order
            .front()
            .map(|(d, _)| d.saturating_duration_since(Instant::now()))
            .unwrap_or(timeout);
        let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: events is valid for its length.
        let n = unsafe {
            libc::epoll_wait(ep.as_raw_fd(), events.as_mut_ptr(), events.len() as i32, ms)
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in &events[..n as usize] {
            let tok = ev.u64;
            if let Some(probe) = inflight.remove(&tok) {
                let state = finish(&probe, proto);
                out.push(PortResult {
                    addr: probe.addr,
                    port: probe.addr.port(),
                    state,
                    rtt: Some(probe.started.elapsed()),
                });
            }
        }
        let now = Instant::now();
        while let Some(&(deadline, tok)) = order.front() {
            if !inflight.contains_key(&tok) {
                order.pop_front();
                continue;
            }
            if deadline > now {
                break;
            }
            order.pop_front();
            if let Some(probe) = inflight.remove(&tok) {
                out.push(PortResult {
                    addr: probe.addr,
                    port: probe.addr.port(),
                    state: match proto {
                        Proto::Tcp => State::Filtered,
                        Proto::Udp => State::OpenFiltered,
                    },
                    rtt: None,
                });
            }
        }
    }
}

fn is_resource_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::EADDRNOTAVAIL) | Some(libc::ENOBUFS)
    )
}

enum Started {
    Done(State),
    Pending(OwnedFd),
}

/// socket(2) and a non-blocking connect(2) (TCP), or connect and an empty
/// datagram (UDP).
fn start(addr: SocketAddr, proto: Proto) -> io::Result<Started> {
    let (ty, p) = match proto {
        Proto::Tcp => (Type::STREAM, Protocol::TCP),
        Proto::Udp => (Type::DGRAM, Protocol::UDP),
    };
    let sock = Socket::new(Domain::for_address(addr), ty.nonblocking(), Some(p))?;
    match sock.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            return Ok(Started::Done(State::Closed))
        }
        Err(e) if is_resource_error(&e) => return Err(e),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENETUNREACH)
                    | Some(libc::EHOSTUNREACH)
                    | Some(libc::EACCES)
                    | Some(libc::EPERM)
            ) =>
        {
            return Ok(Started::Done(State::Filtered))
        }
        Err(e) => return Err(e),
    }
    if proto == Proto::Udp {
        match sock.send(&[]) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                return Ok(Started::Done(State::Closed))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Started::Pending(sock.into()))
}

/// The outcome of a probe epoll reported ready.
fn finish(probe: &Probe, proto: Proto) -> State {
    let fd: RawFd = probe.sock.as_raw_fd();
    // SAFETY: a borrowed view of a descriptor we own; not closed through it.
    let sock = std::mem::ManuallyDrop::new(unsafe { Socket::from_raw_fd(fd) });
    match proto {
        Proto::Tcp => match sock.take_error() {
            Ok(None) => {
                // Connected: unless to itself (simultaneous open on loopback).
                // Address and port only: getsockname may add a scope id.
                let local = sock.local_addr().ok().and_then(|a| a.as_socket());
                if local.is_some_and(|l| l.ip() == probe.addr.ip() && l.port() == probe.addr.port())
                {
                    State::Closed
                } else {
                    State::Open
                }
            }
            Ok(Some(e)) if e.raw_os_error() == Some(libc::ECONNREFUSED) => State::Closed,
            _ => State::Filtered,
        },
        Proto::Udp => {
            let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 16];
            match sock.recv(&mut buf) {
                Ok(_) => State::Open,
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => State::Closed,
                Err(_) => State::OpenFiltered,
            }
        }
    }
}
