//! The process's stdin and stdout as raw, unbuffered byte streams.
//!
//! Payload goes straight to fd 1 in whole chunks under one lock, so chunks
//! from concurrent clients never interleave and nothing waits in a user-space
//! buffer when the process ends.

use std::fs::OpenOptions;
use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Mutex;

static STDOUT: Mutex<()> = Mutex::new(());

/// read(2) on fd 0, retrying EINTR. Ok(0) is end of file.
pub fn read_stdin(buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::read(libc::STDIN_FILENO, buf) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

/// write(2) of all of `buf` to fd 1, as one uninterrupted chunk with respect
/// to other callers. EPIPE comes back as `ErrorKind::BrokenPipe`.
pub fn write_stdout(buf: &[u8]) -> io::Result<()> {
    let _chunk = STDOUT.lock().unwrap_or_else(|p| p.into_inner());
    let out = io::stdout();
    let fd = out.as_fd();
    let mut rest = buf;
    while !rest.is_empty() {
        match nix::unistd::write(fd, rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = &rest[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Closes the reader's end of stdout at once by pointing fd 1 at /dev/null
/// (dup2), so a reader downstream sees EOF while the process goes on; fd 1
/// stays valid, so no later socket can take its number.
pub fn close_stdout() -> io::Result<()> {
    let _chunk = STDOUT.lock().unwrap_or_else(|p| p.into_inner());
    let null = OpenOptions::new().write(true).open("/dev/null")?;
    // dup2 replaces fd 1 atomically: no moment where the number is free.
    nix::unistd::dup2(null.as_raw_fd(), libc::STDOUT_FILENO)?;
    Ok(())
}

pub fn stdin_is_terminal() -> bool {
    io::stdin().is_terminal()
}
