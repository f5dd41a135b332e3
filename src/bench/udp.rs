//! UDP stream workers. Every datagram starts with a 64-bit sequence number,
//! so the receiver counts what arrived, what came out of order and (against
//! the sender's count) what was lost.
//!
//! With GSO the sender hands the kernel up to 64 datagrams in one call
//! (UDP_SEGMENT) and with GRO the receiver gets them back coalesced
//! (UDP_GRO, the segment size in a control message): the cost of UDP is per
//! call, so this is where the speed is.

use std::io;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Meter, ThreadUsage};
use crate::engine::socket::setsockopt_int;

const SOL_UDP: libc::c_int = 17;
const UDP_SEGMENT: libc::c_int = 103;
const UDP_GRO: libc::c_int = 104;
/// The kernel's cap on segments per GSO call.
const MAX_SEGMENTS: usize = 64;
/// Sequence number size at the front of each datagram.
pub const HEADER: usize = super::params::UDP_HEADER;
/// Silence after the sender's end that ends a receiver's drain.
const DRAIN_QUIET: Duration = Duration::from_millis(100);

/// Asks for a receive buffer of `bytes`: SO_RCVBUFFORCE (root) goes past
/// net.core.rmem_max, SO_RCVBUF is capped by it.
pub fn set_rcvbuf(sock: &UdpSocket, bytes: usize) {
    let v = bytes.min(i32::MAX as usize) as libc::c_int;
    if setsockopt_int(sock, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v).is_err() {
        let _ = setsockopt_int(sock, libc::SOL_SOCKET, libc::SO_RCVBUF, v);
    }
}

pub fn set_sndbuf(sock: &UdpSocket, bytes: usize) {
    let v = bytes.min(i32::MAX as usize) as libc::c_int;
    let _ = setsockopt_int(sock, libc::SOL_SOCKET, libc::SO_SNDBUF, v);
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
    if batch > 1 && setsockopt_int(sock, SOL_UDP, UDP_SEGMENT, size as libc::c_int).is_err() {
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
    let mut buf = vec![0x5a_u8; size * batch];
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
                let _ = setsockopt_int(sock, SOL_UDP, UDP_SEGMENT, 0);
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
    let gro = gro && setsockopt_int(sock, SOL_UDP, UDP_GRO, 1).is_ok();
    sock.set_read_timeout(Some(Duration::from_millis(20)))?;
    let mut buf = vec![0u8; 65536 * 2];
    let mut highest: Option<u64> = None;
    let mut quiet_since = Instant::now();
    let result = loop {
        match recv_segments(sock, &mut buf, gro) {
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

/// recvmsg(2): returns the bytes received and, with GRO, the segment size
/// from the UDP_GRO control message (0 when the buffer is one datagram).
fn recv_segments(sock: &UdpSocket, buf: &mut [u8], gro: bool) -> io::Result<(usize, usize)> {
    if !gro {
        return sock.recv(buf).map(|n| (n, 0));
    }
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr is plain data; zeroes are valid; pointers set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    // SAFETY: msg points at live buffers for the duration of the call.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut seg = 0usize;
    // SAFETY: walking the control buffer the kernel filled, with the
    // CMSG_* helpers and within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == SOL_UDP && (*c).cmsg_type == UDP_GRO {
                let data = libc::CMSG_DATA(c) as *const libc::c_int;
                seg = std::ptr::read_unaligned(data).max(0) as usize;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, seg))
}
