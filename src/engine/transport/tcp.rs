//! TCP: connect within a deadline (engine/connect.rs) and listening
//! sockets (engine/socket.rs), as [`Stream`](super::Stream)s and a [`Listener`].

use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use socket2::{SockRef, Socket};

use super::kernel::{Family, SocketStream};
use super::{Conn, Listener, Peer};
use crate::engine::connect::{connect_any, Attempt, ConnectOpts};
use crate::engine::socket::display_addr;
use crate::error::Error;

/// Connects to the first of `addrs` that accepts (see [`connect_any`]):
/// the stream, the address reached and how long the connect took.
pub fn connect(
    addrs: &[SocketAddr],
    opts: &ConnectOpts,
    report: impl FnMut(Attempt),
) -> Result<(Conn, Duration), Error> {
    let (stream, peer, took) = connect_any(addrs, opts, report)?;
    Ok((wrap(stream.into(), peer), took))
}

/// A connected TCP socket as a [`Conn`].
pub fn wrap(sock: Socket, peer: SocketAddr) -> Conn {
    Arc::new(SocketStream::new(sock, Peer::Inet(peer), Family::Tcp))
}

/// A listening TCP socket.
pub struct TcpListener {
    sock: std::net::TcpListener,
}

impl TcpListener {
    pub fn new(sock: std::net::TcpListener) -> TcpListener {
        TcpListener { sock }
    }
}

impl Listener for TcpListener {
    fn accept(&self) -> std::io::Result<Conn> {
        let (stream, peer) = self.sock.accept()?;
        Ok(wrap(stream.into(), peer))
    }

    /// The address, and "(IPv4 and IPv6)" for a dual-stack wildcard.
    fn local(&self) -> String {
        let Ok(local) = self.sock.local_addr() else {
            return "?".into();
        };
        let dual = local.is_ipv6()
            && local.ip().is_unspecified()
            && SockRef::from(&self.sock)
                .only_v6()
                .map(|v| !v)
                .unwrap_or(false);
        if dual {
            format!("{} (IPv4 and IPv6)", display_addr(&local))
        } else {
            display_addr(&local)
        }
    }

    fn stop(&self) {
        // shutdown(SHUT_RD) of a listening socket stops it listening; a
        // blocked accept(2) returns EINVAL.
        let _ = SockRef::from(&self.sock).shutdown(Shutdown::Read);
    }
}
