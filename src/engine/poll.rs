//! Waiting for one descriptor: poll(2) through nix, with EINTR retried on
//! the time that is left, so no caller has its own loop for it.

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
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let wait = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                // Round up: a 0.4 ms remainder must wait, not spin.
                let left = d.saturating_duration_since(Instant::now());
                let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(fd, events)];
        match nix::poll::poll(&mut fds, wait) {
            Ok(n) => return Ok(n > 0),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
