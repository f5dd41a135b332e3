//! The clock of one side's test: the snapshot at the end of --omit, the
//! --interval figures of what this side receives, the live view, and the
//! figures so far for a test that is interrupted.
//!
//! Interval boundaries are exact: at omit + k * interval from the start of
//! the test, the last one at the test's end (a partial interval is kept).
//! The sampler sleeps until each boundary rather than ticking, so a 250 ms
//! interval is 0.25 s, not whatever a fixed tick rounds it to; the counts
//! are read when the boundary is reached, off the workers' hot path.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::output::Latency;
use super::params::MAX_INTERVALS;
use super::rr::RrShared;
use super::{Flow, Interval, Meter, SideReport};

/// What the live view is told.
#[derive(Clone, Copy, Debug)]
pub enum Beat {
    /// A refresh of the progress bar.
    Tick,
    /// --omit is over: counting starts now.
    Measure,
    /// An interval ended; offsets from the end of --omit.
    Interval { start: Duration, end: Duration },
}

/// Live view of the test for a progress bar or interval lines (client):
/// (sent, received, time since the test started, why it is called).
pub type Live = Box<dyn Fn(&Meter, &Meter, Duration, Beat) + Send>;

/// Bytes and time at the end of --omit; the receiver's window starts there.
#[derive(Clone, Copy, Default)]
pub struct Snapshot {
    pub bytes: u64,
    pub ns: u64,
}

/// The receiver's figures after --omit, from its meter and the snapshot.
/// The window ends with the last byte received, and not before `until`
/// (time since the start of the test) when the test has a set length: a
/// sender held back by --rate still took the whole test to send what it
/// did.
pub fn recv_flow(m: &Meter, at: Snapshot, streams: u16, until: Option<Duration>) -> Flow {
    use std::sync::atomic::Ordering::Relaxed;
    let total = m.bytes();
    let until = until.map_or(0, |d| d.as_nanos().min(u64::MAX as u128) as u64);
    let last = m.last_ns.load(Relaxed).max(until);
    Flow {
        bytes: total.saturating_sub(at.bytes),
        total_bytes: total,
        seconds: last.saturating_sub(at.ns) as f64 / 1e9,
        calls: m.calls.load(Relaxed),
        datagrams: m.datagrams.load(Relaxed),
        reordered: m.reordered.load(Relaxed),
        cpu_seconds: m.cpu_ns.load(Relaxed) as f64 / 1e9,
        wall_seconds: m.wall_ns.load(Relaxed) as f64 / 1e9 / streams.max(1) as f64,
        streams,
    }
}

/// When the test's intervals fall.
#[derive(Clone, Copy)]
pub struct Clock {
    pub epoch: Instant,
    pub measure_from: Instant,
    /// The measured time, when the test has a fixed length (not --bytes).
    pub duration: Option<Duration>,
    pub interval: Option<Duration>,
    /// Refresh period of the live view, if there is one.
    pub tick: Option<Duration>,
}

/// What the sampler has recorded, shared with a report of an interrupt.
#[derive(Default)]
struct Sampled {
    snapshot: Option<Snapshot>,
    intervals: Vec<Interval>,
    /// The interval being counted: its start (from the end of --omit) and
    /// the receiver's bytes then.
    open: (Duration, u64),
    /// The last boundary, at the test's end, is behind us.
    done: bool,
}

fn interval(start: Duration, end: Duration, bytes: u64) -> Interval {
    let secs = end.saturating_sub(start).as_secs_f64();
    Interval {
        start: start.as_secs_f64(),
        end: end.as_secs_f64(),
        bytes,
        bits_per_second: if secs > 0.0 {
            bytes as f64 * 8.0 / secs
        } else {
            0.0
        },
    }
}

struct Work {
    recv: Arc<Meter>,
    send: Arc<Meter>,
    clock: Clock,
    live: Option<Live>,
    sampled: Arc<Mutex<Sampled>>,
}

impl Work {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sampled> {
        self.sampled.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn beat(&self, now: Instant, beat: Beat) {
        if let Some(live) = &self.live {
            live(
                &self.send,
                &self.recv,
                now.duration_since(self.clock.epoch),
                beat,
            );
        }
    }

