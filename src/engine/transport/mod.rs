//! What a byte stream, a listener or a datagram socket is, whatever carries
//! it. The relay, the `-k` fan-out, `--echo`, `--sink` and listen's accept
//! loop are written against these seams only; a transport is one file here
//! (`tcp.rs`, `unix.rs`, `tls.rs` over either) and one [`crate::config::Target`] variant.
//!
//! Fast paths (splice, SIOCOUTQ) need the bytes on a kernel socket to be the
//! stream's bytes: [`Stream::raw_fd`] says when they are, so a transport
//! that transforms them (TLS) takes the plain copies by construction.

pub mod kernel;
pub mod tcp;
pub mod tls;
pub mod unix;

use std::fmt;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::Duration;

use super::poll::{self, Events};
use super::socket::{display_addr, SocketOpts};

pub use unix::{UnixAddr, UnixName};

/// Who is at the other end of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    Inet(SocketAddr),
    Unix {
        /// The address the peer bound, usually none for a client.
        name: UnixName,
        /// SO_PEERCRED, with the command read from /proc when it can be.
        cred: Option<Cred>,
    },
}

/// A Unix peer's credentials as the kernel recorded them at connect(2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// /proc/PID/comm, when the process is still there and visible.
    pub command: Option<String>,
}

impl Peer {
    /// The IP address an ACL decides on; `None` for a Unix peer.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Peer::Inet(addr) => Some(addr.ip()),
            Peer::Unix { .. } => None,
        }
    }
}

impl Peer {
    /// The address to send to, for a datagram's answer: `None` for an
    /// unnamed Unix socket; an error for a name socket2 cannot hold.
    pub fn sockaddr(&self) -> Option<io::Result<socket2::SockAddr>> {
        match self {
            Peer::Inet(addr) => Some(Ok(socket2::SockAddr::from(*addr))),
            Peer::Unix {
                name: UnixName::Bound(addr),
                ..
            } => Some(addr.sockaddr()),
            Peer::Unix { .. } => None,
        }
    }

    /// SO_PEERCRED in words, for `-v`: "pid 4242 (python3) uid 1000 gid 1000".
    pub fn credentials(&self) -> Option<String> {
        match self {
            Peer::Unix { cred: Some(c), .. } => Some(format!(
                "pid {} ({}) uid {} gid {}",
                c.pid,
                c.command.as_deref().unwrap_or("?"),
                c.uid,
                c.gid
            )),
            _ => None,
        }
    }
}

/// The short name errors and `-v` lines use: the address, or for a Unix
/// client (which is rarely bound to a name) its process.
impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Inet(addr) => f.write_str(&display_addr(addr)),
            Peer::Unix {
                name: UnixName::Unnamed,
                cred: Some(c),
            } => write!(f, "pid {} ({})", c.pid, c.command.as_deref().unwrap_or("?")),
            Peer::Unix { name, .. } => write!(f, "{name}"),
        }
    }
}

/// A connected byte stream. Every method takes `&self`: the relay reads in
/// one thread while another writes, as a socket allows.
pub trait Stream: Send + Sync {
    /// recv(2): Ok(0) is the peer's EOF.
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// recv(2) of what is there now (MSG_DONTWAIT): WouldBlock when
    /// nothing is.
    fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// send(2), blocking, without SIGPIPE (EPIPE comes back instead).
    fn send(&self, buf: &[u8]) -> io::Result<usize>;

    /// send(2) of what fits now (MSG_DONTWAIT): WouldBlock when nothing does.
    fn try_send(&self, buf: &[u8]) -> io::Result<usize>;

    /// sendmsg(2) of what fits now from several buffers in turn, so a
    /// layer above (TLS records) sends them without joining them first.
    fn try_send_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(b) => self.try_send(b),
            None => Ok(0),
        }
    }

    /// shutdown(2): `Write` sends the end of the stream, the peer reads EOF.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;

    /// Who is at the other end.
    fn peer(&self) -> &Peer;

    /// This end's address, for `-v` ("connected from ...").
    fn local(&self) -> Option<String>;

    /// The descriptor readiness is waited on.
    fn fd(&self) -> BorrowedFd<'_>;

    /// The descriptor, when the bytes on it are the stream's bytes (splice
    /// and SIOCOUTQ then apply); `None` for a transport that transforms them.
    fn raw_fd(&self) -> Option<BorrowedFd<'_>>;

    /// For a transport that keeps record boundaries (SOCK_SEQPACKET):
    /// waits for the next record and gives its length (0 at EOF), so the
    /// read that follows can take it whole instead of cutting it. `None`
    /// for a byte stream, whose reads may split it anywhere.
    fn record_len(&self) -> io::Result<Option<usize>> {
        Ok(None)
    }

    /// Bytes sent that the peer has not yet taken (TCP: not acknowledged;
    /// Unix: not read), when the transport can tell.
    fn unacked(&self) -> Option<usize>;

    /// SO_ERROR: a reset that arrived while no call was there to see it.
    fn take_error(&self) -> io::Result<Option<io::Error>>;

    /// The kernel's state says the connection was reset (TCP_CLOSE), even
    /// when another call already took SO_ERROR.
    fn reset_state(&self) -> bool;

    /// The options that apply to a connected stream of this transport.
    fn configure(&self, opts: &SocketOpts) -> io::Result<()>;

    /// SO_LINGER 0: the close that follows sends a reset instead of the end
    /// of the stream, so a forwarded peer learns that the other side
    /// failed rather than reading a clean EOF.
    fn reset_on_close(&self) {}

    /// Waits until the stream is ready for `events`, at most `timeout`:
    /// Ok(false) when it passed.
    fn ready(&self, events: Events, timeout: Option<Duration>) -> io::Result<bool> {
        poll::ready(self.fd(), events, timeout)
    }

    /// [`Stream::send`] until all of `buf` is gone.
    fn send_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.send(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A stream shared by the threads of one session.
pub type Conn = Arc<dyn Stream>;

/// A datagram socket of any transport (UDP, Unix SOCK_DGRAM): whole
/// messages, each from or to a [`Peer`]. The receive side takes flags so
/// MSG_PEEK | MSG_TRUNC can learn a datagram's real length before it is
/// read (engine/udp.rs grows its buffer by that).
pub trait Datagram {
    /// recvfrom(2) with `flags`, retrying EINTR: the call's length (with
    /// MSG_TRUNC, the datagram's real length) and the sender.
    fn recv_datagram(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<(usize, Peer)>;

    /// send(2) of one datagram on a connected socket, retrying EINTR.
    fn send_datagram(&self, buf: &[u8]) -> io::Result<usize>;

    /// sendto(2) of one datagram to `to`. An unnamed Unix sender cannot
    /// be answered: there is no address to send to.
    fn send_datagram_to(&self, buf: &[u8], to: &Peer) -> io::Result<usize>;
}

/// A listening socket of any transport.
pub trait Listener: Send + Sync {
    /// accept(2): the next client, blocking. Fails with EINVAL once
    /// [`Listener::stop`] has been called.
    fn accept(&self) -> io::Result<Conn>;

    /// Where it listens, for the "listening on" line.
    fn local(&self) -> String;

    /// Stops listening (shutdown(SHUT_RD) of the listening socket), which
    /// wakes a thread blocked in accept(2); later connects are refused.
    fn stop(&self);
}
