//! `sonda bench`: throughput and latency between a client and a server that
//! agree on the test over a control connection (control.rs), move data over
//! their own sockets (stream.rs for TCP and Unix streams, udp.rs, rr.rs), and
//! report back (output.rs).
//! A local run is the same client and server in one process over loopback.

pub mod control;
mod cpus;
pub mod output;
pub mod params;
mod rr;
pub mod sampler;
pub mod session;
mod stream;
mod udp;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeVal;
use serde::{Deserialize, Serialize};

pub use cpus::{current_cpu, pin_to};
pub use params::{Direction, Mode, Params, Proto, Side};

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

/// User plus system time of the calling thread; 0 if getrusage fails
/// (it cannot for RUSAGE_THREAD on Linux, but a figure is no reason to stop).
fn thread_cpu_ns() -> u64 {
    let Ok(ru) = getrusage(UsageWho::RUSAGE_THREAD) else {
        return 0;
    };
    let tv = |t: TimeVal| t.tv_sec() as u64 * 1_000_000_000 + t.tv_usec() as u64 * 1000;
    tv(ru.user_time()) + tv(ru.system_time())
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
