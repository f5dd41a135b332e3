//! The verdict on a Unix socket path, as pure functions of what was
//! gathered: the socket table, the file at the path and the trial binds.
//! Nothing here touches the OS; the tests below build every case by hand.
//!
//! A path socket is bound to an inode, not to a name. The file at the path
//! is what a client's connect(2) reaches, so a listener counts as live only
//! when it is bound to that file's (inode, device); one that carries the
//! name but another inode is orphaned: its file was unlinked or replaced.

use crate::engine::diag::trial::BindAttempt;
use crate::engine::diag::{FileFacts, FileKind, State, TableSource, UnixEntry};
use crate::engine::transport::UnixAddr;

use super::super::model::Finding;
use super::model::{type_name, Binding, PathState, Role, SockRow, UnixBind, UnixVerdict};
use super::render::who;

/// What was asked about, and what is at the path.
pub struct Asked<'a> {
    pub name: &'a UnixAddr,
    /// The sun_path spellings that name the same file: as typed, made
    /// absolute, and with its directory's symbolic links resolved. (A
    /// socket bound by a relative path from another directory carries a
    /// name none of these match; it is still found by its file's inode
    /// while the file exists.)
    pub aliases: &'a [Vec<u8>],
    /// The file at the path; None when nothing is there or for an abstract
    /// name.
    pub file: Option<&'a FileFacts>,
}

impl Asked<'_> {
    fn socket_file(&self) -> Option<&FileFacts> {
        self.file.filter(|f| f.kind == FileKind::Socket)
    }
}

/// The sockets that concern the path, each with its role and its relation
/// to the file: those that carry the name, and those bound to the file's
/// inode under another spelling of it.
pub fn select(entries: &[UnixEntry], asked: &Asked) -> Vec<(UnixEntry, Role, Binding)> {
    let wanted = asked.name.sun_path();
    let mut out = Vec::new();
    for e in entries {
        let binding = match asked.name {
            UnixAddr::Abstract(_) => {
                if e.name.as_deref() != Some(&wanted[..]) {
                    continue;
                }
                Binding::Abstract
            }
            UnixAddr::Path(_) => {
                let named = e
                    .name
                    .as_ref()
                    .is_some_and(|n| asked.aliases.iter().any(|a| a == n));
                // unix_diag's inode is 32 bits wide. The device must match
                // too, unless the name does: a filesystem that reports
                // another st_dev than its superblock's (overlayfs) must
                // not turn a live listener into an orphan.
                let on_file = match (e.vfs, asked.socket_file()) {
                    (Some(v), Some(f)) => v.ino == f.ino as u32 && (v.dev == f.dev || named),
                    _ => false,
                };
                if on_file {
                    Binding::ThisFile
                } else if !named {
                    continue;
                } else if e.vfs.is_some() {
                    Binding::OtherInode
                } else {
                    Binding::Unknown
                }
            }
        };
        out.push((e.clone(), role(e), binding));
    }
    out
}

fn role(e: &UnixEntry) -> Role {
    if e.state == State::LISTEN {
        Role::Listener
    } else if e.inode == 0 {
        Role::Pending
    } else if e.kind.connection_oriented() && e.state == State::ESTABLISHED {
        Role::Connection
    } else {
        Role::Bound
    }
}

/// The findings, the verdict, which row the verdict is about, and how
/// many connections that socket has accepted and still holds.
pub struct Analysis {
    pub findings: Vec<Finding>,
    pub verdict: UnixVerdict,
    /// The command that fixes it, when there is one to run.
    pub hint: Option<String>,
    pub holder: Option<usize>,
    pub connected_peers: usize,
}

