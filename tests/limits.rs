//! Idle timeouts, bounded memory with a slow reader, half-close behaviour
//! and the direction flags (`--exit-on-eof`, `--recv-only`, `--send-only`,
//! `--no-shutdown`), over every loopback of the table.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
use common::*;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;

fn assert_idle_exit(f: &Finished, took: Duration) {
    f.expect_code(4);
    assert!(
        f.stderr.contains("idle"),
        "no 'idle' in the message\n{}",
        f.dump()
    );
    assert!(
        took >= Duration::from_millis(900),
        "ended after {took:?}, before the 1s idle timeout\n{}",
        f.dump()
    );
}

#[test]
fn connect_idle_timeout_ends_a_silent_session_with_4() {
    for lo in loopbacks() {
        let (server, port) = lo.std_listener();
        let started = Instant::now();
        let mut c = connect_to(
            lo,
            port,
            &["--idle-timeout", "1s"],
            Input::Pipe,
            Output::Capture,
        );
        let _held = accept_within(&server, LONG);
        let f = c.finish_within(Duration::from_secs(10));
        assert_idle_exit(&f, started.elapsed());
    }
}

#[test]
fn listen_idle_timeout_ends_a_silent_session_with_4() {
    for lo in loopbacks() {
        let (mut l, port) = listen_on(lo, &["--idle-timeout", "1s"], Input::Pipe, Output::Capture);
        let started = Instant::now();
        let _held = lo.std_connect(port);
        l.wait_for_stderr("connection from");
        let f = l.finish_within(Duration::from_secs(10));
        assert_idle_exit(&f, started.elapsed());
    }
}

/// 256 MiB from connect's stdin (a file) to a listener whose stdout the
/// test reads slowly for 2.5 s: both peak resident sets stay small; then
/// the rest is read at full speed and is byte-exact.
#[test]
fn slow_reader_keeps_memory_bounded() {
    const SIZE: usize = 256 * MIB;
    const LIMIT_KIB: u64 = 32 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("input.bin");
    let want = {
        let data = random_bytes(SIZE, 42);
        std::fs::write(&path, &data).expect("write input file");
        sha256(&data)
    };

    for lo in loopbacks() {
        let (mut l, port) = listen_on(lo, &[], Input::Null, Output::Pipe);
        let c = connect_to(lo, port, &[], Input::File(path.clone()), Output::Capture);
        let mut out = l.stdout_pipe();
        let mut hasher = Sha256::new();
        let mut total = 0usize;
        let mut peak = (0u64, 0u64);
        let slow_until = Instant::now() + Duration::from_millis(2500);
        while Instant::now() < slow_until {
            let chunk = out.read_within(64 * 1024, LONG);
            assert!(
                !chunk.is_empty(),
                "{lo:?}: stdout ended early\n{}",
                l.dump()
            );
            hasher.update(&chunk);
            total += chunk.len();
            let (lk, ck) = (
                peak_rss_kib(l.pid()).expect("listener VmHWM"),
                peak_rss_kib(c.pid()).expect("connect VmHWM"),
            );
            peak = (peak.0.max(lk), peak.1.max(ck));
            // Pacing a slow reader, not waiting for readiness.
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "{lo:?} slow phase: read {total} bytes; VmHWM listener {} KiB, connect {} KiB",
            peak.0, peak.1
        );
        assert!(
            total < SIZE / 2,
            "{lo:?}: the slow phase read {total} bytes: the reader was not slow"
        );
        assert!(
            peak.0 < LIMIT_KIB,
            "{lo:?}: listener VmHWM {} KiB during a slow read\n{}",
            peak.0,
            l.dump()
        );
        assert!(
            peak.1 < LIMIT_KIB,
            "{lo:?}: connect VmHWM {} KiB during a slow read\nstderr:\n{}",
            peak.1,
            c.stderr_now()
        );

        loop {
            let chunk = out.read_within(MIB, LONG);
            if chunk.is_empty() {
                break;
            }
            hasher.update(&chunk);
            total += chunk.len();
        }
        let lf = l.finish_within(LONG);
        let cf = c.finish();
        lf.expect_code(0);
        cf.expect_code(0);
        assert_eq!(total, SIZE, "{lo:?}\n{}", lf.dump());
        assert_eq!(hex(&hasher.finalize()), want, "{lo:?}\n{}", lf.dump());
    }
}

