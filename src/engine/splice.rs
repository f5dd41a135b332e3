//! The relay's fast path: splice(2) from a socket into a pipe (the kernel
//! moves pages; nothing is copied through user space), and the pipe sizing
//! that makes large calls possible on either path.
//!
//! A default pipe hands over at most 64 KiB per call whatever is asked, so a
//! stdin or stdout pipe is grown to [`PIPE_SIZE`] first (F_SETPIPE_SZ; best
//! effort, capped by /proc/sys/fs/pipe-max-size for unprivileged users).

use std::io;
use std::os::fd::{BorrowedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, SpliceFFlags};

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

/// fstat(2) of `fd`. A descriptor fstat refuses is [`Kind::Other`].
pub fn kind(fd: RawFd) -> Kind {
    let Ok(st) = nix::sys::stat::fstat(fd) else {
        return Kind::Other;
    };
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => Kind::Pipe,
        libc::S_IFREG => Kind::File(st.st_size.max(0) as u64),
        _ => Kind::Other,
    }
}

/// fcntl(F_SETPIPE_SZ): grows a pipe so each call can move [`CHUNK`]. Best
/// effort: a failure (EPERM past pipe-max-size, EBADF, not a pipe) leaves
/// the pipe as it was.
pub fn grow_pipe(fd: RawFd) {
    let _ = nix::fcntl::fcntl(fd, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
}

/// splice(2) of up to `len` bytes from `from` to `to` (one must be a pipe)
/// with SPLICE_F_NONBLOCK, EINTR retried. Ok(0) is end of input. The flag
/// makes the pipe side non-blocking (EAGAIN when it is full); a blocking
/// socket still waits for data, so call this only once poll(2) says the
/// socket is readable.
pub fn splice_nonblock(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    // SPLICE_F_MOVE: a hint to move pages rather than copy them.
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    loop {
        // No offsets: both descriptors use and advance their own file
        // position (pipes and sockets have none).
        match nix::fcntl::splice(from, None, to, None, len, flags) {
            Err(Errno::EINTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}
