//! A stream that is a kernel socket (TCP or Unix): the bytes on the
//! descriptor are the stream's, so the fast paths apply.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

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
}

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

    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.send_with_flags(buf, libc::MSG_NOSIGNAL)
    }

    fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock
            .send_with_flags(buf, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
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
        Some(self.sock.as_fd())
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

    fn configure(&self, opts: &SocketOpts) -> io::Result<()> {
        match self.family {
            Family::Tcp => apply_stream(&self.sock, opts),
            // Buffer sizes mean something on a Unix socket; TCP options do
            // not. Without --sndbuf the send buffer is widened: a relay
            // writes 1 MiB at a time.
            Family::Unix => {
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
