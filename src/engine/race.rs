//! Happy Eyeballs (RFC 8305, section 5): the addresses of a name with both
//! families are tried in one race instead of in turn, so a family that is
//! broken on the path (an IPv6 route that drops) costs 250 ms, not the
//! whole timeout.
//!
//! IPv6 goes first, the families alternate, and each next attempt starts
//! when the one before has had 250 ms without an answer, or at once when
//! it fails. Attempts overlap; the first to connect wins and the others are
//! closed (dropping a socket mid-handshake sends nothing more, and a late
//! SYN-ACK is answered with a reset by the kernel).

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};
use socket2::{SockAddr, Socket};

use super::connect::{failed, open, Attempt, ConnectOpts};
use super::poll::timeout_until;
use super::socket::display_addr;
use crate::error::{Error, Exit};

/// RFC 8305's recommended Connection Attempt Delay.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Whether `addrs` call for a race: both families among them.
pub fn applies(addrs: &[SocketAddr]) -> bool {
    addrs.iter().any(SocketAddr::is_ipv6) && addrs.iter().any(SocketAddr::is_ipv4)
}

/// IPv6 first, then the families alternate, each in its resolver order.
pub fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let (mut v6, mut v4) = (
        addrs.iter().filter(|a| a.is_ipv6()).copied(),
        addrs.iter().filter(|a| a.is_ipv4()).copied(),
    );
    let mut out = Vec::with_capacity(addrs.len());
    loop {
        let (a, b) = (v6.next(), v4.next());
        if a.is_none() && b.is_none() {
            return out;
        }
        out.extend(a);
        out.extend(b);
    }
}

/// One attempt still waiting for its answer.
struct Pending {
    sock: Socket,
    addr: SocketAddr,
    started: Instant,
    recverr: bool,
}

/// Races `addrs` (see the module) within the one deadline of `opts`:
/// the winner's stream, its address and its own connect time. On failure,
/// the last error to arrive, or a timeout naming every address still
/// unanswered.
pub fn race(
    addrs: &[SocketAddr],
    opts: &ConnectOpts,
    mut report: impl FnMut(Attempt),
) -> Result<(TcpStream, SocketAddr, Duration), Error> {
    let began = Instant::now();
    let deadline = opts.timeout.map(|t| began + t);
    let order = interleave(addrs);
    let mut queue = order.iter();
    let mut pending: Vec<Pending> = Vec::new();
    let mut last: Option<Error> = None;
    // When the next attempt may start without waiting for the others.
    let mut next_at = began;
    loop {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            if pending.is_empty() {
                if let Some(e) = last {
                    return Err(e);
                }
            }
            return Err(timed_out(&pending, opts, last.as_ref()));
        }
        if now >= next_at || pending.is_empty() {
            if let Some(addr) = queue.next() {
                if let Some(p) = pending.last() {
                    report(Attempt::Slow(&p.addr, now - p.started));
                }
                report(Attempt::Trying(addr));
                match start(*addr, opts) {
                    Ok(Started::Connected(stream)) => {
                        overtaken(&pending, &mut report);
                        return Ok((stream, *addr, now.elapsed()));
                    }
                    Ok(Started::Waiting(p)) => pending.push(p),
                    Err(e) => {
                        report(Attempt::Failed(addr, &e, now.elapsed()));
                        last = Some(e);
                    }
                }
                next_at = Instant::now() + ATTEMPT_DELAY;
                continue;
            }
            if pending.is_empty() {
                return Err(last.unwrap_or_else(|| {
                    Error::new(Exit::Resolve, "connect", "no address to connect to")
                }));
            }
        }
        // Wait for an answer until the next attempt is due (none is due
        // once the queue is empty) or the deadline.
        let due = (queue.len() > 0).then_some(next_at);
        let until = match (due, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let answered = wait(&pending, until).map_err(|e| Error::io("poll", &e))?;
        // Highest index first, so the removals keep the others' places.
        for i in answered.into_iter().rev() {
            let p = pending.swap_remove(i);
            match finish(p) {
                Ok((stream, addr, took)) => {
                    overtaken(&pending, &mut report);
                    return Ok((stream, addr, took));
                }
                Err((addr, e, took)) => {
                    report(Attempt::Failed(&addr, &e, took));
                    last = Some(e);
                    // RFC 8305: a failure starts the next attempt at once.
                    next_at = Instant::now();
                }
            }
        }
    }
}

