//! The verdict on a port, as pure functions of what was gathered: the
//! socket table, the trial binds and the sysctl values. Nothing here touches
//! the OS, so every rule is tested below with hand-built tables.

use std::collections::HashSet;

use crate::engine::diag::trial::{BindAttempt, BindOpts};
use crate::engine::diag::State;
use crate::engine::socket::SocketOpts;
use crate::engine::socket::{Proto, Shown};

use super::model::{Finding, Row, Table, Verdict};
use super::render::{connection_text, who};

/// The net.ipv4 sysctls the findings quote, as read from /proc/sys (None
/// where unreadable: a container may hide them).
#[derive(Clone, Debug, Default)]
pub struct Sysctls {
    /// ip_unprivileged_port_start, e.g. "1024".
    pub unprivileged_port_start: Option<String>,
    /// ip_local_port_range, e.g. "32768\t60999".
    pub local_port_range: Option<String>,
    /// ip_local_reserved_ports, e.g. "8080,9000-9010" (often empty).
    pub local_reserved_ports: Option<String>,
}

/// Whether a trial bind failed for a reason the table does not show: then
/// the culprit may be a bound-inactive socket, which the kernel lists only
/// on request and at the price of walking every bound socket.
pub fn unexplained(table: &Table, proto: Proto, binds: &[BindAttempt]) -> bool {
    let failed = |opts: BindOpts| {
        binds
            .iter()
            .any(|b| b.options == opts && b.raw_errno == Some(libc::EADDRINUSE))
    };
    let listening = table.sockets.iter().any(|s| s.entry.state == State::LISTEN);
    proto == Proto::Tcp
        && ((failed(BindOpts::Plain) && table.sockets.is_empty())
            || (failed(BindOpts::ReuseAddr) && !listening))
}

/// Takes out of `table` the sockets bound (SO_BINDTODEVICE) to another
/// interface than `device`: the kernel lets sockets on different devices
/// share a port, so they cannot be what a bind to `device` meets. Without
/// a device, every socket can be (an unbound socket meets them all).
pub fn other_devices(table: &mut Table, device: Option<u32>) -> Vec<Row> {
    let Some(device) = device else {
        return Vec::new();
    };
    let (kept, other) = std::mem::take(&mut table.sockets)
        .into_iter()
        .partition(|s| s.entry.device == 0 || s.entry.device == device);
    table.sockets = kept;
    other
}

/// Notes on bound devices: sockets set aside by [`other_devices`], or,
/// probing without --bind-device, sockets that are bound to one.
pub fn device_findings(table: &Table, elsewhere: &[Row], ip: &SocketOpts) -> Vec<Finding> {
    let names = |rows: &mut dyn Iterator<Item = &Row>| {
        let mut v: Vec<String> = rows.filter_map(|s| s.device.clone()).collect();
        v.sort_unstable();
        v.dedup();
        v.join(", ")
    };
    let mut out = Vec::new();
    if let (Some(dev), false) = (&ip.bind_device, elsewhere.is_empty()) {
        out.push(Finding {
            kind: "other-device",
            text: format!(
                "{} socket(s) on this port are bound to other interfaces ({}): a socket bound to {dev} shares the port with them (SO_BINDTODEVICE sockets on different devices do not conflict)",
                elsewhere.len(),
                names(&mut elsewhere.iter())
            ),
        });
    }
    let bound: Vec<&Row> = table
        .sockets
        .iter()
        .filter(|s| s.device.is_some())
        .collect();
    if ip.bind_device.is_none() && !bound.is_empty() {
        out.push(Finding {
            kind: "bound-device",
            text: format!(
                "{} socket(s) on this port are bound to an interface ({}, SO_BINDTODEVICE): they meet this bind, which takes every interface, but a socket bound to another interface (--bind-device) could share the port",
                bound.len(),
                names(&mut bound.iter().copied())
            ),
        });
    }
    out
}

/// Whether `port` appears in a list such as "8080,9000-9010".
fn in_port_list(list: &str, port: u16) -> bool {
    list.split(',').filter(|s| !s.is_empty()).any(|item| match item.split_once('-') {
        Some((a, b)) => matches!((a.trim().parse::<u16>(), b.trim().parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&port)),
        None => item.trim().parse::<u16>() == Ok(port),
    })
}

/// A socket in a connection's state (not listening, not TIME-WAIT, not
/// merely bound): it holds its local port as long as the connection lasts.
fn is_connected(s: &Row) -> bool {
    ![
        State::LISTEN,
        State::TIME_WAIT,
        State::BOUND_INACTIVE,
        State::CLOSE,
    ]
    .contains(&s.entry.state)
}

