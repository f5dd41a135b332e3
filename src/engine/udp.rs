//! Datagrams, UDP or Unix: a receiver that never truncates silently, and a
//! connected sender that hears ICMP port unreachable (UDP) or the receiver
//! going away (Unix).
//!
//! The receiver peeks each datagram (MSG_PEEK | MSG_TRUNC: Linux then returns
//! the datagram's real length, whatever the buffer) and doubles its buffer
//! until the datagram fits or the limit is reached, before receiving it for
//! real. Only then can a datagram be cut, and the caller learns it was, with
//! its real length.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use nix::sys::socket::{getsockopt, sockopt};
use socket2::{SockAddr, Socket};

use super::socket::{bind_socket, display_addr, Proto, SocketOpts};
use super::sys::{self, PacketInfo};
use super::transport::{Datagram as _, Peer};
use crate::error::{Error, Exit};

/// The largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP).
pub const MAX_PAYLOAD_V4: usize = 65507;
/// The largest UDP payload over IPv6 without jumbograms (65535 - 8 UDP).
pub const MAX_PAYLOAD_V6: usize = 65527;

/// One received datagram: `len` bytes are in the receiver's buffer;
/// `original_len` is what the sender sent.
#[derive(Clone, Debug)]
pub struct Datagram {
    pub len: usize,
    pub original_len: usize,
    pub from: Peer,
    /// TTL, TOS and destination, when the receiver asked for them.
    pub info: Option<PacketInfo>,
}

impl Datagram {
    pub fn truncated(&self) -> bool {
        self.original_len > self.len
    }
}

/// The buffer grew from `from` to `to` bytes for a datagram of `datagram`.
#[derive(Clone, Copy, Debug)]
pub struct Growth {
    pub from: usize,
    pub to: usize,
    pub datagram: usize,
}

pub struct Receiver {
    sock: Socket,
    buf: Vec<u8>,
    max: usize,
    grow: bool,
    info: bool,
}

impl Receiver {
    /// `initial` bytes of buffer, growing up to `max` unless `grow` is false.
    pub fn new(sock: Socket, initial: usize, max: usize, grow: bool) -> Receiver {
        Receiver {
            sock,
            buf: vec![0; initial.max(1)],
            max: max.max(initial),
            grow,
            info: false,
        }
    }

    /// Reads each datagram's TTL, TOS and destination from then on (UDP
    /// only: a Unix socket has no IP header).
    pub fn with_packet_info(mut self) -> io::Result<Receiver> {
        let v6 = self.sock.domain()? == socket2::Domain::IPV6;
        sys::want_packet_info(&self.sock, v6)?;
        self.info = true;
        Ok(self)
    }

    pub fn socket(&self) -> &Socket {
        &self.sock
    }

    /// Blocks for the next datagram (bounded by the socket's SO_RCVTIMEO:
    /// `WouldBlock` when it passes). Grows the buffer first if the datagram
    /// does not fit and growth is allowed.
    pub fn recv(&mut self) -> io::Result<(Datagram, Option<Growth>)> {
        let start = self.buf.len();
        let mut growth = None;
        while self.grow && self.buf.len() < self.max {
            let (real, _) = self
                .sock
                .recv_datagram(&mut self.buf, libc::MSG_PEEK | libc::MSG_TRUNC)?;
            if real <= self.buf.len() {
                break;
            }
            let doubled = self.buf.len().saturating_mul(2).min(self.max);
            self.buf.resize(doubled, 0);
            growth = Some(Growth {
                from: start,
                to: doubled,
                datagram: real,
            });
        }
        let (real, from, info) = if self.info {
            let (real, addr, info) = loop {
                match sys::recvmsg_info(self.sock.as_fd(), &mut self.buf, libc::MSG_TRUNC) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            let from = addr
                .as_socket()
                .map(Peer::Inet)
                .ok_or_else(|| io::Error::other("a datagram from no IP address"))?;
            (real, from, Some(info))
        } else {
            let (real, from) = self.sock.recv_datagram(&mut self.buf, libc::MSG_TRUNC)?;
            (real, from, None)
        };
        let datagram = Datagram {
            len: real.min(self.buf.len()),
            original_len: real,
            from,
            info,
        };
        Ok((datagram, growth))
    }

    /// The payload of the datagram `recv` just returned.
    pub fn payload(&self, d: &Datagram) -> &[u8] {
        &self.buf[..d.len]
    }

    /// sendto(2) of `data` to `to` (for `--echo`).
    pub fn send_to(&self, data: &[u8], to: &Peer) -> io::Result<usize> {
        self.sock.send_datagram_to(data, to)
    }
}

/// Datagrams the kernel dropped for this socket because its receive buffer
/// was full: the `drops` column of /proc/net/udp or udp6 for the socket's
/// inode. `None` where /proc does not tell.
pub fn kernel_drops(sock: &Socket) -> Option<u64> {
    let inode = nix::sys::stat::fstat(sock.as_raw_fd())
        .ok()?
        .st_ino
        .to_string();
    ["/proc/net/udp", "/proc/net/udp6"].iter().find_map(|file| {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines().skip(1).find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() >= 13 && f[9] == inode).then(|| f.last()?.parse().ok())?
        })
    })
}

