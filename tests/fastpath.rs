//! The relay's fast path and the connect features around it: splice(2)
//! from the socket into a stdout pipe against `--no-splice` (byte-exact both
//! ways, 1 GiB included, half-close, idle timeout, a stdout closed early),
//! `connect --retry` (a listener that starts late, one that never does,
//! `--retry-until`) and `--progress` (silent without a terminal, drawn on a
//! pseudo-terminal from util-linux `script`).
//!
//! A captured stdout (`Output::Capture`) is a pipe, so it takes the splice
//! path; where a test must read a pipe as it fills (or hash 1 GiB without
//! holding it), stdout is a FIFO (`Output::File` on a named pipe, also a pipe
//! to sonda) read by a thread of the test. Loopback only.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use socket2::{Domain, Socket, Type};

const V4: &str = "127.0.0.1";
const MIB: usize = 1 << 20;

/// The two receive paths: splice into a stdout pipe (default), or copies.
const PATHS: [&[&str]; 2] = [&[], &["--no-splice"]];

// ---------------------------------------------------------------- helpers

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A named pipe at `dir/name`.
fn fifo(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    p
}

/// Opens `path` (a FIFO) for reading on a thread and reads it to EOF,
/// hashing as it goes; delivers (length, sha256). Start it before the
/// writer opens the FIFO (opening either end waits for the other).
fn hash_fifo(path: PathBuf) -> mpsc::Receiver<(u64, String)> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut f = std::fs::File::open(&path).unwrap();
        let mut h = Sha256::new();
        let mut buf = vec![0u8; MIB];
        let mut len = 0u64;
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    h.update(&buf[..n]);
                    len += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read fifo: {e}"),
            }
        }
        let _ = tx.send((len, hex(&h.finalize())));
    });
    rx
}

/// Opens the FIFO `path` for reading on a thread, reads to EOF, delivers it.
fn read_fifo(path: PathBuf) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut f = std::fs::File::open(&path).unwrap();
        let mut out = Vec::new();
        f.read_to_end(&mut out).unwrap();
        let _ = tx.send(out);
    });
    rx
}

/// `sonda connect EXTRA... 127.0.0.1 PORT`.
fn connect(extra: &[&str], port: u16, input: Input, output: Output) -> Running {
    let port = port.to_string();
    let mut args = vec!["connect"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[V4, &port]);
    spawn(&args, input, output)
}

/// `up` bytes from connect's stdin (a file or a pipe) to listen's stdout
/// (a pipe) while `down` bytes go from listen's stdin (a file) to connect's
/// stdout (a pipe), both sides with `extra`; both byte-exact, both exit 0.
fn duplex(extra: &[&str], up: usize, down: usize, stdin_is_file: bool, seed: u64) {
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
    let (server, port) = listen(V4, extra, Input::File(down_file), Output::Capture);
    let client = connect(extra, port, input, Output::Capture);
    let (c, s) = (client.finish(), server.finish());
    c.expect_code(0);
    s.expect_code(0);
    let what = format!(
        "{extra:?}, stdin a {}",
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
    duplex(&[], 64 * MIB, 16 * MIB, true, 10);
    duplex(&[], 16 * MIB, 64 * MIB, true, 12);
}

#[test]
fn splice_byte_exact_pipe_stdin() {
    duplex(&[], 64 * MIB, 16 * MIB, false, 14);
    duplex(&[], 16 * MIB, 64 * MIB, false, 16);
}

#[test]
fn no_splice_byte_exact_file_stdin() {
    duplex(&["--no-splice"], 64 * MIB, 16 * MIB, true, 20);
    duplex(&["--no-splice"], 16 * MIB, 64 * MIB, true, 22);
}

#[test]
fn no_splice_byte_exact_pipe_stdin() {
    duplex(&["--no-splice"], 64 * MIB, 16 * MIB, false, 24);
    duplex(&["--no-splice"], 16 * MIB, 64 * MIB, false, 26);
}

/// Large transfer: 1 GiB from a file on connect's stdin to listen's stdout,
/// a FIFO (so the default run takes the splice path) hashed as it is read,
/// then the same through `--no-splice`. Each run takes a few seconds; the
/// harness bound (60 s a wait) leaves a wide margin.
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
    for (i, extra) in PATHS.iter().enumerate() {
        let out = fifo(dir.path(), &format!("out{i}"));
        let hashed = hash_fifo(out.clone());
        let started = Instant::now();
        let (server, port) = listen(V4, extra, Input::Null, Output::File(out));
        let client = connect(extra, port, Input::File(big.clone()), Output::Capture);
        let (c, s) = (client.finish(), server.finish());
        c.expect_code(0);
        s.expect_code(0);
        let (len, got) = hashed
            .recv_timeout(LONG)
            .unwrap_or_else(|_| panic!("{extra:?}: the stdout FIFO never reached EOF"));
        assert_eq!(len, 1 << 30, "{extra:?}: length\n{}", s.dump());
        assert_eq!(got, want, "{extra:?}: 1 GiB differs");
        assert!(c.stdout.is_empty(), "{}", c.dump());
        eprintln!("1 GiB {extra:?}: {:?}", started.elapsed());
    }
}