pub fn analyse(
    rows: &[SockRow],
    asked: &Asked,
    source: TableSource,
    binds: &[UnixBind],
) -> Analysis {
    let shown = asked.name.to_string();
    let file_is_socket = asked.socket_file().is_some();
    let is_orphan = |r: &SockRow| {
        r.holds_name()
            && (r.binding == Binding::OtherInode
                || (r.binding == Binding::Unknown && !file_is_socket))
    };
    let holds_this = |r: &SockRow| {
        r.holds_name()
            && match r.binding {
                Binding::ThisFile | Binding::Abstract => true,
                Binding::Unknown => file_is_socket,
                Binding::OtherInode => false,
            }
    };
    // A listener before a merely bound socket: it is what clients reach.
    let pick = |want: &dyn Fn(&SockRow) -> bool| {
        rows.iter()
            .position(|r| want(r) && r.role == Role::Listener)
            .or_else(|| rows.iter().position(want))
    };
    let live = pick(&holds_this);
    let orphan = pick(&is_orphan);

    let mut findings = Vec::new();
    for r in rows.iter().filter(|r| is_orphan(r)) {
        findings.push(Finding {
            kind: "orphaned",
            text: orphan_text(r, &shown, rows),
        });
    }
    if let Some(f) = asked.file {
        if let Some(t) = &f.link_target {
            findings.push(Finding {
                kind: "symlink",
                text: format!(
                    "{shown} is a symbolic link to {}: connect(2) follows it, bind(2) does not, so a listener must bind {} itself",
                    t.display(),
                    t.display()
                ),
            });
        }
    }
    let hidden = rows.iter().filter(|r| !r.owner_visible).count();
    if hidden > 0 {
        findings.push(Finding {
            kind: "owner-not-visible",
            text: format!("{hidden} socket(s) belong to processes whose descriptors this user cannot read; run as root to name them"),
        });
    }
    if source == TableSource::ProcNet {
        findings.push(Finding {
            kind: "fallback",
            text: "sock_diag was unavailable, so this comes from /proc/net/unix, which names each socket's address but not the file it is bound to, nor its backlog or uid: a listener on an unlinked or replaced file looks the same as a live one".to_string(),
        });
    }

    let stale = file_is_socket && live.is_none();
    let left = rows
        .iter()
        .filter(|r| r.role == Role::Connection && r.binding == Binding::ThisFile)
        .count();
    if stale && left > 0 {
        findings.push(Finding {
            kind: "connections-left",
            text: format!("{left} connected socket(s) still carry this file (accepted by an earlier listener, or a client bound to it); removing the file does not disturb them"),
        });
    }

    let (verdict, holder) = match (asked.name, asked.file, live) {
        (UnixAddr::Abstract(_), _, _) => (abstract_verdict(rows, live, &shown, binds), live),
        (UnixAddr::Path(_), None, _) => (absent_verdict(rows, orphan, &shown, binds), orphan),
        (UnixAddr::Path(_), Some(f), _) if f.kind != FileKind::Socket => {
            (not_a_socket(&shown, f), orphan)
        }
        (UnixAddr::Path(_), Some(_), Some(i)) => (live_verdict(rows, i, &shown), live),
        (UnixAddr::Path(_), Some(f), None) => (stale_verdict(&shown, f, source), orphan),
    };
    let connected_peers = holder.map_or(0, |i| connections_of(rows, &rows[i]));
    let hint = (verdict.state == PathState::Stale)
        .then(|| format!("sonda listen -U {} --unlink-stale", shell_word(&shown)));
    Analysis {
        findings,
        verdict,
        hint,
        holder,
        connected_peers,
    }
}

/// A path as one word of a shell command: as is when it is plain, in
/// single quotes otherwise (a quote inside becomes '\'').
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The first trial bind that failed, if any.
fn failed_bind(binds: &[UnixBind]) -> Option<&BindAttempt> {
    binds.iter().map(|b| &b.attempt).find(|a| !a.ok)
}

/// "listens on" or "has a datagram socket bound to".
fn holds_verb(r: &SockRow) -> String {
    match r.role {
        Role::Listener => "listens on".to_string(),
        _ => format!("has a {} socket bound to", r.kind),
    }
}

/// Accepted connections of a listener still open: those bound to its file
/// (or, without file facts, carrying its name and type).
fn connections_of(rows: &[SockRow], l: &SockRow) -> usize {
    rows.iter()
        .filter(|r| r.role == Role::Connection && r.entry.kind == l.entry.kind)
        .filter(|r| match l.entry.vfs {
            Some(v) => r.entry.vfs == Some(v),
            None => r.entry.name == l.entry.name,
        })
        .count()
}

/// Connections queued on a listener: from UNIX_DIAG_RQLEN, or counted
/// from /proc/net/unix's inode-0 entries of the same name.
fn pending_of(rows: &[SockRow], l: &SockRow) -> Option<u32> {
    l.pending.or_else(|| {
        let n = rows
            .iter()
            .filter(|r| r.role == Role::Pending && r.entry.name == l.entry.name)
            .count();
        u32::try_from(n).ok()
    })
}

/// "pid 812 (python3), uid 1000,": who holds it, as a sentence's subject.
fn subject(h: &SockRow) -> String {
    // An owner this user cannot see is already named by its uid.
    let uid = match h.uid {
        Some(u) if !h.owners.is_empty() => format!(", uid {u},"),
        _ => String::new(),
    };
    format!("{}{uid}", who(h))
}

/// " (stream): 2 pending connection(s) of a backlog of 128, 1 connected
/// peer(s)" for a listener; nothing for other sockets.
fn queue_text(rows: &[SockRow], h: &SockRow) -> String {
    if h.role != Role::Listener {
        return String::new();
    }
    let pending = pending_of(rows, h).unwrap_or(0);
    let backlog = h
        .backlog
        .map(|b| format!(" of a backlog of {b}"))
        .unwrap_or_default();
    format!(
        " ({}): {pending} pending connection(s){backlog}, {} connected peer(s)",
        h.kind,
        connections_of(rows, h)
    )
}

