//! The CPUs this process may run on, and pinning a worker to one of them.
//!
//! `--pin` names CPUs by number; one that is offline or outside the
//! process's affinity mask (a container's cpuset) would make
//! sched_setaffinity fail, and one past CPU_SETSIZE would overrun the set,
//! so every number is checked against this list before it is used.

/// The CPUs in this process's affinity mask (sched_getaffinity), in order.
pub fn available() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid, empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; set is a valid cpu_set_t of the
    // size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: cpu is below CPU_SETSIZE; set is initialised.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
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
    let Some(cpu) = cpu.filter(|&c| c < libc::CPU_SETSIZE as usize) else {
        return;
    };
    // SAFETY: a zeroed cpu_set_t is the empty set; cpu is below
    // CPU_SETSIZE, so CPU_SET stays in bounds.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The CPU the calling thread runs on now.
pub fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu takes no arguments.
    let c = unsafe { libc::sched_getcpu() };
    (c >= 0).then_some(c as usize)
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
