#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly
//! The test harness: runs the built `sonda` binary against real sockets.
//!
//! - [`spawn`] runs sonda with stdin from [`Input`] (bytes fed from a
//!   thread, a pipe the test keeps, a file) and stdout to [`Output`]
//!   (captured, a file, or a pipe the test reads itself through
//!   [`StdoutPipe`], every read bounded); stderr is always collected.
//! - [`loopbacks`] is the one table of transports a test runs over:
//!   [`Loop::V4`] and [`Loop::V6`] (skipped, with a message, on a host
//!   without `::1`). It gives sonda's operands and the std sockets of the
//!   test's own end.
//! - Every wait is bounded and polls for readiness (a line on stderr, a
//!   port in the socket table, a readable pipe); nothing sleeps for a fixed
//!   time to "let things settle". A failure dumps the command, its status,
//!   stdout and stderr.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
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

// ---------------------------------------------------------------- running sonda

/// What the child reads on stdin.
pub enum Input {
    /// These bytes, written from a thread, then EOF.
    Bytes(Vec<u8>),
    /// Immediate EOF.
    Null,
    /// A pipe the test keeps (`Running::stdin`).
    Pipe,
    /// A file, opened as stdin (a regular file, not a pipe).
    File(PathBuf),
}

/// Where the child's stdout goes.
pub enum Output {
    /// A pipe read to EOF by a thread: `Finished::stdout`.
    Capture,
    Null,
    File(PathBuf),
    /// A pipe the test reads itself, at its own pace and each read bounded
    /// ([`Running::stdout_pipe`]); not in `Finished::stdout`.
    Pipe,
    /// A pipe whose read end is already closed: every write is EPIPE.
    Closed,
}

#[derive(Default)]
struct Lines {
    text: Mutex<String>,
    grew: Condvar,
}

impl Lines {
    fn now(&self) -> String {
        self.text.lock().unwrap().clone()
    }
}

pub struct Running {
    pub desc: String,
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    /// With `Output::Pipe`, until [`Running::stdout_pipe`] takes it.
    pub stdout: Option<ChildStdout>,
    stdout_mode: &'static str,
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
    /// How stdout was taken, for the dump ("captured", "read by the test", ...).
    stdout_mode: &'static str,
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

    /// Command, status, stdout (its size and first bytes) and stderr.
    pub fn dump(&self) -> String {
        format!(
            "command: {}\nstatus: {:?}\n{}stderr:\n{}",
            self.desc,
            self.status,
            stdout_summary(self.stdout_mode, &self.stdout),
            self.stderr
        )
    }
}