/// The notes: every condition on the port worth knowing, whatever the
/// verdict.
pub fn findings(
    table: &Table,
    port: u16,
    proto: Proto,
    binds: &[BindAttempt],
    sysctls: &Sysctls,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let by_state = |st: State| table.sockets.iter().filter(move |s| s.entry.state == st);
    for s in by_state(State::BOUND_INACTIVE) {
        out.push(Finding {
            kind: "bound-inactive",
            text: format!(
                "{} holds a socket bound to {} that neither listens nor is connected (bound-inactive): it causes EADDRINUSE, yet ss 6.1, netstat, lsof -i and fuser do not show it",
                who(s),
                s.local
            ),
        });
    }
    for s in table.sockets.iter().filter(|s| {
        s.entry.local.ip().is_unspecified()
            && s.entry.local.is_ipv6()
            && s.v6only == Some(false)
            && (proto == Proto::Udp || s.entry.state == State::LISTEN)
    }) {
        out.push(Finding {
            kind: "dual-stack",
            text: format!(
                "{} on {} is dual-stack (IPV6_V6ONLY off): it also takes IPv4, so a later bind to 0.0.0.0:{port} fails too",
                who(s),
                s.local
            ),
        });
    }
    let listeners: Vec<&Row> = match proto {
        Proto::Tcp => by_state(State::LISTEN).collect(),
        Proto::Udp => table.sockets.iter().filter(|s| s.inode != 0).collect(),
    };
    let mut seen = HashSet::new();
    for l in &listeners {
        let same: Vec<&&Row> = listeners
            .iter()
            .filter(|o| o.entry.local == l.entry.local)
            .collect();
        if same.len() > 1 && seen.insert(l.entry.local) {
            let names: Vec<String> = same.iter().map(|s| who(s)).collect();
            if proto == Proto::Udp && udp_reuseaddr_shared(binds) {
                out.push(Finding {
                    kind: "reuseaddr-shared",
                    text: format!(
                        "{} UDP sockets share {} (SO_REUSEADDR): {}; the one bound last gets every unicast datagram and the others none, so each later receiver steals the datagrams from the earlier",
                        same.len(),
                        Shown(&l.local),
                        names.join(", ")
                    ),
                });
                continue;
            }
            let what = if proto == Proto::Tcp {
                "connections"
            } else {
                "datagrams"
            };
            out.push(Finding {
                kind: "reuseport-shared",
                text: format!(
                    "{} sockets share {} (SO_REUSEPORT): {}; the kernel splits new {what} between them, so each sees only part of the traffic (nc.openbsd -l sets SO_REUSEPORT and binds beside another listener this way)",
                    same.len(),
                    l.local,
                    names.join(", ")
                ),
            });
        }
    }
    let tw: Vec<&Row> = by_state(State::TIME_WAIT).collect();
    if !tw.is_empty() {
        let last = tw.iter().filter_map(|s| s.expires_ms).max().unwrap_or(0);
        out.push(Finding {
            kind: "time-wait",
            text: format!(
                "{} connection(s) on this port are in TIME-WAIT (2*MSL after an active close); the last expires in {:.0}s",
                tw.len(),
                (last as f64 / 1000.0).ceil()
            ),
        });
    }
    if proto == Proto::Tcp {
        let connected: Vec<&Row> = table.sockets.iter().filter(|s| is_connected(s)).collect();
        if let Some(c) = connected.first() {
            out.push(Finding {
                kind: "connected",
                text: format!(
                    "{} connection(s) still use local port {port} ({}): left from an earlier listener on this port, or a client that bound it as its source port (sonda connect -s, nc -p); a new listener binds beside them only with SO_REUSEADDR, and only if they were bound with it too",
                    connected.len(),
                    connection_text(c, connected.len())
                ),
            });
        }
    }
    if binds.iter().any(|b| b.raw_errno == Some(libc::EACCES)) {
        let start = sysctls
            .unprivileged_port_start
            .clone()
            .unwrap_or_else(|| "1024".into());
        out.push(Finding {
            kind: "privileged-port",
            text: format!(
                "port {port} is below net.ipv4.ip_unprivileged_port_start ({start}): binding it needs root or CAP_NET_BIND_SERVICE (EACCES, not EADDRINUSE)"
            ),
        });
    }
    if let Some(range) = &sysctls.local_port_range {
        let mut it = range
            .split_whitespace()
            .filter_map(|p| p.parse::<u16>().ok());
        if let (Some(lo), Some(hi)) = (it.next(), it.next()) {
            let reserved = sysctls.local_reserved_ports.as_deref().unwrap_or_default();
            if in_port_list(reserved, port) {
                out.push(Finding {
                    kind: "reserved-port",
                    text: format!("port {port} is in net.ipv4.ip_local_reserved_ports: the kernel never picks it as an ephemeral port"),
                });
            } else if (lo..=hi).contains(&port) {
                out.push(Finding {
                    kind: "ephemeral-range",
                    text: format!(
                        "port {port} is inside net.ipv4.ip_local_port_range ({lo}-{hi}): outgoing connections may take it at any time; a service port is safer outside it, or listed in ip_local_reserved_ports"
                    ),
                });
            }
        }
    }
    let hidden = table.sockets.iter().filter(|s| !s.owner_visible).count();
    if hidden > 0 {
        out.push(Finding {
            kind: "owner-not-visible",
            text: format!("{hidden} socket(s) belong to processes whose descriptors this user cannot read; run as root to name them"),
        });
    }
    out
}

