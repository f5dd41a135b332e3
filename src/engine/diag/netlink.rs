//! NETLINK_SOCK_DIAG: the framing every family's dump shares (socket,
//! request, multipart reply, attributes), and the inet_diag dumps filtered
//! by local port in the kernel. The unix_diag request and reply live in
//! `unix_diag.rs`.
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

pub(super) const SOCK_DIAG_BY_FAMILY: u16 = 20;
const TCPDIAG_GETSOCK: u16 = 18;
pub(super) const NLM_F_REQUEST: u16 = 0x1;
pub(super) const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const INET_DIAG_REQ_BYTECODE: u16 = 1;
const INET_DIAG_BC_S_GE: u8 = 2;
const INET_DIAG_BC_S_LE: u8 = 3;
const INET_DIAG_SKV6ONLY: u16 = 11;
pub(super) const NLMSG_HDR: usize = 16;
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

/// socket(2) for NETLINK_SOCK_DIAG, close-on-exec (the socket factory's).
pub(super) fn open() -> io::Result<OwnedFd> {
    netlink_sock_diag()
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
    send(fd, &msg)
}

/// sendto(2) of one request to the kernel (netlink port 0, no groups).
pub(super) fn send(fd: &OwnedFd, msg: &[u8]) -> io::Result<()> {
    let kernel = NetlinkAddr::new(0, 0);
    sendto(fd.as_raw_fd(), msg, &kernel, MsgFlags::empty())?;
    Ok(())
}

fn u16_ne(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_ne(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The native-endian u32 at `at`, or None past the end: for parsers of
/// replies whose lengths are not yet validated.
pub(super) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The attributes after a fixed header, as (type, payload). A malformed
/// length ends the walk: what came before it is still good.
pub(super) fn attributes(b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = b;
    std::iter::from_fn(move || {
        let len = u16::from_ne_bytes([*rest.first()?, *rest.get(1)?]) as usize;
        let kind = u16::from_ne_bytes([*rest.get(2)?, *rest.get(3)?]);
        if len < 4 || len > rest.len() {
            return None;
        }
        let payload = &rest[4..len];
        // Attributes are padded to 4 bytes; the last one may not be.
        rest = rest.get((len + 3) & !3..).unwrap_or_default();
        // The type's top bits are the NESTED and BYTEORDER flags.
        Some((kind & 0x3fff, payload))
    })
}

/// Reads the multipart answer to one dump request until NLMSG_DONE and
/// hands each message of type `kinds` (its body after nlmsghdr) to `each`.
/// An NLMSG_ERROR is returned as the errno it carries; a reply cut short
/// (a message longer than what arrived) is InvalidData.
pub(super) fn receive_each(
    fd: &OwnedFd,
    kinds: &[u16],
    mut each: impl FnMut(&[u8]),
) -> io::Result<()> {
    // The kernel sizes a dump's datagrams to the reader's buffer, up to
    // 32 KiB; twice that leaves room to spare.
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "netlink socket closed before the end of the dump",
            ));
        }
        if walk(&buf[..n], kinds, &mut each)? {
            return Ok(());
        }
    }
}

/// The messages of one datagram of a dump reply: Ok(true) at NLMSG_DONE,
/// Ok(false) when more datagrams follow. Every length is checked against
/// what arrived before it is used.
fn walk(data: &[u8], kinds: &[u16], each: &mut impl FnMut(&[u8])) -> io::Result<bool> {
    let mut at = 0;
    while at + NLMSG_HDR <= data.len() {
        let len = u32_ne(data, at) as usize;
        let kind = u16_ne(data, at + 4);
        if len < NLMSG_HDR || len > data.len() - at {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "truncated netlink message",
            ));
        }
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = if len >= NLMSG_HDR + 4 {
                    u32_ne(data, at + NLMSG_HDR) as i32
                } else {
                    -libc::EIO
                };
                return Err(io::Error::from_raw_os_error(code.saturating_neg()));
            }
            k if kinds.contains(&k) => each(&data[at + NLMSG_HDR..at + len]),
            _ => {}
        }
        at = at.saturating_add((len + 3) & !3);
    }
    Ok(false)
}

