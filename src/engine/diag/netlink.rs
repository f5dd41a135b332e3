//! NETLINK_SOCK_DIAG (inet_diag) dumps filtered by local port in the kernel.
//!
//! Hand-written framing: the maintained Rust sock_diag crates build the
//! request without an INET_DIAG_REQ_BYTECODE attribute, and that filter is
//! what keeps the cost independent of unrelated sockets (the kernel skips
//! them before copying anything). The bytecode is the `sport >= P && sport
//! <= P` program `ss` sends, understood by every kernel with inet_diag.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{recv, sendto, MsgFlags, NetlinkAddr};

use super::{SockEntry, State};
use crate::engine::socket::{netlink_sock_diag, Proto};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const TCPDIAG_GETSOCK: u16 = 18;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const INET_DIAG_REQ_BYTECODE: u16 = 1;
const INET_DIAG_BC_S_GE: u8 = 2;
const INET_DIAG_BC_S_LE: u8 = 3;
const INET_DIAG_SKV6ONLY: u16 = 11;
const NLMSG_HDR: usize = 16;
const DIAG_MSG: usize = 72;

/// Every socket on `port`, IPv4 and IPv6, in the states of the bit mask
/// `states` (bit N for state N). The bound-inactive pseudo-state
/// ([`State::BOUND_INACTIVE`], Linux 6.9+; older kernels ignore the bit)
/// makes the kernel walk every bound socket, so callers ask for it alone and
/// only when they need it.
pub fn dump_port(proto: Proto, port: u16, states: u32) -> io::Result<Vec<SockEntry>> {
    let fd = netlink_sock_diag()?;
    let mut out = Vec::new();
    if proto == Proto::Tcp {
        // The legacy TCPDIAG_GETSOCK request dumps both families in one walk
        // of the kernel's tables (the per-family request walks them once
        // per family); fall back to the latter where it is refused.
        request(&fd, Request::Legacy, proto, states, port)?;
        if receive(&fd, proto, &mut out).is_ok() {
            return Ok(out);
        }
        out.clear();
    }
    for family in [libc::AF_INET, libc::AF_INET6] {
        request(&fd, Request::ByFamily(family as u8), proto, states, port)?;
        receive(&fd, proto, &mut out)?;
    }
    Ok(out)
}

/// The two request formats of inet_diag.
#[derive(Clone, Copy)]
enum Request {
    /// TCPDIAG_GETSOCK with struct inet_diag_req: both families.
    Legacy,
    /// SOCK_DIAG_BY_FAMILY with struct inet_diag_req_v2: one family.
    ByFamily(u8),
}

/// nlmsghdr + inet_diag_req or inet_diag_req_v2 + the bytecode attribute.
fn request(fd: &OwnedFd, req: Request, proto: Proto, states: u32, port: u16) -> io::Result<()> {
    let mut bytecode = Vec::with_capacity(16);
    // op {code, yes, no}: "yes" steps to the next op; "no" jumps past the
    // end, which rejects. The second word of each pair carries the port.
    for (code, no) in [(INET_DIAG_BC_S_GE, 20u16), (INET_DIAG_BC_S_LE, 12u16)] {
        bytecode.extend_from_slice(&[code, 8]);
        bytecode.extend_from_slice(&no.to_ne_bytes());
        bytecode.extend_from_slice(&[0, 0]);
        bytecode.extend_from_slice(&port.to_ne_bytes());
    }
    let attr_len = 4 + bytecode.len();
    let (kind, body) = match req {
        Request::Legacy => (TCPDIAG_GETSOCK, 60),
        Request::ByFamily(_) => (SOCK_DIAG_BY_FAMILY, 56),
    };
    let total = NLMSG_HDR + body + attr_len;
    let mut msg = Vec::with_capacity(total);
    msg.extend_from_slice(&(total as u32).to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
    match req {
        Request::Legacy => {
            // family (AF_UNSPEC: both), src_len, dst_len, ext, sockid,
            // states, dbs
            msg.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
            msg.extend_from_slice(&[0u8; 48]);
            msg.extend_from_slice(&states.to_ne_bytes());
            msg.extend_from_slice(&0u32.to_ne_bytes());
        }
        Request::ByFamily(family) => {
            let protocol = match proto {
                Proto::Tcp => libc::IPPROTO_TCP,
                Proto::Udp => libc::IPPROTO_UDP,
            } as u8;
            msg.extend_from_slice(&[family, protocol, 0, 0]);
            msg.extend_from_slice(&states.to_ne_bytes());
            msg.extend_from_slice(&[0u8; 48]); // inet_diag_sockid: unused in a dump
        }
    }
    msg.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    msg.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
    msg.extend_from_slice(&bytecode);
    // Port id 0, no groups: the kernel.
    let kernel = NetlinkAddr::new(0, 0);
    sendto(fd.as_raw_fd(), &msg, &kernel, MsgFlags::empty())?;
    Ok(())
}

fn u16_ne(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_ne(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads the multipart answer until NLMSG_DONE.
fn receive(fd: &OwnedFd, proto: Proto, out: &mut Vec<SockEntry>) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let data = &buf[..n];
        let mut at = 0;
        while at + NLMSG_HDR <= data.len() {
            let len = u32_ne(data, at) as usize;
            let kind = u16_ne(data, at + 4);
            if len < NLMSG_HDR || at + len > data.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "truncated netlink message",
                ));
            }
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let code = if len >= NLMSG_HDR + 4 {
                        u32_ne(data, at + NLMSG_HDR) as i32
                    } else {
                        -libc::EIO
                    };
                    return Err(io::Error::from_raw_os_error(-code));
                }
                SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => {
                    if let Some(e) = parse(&data[at + NLMSG_HDR..at + len], proto) {
                        out.push(e);
                    }
                }
                _ => {}
            }
            at += (len + 3) & !3;
        }
    }
}

/// inet_diag_msg and its attributes.
fn parse(msg: &[u8], proto: Proto) -> Option<SockEntry> {
    if msg.len() < DIAG_MSG {
        return None;
    }
    let family = msg[0] as libc::c_int;
    let state = State(msg[1]);
    let timer = msg[2];
    let id = &msg[4..52];
    let sport = u16::from_be_bytes([id[0], id[1]]);
    let dport = u16::from_be_bytes([id[2], id[3]]);
    let addr = |b: &[u8]| -> IpAddr {
        if family == libc::AF_INET {
            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        } else {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[..16]);
            IpAddr::V6(Ipv6Addr::from(a))
        }
    };
    let local = SocketAddr::new(addr(&id[4..20]), sport);
    let remote = SocketAddr::new(addr(&id[20..36]), dport);
    let expires_ms = u32_ne(msg, 52);
    let uid = u32_ne(msg, 64);
    let inode = u32_ne(msg, 68) as u64;
    let mut v6only = None;
    let mut at = DIAG_MSG;
    while at + 4 <= msg.len() {
        let len = u16_ne(msg, at) as usize;
        let kind = u16_ne(msg, at + 2);
        if len < 4 || at + len > msg.len() {
            break;
        }
        if kind == INET_DIAG_SKV6ONLY && len >= 5 {
            v6only = Some(msg[at + 4] != 0);
        }
        at += (len + 3) & !3;
    }
    Some(SockEntry {
        proto,
        state,
        local,
        remote,
        expires: (timer != 0).then(|| Duration::from_millis(expires_ms as u64)),
        uid,
        inode,
        v6only,
    })
}