/// The one-sentence answer: would the bind `sonda listen` makes succeed,
/// and if not, what holds the port and what to do.
pub fn verdict(table: &Table, port: u16, proto: Proto, binds: &[BindAttempt]) -> Verdict {
    // The first attempt is the plain bind of what `sonda listen` binds.
    let Some(first) = binds.first() else {
        return Verdict {
            bind_ok: false,
            text: "no trial bind could be made".to_string(),
        };
    };
    let reuse_ok = binds
        .iter()
        .find(|b| b.address == first.address && b.options == BindOpts::ReuseAddr)
        .is_some_and(|b| b.ok);
    let p = if proto == Proto::Tcp { "tcp" } else { "udp" };
    if first.ok {
        let mut text = format!(
            "bind would succeed: {} is free for a new {p} socket",
            first.address
        );
        if let Some(v4) = binds
            .iter()
            .find(|b| b.address.starts_with("0.0.0.0") && b.options == BindOpts::Plain && !b.ok)
        {
            text.push_str(&format!(
                " (but {} alone fails: {})",
                v4.address,
                v4.error.clone().unwrap_or_default()
            ));
        }
        return Verdict {
            bind_ok: true,
            text,
        };
    }
    let errno = first.errno.unwrap_or("EOTHER");
    if first.raw_errno == Some(libc::EACCES) {
        return Verdict {
            bind_ok: false,
            text: format!("bind would fail (EACCES): port {port} is privileged here; run as root, grant CAP_NET_BIND_SERVICE, or lower net.ipv4.ip_unprivileged_port_start"),
        };
    }
    if proto == Proto::Udp {
        return udp_verdict(table, port, first, binds, reuse_ok);
    }
    let holders: Vec<&Row> = table
        .sockets
        .iter()
        .filter(|s| s.entry.state == State::LISTEN)
        .collect();
    if !reuse_ok {
        if let Some(h) = holders.first() {
            let more = if holders.len() > 1 {
                format!(" (and {} more)", holders.len() - 1)
            } else {
                String::new()
            };
            let reuseport_ok = binds
                .iter()
                .any(|b| b.address == first.address && b.options == BindOpts::ReusePort && b.ok);
            let share = if reuseport_ok {
                "; only a socket with SO_REUSEPORT would bind beside it, and would take a share of its traffic"
            } else {
                ""
            };
            return Verdict {
                bind_ok: false,
                text: format!(
                    "bind would fail even with SO_REUSEADDR: {} listens on {}{more}; SO_REUSEADDR will not help. Stop it, or pick another port{share}",
                    who(h),
                    h.local
                ),
            };
        }
    }
    if let Some(b) = table
        .sockets
        .iter()
        .find(|s| s.entry.state == State::BOUND_INACTIVE)
    {
        return Verdict {
            bind_ok: false,
            text: format!(
                "bind would fail ({errno}): {} holds a socket bound to {} that neither listens nor is connected (bound-inactive; invisible to ss 6.1, netstat, lsof -i and fuser){}",
                who(b),
                b.local,
                if reuse_ok { "; SO_REUSEADDR binds beside it" } else { "" }
            ),
        };
    }
    let tw: Vec<&Row> = table
        .sockets
        .iter()
        .filter(|s| s.entry.state == State::TIME_WAIT)
        .collect();
    if reuse_ok && !tw.is_empty() {
        let last = tw.iter().filter_map(|s| s.expires_ms).max().unwrap_or(0);
        return Verdict {
            bind_ok: false,
            text: format!(
                "bind would fail ({errno}): {} connection(s) on this port are in TIME-WAIT, the last expires in {:.0}s; SO_REUSEADDR lets a listener bind now — sonda listen sets it by default",
                tw.len(),
                (last as f64 / 1000.0).ceil()
            ),
        };
    }
    if let (false, Some(last)) = (reuse_ok, tw.iter().filter_map(|s| s.expires_ms).max()) {
        return Verdict {
            bind_ok: false,
            text: format!(
                "bind would fail even with SO_REUSEADDR ({errno}): {} connection(s) on this port are in TIME-WAIT, and the socket they came from did not set SO_REUSEADDR (the old and the new socket must both set it); the last expires in {:.0}s: wait, or pick another port",
                tw.len(),
                (last as f64 / 1000.0).ceil()
            ),
        };
    }
    let connected: Vec<&Row> = table.sockets.iter().filter(|s| is_connected(s)).collect();
    if let Some(c) = connected.first() {
        let text = if reuse_ok {
            format!(
                "bind would fail ({errno}) without SO_REUSEADDR: {} connection(s) still use port {port} ({}); with SO_REUSEADDR a listener binds now — sonda listen sets it by default",
                connected.len(),
                connection_text(c, connected.len())
            )
        } else {
            format!(
                "bind would fail even with SO_REUSEADDR ({errno}): {} connection(s) use port {port} ({}) and were bound without SO_REUSEADDR (both sockets must set it): close them, or pick another port",
                connected.len(),
                connection_text(c, connected.len())
            )
        };
        return Verdict {
            bind_ok: false,
            text,
        };
    }
    if reuse_ok {
        return Verdict {
            bind_ok: false,
            text: format!("bind would fail ({errno}) without SO_REUSEADDR: connections on the port remain (see the table); with SO_REUSEADDR a listener binds now — sonda listen sets it by default"),
        };
    }
    Verdict {
        bind_ok: false,
        text: format!(
            "bind would fail ({errno}: {}), and no socket on port {port} is visible to this user; run as root to see every socket",
            first.error.clone().unwrap_or_default()
        ),
    }
}