/// "pid 812 (python3), uid 1000, listens on PATH (stream): 2 pending
/// connection(s) of a backlog of 128, 1 connected peer(s)".
fn holder_text(rows: &[SockRow], h: &SockRow, shown: &str) -> String {
    format!(
        "{} {} {shown}{}",
        subject(h),
        holds_verb(h),
        queue_text(rows, h)
    )
}

fn orphan_text(r: &SockRow, shown: &str, rows: &[SockRow]) -> String {
    let file = match r.file_inode {
        Some(i) => format!("file inode {i}"),
        None => "a file".to_string(),
    };
    format!(
        "orphaned: {} {} the name {shown}, but bound to {file}, which is no longer the file at that path (unlinked or replaced): no client reaches it by path{}",
        subject(r),
        holds_verb(r),
        queue_text(rows, r)
    )
}

fn live_verdict(rows: &[SockRow], i: usize, shown: &str) -> UnixVerdict {
    let h = &rows[i];
    let caveat = if h.binding == Binding::Unknown {
        " (from /proc/net/unix, which cannot tell whether it is bound to this file or to an earlier one of the same name)"
    } else {
        ""
    };
    let text = match (h.role, h.entry.kind.connection_oriented()) {
        (Role::Listener, _) => format!(
            "live listener: {}{caveat}; a new listener cannot bind {shown} (EADDRINUSE): stop it, or use another path",
            holder_text(rows, h, shown)
        ),
        (_, true) => format!(
            "in use: {} but does not listen{caveat}: a client's connect is refused (ECONNREFUSED), yet the file is not stale; stop it, or use another path",
            holder_text(rows, h, shown)
        ),
        (_, false) => format!(
            "live: {}{caveat}; a new socket cannot bind {shown} (EADDRINUSE): stop it, or use another path",
            holder_text(rows, h, shown)
        ),
    };
    UnixVerdict {
        state: PathState::Live,
        bind_ok: false,
        text,
    }
}

fn stale_verdict(shown: &str, f: &FileFacts, source: TableSource) -> UnixVerdict {
    let nobody = match source {
        TableSource::SockDiag => format!(
            "no socket in this network namespace is bound to {shown} (inode {})",
            f.ino
        ),
        TableSource::ProcNet => {
            format!("no socket in this network namespace carries the name {shown}")
        }
    };
    UnixVerdict {
        state: PathState::Stale,
        bind_ok: false,
        text: format!(
            "stale socket file: {nobody}, so it is safe to remove. A client's connect is refused (ECONNREFUSED) and a new listener's bind fails (EADDRINUSE) while it is there: rm {}, or let the listener replace it with --unlink-stale",
            shell_word(shown)
        ),
    }
}

fn not_a_socket(shown: &str, f: &FileFacts) -> UnixVerdict {
    let what = match &f.link_target {
        Some(t) if f.kind == FileKind::DanglingSymlink => {
            format!("a dangling symbolic link (to {})", t.display())
        }
        _ => format!("a {}", f.kind.name()),
    };
    UnixVerdict {
        state: PathState::NotASocket,
        bind_ok: false,
        text: format!(
            "not a socket: {shown} is {what}; a listener cannot bind there (EADDRINUSE) and no client can connect to it. sonda removes only stale socket files (--unlink-stale), never this: move it, or use another path"
        ),
    }
}

/// Nothing at the path: free, unless a trial bind failed; an orphan that
/// still carries the name is the news.
fn absent_verdict(
    rows: &[SockRow],
    orphan: Option<usize>,
    shown: &str,
    binds: &[UnixBind],
) -> UnixVerdict {
    let orphan = orphan.and_then(|i| rows.get(i));
    if let Some(b) = failed_bind(binds) {
        return absent_but_unbindable(shown, b, orphan);
    }
    match orphan {
        Some(o) => UnixVerdict {
            state: PathState::Orphaned,
            bind_ok: true,
            text: format!(
                "orphaned: nothing is at {shown}, yet {} still {} that name on a file since unlinked: no client can reach it by path (connect gets ENOENT); restart it so it binds a new file, or stop it. A new listener can bind {shown} now",
                who(o),
                holds_verb(o)
            ),
        },
        None => UnixVerdict {
            state: PathState::Free,
            bind_ok: true,
            text: format!(
                "free: nothing is at {shown} and no socket is bound to that name; a listener can bind it"
            ),
        },
    }
}

