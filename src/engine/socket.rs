//! Socket construction over socket2: the options a user can set, bind and
//! listen, and the dual-stack wildcard listener.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, TcpKeepalive, Type};

use super::addr::Family;
use crate::error::Error;

/// Options applied to a socket before bind/connect.
#[derive(Clone, Debug, Default)]
pub struct SocketOpts {
    /// SO_REUSEADDR: lets a listener bind while old connections on its port
    /// sit in TIME-WAIT; on UDP, lets sockets that all set it share a port.
    pub reuseaddr: bool,
    /// SO_REUSEPORT: share the port with other sockets that also set it.
    pub reuseport: bool,
    /// TCP_NODELAY: turn off Nagle's algorithm.
    pub nodelay: bool,
    /// SO_SNDBUF / SO_RCVBUF. Unset leaves the kernel's autotuning on.
    pub sndbuf: Option<usize>,
    pub rcvbuf: Option<usize>,
    /// SO_KEEPALIVE with TCP_KEEPIDLE and TCP_KEEPINTVL set to this period.
    pub keepalive: Option<Duration>,
}

/// socket(2) for TCP in the family of `addr`, close-on-exec.
pub fn tcp_socket(addr: &SocketAddr) -> io::Result<Socket> {
    Socket::new(
        Domain::for_address(*addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )
}

/// setsockopt(2) for every option in `opts` that is set.
pub fn apply(sock: &Socket, opts: &SocketOpts) -> io::Result<()> {
    if opts.reuseaddr {
        sock.set_reuse_address(true)?;
    }
    if opts.reuseport {
        sock.set_reuse_port(true)?;
    }
    apply_stream(sock, opts)
}

/// The options that also matter on an accepted or connected stream.
pub fn apply_stream(sock: &Socket, opts: &SocketOpts) -> io::Result<()> {
    if opts.nodelay {
        sock.set_nodelay(true)?;
    }
    if let Some(n) = opts.sndbuf {
        sock.set_send_buffer_size(n)?;
    }
    if let Some(n) = opts.rcvbuf {
        sock.set_recv_buffer_size(n)?;
    }
    if let Some(period) = opts.keepalive {
        let ka = TcpKeepalive::new().with_time(period).with_interval(period);
        sock.set_tcp_keepalive(&ka)?;
    }
    Ok(())
}

/// Applies `opts` to an accepted stream (Linux inherits most options from the
/// listener, but not all kernels do, and being explicit costs nothing).
pub fn configure_accepted(stream: &TcpStream, opts: &SocketOpts) -> io::Result<()> {
    apply_stream(&socket2::SockRef::from(stream), opts)
}

/// setsockopt(2) of an int-valued option on any socket (for the options
/// socket2 does not wrap: SO_RCVLOWAT, SO_RCVBUFFORCE, UDP_SEGMENT, UDP_GRO).
pub fn setsockopt_int(
    sock: &impl std::os::fd::AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: an int option, passed by pointer with its size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
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

/// TCP or UDP, for the functions that serve both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// socket(2), setsockopt(2) for `opts` and bind(2) on one address.
/// `v6only` sets IPV6_V6ONLY on an IPv6 socket when given; otherwise the
/// system default stands. A failure names the address, with a hint for
/// EADDRINUSE and EACCES.
pub fn bind_socket(
    addr: SocketAddr,
    proto: Proto,
    opts: &SocketOpts,
    v6only: Option<bool>,
) -> Result<Socket, Error> {
    let what = match proto {
        Proto::Tcp => format!("listen on {}", display_addr(&addr)),
        Proto::Udp => format!("bind UDP {}", display_addr(&addr)),
    };
    let fail = |e: io::Error| bind_error(&what, addr.port(), proto, &e);
    let (ty, protocol) = match proto {
        Proto::Tcp => (Type::STREAM, Protocol::TCP),
        Proto::Udp => (Type::DGRAM, Protocol::UDP),
    };
    let sock = Socket::new(Domain::for_address(addr), ty, Some(protocol)).map_err(fail)?;
    apply(&sock, opts).map_err(fail)?;
    if let (true, Some(only)) = (addr.is_ipv6(), v6only) {
        sock.set_only_v6(only).map_err(fail)?;
    }
    sock.bind(&SockAddr::from(addr)).map_err(fail)?;
    Ok(sock)
}

/// [`bind_socket`] then listen(2).
pub fn listen_on(
    addr: SocketAddr,
    opts: &SocketOpts,
    backlog: i32,
    v6only: Option<bool>,
) -> Result<TcpListener, Error> {
    let sock = bind_socket(addr, Proto::Tcp, opts, v6only)?;
    sock.listen(backlog).map_err(|e| {
        bind_error(
            &format!("listen on {}", display_addr(&addr)),
            addr.port(),
            Proto::Tcp,
            &e,
        )
    })?;
    Ok(sock.into())
}

/// Binds every interface: `[::]` with IPV6_V6ONLY off, so IPv4 peers
/// arrive as v4-mapped addresses, falling back to `0.0.0.0` where the host
/// has no IPv6. `-4` and `-6` restrict it to one family.
pub fn bind_wildcard(
    port: u16,
    family: Family,
    proto: Proto,
    opts: &SocketOpts,
) -> Result<Socket, Error> {
    let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    match family {
        Family::V4 => bind_socket(v4, proto, opts, None),
        Family::V6 => bind_socket(v6, proto, opts, Some(true)),
        Family::Any => match bind_socket(v6, proto, opts, Some(false)) {
            Err(e) if ipv6_unavailable(&e) => bind_socket(v4, proto, opts, None),
            other => other,
        },
    }
}

/// [`bind_wildcard`] then listen(2).
pub fn listen_wildcard(
    port: u16,
    family: Family,
    opts: &SocketOpts,
    backlog: i32,
) -> Result<TcpListener, Error> {
    let sock = bind_wildcard(port, family, Proto::Tcp, opts)?;
    let local = sock.local_addr().ok().and_then(|a| a.as_socket());
    sock.listen(backlog).map_err(|e| {
        let shown = local.map(|a| display_addr(&a)).unwrap_or_default();
        bind_error(&format!("listen on {shown}"), port, Proto::Tcp, &e)
    })?;
    Ok(sock.into())
}

fn ipv6_unavailable(e: &Error) -> bool {
    // EAFNOSUPPORT when IPv6 is compiled out or disabled; EADDRNOTAVAIL when
    // the module is loaded but disabled by sysctl.
    [libc::EAFNOSUPPORT, libc::EADDRNOTAVAIL]
        .iter()
        .any(|&code| e.why == crate::error::describe(&io::Error::from_raw_os_error(code)))
}

/// A bind failure, with the hint that answers the most asked socket question.
pub fn bind_error(what: &str, port: u16, proto: Proto, err: &io::Error) -> Error {
    let e = Error::io(what, err);
    match err.raw_os_error() {
        Some(libc::EADDRINUSE) => match proto {
            Proto::Tcp => e.with_hint(format!(
                "'sonda probe {port}' shows who holds the port; SO_REUSEADDR (the default for listeners) only helps against TIME-WAIT"
            )),
            Proto::Udp => e.with_hint(format!("'sonda probe --udp {port}' shows who holds the port")),
        },
        Some(libc::EACCES) => {
            e.with_hint("ports below net.ipv4.ip_unprivileged_port_start need root or CAP_NET_BIND_SERVICE")
        }
        _ => e,
    }
}

/// `ADDR:PORT` for IPv4, `[ADDR]:PORT` for IPv6, v4-mapped shown as IPv4.
pub fn display_addr(addr: &SocketAddr) -> String {
    Shown(addr).to_string()
}

/// [`display_addr`] without the allocation, for tables of thousands of rows.
pub struct Shown<'a>(pub &'a SocketAddr);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.ip().to_canonical() {
            std::net::IpAddr::V4(ip) => write!(f, "{ip}:{}", self.0.port()),
            std::net::IpAddr::V6(_) => write!(f, "[{}]:{}", ShownIp(self.0), self.0.port()),
        }
    }
}

/// The address without its port, v4-mapped shown as IPv4, an IPv6 scope
/// as the interface's name where it has one (`fe80::1%eth0`): a link-local
/// address means nothing without its link.
pub struct ShownIp<'a>(pub &'a SocketAddr);

impl std::fmt::Display for ShownIp<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            SocketAddr::V6(a) if a.scope_id() != 0 => {
                match nix::net::if_::if_indextoname(a.scope_id()) {
                    Ok(name) => write!(f, "{}%{}", a.ip(), name.to_string_lossy()),
                    Err(_) => write!(f, "{}%{}", a.ip(), a.scope_id()),
                }
            }
            _ => write!(f, "{}", self.0.ip().to_canonical()),
        }
    }
}
