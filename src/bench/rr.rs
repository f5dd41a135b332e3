//! Request/response workers: the client sends `size` bytes and waits for
//! `size` bytes back, one transaction at a time; the server echoes.

use std::io::{self, Read, Write};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use socket2::Socket;

use super::{Meter, ThreadUsage};

/// Latencies are recorded in nanoseconds, from 1 ns to 60 s, 3 significant
/// digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("constant histogram bounds are valid")
}

/// What one rr client stream measured.
pub struct RrClient {
    pub hist: Histogram<u64>,
    pub transactions: u64,
    pub lost: u64,
}

/// One rr client stream's figures, shared between its worker and whoever
/// reports them: the end of the test, or an interrupt while the worker is
/// still running (or stuck in a read). The worker locks it only to record
/// a finished transaction, never across a call that can block, so the
/// report never waits on the network.
#[derive(Clone)]
pub struct RrShared(Arc<Mutex<RrClient>>);

impl Default for RrShared {
    fn default() -> RrShared {
        RrShared(Arc::new(Mutex::new(RrClient {
            hist: new_histogram(),
            transactions: 0,
            lost: 0,
        })))
    }
}

impl RrShared {
    pub fn lock(&self) -> MutexGuard<'_, RrClient> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, took: Duration) {
        let mut c = self.lock();
        let _ = c.hist.record(took.as_nanos().max(1) as u64);
        c.transactions += 1;
    }
}

/// A byte stream (TCP or Unix): write, read back, record; after `omit`
/// until `deadline`.
pub fn stream_client(
    mut sock: &Socket,
    size: usize,
    measure_from: Instant,
    deadline: Instant,
    meter: &Meter,
    out: &RrShared,
) -> io::Result<()> {
    let usage = ThreadUsage::start();
    let req = vec![0x5a_u8; size];
    let mut resp = vec![0u8; size];
    let result = loop {
        let t0 = Instant::now();
        if t0 >= deadline {
            break Ok(());
        }
        if let Err(e) = sock
            .write_all(&req)
            .and_then(|()| sock.read_exact(&mut resp))
        {
            break Err(e);
        }
        let took = t0.elapsed();
        meter.add(size, 1);
        if t0 >= measure_from {
            out.record(took);
        }
    };
    let _ = sock.shutdown(std::net::Shutdown::Write);
    meter.add_worker_time(&usage);
    result
}

/// A byte stream (TCP or Unix): echo `size`-byte requests until the
/// client's EOF.
pub fn stream_server(mut sock: &Socket, size: usize, meter: &Meter) -> io::Result<()> {
    let usage = ThreadUsage::start();
    let mut buf = vec![0u8; size];
    let result = loop {
        match sock.read_exact(&mut buf) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break Ok(()),
            Err(e) => break Err(e),
        }
        if let Err(e) = sock.write_all(&buf) {
            break Err(e);
        }
        meter.add(size, 1);
    };
    meter.add_worker_time(&usage);
    result
}

/// UDP: send, wait up to `wait` for the reply (counted lost after that).
/// Requests of 8 bytes or more carry a sequence number, so a late reply to
/// an earlier request is not taken for the current one.
pub fn udp_client(
    sock: &UdpSocket,
    size: usize,
    measure_from: Instant,
    deadline: Instant,
    wait: Duration,
    meter: &Meter,
    out: &RrShared,
) -> io::Result<()> {
    let usage = ThreadUsage::start();
    sock.set_read_timeout(Some(wait))?;
    let mut req = vec![0x5a_u8; size];
    let mut resp = vec![0u8; size.max(8) + 64];
    let mut seq: u64 = 0;
    let result = 'outer: loop {
        let t0 = Instant::now();
        if t0 >= deadline {
            break Ok(());
        }
        seq += 1;
        if size >= 8 {
            req[..8].copy_from_slice(&seq.to_be_bytes());
        }
        if let Err(e) = sock.send(&req) {
            break Err(e);
        }
        loop {
            match sock.recv(&mut resp) {
                Ok(n) if size >= 8 && (n < 8 || resp[..8] != seq.to_be_bytes()) => continue,
                Ok(_) => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    out.lock().lost += 1;
                    continue 'outer;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break 'outer Err(e),
            }
        }
        let took = t0.elapsed();
        meter.add(size, 1);
        if t0 >= measure_from {
            out.record(took);
        }
    };
    meter.add_worker_time(&usage);
    result
}

/// UDP: echo every datagram to its sender until `stop` is set.
pub fn udp_server(sock: &UdpSocket, stop: &AtomicBool, meter: &Meter) -> io::Result<()> {
    let usage = ThreadUsage::start();
    sock.set_read_timeout(Some(Duration::from_millis(20)))?;
    let mut buf = vec![0u8; 65536];
    // Each rr socket serves one client: once it is known, connect to it so
    // every reply skips the per-datagram route lookup of sendto.
    let mut connected = false;
    let result = loop {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                if !connected {
                    connected = sock.connect(from).is_ok();
                }
                let sent = if connected {
                    sock.send(&buf[..n])
                } else {
                    sock.send_to(&buf[..n], from)
                };
                if let Err(e) = sent {
                    break Err(e);
                }
                meter.add(n, 1);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::Relaxed) {
                    break Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    meter.add_worker_time(&usage);
    result
}