fn absent_but_unbindable(shown: &str, b: &BindAttempt, orphan: Option<&SockRow>) -> UnixVerdict {
    let errno = b.errno.unwrap_or("EOTHER");
    let why = b.error.as_deref().unwrap_or_default();
    let dir = std::path::Path::new(shown)
        .parent()
        .map(|p| p.display().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| ".".to_string());
    let reason = match b.raw_errno {
        Some(libc::ENOENT) => format!("its directory {dir} does not exist"),
        Some(libc::ENOTDIR) => format!("a component of {dir} is not a directory"),
        Some(libc::EACCES) => format!("this user may not create files in {dir}"),
        Some(libc::EROFS) => format!("{dir} is on a read-only filesystem"),
        _ => why.to_string(),
    };
    let orphan = orphan
        .map(|r| {
            format!(
                "; and {} still {} that name on a file since unlinked",
                who(r),
                holds_verb(r)
            )
        })
        .unwrap_or_default();
    UnixVerdict {
        state: PathState::Free,
        bind_ok: false,
        text: format!(
            "nothing is at {shown}, but a bind would fail ({errno}: {why}): {reason}{orphan}"
        ),
    }
}

fn abstract_verdict(
    rows: &[SockRow],
    live: Option<usize>,
    shown: &str,
    binds: &[UnixBind],
) -> UnixVerdict {
    if let Some(i) = live {
        let h = &rows[i];
        let others: Vec<&str> = binds
            .iter()
            .filter(|b| b.attempt.ok)
            .map(|b| type_name(b.kind))
            .collect();
        let others = if others.is_empty() {
            String::new()
        } else {
            // Abstract names are per socket type: another type may still
            // bind the same name.
            format!(
                " (a {} socket may still bind it: abstract names are per socket type)",
                others.join(" or ")
            )
        };
        return UnixVerdict {
            state: PathState::Live,
            bind_ok: false,
            text: format!(
                "live: {}; a new {} socket cannot bind it (EADDRINUSE){others}: stop it, or use another name",
                holder_text(rows, h, shown),
                h.kind
            ),
        };
    }
    if let Some(b) = failed_bind(binds) {
        return UnixVerdict {
            state: PathState::Live,
            bind_ok: false,
            text: format!(
                "bind would fail ({}: {}), though no socket holding {shown} was listed (it may have just appeared)",
                b.errno.unwrap_or("EOTHER"),
                b.error.as_deref().unwrap_or_default()
            ),
        };
    }
    UnixVerdict {
        state: PathState::Free,
        bind_ok: true,
        text: format!("free: no socket holds the abstract name {shown}; a listener can bind it"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;
    use crate::engine::diag::trial::BindOpts;
    use crate::engine::diag::{Owner, UnixType, Vfs};
    use crate::error::Exit;

    const PATH: &str = "/run/app.sock";
    const FILE_INO: u64 = 5000;
    const FILE_DEV: u64 = 0xfe00;

    fn entry(
        kind: UnixType,
        state: State,
        inode: u64,
        name: &[u8],
        vfs: Option<(u32, u64)>,
    ) -> UnixEntry {
        UnixEntry {
            kind,
            state,
            inode,
            name: Some(name.to_vec()),
            vfs: vfs.map(|(ino, dev)| Vfs { ino, dev }),
            peer: None,
            rqlen: None,
            uid: Some(1000),
            pending_peers: None,
        }
    }

    /// A listener bound to the socket file at PATH, with 2 of 128 queued.
    fn listener(inode: u64) -> UnixEntry {
        UnixEntry {
            rqlen: Some((2, 128)),
            ..entry(
                UnixType::Stream,
                State::LISTEN,
                inode,
                PATH.as_bytes(),
                Some((FILE_INO as u32, FILE_DEV)),
            )
        }
    }

    /// A connection accepted by `listener`, whose client is inode `peer`.
    fn accepted(inode: u64, peer: u64) -> UnixEntry {
        UnixEntry {
            peer: Some(peer),
            ..entry(
                UnixType::Stream,
                State::ESTABLISHED,
                inode,
                PATH.as_bytes(),
                Some((FILE_INO as u32, FILE_DEV)),
            )
        }
    }

    fn socket_file() -> FileFacts {
        FileFacts {
            kind: FileKind::Socket,
            ino: FILE_INO,
            dev: FILE_DEV,
            uid: 1000,
            gid: 1000,
            mode: 0o755,
            link_target: None,
        }
    }

    fn path_name() -> UnixAddr {
        UnixAddr::Path(PATH.into())
    }

    fn aliases() -> Vec<Vec<u8>> {
        vec![PATH.as_bytes().to_vec()]
    }

    fn bind(kind: UnixType, errno: Option<i32>) -> UnixBind {
        UnixBind {
            kind,
            attempt: BindAttempt {
                address: PATH.to_string(),
                dual_stack: false,
                options: BindOpts::Plain,
                ok: errno.is_none(),
                errno: errno.map(crate::engine::diag::trial::errno_name),
                error: errno.map(|e| crate::error::describe(&std::io::Error::from_raw_os_error(e))),
                raw_errno: errno,
            },
        }
    }

    /// Selects, names owners (pid = inode / 10, "python3"; inodes in
    /// `hidden` have none visible) and analyses.
    fn run_with(
        entries: &[UnixEntry],
        name: &UnixAddr,
        file: Option<&FileFacts>,
        source: TableSource,
        binds: &[UnixBind],
        hidden: &[u64],
    ) -> (Vec<SockRow>, Analysis) {
        let aliases = match name {
            UnixAddr::Path(_) => aliases(),
            UnixAddr::Abstract(_) => vec![name.sun_path()],
        };
        let asked = Asked {
            name,
            aliases: &aliases,
            file,
        };
        let owners: HashMap<u64, Vec<Owner>> = entries
            .iter()
            .flat_map(|e| [Some(e.inode), e.peer])
            .flatten()
            .filter(|i| *i != 0 && !hidden.contains(i))
            .map(|i| {
                (
                    i,
                    vec![Owner {
                        pid: (i / 10) as u32,
                        command: "python3".to_string(),
                    }],
                )
            })
            .collect();
        let of = |i: Option<u64>| i.and_then(|i| owners.get(&i)).cloned().unwrap_or_default();
        let rows: Vec<SockRow> = select(entries, &asked)
            .into_iter()
            .map(|(e, role, binding)| {
                let (mine, peer) = (of(Some(e.inode)), of(e.peer));
                SockRow::new(e, role, binding, mine, peer)
            })
            .collect();
        let a = analyse(&rows, &asked, source, binds);
        (rows, a)
    }

    fn kinds(a: &Analysis) -> Vec<&'static str> {
        a.findings.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn free_path() {
        let others = [entry(
            UnixType::Stream,
            State::LISTEN,
            70,
            b"/run/other.sock",
            Some((9, FILE_DEV)),
        )];
        let (rows, a) = run_with(
            &others,
            &path_name(),
            None,
            TableSource::SockDiag,
            &[bind(UnixType::Stream, None)],
            &[],
        );
        assert!(rows.is_empty());
        assert_eq!(a.verdict.state, PathState::Free);
        assert_eq!(a.verdict.exit(), Exit::Success);
        assert_eq!(
            a.verdict.text,
            "free: nothing is at /run/app.sock and no socket is bound to that name; a listener can bind it"
        );
        assert_eq!(a.holder, None);
    }

    #[test]
    fn free_path_in_a_missing_directory_would_not_bind() {
        let (_, a) = run_with(
            &[],
            &path_name(),
            None,
            TableSource::SockDiag,
            &[bind(UnixType::Stream, Some(libc::ENOENT))],
            &[],
        );
        assert_eq!(a.verdict.state, PathState::Free);
        assert_eq!(a.verdict.exit(), Exit::AddrInUse);
        assert!(
            a.verdict.text.ends_with(
                "(ENOENT: no such file or directory): its directory /run does not exist"
            ),
            "{}",
            a.verdict.text
        );
        let (_, a) = run_with(
            &[],
            &path_name(),
            None,
            TableSource::SockDiag,
            &[bind(UnixType::Stream, Some(libc::EACCES))],
            &[],
        );
        assert!(
            a.verdict
                .text
                .ends_with("this user may not create files in /run"),
            "{}",
            a.verdict.text
        );
    }

    #[test]
    fn live_listener_with_queue_and_peers() {
        let entries = [listener(8120), accepted(8130, 9000), accepted(8140, 9010)];
        let f = socket_file();
        let (rows, a) = run_with(
            &entries,
            &path_name(),
            Some(&f),
            TableSource::SockDiag,
            &[],
            &[],
        );
        assert_eq!(rows.len(), 3);
        assert_eq!(a.verdict.state, PathState::Live);
        assert_eq!(a.verdict.exit(), Exit::AddrInUse);
        assert_eq!(
            a.verdict.text,
            "live listener: pid 812 (python3), uid 1000, listens on /run/app.sock (stream): 2 pending connection(s) of a backlog of 128, 2 connected peer(s); a new listener cannot bind /run/app.sock (EADDRINUSE): stop it, or use another path"
        );
        assert_eq!(a.holder, Some(0));
        assert_eq!(a.connected_peers, 2);
        assert_eq!(rows[1].peer_owners[0].pid, 900);
        assert!(a.findings.is_empty(), "{:?}", a.findings);
    }

    #[test]
    fn the_device_must_match_unless_the_name_does() {
        // Same inode number on another device, under another name: another
        // file altogether, so this one is stale.
        let elsewhere = entry(
            UnixType::Stream,
            State::LISTEN,
            8120,
            b"/mnt/app.sock",
            Some((FILE_INO as u32, 0x0801)),
        );
        let f = socket_file();
        let (rows, a) = run_with(
            &[elsewhere],
            &path_name(),
            Some(&f),
            TableSource::SockDiag,
            &[],
            &[],
        );
        assert!(rows.is_empty());
        assert_eq!(a.verdict.state, PathState::Stale);
        // Bound under another spelling (a relative path) to this very file.
        let relative = entry(
            UnixType::Stream,
            State::LISTEN,
            8120,
            b"app.sock",
            Some((FILE_INO as u32, FILE_DEV)),
        );
        let (rows, a) = run_with(
            &[relative],
            &path_name(),
            Some(&f),
            TableSource::SockDiag,
            &[],
            &[],
        );
        assert_eq!(rows[0].binding, Binding::ThisFile);
        assert_eq!(a.verdict.state, PathState::Live);
        // The name and inode match, the device does not (overlayfs): still
        // this file, not an orphan.
        let overlay = entry(
            UnixType::Stream,
            State::LISTEN,
            8120,
            PATH.as_bytes(),
            Some((FILE_INO as u32, 41)),
        );
        let (_, a) = run_with(
            &[overlay],
            &path_name(),
            Some(&f),
            TableSource::SockDiag,
            &[],
            &[],
        );
        assert_eq!(a.verdict.state, PathState::Live);
        // unix_diag cuts the inode to 32 bits; st_ino is compared the same.
        let big = FileFacts {
            ino: (1 << 32) | FILE_INO,
            ..socket_file()
        };
        let (_, a) = run_with(
            &[listener(8120)],
            &path_name(),
            Some(&big),
            TableSource::SockDiag,
            &[],
            &[],
        );
        assert_eq!(a.verdict.state, PathState::Live);
    }

    #[test]
    fn stale_socket_file() {
        let f = socket_file();
        let (_, a) = run_with(&[], &path_name(), Some(&f), TableSource::SockDiag, &[], &[]);
        assert_eq!(a.verdict.state, PathState::Stale);
        assert_eq!(a.verdict.exit(), Exit::AddrInUse);
        assert!(a.verdict.text.starts_with("stale socket file: no socket in this network namespace is bound to /run/app.sock (inode 5000)"), "{}", a.verdict.text);
        assert!(
            a.verdict
                .text
                .contains("(inode 5000), so it is safe to remove"),
            "{}",
            a.verdict.text
        );
        assert!(
            a.verdict
                .text
                .ends_with("rm /run/app.sock, or let the listener replace it with --unlink-stale"),
            "{}",
            a.verdict.text
        );
        assert_eq!(
            a.hint.as_deref(),
            Some("sonda listen -U /run/app.sock --unlink-stale")
        );
        // The listener is gone; a connection it accepted is still open.
        let (_, a) = run_with(
            &[accepted(8130, 9000)],
            &path_name(),
            Some(&f),
            TableSource::SockDiag,
            &[],
            &[],
        );
        assert_eq!(a.verdict.state, PathState::Stale);
        assert_eq!(kinds(&a), ["connections-left"]);
    }

    #[test]
    fn hints_quote_paths_for_the_shell() {
        assert_eq!(shell_word("/run/app.sock"), "/run/app.sock");
        assert_eq!(shell_word("/tmp/a b.sock"), "'/tmp/a b.sock'");
        assert_eq!(shell_word("/tmp/it's"), r"'/tmp/it'\''s'");
        let spaced = UnixAddr::Path("/tmp/a b".into());
        let f = socket_file();
        let (_, a) = run_with(&[], &spaced, Some(&f), TableSource::SockDiag, &[], &[]);
        assert_eq!(
            a.hint.as_deref(),
            Some("sonda listen -U '/tmp/a b' --unlink-stale")
        );
        // Only a stale file gets one.
        let (_, a) = run_with(
            &[listener(8120)],
            &path_name(),
            Some(&f),
            TableSource::SockDiag,
            &[],
            &[],
        );
        assert_eq!(a.hint, None);
    }

    #[test]
    fn orphaned_listener_with_nothing_at_the_path() {
        let gone = UnixEntry {
            vfs: Some(Vfs {
                ino: 4000,
                dev: FILE_DEV,
            }),
            ..listener(8120)
        };
        let (rows, a) = run_with(
            &[gone],
            &path_name(),
            None,
            TableSource::SockDiag,
            &[bind(UnixType::Stream, None)],
            &[],
        );
        assert_eq!(rows[0].binding, Binding::OtherInode);
        assert_eq!(a.verdict.state, PathState::Orphaned);
        // Nothing holds the path itself: a listener can bind it.
        assert_eq!(a.verdict.exit(), Exit::Success);
        assert!(a.verdict.text.starts_with("orphaned: nothing is at /run/app.sock, yet pid 812 (python3) still listens on that name"), "{}", a.verdict.text);
        assert!(
            a.verdict.text.contains("connect gets ENOENT"),
            "{}",
            a.verdict.text
        );
        assert_eq!(a.holder, Some(0));
        assert_eq!(kinds(&a), ["orphaned"]);
        assert!(
            a.findings[0].text.contains("bound to file inode 4000"),
            "{}",
            a.findings[0].text
        );
    }

    #[test]
    fn orphan_beside_a_live_listener() {
        let old = UnixEntry {
            vfs: Some(Vfs {
                ino: 4000,
                dev: FILE_DEV,
            }),
            ..listener(7770)
        };
        let old_conn = UnixEntry {
            vfs: Some(Vfs {
                ino: 4000,
                dev: FILE_DEV,
            }),
            ..accepted(7780, 9000)
        };
        let f = socket_file();
        let (rows, a) = run_with(
            &[old, old_conn, listener(8120)],
            &path_name(),
            Some(&f),
            TableSource::SockDiag,
            &[],
            &[],
        );
        assert_eq!(a.verdict.state, PathState::Live);
        let h = &rows[a.holder.unwrap_or(usize::MAX)];
        assert_eq!(h.inode, 8120);
        // The orphan's connection is not the live listener's.
        assert_eq!(a.connected_peers, 0);
        assert_eq!(kinds(&a), ["orphaned"]);
        assert!(a.findings[0].text.starts_with("orphaned: pid 777 (python3), uid 1000, listens on the name /run/app.sock, but bound to file inode 4000"), "{}", a.findings[0].text);
        assert!(
            a.findings[0].text.ends_with("1 connected peer(s)"),
            "{}",
            a.findings[0].text
        );
    }

    #[test]
    fn not_a_socket() {
        let regular = FileFacts {
            kind: FileKind::Regular,
            ..socket_file()
        };
        let (_, a) = run_with(
            &[],
            &path_name(),
            Some(&regular),
            TableSource::SockDiag,
            &[],
            &[],
        );
        assert_eq!(a.verdict.state, PathState::NotASocket);
        assert_eq!(a.verdict.exit(), Exit::AddrInUse);
        assert!(
            a.verdict
                .text
                .starts_with("not a socket: /run/app.sock is a regular file;"),
            "{}",
            a.verdict.text
        );
        let dangling = FileFacts {
            kind: FileKind::DanglingSymlink,
            link_target: Some(PathBuf::from("/gone")),
            ..socket_file()
        };
        let (_, a) = run_with(
            &[],
            &path_name(),
            Some(&dangling),
            TableSource::SockDiag,
            &[],
            &[],
        );
        assert!(
            a.verdict
                .text
                .contains("is a dangling symbolic link (to /gone)"),
            "{}",
            a.verdict.text
        );
        assert_eq!(kinds(&a), ["symlink"]);
        // A listener still carrying the name of what this file replaced.
        let (_, a) = run_with(
            &[listener(8120)],
            &path_name(),
            Some(&regular),
            TableSource::SockDiag,
            &[],
            &[],
        );
        assert_eq!(a.verdict.state, PathState::NotASocket);
        assert_eq!(kinds(&a), ["orphaned"]);
    }

    #[test]
    fn datagram_and_non_listening_stream_sockets() {
        let f = socket_file();
        let dgram = entry(
            UnixType::Dgram,
            State::CLOSE,
            8120,
            PATH.as_bytes(),
            Some((FILE_INO as u32, FILE_DEV)),
        );
        let (_, a) = run_with(
            &[dgram],
            &path_name(),
            Some(&f),
            TableSource::SockDiag,
            &[],
            &[],
        );
        assert_eq!(a.verdict.state, PathState::Live);
        assert_eq!(
            a.verdict.text,
            "live: pid 812 (python3), uid 1000, has a dgram socket bound to /run/app.sock; a new socket cannot bind /run/app.sock (EADDRINUSE): stop it, or use another path"
        );
        let bound = entry(
            UnixType::Stream,
            State::CLOSE,
            8120,
            PATH.as_bytes(),
            Some((FILE_INO as u32, FILE_DEV)),
        );
        let (_, a) = run_with(
            &[bound],
            &path_name(),
            Some(&f),
            TableSource::SockDiag,
            &[],
            &[],
        );
        assert_eq!(a.verdict.state, PathState::Live);
        assert!(
            a.verdict
                .text
                .contains("has a stream socket bound to /run/app.sock but does not listen"),
            "{}",
            a.verdict.text
        );
        assert!(
            a.verdict.text.contains("ECONNREFUSED"),
            "{}",
            a.verdict.text
        );
    }

    #[test]
    fn abstract_names_match_by_name() {
        let name = UnixAddr::Abstract(b"app".to_vec());
        let held = UnixEntry {
            rqlen: Some((0, 16)),
            ..entry(UnixType::Stream, State::LISTEN, 8120, b"\0app", None)
        };
        let near = entry(UnixType::Stream, State::LISTEN, 8200, b"\0app2", None);
        let path = entry(UnixType::Stream, State::LISTEN, 8300, b"app", None);
        let binds = [
            bind(UnixType::Stream, Some(libc::EADDRINUSE)),
            bind(UnixType::Dgram, None),
        ];
        let (rows, a) = run_with(
            &[near.clone(), held, path.clone()],
            &name,
            None,
            TableSource::SockDiag,
            &binds,
            &[],
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].binding, Binding::Abstract);
        assert_eq!(a.verdict.state, PathState::Live);
        assert_eq!(a.verdict.exit(), Exit::AddrInUse);
        assert!(a.verdict.text.starts_with("live: pid 812 (python3), uid 1000, listens on @app (stream): 0 pending connection(s) of a backlog of 16"), "{}", a.verdict.text);
        assert!(
            a.verdict.text.contains("a dgram socket may still bind it"),
            "{}",
            a.verdict.text
        );
        let ok = [bind(UnixType::Stream, None), bind(UnixType::Dgram, None)];
        let (_, a) = run_with(&[near, path], &name, None, TableSource::SockDiag, &ok, &[]);
        assert_eq!(a.verdict.state, PathState::Free);
        assert_eq!(a.verdict.exit(), Exit::Success);
        assert_eq!(
            a.verdict.text,
            "free: no socket holds the abstract name @app; a listener can bind it"
        );
    }

    #[test]
    fn proc_net_unix_fallback_says_what_it_cannot_tell() {
        let f = socket_file();
        let l = UnixEntry {
            vfs: None,
            rqlen: None,
            uid: None,
            ..listener(8120)
        };
        let queued = UnixEntry {
            vfs: None,
            uid: None,
            ..entry(
                UnixType::Stream,
                State::ESTABLISHED,
                0,
                PATH.as_bytes(),
                None,
            )
        };
        let entries = [l, queued.clone(), queued];
        let (rows, a) = run_with(
            &entries,
            &path_name(),
            Some(&f),
            TableSource::ProcNet,
            &[],
            &[],
        );
        assert!(rows.iter().all(|r| r.binding == Binding::Unknown));
        assert_eq!(rows.iter().filter(|r| r.role == Role::Pending).count(), 2);
        assert_eq!(a.verdict.state, PathState::Live);
        assert!(a.verdict.text.starts_with("live listener: pid 812 (python3) listens on /run/app.sock (stream): 2 pending connection(s), 0 connected peer(s) (from /proc/net/unix, which cannot tell"), "{}", a.verdict.text);
        assert_eq!(kinds(&a), ["fallback"]);
        // With nothing at the path, a listener on the name is an orphan.
        let (_, a) = run_with(
            &entries,
            &path_name(),
            None,
            TableSource::ProcNet,
            &[bind(UnixType::Stream, None)],
            &[],
        );
        assert_eq!(a.verdict.state, PathState::Orphaned);
        // No socket by that name: stale, in the words the source allows.
        let (_, a) = run_with(&[], &path_name(), Some(&f), TableSource::ProcNet, &[], &[]);
        assert!(a.verdict.text.starts_with("stale socket file: no socket in this network namespace carries the name /run/app.sock"), "{}", a.verdict.text);
    }

    #[test]
    fn hidden_owner_is_reported_not_guessed() {
        let f = socket_file();
        let (_, a) = run_with(
            &[listener(8120)],
            &path_name(),
            Some(&f),
            TableSource::SockDiag,
            &[],
            &[8120],
        );
        assert!(
            a.verdict.text.starts_with(
                "live listener: a process of uid 1000 (not visible; run as root) listens on"
            ),
            "{}",
            a.verdict.text
        );
        assert_eq!(kinds(&a), ["owner-not-visible"]);
    }

    #[test]
    fn a_symlink_is_followed_and_noted() {
        let f = FileFacts {
            link_target: Some(PathBuf::from("/var/run/real.sock")),
            ..socket_file()
        };
        let (_, a) = run_with(
            &[listener(8120)],
            &path_name(),
            Some(&f),
            TableSource::SockDiag,
            &[],
            &[],
        );
        assert_eq!(a.verdict.state, PathState::Live);
        assert_eq!(kinds(&a), ["symlink"]);
        assert!(
            a.findings[0]
                .text
                .contains("a listener must bind /var/run/real.sock itself"),
            "{}",
            a.findings[0].text
        );
    }
}
