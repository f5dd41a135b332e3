//! Multicast group membership for a UDP socket: any-source and
//! source-specific joins for IPv4 and IPv6 through one protocol-independent
//! call (MCAST_JOIN_GROUP / MCAST_JOIN_SOURCE_GROUP, RFC 3678, which take
//! an interface index for both families; socket2 has no IPv6 SSM join), the
//! interface chosen the way the kernel would choose it and then named, and
//! the sender-side options (interface, hop limit, loopback).

use std::io;
use std::net::{IpAddr, SocketAddr};

use socket2::Socket;

use super::socket::interface_name;
use crate::error::{Error, Exit};

/// `--join GROUP[@IFACE]`, with `--source S` for a source-specific join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Join {
    pub group: IpAddr,
    pub iface: Option<String>,
    pub source: Option<IpAddr>,
}

/// A join made: the interface it used.
#[derive(Clone, Debug)]
pub struct Joined {
    pub ifindex: u32,
    pub ifname: String,
}

/// Parses `GROUP[@IFACE]`: a multicast address of either family, and an
/// interface name (checked when the join is made).
pub fn parse_join(s: &str) -> Result<(IpAddr, Option<String>), String> {
    let (addr, iface) = match s.rsplit_once('@') {
        Some((a, i)) if !i.is_empty() => (a, Some(i.to_string())),
        Some(_) => return Err("an interface name follows '@' (GROUP@IFACE)".into()),
        None => (s, None),
    };
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let group: IpAddr = addr.parse().map_err(|_| {
        format!("'{addr}' is not an IP address (a group is 224.0.0.0/4 or ff00::/8)")
    })?;
    if !group.is_multicast() {
        return Err(format!(
            "{group} is not a multicast address (IPv4 224.0.0.0/4, IPv6 ff00::/8)"
        ));
    }
    Ok((group, iface))
}

/// The index of interface `name`, or an error naming it.
pub fn interface_index(name: &str) -> Result<u32, Error> {
    nix::net::if_::if_nametoindex(name).map_err(|_| {
        Error::new(
            Exit::Failure,
            format!("interface {name}"),
            "no such interface (ip link shows them)",
        )
    })
}

/// The interface the kernel routes `dst` through, found as a join without
/// an interface would find it: a route lookup (connect(2) on a throw-away
/// UDP socket sends nothing), then the interface holding the source address
/// the route picked.
pub fn route_interface(dst: IpAddr) -> Option<u32> {
    let probe = std::net::UdpSocket::bind(match dst {
        IpAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        IpAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    })
    .ok()?;
    probe.connect(SocketAddr::new(dst, 9)).ok()?;
    interface_of(probe.local_addr().ok()?.ip())
}

/// The interface toward `peer`: its scope when it has one (a link-local
/// address), else the one its route leaves by.
pub fn toward(peer: SocketAddr) -> Option<u32> {
    match peer {
        SocketAddr::V6(a) if a.scope_id() != 0 => Some(a.scope_id()),
        _ => route_interface(peer.ip().to_canonical()),
    }
}

/// The interface holding this host's address `local` (its scope, for a
/// link-local address).
pub fn holding(local: SocketAddr) -> Option<u32> {
    match local {
        SocketAddr::V6(a) if a.scope_id() != 0 => Some(a.scope_id()),
        _ => interface_of(local.ip().to_canonical()),
    }
}

/// The interface that holds address `local`.
pub fn interface_of(local: IpAddr) -> Option<u32> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for ifa in addrs {
        let Some(a) = ifa.address else { continue };
        let ip = match (a.as_sockaddr_in(), a.as_sockaddr_in6()) {
            (Some(v4), _) => IpAddr::V4(v4.ip()),
            (_, Some(v6)) => IpAddr::V6(v6.ip()),
            _ => continue,
        };
        if ip == local {
            return nix::net::if_::if_nametoindex(ifa.interface_name.as_str()).ok();
        }
    }
    None
}

