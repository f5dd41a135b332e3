//! Which process holds a socket: the socket's inode matched against the
//! `socket:[INODE]` links under /proc/*/fd, as `ss -p`, lsof and fuser do.
//! Another user's descriptors are hidden unless we are root; that is
//! reported, not guessed.

use std::collections::{HashMap, HashSet};
use std::fs;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub command: String,
}

#[derive(Debug, Default)]
pub struct Owners {
    /// inode -> every process holding it (a socket can be shared by fork).
    /// A socket with an inode but no entry belongs to a process whose
    /// descriptors this user cannot read.
    pub by_inode: HashMap<u64, Vec<Owner>>,
}

/// Every process holding one of `inodes` (all of them: a socket shared
/// across fork has several owners).
pub fn find_owners(inodes: &HashSet<u64>) -> Owners {
    let mut owners = Owners::default();
    if inodes.is_empty() {
        return owners;
    }
    let Ok(procs) = fs::read_dir("/proc") else {
        return owners;
    };
    for entry in procs.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // Another user's process: its descriptors are hidden unless root.
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let mut command = None;
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            if !inodes.contains(&inode) {
                continue;
            }
            let command = command
                .get_or_insert_with(|| {
                    fs::read_to_string(entry.path().join("comm"))
                        .map(|c| c.trim_end().to_string())
                        .unwrap_or_else(|_| "?".to_string())
                })
                .clone();
            let list = owners.by_inode.entry(inode).or_default();
            if !list.iter().any(|o| o.pid == pid) {
                list.push(Owner { pid, command });
            }
        }
    }
    owners
}
