//! The one socket factory: every socket sonda opens is made here, over
//! socket2 (nix for the netlink socket, which socket2 cannot address
//! safely): the options a user can set, bind and listen, and the dual-stack
//! wildcard listener.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::time::Duration;

use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType};
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
    /// SO_MARK: the firewall and routing mark (needs CAP_NET_ADMIN).
    pub mark: Option<u32>,
    /// SO_BINDTODEVICE: only this interface (needs CAP_NET_RAW).
    pub bind_device: Option<String>,
    /// IP_TOS / IPV6_TCLASS.
    pub tos: Option<u8>,
    /// IP_TTL / IPV6_UNICAST_HOPS.
    pub ttl: Option<u8>,
}

/// TCP or UDP, for the functions that serve both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// socket(2) for `proto` in the family of `addr`, close-on-exec, and with
/// `nonblocking` non-blocking from the start (SOCK_NONBLOCK: no separate
/// fcntl). Fails with socket(2)'s errno: EAFNOSUPPORT where the family is
/// off, EMFILE/ENFILE out of descriptors.
pub fn inet_socket(addr: &SocketAddr, proto: Proto, nonblocking: bool) -> io::Result<Socket> {
    let (ty, protocol) = match proto {
        Proto::Tcp => (Type::STREAM, Protocol::TCP),
        Proto::Udp => (Type::DGRAM, Protocol::UDP),
    };
    let ty = if nonblocking { ty.nonblocking() } else { ty };
    Socket::new(Domain::for_address(*addr), ty, Some(protocol))
}

/// socket(2) for AF_UNIX of type `ty` (stream, seqpacket, datagram),
/// close-on-exec.
pub fn unix_socket(ty: Type) -> io::Result<Socket> {
    Socket::new(Domain::UNIX, ty, None)
}

/// socket(2) for TCP in the family of `addr`, close-on-exec.
pub fn tcp_socket(addr: &SocketAddr) -> io::Result<Socket> {
    inet_socket(addr, Proto::Tcp, false)
}

/// [`tcp_socket`] and a blocking connect(2) to `addr`, as
/// `std::net::TcpStream::connect` does for one address (for sonda's own
/// loopback helpers; user-facing connects go through `engine::connect`).
/// EINTR is not retried: no signal with a handler reaches a thread that
/// calls this (see `signals`).
pub fn tcp_connect(addr: &SocketAddr) -> io::Result<TcpStream> {
    let sock = tcp_socket(addr)?;
    sock.connect(&SockAddr::from(*addr))?;
    Ok(sock.into())
}

/// socket(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG), close-on-exec: the
/// kernel's socket tables (what ss reads). Made with nix, whose netlink
/// address type then reaches the kernel with no hand-built sockaddr.
pub fn netlink_sock_diag() -> io::Result<OwnedFd> {
    nix::sys::socket::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )
    .map_err(io::Error::from)
}

/// setsockopt(2) for every option in `opts` that is set.
pub fn apply(sock: &Socket, opts: &SocketOpts) -> io::Result<()> {
    if opts.reuseaddr {
        sock.set_reuse_address(true)?;
    }
    if opts.reuseport {
        sock.set_reuse_port(true)?;
    }
    apply_ip(sock, opts)?;
    apply_stream(sock, opts)
}

/// The IP-level options, set before bind or connect so the first packet
/// (a SYN) carries them. Each failure says which option.
fn apply_ip(sock: &Socket, opts: &SocketOpts) -> io::Result<()> {
    let named =
        |what: &'static str| move |e: io::Error| io::Error::new(e.kind(), OptionError(what, e));
    if let Some(mark) = opts.mark {
        sock.set_mark(mark).map_err(named("SO_MARK"))?;
    }
    if let Some(dev) = &opts.bind_device {
        sock.bind_device(Some(dev.as_bytes()))
            .map_err(named("SO_BINDTODEVICE"))?;
    }
    let v6 = sock.domain().is_ok_and(|d| d == socket2::Domain::IPV6);
    if let Some(tos) = opts.tos {
        if v6 {
            sock.set_tclass_v6(u32::from(tos))
                .map_err(named("IPV6_TCLASS"))?;
            // A dual-stack socket's IPv4 traffic takes IP_TOS.
            let _ = sock.set_tos(u32::from(tos));
        } else {
            sock.set_tos(u32::from(tos)).map_err(named("IP_TOS"))?;
        }
    }
    if let Some(ttl) = opts.ttl {
        if v6 {
            sock.set_unicast_hops_v6(u32::from(ttl))
                .map_err(named("IPV6_UNICAST_HOPS"))?;
            let _ = sock.set_ttl(u32::from(ttl));
        } else {
            sock.set_ttl(u32::from(ttl)).map_err(named("IP_TTL"))?;
        }
    }
    Ok(())
}

