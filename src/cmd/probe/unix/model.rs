//! What `probe -U` knows about a socket path: the file, the sockets that
//! carry its name or are bound to its inode, each with how it relates to
//! the file, the trial binds, and the verdict; and the JSON report.

use serde::Serialize;

use crate::engine::diag::trial::BindAttempt;
use crate::engine::diag::{FileFacts, Owner, State, TableSource, UnixEntry, UnixType};
use crate::error::Exit;

use super::super::model::{Finding, OwnerJson};

/// How a socket relates to the file now at the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Binding {
    /// Bound to the inode and device of the file at the path.
    ThisFile,
    /// Bound to another inode under the same name: a file since unlinked
    /// or replaced, which no connect by path reaches.
    OtherInode,
    /// Bound to the name; the source cannot tell which file (/proc/net/unix).
    Unknown,
    /// An abstract name: no file at all.
    Abstract,
}

/// What a socket does with the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A stream or seqpacket socket in listen(2).
    Listener,
    /// Bound and not listening: a datagram socket, or a stream socket that
    /// never called listen(2).
    Bound,
    /// A connection accepted by a listener, which carries its name.
    Connection,
    /// A connection in a listener's queue, not accepted yet (only
    /// /proc/net/unix lists these as sockets of their own).
    Pending,
}

/// One socket of the report, with its owners and its peer's.
#[derive(Debug, Serialize)]
pub struct SockRow {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub state: &'static str,
    pub role: Role,
    pub binding: Binding,
    pub inode: u64,
    /// The name as bound, as text (`@` for an abstract name's NULs).
    pub name: Option<String>,
    /// The inode of the file it is bound to (32 bits: unix_diag's width).
    pub file_inode: Option<u32>,
    /// That file's device, `MAJOR:MINOR`.
    pub file_device: Option<String>,
    pub uid: Option<u32>,
    /// For a listener: connections waiting to be accepted, and the backlog.
    pub pending: Option<u32>,
    pub backlog: Option<u32>,
    pub peer: Option<u64>,
    pub peer_owners: Vec<OwnerJson>,
    pub owners: Vec<OwnerJson>,
    pub owner_visible: bool,
    #[serde(skip)]
    pub entry: UnixEntry,
}

impl SockRow {
    /// The row for `e`, held by `owners` (empty: none visible), whose peer
    /// is held by `peer_owners`.
    pub fn new(
        e: UnixEntry,
        role: Role,
        binding: Binding,
        owners: Vec<Owner>,
        peer_owners: Vec<Owner>,
    ) -> SockRow {
        let listening = e.state == State::LISTEN;
        SockRow {
            kind: type_name(e.kind),
            state: state_name(e.state),
            role,
            binding,
            inode: e.inode,
            name: e.name.as_deref().map(name_text),
            file_inode: e.vfs.map(|v| v.ino),
            file_device: e.vfs.map(|v| device_text(v.dev)),
            uid: e.uid,
            pending: if listening {
                e.rqlen.map(|(r, _)| r)
            } else {
                None
            },
            backlog: if listening {
                e.rqlen.map(|(_, w)| w)
            } else {
                None
            },
            peer: e.peer.filter(|&p| p != 0),
            peer_owners: json(peer_owners),
            owner_visible: e.inode == 0 || !owners.is_empty(),
            owners: json(owners),
            entry: e,
        }
    }

    /// A socket that holds the name: what a new bind collides with.
    pub fn holds_name(&self) -> bool {
        matches!(self.role, Role::Listener | Role::Bound)
    }
}

fn json(owners: Vec<Owner>) -> Vec<OwnerJson> {
    owners
        .into_iter()
        .map(|o| OwnerJson {
            pid: o.pid,
            command: o.command,
        })
        .collect()
}

pub fn type_name(t: UnixType) -> &'static str {
    match t {
        UnixType::Stream => "stream",
        UnixType::Dgram => "dgram",
        UnixType::SeqPacket => "seqpacket",
        UnixType::Other(_) => "other",
    }
}

