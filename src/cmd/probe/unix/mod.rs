//! `sonda probe -U PATH`: who holds a Unix socket path, or why nobody does.
//!
//! This file orchestrates: it stats the path, makes the trial binds that
//! are safe to make (an abstract name; a path with nothing there), reads
//! the Unix socket table, names the owners, and hands it all to
//! [`analysis`] (pure), then prints what [`render`] makes of it.

mod analysis;
mod model;
mod render;

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::engine::diag::trial::{trial, BindOpts, BindTarget};
use crate::engine::diag::{self, find_owners, stat_path, Owner, UnixType};
use crate::engine::transport::UnixAddr;
use crate::error::{describe, Error, Exit};

use self::analysis::Asked;
use self::model::{source_name, BindJson, FileJson, Report, Role, SockRow, UnixBind};

pub fn run(name: &UnixAddr, json: bool) -> anyhow::Result<Exit> {
    let file = match name.path() {
        Some(p) => stat_path(p).map_err(|e| Error::io(format!("stat {name}"), &e))?,
        None => None,
    };
    let binds = trials(name, file.is_none());
    let table = diag::unix_sockets().map_err(|e| {
        Error::io(
            "read the Unix socket table (sock_diag, then /proc/net/unix)",
            &e,
        )
    })?;
    if let Some(e) = &table.fallback_reason {
        crate::report::info(format!(
            "sock_diag for Unix sockets failed ({}); reading /proc/net/unix instead",
            describe(e)
        ));
    }
    let aliases = name_aliases(name);
    let asked = Asked {
        name,
        aliases: &aliases,
        file: file.as_ref(),
    };
    let rows = with_owners(analysis::select(&table.entries, &asked));
    let a = analysis::analyse(&rows, &asked, table.source, &binds);

    if json {
        let report = Report {
            path: name.to_string(),
            is_abstract: matches!(name, UnixAddr::Abstract(_)),
            source: source_name(table.source),
            file: file.as_ref().map(FileJson::from),
            binds: binds.iter().map(BindJson::from).collect(),
            sockets: &rows,
            holder: a.holder.and_then(|i| rows.get(i)),
            connected_peers: a.connected_peers,
            findings: &a.findings,
            verdict: &a.verdict,
            hint: a.hint.as_deref(),
        };
        let text = serde_json::to_string_pretty(&report)?;
        super::super::print_stdout(&format!("{text}\n"))?;
    } else {
        super::super::print_stdout(&render::report_text(
            name,
            file.as_ref(),
            &binds,
            &rows,
            table.source,
            &a,
        ))?;
    }
    Ok(a.verdict.exit())
}

/// The trial binds worth making. An abstract name: a stream and a datagram
/// socket (the kernel keeps one abstract namespace per socket type). A
/// path with nothing there: one stream socket, whose file is removed at
/// once; it proves the directory lets this user create the socket. An
/// existing path gets none: its bind fails whatever holds it, and proves
/// nothing.
fn trials(name: &UnixAddr, nothing_there: bool) -> Vec<UnixBind> {
    let kinds: &[UnixType] = match name {
        UnixAddr::Abstract(_) => &[UnixType::Stream, UnixType::Dgram],
        UnixAddr::Path(_) if nothing_there => &[UnixType::Stream],
        UnixAddr::Path(_) => &[],
    };
    kinds
        .iter()
        .map(|&kind| UnixBind {
            kind,
            attempt: trial(&BindTarget::Unix(name.clone(), kind), BindOpts::Plain),
        })
        .collect()
}

/// The spellings of sun_path that name this file: as typed, made absolute,
/// and with the directory's symbolic links resolved (a listener may have
/// bound `/var/run/x` where the user typed `/run/x`).
fn name_aliases(name: &UnixAddr) -> Vec<Vec<u8>> {
    let mut out = vec![name.sun_path()];
    let Some(path) = name.path() else {
        return out;
    };
    let mut add = |p: PathBuf| {
        let bytes = p.as_os_str().as_bytes().to_vec();
        if !out.contains(&bytes) {
            out.push(bytes);
        }
    };
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(cwd) => cwd.join(path),
            Err(_) => path.to_path_buf(),
        }
    };
    // components() drops the "." parts and doubled slashes bind(2) would
    // have kept in the name; ".." stays, since it may cross a symlink.
    let absolute: PathBuf = absolute.components().collect();
    add(absolute.clone());
    if let (Some(dir), Some(file)) = (absolute.parent(), absolute.file_name()) {
        if let Ok(real) = std::fs::canonicalize(dir) {
            add(real.join(file));
        }
    }
    let typed: PathBuf = Path::new(path).components().collect();
    add(typed);
    out
}

/// The rows, with the owners of each socket and of its peer found in one
/// walk of /proc; listeners first, then bound sockets, connections and
/// queued ones.
fn with_owners(selected: Vec<(diag::UnixEntry, Role, model::Binding)>) -> Vec<SockRow> {
    let mut inodes: HashSet<u64> = HashSet::new();
    for (e, _, _) in &selected {
        inodes.insert(e.inode);
        inodes.extend(e.peer);
        inodes.extend(e.pending_peers.iter().flatten().copied());
    }
    inodes.remove(&0);
    let owners = find_owners(&inodes);
    let of = |inode: Option<u64>| -> Vec<Owner> {
        inode
            .and_then(|i| owners.by_inode.get(&i))
            .cloned()
            .unwrap_or_default()
    };
    let mut rows: Vec<SockRow> = selected
        .into_iter()
        .map(|(e, role, binding)| {
            let mine = of(Some(e.inode));
            let peer = of(e.peer);
            SockRow::new(e, role, binding, mine, peer)
        })
        .collect();
    rows.sort_by_key(|r| {
        let role = match r.role {
            Role::Listener => 0,
            Role::Bound => 1,
            Role::Connection => 2,
            Role::Pending => 3,
        };
        (role, r.binding != model::Binding::ThisFile, r.inode)
    });
    rows
}
