//! Unix domain sockets: paths and Linux abstract names (`@NAME`), stream
//! and seqpacket connections, and listeners that remove their file when
//! they go.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::{SockAddr, Socket, Type};

use super::kernel::{Family, SocketStream};
use super::{Conn, Cred, Listener, Peer};
use crate::engine::socket::unix_socket;
use crate::error::{Error, Exit};

/// sun_path's size: a path must leave room for its NUL.
pub const SUN_PATH: usize = 108;

/// A Unix socket address a user can name: a path, or an abstract name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnixAddr {
    Path(PathBuf),
    /// Linux's abstract namespace: no file, gone with the last socket.
    Abstract(Vec<u8>),
}

impl UnixAddr {
    /// `-U PATH` or `-U @NAME`, as typed. Either must fit sun_path: a path
    /// of 107 bytes at most (it needs its terminating NUL there), an
    /// abstract name of 107 after the `@` (which stands for its leading
    /// NUL). A relative path
    /// that begins with `@` is written `./@NAME`.
    pub fn parse(s: &std::ffi::OsStr) -> Result<UnixAddr, String> {
        let bytes = s.as_bytes();
        if bytes.is_empty() {
            return Err("a Unix socket path cannot be empty".to_string());
        }
        // The '@' stands for the abstract name's leading NUL; a path needs
        // room for its terminating one.
        let room = if bytes.starts_with(b"@") {
            SUN_PATH
        } else {
            SUN_PATH - 1
        };
        if bytes.len() > room {
            return Err(format!(
                "{} bytes is too long for a Unix socket address (sun_path holds {SUN_PATH}: a path of at most {} bytes, or @ and a name of at most {})",
                bytes.len(),
                SUN_PATH - 1,
                SUN_PATH - 1
            ));
        }
        if bytes.contains(&0) {
            return Err("a Unix socket path cannot contain a NUL byte".to_string());
        }
        match bytes.strip_prefix(b"@") {
            Some([]) => Err("an abstract name needs at least one byte after '@'".to_string()),
            Some(name) => Ok(UnixAddr::Abstract(name.to_vec())),
            None => Ok(UnixAddr::Path(PathBuf::from(s))),
        }
    }

    /// The bytes of sun_path as the kernel stores and reports them: the
    /// path, or a NUL followed by the abstract name.
    pub fn sun_path(&self) -> Vec<u8> {
        match self {
            UnixAddr::Path(p) => p.as_os_str().as_bytes().to_vec(),
            UnixAddr::Abstract(name) => {
                let mut v = Vec::with_capacity(name.len() + 1);
                v.push(0);
                v.extend_from_slice(name);
                v
            }
        }
    }

    pub fn sockaddr(&self) -> io::Result<SockAddr> {
        match self {
            UnixAddr::Path(p) => SockAddr::unix(p),
            UnixAddr::Abstract(name) => crate::engine::sys::abstract_sockaddr(name),
        }
    }

    /// The file's path, when the address is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            UnixAddr::Path(p) => Some(p),
            UnixAddr::Abstract(_) => None,
        }
    }
}

/// The path lossily as text; an abstract name as `@NAME`, with any NUL in
/// it shown as `@` the way /proc/net/unix and ss show it.
impl fmt::Display for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixAddr::Path(p) => write!(f, "{}", p.display()),
            UnixAddr::Abstract(name) => {
                let shown: Vec<u8> = name
                    .iter()
                    .map(|&b| if b == 0 { b'@' } else { b })
                    .collect();
                write!(f, "@{}", String::from_utf8_lossy(&shown))
            }
        }
    }
}

/// The address a Unix socket has: the peer of an accepted or received
/// socket often has none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnixName {
    Bound(UnixAddr),
    Unnamed,
}

impl UnixName {
    pub fn of(addr: &SockAddr) -> UnixName {
        if let Some(p) = addr.as_pathname() {
            UnixName::Bound(UnixAddr::Path(p.to_path_buf()))
        } else if let Some(name) = addr.as_abstract_namespace() {
            UnixName::Bound(UnixAddr::Abstract(name.to_vec()))
        } else {
            UnixName::Unnamed
        }
    }
}

