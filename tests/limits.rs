//! Idle timeouts, bounded memory with a slow reader, half-close behaviour
//! and the direction flags (`--exit-on-eof`, `--recv-only`, `--send-only`,
//! `--no-shutdown`).

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
use common::*;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;

/// A sonda whose stdin and stdout pipes the test drives itself (the harness
/// reads stdout eagerly); stderr is collected in the background.
struct Raw {
    desc: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<thread::JoinHandle<()>>,
}

fn raw(args: &[&str], stdin: Stdio) -> Raw {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let desc = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let mut err = child.stderr.take().expect("stderr pipe");
    let stderr = Arc::new(Mutex::new(String::new()));
    let sink = stderr.clone();
    let stderr_reader = thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    Raw {
        desc,
        child,
        stdin,
        stdout,
        stderr,
        stderr_reader: Some(stderr_reader),
    }
}

impl Raw {
    fn stderr_now(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn wait_for_stderr(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + LONG;
        loop {
            if let Some(line) = self.stderr_now().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status:?}) before printing '{needle}'\nstderr:\n{}",
                    self.desc,
                    self.stderr_now()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no '{needle}' on stderr of {}\nstderr:\n{}",
                self.desc,
                self.stderr_now()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn listening_port(&mut self) -> u16 {
        let line = self.wait_for_stderr("listening on ");
        line.split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|addr| addr.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("bad line {line}"))
    }

    /// Waits (bounded by `limit`) for the exit; stdout is not collected.
    fn finish_within(&mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let status: ExitStatus = loop {
            match self.child.try_wait().expect("try_wait") {
                Some(s) => break s,
                None if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "{} did not exit within {limit:?}\nstderr:\n{}",
                        self.desc,
                        self.stderr_now()
                    );
                }
                None => thread::sleep(Duration::from_millis(5)),
            }
        };
        if let Some(r) = self.stderr_reader.take() {
            let _ = r.join();
        }
        Finished {
            desc: self.desc.clone(),
            status,
            stdout: Vec::new(),
            stderr: self.stderr_now(),
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn loopback_listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().unwrap().port().to_string();
    (l, port)
}

fn connect_port(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(LONG)).unwrap();
    s.set_write_timeout(Some(LONG)).unwrap();
    s
}

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
    let (server, port) = loopback_listener();
    let started = Instant::now();
    let mut c = spawn(
        &["connect", "--idle-timeout", "1s", "127.0.0.1", &port],
        Input::Pipe,
        Output::Capture,
    );
    let _held = accept_within(&server, LONG);
    let f = c.finish_within(Duration::from_secs(10));
    assert_idle_exit(&f, started.elapsed());
}

#[test]
fn listen_idle_timeout_ends_a_silent_session_with_4() {
    let (mut l, port) = listen(
        "127.0.0.1",
        &["--idle-timeout", "1s"],
        Input::Pipe,
        Output::Capture,
    );
    let started = Instant::now();
    let _held = connect_port(port);
    l.wait_for_stderr("connection from");
    let f = l.finish_within(Duration::from_secs(10));
    assert_idle_exit(&f, started.elapsed());
}

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

    let mut l = raw(&["-v", "listen", "127.0.0.1", "0"], Stdio::null());
    let port = l.listening_port().to_string();
    let c = spawn(
        &["connect", "127.0.0.1", &port],
        Input::File(path.clone()),
        Output::Capture,
    );
    let mut out = l.stdout.take().expect("stdout pipe");
    let mut hasher = Sha256::new();
    let mut total = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let mut peak = (0u64, 0u64);
    let slow_until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < slow_until {
        let n = out.read(&mut buf).expect("read listener stdout");
        assert!(n > 0, "stdout ended early\nstderr:\n{}", l.stderr_now());
        hasher.update(&buf[..n]);
        total += n;
        let (lk, ck) = (
            peak_rss_kib(l.child.id()).expect("listener VmHWM"),
            peak_rss_kib(c.pid()).expect("connect VmHWM"),
        );
        peak = (peak.0.max(lk), peak.1.max(ck));
        // Pacing a slow reader, not waiting for readiness.
        thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "slow phase: read {total} bytes; VmHWM listener {} KiB, connect {} KiB",
        peak.0, peak.1
    );
    assert!(
        total < SIZE / 2,
        "the slow phase read {total} bytes: the reader was not slow"
    );
    assert!(
        peak.0 < LIMIT_KIB,
        "listener VmHWM {} KiB during a slow read\nstderr:\n{}",
        peak.0,
        l.stderr_now()
    );
    assert!(
        peak.1 < LIMIT_KIB,
        "connect VmHWM {} KiB during a slow read\nstderr:\n{}",
        peak.1,
        c.stderr_now()
    );

    let mut big = vec![0u8; 1024 * 1024];
    loop {
        let n = out.read(&mut big).expect("read listener stdout");
        if n == 0 {
            break;
        }
        hasher.update(&big[..n]);
        total += n;
    }
    let lf = l.finish_within(LONG);
    let cf = c.finish();
    lf.expect_code(0);
    cf.expect_code(0);
    assert_eq!(total, SIZE, "{}", lf.dump());
    let got: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(got, want, "{}", lf.dump());
}

