//! `listen --to`: a client's stream and its own upstream stream, relayed
//! both ways until each direction has reached its end, as socat's
//! `TCP-LISTEN,fork TCP:...` does.
//!
//! One thread per direction. Between two kernel sockets, toward a peer on
//! another host, the bytes go socket -> pipe -> socket by splice(2) and
//! never enter user space: a fifth of the forwarder's CPU of a copy. Toward
//! a peer on this host (loopback, a Unix socket) the spliced pages reach
//! the receiving socket as they are, and its receive measured twice the CPU
//! of a copy's, which on a shared host costs more than it saves; those
//! directions, and a side that transforms its bytes (TLS), copy through a
//! buffer. Every
//! call is non-blocking and every wait is a poll(2) that also watches the
//! session's eventfd, so a direction that fails wakes the other at once,
//! wherever it waits (a peer that stopped reading included).
//!
//! The end of one direction is passed on as the end of the stream
//! (shutdown(SHUT_WR)), and the other direction goes on: half-close both
//! ways. A reset or error on one side resets the other (SO_LINGER 0), so
//! neither peer mistakes a failure for a clean EOF.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::buf::AlignedBuf;
use super::poll::{self, Events, Ready};
use super::relay::{idle_error, Counters};
use super::transport::{Conn, Peer, Stream};
use crate::error::Error;

/// Bytes asked of one splice: the pipe of each direction is this size
/// (fs.pipe-max-size by default), so a call moves a whole socket buffer's
/// worth and the forwarder wakes rarely.
const CHUNK: usize = 1024 * 1024;
/// The copy path's buffer, 1 MiB calls as the relay's: 64 KiB calls were 16
/// times the syscalls of socat -b 1M and measured a third more CPU. A
/// direction that carries nothing never touches its pages.
const COPY_BUF: usize = 1024 * 1024;
/// The thread of the upstream-to-client direction keeps its buffer on the
/// heap.
const STACK: usize = 128 * 1024;
/// How long the end of a TLS side may take to leave (close_notify queued
/// behind a full socket) before the session closes anyway.
const SETTLE: Duration = Duration::from_secs(2);

/// Which end of a forwarded session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Client,
    Upstream,
}

/// What the two directions share: the first failure, and the eventfd that
/// tells the other direction to stop waiting.
struct Session<'a> {
    client: &'a dyn Stream,
    upstream: &'a dyn Stream,
    counters: &'a Counters,
    idle: Option<Duration>,
    wake: EventFd,
    stopped: AtomicBool,
    failure: Mutex<Option<Error>>,
    splice: bool,
}

/// A direction stopped: the session has failed (this direction's error
/// is recorded) or the other direction failed first.
struct Stopped;

impl<'a> Session<'a> {
    fn stream(&self, side: Side) -> &'a dyn Stream {
        match side {
            Side::Client => self.client,
            Side::Upstream => self.upstream,
        }
    }

    /// Records the first failure and ends the session: the side that did
    /// not fail is reset on close (an idle session just ends), and both
    /// directions stop.
    fn fail(&self, failed: Option<Side>, err: Error) -> Stopped {
        let mut slot = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(err);
            match failed {
                Some(Side::Client) => self.upstream.reset_on_close(),
                Some(Side::Upstream) => self.client.reset_on_close(),
                None => {}
            }
            self.stopped.store(true, Ordering::Release);
            // The counter only grows; a failed write still leaves it
            // readable from the first one.
            let _ = self.wake.write(1);
        }
        Stopped
    }

    /// Waits until `side` is ready for `events`, the session stops, or it
    /// has been idle too long.
    fn wait(&self, side: Side, events: Events) -> Result<(), Stopped> {
        let stream = self.stream(side);
        loop {
            if self.stopped.load(Ordering::Acquire) {
                return Err(Stopped);
            }
            let left = match self.idle {
                None => None,
                Some(limit) => {
                    let idle_for = self.counters.idle_for();
                    if idle_for >= limit {
                        return Err(self.fail(None, idle_error(self.client.peer(), limit)));
                    }
                    Some(limit - idle_for)
                }
            };
            // A TLS side may hold plaintext already read off its socket.
            if events.contains(Events::POLLIN) && stream.raw_fd().is_none() {
                match stream.ready(events, Some(Duration::ZERO)) {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(e) => return Err(self.fail(Some(side), Error::io("poll", &e))),
                }
            }
            match poll::either(stream.fd(), events, self.wake.as_fd(), left) {
                Ok(Ready::First) => return Ok(()),
                Ok(Ready::Second | Ready::TimedOut) => {}
                Err(e) => return Err(self.fail(Some(side), Error::io("poll", &e))),
            }
        }
    }

    fn recv_failed(&self, side: Side, e: &io::Error) -> Stopped {
        let peer = self.stream(side).peer();
        self.fail(Some(side), Error::io(format!("receive from {peer}"), e))
    }

    fn send_failed(&self, side: Side, e: &io::Error) -> Stopped {
        let peer = self.stream(side).peer();
        self.fail(Some(side), Error::io(format!("send to {peer}"), e))
    }

    fn count(&self, from: Side, n: usize) {
        match from {
            Side::Client => self.counters.add_sent(n),
            Side::Upstream => self.counters.add_received(n),
        }
    }
}

