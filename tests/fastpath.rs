//! The relay's fast path and the connect features around it: splice(2)
//! from the socket into a stdout pipe against `--no-splice` (byte-exact both
//! ways, 1 GiB included, half-close, idle timeout, a stdout closed early),
//! `connect --retry` (a listener that starts late, one that never does,
//! `--retry-until`) and `--progress` (silent without a terminal, drawn on a
//! pseudo-terminal from util-linux `script`).
//!
//! A captured stdout (`Output::Capture`) is a pipe, so it takes the splice
//! path; where a test must read a pipe as it fills (or hash 1 GiB without
//! holding it, or close it early), stdout is `Output::Pipe`, read by the
//! test itself, each read bounded. Every case runs over every stream
//! transport of the table (the IP loopbacks and a Unix socket), but for the
//! retry budgets, whose exit status is TCP's refusal (3), over the IP
//! loopbacks.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use socket2::{Domain, Socket, Type};

const MIB: usize = 1 << 20;

/// The two receive paths: splice into a stdout pipe (default), or copies.
const PATHS: [&[&str]; 2] = [&[], &["--no-splice"]];

/// Every receive path over every stream transport.
fn cases() -> Vec<(Loop, &'static [&'static str])> {
    stream_loops()
        .into_iter()
        .flat_map(|lo| PATHS.map(|p| (lo, p)))
        .collect()
}

// ---------------------------------------------------------------- helpers

/// `up` bytes from connect's stdin (a file or a pipe) to listen's stdout
/// (a pipe) while `down` bytes go from listen's stdin (a file) to connect's
/// stdout (a pipe), both sides with `extra`; both byte-exact, both exit 0.
fn duplex(lo: Loop, extra: &[&str], up: usize, down: usize, stdin_is_file: bool, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (up_data, down_data) = (random_bytes(up, seed), random_bytes(down, seed + 1));
    let down_file = dir.path().join("down");
    std::fs::write(&down_file, &down_data).unwrap();
    let input = if stdin_is_file {
        let up_file = dir.path().join("up");
        std::fs::write(&up_file, &up_data).unwrap();
        Input::File(up_file)
    } else {
        Input::Bytes(up_data.clone())
    };
    let (server, port) = listen_on(lo, extra, Input::File(down_file), Output::Capture);
    let client = connect_to(lo, port, extra, input, Output::Capture);
    let (c, s) = (client.finish(), server.finish());
    c.expect_code(0);
    s.expect_code(0);
    let what = format!(
        "{lo:?} {extra:?}, stdin a {}",
        if stdin_is_file { "file" } else { "pipe" }
    );
    assert_eq!(s.stdout.len(), up, "{what}: client to server\n{}", s.dump());
    assert_eq!(
        sha256(&s.stdout),
        sha256(&up_data),
        "{what}: client to server differs"
    );
    assert_eq!(
        c.stdout.len(),
        down,
        "{what}: server to client\n{}",
        c.dump()
    );
    assert_eq!(
        sha256(&c.stdout),
        sha256(&down_data),
        "{what}: server to client differs"
    );
}

// ---------------------------------------------------------------- byte-exact

#[test]
fn splice_byte_exact_file_stdin() {
    for lo in stream_loops() {
        duplex(lo, &[], 64 * MIB, 16 * MIB, true, 10);
        duplex(lo, &[], 16 * MIB, 64 * MIB, true, 12);
    }
}

#[test]
fn splice_byte_exact_pipe_stdin() {
    for lo in stream_loops() {
        duplex(lo, &[], 64 * MIB, 16 * MIB, false, 14);
        duplex(lo, &[], 16 * MIB, 64 * MIB, false, 16);
    }
}

#[test]
fn no_splice_byte_exact_file_stdin() {
    for lo in stream_loops() {
        duplex(lo, &["--no-splice"], 64 * MIB, 16 * MIB, true, 20);
        duplex(lo, &["--no-splice"], 16 * MIB, 64 * MIB, true, 22);
    }
}

#[test]
fn no_splice_byte_exact_pipe_stdin() {
    for lo in stream_loops() {
        duplex(lo, &["--no-splice"], 64 * MIB, 16 * MIB, false, 24);
        duplex(lo, &["--no-splice"], 16 * MIB, 64 * MIB, false, 26);
    }
}

