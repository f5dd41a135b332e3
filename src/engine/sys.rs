//! The raw libc calls that neither socket2 nor nix wrap, each with its
//! SAFETY note. Everything else in the engine goes through those crates.

use std::io;
use std::os::fd::RawFd;

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