impl fmt::Display for UnixName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixName::Bound(addr) => addr.fmt(f),
            UnixName::Unnamed => f.write_str("unnamed"),
        }
    }
}

/// The socket type: listen/connect use a stream or seqpacket,
/// udp-send/udp-recv datagrams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kind {
    #[default]
    Stream,
    /// One record per read, boundaries kept.
    SeqPacket,
    Datagram,
}

impl Kind {
    /// A connection's type: SOCK_SEQPACKET when asked (`--seqpacket`).
    pub fn stream(seqpacket: bool) -> Kind {
        if seqpacket {
            Kind::SeqPacket
        } else {
            Kind::Stream
        }
    }

    pub fn socket_type(self) -> Type {
        match self {
            Kind::Stream => Type::STREAM,
            Kind::SeqPacket => Type::SEQPACKET,
            Kind::Datagram => Type::DGRAM,
        }
    }
}

/// The send buffer a Unix stream sender asks for unless told otherwise. A
/// Unix stream sender blocks once its queued bytes reach SO_SNDBUF (the
/// reader's buffer plays no part), and the default (net.core.wmem_default,
/// 208 KiB) holds a fifth of a 1 MiB write; measured here with 1 MiB
/// writes, bench's one stream went from about 31 to 60-75 Gbit/s with 512K
/// to 2M, and the relay from about 1.4 to 2.5 GiB/s.
pub const STREAM_SNDBUF: usize = 1 << 20;

/// Raises a Unix stream socket's send buffer to [`STREAM_SNDBUF`]:
/// SO_SNDBUFFORCE where allowed (root), which passes net.core.wmem_max,
/// else SO_SNDBUF, which that caps. Best effort: the defaults still work.
pub fn widen_send_buffer(sock: &Socket) {
    use nix::sys::socket::{setsockopt, sockopt};
    if setsockopt(sock, sockopt::SndBufForce, &STREAM_SNDBUF).is_err() {
        let _ = sock.set_send_buffer_size(STREAM_SNDBUF);
    }
}

/// A datagram socket connected to `addr`, for datagrams of up to `size`
/// bytes. It is autobound to an abstract name of the kernel's choosing
/// (no file to leave behind), so a reply can reach it; the send buffer
/// is raised to fit `size`, which bounds a Unix datagram.
pub fn connect_datagram(
    addr: &UnixAddr,
    size: usize,
    holders: &dyn Holders,
) -> Result<(Socket, Peer), Error> {
    let what = format!("connect {addr}");
    let fail = |e: io::Error| Error::io(&what, &e);
    let target = addr
        .sockaddr()
        .map_err(|e| Error::usage(format!("socket path '{addr}'"), e.to_string()))?;
    let sock = unix_socket(Type::DGRAM).map_err(fail)?;
    // An address of the family alone asks the kernel to pick an abstract
    // name (autobind).
    let autobind = SockAddr::unix("").map_err(fail)?;
    sock.bind(&autobind).map_err(fail)?;
    // A datagram needs its length plus a little bookkeeping below
    // SO_SNDBUF (the kernel doubles what is set, up to wmem_max).
    if sock.send_buffer_size().is_ok_and(|n| n < size + 1024) {
        sock.set_send_buffer_size(size + 1024).map_err(fail)?;
    }
    if let Err(e) = sock.connect(&target) {
        return Err(connect_error(addr, Kind::Datagram, None, holders, &e));
    }
    let peer = Peer::Unix {
        name: UnixName::Bound(addr.clone()),
        cred: None,
    };
    Ok((sock, peer))
}

/// socket(2) + connect(2) to `addr`. With `timeout`, a connect that waits
/// (the listener's backlog is full) gives up after it: SO_SNDTIMEO bounds
/// a Unix connect(2), where a non-blocking one would fail at once instead.
pub fn connect(
    addr: &UnixAddr,
    kind: Kind,
    timeout: Option<Duration>,
    holders: &dyn Holders,
) -> Result<Conn, Error> {
    let sock = connect_socket(addr, kind, timeout, holders)?;
    let peer = Peer::Unix {
        name: UnixName::Bound(addr.clone()),
        cred: peer_cred(&sock),
    };
    let family = match kind {
        Kind::SeqPacket => Family::SeqPacket,
        _ => Family::Unix,
    };
    Ok(Arc::new(SocketStream::new(sock, peer, family)))
}