/// A setsockopt that failed, named, with what the kernel said.
#[derive(Debug)]
struct OptionError(&'static str, io::Error);

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = crate::error::describe(&self.1);
        let hint = match (self.0, self.1.raw_os_error()) {
            ("SO_MARK", Some(libc::EPERM)) => " (SO_MARK needs CAP_NET_ADMIN, as root)",
            ("SO_BINDTODEVICE", Some(libc::EPERM)) => {
                " (SO_BINDTODEVICE needs CAP_NET_RAW, as root)"
            }
            ("SO_BINDTODEVICE", Some(libc::ENODEV)) => {
                " (no interface by that name: ip link shows them)"
            }
            _ => "",
        };
        write!(f, "set {}: {why}{hint}", self.0)
    }
}

impl std::error::Error for OptionError {}

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
    bound(addr, proto, opts, v6only).map_err(|e| bind_error(&what, addr.port(), proto, &e))
}

/// [`bind_socket`] with the error as the syscall gave it, for callers that
/// word their own.
pub fn bound(
    addr: SocketAddr,
    proto: Proto,
    opts: &SocketOpts,
    v6only: Option<bool>,
) -> io::Result<Socket> {
    let sock = inet_socket(&addr, proto, false)?;
    apply(&sock, opts)?;
    if let (true, Some(only)) = (addr.is_ipv6(), v6only) {
        sock.set_only_v6(only)?;
    }
    sock.bind(&SockAddr::from(addr))?;
    Ok(sock)
}

/// A TCP listener on `addr` made as `std::net::TcpListener::bind` makes one
/// (SO_REUSEADDR, backlog 128), for sonda's own helper ports (bench's
/// control and data listeners), with the syscall's error.
pub fn tcp_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let opts = SocketOpts {
        reuseaddr: true,
        ..SocketOpts::default()
    };
    let sock = bound(addr, Proto::Tcp, &opts, None)?;
    sock.listen(128)?;
    Ok(sock.into())
}

/// A UDP socket bound to `addr` with no options, as
/// `std::net::UdpSocket::bind` makes one, with the syscall's error.
pub fn udp_bound(addr: SocketAddr) -> io::Result<UdpSocket> {
    bound(addr, Proto::Udp, &SocketOpts::default(), None).map(UdpSocket::from)
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

/// Binds `host` (a name binds its first address; under `-6` IPV6_V6ONLY
/// is set) or, without one, every interface ([`bind_wildcard`]).
pub fn bind_inet(
    host: Option<&str>,
    port: u16,
    family: Family,
    proto: Proto,
    opts: &SocketOpts,
) -> Result<Socket, Error> {
    match host {
        None => bind_wildcard(port, family, proto, opts),
        Some(host) => {
            let addr = super::addr::resolve(host, port, family)?[0];
            let v6only = (family == Family::V6).then_some(true);
            bind_socket(addr, proto, opts, v6only)
        }
    }
}

/// [`bind_inet`] for TCP, then listen(2).
pub fn listen_inet(
    host: Option<&str>,
    port: u16,
    family: Family,
    opts: &SocketOpts,
    backlog: i32,
) -> Result<TcpListener, Error> {
    let sock = bind_inet(host, port, family, Proto::Tcp, opts)?;
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

/// A local address with the device it is bound to, as ss prints it
/// (`0.0.0.0%lo:8080`, `[::]%eth0:8080`).
pub struct OnDevice<'a>(pub &'a SocketAddr, pub &'a str);

impl std::fmt::Display for OnDevice<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (addr, dev) = (self.0, self.1);
        match addr.ip().to_canonical() {
            std::net::IpAddr::V4(ip) => write!(f, "{ip}%{dev}:{}", addr.port()),
            std::net::IpAddr::V6(_) => write!(f, "[{}]%{dev}:{}", ShownIp(addr), addr.port()),
        }
    }
}

/// An interface's name from its index, or the index as digits when it has
/// gone (as `ip` prints one).
pub fn interface_name(index: u32) -> String {
    match nix::net::if_::if_indextoname(index) {
        Ok(name) if !name.is_empty() => name.to_string_lossy().into_owned(),
        _ => index.to_string(),
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
                write!(f, "{}%{}", a.ip(), interface_name(a.scope_id()))
            }
            _ => write!(f, "{}", self.0.ip().to_canonical()),
        }
    }
}