/// Reads `stdout` in a thread; the receiver gets everything read once EOF
/// is reached.
fn eof_watcher(mut stdout: ChildStdout) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut got = Vec::new();
        let _ = stdout.read_to_end(&mut got);
        let _ = tx.send(got);
    });
    rx
}

#[test]
fn keeps_sending_a_pipe_after_the_peer_half_closed() {
    let (l, port) = listen("127.0.0.1", &[], Input::Null, Output::Capture);
    let port = port.to_string();
    let mut c = raw(&["connect", "127.0.0.1", &port], Stdio::piped());
    let eof = eof_watcher(c.stdout.take().expect("stdout pipe"));
    let data = random_bytes(MIB, 3);
    let mut stdin = c.stdin.take().expect("stdin pipe");
    stdin.write_all(&data[..MIB / 2]).expect("first half");

    // The listener's stdin is empty: it half-closes at once, and the
    // client's stdout must reach EOF while its stdin is still open.
    let got = eof
        .recv_timeout(LONG)
        .unwrap_or_else(|_| panic!("client stdout never reached EOF\n{}", c.stderr_now()));
    assert!(got.is_empty(), "client received {} bytes", got.len());
    assert!(
        c.child.try_wait().unwrap().is_none(),
        "client ended at socket EOF with its stdin pipe open\n{}",
        c.stderr_now()
    );

    stdin.write_all(&data[MIB / 2..]).expect("second half");
    drop(stdin);
    let cf = c.finish_within(LONG);
    let lf = l.finish();
    cf.expect_code(0);
    lf.expect_code(0);
    assert_eq!(lf.stdout.len(), MIB, "{}", lf.dump());
    assert!(lf.stdout == data, "listener stdout differs\n{}", lf.dump());
}

#[test]
fn exit_on_eof_ends_at_socket_eof_with_stdin_open() {
    let (l, port) = listen("127.0.0.1", &[], Input::Null, Output::Capture);
    let port = port.to_string();
    let mut c = raw(
        &["connect", "--exit-on-eof", "127.0.0.1", &port],
        Stdio::piped(),
    );
    let eof = eof_watcher(c.stdout.take().expect("stdout pipe"));
    // Our end of the client's stdin stays open throughout.
    let stdin = c.stdin.take().expect("stdin pipe");
    let cf = c.finish_within(Duration::from_secs(10));
    cf.expect_code(0);
    let got = eof.recv_timeout(LONG).expect("client stdout EOF");
    assert!(got.is_empty());
    let lf = l.finish();
    lf.expect_code(0);
    drop(stdin);
}

#[test]
fn recv_only_receives_and_sends_nothing() {
    let peer_data = random_bytes(MIB, 5);
    let (l, port) = listen(
        "127.0.0.1",
        &[],
        Input::Bytes(peer_data.clone()),
        Output::Capture,
    );
    let c = run(
        &["connect", "--recv-only", "127.0.0.1", &port.to_string()],
        Input::Bytes(b"must not be sent".to_vec()),
    );
    let lf = l.finish();
    c.expect_code(0);
    lf.expect_code(0);
    assert_eq!(c.stdout.len(), peer_data.len(), "{}", c.dump());
    assert!(c.stdout == peer_data, "client stdout differs\n{}", c.dump());
    assert!(lf.stdout.is_empty(), "--recv-only sent data\n{}", lf.dump());
}

#[test]
fn send_only_sends_stdin_and_prints_nothing() {
    let (server, port) = loopback_listener();
    let data = random_bytes(MIB, 6);
    let mut c = spawn(
        &["connect", "--send-only", "127.0.0.1", &port],
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
            Err(e) => panic!("read from sonda: {e}\n{}", c.stderr_now()),
        }
    }
    let f = c.finish_within(LONG);
    let _ = peer.shutdown(Shutdown::Both);
    writer.join().unwrap();
    f.expect_code(0);
    assert!(f.stdout.is_empty(), "--send-only printed\n{}", f.dump());
    assert_eq!(got.len(), data.len(), "{}", f.dump());
    assert!(got == data, "peer received other bytes\n{}", f.dump());
}

#[test]
fn no_shutdown_keeps_the_write_side_open() {
    let (server, port) = loopback_listener();
    let c = spawn(
        &["connect", "--no-shutdown", "127.0.0.1", &port],
        Input::Null,
        Output::Capture,
    );
    let mut peer = accept_within(&server, LONG);
    peer.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 16];
    match peer.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!(
            "--no-shutdown: expected no EOF within 1s, got {other:?}\nstderr:\n{}",
            c.stderr_now()
        ),
    }
    let data = random_bytes(256 * 1024, 8);
    peer.write_all(&data).unwrap();
    drop(peer);
    let f = c.finish();
    f.expect_code(0);
    assert_eq!(f.stdout.len(), data.len(), "{}", f.dump());
    assert!(f.stdout == data, "{}", f.dump());
}