// ---------------------------------------------------------------- half-close, idle

/// Request, EOF, reply: the server's stdout (a pipe) gets the request and
/// its EOF while the server still runs; the reply reaches the client.
#[test]
fn half_close_on_the_splice_path() {
    let dir = tempfile::tempdir().unwrap();
    for (i, extra) in PATHS.iter().enumerate() {
        let out = fifo(dir.path(), &format!("out{i}"));
        let request = b"GET /status HTTP/1.0\r\n\r\n".to_vec();
        let reply = random_bytes(3 * MIB + 17, 30 + i as u64);
        let got = read_fifo(out.clone());
        let (mut server, port) = listen(V4, extra, Input::Pipe, Output::File(out));
        let client = connect(extra, port, Input::Bytes(request.clone()), Output::Capture);

        let seen = got
            .recv_timeout(LONG)
            .unwrap_or_else(|_| panic!("{extra:?}: server stdout never reached EOF"));
        assert_eq!(seen, request, "{extra:?}: request on the server's stdout");
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "{extra:?}: the server ended before its stdin did\n{}",
            server.stderr_now()
        );

        let mut stdin = server.stdin.take().unwrap();
        stdin.write_all(&reply).unwrap();
        drop(stdin);
        let (c, s) = (client.finish(), server.finish());
        c.expect_code(0);
        s.expect_code(0);
        assert_eq!(c.stdout.len(), reply.len(), "{extra:?}\n{}", c.dump());
        assert_eq!(
            sha256(&c.stdout),
            sha256(&reply),
            "{extra:?}: reply differs"
        );
    }
}

