//! A stream that is a kernel socket (TCP or Unix): the bytes on the
//! descriptor are the stream's, so the fast paths apply.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use socket2::Socket;

use super::{Datagram, Peer, Stream, UnixName};
use crate::engine::socket::{apply_stream, SocketOpts};
use crate::engine::sys;

/// TCP_CLOSE from the kernel's tcp_states.h: what a connection becomes when
/// a reset arrives (and after a normal close once every byte is acked).
const TCP_CLOSE: u8 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Tcp,
    Unix,
    /// SOCK_SEQPACKET: a Unix socket whose reads take one record each.
    SeqPacket,
}

/// The largest record read whole; the kernel bounds a record by the
/// sender's send buffer, which root can force far higher.
const MAX_RECORD: usize = 64 << 20;

/// A connected SOCK_STREAM (or SOCK_SEQPACKET) socket and who is on the
/// other end.
pub struct SocketStream {
    sock: Socket,
    peer: Peer,
    family: Family,
}

impl SocketStream {
    pub fn new(sock: Socket, peer: Peer, family: Family) -> SocketStream {
        SocketStream { sock, peer, family }
    }
}

impl Stream for SocketStream {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // `Read` is implemented for `&Socket`: two threads may share it.
        io::Read::read(&mut &self.sock, buf)
    }

    fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        nix::sys::socket::recv(
            self.sock.as_raw_fd(),
            buf,
            nix::sys::socket::MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)
    }

    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.send_with_flags(buf, libc::MSG_NOSIGNAL)
    }

    fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock
            .send_with_flags(buf, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
    }

    fn try_send_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.sock
            .send_vectored_with_flags(bufs, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }

    fn peer(&self) -> &Peer {
        &self.peer
    }

    fn local(&self) -> Option<String> {
        let addr = self.sock.local_addr().ok()?;
        match addr.as_socket() {
            Some(inet) => Some(crate::engine::socket::display_addr(&inet)),
            None => Some(super::UnixName::of(&addr).to_string()),
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    fn raw_fd(&self) -> Option<BorrowedFd<'_>> {
        // splice(2) from a record socket reads into the pipe's free pages
        // and would cut a record larger than they are.
        (self.family != Family::SeqPacket).then(|| self.sock.as_fd())
    }

    fn record_len(&self) -> io::Result<Option<usize>> {
        if self.family != Family::SeqPacket {
            return Ok(None);
        }
        // MSG_TRUNC gives the record's whole length; MSG_PEEK leaves it
        // queued for the read that follows.
        let n = loop {
            match self
                .sock
                .recv_with_flags(&mut [], libc::MSG_PEEK | libc::MSG_TRUNC)
            {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        if n > MAX_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a record of {n} bytes is larger than sonda reads whole (64 MiB)"),
            ));
        }
        Ok(Some(n))
    }

    fn unacked(&self) -> Option<usize> {
        sys::unacked(self.sock.as_raw_fd()).ok()
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    fn reset_state(&self) -> bool {
        self.family == Family::Tcp && sys::tcp_state(self.sock.as_raw_fd()).ok() == Some(TCP_CLOSE)
    }

    fn reset_on_close(&self) {
        // Best effort: the close still ends the stream without it.
        let _ = self.sock.set_linger(Some(Duration::ZERO));
    }

    fn configure(&self, opts: &SocketOpts) -> io::Result<()> {
        match self.family {
            Family::Tcp => apply_stream(&self.sock, opts),
            // Buffer sizes mean something on a Unix socket; TCP options do
            // not. Without --sndbuf the send buffer is widened: a relay
            // writes 1 MiB at a time.
            Family::Unix | Family::SeqPacket => {
                if opts.sndbuf.is_none() {
                    super::unix::widen_send_buffer(&self.sock);
                }
                let tcp_free = SocketOpts {
                    nodelay: false,
                    keepalive: None,
                    ..opts.clone()
                };
                apply_stream(&self.sock, &tcp_free)
            }
        }
    }
}

/// UDP and Unix datagram sockets alike: the address family is in the
/// socket, the sender's name in what recvfrom(2) returns.
impl Datagram for Socket {
    fn recv_datagram(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<(usize, Peer)> {
        loop {
            match sys::recvfrom(self.as_fd(), buf, flags) {
                Ok((n, addr)) => {
                    let peer = match addr.as_socket() {
                        Some(inet) => Peer::Inet(inet),
                        // A path, an abstract name (an autobound sender's
                        // too), or nothing: a sender that never bound.
                        None => Peer::Unix {
                            name: UnixName::of(&addr),
                            cred: None,
                        },
                    };
                    return Ok((n, peer));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn send_datagram(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.send(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    fn send_datagram_to(&self, buf: &[u8], to: &Peer) -> io::Result<usize> {
        let addr = to.sockaddr().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "the sender is unnamed (its socket is not bound), so it cannot be answered",
            )
        })??;
        self.send_to(buf, &addr)
    }
}
