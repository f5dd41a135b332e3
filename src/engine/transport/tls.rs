//! TLS over any kernel stream (TCP, Unix, later a proxy tunnel): rustls,
//! blocking, no runtime. The relay reads in one thread while another
//! writes, so the rustls state sits behind a lock that is never held while
//! waiting on the socket: socket I/O under the lock is non-blocking, and
//! the waits (poll) happen with the lock released. Otherwise a writer
//! blocked on a full send buffer would keep the reader from taking what
//! the peer sends, and both ends could wait on each other for ever.
//!
//! The bytes on the descriptor are TLS records, not the stream's bytes:
//! [`Stream::raw_fd`] is `None`, so the relay takes its plain copies. What
//! the kernel still tells holds for the records: SIOCOUTQ after the last
//! flush says whether the peer's kernel has every record, close_notify
//! included, so an exit 0 keeps its meaning.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustls::Connection;

use super::{Conn, Peer, Stream};
use crate::engine::poll::Events;
use crate::engine::socket::SocketOpts;

/// Plaintext taken into rustls per call: a few records, so one writer
/// cannot queue unbounded ciphertext.
const CHUNK: usize = 256 * 1024;

/// Bytes of records one recv(2) takes from the socket.
const READ_AHEAD: usize = 256 * 1024;

/// rustls's own limit on queued records (64 KiB by default) would cut each
/// write to a few records; this lets one call take [`CHUNK`].
const BUFFER_LIMIT: usize = 2 * CHUNK;

/// Socket bytes read ahead for rustls.
#[derive(Default)]
struct ReadAhead {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadAhead {
    fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// A TLS session over `inner`.
pub struct TlsStream {
    inner: Conn,
    conn: Mutex<Connection>,
    /// Records read from the socket and not yet given to rustls, which
    /// takes 4 KiB a call: one recv(2) of [`READ_AHEAD`] feeds it many.
    /// Locked after `conn`, only by readers.
    ahead: Mutex<ReadAhead>,
    /// close_notify is queued: nothing more is written, and the socket's
    /// own shutdown(SHUT_WR) follows once close_notify is out.
    write_closed: AtomicBool,
    /// shutdown(SHUT_WR) still owed to the socket (close_notify was not
    /// all out when the write side was closed).
    fin_owed: AtomicBool,
}

/// Why a handshake did not complete.
#[derive(Debug)]
pub enum HandshakeError {
    /// rustls refused: the peer's certificate, its alert, its messages.
    Tls(rustls::Error),
    /// The socket failed, or the peer closed before the handshake ended.
    Io(io::Error),
    TimedOut,
}

impl TlsStream {
    /// Runs the handshake of `conn` over `inner` within `timeout`; the
    /// stream is ready for application data after it.
    pub fn handshake(
        inner: Conn,
        mut conn: Connection,
        timeout: Option<Duration>,
    ) -> Result<Arc<TlsStream>, (HandshakeError, Box<Connection>)> {
        let deadline = timeout.map(|t| Instant::now() + t);
        conn.set_buffer_limit(Some(BUFFER_LIMIT));
        let mut ahead = ReadAhead::default();
        match drive(&*inner, &mut conn, &mut ahead, deadline) {
            Ok(()) => Ok(Arc::new(TlsStream {
                inner,
                conn: Mutex::new(conn),
                ahead: Mutex::new(ahead),
                write_closed: AtomicBool::new(false),
                fin_owed: AtomicBool::new(false),
            })),
            Err(e) => Err((e, Box::new(conn))),
        }
    }

    /// The session, for a report of what was negotiated.
    pub fn session(&self) -> MutexGuard<'_, Connection> {
        self.lock()
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes out what rustls has queued, waiting (lock released) while
    /// the socket is full.
    fn flush<'a>(&'a self, mut conn: MutexGuard<'a, Connection>) -> io::Result<()> {
        loop {
            match flush_now(&*self.inner, &mut conn) {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    drop(conn);
                    self.inner.ready(Events::POLLOUT, None)?;
                    conn = self.lock();
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The socket as rustls reads and writes it: never blocking.
struct NonBlocking<'a>(&'a dyn Stream);

impl Read for NonBlocking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_recv(buf)
    }
}

impl Write for NonBlocking<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_send(buf)
    }