enum Started {
    Connected(TcpStream),
    Waiting(Pending),
}

/// A non-blocking connect(2) to `addr` from a socket set up as
/// connect_any's are.
fn start(addr: SocketAddr, opts: &ConnectOpts) -> Result<Started, Error> {
    let (sock, recverr) = open(addr, opts)?;
    let what = format!("connect {}", display_addr(&addr));
    sock.set_nonblocking(true)
        .map_err(|e| Error::io(&what, &e))?;
    let p = Pending {
        sock,
        addr,
        started: Instant::now(),
        recverr,
    };
    match p.sock.connect(&SockAddr::from(addr)) {
        Ok(()) => finish(p)
            .map(|(s, _, _)| Started::Connected(s))
            .map_err(|(_, e, _)| e),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(Started::Waiting(p)),
        Err(e) => Err(failed(&p.sock, &addr, e)),
    }
}

/// The outcome of an attempt poll(2) reported: SO_ERROR, then the socket
/// made blocking again for the relay.
#[allow(clippy::result_large_err)]
fn finish(p: Pending) -> Result<(TcpStream, SocketAddr, Duration), (SocketAddr, Error, Duration)> {
    let what = format!("connect {}", display_addr(&p.addr));
    let outcome = match p.sock.take_error() {
        Ok(None) => Ok(()),
        Ok(Some(e)) | Err(e) => Err(e),
    };
    if let Err(e) = outcome {
        return Err((p.addr, failed(&p.sock, &p.addr, e), p.started.elapsed()));
    }
    let took = p.started.elapsed();
    let ready = p.sock.set_nonblocking(false).and_then(|()| {
        if p.recverr {
            // As connect_any: off for the connection's life.
            super::icmp::set_recverr(&p.sock, &p.addr, false)
        } else {
            Ok(())
        }
    });
    match ready {
        Ok(()) => Ok((p.sock.into(), p.addr, took)),
        Err(e) => Err((p.addr, Error::io(&what, &e), p.started.elapsed())),
    }
}

/// Polls every pending attempt for POLLOUT until `until` (`None`: no
/// limit); the indexes of those that answered, in order.
fn wait(pending: &[Pending], until: Option<Instant>) -> io::Result<Vec<usize>> {
    loop {
        let mut fds: Vec<PollFd> = pending
            .iter()
            .map(|p| PollFd::new(p.sock.as_fd(), PollFlags::POLLOUT))
            .collect();
        match nix::poll::poll(&mut fds, timeout_until(until)) {
            Ok(_) => {
                return Ok(fds
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
                    .map(|(i, _)| i)
                    .collect())
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The attempts a winner made unnecessary, for -v.
fn overtaken(pending: &[Pending], report: &mut impl FnMut(Attempt)) {
    for p in pending {
        report(Attempt::Overtaken(&p.addr, p.started.elapsed()));
    }
}

/// The deadline passed: the error names every attempt still unanswered.
/// The race's end at -w: the addresses still unanswered, and the last
/// that failed otherwise, which would go unsaid without -v.
fn timed_out(pending: &[Pending], opts: &ConnectOpts, failed: Option<&Error>) -> Error {
    let limit = humantime::format_duration(opts.timeout.unwrap_or_default());
    let names: Vec<String> = pending.iter().map(|p| display_addr(&p.addr)).collect();
    let also = match failed {
        Some(e) => format!(" ({e})"),
        None => String::new(),
    };
    Error::new(
        Exit::TimedOut,
        format!("connect {}", names.join(", ")),
        format!("timed out after {limit}{also}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_first_then_alternating() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap_or_else(|_| unreachable!());
        let got = interleave(&[
            a("10.0.0.1:1"),
            a("10.0.0.2:1"),
            a("[::1]:1"),
            a("10.0.0.3:1"),
        ]);
        let want = [
            a("[::1]:1"),
            a("10.0.0.1:1"),
            a("10.0.0.2:1"),
            a("10.0.0.3:1"),
        ];
        assert_eq!(got, want);
        assert!(applies(&want));
        assert!(!applies(&want[1..]));
    }
}