/// [`connect`], giving the connected socket itself, for a caller that
/// drives it directly (bench's workers); failures are explained the same
/// way.
pub fn connect_socket(
    addr: &UnixAddr,
    kind: Kind,
    timeout: Option<Duration>,
    holders: &dyn Holders,
) -> Result<Socket, Error> {
    let what = format!("connect {addr}");
    let fail = |e: io::Error| Error::io(&what, &e);
    let target = addr
        .sockaddr()
        .map_err(|e| Error::usage(format!("socket path '{addr}'"), e.to_string()))?;
    let sock = unix_socket(kind.socket_type()).map_err(fail)?;
    sock.set_write_timeout(timeout).map_err(fail)?;
    if let Err(e) = sock.connect(&target) {
        return Err(connect_error(addr, kind, timeout, holders, &e));
    }
    sock.set_write_timeout(None).map_err(fail)?;
    Ok(sock)
}

/// What a failed Unix connect means, in the words of DESIGN.md.
fn connect_error(
    addr: &UnixAddr,
    kind: Kind,
    timeout: Option<Duration>,
    holders: &dyn Holders,
    e: &io::Error,
) -> Error {
    let what = format!("connect {addr}");
    let file = addr.path().and_then(|p| std::fs::metadata(p).ok());
    match e.raw_os_error() {
        Some(libc::ENOENT) => Error::new(Exit::Resolve, what, "no such socket file"),
        Some(libc::EAGAIN) => Error::new(
            Exit::TimedOut,
            what,
            format!(
                "timed out after {} (the listener's backlog is full)",
                humantime::format_duration(timeout.unwrap_or_default())
            ),
        ),
        Some(libc::ECONNREFUSED) => match (addr, &file) {
            (UnixAddr::Path(_), Some(m)) if !m.file_type().is_socket() => Error::new(
                Exit::Refused,
                what,
                format!("connection refused: not a socket ({})", file_kind(m)),
            ),
            (UnixAddr::Path(p), m) => {
                let file = m.as_ref().map(|m| (m.dev(), m.ino()));
                match holders.holder(addr, file) {
                    // A different type bound there would be EPROTOTYPE.
                    Ok(Some(who)) if kind != Kind::Datagram => Error::new(
                        Exit::Refused,
                        what,
                        format!("connection refused: a socket is bound to the file but does not listen (held by {who})"),
                    )
                    .with_hint(format!("'sonda probe -U {}' shows it", p.display())),
                    _ => Error::io(what, e).with_hint(format!(
                        "nothing listens on this socket file: it is stale (its listener exited without removing it); 'sonda probe -U {}' tells",
                        p.display()
                    )),
                }
            }
            // An abstract name is looked up with the socket's type, so a
            // name held by another type is refused, not EPROTOTYPE.
            (UnixAddr::Abstract(_), _) if kind != Kind::Datagram && dgram_reaches(addr) => {
                Error::new(Exit::Refused, what, "connection refused").with_hint(format!(
                    "a datagram socket (SOCK_DGRAM) is bound to the name: 'sonda udp-send -U {addr}' sends to it"
                ))
            }
            (UnixAddr::Abstract(_), _) => match holders.holder(addr, None) {
                Ok(Some(who)) => Error::new(
                    Exit::Refused,
                    what,
                    format!("connection refused: the name is held by {who}, but no {} socket listens on it", kind_name(kind)),
                )
                .with_hint(format!(
                    "if it is a {} listener, {}; 'sonda probe -U {addr}' shows its type",
                    if kind == Kind::SeqPacket { "SOCK_STREAM" } else { "SOCK_SEQPACKET" },
                    if kind == Kind::SeqPacket { "drop --seqpacket" } else { "add --seqpacket" },
                )),
                _ => Error::new(
                    Exit::Refused,
                    what,
                    "connection refused: no socket is bound to this abstract name",
                ),
            },
        },
        Some(libc::EACCES) => {
            let why = match &file {
                Some(m) => format!("permission denied ({})", owner_and_mode(m)),
                None => "permission denied (on a directory of the path)".into(),
            };
            Error::new(Exit::Failure, what, why)
        }
        Some(libc::EPROTOTYPE) => Error::io(what, e).with_hint(type_hint(addr, kind)),
        _ => Error::io(what, e),
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Stream => "SOCK_STREAM",
        Kind::SeqPacket => "SOCK_SEQPACKET",
        Kind::Datagram => "SOCK_DGRAM",
    }
}

