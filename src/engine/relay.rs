//! The stdin/stdout <-> socket pump of DESIGN.md "Relay semantics", and the
//! single-socket services of `listen` (`--echo`, `--sink`, and a client's
//! data to stdout under `-k`).
//!
//! One thread per direction with blocking calls: a thread that made progress
//! goes straight into its next call, and a slow side blocks only its own
//! direction (TCP flow control then slows the peer), so memory is the two
//! fixed buffers whatever the transfer size or the reader's speed.

use std::io;
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use super::buf::AlignedBuf;
use super::dump::{self, Dump, Way};
use super::poll::{self, Events};
use super::splice::{self, Kind};
use super::stdio;
use super::transport::{Conn, Peer, Stream};
use crate::error::{Error, Exit};

/// Bytes per read/write call on the plain path. Large calls mean fewer
/// wake-ups per byte, which is what sets throughput on these machines.
pub const BUF_SIZE: usize = splice::CHUNK;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    Both,
    /// Read stdin into the socket; what arrives is read and discarded.
    SendOnly,
    /// Socket to stdout; stdin is never read and nothing is sent.
    RecvOnly,
}

#[derive(Clone, Debug, Default)]
pub struct RelayOpts {
    pub idle_timeout: Option<Duration>,
    /// shutdown(SHUT_WR) on stdin EOF (off with `--no-shutdown`).
    pub half_close: bool,
    pub direction: Direction,
    /// End at socket EOF even while stdin is open (`--exit-on-eof`, or
    /// stdin is a terminal).
    pub end_on_socket_eof: bool,
    /// splice(2) from the socket into a stdout pipe (off with `--no-splice`).
    pub fast: bool,
    /// `--crlf`: LF becomes CRLF on the way out.
    pub crlf: bool,
    /// `--quit-after`: the session ends this long after stdin's EOF even
    /// if the peer never closes (nc -q).
    pub quit_after: Option<Duration>,
    /// `--hexdump`: both directions, as they move.
    pub dump: Option<Arc<Dump>>,
}

/// Byte counters and the time of the last byte moved, shared by the threads
/// of one session.
#[derive(Debug)]
pub struct Counters {
    started: Instant,
    sent: AtomicU64,
    received: AtomicU64,
    last_activity_ns: AtomicU64,
    /// Input was read for the socket, sent or not yet: a reset then means
    /// the peer refused it, even before the first write returned.
    offered: std::sync::atomic::AtomicBool,
}

