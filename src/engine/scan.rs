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
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use socket2::{SockAddr, Socket};

use super::connect::{source_for, ConnectOpts};
use super::poll::timeout_until;
use super::socket::{apply, bind_error, display_addr, inet_socket, Proto, ShownIp};
use crate::error::Error;

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

/// Raises RLIMIT_NOFILE's soft limit to the hard limit (getrlimit(2),
/// setrlimit(2)); returns the soft limit in force afterwards, 1024 (the
/// usual default) if it cannot be read.
pub fn raise_nofile() -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

/// Scans `ports` on every address of `addrs` (their ports are ignored)
/// with at most `concurrency` probes in flight over `loops` event loops;
/// results by address in the order given, then in port order. Every probe
/// socket takes the options and source address of `local` (its timeout
/// is `timeout`'s).
pub fn scan(
    addrs: &[SocketAddr],
    ports: &[u16],
    proto: Proto,
    timeout: Duration,
    local: &ConnectOpts,
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
        .map(|share| {
            let local = local.clone();
            thread::spawn(move || event_loop(&share, proto, timeout, &local, per_loop))
        })
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
    sock: Socket,
    started: Instant,
}

fn event_loop(
    targets: &[SocketAddr],
    proto: Proto,
    timeout: Duration,
    local: &ConnectOpts,
    width: usize,
) -> io::Result<Vec<PortResult>> {
    let ep = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let mut out = Vec::with_capacity(targets.len());
    let mut inflight: HashMap<u64, Probe> = HashMap::with_capacity(width);
    // Probes in start order: with one timeout for all, the front expires first.
    let mut order: VecDeque<(Instant, u64)> = VecDeque::with_capacity(width);
    let mut events = vec![EpollEvent::empty(); 256];
    let mut next = 0usize;
    let mut token = 0u64;
    loop {
        while inflight.len() < width && next < targets.len() {
            let addr = targets[next];
            next += 1;
            match start(addr, proto, local) {
                Ok(Started::Done(state)) => out.push(PortResult {
                    addr,
                    port: addr.port(),
                    state,
                    rtt: Some(Duration::ZERO),
                }),
                Ok(Started::Pending(sock)) => {
                    token += 1;
                    let interest = match proto {
                        Proto::Tcp => {
                            EpollFlags::EPOLLOUT | EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP
                        }
                        Proto::Udp => EpollFlags::EPOLLIN | EpollFlags::EPOLLERR,
                    };
                    ep.add(&sock, EpollEvent::new(interest, token))?;
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
        // Until the oldest probe expires (the timeout itself when none is
        // in flight: a port waiting for a free descriptor).
        let until = order
            .front()
            .map(|&(d, _)| d)
            .unwrap_or_else(|| Instant::now() + timeout);
        let n = match ep.wait(&mut events, timeout_until(Some(until))) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        for ev in &events[..n] {
            let tok = ev.data();
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
    Pending(Socket),
}

/// socket(2) and a non-blocking connect(2) (TCP), or connect and an empty
/// datagram (UDP).
fn start(addr: SocketAddr, proto: Proto, local: &ConnectOpts) -> io::Result<Started> {
    let sock = inet_socket(&addr, proto, true)?;
    apply(&sock, &local.sock)?;
    bind_source(&sock, &addr, local)?;
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
    Ok(Started::Pending(sock))
}

fn bind_source(sock: &Socket, addr: &SocketAddr, local: &ConnectOpts) -> io::Result<()> {
    if let Some(src) = source_for(addr, local) {
        // Every probe from one fixed source port: each goes to another
        // destination, so SO_REUSEADDR lets them share it.
        if src.port() != 0 {
            sock.set_reuse_address(true)?;
        }
        sock.bind(&SockAddr::from(src))?;
    }
    Ok(())
}

/// Makes one probe socket for `addr` as the scan will, and drops it: an
/// option the kernel refuses or a source that cannot be bound is then
/// one clear error (exit 1, or 5 for the bind) before any port is tried.
pub fn preflight(addr: &SocketAddr, proto: Proto, local: &ConnectOpts) -> Result<(), Error> {
    let what = format!("scan {}", ShownIp(addr));
    let sock = inet_socket(addr, proto, true).map_err(|e| Error::io(&what, &e))?;
    apply(&sock, &local.sock).map_err(|e| Error::io(&what, &e))?;
    bind_source(&sock, addr, local).map_err(|e| {
        let src = source_for(addr, local).unwrap_or(*addr);
        bind_error(
            &format!("bind source {}", display_addr(&src)),
            src.port(),
            proto,
            &e,
        )
    })
}

/// The outcome of a probe epoll reported ready.
fn finish(probe: &Probe, proto: Proto) -> State {
    let sock = &probe.sock;
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