/// Large transfer: 1 GiB from a file on connect's stdin to listen's stdout,
/// a pipe (so the default run takes the splice path) hashed as it is read,
/// then the same through `--no-splice`. Each run takes a few seconds; each
/// read waits at most the harness bound (60 s).
#[test]
fn one_gib_through_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    let want = {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let mut h = Sha256::new();
        for i in 0..64 {
            let chunk = random_bytes(16 * MIB, 1000 + i);
            h.update(&chunk);
            f.write_all(&chunk).unwrap();
        }
        f.flush().unwrap();
        hex(&h.finalize())
    };
    for (lo, extra) in cases() {
        let started = Instant::now();
        let (mut server, port) = listen_on(lo, extra, Input::Null, Output::Pipe);
        let client = connect_to(lo, port, extra, Input::File(big.clone()), Output::Capture);
        let mut out = server.stdout_pipe();
        let mut h = Sha256::new();
        let mut len = 0usize;
        loop {
            let chunk = out.read_within(MIB, LONG);
            if chunk.is_empty() {
                break;
            }
            h.update(&chunk);
            len += chunk.len();
        }
        let (c, s) = (client.finish(), server.finish());
        c.expect_code(0);
        s.expect_code(0);
        assert_eq!(len, 1 << 30, "{lo:?} {extra:?}: length\n{}", s.dump());
        assert_eq!(hex(&h.finalize()), want, "{lo:?} {extra:?}: 1 GiB differs");
        assert!(c.stdout.is_empty(), "{}", c.dump());
        eprintln!("1 GiB {lo:?} {extra:?}: {:?}", started.elapsed());
    }
}

// ---------------------------------------------------------------- half-close, idle

/// Request, EOF, reply: the server's stdout (a pipe) gets the request and
/// its EOF while the server still runs; the reply reaches the client.
#[test]
fn half_close_on_the_splice_path() {
    for (i, (lo, extra)) in cases().into_iter().enumerate() {
        let request = b"GET /status HTTP/1.0\r\n\r\n".to_vec();
        let reply = random_bytes(3 * MIB + 17, 30 + i as u64);
        let (mut server, port) = listen_on(lo, extra, Input::Pipe, Output::Pipe);
        let client = connect_to(
            lo,
            port,
            extra,
            Input::Bytes(request.clone()),
            Output::Capture,
        );

        let seen = server.stdout_pipe().read_to_end_within(LONG);
        assert_eq!(
            seen, request,
            "{lo:?} {extra:?}: request on the server's stdout"
        );
        assert!(
            server.is_running(),
            "{lo:?} {extra:?}: the server ended before its stdin did\n{}",
            server.dump()
        );

        let mut stdin = server.stdin.take().unwrap();
        stdin.write_all(&reply).unwrap();
        drop(stdin);
        let (c, s) = (client.finish(), server.finish());
        c.expect_code(0);
        s.expect_code(0);
        assert_eq!(
            c.stdout.len(),
            reply.len(),
            "{lo:?} {extra:?}\n{}",
            c.dump()
        );
        assert_eq!(
            sha256(&c.stdout),
            sha256(&reply),
            "{lo:?} {extra:?}: reply differs"
        );
    }
}

/// `--idle-timeout 1s` with stdout a pipe and a silent peer: exit 4, on
/// either side.
#[test]
fn idle_timeout_on_the_splice_path() {
    for (lo, extra) in cases() {
        let mut args = vec!["--idle-timeout", "1s"];
        args.extend_from_slice(extra);

        // The listener times out.
        let (server, port) = listen_on(lo, &args, Input::Pipe, Output::Capture);
        let mut client = connect_to(lo, port, extra, Input::Pipe, Output::Capture);
        let started = Instant::now();
        let s = server.finish();
        let took = started.elapsed();
        s.expect_code(4);
        assert!(s.stdout.is_empty(), "{}", s.dump());
        assert!(s.stderr.contains("idle"), "{}", s.dump());
        assert!(
            took < Duration::from_secs(30),
            "{lo:?} {extra:?}: took {took:?}"
        );
        drop(client.stdin.take());
        let c = client.finish();
        assert!(c.stdout.is_empty(), "{}", c.dump());

        // The client times out.
        let (mut server, port) = listen_on(lo, extra, Input::Pipe, Output::Capture);
        let client = connect_to(lo, port, &args, Input::Pipe, Output::Capture);
        let c = client.finish();
        c.expect_code(4);
        assert!(c.stdout.is_empty(), "{}", c.dump());
        assert!(c.stderr.contains("idle"), "{}", c.dump());
        drop(server.stdin.take());
        let _ = server.finish();
    }
}