impl Counters {
    pub fn new() -> Arc<Counters> {
        Arc::new(Counters {
            started: Instant::now(),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            last_activity_ns: AtomicU64::new(0),
            offered: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn touch(&self) {
        let now = self.started.elapsed().as_nanos() as u64;
        self.last_activity_ns.store(now, Ordering::Relaxed);
    }

    pub fn add_sent(&self, n: usize) {
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        self.touch();
    }

    fn offer(&self) {
        self.offered.store(true, Ordering::Relaxed);
    }

    fn offered(&self) -> bool {
        self.offered.load(Ordering::Relaxed) || self.sent() > 0
    }

    pub fn add_received(&self, n: usize) {
        self.received.fetch_add(n as u64, Ordering::Relaxed);
        self.touch();
    }

    pub(super) fn idle_for(&self) -> Duration {
        let last = Duration::from_nanos(self.last_activity_ns.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            elapsed: self.started.elapsed(),
        }
    }
}

/// What a session moved, for the `-v` report.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub sent: u64,
    pub received: u64,
    pub elapsed: Duration,
}

/// How a session that did not fail ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Done,
    /// The peer closed while stdin was still open, and `end_on_socket_eof`
    /// ended the session there.
    PeerClosed,
    /// The reader of stdout went away (EPIPE): end quietly, exit 0.
    StdoutClosed,
}

/// Why the socket-to-output direction stopped early.
#[derive(Debug)]
pub enum RecvError {
    /// The reader of stdout went away (EPIPE).
    StdoutClosed,
    /// stdout failed otherwise (ENOSPC, EIO): fatal for the whole process.
    Stdout(Error),
    /// The socket failed (reset, idle timeout).
    Socket(Error),
}

/// Runs the relay between stdin/stdout and `stream` until both directions are
/// finished (or one of the ending rules of `opts` applies), counting into
/// `counters` (which a progress bar may read meanwhile).
///
/// A session that sent data ends with `Ok` only once the peer's kernel has
/// acknowledged every byte and no reset has arrived: exit 0 then means the
/// peer has it all.
pub fn relay(stream: &Conn, opts: &RelayOpts, counters: &Arc<Counters>) -> Result<End, Error> {
    run(stream, opts, counters)
}

/// Why the stdin-to-socket direction stopped early.
enum SendError {
    /// stdin itself failed: the session cannot go on.
    Stdin(Error),
    /// The peer refused more data (EPIPE, ECONNRESET).
    Peer(Error),
}

enum Event {
    Sent(Result<(), SendError>),
    Received(Result<(), RecvError>),
}

fn run(stream: &Conn, opts: &RelayOpts, counters: &Arc<Counters>) -> Result<End, Error> {
    let peer = stream.peer();
    let (tx, rx) = mpsc::channel();
    let spawn_fail = |e: io::Error| Error::io("start relay thread", &e);
    if opts.direction != Direction::RecvOnly {
        let sock = stream.clone();
        let (tx, counters, half_close) = (tx.clone(), counters.clone(), opts.half_close);
        let shape = Shape {
            crlf: opts.crlf,
            dump: opts.dump.clone(),
        };
        thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                let r = stdin_to_socket(&*sock, &counters, half_close, &shape);
                let _ = tx.send(Event::Sent(r));
            })
            .map_err(spawn_fail)?;
    }
    {
        let sock = stream.clone();
        let out = match opts.direction {
            Direction::SendOnly => Output::Discard,
            _ if opts.fast
                && stream.raw_fd().is_some()
                && splice::kind(libc::STDOUT_FILENO) == Kind::Pipe =>
            {
                Output::SpliceThenClose
            }
            _ => Output::StdoutThenClose,
        };
        let counters = counters.clone();
        let dump = opts.dump.clone();
        thread::Builder::new()
            .name("stdout".into())
            .spawn(move || {
                // The idle timeout is this thread's loop's job: it sees both
                // directions.
                let r = socket_to_output(&*sock, &counters, out, BUF_SIZE, None, dump.as_deref());
                let _ = tx.send(Event::Received(r));
            })
            .map_err(spawn_fail)?;
    }

    let mut sent_done = opts.direction == Direction::RecvOnly;
    let mut received_done = false;
    let mut send_failure = None;
    // When stdin's EOF came, for --quit-after.
    let mut stdin_ended: Option<Instant> = None;
    loop {
        if received_done && (sent_done || opts.end_on_socket_eof) {
            break;
        }
        // --send-only ignores what arrives: the session is stdin's.
        if sent_done && opts.direction == Direction::SendOnly {
            break;
        }
        let quit_in = match (opts.quit_after, stdin_ended) {
            (Some(q), Some(at)) => match q.checked_sub(at.elapsed()) {
                Some(left) if !left.is_zero() => Some(left),
                // nc -q: stdin is done and the peer had its time.
                _ => break,
            },
            _ => None,
        };
        let idle_in = match opts.idle_timeout {
            None => None,
            Some(limit) => {
                let idle = counters.idle_for();
                if idle >= limit {
                    return Err(idle_error(peer, limit));
                }
                Some(limit - idle)
            }
        };
        let event = match (idle_in, quit_in) {
            (None, None) => rx.recv().ok(),
            (a, b) => {
                let wait = a.into_iter().chain(b).min().unwrap_or_default();
                match rx.recv_timeout(wait) {
                    Ok(ev) => Some(ev),
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => None,
                }
            }
        };
        match event {
            None => break,
            Some(Event::Sent(Ok(()))) => {
                sent_done = true;
                stdin_ended = Some(Instant::now());
            }
            Some(Event::Sent(Err(SendError::Stdin(e)))) => return Err(e),
            Some(Event::Sent(Err(SendError::Peer(e)))) => {
                // That direction is over, but what the peer still sends
                // must reach stdout before the failure is reported.
                sent_done = true;
                send_failure = Some(e);
            }
            Some(Event::Received(Ok(()))) => received_done = true,
            Some(Event::Received(Err(RecvError::StdoutClosed))) => return Ok(End::StdoutClosed),
            Some(Event::Received(Err(RecvError::Stdout(e) | RecvError::Socket(e)))) => {
                return Err(e)
            }
        }
    }
    if let Some(e) = send_failure {
        return Err(e);
    }
    // Ended at the peer's EOF with stdin still open: the session sends
    // nothing more (its FIN goes now rather than at exit, and a write the
    // stdin thread still has under way fails there), so the wait below is
    // for what was sent, not for as long as stdin lasts.
    let end = if sent_done {
        End::Done
    } else {
        // The stdin thread may have met the reset that turned the reader's
        // view into a plain EOF: its report, or the connection's state
        // (TCP_CLOSE, where a FIN alone leaves CLOSE_WAIT), tells.
        while let Ok(ev) = rx.try_recv() {
            if let Event::Sent(Err(SendError::Peer(e) | SendError::Stdin(e))) = ev {
                return Err(e);
            }
        }
        if stream.reset_state() {
            return Err(reset_error(peer, counters));
        }
        let _ = stream.shutdown(Shutdown::Write);
        End::PeerClosed
    };
    // Not only when the counters say so: a write still under way has put
    // bytes in the socket before it is counted.
    if opts.direction != Direction::RecvOnly {
        wait_acked(
            &**stream,
            counters,
            opts.idle_timeout,
            &rx,
            end == End::Done,
            received_done,
        )?;
    }
    Ok(end)
}

