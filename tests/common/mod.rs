#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly
//! The test harness: runs the built `sonda` binary against real sockets.
//!
//! Every wait is bounded and polls for readiness (a line on stderr, a port
//! that answers); nothing sleeps for a fixed time to "let things settle". A
//! failure dumps the command, its status, stderr and the size of stdout.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The bound on any single wait in these tests.
pub const LONG: Duration = Duration::from_secs(60);

/// The binary under test: this build's, or `SONDA_TEST_BIN` (to check that a
/// regression test fails against an older build).
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("SONDA_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_sonda").to_string())
    })
}

/// What the child reads on stdin.
pub enum Input {
    /// These bytes, written from a thread, then EOF.
    Bytes(Vec<u8>),
    /// Immediate EOF.
    Null,
    /// A pipe the test keeps (`Running::stdin`).
    Pipe,
    /// A file, opened as stdin (a regular file, not a pipe).
    File(std::path::PathBuf),
}

/// Where the child's stdout goes.
pub enum Output {
    Capture,
    Null,
    File(std::path::PathBuf),
    /// A pipe the test reads itself (`Running::stdout`, or `lines`).
    Pipe,
}

#[derive(Default)]
struct Lines {
    text: Mutex<String>,
    grew: Condvar,
}

pub struct Running {
    pub desc: String,
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    /// With `Output::Pipe`: the child's stdout, for the test to read.
    pub stdout: Option<ChildStdout>,
    stderr: Arc<Lines>,
    stderr_reader: Option<JoinHandle<()>>,
    stdout_reader: Option<JoinHandle<Vec<u8>>>,
    feeder: Option<JoinHandle<()>>,
}

pub struct Finished {
    pub desc: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics with a dump unless the exit status is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "unexpected status\n{}",
            self.dump()
        );
        self
    }

    pub fn dump(&self) -> String {
        format!(
            "command: {}\nstatus: {:?}\nstdout: {} bytes\nstderr:\n{}",
            self.desc,
            self.status,
            self.stdout.len(),
            self.stderr
        )
    }
}

pub fn spawn(args: &[&str], input: Input, output: Output) -> Running {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    spawn_cmd(cmd, input, output)
}

