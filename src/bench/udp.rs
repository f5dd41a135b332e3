//! UDP stream workers. Every datagram starts with a 64-bit sequence number,
//! so the receiver counts what arrived, what came out of order and (against
//! the sender's count) what was lost.
//!
//! With GSO the sender hands the kernel up to 64 datagrams in one call
//! (UDP_SEGMENT) and with GRO the receiver gets them back coalesced
//! (UDP_GRO, the segment size in a control message): the cost of UDP is per
//! call, so this is where the speed is.

use std::io::{self, IoSliceMut};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
use socket2::SockRef;

use super::{Meter, ThreadUsage};
use crate::engine::buf::AlignedBuf;

/// The kernel's cap on segments per GSO call.
const MAX_SEGMENTS: usize = 64;
/// Sequence number size at the front of each datagram.
pub const HEADER: usize = super::params::UDP_HEADER;
/// Silence after the sender's end that ends a receiver's drain.
const DRAIN_QUIET: Duration = Duration::from_millis(100);

/// Asks for a receive buffer of `bytes`: SO_RCVBUFFORCE (root) goes past
/// net.core.rmem_max, SO_RCVBUF is capped by it. Best effort: a buffer the
/// kernel will not give shows in the loss figures. Sizes past `i32::MAX`
/// are clamped (the option is an int).
pub fn set_rcvbuf(sock: &UdpSocket, bytes: usize) {
    let v = bytes.min(i32::MAX as usize);
    if setsockopt(sock, sockopt::RcvBufForce, &v).is_err() {
        let _ = SockRef::from(sock).set_recv_buffer_size(v);
    }
}

/// SO_SNDBUF, best effort, clamped as [`set_rcvbuf`].
pub fn set_sndbuf(sock: &UdpSocket, bytes: usize) {
    let v = bytes.min(i32::MAX as usize);
    let _ = SockRef::from(sock).set_send_buffer_size(v);
}

/// Sends `size`-byte datagrams on a connected socket until `deadline` (or
/// `budget` bytes), at `rate_bps` if given. Returns datagrams sent.
pub fn send(
    sock: &UdpSocket,
    size: usize,
    gso: bool,
    rate_bps: Option<u64>,
    deadline: Instant,
    budget: Option<u64>,
    meter: &Meter,
) -> io::Result<()> {
    if size < HEADER {
        // Params::validate refuses this; a worker still must not index past
        // a datagram that cannot hold its sequence number.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a UDP stream datagram must hold its 8-byte sequence number",
        ));
    }
    let usage = ThreadUsage::start();
    let limit = if sock.peer_addr().map(|a| a.is_ipv4()).unwrap_or(true) {
        65507
    } else {
        65527
    };
    let mut batch = if gso && size * 2 <= limit {
        (limit / size).min(MAX_SEGMENTS)
    } else {
        1
    };
    if batch > 1 && setsockopt(sock, sockopt::UdpGsoSegment, &(size as libc::c_int)).is_err() {
        batch = 1;
    }
    // Pacing: the rate earns one datagram every `gap`, and a call sends
    // only the datagrams already earned, so no burst is more than the rate
    // has allowed so far, however large a GSO batch could be.
    let gap = rate_bps.map(|r| size as f64 * 8.0 / r as f64);
    if gap.is_some() {
        // After a stall the earned datagrams go in batches of at most this
        // many, not all at once.
        batch = batch.min(8);
    }
    let mut buf = AlignedBuf::filled(size * batch, 0x5a);
    let mut seq: u64 = 0;
    let mut left = budget.unwrap_or(u64::MAX);
    let started = Instant::now();
    let test_secs = deadline.saturating_duration_since(started).as_secs_f64();
    let result = loop {
        if left < size as u64 || Instant::now() >= deadline {
            break Ok(());
        }
        let mut n = batch.min((left / size as u64).max(1) as usize);
        if let Some(gap) = gap {
            // Datagram `seq` (from 0) is earned at seq * gap: the first
            // goes at once (as iperf3 sends it), so even a rate below one
            // datagram per test sends one.
            let due = seq as f64 * gap;
            if due >= test_secs {
                // Nothing more is earned before the end, but the test still
                // lasts its length: the receiver measures over it.
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                break Ok(());
            }
            let wait = due - started.elapsed().as_secs_f64();
            if wait > 0.0 {
                std::thread::sleep(Duration::from_secs_f64(wait));
            }
            let earned = (started.elapsed().as_secs_f64() / gap).floor() as u64 + 1;
            n = n.min(earned.saturating_sub(seq).max(1) as usize);
        }
        for i in 0..n {
            let at = i * size;
            buf[at..at + HEADER].copy_from_slice(&(seq + i as u64).to_be_bytes());
        }
        match sock.send(&buf[..n * size]) {
            Ok(_) => {
                meter.add(n * size, n as u64);
                seq += n as u64;
                left = left.saturating_sub((n * size) as u64);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A full queue on the way (ENOBUFS): the datagrams are lost,
            // which the receiver will count; go on.
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                meter.add(n * size, n as u64);
                seq += n as u64;
            }
            Err(e) if batch > 1 && e.raw_os_error() == Some(libc::EIO) => {
                // GSO refused by the device: carry on one datagram per call.
                let _ = setsockopt(sock, sockopt::UdpGsoSegment, &0);
                batch = 1;
            }
            Err(e) => break Err(e),
        }
    };
    meter.add_worker_time(&usage);
    result
}

