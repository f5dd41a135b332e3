//! The CPUs this process may run on, and pinning a worker to one of them.
//!
//! `--pin` names CPUs by number; one that is offline or outside the
//! process's affinity mask (a container's cpuset) would make
//! sched_setaffinity fail, and one past CPU_SETSIZE would overrun the set,
//! so every number is checked against this list before it is used.

use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// The CPUs in this process's affinity mask (sched_getaffinity), in order.
pub fn available() -> Vec<usize> {
    let Ok(set) = sched_getaffinity(Pid::from_raw(0)) else {
        return Vec::new();
    };
    (0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect()
}

/// `0-3,6`: the list as /proc's `Cpus_allowed_list` writes it.
pub fn list(cpus: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end + 1 {
            i += 1;
            end = cpus[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(",")
    }
}

/// Pins the calling thread to `cpu` (sched_setaffinity); best effort, and
/// nothing for a CPU the set cannot hold (validation refused it earlier).
pub fn pin_to(cpu: Option<usize>) {
    let Some(cpu) = cpu else { return };
    let mut set = CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = sched_setaffinity(Pid::from_raw(0), &set);
    }
}

/// The CPU the calling thread runs on now.
pub fn current_cpu() -> Option<usize> {
    sched_getcpu().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_compress_runs() {
        assert_eq!(list(&[0, 1, 2, 3, 6]), "0-3,6");
        assert_eq!(list(&[1]), "1");
        assert_eq!(list(&[]), "none");
    }

    #[test]
    fn this_process_runs_somewhere() {
        let here = available();
        assert!(!here.is_empty());
        assert!(current_cpu().is_some_and(|c| here.contains(&c)));
    }
}