/// `stdout: N bytes (captured)` and, when there are any, the first of them
/// escaped.
fn stdout_summary(mode: &str, stdout: &[u8]) -> String {
    const SHOWN: usize = 512;
    let mut s = format!("stdout: {} bytes ({mode})\n", stdout.len());
    if !stdout.is_empty() {
        let head = &stdout[..stdout.len().min(SHOWN)];
        let more = if stdout.len() > SHOWN { "..." } else { "" };
        s.push_str(&format!(
            "stdout starts: \"{}\"{more}\n",
            head.escape_ascii()
        ));
    }
    s
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
    let stdout_mode = match output {
        Output::Capture => "captured",
        Output::Pipe => "a pipe read by the test",
        Output::Null => "to /dev/null",
        Output::File(_) => "to a file",
        Output::Closed => "a closed pipe",
    };
    let capture = matches!(output, Output::Capture);
    match output {
        Output::Capture | Output::Pipe => cmd.stdout(Stdio::piped()),
        Output::Null => cmd.stdout(Stdio::null()),
        Output::File(p) => cmd.stdout(std::fs::File::create(p).expect("create stdout file")),
        Output::Closed => {
            // O_CLOEXEC: a child spawned meanwhile by another test thread
            // must not inherit the read end (and keep the pipe open).
            let (read_end, write_end) =
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2");
            drop(read_end);
            cmd.stdout(Stdio::from(write_end))
        }
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
        stdout_mode,
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
        self.stderr.now()
    }

    /// True while the child has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The command, whether it still runs, and its stderr so far.
    pub fn dump(&mut self) -> String {
        let status = match self.child.try_wait() {
            Ok(Some(s)) => format!("{s:?}"),
            _ => "still running".to_string(),
        };
        format!(
            "command: {}\nstatus: {status}\nstdout: {}\nstderr:\n{}",
            self.desc,
            self.stdout_mode,
            self.stderr_now()
        )
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
                drop(text);
                let dump = self.dump();
                let _ = self.child.kill();
                panic!("no '{needle}' on stderr within {LONG:?}\n{dump}");
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
                    "exited ({status:?}) before printing '{needle}'\ncommand: {}\nstdout: {}\nstderr:\n{}",
                    self.desc, self.stdout_mode, *text
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
                    let dump = self.dump();
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("did not exit within {limit:?}\n{dump}");
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
            stdout_mode: self.stdout_mode,
        }
    }

    /// With `Output::Pipe`: the read end of the child's stdout, for the test
    /// to read at its own pace (what it does not read stays in the pipe and
    /// holds the child back, as a slow reader would). Dropping it closes the
    /// pipe, as `| head -c N` does.
    pub fn stdout_pipe(&mut self) -> StdoutPipe {
        StdoutPipe {
            out: self.stdout.take().expect("Output::Pipe"),
            pending: Vec::new(),
            buf: vec![0; 256 * 1024],
            read: 0,
            desc: self.desc.clone(),
            stderr: self.stderr.clone(),
        }
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

/// The read end of a child's stdout pipe (`Output::Pipe`), read by the test
/// itself: nothing is read ahead, so the child sees exactly the reader the
/// test is (lock-step, slow, or gone). Every read waits at most the limit
/// it is given (poll(2) before read(2)) and panics with the command and its
/// stderr when nothing comes.
pub struct StdoutPipe {
    out: ChildStdout,
    /// Read from the pipe, not yet handed out (a line's tail).
    pending: Vec<u8>,
    /// What one read(2) reads into (allocated once: reads are many).
    buf: Vec<u8>,
    /// Bytes read from the pipe so far.
    read: u64,
    desc: String,
    stderr: Arc<Lines>,
}

impl StdoutPipe {
    fn fail(&self, what: String) -> ! {
        panic!(
            "{what}\ncommand: {}\nstdout: {} bytes read by the test, {} pending: \"{}\"\nstderr:\n{}",
            self.desc,
            self.read,
            self.pending.len(),
            self.pending[..self.pending.len().min(512)].escape_ascii(),
            self.stderr.now()
        )
    }

    /// One read(2) of at most `max` bytes into `pending`, once the pipe is
    /// readable (data, or EOF: 0) before `deadline`; `what` names the wait.
    fn fill(&mut self, max: usize, deadline: Instant, what: &str) -> usize {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.fail(format!("no {what} on stdout"));
            }
            // Slices of at most a second, so a deadline is never overslept.
            let slice = PollTimeout::from(left.as_millis().clamp(1, 1000) as u16);
            let mut fds = [PollFd::new(self.out.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, slice) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => break,
                Err(e) => self.fail(format!("poll stdout: {e}")),
            }
        }
        let want = max.clamp(1, self.buf.len());
        let n = loop {
            match self.out.read(&mut self.buf[..want]) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => self.fail(format!("read stdout: {e}")),
            }
        };
        self.pending.extend_from_slice(&self.buf[..n]);
        self.read += n as u64;
        n
    }

    /// What one read gives within `limit` (at most `max` bytes); empty at
    /// EOF.
    pub fn read_within(&mut self, max: usize, limit: Duration) -> Vec<u8> {
        if self.pending.is_empty() {
            self.fill(
                max,
                Instant::now() + limit,
                &format!("bytes within {limit:?}"),
            );
        }
        self.take(max)
    }

    /// The first `n` (at most) pending bytes.
    fn take(&mut self, n: usize) -> Vec<u8> {
        if n >= self.pending.len() {
            std::mem::take(&mut self.pending)
        } else {
            self.pending.drain(..n).collect()
        }
    }

    /// Exactly `n` bytes within `limit`; panics at an earlier EOF.
    pub fn read_exact_within(&mut self, n: usize, limit: Duration) -> Vec<u8> {
        let deadline = Instant::now() + limit;
        while self.pending.len() < n {
            let want = n - self.pending.len();
            if self.fill(want, deadline, &format!("{n} bytes within {limit:?}")) == 0 {
                self.fail(format!("stdout ended before {n} bytes"));
            }
        }
        self.take(n)
    }

    /// The next line (newline kept) within `limit`; `None` at EOF (a last
    /// line without a newline is returned first).
    pub fn next_line(&mut self, limit: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                return Some(self.take(i + 1));
            }
            if self.fill(4096, deadline, &format!("line within {limit:?}")) == 0 {
                return (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending));
            }
        }
    }

    /// Everything up to EOF, which must come within `limit`.
    pub fn read_to_end_within(&mut self, limit: Duration) -> Vec<u8> {
        let deadline = Instant::now() + limit;
        while self.fill(64 * 1024, deadline, &format!("EOF within {limit:?}")) > 0 {}
        std::mem::take(&mut self.pending)
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

// ---------------------------------------------------------------- data

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
    hex(&Sha256::digest(data))
}