    /// The next boundary after `open`, capped at the test's end.
    fn next_boundary(&self, s: &Sampled) -> Option<Duration> {
        let d = self.clock.interval?;
        if s.snapshot.is_none() || s.done || s.intervals.len() as u64 >= MAX_INTERVALS {
            return None;
        }
        let next = s.open.0.checked_add(d)?;
        Some(match self.clock.duration {
            Some(total) => next.min(total),
            None => next,
        })
    }

    /// Takes the snapshot and closes every interval whose boundary `now`
    /// has passed.
    fn catch_up(&self, now: Instant) {
        let c = self.clock;
        let mut s = self.lock();
        if s.snapshot.is_none() && now >= c.measure_from {
            // Without --omit the window is the whole test: what the workers
            // moved before this thread first ran belongs to it.
            let at = if c.measure_from <= c.epoch {
                Snapshot::default()
            } else {
                Snapshot {
                    bytes: self.recv.bytes(),
                    ns: now.duration_since(c.epoch).as_nanos() as u64,
                }
            };
            let bytes = at.bytes;
            s.snapshot = Some(at);
            s.open = (Duration::ZERO, bytes);
            drop(s);
            self.beat(now, Beat::Measure);
            s = self.lock();
        }
        while let Some(at) = self.next_boundary(&s) {
            if now < c.measure_from + at {
                break;
            }
            let bytes = self.recv.bytes();
            let start = s.open.0;
            let iv = interval(start, at, bytes.saturating_sub(s.open.1));
            s.intervals.push(iv);
            s.open = (at, bytes);
            s.done = c.duration == Some(at);
            drop(s);
            self.beat(now, Beat::Interval { start, end: at });
            s = self.lock();
        }
    }

    /// The test is over: a test of fixed length closes its intervals at its
    /// scheduled end (what arrives after it, in flight at the end, belongs
    /// to the last one); a --bytes test closes a partial one now.
    fn finish(&self) {
        let now = Instant::now();
        let end = self.clock.duration.map(|d| self.clock.measure_from + d);
        self.catch_up(end.map_or(now, |e| e.max(now)));
        let mut s = self.lock();
        if s.snapshot.is_none() || self.clock.interval.is_none() {
            return;
        }
        let bytes = self.recv.bytes();
        if s.done {
            let late = bytes.saturating_sub(s.open.1);
            s.open.1 = bytes;
            if let Some(last) = s.intervals.last_mut() {
                last.bytes += late;
                let secs = last.end - last.start;
                if secs > 0.0 {
                    last.bits_per_second = last.bytes as f64 * 8.0 / secs;
                }
            }
            return;
        }
        let at = now.saturating_duration_since(self.clock.measure_from);
        if at > s.open.0 && (s.intervals.len() as u64) < MAX_INTERVALS {
            let start = s.open.0;
            let iv = interval(start, at, bytes.saturating_sub(s.open.1));
            s.intervals.push(iv);
            s.open = (at, bytes);
            drop(s);
            self.beat(now, Beat::Interval { start, end: at });
        }
    }