// ---------------------------------------------------------------- stdout closed

/// The reader of connect's stdout (a pipe) goes away after 10 bytes while
/// the peer sends 50 MiB: exit 0, nothing on stderr, with stdin still open.
#[test]
fn stdout_closed_early_on_the_splice_path() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(50 * MIB, 40);
    let src = dir.path().join("src");
    std::fs::write(&src, &data).unwrap();
    for (lo, extra) in cases() {
        let (server, port) = listen_on(lo, extra, Input::File(src.clone()), Output::Null);
        let mut client = connect_to(lo, port, extra, Input::Pipe, Output::Pipe);
        // Ten bytes, then the pipe drops: its only read end closes.
        let first = client.stdout_pipe().read_exact_within(10, LONG);
        assert_eq!(&first[..], &data[..10], "{lo:?} {extra:?}");
        let c = client.finish_within(LONG);
        c.expect_code(0);
        assert_eq!(
            c.stderr,
            "",
            "{lo:?} {extra:?}: stderr not empty\n{}",
            c.dump()
        );
        // The server sees its peer go away; only its exit is required.
        let _ = server.finish();
    }
}

// ---------------------------------------------------------------- retry

/// A listener that appears on `port` of `lo` after `delay` (TCP with
/// SO_REUSEADDR, so a TIME-WAIT left by a probe does not stop it; Unix at
/// the entry's path), accepts one client, sends "ready\n" and closes.
fn late_listener(lo: Loop, port: u16, delay: Duration) -> JoinHandle<()> {
    thread::spawn(move || {
        // The condition under test: nothing listens during this second.
        thread::sleep(delay);
        if lo.is_unix() {
            let (listener, _) = lo.std_listener();
            let mut conn = accept_within(&listener, LONG);
            conn.write_all(b"ready\n").unwrap();
            return;
        }
        let addr = lo.addr(port);
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
        sock.set_reuse_address(true).unwrap();
        sock.bind(&addr.into())
            .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        sock.listen(8).unwrap();
        let listener: TcpListener = sock.into();
        let mut conn = accept_within(&listener, LONG);
        conn.write_all(b"ready\n").unwrap();
    })
}

#[test]
fn retry_reaches_a_listener_that_starts_late() {
    for lo in stream_loops() {
        let port = lo.closed_port();
        let server = late_listener(lo, port, Duration::from_secs(1));
        let c = connect_to(
            lo,
            port,
            &["--retry", "20", "--retry-delay", "100ms"],
            Input::Null,
            Output::Capture,
        )
        .finish();
        c.expect_code(0);
        assert_eq!(c.stdout, b"ready\n", "{lo:?}\n{}", c.dump());
        server.join().unwrap();
    }
}

/// Never open: 21 attempts with delays 0.1, 0.2, 0.4, 0.8, then 1.0 s
/// (capped at ten times the first) = about 17.5 s; exit 3; -v logs each
/// failed attempt but the last.
#[test]
fn retry_gives_up_on_a_port_that_never_opens() {
    // The families run at once: each takes about 17.5 s of waiting.
    let runs: Vec<_> = loopbacks()
        .into_iter()
        .map(|lo| {
            let c = connect_to(
                lo,
                lo.closed_port(),
                &["-v", "--retry", "20", "--retry-delay", "100ms"],
                Input::Null,
                Output::Capture,
            );
            (Instant::now(), c)
        })
        .collect();
    for (started, c) in runs {
        let c = c.finish();
        let took = started.elapsed();
        c.expect_code(3);
        assert!(c.stdout.is_empty(), "{}", c.dump());
        assert!(
            took > Duration::from_secs(10) && took < Duration::from_secs(40),
            "took {took:?}\n{}",
            c.dump()
        );
        for n in 1..=20 {
            let needle = format!("attempt {n} of 21 failed");
            assert!(c.stderr.contains(&needle), "no '{needle}'\n{}", c.dump());
        }
        assert!(
            !c.stderr.contains("attempt 21 of 21 failed"),
            "the last attempt is reported as the error, not as a retry\n{}",
            c.dump()
        );
    }
}

/// `--retry-until 2s` bounds a long retry budget.
#[test]
fn retry_until_bounds_the_retries() {
    for lo in loopbacks() {
        let started = Instant::now();
        let c = connect_to(
            lo,
            lo.closed_port(),
            &[
                "--retry",
                "50",
                "--retry-delay",
                "100ms",
                "--retry-until",
                "2s",
            ],
            Input::Null,
            Output::Capture,
        )
        .finish();
        let took = started.elapsed();
        c.expect_code(3);
        assert!(
            took < Duration::from_secs(10),
            "took {took:?}\n{}",
            c.dump()
        );
    }
}

