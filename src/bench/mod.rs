//! `sonda bench`: throughput and latency between a client and a server that
//! agree on the test over a control connection (control.rs), move data over
//! their own sockets (tcp.rs, udp.rs, rr.rs), and report back (output.rs).
//! A local run is the same client and server in one process over loopback.

pub mod control;
pub mod output;
mod rr;
pub mod session;
mod tcp;
mod udp;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cli::{BenchMode, BenchProto};

/// Which way data flows, from the client's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Client to server.
    Up,
    /// Server to client (`--reverse`).
    Down,
    /// Both at once (`--bidir`).
    Both,
}

/// Everything the client and the server agree on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Params {
    pub proto: BenchProto,
    pub mode: BenchMode,
    pub direction: Direction,
    pub size: usize,
    pub rate_bps: Option<u64>,
    pub streams: u16,
    pub duration_ms: u64,
    pub bytes: Option<u64>,
    pub omit_ms: u64,
    pub interval_ms: Option<u64>,
    pub gso: bool,
    pub sndbuf: Option<usize>,
    pub rcvbuf: Option<usize>,
    /// SO_RCVLOWAT for TCP stream receivers.
    #[serde(default)]
    pub rcvlowat: Option<usize>,
    /// CPUs for the client's and the server's workers.
    pub pin: Option<(usize, usize)>,
}

impl Params {
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.duration_ms)
    }
    pub fn omit(&self) -> Duration {
        Duration::from_millis(self.omit_ms)
    }
    /// The whole test: warm-up then measurement.
    pub fn total(&self) -> Duration {
        self.omit() + self.duration()
    }
    pub fn sends_up(&self) -> bool {
        self.mode == BenchMode::Stream && self.direction != Direction::Down
    }
    pub fn sends_down(&self) -> bool {
        self.mode == BenchMode::Stream && self.direction != Direction::Up
    }
}

/// What one side measured; sent to the peer in the control exchange.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SideReport {
    /// Totals of this side's sending workers.
    pub sent: Flow,
    /// Totals of this side's receiving workers.
    pub received: Flow,
    /// Per-interval figures of what this side received.
    pub intervals: Vec<Interval>,
    /// rr latency, client side only.
    pub latency: Option<output::Latency>,
    /// The CPU the last worker ran on, for rr placement.
    pub cpu: Option<usize>,
}

/// Totals of one direction on one side.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Flow {
    /// Bytes in the measured window (after --omit).
    pub bytes: u64,
    /// Bytes over the whole test.
    pub total_bytes: u64,
    /// Seconds of the measured window.
    pub seconds: f64,
    pub calls: u64,
    pub datagrams: u64,
    pub reordered: u64,
    /// CPU seconds (user + system) of the workers.
    pub cpu_seconds: f64,
    /// Wall seconds the workers ran.
    pub wall_seconds: f64,
    pub streams: u16,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Interval {
    pub start: f64,
    pub end: f64,
    pub bytes: u64,
    pub bits_per_second: f64,
}

/// Live counters of one direction on one side, shared by its workers.
#[derive(Debug)]
pub struct Meter {
    pub bytes: AtomicU64,
    pub calls: AtomicU64,
    pub datagrams: AtomicU64,
    pub reordered: AtomicU64,
    /// Nanoseconds since `epoch` of the last byte moved.
    pub last_ns: AtomicU64,
    pub cpu_ns: AtomicU64,
    pub wall_ns: AtomicU64,
    pub epoch: Instant,
}

impl Meter {
    pub fn new(epoch: Instant) -> Meter {
        Meter {
            bytes: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            datagrams: AtomicU64::new(0),
            reordered: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
            cpu_ns: AtomicU64::new(0),
            wall_ns: AtomicU64::new(0),
            epoch,
        }
    }

    /// One call that moved `n` bytes (and `datagrams` datagrams).
    #[inline]
    pub fn add(&self, n: usize, datagrams: u64) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        if datagrams > 0 {
            self.datagrams.fetch_add(datagrams, Ordering::Relaxed);
        }
        self.last_ns
            .store(self.epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Adds a worker's CPU and wall time when it ends.
    pub fn add_worker_time(&self, usage: &ThreadUsage) {
        self.cpu_ns.fetch_add(usage.cpu_ns(), Ordering::Relaxed);
        self.wall_ns
            .fetch_add(usage.started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// CPU time of the calling thread (getrusage RUSAGE_THREAD), from creation.
pub struct ThreadUsage {
    start_cpu_ns: u64,
    started: Instant,
}

fn thread_cpu_ns() -> u64 {
    // SAFETY: getrusage writes one rusage struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_THREAD on the calling thread; ru is valid.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } != 0 {
        return 0;
    }
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

impl ThreadUsage {
    pub fn start() -> ThreadUsage {
        ThreadUsage {
            start_cpu_ns: thread_cpu_ns(),
            started: Instant::now(),
        }
    }
    pub fn cpu_ns(&self) -> u64 {
        thread_cpu_ns().saturating_sub(self.start_cpu_ns)
    }
}

/// Pins the calling thread to `cpu` (sched_setaffinity); best effort.
pub fn pin_to(cpu: Option<usize>) {
    let Some(cpu) = cpu else { return };
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET stays in bounds
    // because parse_pin caps cpu below 1024.
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

/// The smallest UDP stream datagram: its sequence header.
pub fn udp_header() -> usize {
    udp::HEADER
}
