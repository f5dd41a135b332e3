//! TCP connect with a deadline, by the two classic methods:
//!
//! * `poll`: a non-blocking connect(2), poll(2) for writability until the
//!   deadline, then SO_ERROR for the outcome.
//! * `alarm`: a blocking connect(2) interrupted by SIGALRM from a timer with
//!   sub-second resolution (setitimer); the handler is installed only for the
//!   call and the previous one restored after.
//!
//! The resolved addresses are tried within the one deadline: in turn, or,
//! for a name with both families, raced (engine/race.rs).

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use socket2::{SockAddr, Socket};

use super::icmp::{self, IcmpError};
use super::poll::{self, Events};
use super::race;
use super::socket::{apply, display_addr, tcp_socket, SocketOpts};
use super::sys;
use crate::error::{Error, Exit};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimeoutMethod {
    #[default]
    Poll,
    Alarm,
}

#[derive(Clone, Debug, Default)]
pub struct ConnectOpts {
    pub timeout: Option<Duration>,
    pub method: TimeoutMethod,
    pub source: Option<SocketAddr>,
    /// `-p`: the source port alone, on the wildcard address of each
    /// address's family.
    pub source_port: Option<u16>,
    pub sock: SocketOpts,
    /// `--sequential`: one address at a time even when both families
    /// could be raced.
    pub sequential: bool,
}