/// Whether a datagram socket has `addr`: a datagram connect only sets the
/// destination, so trying one leaves no trace at the other end.
fn dgram_reaches(addr: &UnixAddr) -> bool {
    addr.sockaddr()
        .ok()
        .is_some_and(|target| unix_socket(Type::DGRAM).is_ok_and(|s| s.connect(&target).is_ok()))
}

/// Which command speaks to a socket of another type.
fn type_hint(addr: &UnixAddr, kind: Kind) -> String {
    if kind == Kind::Datagram {
        return format!("a stream socket is bound there: 'sonda connect -U {addr}' talks to it (with --seqpacket for SOCK_SEQPACKET)");
    }
    match (dgram_reaches(addr), kind) {
        (true, _) => format!(
            "a datagram socket (SOCK_DGRAM) is bound there: 'sonda udp-send -U {addr}' sends to it"
        ),
        (false, Kind::SeqPacket) => "a SOCK_STREAM socket is bound there: drop --seqpacket".into(),
        (false, _) => "a SOCK_SEQPACKET socket is bound there: add --seqpacket".into(),
    }
}

fn file_kind(m: &std::fs::Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_file() {
        "a regular file"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }
}

/// `srwxr-x--- root:wheel`, as ls -l says it.
fn owner_and_mode(m: &std::fs::Metadata) -> String {
    let mode = m.mode();
    let bits: String = (0..9)
        .map(|i| {
            let on = mode & (0o400 >> i) != 0;
            match (on, i % 3) {
                (false, _) => '-',
                (true, 0) => 'r',
                (true, 1) => 'w',
                (true, _) => 'x',
            }
        })
        .collect();
    let kind = if m.file_type().is_socket() { 's' } else { '-' };
    let user = nix::unistd::User::from_uid(m.uid().into())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| m.uid().to_string());
    let group = nix::unistd::Group::from_gid(m.gid().into())
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_else(|| m.gid().to_string());
    format!("{kind}{bits} owned by {user}:{group}")
}

/// SO_PEERCRED, and the peer's command from /proc when visible.
pub fn peer_cred(sock: &Socket) -> Option<Cred> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let c = getsockopt(&sock.as_fd(), PeerCredentials).ok()?;
    let command = std::fs::read_to_string(format!("/proc/{}/comm", c.pid()))
        .ok()
        .map(|s| s.trim_end().to_string());
    Some(Cred {
        pid: c.pid(),
        uid: c.uid(),
        gid: c.gid(),
        command,
    })
}

