//! The Unix socket table and the file at a socket path: what `probe -U`
//! compares. A socket is bound to a file by inode and device, not by name:
//! once the file is unlinked or replaced, a listener keeps its name but no
//! `connect` can reach it any more, which is why both are gathered.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{procnet, unix_diag, State, TableSource};

/// SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnixType {
    Stream,
    Dgram,
    SeqPacket,
    Other(u8),
}

impl UnixType {
    pub fn from_raw(t: u8) -> UnixType {
        match i32::from(t) {
            libc::SOCK_STREAM => UnixType::Stream,
            libc::SOCK_DGRAM => UnixType::Dgram,
            libc::SOCK_SEQPACKET => UnixType::SeqPacket,
            _ => UnixType::Other(t),
        }
    }

    /// Whether sockets of this type listen and accept (stream, seqpacket).
    pub fn connection_oriented(self) -> bool {
        matches!(self, UnixType::Stream | UnixType::SeqPacket)
    }
}

/// The file a socket is bound to, as unix_diag reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vfs {
    /// The file's inode number, cut to 32 bits by the kernel's
    /// struct unix_diag_vfs (compare with the low 32 bits of st_ino).
    pub ino: u32,
    /// The file's device in stat(2)'s st_dev encoding (converted from the
    /// kernel's: see `unix_diag::user_dev`).
    pub dev: u64,
}

/// One Unix socket. What the fallback source cannot tell is None.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixEntry {
    pub kind: UnixType,
    /// LISTEN, ESTABLISHED (connected) or CLOSE (unconnected), the TCP
    /// state numbers the kernel reuses for Unix sockets.
    pub state: State,
    /// The socket's own inode (sockfs), what /proc/PID/fd links name; 0 for
    /// a connection queued on a listener and not yet accepted.
    pub inode: u64,
    /// sun_path as bound: a path (without its NUL), or a NUL then an
    /// abstract name. None for an unbound socket. An accepted connection
    /// carries its listener's name.
    pub name: Option<Vec<u8>>,
    /// The file it is bound to (listeners and their accepted connections).
    pub vfs: Option<Vfs>,
    /// The peer socket's inode (0: a peer with no inode yet).
    pub peer: Option<u64>,
    /// UNIX_DIAG_RQLEN: for a listener (pending connections, backlog);
    /// otherwise bytes in the receive and send queues.
    pub rqlen: Option<(u32, u32)>,
    pub uid: Option<u32>,
    /// For a listener, the inodes of the clients whose connections wait in
    /// its accept queue.
    pub pending_peers: Option<Vec<u64>>,
}

/// The Unix socket table and where it came from.
#[derive(Debug)]
pub struct UnixTable {
    pub entries: Vec<UnixEntry>,
    pub source: TableSource,
    /// Why sock_diag was not used, when it was not.
    pub fallback_reason: Option<io::Error>,
}

/// Every Unix socket in this network namespace: from unix_diag, or, where
/// netlink is unavailable, from /proc/net/unix (with less in each entry:
/// see `procnet::read_unix`). Sockets of other network namespaces (a
/// container's) are in neither, even when bound in a shared directory.
pub fn unix_sockets() -> io::Result<UnixTable> {
    match unix_diag::dump() {
        Ok(entries) => Ok(UnixTable {
            entries,
            source: TableSource::SockDiag,
            fallback_reason: None,
        }),
        Err(e) => Ok(UnixTable {
            entries: procnet::read_unix()?,
            source: TableSource::ProcNet,
            fallback_reason: Some(e),
        }),
    }
}

/// What is at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Socket,
    Regular,
    Directory,
    Fifo,
    CharDevice,
    BlockDevice,
    /// A symbolic link whose target does not exist.
    DanglingSymlink,
}

impl FileKind {
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Socket => "socket",
            FileKind::Regular => "regular file",
            FileKind::Directory => "directory",
            FileKind::Fifo => "fifo",
            FileKind::CharDevice => "character device",
            FileKind::BlockDevice => "block device",
            FileKind::DanglingSymlink => "dangling symbolic link",
        }
    }
}

/// stat(2) of a socket path, following symbolic links as connect(2) does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileFacts {
    pub kind: FileKind,
    pub ino: u64,
    pub dev: u64,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (connect(2) needs write permission on the socket).
    pub mode: u32,
    /// Where the path leads when it is a symbolic link.
    pub link_target: Option<PathBuf>,
}

/// lstat(2) and stat(2) of `path`: None when nothing is there.
pub fn stat_path(path: &Path) -> io::Result<Option<FileFacts>> {
    let link = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let is_link = link.file_type().is_symlink();
    let link_target = if is_link {
        std::fs::read_link(path).ok()
    } else {
        None
    };
    let (meta, dangling) = if is_link {
        match std::fs::metadata(path) {
            Ok(m) => (m, false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (link, true),
            Err(e) => return Err(e),
        }
    } else {
        (link, false)
    };
    let t = meta.file_type();
    let kind = if dangling {
        FileKind::DanglingSymlink
    } else if t.is_socket() {
        FileKind::Socket
    } else if t.is_dir() {
        FileKind::Directory
    } else if t.is_fifo() {
        FileKind::Fifo
    } else if t.is_char_device() {
        FileKind::CharDevice
    } else if t.is_block_device() {
        FileKind::BlockDevice
    } else {
        FileKind::Regular
    };
    Ok(Some(FileFacts {
        kind,
        ino: meta.ino(),
        dev: meta.dev(),
        uid: meta.uid(),
        gid: meta.gid(),
        mode: meta.mode() & 0o7777,
        link_target,
    }))
}