    fn run(self, stop: mpsc::Receiver<()>) {
        let mut next_tick = self.clock.tick.map(|t| self.clock.epoch + t);
        loop {
            let wake = {
                let s = self.lock();
                let snap = s.snapshot.is_none().then_some(self.clock.measure_from);
                let boundary = self
                    .next_boundary(&s)
                    .map(|at| self.clock.measure_from + at);
                [snap, boundary, next_tick].into_iter().flatten().min()
            };
            let stopped = match wake {
                Some(at) => {
                    let wait = at.saturating_duration_since(Instant::now());
                    !matches!(stop.recv_timeout(wait), Err(RecvTimeoutError::Timeout))
                }
                None => {
                    let _ = stop.recv();
                    true
                }
            };
            if stopped {
                break;
            }
            let now = Instant::now();
            self.catch_up(now);
            if let (Some(at), Some(t)) = (next_tick, self.clock.tick) {
                if now >= at {
                    self.beat(now, Beat::Tick);
                    let mut next = at + t;
                    while next <= now {
                        next += t;
                    }
                    next_tick = Some(next);
                }
            }
        }
        self.finish();
    }
}

/// A thread that keeps one side's clock (see the module doc).
pub struct Sampler {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
    sampled: Arc<Mutex<Sampled>>,
    intervals: bool,
}

impl Sampler {
    pub fn start(recv: Arc<Meter>, send: Arc<Meter>, clock: Clock, live: Option<Live>) -> Sampler {
        let sampled = Arc::new(Mutex::new(Sampled::default()));
        let (tx, rx) = mpsc::channel();
        let work = Work {
            recv,
            send,
            clock,
            live,
            sampled: sampled.clone(),
        };
        let handle = thread::Builder::new()
            .name("bench-sampler".into())
            .spawn(move || work.run(rx))
            .ok();
        Sampler {
            stop: Some(tx),
            handle,
            sampled,
            intervals: clock.interval.is_some(),
        }
    }

    /// Ends the clock: the snapshot and every interval, the last included.
    pub fn stop(mut self) -> (Snapshot, Vec<Interval>) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let mut s = self.sampled.lock().unwrap_or_else(|e| e.into_inner());
        (
            s.snapshot.unwrap_or_default(),
            std::mem::take(&mut s.intervals),
        )
    }
}

/// What one side has counted so far, for the report of an interrupted
/// test; empty until the side's test starts.
#[derive(Default)]
pub struct Tally(Mutex<Option<Counted>>);

struct Counted {
    send: Arc<Meter>,
    recv: Arc<Meter>,
    sampled: Arc<Mutex<Sampled>>,
    measure_from: Instant,
    streams: (u16, u16),
    intervals: bool,
    /// The client's rr streams (none on a server or in stream mode).
    rr: Vec<RrShared>,
}

impl Tally {
    pub fn attach(
        &self,
        sampler: &Sampler,
        send: Arc<Meter>,
        recv: Arc<Meter>,
        measure_from: Instant,
        streams: (u16, u16),
        rr: Vec<RrShared>,
    ) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(Counted {
            send,
            recv,
            sampled: sampler.sampled.clone(),
            measure_from,
            streams,
            intervals: sampler.intervals,
            rr,
        });
    }

    /// This side's figures up to now (workers still running: their CPU
    /// time is not in yet), the open interval closed at this moment, and
    /// the rr transactions finished so far, if any.
    pub fn so_far(&self) -> Option<SideReport> {
        use std::sync::atomic::Ordering::Relaxed;
        let guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let c = guard.as_ref()?;
        let s = c.sampled.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let ran = now.duration_since(c.send.epoch).as_secs_f64();
        let sent_bytes = c.send.bytes();
        let sent = Flow {
            bytes: sent_bytes,
            total_bytes: sent_bytes,
            seconds: ran,
            calls: c.send.calls.load(Relaxed),
            datagrams: c.send.datagrams.load(Relaxed),
            reordered: 0,
            cpu_seconds: c.send.cpu_ns.load(Relaxed) as f64 / 1e9,
            wall_seconds: ran,
            streams: c.streams.0,
        };
        let received = match s.snapshot {
            Some(at) => recv_flow(
                &c.recv,
                at,
                c.streams.1,
                Some(now.saturating_duration_since(c.send.epoch)),
            ),
            None => Flow {
                streams: c.streams.1,
                ..Flow::default()
            },
        };
        let mut intervals = s.intervals.clone();
        let at = now.saturating_duration_since(c.measure_from);
        if c.intervals && s.snapshot.is_some() && !s.done && at > s.open.0 {
            let bytes = c.recv.bytes().saturating_sub(s.open.1);
            intervals.push(interval(s.open.0, at, bytes));
        }
        let latency = (!c.rr.is_empty())
            .then(|| Latency::from_parts(&c.rr, at))
            .filter(|l| l.transactions > 0);
        Some(SideReport {
            sent,
            received,
            intervals,
            latency,
            cpu: None,
        })
    }
}