/// A file a listener created: removed when the listener goes, if the path
/// still names that file (a successor's socket is left alone).
#[derive(Clone, Debug, PartialEq, Eq)]
struct OwnFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl OwnFile {
    fn remove(&self) {
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if m.dev() == self.dev && m.ino() == self.ino {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Every socket file this process has bound and not yet removed, so the
/// SIGINT/SIGTERM path can remove them before the process exits.
static BOUND: Mutex<Vec<OwnFile>> = Mutex::new(Vec::new());

/// Removes the socket files this process created (the signal path calls it
/// just before exit; an orderly end removes them as the sockets drop).
pub fn remove_bound_files() {
    let files = std::mem::take(&mut *BOUND.lock().unwrap_or_else(|p| p.into_inner()));
    for f in files {
        f.remove();
    }
}

/// A socket bound to a Unix address by this process; a path's file goes
/// with it.
pub struct Bound {
    sock: Socket,
    addr: UnixAddr,
    file: Option<OwnFile>,
}

/// What to do about an existing file at the path.
#[derive(Clone, Copy, Debug, Default)]
pub struct BindOpts {
    /// Remove a socket file nothing is bound to (never anything else).
    pub unlink_stale: bool,
}

/// What holds a Unix address that bind(2) found in use.
pub trait Holders {
    /// Whether a socket is bound to the file (dev, ino) or the abstract
    /// name, and who holds it: `Ok(None)` means no socket, a stale file.
    fn holder(&self, addr: &UnixAddr, file: Option<(u64, u64)>) -> io::Result<Option<String>>;
}

/// socket(2) of `ty` and bind(2) to `addr`. An existing path is never
/// replaced silently: `holders` tells a live socket (exit 5 naming it) from
/// a stale file (exit 5 with the hint, or removed with `unlink_stale`);
/// anything but a socket stays and is exit 5.
pub fn bind(
    addr: &UnixAddr,
    ty: Type,
    opts: BindOpts,
    holders: &dyn Holders,
) -> Result<Bound, Error> {
    let what = format!("bind {addr}");
    let fail = |e: io::Error| Error::io(&what, &e);
    let target = addr
        .sockaddr()
        .map_err(|e| Error::usage(format!("socket path '{addr}'"), e.to_string()))?;
    let sock = unix_socket(ty).map_err(fail)?;
    match sock.bind(&target) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {
            in_use(addr, opts, holders, &e)?;
            // A stale file removed: the name is free again.
            sock.bind(&target).map_err(fail)?;
        }
        Err(e) => return Err(fail(e)),
    }
    let file = addr.path().and_then(|p| {
        let m = std::fs::symlink_metadata(p).ok()?;
        Some(OwnFile {
            path: p.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
        })
    });
    if let Some(f) = &file {
        BOUND
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(f.clone());
    }
    Ok(Bound {
        sock,
        addr: addr.clone(),
        file,
    })
}

/// EADDRINUSE on bind: Ok when a stale file was removed (bind again).
fn in_use(
    addr: &UnixAddr,
    opts: BindOpts,
    holders: &dyn Holders,
    e: &io::Error,
) -> Result<(), Error> {
    let what = format!("bind {addr}");
    let Some(path) = addr.path() else {
        let who = holders.holder(addr, None).ok().flatten();
        let why = match who {
            Some(who) => format!("address in use: the abstract name is held by {who}"),
            None => "address in use: another socket holds the abstract name".into(),
        };
        return Err(Error::new(Exit::AddrInUse, what, why)
            .with_hint(format!("'sonda probe -U {addr}' shows who holds it")));
    };
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(_) => return Err(Error::io(what, e)),
    };
    if !m.file_type().is_socket() {
        return Err(Error::new(
            Exit::AddrInUse,
            what,
            format!(
                "the path exists and is {}, not a socket; it is left alone",
                file_kind(&m)
            ),
        ));
    }
    let holder = holders
        .holder(addr, Some((m.dev(), m.ino())))
        .map(|who| who.or_else(|| reachable(addr).then(|| "a socket in another network namespace (a connect reaches it; the socket table here cannot see it)".to_string())));
    match holder {
        Ok(Some(who)) => Err(Error::new(
            Exit::AddrInUse,
            what,
            format!("address in use: a live socket is bound to it, held by {who}"),
        )
        .with_hint(format!("'sonda probe -U {addr}' shows who holds it"))),
        Ok(None) if opts.unlink_stale => {
            std::fs::remove_file(path).map_err(|e| Error::io(format!("remove stale socket file {addr}"), &e))?;
            Ok(())
        }
        Ok(None) => Err(Error::new(
            Exit::AddrInUse,
            what,
            "address in use: a stale socket file (no socket is bound to it)",
        )
        .with_hint(format!("'sonda listen -U {addr} --unlink-stale' removes it (only a socket file nothing is bound to)"))),
        Err(diag) => Err(Error::new(
            Exit::AddrInUse,
            what,
            format!(
                "address in use: a socket file, and the socket table cannot tell whether it is live ({})",
                crate::error::describe(&diag)
            ),
        )),
    }
}

/// Whether a connect(2) of any type reaches `addr`. The socket table tells
/// only of this network namespace; a listener in another one (a container
/// sharing the directory, a service with PrivateNetwork=) is still bound to
/// the file, and a file is stale only when every type is refused. A stream
/// connect that succeeds is closed at once (its listener sees an empty
/// connection): the price of never removing a live socket's file.
fn reachable(addr: &UnixAddr) -> bool {
    let Ok(target) = addr.sockaddr() else {
        return false;
    };
    // Non-blocking: a listener with a full backlog answers EAGAIN at once.
    [Type::STREAM, Type::SEQPACKET, Type::DGRAM]
        .into_iter()
        .any(|ty| {
            unix_socket(ty.nonblocking()).is_ok_and(|s| match s.connect(&target) {
                Ok(()) => true,
                // A socket of another type is bound there, or one whose
                // backlog is full: live either way.
                Err(e) => matches!(
                    e.raw_os_error(),
                    Some(libc::EPROTOTYPE) | Some(libc::EAGAIN) | Some(libc::EINPROGRESS)
                ),
            })
        })
}

impl Bound {
    pub fn socket(&self) -> &Socket {
        &self.sock
    }

