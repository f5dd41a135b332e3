//! The raw libc calls that neither socket2 nor nix wrap safely, each with
//! its SAFETY note. Everything else in the crate goes through those crates,
//! and this is the one file with `unsafe` in it.
//!
//! Each function is named after the call it makes and says how that call
//! blocks and fails. None of them retries EINTR: none of these calls blocks.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// ioctl(SIOCOUTQ): bytes in a socket's send queue that the peer has not
/// acknowledged yet (TCP; for a Unix stream, not yet read). Never blocks;
/// fails with the ioctl's errno: EBADF, ENOTTY on a file that is neither a
/// socket nor a terminal (the number is also TIOCOUTQ), EINVAL on a
/// listening TCP socket.
///
/// nix only offers ioctls as `unsafe` macros, hence this wrapper.
pub fn unacked(fd: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ's number) writes one int through the
    // pointer, which is valid for the call; a bad fd only makes it fail.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n.max(0) as usize)
}

/// The TCP state (TCP_ESTABLISHED, TCP_CLOSE, ...) from getsockopt(TCP_INFO).
/// Never blocks; fails with getsockopt's errno: EBADF, ENOTSOCK,
/// ENOPROTOOPT or EOPNOTSUPP on a socket that is not TCP. Neither socket2 0.5 nor nix 0.29 reads
/// TCP_INFO.
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

/// getsockopt(IPV6_MTU): the path MTU a connected IPv6 socket knows. Never
/// blocks; ENOTCONN on an unconnected socket. (nix wraps only IP_MTU, the
/// IPv4 one.)
pub fn ipv6_mtu(sock: &impl AsFd) -> io::Result<usize> {
    getsockopt_int(sock.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_MTU).map(|n| n.max(0) as usize)
}

/// setsockopt(SO_RCVLOWAT): a read waits until `bytes` are queued (or EOF,
/// an error, or a signal). Linux grows the receive buffer to fit it. Never
/// blocks; fails with setsockopt's errno. Neither socket2 0.5 nor nix 0.29
/// has it. Values past `i32::MAX` are clamped.
pub fn set_rcvlowat(sock: &impl AsFd, bytes: usize) -> io::Result<()> {
    let value = bytes.min(i32::MAX as usize) as libc::c_int;
    setsockopt_int(sock.as_fd(), libc::SOL_SOCKET, libc::SO_RCVLOWAT, value)
}