pub fn spawn_cmd(mut cmd: Command, input: Input, output: Output) -> Running {
    let desc = format!("{cmd:?}");
    let mut bytes = None;
    match input {
        Input::Bytes(b) => {
            cmd.stdin(Stdio::piped());
            bytes = Some(b);
        }
        Input::Null => {
            cmd.stdin(Stdio::null());
        }
        Input::Pipe => {
            cmd.stdin(Stdio::piped());
        }
        Input::File(p) => {
            cmd.stdin(std::fs::File::open(&p).expect("open stdin file"));
        }
    }
    let capture = matches!(output, Output::Capture);
    match output {
        Output::Capture | Output::Pipe => cmd.stdout(Stdio::piped()),
        Output::Null => cmd.stdout(Stdio::null()),
        Output::File(p) => cmd.stdout(std::fs::File::create(p).expect("create stdout file")),
    };
    cmd.stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
    let mut stdin = child.stdin.take();
    let stdout = if capture { None } else { child.stdout.take() };
    let feeder = bytes.map(|b| {
        let mut pipe = stdin.take().expect("stdin pipe");
        thread::spawn(move || {
            // The child may legitimately stop reading; EPIPE is not a test failure.
            let _ = pipe.write_all(&b);
        })
    });
    let stdout_reader = if capture {
        let mut out = child.stdout.take().expect("stdout pipe");
        Some(thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            buf
        }))
    } else {
        None
    };
    let lines = Arc::new(Lines::default());
    let mut err = child.stderr.take().expect("stderr pipe");
    let sink = lines.clone();
    let stderr_reader = thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match err.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut t = sink.text.lock().unwrap();
                    t.push_str(&String::from_utf8_lossy(&buf[..n]));
                    sink.grew.notify_all();
                }
            }
        }
    });
    Running {
        desc,
        child,
        stdin,
        stdout,
        stderr: lines,
        stderr_reader: Some(stderr_reader),
        stdout_reader,
        feeder,
    }
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr_now(&self) -> String {
        self.stderr.text.lock().unwrap().clone()
    }

    /// Waits (bounded) for a stderr line containing `needle`; returns it.
    pub fn wait_for_stderr(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + LONG;
        let mut text = self.stderr.text.lock().unwrap();
        loop {
            if let Some(line) = complete_lines(&text).find(|l| l.contains(needle)) {
                return line.to_string();
            }
            let now = Instant::now();
            if now >= deadline {
                let dump = text.clone();
                drop(text);
                let _ = self.child.kill();
                panic!("no '{needle}' on stderr of {}\nstderr:\n{dump}", self.desc);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader collect what is left, then look once more.
                drop(text);
                if let Some(r) = self.stderr_reader.take() {
                    let _ = r.join();
                }
                text = self.stderr.text.lock().unwrap();
                if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                    return line.to_string();
                }
                panic!(
                    "{} exited ({status:?}) before printing '{needle}'\nstderr:\n{}",
                    self.desc, *text
                );
            }
            text = self
                .stderr
                .grew
                .wait_timeout(text, Duration::from_millis(50))
                .unwrap()
                .0;
        }
    }

    /// The port of a `sonda -v listen ... 0`, from its `listening on` line.
    pub fn listening_port(&mut self) -> u16 {
        let line = self.wait_for_stderr("listening on ");
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("bad line {line}"));
        let port = addr.rsplit(':').next().unwrap();
        port.parse()
            .unwrap_or_else(|_| panic!("bad port in {line}"))
    }

    /// Waits (bounded) for the exit, then collects everything.
    pub fn finish(mut self) -> Finished {
        self.finish_within(LONG)
    }

    pub fn finish_within(&mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let status = loop {
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
        drop(self.stdin.take());
        if let Some(f) = self.feeder.take() {
            let _ = f.join();
        }
        let stdout = self
            .stdout_reader
            .take()
            .map(|r| r.join().unwrap_or_default())
            .unwrap_or_default();
        if let Some(r) = self.stderr_reader.take() {
            let _ = r.join();
        }
        Finished {
            desc: self.desc.clone(),
            status,
            stdout,
            stderr: self.stderr_now(),
        }
    }

    /// With `Output::Pipe`: the child's stdout as lines (newline kept),
    /// read by a thread as they come, for `next_line` to wait on.
    pub fn lines(&mut self) -> LineReader {
        LineReader::new(self.stdout.take().expect("Output::Pipe"))
    }

    /// Sends a signal to the child.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Asserts no panic or backtrace hint reached the user's stderr.
pub fn assert_no_panic(f: &Finished) {
    assert!(
        !f.stderr.contains("panicked") && !f.stderr.contains("RUST_BACKTRACE"),
        "a panic reached the user\n{}",
        f.dump()
    );
}

/// Asserts stderr is exactly one `sonda: ` line (and no panic) and returns
/// it.
pub fn one_line(f: &Finished) -> String {
    let lines: Vec<&str> = f.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one stderr line\n{}",
        f.dump()
    );
    assert!(
        lines[0].starts_with("sonda: "),
        "error line without 'sonda: '\n{}",
        f.dump()
    );
    assert_no_panic(f);
    lines[0].to_string()
}

/// Runs sonda with `args` and asserts a usage error: exit 2 within 10 s,
/// one `sonda:` line that quotes `bad`, nothing on stdout, no panic.
pub fn usage_error(args: &[&str], bad: &str) {
    let f = spawn(args, Input::Null, Output::Capture).finish_within(Duration::from_secs(10));
    f.expect_code(2);
    let line = one_line(&f);
    let named = ["'", "\"", "`"]
        .iter()
        .any(|q| line.contains(&format!("{q}{bad}{q}")));
    assert!(
        named,
        "the message does not name the bad value '{bad}'\n{}",
        f.dump()
    );
    assert!(f.stdout.is_empty(), "stdout not empty\n{}", f.dump());
}

/// Runs sonda to completion with `input` and captured stdout.
pub fn run(args: &[&str], input: Input) -> Finished {
    spawn(args, input, Output::Capture).finish()
}

/// Starts `sonda -v listen <extra...> HOST 0` and returns it with its port.
pub fn listen(host: &str, extra: &[&str], input: Input, output: Output) -> (Running, u16) {
    let mut args = vec!["-v", "listen"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[host, "0"]);
    let mut l = spawn(&args, input, output);
    let port = l.listening_port();
    (l, port)
}

/// The lines of `text` that have their newline (a line still being written
/// is not matched).
fn complete_lines(text: &str) -> impl Iterator<Item = &str> {
    let end = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
    text[..end].lines()
}

