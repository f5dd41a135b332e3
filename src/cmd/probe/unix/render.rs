//! The `probe -U` report as text: the file, the trial binds, the sockets,
//! the notes and the verdict.

use std::fmt::Write as _;

use crate::engine::diag::{FileFacts, TableSource};
use crate::engine::transport::UnixAddr;

use super::super::model::OwnerJson;
use super::analysis::Analysis;
use super::model::{device_text, source_name, type_name, Binding, Role, SockRow, UnixBind};

fn owners_text(owners: &[OwnerJson]) -> String {
    owners
        .iter()
        .map(|o| format!("pid {} ({})", o.pid, o.command))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Who holds a socket, as the subject of a sentence.
pub fn who(r: &SockRow) -> String {
    match (r.owners.is_empty(), r.uid) {
        (false, _) => owners_text(&r.owners),
        (true, _) if r.inode == 0 => "a connection not yet accepted".to_string(),
        (true, Some(uid)) => format!("a process of uid {uid} (not visible; run as root)"),
        (true, None) => "a process this user cannot see (run as root)".to_string(),
    }
}

/// The first line: what is at the path.
fn file_line(name: &UnixAddr, file: Option<&FileFacts>) -> String {
    match (name, file) {
        (UnixAddr::Abstract(_), _) => format!(
            "abstract name {name}: no file (Linux's abstract namespace, this network namespace only)\n"
        ),
        (UnixAddr::Path(_), None) => format!("path {name}: nothing there\n"),
        (UnixAddr::Path(_), Some(f)) => {
            let link = f
                .link_target
                .as_ref()
                .map(|t| format!(" (a symbolic link to {})", t.display()))
                .unwrap_or_default();
            format!(
                "path {name}{link}: {}, inode {} on device {}, uid {} gid {}, mode {:04o}\n",
                f.kind.name(),
                f.ino,
                device_text(f.dev),
                f.uid,
                f.gid,
                f.mode
            )
        }
    }
}

fn binding_text(r: &SockRow) -> String {
    match r.binding {
        Binding::ThisFile => "this file".to_string(),
        Binding::OtherInode => match r.file_inode {
            Some(i) => format!("inode {i} (gone)"),
            None => "another inode".to_string(),
        },
        Binding::Unknown => "?".to_string(),
        Binding::Abstract => "-".to_string(),
    }
}

/// The table: a header and a line per socket, columns sized to fit; the
/// NAME column only when some socket spells the name differently.
fn table(rows: &[SockRow], name: &UnixAddr, source: TableSource) -> String {
    let asked = name.to_string();
    let what = match name {
        UnixAddr::Abstract(_) => format!("sockets holding {asked}"),
        UnixAddr::Path(_) => format!("sockets named {asked} or bound to its file"),
    };
    let source = source_name(source);
    if rows.is_empty() {
        return format!("{what} (from {source}): none\n");
    }
    let with_name = rows
        .iter()
        .any(|r| r.name.as_deref() != Some(asked.as_str()));
    let cells = |r: &SockRow| -> Vec<String> {
        let queue = match (r.role, r.pending, r.backlog) {
            (Role::Listener, Some(p), Some(b)) => format!("{p}/{b}"),
            (Role::Listener, _, _) => "?".to_string(),
            _ => "-".to_string(),
        };
        let peer = match r.peer {
            Some(p) if r.peer_owners.is_empty() => p.to_string(),
            Some(p) => format!("{p} {}", owners_text(&r.peer_owners)),
            None => "-".to_string(),
        };
        let role = match r.role {
            Role::Listener => "listener",
            Role::Bound => "bound",
            Role::Connection => "connection",
            Role::Pending => "pending",
        };
        let mut c = vec![
            type_name(r.entry.kind).to_string(),
            r.state.to_string(),
            role.to_string(),
            r.inode.to_string(),
            binding_text(r),
            queue,
            peer,
        ];
        if with_name {
            c.push(r.name.clone().unwrap_or_else(|| "-".to_string()));
        }
        c
    };
    let mut header = vec!["TYPE", "STATE", "ROLE", "INODE", "FILE", "QUEUE", "PEER"];
    if with_name {
        header.push("NAME");
    }
    let all: Vec<Vec<String>> = rows.iter().map(cells).collect();
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for c in &all {
        for (w, cell) in width.iter_mut().zip(c) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = format!("{what} (from {source}):\n  ");
    for (h, w) in header.iter().zip(&width) {
        let _ = write!(out, "{h:<w$}  ");
    }
    out.push_str("OWNER\n");
    for (r, c) in rows.iter().zip(&all) {
        out.push_str("  ");
        for (cell, w) in c.iter().zip(&width) {
            let _ = write!(out, "{cell:<w$}  ");
        }
        let owner = if r.owners.is_empty() {
            who(r)
        } else {
            owners_text(&r.owners)
        };
        out.push_str(&owner);
        out.push('\n');
    }
    out
}

/// Everything the facts say, for people. `bind attempts` appears only when
/// a trial bind was made (an abstract name, or a path with nothing there).
pub fn report_text(
    name: &UnixAddr,
    file: Option<&FileFacts>,
    binds: &[UnixBind],
    rows: &[SockRow],
    source: TableSource,
    analysis: &Analysis,
) -> String {
    let mut out = file_line(name, file);
    if !binds.is_empty() {
        out.push_str("bind attempts (throw-away sockets; a file made is removed at once):\n");
        for b in binds {
            let result = match (&b.attempt.errno, &b.attempt.error) {
                (Some(n), Some(e)) => format!("{n} ({e})"),
                _ => "ok".to_string(),
            };
            let _ = writeln!(out, "  {:<10} {result}", type_name(b.kind));
        }
    }
    out.push_str(&table(rows, name, source));
    if !analysis.findings.is_empty() {
        out.push_str("notes:\n");
        for f in &analysis.findings {
            let _ = writeln!(out, "  - {}", f.text);
        }
    }
    let _ = writeln!(out, "verdict: {}", analysis.verdict.text);
    if let Some(h) = &analysis.hint {
        let _ = writeln!(out, "hint: {h}");
    }
    out
}
