//! Trial binds: the bind a listener would make, tried for real on a
//! throw-away socket and closed at once. The kernel's answer is the proof a
//! socket table can only suggest (a table may miss a socket this user cannot
//! see; a trial bind never does).

use std::ffi::OsStr;
use std::io;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use socket2::{SockAddr, Socket, Type};

use super::UnixType;
use crate::engine::socket::{display_addr, OnDevice, Proto, SocketOpts};
use crate::engine::transport::UnixAddr;

/// The socket options of one trial bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindOpts {
    Plain,
    ReuseAddr,
    ReusePort,
}

impl BindOpts {
    /// The option's name as the kernel documents it (`plain`: none).
    pub fn label(self) -> &'static str {
        match self {
            BindOpts::Plain => "plain",
            BindOpts::ReuseAddr => "SO_REUSEADDR",
            BindOpts::ReusePort => "SO_REUSEPORT",
        }
    }
}

/// An IP address and port, with IPV6_V6ONLY for IPv6 when set.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub v6only: Option<bool>,
}

/// What a trial bind binds: one variant per kind of address, so a new
/// transport adds a variant and an arm in [`trial`], not a second prober.
#[derive(Clone, Debug)]
pub enum BindTarget {
    /// A TCP (bind and listen) or UDP (bind) socket on an IP address, with
    /// the IP options a listener would set first (--bind-device, --mark,
    /// --tos, --ttl; of these only the device changes what a bind decides:
    /// sockets bound to different devices may share a port).
    Inet(Target, Proto, SocketOpts),
    /// A Unix socket of this type (stream and seqpacket also listen) on a
    /// path or an abstract name. A path must not exist yet: the bind
    /// creates the file, and the trial removes it again.
    Unix(UnixAddr, UnixType),
}

/// The outcome of one trial bind.
#[derive(Clone, Debug)]
pub struct BindAttempt {
    /// The address as shown to a user.
    pub address: String,
    /// An IPv6 wildcard with IPV6_V6ONLY off (takes IPv4 too).
    pub dual_stack: bool,
    pub options: BindOpts,
    pub ok: bool,
    /// The errno's symbolic name ([`errno_name`]).
    pub errno: Option<&'static str>,
    /// The errno's text, for people.
    pub error: Option<String>,
    pub raw_errno: Option<i32>,
}

/// socket(2), setsockopt(2), bind(2) and, for a stream socket, listen(2) on
/// a throw-away socket closed before it returns. Never blocks. The address
/// is held for that instant: a client connecting then is refused or reset.
pub fn trial(target: &BindTarget, opts: BindOpts) -> BindAttempt {
    let (result, address, dual_stack) = match target {
        BindTarget::Inet(t, proto, ip) => (
            trial_inet(t, *proto, opts, ip),
            match &ip.bind_device {
                Some(dev) => OnDevice(&t.addr, dev).to_string(),
                None => display_addr(&t.addr),
            },
            t.v6only == Some(false),
        ),
        BindTarget::Unix(name, ty) => (trial_unix(name, *ty, opts), name.to_string(), false),
    };
    let (errno, error, raw) = match &result {
        Ok(()) => (None, None, None),
        Err(e) => (
            e.raw_os_error().map(errno_name),
            Some(crate::error::describe(e)),
            e.raw_os_error(),
        ),
    };
    BindAttempt {
        address,
        dual_stack,
        options: opts,
        ok: result.is_ok(),
        errno,
        error,
        raw_errno: raw,
    }
}

fn trial_inet(target: &Target, proto: Proto, opts: BindOpts, ip: &SocketOpts) -> io::Result<()> {
    let sock = crate::engine::socket::inet_socket(&target.addr, proto, false)?;
    crate::engine::socket::apply(&sock, ip)?;
    set_opts(&sock, opts)?;
    if let (true, Some(only)) = (target.addr.is_ipv6(), target.v6only) {
        sock.set_only_v6(only)?;
    }
    sock.bind(&SockAddr::from(target.addr))?;
    if proto == Proto::Tcp {
        sock.listen(1)?;
    }
    Ok(())
}

fn trial_unix(name: &UnixAddr, ty: UnixType, opts: BindOpts) -> io::Result<()> {
    let socket_type = match ty {
        UnixType::Dgram => Type::DGRAM,
        UnixType::SeqPacket => Type::SEQPACKET,
        _ => Type::STREAM,
    };
    let sock = crate::engine::socket::unix_socket(socket_type)?;
    set_opts(&sock, opts)?;
    let sun_path = name.sun_path();
    sock.bind(&SockAddr::unix(OsStr::from_bytes(&sun_path))?)?;
    // The file the bind just made, to remove exactly that one: if another
    // process replaced it in between, its file stays.
    let made = name
        .path()
        .and_then(|p| std::fs::symlink_metadata(p).ok())
        .map(|m| (m.dev(), m.ino()));
    let listened = if ty.connection_oriented() {
        sock.listen(1)
    } else {
        Ok(())
    };
    drop(sock);
    if let (Some(path), Some(made)) = (name.path(), made) {
        let still = std::fs::symlink_metadata(path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if still == Some(made) {
            // Best effort: a failure leaves a stale socket file, which the
            // caller's next stat shows.
            let _ = std::fs::remove_file(path);
        }
    }
    listened
}

fn set_opts(sock: &Socket, opts: BindOpts) -> io::Result<()> {
    match opts {
        BindOpts::Plain => Ok(()),
        BindOpts::ReuseAddr => sock.set_reuse_address(true),
        BindOpts::ReusePort => sock.set_reuse_port(true),
    }
}

/// The symbolic name of the errors a bind can meet (`EOTHER` for the rest),
/// for scripts that match on them.
pub fn errno_name(code: i32) -> &'static str {
    match code {
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EACCES => "EACCES",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EPERM => "EPERM",
        libc::EINVAL => "EINVAL",
        // A Unix socket path's directory: missing, not a directory,
        // read-only, or a loop of symbolic links.
        libc::ENOENT => "ENOENT",
        libc::ENOTDIR => "ENOTDIR",
        libc::EROFS => "EROFS",
        libc::ELOOP => "ELOOP",
        _ => "EOTHER",
    }
}