// ---------------------------------------------------------------- progress

/// `--progress` on both ends, neither with a terminal: nothing on stderr,
/// the data byte-exact. The listener runs without -v on a released port;
/// the client's `--retry` is what waits for it to bind.
#[test]
fn progress_without_a_terminal_draws_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (up, down) = (random_bytes(8 * MIB, 50), random_bytes(4 * MIB, 51));
    let (up_file, down_file) = (dir.path().join("up"), dir.path().join("down"));
    std::fs::write(&up_file, &up).unwrap();
    std::fs::write(&down_file, &down).unwrap();
    for lo in stream_loops() {
        // A released port, named up front: without -v there is no port
        // line to read.
        let port = lo.closed_port();
        let ops = lo.listen_args(port);
        let mut args = vec!["listen", "--progress"];
        args.extend(ops.iter().map(String::as_str));
        let server = spawn(&args, Input::File(down_file.clone()), Output::Capture);
        let client = connect_to(
            lo,
            port,
            &["--progress", "--retry", "100", "--retry-delay", "50ms"],
            Input::File(up_file.clone()),
            Output::Capture,
        );
        let (c, s) = (client.finish(), server.finish());
        c.expect_code(0);
        s.expect_code(0);
        assert_eq!(c.stderr, "", "client stderr\n{}", c.dump());
        assert_eq!(s.stderr, "", "server stderr\n{}", s.dump());
        assert_eq!(
            sha256(&s.stdout),
            sha256(&up),
            "{lo:?}: client to server differs"
        );
        assert_eq!(
            sha256(&c.stdout),
            sha256(&down),
            "{lo:?}: server to client differs"
        );
    }
}

/// A peer that reads slowly (a pause after every 64 KiB), so the session
/// lasts over a second and the bar ticks (every 200 ms) several times;
/// then it sends `reply` and closes. Delivers the sha256 of what it read.
fn slow_reader(lo: Loop, reply: Vec<u8>) -> (u16, JoinHandle<(usize, String)>) {
    let (l, port) = lo.std_listener();
    let h = thread::spawn(move || {
        let mut conn = accept_within(&l, LONG);
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut len = 0;
        loop {
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            len += n;
            // The throttle is the scenario (a slow peer), not a readiness wait.
            thread::sleep(Duration::from_millis(5));
        }
        conn.write_all(&reply).unwrap();
        (len, hex(&h.finalize()))
    });
    (port, h)
}

/// `--progress` with stderr on a pseudo-terminal (util-linux `script`;
/// stdout goes to a file inside the command, so only stderr reaches the
/// pty): the pty shows the bar, the file is byte-exact.
#[test]
fn progress_on_a_terminal_draws_a_bar() {
    require!("script");
    let dir = tempfile::tempdir().unwrap();
    let up = random_bytes(16 * MIB, 60);
    let reply = random_bytes(MIB + 3, 61);
    let (up_file, out_file) = (dir.path().join("up"), dir.path().join("out"));
    std::fs::write(&up_file, &up).unwrap();
    for lo in stream_loops() {
        let (port, peer) = slow_reader(lo, reply.clone());
        let cmd = format!(
            "'{}' connect --progress {} < '{}' > '{}'",
            bin(),
            lo.connect_args(port).join(" "),
            up_file.display(),
            out_file.display()
        );
        let mut script = Command::new("script");
        script
            .args(["-qfec", &cmd, "/dev/null"])
            .env("SHELL", "/bin/sh");
        let f = spawn_cmd(script, Input::Null, Output::Capture).finish();
        f.expect_code(0);
        let (len, got) = peer.join().unwrap();
        assert_eq!(len, up.len(), "{lo:?}: bytes the peer read");
        assert_eq!(got, sha256(&up), "{lo:?}: client to peer differs");
        let out = std::fs::read(&out_file).unwrap();
        assert_eq!(out.len(), reply.len(), "{lo:?}: stdout file length");
        assert_eq!(sha256(&out), sha256(&reply), "{lo:?}: stdout file differs");
        let pty = String::from_utf8_lossy(&f.stdout);
        assert!(
            pty.contains("sent") && pty.contains("B/s"),
            "{lo:?}: no progress bar on the terminal:\n{pty:?}"
        );
    }
}