    /// rustls hands over its records as slices, 16 KiB each: one
    /// sendmsg(2) of them all instead of a send(2) each.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_send_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// Writes what rustls has queued as far as the socket takes it now: true
/// when nothing is left.
fn flush_now(sock: &dyn Stream, conn: &mut Connection) -> io::Result<bool> {
    while conn.wants_write() {
        match conn.write_tls(&mut NonBlocking(sock)) {
            Ok(_) => {}
            Err(e) if would_block(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// What one read of the socket brought.
#[derive(PartialEq, Eq)]
enum Pumped {
    Nothing,
    Records,
    /// The socket's EOF (rustls now knows whether close_notify came).
    Eof,
}

/// Gives rustls the next records: from what was read ahead, else from
/// one non-blocking recv(2) of the socket; then processes them. A TLS
/// error's alert is sent before the error returns.
fn pump(
    sock: &dyn Stream,
    conn: &mut Connection,
    ahead: &mut ReadAhead,
) -> Result<Pumped, HandshakeError> {
    if ahead.is_empty() {
        ahead.buf.resize(READ_AHEAD, 0);
        match sock.try_recv(&mut ahead.buf) {
            Ok(0) => {
                // The socket's EOF, for rustls to tell close_notify from
                // truncation.
                let _ = conn.read_tls(&mut io::empty());
                return Ok(Pumped::Eof);
            }
            Ok(n) => (ahead.start, ahead.end) = (0, n),
            Err(e) if would_block(&e) => return Ok(Pumped::Nothing),
            Err(e) => return Err(HandshakeError::Io(e)),
        }
    }
    let mut rest = &ahead.buf[ahead.start..ahead.end];
    let before = rest.len();
    // Refused while rustls holds a full plaintext buffer, which the reader
    // empties before coming back here; refused with none, it is stuck.
    let fed = conn.read_tls(&mut rest);
    ahead.start += before - rest.len();
    match conn.process_new_packets() {
        Err(e) => {
            let _ = flush_now(sock, conn);
            Err(HandshakeError::Tls(e))
        }
        Ok(io) => match fed {
            Err(e) if io.plaintext_bytes_to_read() == 0 => Err(HandshakeError::Io(e)),
            _ => Ok(Pumped::Records),
        },
    }
}

fn left(deadline: Option<Instant>) -> Result<Option<Duration>, HandshakeError> {
    match deadline {
        None => Ok(None),
        Some(d) => {
            let now = Instant::now();
            if now >= d {
                Err(HandshakeError::TimedOut)
            } else {
                Ok(Some(d - now))
            }
        }
    }
}

/// The handshake, to its end or `deadline`.
fn drive(
    sock: &dyn Stream,
    conn: &mut Connection,
    ahead: &mut ReadAhead,
    deadline: Option<Instant>,
) -> Result<(), HandshakeError> {
    loop {
        if !flush_now(sock, conn).map_err(HandshakeError::Io)? {
            sock.ready(Events::POLLOUT, left(deadline)?)
                .map_err(HandshakeError::Io)?;
            continue;
        }
        if !conn.is_handshaking() {
            return Ok(());
        }
        match pump(sock, conn, ahead)? {
            Pumped::Records => {}
            Pumped::Eof => {
                return Err(HandshakeError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                )))
            }
            Pumped::Nothing => {
                if !sock
                    .ready(Events::POLLIN, left(deadline)?)
                    .map_err(HandshakeError::Io)?
                {
                    return Err(HandshakeError::TimedOut);
                }
            }
        }
    }
}

fn tls_error(e: HandshakeError) -> io::Error {
    match e {
        HandshakeError::Io(e) => e,
        HandshakeError::Tls(e) => io::Error::new(io::ErrorKind::InvalidData, TlsFailure(e)),
        HandshakeError::TimedOut => io::ErrorKind::TimedOut.into(),
    }
}

/// A TLS failure inside an io::Error, so the relay's error paths carry it
/// and the command can name it (exit 7).
#[derive(Debug)]
pub struct TlsFailure(pub rustls::Error);

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::engine::tls::words::error(&self.0, false))
    }
}

impl std::error::Error for TlsFailure {}

/// The peer closed the connection without close_notify: what came may be
/// cut short, which only TLS can tell.
pub fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the peer closed without a TLS close_notify: the data may be truncated",
    )
}