/// Joins `j` on `sock`: on its interface, or where the group's route
/// leads. Errors name the group and the interface.
pub fn join(sock: &Socket, j: &Join) -> Result<Joined, Error> {
    let what = || match &j.source {
        Some(s) => format!("join {} from source {s}", j.group),
        None => format!("join {}", j.group),
    };
    if let Some(s) = j.source {
        if s.is_ipv4() != j.group.is_ipv4() {
            return Err(Error::usage(
                format!("'--source {s}'"),
                format!("is not of the family of the group {}", j.group),
            ));
        }
    }
    let ifindex = match &j.iface {
        Some(name) => interface_index(name)?,
        None => route_interface(j.group).ok_or_else(|| {
            Error::new(
                Exit::Failure,
                what(),
                "no route to the group: name the interface (GROUP@IFACE)",
            )
        })?,
    };
    super::sys::join_group(sock, j.group, j.source, ifindex).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::ENODEV) => {
                Some("the interface has no address of the group's family, or is down")
            }
            Some(libc::EADDRINUSE) => {
                Some("this socket joined that group on that interface already")
            }
            Some(libc::ENOBUFS) => {
                Some("net.ipv4.igmp_max_memberships (or the IPv6 limit) is reached")
            }
            _ => None,
        };
        let err = Error::io(format!("{} on {}", what(), interface_name(ifindex)), &e);
        match hint {
            Some(h) => err.with_hint(h),
            None => err,
        }
    })?;
    Ok(Joined {
        ifindex,
        ifname: interface_name(ifindex),
    })
}

/// IP_MULTICAST_ALL (and IPV6_MULTICAST_ALL) off: Linux's default, on,
/// delivers to a socket bound to the wildcard every group any socket on the
/// host joined for that port; off, only the groups this socket joined.
pub fn only_joined_groups(sock: &Socket) -> io::Result<()> {
    let v6 = sock.domain().is_ok_and(|d| d == socket2::Domain::IPV6);
    super::sys::set_multicast_all(sock, false, v6)
}

/// The effective rp_filter of an interface (the larger of `all` and the
/// interface's own: 1 strict, 2 loose), if it is on.
pub fn rp_filter(ifname: &str) -> Option<u8> {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{name}/rp_filter"))
            .ok()
            .and_then(|s| s.trim().parse::<u8>().ok())
    };
    let v = read("all").unwrap_or(0).max(read(ifname).unwrap_or(0));
    (v != 0).then_some(v)
}

/// The sender's side, for a multicast destination: the interface
/// (IP_MULTICAST_IF by index, IPV6_MULTICAST_IF), the hop limit (a
/// multicast datagram takes IP_MULTICAST_TTL, not IP_TTL, and the kernel's
/// default is 1) and the loopback copy.
pub fn sender(
    sock: &Socket,
    dst: IpAddr,
    index: Option<u32>,
    ttl: Option<u8>,
    lo: bool,
) -> Result<(), Error> {
    let opt = |what: &'static str| move |e: io::Error| Error::io(format!("set {what}"), &e);
    match dst {
        IpAddr::V4(_) => {
            if let Some(i) = index {
                super::sys::set_multicast_if_v4(sock, i).map_err(opt("IP_MULTICAST_IF"))?;
            }
            if let Some(t) = ttl {
                sock.set_multicast_ttl_v4(u32::from(t))
                    .map_err(opt("IP_MULTICAST_TTL"))?;
            }
            sock.set_multicast_loop_v4(lo)
                .map_err(opt("IP_MULTICAST_LOOP"))?;
        }
        IpAddr::V6(_) => {
            if let Some(i) = index {
                sock.set_multicast_if_v6(i)
                    .map_err(opt("IPV6_MULTICAST_IF"))?;
            }
            if let Some(t) = ttl {
                sock.set_multicast_hops_v6(u32::from(t))
                    .map_err(opt("IPV6_MULTICAST_HOPS"))?;
            }
            sock.set_multicast_loop_v6(lo)
                .map_err(opt("IPV6_MULTICAST_LOOP"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_interfaces_parse() {
        assert_eq!(
            parse_join("239.1.2.3@eth0"),
            Ok(("239.1.2.3".parse().unwrap(), Some("eth0".into())))
        );
        assert_eq!(
            parse_join("ff02::fb"),
            Ok(("ff02::fb".parse().unwrap(), None))
        );
        assert_eq!(
            parse_join("[ff15::1]@veth-b"),
            Ok(("ff15::1".parse().unwrap(), Some("veth-b".into())))
        );
        assert!(parse_join("10.0.0.1")
            .unwrap_err()
            .contains("not a multicast"));
        assert!(parse_join("239.1.1.1@").is_err());
        assert!(parse_join("nonsense").is_err());
    }
}