/// The state names ss uses for Unix sockets.
pub fn state_name(s: State) -> &'static str {
    match s {
        State::LISTEN => "LISTEN",
        State::ESTABLISHED => "ESTAB",
        State::CLOSE => "UNCONN",
        _ => "UNKNOWN",
    }
}

/// A sun_path as text: a path lossily, an abstract name as `@NAME` with
/// every NUL shown as `@`.
pub fn name_text(name: &[u8]) -> String {
    let shown: Vec<u8> = name
        .iter()
        .map(|&b| if b == 0 { b'@' } else { b })
        .collect();
    String::from_utf8_lossy(&shown).into_owned()
}

/// An st_dev as `MAJOR:MINOR`, the way stat(1) and /proc/self/mountinfo
/// show it.
pub fn device_text(dev: u64) -> String {
    format!("{}:{}", libc::major(dev), libc::minor(dev))
}

/// The answer, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathState {
    /// Nothing at the path (or the abstract name is unused).
    Free,
    /// A socket is bound to the file (or holds the abstract name).
    Live,
    /// A socket file no socket is bound to.
    Stale,
    /// Nothing at the path, but a listener still holds the name, bound to
    /// a file since unlinked.
    Orphaned,
    /// Something other than a socket is at the path.
    NotASocket,
}

#[derive(Debug, Serialize)]
pub struct UnixVerdict {
    pub state: PathState,
    /// Whether `sonda listen -U PATH` could bind it now.
    pub bind_ok: bool,
    pub text: String,
}

impl UnixVerdict {
    /// 0 when a listener could bind the path now, 5 otherwise (DESIGN.md:
    /// for probe, 5 means a bind would fail).
    pub fn exit(&self) -> Exit {
        if self.bind_ok {
            Exit::Success
        } else {
            Exit::AddrInUse
        }
    }
}

/// A trial bind of one socket type.
pub struct UnixBind {
    pub kind: UnixType,
    pub attempt: BindAttempt,
}

#[derive(Serialize)]
pub struct BindJson<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub ok: bool,
    pub errno: Option<&'static str>,
    pub error: Option<&'a str>,
}

impl<'a> From<&'a UnixBind> for BindJson<'a> {
    fn from(b: &'a UnixBind) -> Self {
        BindJson {
            kind: type_name(b.kind),
            ok: b.attempt.ok,
            errno: b.attempt.errno,
            error: b.attempt.error.as_deref(),
        }
    }
}

/// The file at the path, for the report.
#[derive(Serialize)]
pub struct FileJson {
    pub kind: &'static str,
    pub inode: u64,
    pub device: String,
    pub uid: u32,
    pub gid: u32,
    /// Octal permission bits, e.g. "0755".
    pub mode: String,
    pub link_target: Option<String>,
}

impl From<&FileFacts> for FileJson {
    fn from(f: &FileFacts) -> Self {
        FileJson {
            kind: f.kind.name(),
            inode: f.ino,
            device: device_text(f.dev),
            uid: f.uid,
            gid: f.gid,
            mode: format!("{:04o}", f.mode),
            link_target: f.link_target.as_ref().map(|p| p.display().to_string()),
        }
    }
}

/// The `--json` object of `probe -U` (schema in the probe page).
#[derive(Serialize)]
pub struct Report<'a> {
    pub path: String,
    #[serde(rename = "abstract")]
    pub is_abstract: bool,
    pub source: &'static str,
    pub file: Option<FileJson>,
    pub binds: Vec<BindJson<'a>>,
    pub sockets: &'a [SockRow],
    /// The socket the verdict is about (the live one, or the orphan), also
    /// listed in `sockets`: repeated here for scripts (`jq .holder.owners`).
    pub holder: Option<&'a SockRow>,
    /// Connections accepted by the holder and still open.
    pub connected_peers: usize,
    pub findings: &'a [Finding],
    pub verdict: &'a UnixVerdict,
    /// The command that fixes it (a stale file), or null.
    pub hint: Option<&'a str>,
}

/// What the table came from, for both renderings.
pub fn source_name(source: TableSource) -> &'static str {
    match source {
        TableSource::SockDiag => "sock_diag",
        TableSource::ProcNet => "/proc/net/unix",
    }
}
