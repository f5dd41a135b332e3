//! The relay's fast path: splice(2) from a socket into a pipe (the kernel
//! moves pages; nothing is copied through user space), and the pipe sizing
//! that makes large calls possible on either path.
//!
//! A default pipe hands over at most 64 KiB per call whatever is asked, so a
//! stdin or stdout pipe is grown to [`PIPE_SIZE`] first (F_SETPIPE_SZ; best
//! effort, capped by /proc/sys/fs/pipe-max-size for unprivileged users).

use std::io;
use std::os::fd::RawFd;

/// Bytes asked of each splice, sendfile or read call.
pub const CHUNK: usize = 1 << 20;
/// What stdin and stdout pipes are grown to.
pub const PIPE_SIZE: libc::c_int = 1 << 20;

/// What a standard descriptor is, for choosing how to move its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Pipe,
    /// A regular file, with its size (a known total for --progress).
    File(u64),
    Other,
}

/// fstat(2) of `fd`.
pub fn kind(fd: RawFd) -> Kind {
    // SAFETY: fstat writes one stat struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is valid for writes; a bad fd only makes fstat fail.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Kind::Other;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => Kind::Pipe,
        libc::S_IFREG => Kind::File(st.st_size.max(0) as u64),
        _ => Kind::Other,
    }
}

/// fcntl(F_SETPIPE_SZ): grows a pipe so each call can move [`CHUNK`].
pub fn grow_pipe(fd: RawFd) {
    // SAFETY: F_SETPIPE_SZ takes an int; failure leaves the pipe as it was.
    unsafe {
        libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_SIZE);
    }
}

/// splice(2) of up to `len` bytes from `from` to `to` (one must be a pipe)
/// with SPLICE_F_NONBLOCK, EINTR retried. Ok(0) is end of input. The flag
/// makes the pipe side non-blocking (EAGAIN when it is full); a blocking
/// socket still waits for data, so call this only once poll(2) says the
/// socket is readable.
pub fn splice_nonblock(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    loop {
        // SAFETY: null offsets: both descriptors use and advance their own
        // file position (pipes and sockets have none).
        let n = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