/// `--idle-timeout 1s` with stdout a pipe and a silent peer: exit 4, on
/// either side.
#[test]
fn idle_timeout_on_the_splice_path() {
    for extra in PATHS {
        let mut args = vec!["--idle-timeout", "1s"];
        args.extend_from_slice(extra);

        // The listener times out.
        let (server, port) = listen(V4, &args, Input::Pipe, Output::Capture);
        let mut client = connect(extra, port, Input::Pipe, Output::Capture);
        let started = Instant::now();
        let s = server.finish();
        let took = started.elapsed();
        s.expect_code(4);
        assert!(s.stdout.is_empty(), "{}", s.dump());
        assert!(s.stderr.contains("idle"), "{}", s.dump());
        assert!(took < Duration::from_secs(30), "{extra:?}: took {took:?}");
        drop(client.stdin.take());
        let c = client.finish();
        assert!(c.stdout.is_empty(), "{}", c.dump());

        // The client times out.
        let (mut server, port) = listen(V4, extra, Input::Pipe, Output::Capture);
        let client = connect(&args, port, Input::Pipe, Output::Capture);
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
    for (i, extra) in PATHS.iter().enumerate() {
        let out = fifo(dir.path(), &format!("out{i}"));
        let (tx, rx) = mpsc::channel();
        let reader = {
            let out = out.clone();
            thread::spawn(move || {
                let mut f = std::fs::File::open(&out).unwrap();
                let mut first = [0u8; 10];
                f.read_exact(&mut first).unwrap();
                let _ = tx.send(first);
                // Dropping `f` closes the only read end.
            })
        };
        let (server, port) = listen(V4, extra, Input::File(src.clone()), Output::Null);
        let mut client = connect(extra, port, Input::Pipe, Output::File(out));
        let first = rx
            .recv_timeout(LONG)
            .unwrap_or_else(|_| panic!("{extra:?}: no 10 bytes on stdout"));
        reader.join().unwrap();
        assert_eq!(&first[..], &data[..10], "{extra:?}");
        let c = client.finish_within(LONG);
        c.expect_code(0);
        assert_eq!(c.stderr, "", "{extra:?}: stderr not empty\n{}", c.dump());
        // The server sees its peer go away; only its exit is required.
        let _ = server.finish();
    }
}

// ---------------------------------------------------------------- retry

/// A listener that appears on `port` after `delay` (SO_REUSEADDR, so a
/// TIME-WAIT left by a probe does not stop it), accepts one client, sends
/// "ready\n" and closes.
fn late_listener(port: u16, delay: Duration) -> JoinHandle<()> {
    thread::spawn(move || {
        // The condition under test: nothing listens during this second.
        thread::sleep(delay);
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        sock.set_reuse_address(true).unwrap();
        let addr: SocketAddr = (std::net::Ipv4Addr::LOCALHOST, port).into();
        sock.bind(&addr.into())
            .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        sock.listen(8).unwrap();
        let listener: TcpListener = sock.into();
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + LONG;
        let (mut conn, _) = loop {
            match listener.accept() {
                Ok(c) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "nobody connected to {addr}");
                    thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        conn.set_nonblocking(false).unwrap();
        conn.write_all(b"ready\n").unwrap();
    })
}

#[test]
fn retry_reaches_a_listener_that_starts_late() {
    let port = closed_port(V4);
    let server = late_listener(port, Duration::from_secs(1));
    let c = connect(
        &["--retry", "20", "--retry-delay", "100ms"],
        port,
        Input::Null,
        Output::Capture,
    )
    .finish();
    c.expect_code(0);
    assert_eq!(c.stdout, b"ready\n", "{}", c.dump());
    server.join().unwrap();
}

/// Never open: 21 attempts with delays 0.1, 0.2, 0.4, 0.8, then 1.0 s
/// (capped at ten times the first) = about 17.5 s; exit 3; -v logs each
/// failed attempt but the last.
#[test]
fn retry_gives_up_on_a_port_that_never_opens() {
    let port = closed_port(V4);
    let started = Instant::now();
    let c = spawn(
        &[
            "-v",
            "connect",
            "--retry",
            "20",
            "--retry-delay",
            "100ms",
            V4,
            &port.to_string(),
        ],
        Input::Null,
        Output::Capture,
    )
    .finish();
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

/// `--retry-until 2s` bounds a long retry budget.
#[test]
fn retry_until_bounds_the_retries() {
    let port = closed_port(V4);
    let started = Instant::now();
    let c = connect(
        &[
            "--retry",
            "50",
            "--retry-delay",
            "100ms",
            "--retry-until",
            "2s",
        ],
        port,
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
    let port = closed_port(V4);
    let server = spawn(
        &["listen", "--progress", V4, &port.to_string()],
        Input::File(down_file),
        Output::Capture,
    );
    let client = connect(
        &["--progress", "--retry", "100", "--retry-delay", "50ms"],
        port,
        Input::File(up_file),
        Output::Capture,
    );
    let (c, s) = (client.finish(), server.finish());
    c.expect_code(0);
    s.expect_code(0);
    assert_eq!(c.stderr, "", "client stderr\n{}", c.dump());
    assert_eq!(s.stderr, "", "server stderr\n{}", s.dump());
    assert_eq!(sha256(&s.stdout), sha256(&up), "client to server differs");
    assert_eq!(sha256(&c.stdout), sha256(&down), "server to client differs");
}

/// A peer that reads slowly (a pause after every 64 KiB), so the session
/// lasts over a second and the bar ticks (every 200 ms) several times;
/// then it sends `reply` and closes. Delivers the sha256 of what it read.
fn slow_reader(reply: Vec<u8>) -> (u16, JoinHandle<(usize, String)>) {
    let l = TcpListener::bind((V4, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        let (mut conn, _) = l.accept().unwrap();
        conn.set_read_timeout(Some(LONG)).unwrap();
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
    let (port, peer) = slow_reader(reply.clone());
    let cmd = format!(
        "'{}' connect --progress {V4} {port} < '{}' > '{}'",
        bin(),
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
    assert_eq!(len, up.len(), "bytes the peer read");
    assert_eq!(got, sha256(&up), "client to peer differs");
    let out = std::fs::read(&out_file).unwrap();
    assert_eq!(out.len(), reply.len(), "stdout file length");
    assert_eq!(sha256(&out), sha256(&reply), "stdout file differs");
    let pty = String::from_utf8_lossy(&f.stdout);
    assert!(
        pty.contains("sent") && pty.contains("B/s"),
        "no progress bar on the terminal:\n{pty:?}"
    );
}