/// What happened to one address, for the caller's `-v` report.
pub enum Attempt<'a> {
    Trying(&'a SocketAddr),
    /// This address failed, after this long.
    Failed(&'a SocketAddr, &'a Error, Duration),
    /// Racing: no answer yet after this long; the next address starts
    /// beside it.
    Slow(&'a SocketAddr, Duration),
    /// Racing: still unanswered after this long when another connected;
    /// closed.
    Overtaken(&'a SocketAddr, Duration),
}

/// Connects to the first address of `addrs` that accepts. Returns the
/// stream, the address it reached and how long the successful connect took.
/// On failure, the last address's error (a timeout once the deadline passed).
/// Addresses of both families are raced unless `opts.sequential` (or the
/// alarm method, which can wait for one connect only).
pub fn connect_any(
    addrs: &[SocketAddr],
    opts: &ConnectOpts,
    mut report: impl FnMut(Attempt),
) -> Result<(TcpStream, SocketAddr, Duration), Error> {
    // Only the --source address's family can be reached from it.
    let addrs: Vec<SocketAddr> = addrs
        .iter()
        .filter(|a| opts.source.is_none_or(|s| s.is_ipv4() == a.is_ipv4()))
        .copied()
        .collect();
    if !opts.sequential && opts.method == TimeoutMethod::Poll && race::applies(&addrs) {
        return race::race(&addrs, opts, report);
    }
    let deadline = opts.timeout.map(|t| Instant::now() + t);
    let mut last = None;
    for (i, addr) in addrs.iter().enumerate() {
        report(Attempt::Trying(addr));
        let started = Instant::now();
        // Each address gets an equal share of the time left, so one that
        // never answers cannot keep the next from being tried at all.
        let left = (addrs.len() - i) as u32;
        let share = match (deadline, opts.timeout) {
            (Some(_), Some(whole)) if i == 0 => Some(whole / left),
            (Some(d), _) => {
                // To 10 ms, as -w is given, not the microseconds the
                // earlier attempts took: what the message says.
                let ms = d.saturating_duration_since(started).as_secs_f64() * 1e3;
                let share = (ms / f64::from(left) / 10.0).round() as u64 * 10;
                Some(Duration::from_millis(share.max(1)))
            }
            _ => None,
        };
        match connect_one(*addr, opts, share.map(|t| (started + t, t))) {
            Ok(stream) => return Ok((stream, *addr, started.elapsed())),
            Err(e) => {
                report(Attempt::Failed(addr, &e, started.elapsed()));
                last = Some(e);
                // The last one, or out of time: the caller reports it.
                if left == 1 || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::new(
            Exit::Resolve,
            "connect",
            "no resolved address is in the family of the --source address",
        )
    }))
}

/// One address, by `deadline` (when given, with the time it allows, for
/// the message).
fn connect_one(
    addr: SocketAddr,
    opts: &ConnectOpts,
    deadline: Option<(Instant, Duration)>,
) -> Result<TcpStream, Error> {
    let what = format!("connect {}", display_addr(&addr));
    let fail = |e: io::Error| Error::io(&what, &e);
    let (sock, recverr) = open(addr, opts)?;
    let timed_out = || {
        let limit = deadline.map(|(_, t)| t).unwrap_or_default();
        Error::new(
            Exit::TimedOut,
            &what,
            format!("timed out after {}", humantime::format_duration(limit)),
        )
    };
    let target = SockAddr::from(addr);
    let result = match deadline {
        None => sock.connect(&target),
        Some((deadline, _)) => {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(timed_out());
            }
            match opts.method {
                TimeoutMethod::Poll => connect_poll(&sock, &target, remaining),
                TimeoutMethod::Alarm => connect_alarm(&sock, &target, remaining),
            }
        }
    };
    match result {
        Ok(()) => {
            if recverr {
                // Off for the connection's life: with it on, the kernel
                // treats a passing ICMP error as fatal.
                icmp::set_recverr(&sock, &addr, false).map_err(fail)?;
            }
            Ok(sock.into())
        }
        Err(e) if e.kind() == io::ErrorKind::TimedOut && deadline.is_some() => Err(timed_out()),
        Err(e) => Err(failed(&sock, &addr, e)),
    }
}

/// A TCP socket for `addr` with the options and source address of `opts`,
/// not yet connecting; true when it queues ICMP errors (IP_RECVERR).
pub(super) fn open(addr: SocketAddr, opts: &ConnectOpts) -> Result<(Socket, bool), Error> {
    let what = format!("connect {}", display_addr(&addr));
    let fail = |e: io::Error| Error::io(&what, &e);
    let sock = tcp_socket(&addr).map_err(fail)?;
    apply(&sock, &opts.sock).map_err(fail)?;
    // Queue the ICMP error, if one ends the connect, so the hint can say
    // who answered what; best effort (the errno is reported either way).
    let recverr = icmp::set_recverr(&sock, &addr, true).is_ok();
    if let Some(src) = source_for(&addr, opts) {
        if src.port() != 0 {
            // A fixed source port used again within a minute still has the
            // last connection's TIME-WAIT on it; SO_REUSEADDR lets the bind
            // through (as ncat -p does) while a live socket on the port
            // still makes it fail.
            sock.set_reuse_address(true).map_err(fail)?;
        }
        sock.bind(&SockAddr::from(src)).map_err(|e| {
            super::socket::bind_error(
                &format!("bind source {}", display_addr(&src)),
                src.port(),
                super::socket::Proto::Tcp,
                &e,
            )
        })?;
    }
    Ok((sock, recverr))
}

/// The address a socket to `addr` binds before connecting: `-s`, or `-p`
/// alone on the wildcard address of `addr`'s family.
pub fn source_for(addr: &SocketAddr, opts: &ConnectOpts) -> Option<SocketAddr> {
    let wildcard = |port| match addr {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), port),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), port),
    };
    opts.source.or(opts.source_port.map(wildcard))
}

/// A connect's failure `e` on `sock`, with what the ICMP error queue and
/// the routing table say about it.
pub(super) fn failed(sock: &Socket, addr: &SocketAddr, e: io::Error) -> Error {
    let what = format!("connect {}", display_addr(addr));
    let code = e.raw_os_error();
    let answer = icmp::take(sock);
    let local = sock
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.ip());
    route_hint(Error::io(&what, &e), code, addr, answer, local)
}

