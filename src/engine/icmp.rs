//! The ICMP error that ended a connect, read back from the socket's error
//! queue (IP_RECVERR / IPV6_RECVERR, MSG_ERRQUEUE), and what it means.
//!
//! TCP turns every "destination unreachable" into one errno (EHOSTUNREACH
//! for host unreachable, administratively prohibited and a failed ARP
//! alike), so the errno alone cannot tell a firewall's reject rule from a
//! host that is down. With IP_RECVERR on, the kernel also queues the ICMP
//! message itself, with its type, code and the address that sent it.

use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};

/// SO_EE_ORIGIN_ICMP and SO_EE_ORIGIN_ICMP6 (linux/errqueue.h).
const ORIGIN_ICMP: u8 = 2;
const ORIGIN_ICMP6: u8 = 3;

/// One ICMP error as the kernel queued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError {
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
    /// Who sent it: a router on the way, the host itself, or this host when
    /// its own neighbour discovery (ARP, ND) failed.
    pub from: Option<IpAddr>,
}

/// setsockopt(IP_RECVERR or IPV6_RECVERR): queue ICMP errors for
/// [`take`]. Turn it off again once connected: with it on, a transient ICMP
/// error on an established connection is fatal instead of soft.
pub fn set_recverr(sock: &impl AsFd, addr: &SocketAddr, on: bool) -> std::io::Result<()> {
    let r = if addr.is_ipv6() {
        setsockopt(sock, sockopt::Ipv6RecvErr, &on)
    } else {
        setsockopt(sock, sockopt::Ipv4RecvErr, &on)
    };
    r.map_err(std::io::Error::from)
}

/// recvmsg(MSG_ERRQUEUE | MSG_DONTWAIT): the first ICMP error queued on
/// the socket, if any. Never blocks.
pub fn take(sock: &impl AsRawFd) -> Option<IcmpError> {
    let mut data = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut data)];
    let mut space = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
    )
    .ok()?;
    for cmsg in msg.cmsgs().ok()? {
        match cmsg {
            ControlMessageOwned::Ipv4RecvErr(e, from) if e.ee_origin == ORIGIN_ICMP => {
                return Some(IcmpError {
                    v6: false,
                    icmp_type: e.ee_type,
                    code: e.ee_code,
                    from: from.map(|a| IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)))),
                });
            }
            ControlMessageOwned::Ipv6RecvErr(e, from) if e.ee_origin == ORIGIN_ICMP6 => {
                return Some(IcmpError {
                    v6: true,
                    icmp_type: e.ee_type,
                    code: e.ee_code,
                    from: from.map(|a| IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr))),
                });
            }
            _ => {}
        }
    }
    None
}

impl IcmpError {
    /// What this error means, for a hint: who answered and what it says.
    /// `local` is the connecting socket's own address: an error "from" it
    /// is this host giving up on neighbour discovery. An error from
    /// `target` itself is that host's firewall rejecting the connection:
    /// a host that is there does not call itself unreachable.
    pub fn explain(&self, local: Option<IpAddr>, target: IpAddr) -> String {
        if self.from == Some(target) && self.from != local {
            let (name, _) = self.meaning();
            return format!(
                "{target} itself answered ICMP {name}: a firewall rule on it rejects the connection"
            );
        }
        let who = match self.from {
            Some(ip) if Some(ip) == local => None,
            Some(ip) => Some(ip.to_string()),
            None => None,
        };
        let (name, meaning) = self.meaning();
        match (who, self.is_host_unreachable()) {
            (None, true) => format!(
                "no host answered {} on the link (this host reported host unreachable itself): the address is down or not there",
                if self.v6 { "neighbour discovery" } else { "ARP" }
            ),
            (None, false) => format!("this host reported {name}: {meaning}"),
            (Some(who), _) => format!("{who} answered ICMP {name}: {meaning}"),
        }
    }

    fn is_host_unreachable(&self) -> bool {
        // v4: type 3 code 1; v6: type 1 code 3 (address unreachable).
        (!self.v6 && self.icmp_type == 3 && self.code == 1)
            || (self.v6 && self.icmp_type == 1 && self.code == 3)
    }

    /// The ICMP message's name, and what it usually means.
    fn meaning(&self) -> (String, &'static str) {
        let code = self.code;
        let named = |n: &str| n.to_string();
        match (self.v6, self.icmp_type, code) {
            (false, 3, 0) => (named("network unreachable (type 3 code 0)"), "a router on the way has no route to that network"),
            (false, 3, 1) => (named("host unreachable (type 3 code 1)"), "a router reached the host's network, but the host did not answer there (down, or not answering ARP)"),
            (false, 3, 9 | 10 | 13) => (format!("administratively prohibited (type 3 code {code})"), "a firewall rule rejects the connection"),
            (false, 3, _) => (format!("destination unreachable (type 3 code {code})"), "the destination cannot be reached"),
            (true, 1, 0) => (named("no route to destination (type 1 code 0)"), "a router on the way has no route to it"),
            (true, 1, 1) => (named("administratively prohibited (type 1 code 1)"), "a firewall rule rejects the connection"),
            (true, 1, 3) => (named("address unreachable (type 1 code 3)"), "a router reached the host's network, but the host did not answer neighbour discovery there"),
            (true, 1, 5) => (named("source address failed ingress/egress policy (type 1 code 5)"), "a router's policy rejects this source address"),
            (true, 1, 6) => (named("reject route to destination (type 1 code 6)"), "a router has a reject route for it"),
            (true, 1, _) => (format!("destination unreachable (type 1 code {code})"), "the destination cannot be reached"),
            (v6, t, c) => (format!("type {t} code {c}{}", if v6 { " (ICMPv6)" } else { "" }), "the destination cannot be reached"),
        }
    }
}
