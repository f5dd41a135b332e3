//! Socket-table inspection for `probe`: every socket on one local port, read
//! the way `ss` reads it (NETLINK_SOCK_DIAG with a port filter in the kernel
//! request), falling back to /proc/net when netlink is unavailable; every
//! Unix socket (unix_diag, or /proc/net/unix) and the file at a path; the
//! processes that own those sockets, from /proc/*/fd; and trial binds, the
//! kernel's own answer to "would this bind succeed?".

mod netlink;
mod owners;
mod procnet;
pub mod trial;
mod unix;
mod unix_diag;

use std::net::SocketAddr;
use std::time::Duration;

pub use owners::{find_owners, Owner, Owners};
pub use unix::{stat_path, unix_sockets, FileFacts, FileKind, UnixEntry, UnixTable, UnixType, Vfs};

use super::socket::Proto;

/// The kernel's socket states (include/net/tcp_states.h). UDP uses
/// ESTABLISHED for connected sockets and CLOSE for the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State(pub u8);

impl State {
    pub const ESTABLISHED: State = State(1);
    pub const TIME_WAIT: State = State(6);
    pub const CLOSE: State = State(7);
    pub const LISTEN: State = State(10);
    /// Bound, neither listening nor connected (Linux 6.9+ reports these
    /// through sock_diag when asked for this pseudo-state).
    pub const BOUND_INACTIVE: State = State(13);

    pub fn name(self, proto: Proto) -> &'static str {
        match (self.0, proto) {
            (7, Proto::Udp) => "UNCONN",
            (1, _) => "ESTABLISHED",
            (2, _) => "SYN-SENT",
            (3, _) => "SYN-RECV",
            (4, _) => "FIN-WAIT-1",
            (5, _) => "FIN-WAIT-2",
            (6, _) => "TIME-WAIT",
            (7, _) => "CLOSE",
            (8, _) => "CLOSE-WAIT",
            (9, _) => "LAST-ACK",
            (10, _) => "LISTEN",
            (11, _) => "CLOSING",
            (12, _) => "NEW-SYN-RECV",
            (13, _) => "BOUND-INACTIVE",
            _ => "UNKNOWN",
        }
    }
}

/// One socket on the port.
#[derive(Clone, Debug)]
pub struct SockEntry {
    pub proto: Proto,
    pub state: State,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Time left on the socket's timer; for TIME-WAIT, until it expires.
    pub expires: Option<Duration>,
    pub uid: u32,
    /// 0 for sockets no process holds (TIME-WAIT, SYN-RECV).
    pub inode: u64,
    /// IPV6_V6ONLY of an IPv6 socket, where the source tells it.
    pub v6only: Option<bool>,
    /// The interface index SO_BINDTODEVICE bound it to: 0 for none, and
    /// always 0 from /proc/net, which does not tell.
    pub device: u32,
}

/// Where the table came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableSource {
    SockDiag,
    ProcNet,
}

impl TableSource {
    pub fn name(self) -> &'static str {
        match self {
            TableSource::SockDiag => "sock_diag",
            TableSource::ProcNet => "/proc/net",
        }
    }
}

/// Every socket of `proto` whose local port is `port`, both families
/// (bound-inactive ones aside: see [`bound_inactive_on_port`]).
pub fn sockets_on_port(proto: Proto, port: u16) -> std::io::Result<(Vec<SockEntry>, TableSource)> {
    let states = !(1u32 << State::BOUND_INACTIVE.0);
    let (mut entries, source) = match netlink::dump_port(proto, port, states) {
        Ok(v) => (v, TableSource::SockDiag),
        Err(_) => (procnet::read_port(proto, port)?, TableSource::ProcNet),
    };
    entries.retain(|e| e.local.port() == port);
    Ok((entries, source))
}

/// TCP sockets bound to `port` that neither listen nor are connected. They
/// cause EADDRINUSE yet sit in no table that ss 6.1, netstat or lsof read;
/// Linux 6.9+ lists them through sock_diag on request, at the price of a
/// walk over every bound socket. Empty where the kernel cannot list them.
pub fn bound_inactive_on_port(port: u16) -> Vec<SockEntry> {
    let mut entries =
        netlink::dump_port(Proto::Tcp, port, 1 << State::BOUND_INACTIVE.0).unwrap_or_default();
    // The kernel reports them in TCP_CLOSE.
    entries.retain(|e| e.local.port() == port && e.state == State::CLOSE);
    for e in &mut entries {
        e.state = State::BOUND_INACTIVE;
    }
    entries
}

/// The kernel's Unix socket table as [`crate::engine::transport::unix::Holders`]:
/// which socket, if any, is bound to a file (by its inode and device, the
/// way bind(2) and connect(2) see it, not by name) or an abstract name.
/// Any socket sharing the address counts, an accepted connection whose
/// listener is gone too: a file is called stale only when nothing at all
/// is bound to it. Where only /proc/net/unix can be read (no inodes of
/// files there), a socket with the same name counts, which errs on the
/// side of leaving a file alone.
pub struct SocketTable;

impl crate::engine::transport::unix::Holders for SocketTable {
    fn holder(
        &self,
        addr: &crate::engine::transport::UnixAddr,
        file: Option<(u64, u64)>,
    ) -> std::io::Result<Option<String>> {
        let table = unix_sockets()?;
        let name = addr.sun_path();
        let bound: Vec<&UnixEntry> = table
            .entries
            .iter()
            .filter(|e| match (file, e.vfs) {
                // unix_diag cuts the file's inode to 32 bits.
                (Some((dev, ino)), Some(v)) => v.ino == ino as u32 && v.dev == dev,
                (Some(_), None) => e.name.as_deref() == Some(&name[..]),
                (None, _) => e.name.as_deref() == Some(&name[..]),
            })
            .collect();
        if bound.is_empty() {
            return Ok(None);
        }
        // A listener or a datagram socket is what holds the address; name
        // its owner first.
        let first = bound
            .iter()
            .find(|e| e.state == State::LISTEN || e.peer.is_none_or(|p| p == 0))
            .unwrap_or(&bound[0]);
        let inodes: std::collections::HashSet<u64> = [first.inode].into_iter().collect();
        let owners = find_owners(&inodes);
        let who = match owners.by_inode.get(&first.inode).and_then(|o| o.first()) {
            Some(o) => format!("pid {} ({})", o.pid, o.command),
            None => format!(
                "socket inode {} (its process is not visible to this user)",
                first.inode
            ),
        };
        Ok(Some(who))
    }
}
