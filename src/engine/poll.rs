//! Waiting for one descriptor: poll(2) through nix, with EINTR retried on
//! the time that is left, so no caller has its own loop for it. Every
//! poll in sonda goes through here (scan's epoll loop borrows the timeout
//! rounding).

use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

pub use nix::poll::PollFlags as Events;

/// Blocks until `fd` is ready for `events` (or has an error or hangup to
/// report) or `timeout` passes (`None`: no limit). Ok(false) means the time
/// ran out.
pub fn ready(fd: BorrowedFd<'_>, events: PollFlags, timeout: Option<Duration>) -> io::Result<bool> {
    ready_unless(fd, events, timeout, || false)
}

/// [`ready`], except that an EINTR for which `stop()` is true ends the wait
/// with `ErrorKind::Interrupted` instead of being retried: for a caller that
/// set up a signal to end the wait (connect's SIGALRM).
pub fn ready_unless(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    timeout: Option<Duration>,
    stop: impl Fn() -> bool,
) -> io::Result<bool> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let mut fds = [PollFd::new(fd, events)];
        match nix::poll::poll(&mut fds, timeout_until(deadline)) {
            Ok(n) => return Ok(n > 0),
            Err(Errno::EINTR) if stop() => return Err(io::ErrorKind::Interrupted.into()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The poll(2) (or epoll_wait(2)) timeout that ends at `deadline` (`None`:
/// no limit), in whole milliseconds rounded up: a 0.4 ms remainder must
/// wait, not spin. A deadline already past is zero.
pub fn timeout_until(deadline: Option<Instant>) -> PollTimeout {
    match deadline {
        None => PollTimeout::NONE,
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
        }
    }
}

/// Which of two descriptors [`either`] found ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    First,
    /// The second (a wake-up descriptor) is readable.
    Second,
    TimedOut,
}

/// Blocks until `fd` is ready for `events` or `wake` is readable, at most
/// `timeout`: one thread's wait that another can cut short (eventfd).
pub fn either(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    wake: BorrowedFd<'_>,
    timeout: Option<Duration>,
) -> io::Result<Ready> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let mut fds = [
            PollFd::new(fd, events),
            PollFd::new(wake, PollFlags::POLLIN),
        ];
        match nix::poll::poll(&mut fds, timeout_until(deadline)) {
            Ok(0) => return Ok(Ready::TimedOut),
            Ok(_) => {
                let woken = fds[1].revents().is_some_and(|r| !r.is_empty());
                return Ok(if woken { Ready::Second } else { Ready::First });
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