/// Lower-case hex of a digest.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A named pipe at `dir/name`.
pub fn fifo(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .unwrap_or_else(|e| panic!("mkfifo {}: {e}", p.display()));
    p
}

// ---------------------------------------------------------------- tools

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

/// Skips the calling test (with a message) on a host without `::1`.
#[macro_export]
macro_rules! require_ipv6 {
    () => {
        if !$crate::common::have_ipv6() {
            eprintln!("skipped: no IPv6 loopback");
            return;
        }
    };
}

/// `python3 -c SCRIPT ARGS...`.
pub fn python(script: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).args(args);
    cmd
}

/// Starts a helper that holds sockets for the test (a python3 script, a
/// netcat): it prints its port as the first line of stdout once its sockets
/// are in place and holds them until its stdin (a pipe kept here) closes or
/// it is killed (when the returned `Running` drops). Reading that line,
/// bounded, is the readiness wait.
pub fn port_holder(cmd: Command) -> (Running, u16) {
    let mut h = spawn_cmd(cmd, Input::Pipe, Output::Pipe);
    let line = h.stdout_pipe().next_line(LONG).unwrap_or_default();
    let Ok(port) = String::from_utf8_lossy(&line).trim().parse::<u16>() else {
        let _ = h.stdin.take();
        let f = h.finish_within(LONG);
        panic!(
            "the holder did not print its port (got {:?})\n{}",
            line.escape_ascii().to_string(),
            f.dump()
        );
    };
    (h, port)
}

// ---------------------------------------------------------------- loopbacks

/// A loopback transport a test runs over; [`loopbacks`] is the table.
///
/// Each entry says what sonda is given (`listen_args`, `connect_args`) and
/// how the test's own end reaches it (`std_listener`, `std_connect`), so a
/// test written against the table does not name an address. A Unix-socket
/// entry slots in here as `Unix(&'static Path)` (a leaked temp path keeps
/// the enum `Copy`): its operands are the path (the port then unused), and
/// `std_listener`/`std_connect` return a small listener/stream enum over
/// the TCP and Unix types instead of the TCP ones, with the same methods
/// the tests call (read, write, shutdown, set_read_timeout, try_clone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loop {
    /// 127.0.0.1
    V4,
    /// ::1
    V6,
}

/// The loopbacks to run a test over: 127.0.0.1, and ::1 where the machine
/// has it (said on stderr when it has not).
pub fn loopbacks() -> Vec<Loop> {
    let mut v = vec![Loop::V4];
    if have_ipv6() {
        v.push(Loop::V6);
    } else {
        eprintln!("skipped: no IPv6 loopback");
    }
    v
}

/// True when `::1` can be bound (IPv6 loopback exists).
pub fn have_ipv6() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

impl Loop {
    /// The address as sonda takes it for HOST: `127.0.0.1`, `::1`.
    pub fn host(self) -> &'static str {
        match self {
            Loop::V4 => "127.0.0.1",
            Loop::V6 => "::1",
        }
    }

    /// The address as sonda prints it before `:PORT` (brackets around
    /// IPv6): `127.0.0.1`, `[::1]`.
    pub fn shown(self) -> &'static str {
        match self {
            Loop::V4 => "127.0.0.1",
            Loop::V6 => "[::1]",
        }
    }

    /// `HOST:PORT` as sonda takes and prints it: `127.0.0.1:80`, `[::1]:80`.
    pub fn host_port(self, port: u16) -> String {
        format!("{}:{port}", self.shown())
    }

    pub fn addr(self, port: u16) -> SocketAddr {
        match self {
            Loop::V4 => (Ipv4Addr::LOCALHOST, port).into(),
            Loop::V6 => (Ipv6Addr::LOCALHOST, port).into(),
        }
    }

    /// sonda's operands to listen here on `port`; 0 lets the kernel pick
    /// one (printed with `-v`; see [`Running::listening_port`]).
    pub fn listen_args(self, port: u16) -> Vec<String> {
        vec![self.host().to_string(), port.to_string()]
    }

    /// sonda's operands to connect to `port` here.
    pub fn connect_args(self, port: u16) -> Vec<String> {
        vec![self.host().to_string(), port.to_string()]
    }

    /// A std listener of the test's own, on a port the kernel picks.
    pub fn std_listener(self) -> (TcpListener, u16) {
        let l = TcpListener::bind(self.addr(0)).unwrap_or_else(|e| panic!("bind {self:?}: {e}"));
        let port = l.local_addr().unwrap().port();
        (l, port)
    }

    /// A std client to `port` here, with read and write timeouts of [`LONG`].
    pub fn std_connect(self, port: u16) -> TcpStream {
        tcp_client(self.addr(port))
    }

    /// A port here with nothing listening (bound, then released).
    pub fn closed_port(self) -> u16 {
        self.std_listener().1
    }
}