/// Whether the UDP sockets on the port set SO_REUSEADDR: a trial bind with
/// it succeeded where a plain one failed (the kernel lets a UDP socket
/// share a port with SO_REUSEADDR only when every socket on it set it).
fn udp_reuseaddr_shared(binds: &[BindAttempt]) -> bool {
    binds
        .iter()
        .any(|b| b.options == BindOpts::ReuseAddr && b.ok)
        && binds.iter().any(|b| b.options == BindOpts::Plain && !b.ok)
}

/// The verdict for a UDP port that will not bind. UDP has no TIME-WAIT and
/// no listeners: what holds the port is a bound UDP socket, and
/// SO_REUSEADDR there does not step past stale state but shares the port
/// with a live receiver, which then loses its datagrams.
fn udp_verdict(
    table: &Table,
    port: u16,
    first: &BindAttempt,
    binds: &[BindAttempt],
    reuse_ok: bool,
) -> Verdict {
    let errno = first.errno.unwrap_or("EOTHER");
    let holders: Vec<&Row> = table.sockets.iter().filter(|s| s.inode != 0).collect();
    let Some(h) = holders.first() else {
        return Verdict {
            bind_ok: false,
            text: format!(
                "bind would fail ({errno}: {}), and no UDP socket on port {port} is visible to this user; run as root to see every socket",
                first.error.clone().unwrap_or_default()
            ),
        };
    };
    let more = if holders.len() > 1 {
        format!(" (and {} more)", holders.len() - 1)
    } else {
        String::new()
    };
    let held = format!(
        "{} holds the port: a UDP socket bound to {}{more}",
        who(h),
        Shown(&h.local)
    );
    let reuseport_ok = binds
        .iter()
        .any(|b| b.address == first.address && b.options == BindOpts::ReusePort && b.ok);
    let text = if reuse_ok {
        format!(
            "bind would fail ({errno}) without SO_REUSEADDR: {held}, and it set SO_REUSEADDR, so a socket that sets it too binds beside it ('sonda udp-recv --reuseaddr'). That shares the port on purpose: the receiver bound last gets every unicast datagram and the first gets none, so a second receiver steals the datagrams. Stop the first, or pick another port"
        )
    } else if reuseport_ok {
        format!(
            "bind would fail even with SO_REUSEADDR ({errno}): {held}, with SO_REUSEPORT; only another SO_REUSEPORT socket of the same user binds beside it, and the kernel then splits the datagrams between them by sender. Stop it, or pick another port"
        )
    } else {
        format!(
            "bind would fail even with SO_REUSEADDR ({errno}): {held}, and it did not set SO_REUSEADDR (a UDP port is shared only when every socket on it sets it). Stop it, or pick another port"
        )
    };
    Verdict {
        bind_ok: false,
        text,
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::engine::diag::{Owner, SockEntry, TableSource};
    use crate::error::Exit;

    const PORT: u16 = 8080;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|_| panic!("bad test address {s}"))
    }

    /// A socket on the table: `inode` 0 is the kernel's (TIME-WAIT), and
    /// `owner` None with an inode is another user's hidden process.
    fn row(
        proto: Proto,
        state: State,
        local: &str,
        remote: &str,
        owner: Option<(u32, &str)>,
    ) -> Row {
        let inode = if state == State::TIME_WAIT { 0 } else { 4242 };
        let entry = SockEntry {
            proto,
            state,
            local: addr(local),
            remote: addr(remote),
            expires: (state == State::TIME_WAIT).then(|| Duration::from_millis(42_300)),
            uid: 1000,
            inode,
            v6only: None,
            device: 0,
        };
        let owners = owner
            .map(|(pid, command)| Owner {
                pid,
                command: command.to_string(),
            })
            .into_iter()
            .collect();
        Row::new(entry, proto, owners)
    }

    fn tcp(state: State, local: &str, remote: &str, owner: Option<(u32, &str)>) -> Row {
        row(Proto::Tcp, state, local, remote, owner)
    }

    fn table(sockets: Vec<Row>) -> Table {
        Table {
            source: TableSource::SockDiag,
            sockets,
        }
    }

    fn attempt(address: &str, options: BindOpts, errno: Option<i32>) -> BindAttempt {
        BindAttempt {
            address: address.to_string(),
            dual_stack: false,
            options,
            ok: errno.is_none(),
            errno: errno.map(crate::engine::diag::trial::errno_name),
            error: errno.map(|e| crate::error::describe(&std::io::Error::from_raw_os_error(e))),
            raw_errno: errno,
        }
    }

    /// The three trials on one address: plain, SO_REUSEADDR, SO_REUSEPORT,
    /// each failing with the errno given (None: succeeds).
    fn binds(
        address: &str,
        plain: Option<i32>,
        reuse: Option<i32>,
        port: Option<i32>,
    ) -> Vec<BindAttempt> {
        vec![
            attempt(address, BindOpts::Plain, plain),
            attempt(address, BindOpts::ReuseAddr, reuse),
            attempt(address, BindOpts::ReusePort, port),
        ]
    }

    const INUSE: Option<i32> = Some(libc::EADDRINUSE);

    fn kinds(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|f| f.kind).collect()
    }

    fn no_sysctls() -> Sysctls {
        Sysctls::default()
    }

    #[test]
    fn free_port_binds() {
        let t = table(vec![]);
        let b = binds("127.0.0.1:8080", None, None, None);
        let v = verdict(&t, PORT, Proto::Tcp, &b);
        assert!(v.bind_ok);
        assert_eq!(v.exit(), Exit::Success);
        assert_eq!(
            v.text,
            "bind would succeed: 127.0.0.1:8080 is free for a new tcp socket"
        );
        assert!(!unexplained(&t, Proto::Tcp, &b));
        assert!(findings(&t, PORT, Proto::Tcp, &b, &no_sysctls()).is_empty());
    }

    #[test]
    fn free_dual_stack_but_ipv4_alone_fails() {
        let mut b = binds("[::]:8080", None, None, None);
        b.extend(binds("0.0.0.0:8080", INUSE, None, None));
        let v = verdict(&table(vec![]), PORT, Proto::Tcp, &b);
        assert!(v.bind_ok, "{}", v.text);
        assert!(
            v.text
                .ends_with("(but 0.0.0.0:8080 alone fails: address already in use)"),
            "{}",
            v.text
        );
    }

    #[test]
    fn time_wait_only_reuseaddr_advice() {
        let t = table(vec![tcp(
            State::TIME_WAIT,
            "127.0.0.1:8080",
            "127.0.0.1:40000",
            None,
        )]);
        let b = binds("127.0.0.1:8080", INUSE, None, None);
        let v = verdict(&t, PORT, Proto::Tcp, &b);
        assert_eq!(v.exit(), Exit::AddrInUse);
        assert!(
            v.text.starts_with("bind would fail (EADDRINUSE): 1 connection(s) on this port are in TIME-WAIT, the last expires in 43s; SO_REUSEADDR lets a listener bind now"),
            "{}",
            v.text
        );
        let f = findings(&t, PORT, Proto::Tcp, &b, &no_sysctls());
        assert_eq!(kinds(&f), ["time-wait"]);
        assert!(
            f[0].text.contains("the last expires in 43s"),
            "{}",
            f[0].text
        );
        // The TIME-WAIT entry explains the failure: no bound-inactive walk.
        assert!(!unexplained(&t, Proto::Tcp, &b));
    }

    #[test]
    fn time_wait_from_a_socket_without_reuseaddr() {
        let t = table(vec![tcp(
            State::TIME_WAIT,
            "127.0.0.1:8080",
            "127.0.0.1:40000",
            None,
        )]);
        let b = binds("127.0.0.1:8080", INUSE, INUSE, INUSE);
        let v = verdict(&t, PORT, Proto::Tcp, &b);
        assert!(!v.bind_ok);
        assert!(
            v.text
                .starts_with("bind would fail even with SO_REUSEADDR (EADDRINUSE)"),
            "{}",
            v.text
        );
        assert!(v.text.contains("did not set SO_REUSEADDR"), "{}", v.text);
        assert!(v.text.ends_with("wait, or pick another port"), "{}", v.text);
    }

    #[test]
    fn live_listener_is_named_and_reuseaddr_will_not_help() {
        let t = table(vec![tcp(
            State::LISTEN,
            "127.0.0.1:8080",
            "0.0.0.0:0",
            Some((812, "python3")),
        )]);
        let b = binds("127.0.0.1:8080", INUSE, INUSE, INUSE);
        let v = verdict(&t, PORT, Proto::Tcp, &b);
        assert_eq!(v.exit(), Exit::AddrInUse);
        assert_eq!(
            v.text,
            "bind would fail even with SO_REUSEADDR: pid 812 (python3) listens on 127.0.0.1:8080; SO_REUSEADDR will not help. Stop it, or pick another port"
        );
        assert!(!unexplained(&t, Proto::Tcp, &b));
    }

    #[test]
    fn reuseport_listeners_share_and_invite_a_sibling() {
        let t = table(vec![
            tcp(
                State::LISTEN,
                "127.0.0.1:8080",
                "0.0.0.0:0",
                Some((812, "python3")),
            ),
            tcp(
                State::LISTEN,
                "127.0.0.1:8080",
                "0.0.0.0:0",
                Some((900, "nc.openbsd")),
            ),
        ]);
        let b = binds("127.0.0.1:8080", INUSE, INUSE, None);
        let v = verdict(&t, PORT, Proto::Tcp, &b);
        assert!(v.text.contains("(and 1 more)"), "{}", v.text);
        assert!(v.text.ends_with("only a socket with SO_REUSEPORT would bind beside it, and would take a share of its traffic"), "{}", v.text);
        let f = findings(&t, PORT, Proto::Tcp, &b, &no_sysctls());
        assert_eq!(kinds(&f), ["reuseport-shared"]);
        assert!(f[0].text.starts_with("2 sockets share 127.0.0.1:8080 (SO_REUSEPORT): pid 812 (python3), pid 900 (nc.openbsd)"), "{}", f[0].text);
    }

    #[test]
    fn dual_stack_listener_is_noted() {
        let mut l = tcp(State::LISTEN, "[::]:8080", "[::]:0", Some((812, "python3")));
        l.v6only = Some(false);
        l.entry.v6only = Some(false);
        let t = table(vec![l]);
        let b = binds("[::]:8080", INUSE, INUSE, INUSE);
        let f = findings(&t, PORT, Proto::Tcp, &b, &no_sysctls());
        assert_eq!(kinds(&f), ["dual-stack"]);
        assert!(
            f[0].text.contains("a later bind to 0.0.0.0:8080 fails too"),
            "{}",
            f[0].text
        );
    }

    #[test]
    fn connected_sockets_only() {
        let t = table(vec![tcp(
            State::ESTABLISHED,
            "127.0.0.1:8080",
            "127.0.0.1:9000",
            Some((42, "sonda")),
        )]);
        let reuse_ok = binds("127.0.0.1:8080", INUSE, None, None);
        let v = verdict(&t, PORT, Proto::Tcp, &reuse_ok);
        assert_eq!(v.exit(), Exit::AddrInUse);
        assert_eq!(
            v.text,
            "bind would fail (EADDRINUSE) without SO_REUSEADDR: 1 connection(s) still use port 8080 (pid 42 (sonda): 127.0.0.1:8080 -> 127.0.0.1:9000, ESTABLISHED); with SO_REUSEADDR a listener binds now — sonda listen sets it by default"
        );
        let f = findings(&t, PORT, Proto::Tcp, &reuse_ok, &no_sysctls());
        assert_eq!(kinds(&f), ["connected"]);

        let reuse_fails = binds("127.0.0.1:8080", INUSE, INUSE, INUSE);
        let v = verdict(&t, PORT, Proto::Tcp, &reuse_fails);
        assert!(v.text.starts_with("bind would fail even with SO_REUSEADDR (EADDRINUSE): 1 connection(s) use port 8080"), "{}", v.text);
        assert!(
            v.text.contains("were bound without SO_REUSEADDR"),
            "{}",
            v.text
        );
        // A failure with SO_REUSEADDR and no listener: look for
        // bound-inactive sockets too.
        assert!(unexplained(&t, Proto::Tcp, &reuse_fails));
    }

    #[test]
    fn bound_inactive_socket_is_the_culprit() {
        let t = table(vec![tcp(
            State::BOUND_INACTIVE,
            "127.0.0.1:8080",
            "0.0.0.0:0",
            Some((7, "python3")),
        )]);
        let b = binds("127.0.0.1:8080", INUSE, None, None);
        let v = verdict(&t, PORT, Proto::Tcp, &b);
        assert!(v.text.starts_with("bind would fail (EADDRINUSE): pid 7 (python3) holds a socket bound to 127.0.0.1:8080"), "{}", v.text);
        assert!(
            v.text.ends_with("; SO_REUSEADDR binds beside it"),
            "{}",
            v.text
        );
        assert_eq!(
            kinds(&findings(&t, PORT, Proto::Tcp, &b, &no_sysctls())),
            ["bound-inactive"]
        );
    }

    #[test]
    fn unexplained_failure_admits_it_cannot_see() {
        let t = table(vec![]);
        let b = binds("127.0.0.1:8080", INUSE, INUSE, INUSE);
        assert!(unexplained(&t, Proto::Tcp, &b));
        let v = verdict(&t, PORT, Proto::Tcp, &b);
        assert_eq!(v.exit(), Exit::AddrInUse);
        assert_eq!(
            v.text,
            "bind would fail (EADDRINUSE: address already in use), and no socket on port 8080 is visible to this user; run as root to see every socket"
        );
        // UDP has no bound-inactive state to look for.
        assert!(!unexplained(&t, Proto::Udp, &b));
    }

    #[test]
    fn hidden_owner_is_reported_not_guessed() {
        let t = table(vec![tcp(
            State::LISTEN,
            "127.0.0.1:8080",
            "0.0.0.0:0",
            None,
        )]);
        let b = binds("127.0.0.1:8080", INUSE, INUSE, INUSE);
        let v = verdict(&t, PORT, Proto::Tcp, &b);
        assert!(
            v.text
                .contains("a process of uid 1000 (not visible; run as root) listens on"),
            "{}",
            v.text
        );
        assert_eq!(
            kinds(&findings(&t, PORT, Proto::Tcp, &b, &no_sysctls())),
            ["owner-not-visible"]
        );
    }

    #[test]
    fn udp_shared_with_reuseaddr_steals_datagrams() {
        let udp = |pid| {
            row(
                Proto::Udp,
                State::CLOSE,
                "127.0.0.1:5353",
                "0.0.0.0:0",
                Some((pid, "python3")),
            )
        };
        let t = table(vec![udp(10), udp(11)]);
        let b = binds("127.0.0.1:5353", INUSE, None, INUSE);
        let v = verdict(&t, 5353, Proto::Udp, &b);
        assert_eq!(v.exit(), Exit::AddrInUse);
        assert!(v.text.starts_with("bind would fail (EADDRINUSE) without SO_REUSEADDR: pid 10 (python3) holds the port: a UDP socket bound to 127.0.0.1:5353 (and 1 more), and it set SO_REUSEADDR"), "{}", v.text);
        assert!(
            v.text.contains("a second receiver steals the datagrams"),
            "{}",
            v.text
        );
        let f = findings(&t, 5353, Proto::Udp, &b, &no_sysctls());
        assert_eq!(kinds(&f), ["reuseaddr-shared"]);
        assert!(
            f[0].text
                .contains("the one bound last gets every unicast datagram"),
            "{}",
            f[0].text
        );
    }

    #[test]
    fn udp_holder_without_reuseaddr() {
        let t = table(vec![row(
            Proto::Udp,
            State::CLOSE,
            "127.0.0.1:5353",
            "0.0.0.0:0",
            Some((10, "python3")),
        )]);
        let b = binds("127.0.0.1:5353", INUSE, INUSE, INUSE);
        let v = verdict(&t, 5353, Proto::Udp, &b);
        assert!(v.text.starts_with("bind would fail even with SO_REUSEADDR (EADDRINUSE): pid 10 (python3) holds the port"), "{}", v.text);
        assert!(v.text.contains("it did not set SO_REUSEADDR"), "{}", v.text);
        let reuseport = binds("127.0.0.1:5353", INUSE, INUSE, None);
        let v = verdict(&t, 5353, Proto::Udp, &reuseport);
        assert!(
            v.text
                .contains("with SO_REUSEPORT; only another SO_REUSEPORT socket"),
            "{}",
            v.text
        );
    }

    #[test]
    fn privileged_port_quotes_the_sysctl() {
        let b = binds(
            "0.0.0.0:80",
            Some(libc::EACCES),
            Some(libc::EACCES),
            Some(libc::EACCES),
        );
        let s = Sysctls {
            unprivileged_port_start: Some("512".into()),
            ..Sysctls::default()
        };
        let v = verdict(&table(vec![]), 80, Proto::Tcp, &b);
        assert_eq!(v.exit(), Exit::AddrInUse);
        assert!(
            v.text
                .starts_with("bind would fail (EACCES): port 80 is privileged here"),
            "{}",
            v.text
        );
        let f = findings(&table(vec![]), 80, Proto::Tcp, &b, &s);
        assert_eq!(kinds(&f), ["privileged-port"]);
        assert!(
            f[0].text.contains("ip_unprivileged_port_start (512)"),
            "{}",
            f[0].text
        );
        // Unreadable sysctl: the kernel's default is quoted.
        let f = findings(&table(vec![]), 80, Proto::Tcp, &b, &no_sysctls());
        assert!(f[0].text.contains("(1024)"), "{}", f[0].text);
    }

    #[test]
    fn reserved_and_ephemeral_ports() {
        let s = Sysctls {
            local_port_range: Some("32768\t60999".into()),
            local_reserved_ports: Some("8080,40000-40010".into()),
            ..Sysctls::default()
        };
        let t = table(vec![]);
        let ok = |a: &str| binds(a, None, None, None);
        let f = findings(&t, 40005, Proto::Tcp, &ok("0.0.0.0:40005"), &s);
        assert_eq!(kinds(&f), ["reserved-port"]);
        let f = findings(&t, 40011, Proto::Tcp, &ok("0.0.0.0:40011"), &s);
        assert_eq!(kinds(&f), ["ephemeral-range"]);
        assert!(f[0].text.contains("(32768-60999)"), "{}", f[0].text);
        assert!(findings(&t, 9000, Proto::Tcp, &ok("0.0.0.0:9000"), &s).is_empty());
        // Reserved outside the range is still reserved.
        let f = findings(&t, 8080, Proto::Tcp, &ok("0.0.0.0:8080"), &s);
        assert_eq!(kinds(&f), ["reserved-port"]);
    }

    #[test]
    fn port_lists() {
        assert!(in_port_list("8080", 8080));
        assert!(in_port_list("1,8000-8100,9", 8050));
        assert!(in_port_list(" 7 , 9 ", 9));
        assert!(!in_port_list("", 8080));
        assert!(!in_port_list("8000-x,80", 8001));
        assert!(!in_port_list("8081,8079", 8080));
    }

    #[test]
    fn sockets_on_other_devices_are_set_apart() {
        let on = |dev: u32| {
            let mut r = tcp(State::LISTEN, "0.0.0.0:8080", "0.0.0.0:0", Some((7, "nc")));
            r.entry.device = dev;
            r.device = (dev != 0).then(|| format!("if{dev}"));
            r
        };
        let mut t = table(vec![on(0), on(1), on(2)]);
        assert!(other_devices(&mut t, None).is_empty());
        assert_eq!(t.sockets.len(), 3);
        let other = other_devices(&mut t, Some(1));
        let devices = |rows: &[Row]| rows.iter().map(|r| r.entry.device).collect::<Vec<_>>();
        assert_eq!(devices(&t.sockets), [0, 1]);
        assert_eq!(devices(&other), [2]);
        let probing = SocketOpts {
            bind_device: Some("if1".into()),
            ..SocketOpts::default()
        };
        let f = device_findings(&t, &other, &probing);
        assert_eq!(kinds(&f), ["other-device"]);
        assert!(f[0].text.contains("(if2)"), "{}", f[0].text);
        let f = device_findings(&t, &[], &SocketOpts::default());
        assert_eq!(kinds(&f), ["bound-device"]);
        assert!(f[0].text.contains("(if1,"), "{}", f[0].text);
    }

    #[test]
    fn no_trial_bind_is_no_verdict_of_success() {
        let v = verdict(&table(vec![]), PORT, Proto::Tcp, &[]);
        assert!(!v.bind_ok);
        assert_eq!(v.text, "no trial bind could be made");
    }
}