pub(super) fn idle_error(peer: &Peer, limit: Duration) -> Error {
    Error::new(
        Exit::TimedOut,
        format!("relay with {peer}"),
        format!(
            "no data either way for {} (--idle-timeout)",
            humantime::format_duration(limit)
        ),
    )
}

/// Waits until `ready` says so (it is given how long it may wait). With an
/// idle limit, fails with the idle error once no byte has moved either way
/// for that long, as the session's counters tell: the one meaning of
/// --idle-timeout, whichever thread is waiting and on what.
fn wait_ready(
    ready: impl Fn(Option<Duration>) -> io::Result<bool>,
    counters: &Counters,
    idle: Option<Duration>,
    peer: &Peer,
) -> Result<(), Error> {
    loop {
        let left = match idle {
            None => None,
            Some(limit) => {
                let idle_for = counters.idle_for();
                if idle_for >= limit {
                    return Err(idle_error(peer, limit));
                }
                Some(limit - idle_for)
            }
        };
        match ready(left) {
            Ok(false) => continue,
            Ok(true) => return Ok(()),
            Err(e) => return Err(Error::io("poll", &e)),
        }
    }
}

/// What the stdin direction does to the bytes on their way.
struct Shape {
    crlf: bool,
    dump: Option<Arc<Dump>>,
}

/// stdin to the socket until stdin's EOF, then shutdown(SHUT_WR) if asked.
///
/// Always through a user-space buffer of [`BUF_SIZE`]: measured on loopback,
/// splice(2) from a stdin pipe (1640 MiB/s against 2003, 4 GiB from dd) and
/// sendfile(2) from a file (1.7 GiB/s against 2.4) are slower, because the
/// receiving side copies the data anyway and the kernel-copy paths add page
/// bookkeeping. A stdin pipe is grown so each read can take 1 MiB.
fn stdin_to_socket(
    sock: &dyn Stream,
    counters: &Counters,
    half_close: bool,
    shape: &Shape,
) -> Result<(), SendError> {
    let peer = sock.peer();
    let stdin = libc::STDIN_FILENO;
    if splice::kind(stdin) == Kind::Pipe {
        splice::grow_pipe(stdin);
    }
    let mut buf = AlignedBuf::zeroed(BUF_SIZE);
    let (mut converted, mut after_cr) = (Vec::new(), false);
    loop {
        let n = match stdio::read_stdin(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // A stdin someone left non-blocking: wait instead of spinning.
                let _ = poll::ready(io::stdin().as_fd(), Events::POLLIN, None);
                continue;
            }
            Err(e) => return Err(SendError::Stdin(Error::io("read stdin", &e))),
        };
        counters.offer();
        let out = if shape.crlf {
            dump::crlf(&buf[..n], &mut converted, &mut after_cr);
            &converted[..]
        } else {
            &buf[..n]
        };
        sock.send_all(out)
            .map_err(|e| SendError::Peer(send_error(peer, &e, counters)))?;
        if let Some(d) = &shape.dump {
            d.chunk(Way::Sent, out);
        }
        counters.add_sent(out.len());
    }
    if half_close {
        // ENOTCONN means the peer is already gone; the other direction
        // reports that.
        let _ = sock.shutdown(Shutdown::Write);
    }
    Ok(())
}