fn getsockopt_int(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: an int option: the kernel writes at most `len` bytes (one
    // int) into `value`, which lives for the call.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: an int option, passed by pointer with its size; the kernel
    // only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// setitimer(ITIMER_REAL): SIGALRM to the process after `first`, then every
/// `every` (zero: once). A zero `first` disarms the timer, whatever `every`
/// is. Never blocks; fails only with EINVAL (a value out of range). nix has
/// POSIX timers (timer_create) but no setitimer.
pub fn setitimer_real(first: Duration, every: Duration) -> io::Result<()> {
    let tv = |d: Duration| libc::timeval {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    let value = libc::itimerval {
        it_interval: tv(every),
        it_value: tv(first),
    };
    // SAFETY: `value` is a valid itimerval for the call; the old value is
    // not asked for (a null pointer is allowed there).
    let rc = unsafe { libc::setitimer(libc::ITIMER_REAL, &value, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

static SIGALRM_SEEN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigalrm(_: libc::c_int) {
    SIGALRM_SEEN.store(true, Ordering::SeqCst);
}

/// SIGALRM caught for as long as this value lives: the previous disposition
/// comes back when it is dropped.
pub struct SigalrmCatch {
    previous: SigAction,
}

/// sigaction(SIGALRM) with a handler that only notes the signal came, so
/// [`SigalrmCatch::fired`] can tell an alarm's EINTR from another signal's.
/// No SA_RESTART: a blocking call the alarm interrupts returns EINTR
/// instead of being restarted. Fails only with EINVAL.
///
/// The handler is process-wide: one catch at a time (connect's alarm method
/// runs on the main thread only).
pub fn sigaction_sigalrm() -> io::Result<SigalrmCatch> {
    SIGALRM_SEEN.store(false, Ordering::SeqCst);
    let handler = SigAction::new(
        SigHandler::Handler(on_sigalrm),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic, which is
    // async-signal-safe.
    let previous = unsafe { sigaction(Signal::SIGALRM, &handler) }?;
    Ok(SigalrmCatch { previous })
}

impl SigalrmCatch {
    /// Whether SIGALRM arrived since [`sigaction_sigalrm`].
    pub fn fired(&self) -> bool {
        SIGALRM_SEEN.load(Ordering::SeqCst)
    }
}

impl Drop for SigalrmCatch {
    fn drop(&mut self) {
        // SAFETY: puts back the disposition sigaction returned when this
        // catch began, which was in force (and so valid) then.
        let _ = unsafe { sigaction(Signal::SIGALRM, &self.previous) };
    }
}

/// recvfrom(2) of one datagram into `buf` with `flags` (MSG_PEEK,
/// MSG_TRUNC): the syscall's length (with MSG_TRUNC, the datagram's real
/// length, which may exceed `buf`) and the sender's address in any family.
/// An unnamed Unix sender gives an address of no family. Not retried on
/// EINTR. nix's recvmsg cannot be used for Unix senders: it reads the
/// address length before setting it, and a zero length panics in its
/// path accessor.
pub fn recvfrom(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: libc::c_int,
) -> io::Result<(usize, socket2::SockAddr)> {
    // SAFETY: try_init hands over zeroed storage and its size; recvfrom
    // writes at most that many address bytes (and the length it wrote),
    // and at most buf.len() bytes into buf, which is valid for writes.
    let (n, addr) = unsafe {
        socket2::SockAddr::try_init(|storage, len| {
            let n = libc::recvfrom(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                flags,
                storage.cast(),
                len,
            );
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(n as usize)
        })
    }?;
    Ok((n, addr))
}

/// The sockaddr_un of an abstract name: a NUL, then `name`, the length
/// counting exactly those bytes. socket2's `SockAddr::unix` keeps room for
/// a path's terminating NUL, which an abstract name does not have, so it
/// refuses a name of the full 107 bytes.
pub fn abstract_sockaddr(name: &[u8]) -> io::Result<socket2::SockAddr> {
    let room = std::mem::size_of::<libc::sockaddr_un>()
        - std::mem::offset_of!(libc::sockaddr_un, sun_path);
    if name.len() + 1 > room {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "abstract name longer than sun_path",
        ));
    }
    // SAFETY: try_init hands over zeroed storage of sockaddr_storage size,
    // which holds a sockaddr_un; the name was checked to fit sun_path after
    // its leading NUL (already zero), and the length written covers the
    // family, the NUL and the name, no more than the storage.
    let ((), addr) = unsafe {
        socket2::SockAddr::try_init(|storage, len| {
            let un = &mut *storage.cast::<libc::sockaddr_un>();
            un.sun_family = libc::AF_UNIX as libc::sa_family_t;
            for (dst, &b) in un.sun_path[1..].iter_mut().zip(name) {
                *dst = b as libc::c_char;
            }
            *len = (std::mem::offset_of!(libc::sockaddr_un, sun_path) + 1 + name.len())
                as libc::socklen_t;
            Ok(())
        })
    }?;
    Ok(addr)
}

/// setsockopt(MCAST_JOIN_GROUP, or MCAST_JOIN_SOURCE_GROUP with `source`)
/// on interface `ifindex`, at the level of the group's family (IPv4
/// options on an IPv6 UDP socket reach the IPv4 code, so a dual-stack
/// socket joins IPv4 groups too). RFC 3678's requests take an interface
/// index and a sockaddr for both families.
pub fn join_group(
    sock: &impl AsFd,
    group: IpAddr,
    source: Option<IpAddr>,
    ifindex: u32,
) -> io::Result<()> {
    let level = match group {
        IpAddr::V4(_) => libc::IPPROTO_IP,
        IpAddr::V6(_) => libc::IPPROTO_IPV6,
    };
    let fd = sock.as_fd().as_raw_fd();
    let rc = match source {
        None => {
            let req = libc::group_req {
                gr_interface: ifindex,
                gr_group: storage(group),
            };
            // SAFETY: req is a group_req that lives for the call, and the
            // length passed is its size.
            unsafe {
                libc::setsockopt(
                    fd,
                    level,
                    libc::MCAST_JOIN_GROUP,
                    (&req as *const libc::group_req).cast(),
                    std::mem::size_of::<libc::group_req>() as libc::socklen_t,
                )
            }
        }
        Some(src) => {
            let req = libc::group_source_req {
                gsr_interface: ifindex,
                gsr_group: storage(group),
                gsr_source: storage(src),
            };
            // SAFETY: as above, for a group_source_req.
            unsafe {
                libc::setsockopt(
                    fd,
                    level,
                    libc::MCAST_JOIN_SOURCE_GROUP,
                    (&req as *const libc::group_source_req).cast(),
                    std::mem::size_of::<libc::group_source_req>() as libc::socklen_t,
                )
            }
        }
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ip` with port 0 as the sockaddr_storage the RFC 3678 requests carry.
fn storage(ip: IpAddr) -> libc::sockaddr_storage {
    let addr = socket2::SockAddr::from(SocketAddr::new(ip, 0));
    // SAFETY: sockaddr_storage is plain data, valid zeroed; the bytes
    // copied are the SockAddr's own length, which fits a sockaddr_storage
    // (socket2 keeps its address in one).
    unsafe {
        let mut out: libc::sockaddr_storage = std::mem::zeroed();
        std::ptr::copy_nonoverlapping(
            addr.as_ptr().cast::<u8>(),
            (&mut out as *mut libc::sockaddr_storage).cast::<u8>(),
            addr.len() as usize,
        );
        out
    }
}

/// IP_MULTICAST_IF by interface index (an ip_mreqn; socket2 sets it only
/// by address, and an interface may have none or several).
pub fn set_multicast_if_v4(sock: &impl AsFd, ifindex: u32) -> io::Result<()> {
    let req = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: ifindex as libc::c_int,
    };
    // SAFETY: req is an ip_mreqn that lives for the call; the length is
    // its size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_fd().as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            (&req as *const libc::ip_mreqn).cast(),
            std::mem::size_of::<libc::ip_mreqn>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// <linux/in6.h>'s IPV6_MULTICAST_ALL, which the libc crate has only for
/// some targets.
const IPV6_MULTICAST_ALL: libc::c_int = 29;

/// IP_MULTICAST_ALL, and with `v6` IPV6_MULTICAST_ALL (Linux 4.20+; an
/// older kernel has only the IPv4 switch, so its failure is ignored).
pub fn set_multicast_all(sock: &impl AsFd, on: bool, v6: bool) -> io::Result<()> {
    let on = libc::c_int::from(on);
    setsockopt_int(sock.as_fd(), libc::IPPROTO_IP, libc::IP_MULTICAST_ALL, on)?;
    if v6 {
        let _ = setsockopt_int(sock.as_fd(), libc::IPPROTO_IPV6, IPV6_MULTICAST_ALL, on);
    }
    Ok(())
}

/// What the IP header of a received datagram said, from ancillary data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketInfo {
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: Option<u8>,
    /// TOS byte (IPv4) or traffic class (IPv6).
    pub tos: Option<u8>,
    /// The destination address: a group, a broadcast, or this host's.
    pub dst: Option<IpAddr>,
    /// The interface it arrived on.
    pub ifindex: Option<u32>,
}

/// Asks the kernel to attach TTL, TOS and destination (IP_RECVTTL,
/// IP_RECVTOS, IP_PKTINFO, and their IPv6 counterparts) to every datagram.
/// A dual-stack socket gets both sets: its IPv4 datagrams carry IP-level
/// data.
pub fn want_packet_info(sock: &impl AsFd, v6: bool) -> io::Result<()> {
    let fd = sock.as_fd();
    for opt in [libc::IP_RECVTTL, libc::IP_RECVTOS, libc::IP_PKTINFO] {
        let r = setsockopt_int(fd, libc::IPPROTO_IP, opt, 1);
        if !v6 {
            r?;
        }
    }
    if v6 {
        for opt in [
            libc::IPV6_RECVHOPLIMIT,
            libc::IPV6_RECVTCLASS,
            libc::IPV6_RECVPKTINFO,
        ] {
            setsockopt_int(fd, libc::IPPROTO_IPV6, opt, 1)?;
        }
    }
    Ok(())
}

/// recvmsg(2) of one datagram with its ancillary data: as [`recvfrom`]
/// (the syscall's length, the sender), and the [`PacketInfo`] the kernel
/// attached. Every control message is bounds-checked by the CMSG macros
/// against the buffer the kernel filled; an unknown or short one is
/// skipped.
pub fn recvmsg_info(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: libc::c_int,
) -> io::Result<(usize, socket2::SockAddr, PacketInfo)> {
    // Room for TTL, TOS and pktinfo of both families, with headers.
    let mut control = [0u64; 32];
    let mut info = PacketInfo::default();
    // SAFETY: try_init hands over zeroed storage and its size, which the
    // msghdr passes on; the iovec covers buf, valid for writes; control is
    // a u64 array (aligned for cmsghdr) of the length given. The kernel
    // writes within those lengths and sets msg_controllen to what it
    // wrote; CMSG_FIRSTHDR/CMSG_NXTHDR stay within it, and each payload is
    // read unaligned after its length is checked.
    let (n, addr) = unsafe {
        socket2::SockAddr::try_init(|storage, len| {
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_name = storage.cast();
            msg.msg_namelen = *len;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&control) as _;
            let n = libc::recvmsg(fd.as_raw_fd(), &mut msg, flags);
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            *len = msg.msg_namelen;
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let h = &*c;
                let data = libc::CMSG_DATA(c);
                let room = (h.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                let int =
                    || (room >= 4).then(|| std::ptr::read_unaligned(data.cast::<libc::c_int>()));
                match (h.cmsg_level, h.cmsg_type) {
                    (libc::IPPROTO_IP, libc::IP_TTL) => info.ttl = int().map(|v| v as u8),
                    (libc::IPPROTO_IP, libc::IP_TOS) if room >= 1 => info.tos = Some(*data),
                    (libc::IPPROTO_IP, libc::IP_PKTINFO)
                        if room >= std::mem::size_of::<libc::in_pktinfo>() =>
                    {
                        let p = std::ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                        info.dst = Some(IpAddr::from(p.ipi_addr.s_addr.to_ne_bytes()));
                        info.ifindex = Some(p.ipi_ifindex as u32);
                    }
                    (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => info.ttl = int().map(|v| v as u8),
                    (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) => info.tos = int().map(|v| v as u8),
                    (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                        if room >= std::mem::size_of::<libc::in6_pktinfo>() =>
                    {
                        let p = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                        info.dst = Some(IpAddr::from(p.ipi6_addr.s6_addr));
                        info.ifindex = Some(p.ipi6_ifindex);
                    }
                    _ => {}
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
            Ok(n as usize)
        })
    }?;
    Ok((n, addr, info))
}