/// Receives until the sender has said it is done (`peer_done`) and the
/// socket has been quiet for a moment, or `give_up` passes.
pub fn receive(
    sock: &UdpSocket,
    gro: bool,
    peer_done: &AtomicBool,
    give_up: Instant,
    meter: &Meter,
) -> io::Result<()> {
    let usage = ThreadUsage::start();
    let gro = gro && setsockopt(sock, sockopt::UdpGroSegment, &true).is_ok();
    sock.set_read_timeout(Some(Duration::from_millis(20)))?;
    let mut buf = AlignedBuf::zeroed(65536 * 2);
    // Room for the one control message GRO adds; allocated once, reused by
    // every call.
    let mut cmsg = nix::cmsg_space!(libc::c_int);
    let mut highest: Option<u64> = None;
    let mut quiet_since = Instant::now();
    let result = loop {
        let got = if gro {
            recv_segments(sock, &mut buf, &mut cmsg)
        } else {
            sock.recv(&mut buf).map(|n| (n, 0))
        };
        match got {
            Ok((len, seg)) => {
                quiet_since = Instant::now();
                let seg = if seg == 0 { len.max(1) } else { seg };
                let mut datagrams = 0u64;
                let mut at = 0;
                while at < len {
                    if len - at >= HEADER {
                        let mut s = [0u8; 8];
                        s.copy_from_slice(&buf[at..at + HEADER]);
                        let s = u64::from_be_bytes(s);
                        match highest {
                            Some(h) if s <= h => {
                                meter.reordered.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => highest = Some(s),
                        }
                    }
                    datagrams += 1;
                    at += seg;
                }
                meter.add(len, datagrams);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let now = Instant::now();
                if (peer_done.load(Ordering::Relaxed)
                    && now.duration_since(quiet_since) >= DRAIN_QUIET)
                    || now >= give_up
                {
                    break Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // An ICMP error from an earlier datagram of ours (the hello).
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {}
            Err(e) => break Err(e),
        }
    };
    meter.add_worker_time(&usage);
    result
}

/// recvmsg(2) on a socket with UDP_GRO on: returns the bytes received and
/// the segment size from the UDP_GRO control message (0 when the buffer is
/// one datagram, which then comes without one). `cmsg` is the control
/// buffer, reused across calls.
fn recv_segments(
    sock: &UdpSocket,
    buf: &mut [u8],
    cmsg: &mut Vec<u8>,
) -> io::Result<(usize, usize)> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(cmsg), MsgFlags::empty())?;
    let mut seg = 0usize;
    // A truncated control buffer (it has room for GRO's one int, so it
    // cannot be) would only lose the segment size: read as one datagram.
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::UdpGroSegments(size) = c {
                seg = size.max(0) as usize;
            }
        }
    }
    Ok((msg.bytes, seg))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The receiver over loopback, fed sequence numbers out of order the
    /// way a reordering path delivers them: each one at or below the
    /// highest seen counts as reordered, and every datagram is received.
    #[test]
    fn late_sequence_numbers_count_as_reordered() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        for seq in [0u64, 1, 3, 2, 4, 7, 5, 6, 8] {
            let mut d = [0u8; 64];
            d[..HEADER].copy_from_slice(&seq.to_be_bytes());
            tx.send(&d).unwrap();
        }
        let meter = Meter::new(Instant::now());
        let done = AtomicBool::new(true);
        let give_up = Instant::now() + Duration::from_secs(10);
        receive(&rx, false, &done, give_up, &meter).unwrap();
        assert_eq!(meter.datagrams.load(Ordering::Relaxed), 9);
        assert_eq!(meter.reordered.load(Ordering::Relaxed), 3);
    }
}