fn send_error(peer: &Peer, e: &io::Error, counters: &Counters) -> Error {
    if matches!(e.raw_os_error(), Some(libc::EPIPE) | Some(libc::ECONNRESET)) {
        return reset_error(peer, counters);
    }
    Error::io(format!("send to {peer}"), e)
}

/// A reset, whichever call noticed it (a write's EPIPE or ECONNRESET, a
/// read's ECONNRESET, SO_ERROR, TCP_CLOSE with bytes unacknowledged), in
/// one wording: when data was sent, a reset means the peer closed with
/// some of it unread.
fn reset_error(peer: &Peer, counters: &Counters) -> Error {
    if counters.offered() {
        Error::new(
            Exit::Failure,
            format!("send to {peer}"),
            "connection reset by peer (the peer closed before reading all input)",
        )
    } else {
        Error::new(
            Exit::Failure,
            format!("receive from {peer}"),
            "connection reset by peer",
        )
    }
}

/// Where [`socket_to_output`] puts what arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Read and dropped (`--sink`, `--send-only`).
    Discard,
    /// To stdout in whole chunks, shared with other clients (`-k`).
    Stdout,
    /// To stdout, then stdout is closed at the socket's EOF so a reader
    /// downstream sees its EOF at once (the one-session relay).
    StdoutThenClose,
    /// As `StdoutThenClose`, spliced from the socket into the stdout pipe.
    SpliceThenClose,
}

/// The socket to `out` until the socket's EOF, in reads of `buf_size`.
/// With `idle`, gives up once nothing has moved either way for that long
/// (a thread that serves a client alone has no one else to watch).
pub fn socket_to_output(
    sock: &dyn Stream,
    counters: &Counters,
    out: Output,
    buf_size: usize,
    idle: Option<Duration>,
    dump: Option<&Dump>,
) -> Result<(), RecvError> {
    if matches!(out, Output::StdoutThenClose | Output::SpliceThenClose)
        && splice::kind(libc::STDOUT_FILENO) == Kind::Pipe
    {
        // A default pipe takes 64 KiB at a time; let each call move 1 MiB.
        splice::grow_pipe(libc::STDOUT_FILENO);
    }
    let peer = sock.peer();
    if out == Output::SpliceThenClose {
        return splice_to_stdout(sock, counters, buf_size);
    }
    let mut buf = AlignedBuf::zeroed(buf_size);
    loop {
        if idle.is_some() {
            wait_ready(|t| sock.ready(Events::POLLIN, t), counters, idle, peer)
                .map_err(RecvError::Socket)?;
        }
        if let Err(e) = fit_record(sock, &mut buf) {
            return Err(RecvError::Socket(recv_error(peer, &e, counters)));
        }
        // After a readiness wait, a read that cannot block: a TLS stream
        // is readable when part of a record came, and a blocking read
        // would wait past the idle limit for the rest.
        let got = if idle.is_some() {
            sock.try_recv(&mut buf)
        } else {
            sock.recv(&mut buf)
        };
        let n = match got {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if try_again(&e) => continue,
            Err(e) => return Err(RecvError::Socket(recv_error(peer, &e, counters))),
        };
        counters.add_received(n);
        if let Some(d) = dump {
            d.chunk(Way::Received, &buf[..n]);
        }
        if out == Output::Discard {
            continue;
        }
        match stdio::write_stdout(&buf[..n]) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Err(RecvError::StdoutClosed),
            Err(e) => return Err(RecvError::Stdout(Error::io("write to stdout", &e))),
        }
    }
    if matches!(out, Output::StdoutThenClose | Output::SpliceThenClose) {
        stdio::close_stdout().map_err(|e| RecvError::Stdout(Error::io("close stdout", &e)))?;
    }
    Ok(())
}