    pub fn addr(&self) -> &UnixAddr {
        &self.addr
    }

    /// A second descriptor for the socket (dup(2)), for a caller that owns
    /// its socket; the file still goes when this `Bound` does.
    pub fn try_clone_socket(&self) -> io::Result<Socket> {
        self.sock.try_clone()
    }

    /// listen(2), as a [`Listener`] of the socket's type.
    pub fn listen(self, backlog: i32) -> Result<UnixListener, Error> {
        self.sock
            .listen(backlog)
            .map_err(|e| Error::io(format!("listen on {}", self.addr), &e))?;
        let family = match self.sock.r#type() {
            Ok(Type::SEQPACKET) => Family::SeqPacket,
            _ => Family::Unix,
        };
        Ok(UnixListener {
            bound: self,
            family,
        })
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        if let Some(f) = self.file.take() {
            BOUND
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|b| *b != f);
            f.remove();
        }
    }
}

/// A listening Unix socket; its file goes when it does.
pub struct UnixListener {
    bound: Bound,
    family: Family,
}

impl Listener for UnixListener {
    fn accept(&self) -> io::Result<Conn> {
        let (sock, addr) = self.bound.sock.accept()?;
        let peer = Peer::Unix {
            name: UnixName::of(&addr),
            cred: peer_cred(&sock),
        };
        Ok(Arc::new(SocketStream::new(sock, peer, self.family)))
    }

    fn local(&self) -> String {
        self.bound.addr.to_string()
    }

    fn stop(&self) {
        let _ = self.bound.sock.shutdown(Shutdown::Read);
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.bound.sock.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<UnixAddr, String> {
        UnixAddr::parse(std::ffi::OsStr::new(s))
    }

    #[test]
    fn paths_and_abstract_names() {
        assert_eq!(
            parse("/tmp/a.sock"),
            Ok(UnixAddr::Path("/tmp/a.sock".into()))
        );
        assert_eq!(parse("rel.sock"), Ok(UnixAddr::Path("rel.sock".into())));
        assert_eq!(parse("./@x"), Ok(UnixAddr::Path("./@x".into())));
        assert_eq!(parse("@app"), Ok(UnixAddr::Abstract(b"app".to_vec())));
        assert_eq!(parse("@app").map(|n| n.sun_path()), Ok(b"\0app".to_vec()));
        assert_eq!(parse("@a b").map(|n| n.to_string()), Ok("@a b".to_string()));
    }

    #[test]
    fn the_sun_path_limit() {
        let at_limit = format!("/{}", "a".repeat(SUN_PATH - 2));
        assert_eq!(at_limit.len(), 107);
        assert!(parse(&at_limit).is_ok());
        let over = format!("/{}", "a".repeat(SUN_PATH - 1));
        let err = parse(&over).unwrap_err();
        assert!(err.starts_with("108 bytes is too long"), "{err}");
        // An abstract name's '@' takes the place of its leading NUL.
        let longest = parse(&format!("@{}", "n".repeat(107))).unwrap();
        assert_eq!(longest.sockaddr().unwrap().len() as usize, 2 + 108);
        assert!(parse(&format!("@{}", "n".repeat(108))).is_err());
        assert!(parse("").is_err());
        assert!(parse("@").is_err());
    }
}