impl TlsStream {
    /// Plaintext now, as much as `buf` takes of what rustls has or the
    /// socket has ready (or the end): None when the socket must be waited
    /// on first.
    fn read_now(&self, conn: &mut Connection, buf: &mut [u8]) -> Option<io::Result<usize>> {
        let mut ahead = self.ahead.lock().unwrap_or_else(|p| p.into_inner());
        let mut n = 0;
        loop {
            match conn.reader().read(&mut buf[n..]) {
                // The peer's close_notify (after what was read).
                Ok(0) => return Some(Ok(n)),
                Ok(k) => {
                    n += k;
                    if n == buf.len() {
                        return Some(Ok(n));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Reported by the next call, after what was read.
                Err(_) if n > 0 => return Some(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Some(Err(truncated()))
                }
                Err(e) => return Some(Err(e)),
            }
            match pump(&*self.inner, conn, &mut ahead) {
                Ok(Pumped::Records) => {
                    // A key update or alert may want an answer.
                    if let Err(e) = flush_now(&*self.inner, conn) {
                        return Some(if n > 0 { Ok(n) } else { Err(e) });
                    }
                }
                // rustls now tells close_notify (0) from truncation.
                Ok(Pumped::Eof) => {}
                Ok(Pumped::Nothing) if n > 0 => return Some(Ok(n)),
                Ok(Pumped::Nothing) => return None,
                Err(_) if n > 0 => return Some(Ok(n)),
                Err(e) => return Some(Err(tls_error(e))),
            }
        }
    }
}

impl Stream for TlsStream {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut conn = self.lock();
            if let Some(r) = self.read_now(&mut conn, buf) {
                return r;
            }
            // Never wait to write here: with the writer waiting on a full
            // socket and the peer waiting for its own send to drain, a
            // reader that stopped reading would stall both ends. What is
            // queued goes out as the socket takes it.
            let pending = !flush_now(&*self.inner, &mut conn).unwrap_or(true);
            drop(conn);
            let events = if pending {
                Events::POLLIN | Events::POLLOUT
            } else {
                Events::POLLIN
            };
            self.inner.ready(events, None)?;
        }
    }

    fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut conn = self.lock();
        self.read_now(&mut conn, buf)
            .unwrap_or_else(|| Err(io::ErrorKind::WouldBlock.into()))
    }

    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            let mut conn = self.lock();
            if self.write_closed.load(Ordering::Acquire) {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = conn.writer().write(&buf[..buf.len().min(CHUNK)])?;
            self.flush(conn)?;
            // 0: rustls's buffer was full; it is empty now.
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
        }
    }

    fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        let mut conn = self.lock();
        if self.write_closed.load(Ordering::Acquire) {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if !flush_now(&*self.inner, &mut conn)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = conn.writer().write(&buf[..buf.len().min(CHUNK)])?;
        // What the socket does not take now goes with the next call.
        flush_now(&*self.inner, &mut conn)?;
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Never waits: close_notify goes now if the socket takes it, else as
    /// it drains (the ack wait's calls of `unacked` push it), and the
    /// socket's shutdown(SHUT_WR) follows it, so a peer that stopped
    /// reading cannot hold a client thread here.
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if how == Shutdown::Read {
            return self.inner.shutdown(how);
        }
        let mut conn = self.lock();
        if !self.write_closed.swap(true, Ordering::AcqRel) {
            conn.send_close_notify();
        }
        let out = flush_now(&*self.inner, &mut conn).unwrap_or(true);
        drop(conn);
        if out || how == Shutdown::Both {
            self.inner.shutdown(how)
        } else {
            self.fin_owed.store(true, Ordering::Release);
            Ok(())
        }
    }

    fn peer(&self) -> &Peer {
        self.inner.peer()
    }

    fn local(&self) -> Option<String> {
        self.inner.local()
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.inner.fd()
    }

    fn raw_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    fn unacked(&self) -> Option<usize> {
        let mut conn = self.lock();
        match flush_now(&*self.inner, &mut conn) {
            // Records rustls still holds have not even been sent.
            Ok(false) => return Some(conn.wants_write() as usize * CHUNK),
            Ok(true) => {
                if self.fin_owed.swap(false, Ordering::AcqRel) {
                    let _ = self.inner.shutdown(Shutdown::Write);
                }
            }
            // The socket failed: what the kernel says decides.
            Err(_) => {}
        }
        drop(conn);
        self.inner.unacked()
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    fn reset_state(&self) -> bool {
        self.inner.reset_state()
    }

    fn configure(&self, opts: &SocketOpts) -> io::Result<()> {
        self.inner.configure(opts)
    }

    fn reset_on_close(&self) {
        self.inner.reset_on_close()
    }

    fn ready(&self, events: Events, timeout: Option<Duration>) -> io::Result<bool> {
        if events.contains(Events::POLLIN) {
            let mut conn = self.lock();
            if !self
                .ahead
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
            {
                return Ok(true);
            }
            let buffered = match conn.process_new_packets() {
                Ok(io) => io.plaintext_bytes_to_read() > 0 || io.peer_has_closed(),
                // The read that follows reports it.
                Err(_) => true,
            };
            if buffered {
                return Ok(true);
            }
        }
        self.inner.ready(events, timeout)
    }
}