/// What the kernel's routing errors mean. An ICMP error queued on the
/// socket says who answered and what (a firewall's reject rule, a router
/// that cannot reach the host, this host's own failed ARP); without one the
/// error came from this host's routing table: a blackhole route answers
/// EINVAL (which would otherwise read like a usage mistake), a prohibit
/// route EACCES, an unreachable route EHOSTUNREACH (IPv4) or ENETUNREACH.
fn route_hint(
    err: Error,
    errno: Option<i32>,
    addr: &SocketAddr,
    answer: Option<IcmpError>,
    local: Option<IpAddr>,
) -> Error {
    let route = format!("'ip route get {}' shows the route", addr.ip());
    if let Some(answer) = answer {
        return err.with_hint(answer.explain(local, addr.ip()));
    }
    match errno {
        Some(libc::EINVAL) => {
            err.with_hint(format!("a blackhole route covers this address; {route}"))
        }
        Some(libc::EACCES) => err.with_hint(format!(
            "a prohibit route covers this address (ip route add prohibit); {route}"
        )),
        Some(libc::EPERM) => err.with_hint(
            "a firewall rule on this host (netfilter OUTPUT) dropped the connection attempt",
        ),
        Some(libc::EHOSTUNREACH) => err.with_hint(format!(
            "an unreachable route covers this address (ip route add unreachable); {route}"
        )),
        Some(libc::ENETUNREACH) => err.with_hint(format!(
            "no route to that network, or an unreachable route covers it; {route}"
        )),
        _ => err,
    }
}

/// Non-blocking connect(2); poll(2) for POLLOUT until `limit` passes; the
/// result is then read from SO_ERROR. Leaves the socket blocking again.
fn connect_poll(sock: &Socket, target: &SockAddr, limit: Duration) -> io::Result<()> {
    sock.set_nonblocking(true)?;
    match sock.connect(target) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            if !poll::ready(sock.as_fd(), Events::POLLOUT, Some(limit))? {
                return Err(io::ErrorKind::TimedOut.into());
            }
            if let Some(err) = sock.take_error()? {
                return Err(err);
            }
        }
        Err(e) => return Err(e),
    }
    sock.set_nonblocking(false)
}

/// Blocking connect(2) interrupted by SIGALRM after `limit`.
///
/// The timer repeats every 20 ms after it first fires, so a signal that lands
/// just before the thread enters connect(2) (the classic race of this
/// method) is followed by one that interrupts it. The handler is installed
/// without SA_RESTART so the kernel returns EINTR instead of restarting the
/// connect. The caller must run this on a thread where SIGALRM is not
/// blocked; `signals::install` keeps it unblocked on the main thread.
fn connect_alarm(sock: &Socket, target: &SockAddr, limit: Duration) -> io::Result<()> {
    let alarm = sys::sigaction_sigalrm()?;
    // A zero first expiry would disarm the timer, so a tiny limit is 1 us.
    let first = limit.max(Duration::from_micros(1));
    let result = match sys::setitimer_real(first, Duration::from_millis(20)) {
        Ok(()) => loop {
            match sock.connect(target) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if alarm.fired() {
                        break Err(io::ErrorKind::TimedOut.into());
                    }
                    // Another signal: the connect goes on in the kernel;
                    // calling again reports its progress (EALREADY) or end.
                    continue;
                }
                Err(e) if e.raw_os_error() == Some(libc::EALREADY) => {
                    // An interrupted connect still in progress: wait for it
                    // the blocking way, on its writability.
                    break wait_writable(sock, &alarm);
                }
                other => break other,
            }
        },
        Err(e) => Err(e),
    };
    let _ = sys::setitimer_real(Duration::ZERO, Duration::ZERO);
    // Only now, with the timer off, the previous SIGALRM disposition back.
    drop(alarm);
    result
}

/// Blocks until `sock` is writable (an interrupted connect finished), then
/// reads SO_ERROR. An EINTR from the alarm is the timeout; another signal's
/// is waited through.
fn wait_writable(sock: &Socket, alarm: &sys::SigalrmCatch) -> io::Result<()> {
    match poll::ready_unless(sock.as_fd(), Events::POLLOUT, None, || alarm.fired()) {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            return Err(io::ErrorKind::TimedOut.into())
        }
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    match sock.take_error()? {
        Some(err) => Err(err),
        None => Ok(()),
    }
}