#[test]
fn keeps_sending_a_pipe_after_the_peer_half_closed() {
    for lo in loopbacks() {
        let (l, port) = listen_on(lo, &[], Input::Null, Output::Capture);
        let mut c = connect_to(lo, port, &[], Input::Pipe, Output::Pipe);
        let mut out = c.stdout_pipe();
        let data = random_bytes(MIB, 3);
        let mut stdin = c.stdin.take().expect("stdin pipe");
        stdin.write_all(&data[..MIB / 2]).expect("first half");

        // The listener's stdin is empty: it half-closes at once, and the
        // client's stdout must reach EOF while its stdin is still open.
        let got = out.read_to_end_within(LONG);
        assert!(
            got.is_empty(),
            "{lo:?}: client received {} bytes",
            got.len()
        );
        assert!(
            c.is_running(),
            "{lo:?}: client ended at socket EOF with its stdin pipe open\n{}",
            c.dump()
        );

        stdin.write_all(&data[MIB / 2..]).expect("second half");
        drop(stdin);
        let cf = c.finish_within(LONG);
        let lf = l.finish();
        cf.expect_code(0);
        lf.expect_code(0);
        assert_eq!(lf.stdout.len(), MIB, "{lo:?}\n{}", lf.dump());
        assert!(
            lf.stdout == data,
            "{lo:?}: listener stdout differs\n{}",
            lf.dump()
        );
    }
}

#[test]
fn exit_on_eof_ends_at_socket_eof_with_stdin_open() {
    for lo in loopbacks() {
        let (l, port) = listen_on(lo, &[], Input::Null, Output::Capture);
        let mut c = connect_to(lo, port, &["--exit-on-eof"], Input::Pipe, Output::Pipe);
        let mut out = c.stdout_pipe();
        // Our end of the client's stdin stays open throughout.
        let stdin = c.stdin.take().expect("stdin pipe");
        let cf = c.finish_within(Duration::from_secs(10));
        cf.expect_code(0);
        let got = out.read_to_end_within(LONG);
        assert!(
            got.is_empty(),
            "{lo:?}: client received {} bytes",
            got.len()
        );
        let lf = l.finish();
        lf.expect_code(0);
        drop(stdin);
    }
}

#[test]
fn recv_only_receives_and_sends_nothing() {
    let peer_data = random_bytes(MIB, 5);
    for lo in loopbacks() {
        let (l, port) = listen_on(lo, &[], Input::Bytes(peer_data.clone()), Output::Capture);
        let c = connect_to(
            lo,
            port,
            &["--recv-only"],
            Input::Bytes(b"must not be sent".to_vec()),
            Output::Capture,
        )
        .finish();
        let lf = l.finish();
        c.expect_code(0);
        lf.expect_code(0);
        assert_eq!(c.stdout.len(), peer_data.len(), "{lo:?}\n{}", c.dump());
        assert!(
            c.stdout == peer_data,
            "{lo:?}: client stdout differs\n{}",
            c.dump()
        );
        assert!(
            lf.stdout.is_empty(),
            "{lo:?}: --recv-only sent data\n{}",
            lf.dump()
        );
    }
}

#[test]
fn send_only_sends_stdin_and_prints_nothing() {
    let data = random_bytes(MIB, 6);
    for lo in loopbacks() {
        let (server, port) = lo.std_listener();
        let mut c = connect_to(
            lo,
            port,
            &["--send-only"],
            Input::Bytes(data.clone()),
            Output::Capture,
        );
        let peer = accept_within(&server, LONG);
        let mut w = peer.try_clone().unwrap();
        let writer = thread::spawn(move || {
            // sonda may close once its stdin is delivered; errors are fine.
            let _ = w.write_all(&random_bytes(MIB, 9));
        });
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut r = &peer;
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // Closing with the peer's data unread resets; all sent data
                // has been acknowledged before that.
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => panic!("{lo:?}: read from sonda: {e}\n{}", c.dump()),
            }
        }
        let f = c.finish_within(LONG);
        let _ = peer.shutdown(Shutdown::Both);
        writer.join().unwrap();
        f.expect_code(0);
        assert!(
            f.stdout.is_empty(),
            "{lo:?}: --send-only printed\n{}",
            f.dump()
        );
        assert_eq!(got.len(), data.len(), "{lo:?}\n{}", f.dump());
        assert!(
            got == data,
            "{lo:?}: peer received other bytes\n{}",
            f.dump()
        );
    }
}

#[test]
fn no_shutdown_keeps_the_write_side_open() {
    for lo in loopbacks() {
        let (server, port) = lo.std_listener();
        let mut c = connect_to(lo, port, &["--no-shutdown"], Input::Null, Output::Capture);
        let mut peer = accept_within(&server, LONG);
        // The condition under test is an absence: no EOF for a second.
        peer.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut buf = [0u8; 16];
        match peer.read(&mut buf) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!(
                "{lo:?}: --no-shutdown: expected no EOF within 1s, got {other:?}\n{}",
                c.dump()
            ),
        }
        let data = random_bytes(256 * 1024, 8);
        peer.write_all(&data).unwrap();
        drop(peer);
        let f = c.finish();
        f.expect_code(0);
        assert_eq!(f.stdout.len(), data.len(), "{lo:?}\n{}", f.dump());
        assert!(f.stdout == data, "{lo:?}\n{}", f.dump());
    }
}