/// `sonda -v listen EXTRA... <lo's operands>`, running, with its port.
pub fn listen_on(lo: Loop, extra: &[&str], input: Input, output: Output) -> (Running, u16) {
    let ops = lo.listen_args(0);
    let mut args = vec!["-v", "listen"];
    args.extend_from_slice(extra);
    args.extend(ops.iter().map(String::as_str));
    let mut l = spawn(&args, input, output);
    let port = l.listening_port();
    (l, port)
}

/// `sonda connect EXTRA... <lo's operands for port>`, running.
pub fn connect_to(lo: Loop, port: u16, extra: &[&str], input: Input, output: Output) -> Running {
    let ops = lo.connect_args(port);
    let mut args = vec!["connect"];
    args.extend_from_slice(extra);
    args.extend(ops.iter().map(String::as_str));
    spawn(&args, input, output)
}

// ---------------------------------------------------------------- sockets

/// A loopback port with nothing listening (bound, then released).
pub fn closed_port(host: &str) -> u16 {
    let l = TcpListener::bind((host, 0)).expect("bind");
    l.local_addr().unwrap().port()
}

/// A UDP port on `host` that nothing holds (bound, then released).
pub fn free_udp_port(host: &str) -> u16 {
    let s = std::net::UdpSocket::bind((host, 0)).expect("bind udp");
    s.local_addr().unwrap().port()
}

/// A TCP client to `addr` (connect bounded), with read and write timeouts
/// of [`LONG`].
pub fn tcp_client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(LONG)).unwrap();
    s.set_write_timeout(Some(LONG)).unwrap();
    s
}

/// Accepts one connection on `l` within `limit` (polling a non-blocking
/// accept); the stream gets read and write timeouts of [`LONG`].
pub fn accept_within(l: &TcpListener, limit: Duration) -> TcpStream {
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
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "nothing connected to {:?} within {limit:?}",
                    l.local_addr()
                );
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// A connection to `addr` that the listener must close at once, unread:
/// `data` is sent (it may already be refused) and the read ends with EOF or
/// a reset within 10 s.
pub fn expect_closed_unread(addr: SocketAddr, data: &[u8]) {
    let mut s = tcp_client(addr);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(data);
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Ok(n) => panic!("{addr}: a closed connection delivered {n} bytes"),
            Err(e) => panic!("{addr}: not closed after {:?}: {e}", started.elapsed()),
        }
    }
}

/// Polls (bounded by `limit`) until `done` holds; panics with `what()`.
pub fn poll_until(limit: Duration, mut done: impl FnMut() -> bool, what: impl Fn() -> String) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {}",
            what()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Polls (bounded) the kernel's socket table until a TCP socket listens on
/// `port` of `lo`. Connecting to find out would use up the one connection
/// a `nc -l` accepts.
pub fn wait_tcp_listen(lo: Loop, port: u16) {
    let (table, local) = match lo {
        Loop::V4 => ("/proc/net/tcp", format!("0100007F:{port:04X}")),
        Loop::V6 => (
            "/proc/net/tcp6",
            format!("00000000000000000000000001000000:{port:04X}"),
        ),
    };
    poll_until(
        LONG,
        || {
            std::fs::read_to_string(table)
                .unwrap()
                .lines()
                .skip(1)
                .any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() > 3 && f[1] == local && f[3] == "0A"
                })
        },
        || format!("nothing listens on {}", lo.host_port(port)),
    );
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

// ---------------------------------------------------------------- servers and their logs

/// Starts `sonda -v bench --server HOST 0 [extra]` and returns it with its port.
pub fn bench_server(host: &str, extra: &[&str]) -> (Running, u16) {
    let mut cmd = Command::new(bin());
    cmd.args(["-v", "bench", "--server", host, "0"]).args(extra);
    bench_server_cmd(cmd)
}

/// Starts `cmd`, a `sonda -v bench --server ...` however it is wrapped
/// (`ip netns exec NS sonda ...`), and returns it with the port it printed.
pub fn bench_server_cmd(cmd: Command) -> (Running, u16) {
    let mut s = spawn_cmd(cmd, Input::Null, Output::Null);
    s.wait_for_stderr("bench server listening on ");
    let port = s.listening_port();
    assert_ne!(port, 0, "the server printed port 0\n{}", s.dump());
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