/// The socket spliced into the stdout pipe until the socket's EOF, then
/// stdout closed: the kernel moves the pages, nothing is copied through user
/// space (measured on loopback into a pipe reader: about 1.7 GiB/s against
/// 1.1-1.5 for the plain path). Falls back to the plain path if the kernel
/// refuses.
///
/// Never waits inside splice(2): while a splice into a pipe waits for the
/// socket, the kernel holds the pipe's lock, and the process reading the
/// pipe cannot take the bytes already in it (a lock-step dialogue through a
/// coproc or a FIFO then stalls one reply behind). So poll(2) first for
/// data, then splice with SPLICE_F_NONBLOCK, which only moves what is there;
/// EAGAIN then means the pipe is full, and poll waits for room.
fn splice_to_stdout(
    sock: &dyn Stream,
    counters: &Counters,
    buf_size: usize,
) -> Result<(), RecvError> {
    let peer = sock.peer();
    // The plain copy, for a stream splice cannot serve.
    let copy = || {
        socket_to_output(
            sock,
            counters,
            Output::StdoutThenClose,
            buf_size,
            None,
            None,
        )
    };
    let Some(raw) = sock.raw_fd() else {
        return copy();
    };
    let stdout = io::stdout();
    let mut moved_any = false;
    loop {
        wait_ready(|t| sock.ready(Events::POLLIN, t), counters, None, peer)
            .map_err(RecvError::Socket)?;
        match splice::splice_nonblock(raw, stdout.as_fd(), splice::CHUNK) {
            Ok(0) => break,
            Ok(n) => {
                moved_any = true;
                counters.add_received(n);
            }
            Err(e)
                if !moved_any
                    && matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) =>
            {
                return copy();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let stdout = io::stdout();
                wait_ready(
                    |t| poll::ready(stdout.as_fd(), Events::POLLOUT, t),
                    counters,
                    None,
                    peer,
                )
                .map_err(RecvError::Stdout)?;
            }
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Err(RecvError::StdoutClosed),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ECONNRESET) | Some(libc::ETIMEDOUT)
                ) =>
            {
                return Err(RecvError::Socket(recv_error(peer, &e, counters)))
            }
            Err(e) => return Err(RecvError::Stdout(Error::io("write to stdout", &e))),
        }
    }
    stdio::close_stdout().map_err(|e| RecvError::Stdout(Error::io("close stdout", &e)))
}

fn recv_error(peer: &Peer, e: &io::Error, counters: &Counters) -> Error {
    if e.raw_os_error() == Some(libc::ECONNRESET) {
        return reset_error(peer, counters);
    }
    Error::io(format!("receive from {peer}"), e)
}