/// Deterministic pseudo-random bytes (xorshift64*), distinct per seed.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_file(path: &Path) -> String {
    sha256(&std::fs::read(path).expect("read file"))
}

/// A loopback port with nothing listening (bound, then released).
pub fn closed_port(host: &str) -> u16 {
    let l = TcpListener::bind((host, 0)).expect("bind");
    l.local_addr().unwrap().port()
}

/// True when `program` is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Skips the calling test (with a message) when `program` is missing.
#[macro_export]
macro_rules! require {
    ($program:expr) => {
        if !$crate::common::have($program) {
            eprintln!("skipped: {} is not installed", $program);
            return;
        }
    };
}

/// True when `::1` can be bound (IPv6 loopback exists).
pub fn have_ipv6() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// The loopback hosts to run a test over: 127.0.0.1, and ::1 where the
/// machine has it (said once per call when it has not).
pub fn loopbacks() -> Vec<&'static str> {
    let mut v = vec!["127.0.0.1"];
    if have_ipv6() {
        v.push("::1");
    } else {
        eprintln!("note: no IPv6 loopback, ::1 cases skipped");
    }
    v
}

/// Polls (bounded) until something accepts TCP connections on `addr`.
pub fn wait_port(addr: SocketAddr) {
    let deadline = Instant::now() + LONG;
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// VmHWM (peak resident set) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Lines of a stream, each delivered as soon as its newline arrives.
pub struct LineReader {
    rx: mpsc::Receiver<Vec<u8>>,
}

impl LineReader {
    pub fn new(mut r: impl Read + Send + 'static) -> LineReader {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut pending = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                }
                while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=i).collect();
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            }
            if !pending.is_empty() {
                let _ = tx.send(pending);
            }
        });
        LineReader { rx }
    }

    /// The next line within `limit`; `None` at EOF. Panics when none comes.
    pub fn next_line(&self, limit: Duration) -> Option<Vec<u8>> {
        match self.rx.recv_timeout(limit) {
            Ok(line) => Some(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("no line within {limit:?}"),
        }
    }
}

/// Accepts one connection on `l` within `limit` (polling a non-blocking
/// accept); the stream gets read and write timeouts of [`LONG`].
pub fn accept_within(l: &TcpListener, limit: Duration) -> std::net::TcpStream {
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + limit;
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(LONG)).unwrap();
                s.set_write_timeout(Some(LONG)).unwrap();
                return s;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "nothing connected within {limit:?}"
                );
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Starts `sonda -v bench --server HOST 0 [extra]` and returns it with its port.
pub fn bench_server(host: &str, extra: &[&str]) -> (Running, u16) {
    let mut args = vec!["-v", "bench", "--server", host, "0"];
    args.extend_from_slice(extra);
    let mut s = spawn(&args, Input::Null, Output::Null);
    s.wait_for_stderr("bench server listening on ");
    let port = s.listening_port();
    assert_ne!(port, 0, "the server printed port 0\n{}", s.stderr_now());
    (s, port)
}

/// A `-v` listener's line announcing a client.
pub fn is_admitted_line(line: &str) -> bool {
    line.starts_with("sonda: connection from ") && !line.contains(" closed: ")
}

/// A `-v` listener's line saying a client is done.
pub fn is_closed_line(line: &str) -> bool {
    line.starts_with("sonda: connection from ") && line.contains(" closed: ")
}

/// Polls (bounded) until `n` stderr lines of `l` satisfy `pred`.
pub fn wait_lines(l: &mut Running, what: &str, n: usize, pred: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + LONG;
    loop {
        let text = l.stderr_now();
        let count = text.lines().filter(|line| pred(line)).count();
        if count >= n {
            return;
        }
        if let Ok(Some(status)) = l.child.try_wait() {
            panic!(
                "{} exited ({status:?}) with {count} of {n} {what} lines\nstderr (tail):\n{}",
                l.desc,
                tail(&l.stderr_now(), 40)
            );
        }
        if Instant::now() >= deadline {
            let _ = l.child.kill();
            panic!(
                "only {count} of {n} {what} lines on stderr of {}\nstderr (tail):\n{}",
                l.desc,
                tail(&text, 40)
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The last `n` lines of `text` (a thousand-client stderr is long).
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A socket path in a fresh temporary directory (kept alive by the guard).
pub fn sock_path(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

/// A path as an argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Polls (bounded) until `path` no longer exists.
pub fn wait_gone(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while path.exists() {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
    true
}
