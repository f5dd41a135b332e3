//! Byte-stream workers, for TCP and Unix stream sockets alike: one
//! connection each, large calls, counted. Both transports arrive here as a
//! `socket2::Socket`, so one loop serves both with no dispatch per call.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use socket2::Socket;

use super::{Meter, ThreadUsage};
use crate::engine::buf::AlignedBuf;

/// How long one write(2) may block before the sender looks at the clock. A
/// send queue that a tiny receive window drains at a few KB/s holds a
/// blocking write long past the test's end; the sender must stop at the
/// end all the same, or the peer's wait for its report runs out.
const WRITE_TICK: Duration = Duration::from_millis(100);

/// Writes `size`-byte calls until `deadline` or until `budget` bytes have
/// gone, then half-closes so the receiver sees the end. A peer that takes
/// nothing for `stall` is an error.
pub fn send(
    mut sock: &Socket,
    size: usize,
    deadline: Instant,
    budget: Option<u64>,
    stall: Duration,
    meter: &Meter,
) -> io::Result<()> {
    let usage = ThreadUsage::start();
    sock.set_write_timeout(Some(WRITE_TICK.min(stall)))?;
    let buf = AlignedBuf::filled(size, 0x5a);
    let mut left = budget.unwrap_or(u64::MAX);
    let mut moved = Instant::now();
    let result = loop {
        let now = Instant::now();
        if left == 0 || now >= deadline {
            break Ok(());
        }
        let want = (left.min(size as u64)) as usize;
        match sock.write(&buf[..want]) {
            Ok(n) => {
                meter.add(n, 0);
                left -= n as u64;
                moved = now;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) && moved.elapsed() < stall =>
            {
                continue
            }
            Err(e) => break Err(e),
        }
    };
    let _ = sock.shutdown(Shutdown::Write);
    meter.add_worker_time(&usage);
    result
}

/// Reads until the sender's EOF. With `lowat`, SO_RCVLOWAT makes the kernel
/// wake this thread only once that many bytes are queued (or at EOF): fewer
/// wake-ups per byte, and on loopback the sender's softirq then does less of
/// the receiver's work (measured here: about 40 -> 60 Gbit/s at 1 MiB).
pub fn receive(
    mut sock: &Socket,
    size: usize,
    lowat: Option<usize>,
    meter: &Meter,
) -> io::Result<()> {
    let usage = ThreadUsage::start();
    if let Some(n) = lowat {
        crate::engine::sys::set_rcvlowat(sock, n)?;
    }
    let mut buf = AlignedBuf::zeroed(size.max(64 * 1024));
    let result = loop {
        match sock.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => meter.add(n, 0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        }
    };
    meter.add_worker_time(&usage);
    result
}