/// Relays `client` and `upstream` both ways until both directions have
/// ended, counting client-to-upstream bytes as sent and the others as
/// received. `idle` bounds the time with no byte either way; `splice`
/// false copies through a buffer even between kernel sockets. On failure
/// the side that did not fail is reset when the caller drops it.
pub fn forward(
    client: &Conn,
    upstream: &Conn,
    idle: Option<Duration>,
    counters: &Counters,
    splice: bool,
) -> Result<(), Error> {
    let wake = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
        .map_err(|e| Error::io("eventfd", &e.into()))?;
    let session = Session {
        client: &**client,
        upstream: &**upstream,
        counters,
        idle,
        wake,
        stopped: AtomicBool::new(false),
        failure: Mutex::new(None),
        splice,
    };
    let fds = client.raw_fd().zip(upstream.raw_fd());
    if let (Some((a, b)), true) = (fds, splice) {
        for fd in [a, b] {
            nonblocking(fd).map_err(|e| Error::io("set O_NONBLOCK", &e))?;
        }
    }
    thread::scope(|scope| {
        let down = thread::Builder::new()
            .name("forward-down".into())
            .stack_size(STACK)
            .spawn_scoped(scope, || direction(&session, Side::Upstream, Side::Client));
        match down {
            Ok(down) => {
                direction(&session, Side::Client, Side::Upstream);
                let _ = down.join();
            }
            Err(e) => {
                session.fail(None, Error::io("start a forwarding thread", &e));
            }
        }
    });
    let failure = session
        .failure
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    match failure {
        Some(err) => {
            // Wakes nothing now (both threads are done); the peers learn
            // of the end when the caller closes.
            let _ = client.shutdown(Shutdown::Read);
            let _ = upstream.shutdown(Shutdown::Read);
            Err(err)
        }
        None => {
            settle(&session, Side::Client);
            settle(&session, Side::Upstream);
            Ok(())
        }
    }
}

fn nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = nix::fcntl::fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags))?;
    Ok(())
}

/// One direction to its end: the source's EOF becomes the end of the
/// stream on the destination.
fn direction(s: &Session, from: Side, to: Side) {
    let pumped = match (s.stream(from).raw_fd(), s.stream(to).raw_fd()) {
        (Some(src), Some(dst)) if s.splice && !on_this_host(s.stream(to).peer(), dst) => {
            match pipe() {
                Ok(Some((r, w))) => splice_pump(s, from, to, src, dst, (r.as_fd(), w.as_fd())),
                Ok(None) => copy_pump(s, from, to),
                Err(e) => Err(s.fail(None, Error::io("pipe", &e))),
            }
        }
        _ => copy_pump(s, from, to),
    };
    if pumped.is_ok() {
        // ENOTCONN when the destination is already gone: nothing to end.
        let _ = s.stream(to).shutdown(Shutdown::Write);
    }
}

/// Whether the socket `fd` connected to `peer` ends on this host: a Unix
/// socket, a loopback address, or one of this host's own addresses (its
/// local address is the peer's).
fn on_this_host(peer: &Peer, fd: BorrowedFd<'_>) -> bool {
    match peer {
        Peer::Unix { .. } => true,
        Peer::Inet(addr) => {
            let ip = addr.ip().to_canonical();
            ip.is_loopback()
                || socket2::SockRef::from(&fd)
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_socket())
                    .is_some_and(|local| local.ip().to_canonical() == ip)
        }
    }
}

/// A pipe of CHUNK bytes, or None where the kernel will not grow one: past
/// fs.pipe-user-pages-soft an unprivileged user's new pipes hold two pages,
/// and splicing through those costs more than a copy.
fn pipe() -> io::Result<Option<(OwnedFd, OwnedFd)>> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    match nix::fcntl::fcntl(w.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(CHUNK as libc::c_int)) {
        Ok(_) => Ok(Some((r, w))),
        Err(_) => Ok(None),
    }
}

fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    loop {
        match nix::fcntl::splice(from, None, to, None, len, flags) {
            Err(Errno::EINTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

/// socket -> pipe -> socket. The pipe is empty at each read: all of a
/// read goes out before the next one.
fn splice_pump(
    s: &Session,
    from: Side,
    to: Side,
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    (pipe_r, pipe_w): (BorrowedFd<'_>, BorrowedFd<'_>),
) -> Result<(), Stopped> {
    loop {
        let n = match splice(src, pipe_w, CHUNK) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                s.wait(from, Events::POLLIN)?;
                continue;
            }
            Err(e) => return Err(s.recv_failed(from, &e)),
        };
        let mut left = n;
        while left > 0 {
            match splice(pipe_r, dst, left) {
                Ok(k) => {
                    left -= k;
                    s.count(from, k);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => s.wait(to, Events::POLLOUT)?,
                Err(e) => return Err(s.send_failed(to, &e)),
            }
        }
    }
}

/// Through a buffer, for a side whose bytes are not the socket's (TLS).
fn copy_pump(s: &Session, from: Side, to: Side) -> Result<(), Stopped> {
    let (src, dst) = (s.stream(from), s.stream(to));
    let mut buf = AlignedBuf::zeroed(COPY_BUF);
    loop {
        let n = match src.try_recv(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                s.wait(from, Events::POLLIN)?;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(s.recv_failed(from, &e)),
        };
        let mut sent = 0;
        while sent < n {
            match dst.try_send(&buf[sent..n]) {
                Ok(k) => {
                    sent += k;
                    s.count(from, k);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => s.wait(to, Events::POLLOUT)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(s.send_failed(to, &e)),
            }
        }
    }
}

/// A TLS side may still hold its close_notify (and the FIN behind it)
/// behind a full socket: give it a bounded moment to leave before the
/// close. A kernel socket sends what it holds after close(2) by itself.
fn settle(s: &Session, side: Side) {
    let stream = s.stream(side);
    if stream.raw_fd().is_some() {
        return;
    }
    let until = Instant::now() + SETTLE;
    // Each call of unacked() pushes what rustls holds.
    while stream.unacked().is_some_and(|n| n > 0) && Instant::now() < until {
        // Writable says nothing of acknowledgement: wait a little.
        thread::sleep(Duration::from_millis(2));
    }
}
