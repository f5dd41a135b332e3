//! The raw libc calls that neither socket2 nor nix wrap, each with its
//! SAFETY note. Everything else in the engine goes through those crates.

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// poll(2) on one descriptor until it is ready for `events` or `timeout`
/// passes (`None`: no limit). EINTR is retried with the time that is left.
/// Returns the `revents` the kernel set, 0 when the time ran out.
pub fn poll_one(
    fd: RawFd,
    events: libc::c_short,
    timeout: Option<Duration>,
) -> io::Result<libc::c_short> {
    let mut fds = [libc::pollfd {
        fd,
        events,
        revents: 0,
    }];
    poll(&mut fds, timeout)?;
    Ok(fds[0].revents)
}

/// poll(2) on `fds` until one is ready or `timeout` passes (`None`: no
/// limit), EINTR retried with the time that is left. Returns how many are
/// ready (0 when the time ran out); each `revents` says which.
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                // Round up: a 0.4 ms remainder must wait, not spin.
                let left = d.saturating_duration_since(Instant::now());
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int
            }
        };
        for p in fds.iter_mut() {
            p.revents = 0;
        }
        // SAFETY: the pollfds are owned by the caller's slice for the whole
        // call, and the count passed is its length.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if rc >= 0 {
            return Ok(rc as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// ioctl(SIOCOUTQ): bytes in a socket's send queue that the peer has not
/// acknowledged yet (TCP; for a Unix stream, not yet read).
pub fn unacked(fd: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ's number) writes one int through the pointer.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n.max(0) as usize)
}

/// The TCP state (TCP_ESTABLISHED, TCP_CLOSE, ...) from getsockopt(TCP_INFO).
pub fn tcp_state(fd: RawFd) -> io::Result<u8> {
    // SAFETY: tcp_info is plain data; all-zero is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info` and stores
    // the length it wrote; a shorter (older) struct leaves the rest zero.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info.tcpi_state)
}