/// How a sender reaches a broadcast or multicast destination.
#[derive(Clone, Debug)]
pub struct Fanout {
    /// SO_BROADCAST.
    pub broadcast: bool,
    /// IP_MULTICAST_IF / IPV6_MULTICAST_IF by interface name.
    pub multicast_if: Option<String>,
    /// IP_MULTICAST_LOOP: on, as the kernel has it, unless asked.
    pub multicast_loop: bool,
    /// Replies are awaited (--wait-reply): to a broadcast or a group the
    /// socket then stays unconnected, as the answers come from the
    /// members' own addresses, which a connected socket would drop.
    pub replies: bool,
}

/// A UDP socket connected to the first address of `addrs` in the family of
/// `source` (any family without one). connect(2) on UDP sends nothing; it
/// fixes the peer, so the kernel reports the peer's ICMP errors to us.
pub fn connect(
    addrs: &[SocketAddr],
    (source, source_port): (Option<SocketAddr>, Option<u16>),
    fanout: &Fanout,
    opts: &SocketOpts,
) -> Result<(Socket, Peer), Error> {
    let peer = *addrs
        .iter()
        .find(|a| source.is_none_or(|s| s.is_ipv4() == a.is_ipv4()))
        .ok_or_else(|| {
            Error::new(
                Exit::Resolve,
                "udp-send",
                "no resolved address is in the family of the --source address",
            )
        })?;
    if fanout.broadcast && peer.is_ipv6() {
        return Err(Error::usage(
            "'--broadcast'",
            format!(
                "IPv6 has no broadcast ({} is IPv6): send to a multicast group, ff02::1 for every node on a link",
                peer.ip()
            ),
        ));
    }
    let port = source_port.unwrap_or(0);
    let local = source.unwrap_or_else(|| match peer {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], port)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], port)),
    });
    let sock = bind_socket(local, Proto::Udp, opts, None)?;
    let what = format!("connect UDP {}", display_addr(&peer));
    if fanout.broadcast {
        sock.set_broadcast(true).map_err(|e| Error::io(&what, &e))?;
    }
    // Before connect(2): it picks the route, and for a group that is
    // where IP_MULTICAST_IF points.
    if peer.ip().is_multicast() {
        let index = fanout
            .multicast_if
            .as_deref()
            .map(super::multicast::interface_index)
            .transpose()?;
        super::multicast::sender(&sock, peer.ip(), index, opts.ttl, fanout.multicast_loop)?;
    } else if fanout.multicast_if.is_some() || !fanout.multicast_loop {
        return Err(Error::usage(
            "'--multicast-if' and '--no-multicast-loop'",
            format!(
                "apply to a multicast destination (224.0.0.0/4, ff00::/8), not {}",
                peer.ip()
            ),
        ));
    }
    let fanned = fanout.broadcast || peer.ip().is_multicast();
    if !(fanned && fanout.replies) {
        sock.connect(&SockAddr::from(peer))
            .map_err(|e| Error::io(&what, &e))?;
    }
    Ok((sock, Peer::Inet(peer)))
}