/// Waits until the peer's kernel has acknowledged every byte sent
/// (SIOCOUTQ reaches 0), so that an exit 0 means the peer has it all, and
/// closing cannot discard what is still unsent. Ends with an error when the
/// peer resets instead (SO_ERROR, or the connection in TCP_CLOSE with bytes
/// unacknowledged: after a reset SIOCOUTQ stays where it was), when the
/// other direction fails, or at the idle limit (a changing SIOCOUTQ counts
/// as activity). `send_errors` says whether a failure of the stdin thread
/// still matters (not once the session shut the socket down itself);
/// `reader_done` whether the reading thread has reported its end.
fn wait_acked(
    stream: &dyn Stream,
    counters: &Counters,
    idle: Option<Duration>,
    events: &mpsc::Receiver<Event>,
    send_errors: bool,
    reader_done: bool,
) -> Result<(), Error> {
    let peer = stream.peer();
    let mut last_unacked = usize::MAX;
    // Acks usually come within a round trip; back off from 1 ms so a slow
    // peer costs few wake-ups.
    let mut pause = Duration::from_millis(1);
    loop {
        check_reset(stream, counters)?;
        let Some(unacked) = stream.unacked() else {
            // A transport that cannot tell: nothing to wait for.
            return Ok(());
        };
        if unacked == 0 {
            return settle(stream, counters, events, send_errors, reader_done);
        }
        if unacked != last_unacked {
            last_unacked = unacked;
            counters.touch();
            pause = Duration::from_millis(1);
        }
        if let Some(limit) = idle {
            if counters.idle_for() >= limit {
                return Err(idle_error(peer, limit));
            }
        }
        match events.recv_timeout(pause) {
            Ok(Event::Received(Err(RecvError::Socket(e)))) => return Err(e),
            Ok(Event::Sent(Err(SendError::Peer(e) | SendError::Stdin(e)))) if send_errors => {
                return Err(e)
            }
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => thread::sleep(pause),
        }
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The send queue is empty: every byte was acknowledged, or (on a Unix
/// socket, whose queue is the peer's unread data) the peer closed and the
/// kernel dropped what it had not read. That close sets the reset before it
/// frees the queue, so SO_ERROR read now holds it, unless the reading
/// thread's recv took it first; then, the peer being gone, that thread's
/// report is moments away and is waited for (bounded).
fn settle(
    stream: &dyn Stream,
    counters: &Counters,
    events: &mpsc::Receiver<Event>,
    send_errors: bool,
    reader_done: bool,
) -> Result<(), Error> {
    check_reset(stream, counters)?;
    // nix names no POLLRDHUP: the peer shut its side down or closed.
    let gone = Events::from_bits_retain(libc::POLLRDHUP) | Events::POLLHUP | Events::POLLERR;
    let mut wait = if reader_done {
        Duration::ZERO
    } else if stream.ready(gone, Some(Duration::ZERO)).unwrap_or(false) {
        Duration::from_secs(2)
    } else {
        Duration::ZERO
    };
    let deadline = Instant::now() + wait;
    loop {
        match events.recv_timeout(wait) {
            Ok(Event::Received(Err(RecvError::Socket(e)))) => return Err(e),
            Ok(Event::Sent(Err(SendError::Peer(e) | SendError::Stdin(e)))) if send_errors => {
                return Err(e)
            }
            Ok(Event::Received(_)) => return Ok(()),
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
        wait = deadline.saturating_duration_since(Instant::now());
    }
}

/// Fails when a reset has ended the connection: SO_ERROR holds it, or (when
/// the reading thread already took SO_ERROR) the connection sits in
/// TCP_CLOSE with bytes the peer never acknowledged.
fn check_reset(stream: &dyn Stream, counters: &Counters) -> Result<(), Error> {
    let peer = stream.peer();
    if let Ok(Some(e)) = stream.take_error() {
        return Err(send_error(peer, &e, counters));
    }
    if stream.reset_state() && stream.unacked().is_some_and(|n| n > 0) {
        return Err(reset_error(peer, counters));
    }
    Ok(())
}

/// A read to retry: interrupted, or nothing there after all (a readiness
/// wait answered for part of a TLS record).
fn try_again(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
    )
}

/// Grows `buf` to the next record when the stream keeps records, so no
/// read cuts one (the kernel drops what does not fit).
fn fit_record(stream: &dyn Stream, buf: &mut AlignedBuf) -> io::Result<()> {
    if let Some(len) = stream.record_len()? {
        buf.grow_to(len);
    }
    Ok(())
}

/// `--echo`: everything that arrives is sent back; at the peer's EOF the
/// socket is half-closed so the peer sees the end of its echo. With `idle`,
/// gives up once nothing has moved either way for that long.
pub fn echo(
    stream: &dyn Stream,
    counters: &Counters,
    buf_size: usize,
    idle: Option<Duration>,
) -> Result<(), Error> {
    let peer = stream.peer();
    let mut buf = AlignedBuf::zeroed(buf_size);
    loop {
        wait_ready(|t| stream.ready(Events::POLLIN, t), counters, idle, peer)?;
        if let Err(e) = fit_record(stream, &mut buf) {
            return Err(recv_error(peer, &e, counters));
        }
        let n = match stream.try_recv(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if try_again(&e) => continue,
            Err(e) => return Err(recv_error(peer, &e, counters)),
        };
        counters.add_received(n);
        // Send what fits and wait for room: a blocking send of the whole
        // buffer could sit past the idle limit with nothing watching.
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            wait_ready(|t| stream.ready(Events::POLLOUT, t), counters, idle, peer)?;
            match stream.try_send(rest) {
                Ok(k) => {
                    counters.add_sent(k);
                    rest = &rest[k..];
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(send_error(peer, &e, counters)),
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}