/// Reads the multipart answer until NLMSG_DONE.
fn receive(fd: &OwnedFd, proto: Proto, out: &mut Vec<SockEntry>) -> io::Result<()> {
    receive_each(fd, &[SOCK_DIAG_BY_FAMILY, TCPDIAG_GETSOCK], |msg| {
        if let Some(e) = parse(msg, proto) {
            out.push(e);
        }
    })
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
    // inet_diag_sockid's idiag_if: the socket's sk_bound_dev_if.
    let device = u32_ne(id, 36);
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
        device,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nlmsg(kind: u16, body: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDR + body.len();
        let mut m = (len as u32).to_ne_bytes().to_vec();
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(body);
        m.resize((m.len() + 3) & !3, 0);
        m
    }

    fn walk_all(data: &[u8]) -> (io::Result<bool>, Vec<Vec<u8>>) {
        let mut got = Vec::new();
        let r = walk(data, &[SOCK_DIAG_BY_FAMILY], &mut |m: &[u8]| {
            got.push(m.to_vec())
        });
        (r, got)
    }

    #[test]
    fn walks_messages_to_done() {
        let mut d = nlmsg(SOCK_DIAG_BY_FAMILY, b"abcde");
        d.extend(nlmsg(99, b"other"));
        d.extend(nlmsg(SOCK_DIAG_BY_FAMILY, b"xy"));
        let (r, got) = walk_all(&d);
        assert!(matches!(r, Ok(false)));
        assert_eq!(got, [b"abcde".to_vec(), b"xy".to_vec()]);
        d.extend(nlmsg(NLMSG_DONE, &0i32.to_ne_bytes()));
        assert!(matches!(walk_all(&d).0, Ok(true)));
    }

    #[test]
    fn an_error_message_is_its_errno() {
        let d = nlmsg(NLMSG_ERROR, &(-libc::ENOENT).to_ne_bytes());
        let err = walk_all(&d).0.expect_err("an error");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        // Without its code, and with a code that cannot be negated.
        assert_eq!(
            walk_all(&nlmsg(NLMSG_ERROR, &[]))
                .0
                .expect_err("EIO")
                .raw_os_error(),
            Some(libc::EIO)
        );
        assert!(walk_all(&nlmsg(NLMSG_ERROR, &i32::MIN.to_ne_bytes()))
            .0
            .is_err());
    }

    #[test]
    fn truncated_datagrams_are_errors_not_panics() {
        let mut d = nlmsg(SOCK_DIAG_BY_FAMILY, &[7u8; 40]);
        d.extend(nlmsg(NLMSG_DONE, &[0u8; 4]));
        for cut in 0..d.len() {
            let (r, got) = walk_all(&d[..cut]);
            match r {
                // Cut between messages: what is whole is delivered, and
                // the walk asks for more.
                Ok(done) => {
                    assert!(!done, "cut at {cut}");
                    assert!(cut < 16 || (56..72).contains(&cut), "cut at {cut}");
                    assert_eq!(got.len(), usize::from(cut >= 56), "cut at {cut}");
                }
                // Cut inside a message.
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::InvalidData, "cut at {cut}"),
            }
        }
        // A length below the header's own size.
        let mut bad = nlmsg(SOCK_DIAG_BY_FAMILY, b"");
        bad[..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(walk_all(&bad).0.is_err());
        // A length beyond what arrived.
        let mut long = nlmsg(SOCK_DIAG_BY_FAMILY, b"abcd");
        long[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(walk_all(&long).0.is_err());
    }

    #[test]
    fn attributes_stop_at_a_bad_length() {
        let mut b = Vec::new();
        b.extend_from_slice(&6u16.to_ne_bytes());
        b.extend_from_slice(&(1u16 | 0x8000).to_ne_bytes());
        b.extend_from_slice(b"ab\0\0");
        b.extend_from_slice(&5u16.to_ne_bytes());
        b.extend_from_slice(&2u16.to_ne_bytes());
        b.push(b'z'); // the last attribute, unpadded
        let got: Vec<(u16, &[u8])> = attributes(&b).collect();
        assert_eq!(got, [(1, &b"ab"[..]), (2, &b"z"[..])]);
        for cut in 0..b.len() {
            assert!(attributes(&b[..cut]).count() <= 2);
        }
        let mut over = b.clone();
        over[..2].copy_from_slice(&64u16.to_ne_bytes());
        assert_eq!(attributes(&over).count(), 0);
        assert_eq!(attributes(&[3, 0, 0, 0]).count(), 0);
        assert_eq!(u32_at(&[1, 2, 3], 0), None);
        assert_eq!(u32_at(&[1, 2, 3, 4], usize::MAX), None);
    }
}