/// send(2) of one datagram on a connected socket. ECONNREFUSED here is an
/// earlier datagram's ICMP port unreachable; EMSGSIZE names the limit.
pub fn send(sock: &Socket, data: &[u8], peer: &Peer) -> Result<(), Error> {
    // Unconnected only for a broadcast or a group with --wait-reply.
    let sent = match sock.peer_addr() {
        Ok(_) => sock.send_datagram(data),
        Err(_) => sock.send_datagram_to(data, peer),
    };
    match sent {
        Ok(_) => Ok(()),
        Err(e) => Err(send_error(sock, data.len(), peer, &e)),
    }
}

fn send_error(sock: &Socket, size: usize, peer: &Peer, e: &io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => unreachable_error(peer),
        Some(libc::EMSGSIZE) => {
            let (limit, why) = match peer {
                Peer::Inet(SocketAddr::V4(_)) if size > MAX_PAYLOAD_V4 => {
                    (MAX_PAYLOAD_V4, "the most UDP carries over IPv4".to_string())
                }
                Peer::Inet(SocketAddr::V6(_)) if size > MAX_PAYLOAD_V6 => {
                    (MAX_PAYLOAD_V6, "the most UDP carries over IPv6".to_string())
                }
                Peer::Inet(addr) => match path_mtu(sock, addr) {
                    Some(mtu) => (mtu, "the path MTU, with fragmentation off".to_string()),
                    None => (size, "the path limit".to_string()),
                },
                Peer::Unix { .. } => (
                    sock.send_buffer_size().unwrap_or(size).saturating_sub(32),
                    "the send buffer, SO_SNDBUF, bounded by net.core.wmem_max".to_string(),
                ),
            };
            Error::new(
                Exit::Failure,
                format!("send a {size}-byte datagram to {peer}"),
                format!("message too long: the limit is {limit} bytes ({why})"),
            )
        }
        _ => Error::io(format!("send to {peer}"), e),
    }
}

fn path_mtu(sock: &Socket, peer: &SocketAddr) -> Option<usize> {
    let mtu = match peer {
        SocketAddr::V4(_) => getsockopt(sock, sockopt::IpMtu)
            .map(|n| n.max(0) as usize)
            .map_err(io::Error::from),
        SocketAddr::V6(_) => sys::ipv6_mtu(sock),
    };
    mtu.ok().filter(|&n| n > 0)
}

pub fn unreachable_error(peer: &Peer) -> Error {
    let why = match peer {
        Peer::Inet(_) => {
            "port unreachable (the host answered ICMP: nothing listens on that UDP port)"
        }
        Peer::Unix { .. } => "connection refused: the receiving socket is gone",
    };
    Error::new(Exit::Refused, format!("send to {peer}"), why)
}

/// After the last datagram: waits up to `wait` for the peer's ICMP port
/// unreachable, which arrives as a pending socket error. A reply datagram
/// or silence within `wait` is success.
pub fn check_unreachable(sock: &Socket, peer: &Peer, wait: Duration) -> Result<(), Error> {
    if !matches!(peer, Peer::Inet(_)) {
        // A Unix send fails at once when nobody receives: nothing comes later.
        return Ok(());
    }
    let answered = super::poll::ready(sock.as_fd(), super::poll::Events::POLLIN, Some(wait));
    if !matches!(answered, Ok(true)) {
        return Ok(());
    }
    match sock.take_error() {
        Ok(Some(e)) if e.raw_os_error() == Some(libc::ECONNREFUSED) => Err(unreachable_error(peer)),
        _ => Ok(()),
    }
}

/// recv(2) of one reply on a connected socket, bounded by SO_RCVTIMEO.
pub fn recv_reply(sock: &Socket, buf: &mut [u8], peer: &Peer) -> Result<Option<usize>, Error> {
    loop {
        // On a connected datagram socket read(2) is recv(2).
        match (&mut &*sock).read(buf) {
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None)
            }
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                return Err(unreachable_error(peer))
            }
            Err(e) => return Err(Error::io(format!("receive from {peer}"), &e)),
        }
    }
}
