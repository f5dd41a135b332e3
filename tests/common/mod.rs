#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly
//! The test harness: runs the built `sonda` binary against real sockets.
//!
//! - [`spawn`] runs sonda with stdin from [`Input`] (bytes fed from a
//!   thread, a pipe the test keeps, a file) and stdout to [`Output`]
//!   (captured, a file, or a pipe the test reads itself through
//!   [`StdoutPipe`], every read bounded); stderr is always collected.
//! - [`Loop`] is the one table of transports a test runs over:
//!   [`loopbacks`] gives [`Loop::V4`] and [`Loop::V6`] (skipped, with a
//!   message, on a host without `::1`), for tests whose subject is IP;
//!   [`stream_loops`] adds [`Loop::Unix`], a Unix socket at a fresh path,
//!   for the relay's promises. An entry gives sonda's operands, the wait
//!   for its listener, and the std sockets of the test's own end.
//! - Every wait is bounded and polls for readiness (a line on stderr, a
//!   port in the socket table, a readable pipe); nothing sleeps for a fixed
//!   time to "let things settle". A failure dumps the command, its status,
//!   stdout and stderr.

#![allow(dead_code)]

pub mod netns;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// A transport a test runs over; [`loopbacks`] and [`stream_loops`] are
/// the tables.
///
/// Each entry says what sonda is given (`listen_args`, `connect_args`) and
/// how the test's own end reaches it (`std_listener`, `std_connect`), so a
/// test written against the table does not name an address. The Unix entry
/// is `Unix(&'static Path)` (a leaked path, so the enum stays `Copy`), a
/// fresh socket path from [`Loop::unix`]: its operands are `-U PATH`, there
/// is no port (the `port` arguments are unused and 0 is returned where the
/// inet entries return the kernel's pick), and `std_listener`/`std_connect`
/// return [`StdListener`]/[`StdStream`], which wrap the TCP and Unix std
/// types with the methods the tests call. A Unix entry is one address:
/// a test that needs a second listener at once asks [`Loop::another`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loop {
    /// 127.0.0.1
    V4,
    /// ::1
    V6,
    /// A Unix stream socket at this path (`sonda ... -U PATH`).
    Unix(&'static Path),
}

/// The IP loopbacks to run a test over: 127.0.0.1, and ::1 where the
/// machine has it (said on stderr when it has not). For tests whose
/// subject is IP: ports, ACLs, families, TCP states and options.
pub fn loopbacks() -> Vec<Loop> {
    let mut v = vec![Loop::V4];
    if have_ipv6() {
        v.push(Loop::V6);
    } else {
        eprintln!("skipped: no IPv6 loopback");
    }
    v
}

/// Every stream transport the relay runs over: the [`loopbacks`], then a
/// Unix socket at a fresh path (a new one on every call).
pub fn stream_loops() -> Vec<Loop> {
    let mut v = loopbacks();
    v.push(Loop::unix());
    v
}

/// True when `::1` can be bound (IPv6 loopback exists).
pub fn have_ipv6() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// This process's directory for Unix socket paths (a fresh temporary
/// directory, removed when the test binary exits).
fn unix_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        extern "C" fn remove_dir() {
            if let Some(d) = DIR.get() {
                let _ = std::fs::remove_dir_all(d.path());
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("sonda-unix-")
            .tempdir()
            .expect("create the Unix socket directory");
        // A static is never dropped: remove the directory at exit instead.
        // SAFETY: registers a plain function with no captured state.
        unsafe {
            libc::atexit(remove_dir);
        }
        dir
    })
    .path()
}

impl Loop {
    /// A Unix entry at a path no other call returns (this process's socket
    /// directory, a counter), so tests running in parallel never share one.
    pub fn unix() -> Loop {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = unix_dir().join(format!("{n}.sock"));
        Loop::Unix(Box::leak(path.into_boxed_path()))
    }

    pub fn is_unix(self) -> bool {
        matches!(self, Loop::Unix(_))
    }

    /// An entry of the same kind for a second listener at the same time:
    /// the inet entries themselves (the port tells listeners apart), a
    /// fresh path for Unix.
    pub fn another(self) -> Loop {
        match self {
            Loop::Unix(_) => Loop::unix(),
            ip => ip,
        }
    }

    /// The socket path of a Unix entry.
    pub fn path(self) -> &'static Path {
        match self {
            Loop::Unix(p) => p,
            ip => panic!("{ip:?} has no socket path"),
        }
    }

    fn path_str(self) -> &'static str {
        self.path().to_str().expect("a UTF-8 socket path")
    }

    /// The address as sonda takes it for HOST: `127.0.0.1`, `::1`.
    pub fn host(self) -> &'static str {
        match self {
            Loop::V4 => "127.0.0.1",
            Loop::V6 => "::1",
            Loop::Unix(_) => panic!("{self:?} has no host"),
        }
    }

    /// The address as sonda prints it before `:PORT` (brackets around
    /// IPv6): `127.0.0.1`, `[::1]`.
    pub fn shown(self) -> &'static str {
        match self {
            Loop::V4 => "127.0.0.1",
            Loop::V6 => "[::1]",
            Loop::Unix(_) => panic!("{self:?} has no host"),
        }
    }

    /// `HOST:PORT` as sonda takes and prints it: `127.0.0.1:80`, `[::1]:80`.
    pub fn host_port(self, port: u16) -> String {
        format!("{}:{port}", self.shown())
    }

    /// The endpoint as sonda names it in its messages (`trying ...`):
    /// `HOST:PORT`, or the socket path.
    pub fn endpoint(self, port: u16) -> String {
        match self {
            Loop::Unix(p) => p.display().to_string(),
            ip => ip.host_port(port),
        }
    }

    pub fn addr(self, port: u16) -> SocketAddr {
        match self {
            Loop::V4 => (Ipv4Addr::LOCALHOST, port).into(),
            Loop::V6 => (Ipv6Addr::LOCALHOST, port).into(),
            Loop::Unix(_) => panic!("{self:?} has no socket address"),
        }
    }

    /// sonda's operands to listen here on `port`; 0 lets the kernel pick
    /// one (printed with `-v`; see [`Loop::listening_port`]). Unix: `-U
    /// PATH`, the port unused.
    pub fn listen_args(self, port: u16) -> Vec<String> {
        match self {
            Loop::Unix(_) => vec!["-U".to_string(), self.path_str().to_string()],
            ip => vec![ip.host().to_string(), port.to_string()],
        }
    }

    /// sonda's operands to connect to `port` here (Unix: `-U PATH`).
    pub fn connect_args(self, port: u16) -> Vec<String> {
        self.listen_args(port)
    }

    /// Waits (bounded) until `l`, a `sonda -v listen` on these operands, is
    /// listening, from its `listening on` line; returns the port it printed
    /// (0 for Unix, which has none: the line must name the path).
    pub fn listening_port(self, l: &mut Running) -> u16 {
        match self {
            Loop::Unix(p) => {
                let line = l.wait_for_stderr("listening on ");
                assert!(
                    line.contains(&p.display().to_string()),
                    "{self:?}: listening elsewhere: {line}\n{}",
                    l.dump()
                );
                0
            }
            _ => l.listening_port(),
        }
    }

    /// A std listener of the test's own, on a port the kernel picks (Unix:
    /// at the path, port 0; the file goes when the listener drops).
    pub fn std_listener(self) -> (StdListener, u16) {
        match self {
            Loop::Unix(p) => {
                let l = UnixListener::bind(p).unwrap_or_else(|e| panic!("bind {self:?}: {e}"));
                (StdListener::Unix(l, OwnSocketFile::of(p)), 0)
            }
            ip => {
                let (l, port) = ip.tcp_listener();
                (StdListener::Tcp(l), port)
            }
        }
    }

    /// A TCP listener here, on a port the kernel picks (an IP entry only).
    pub fn tcp_listener(self) -> (TcpListener, u16) {
        let l = TcpListener::bind(self.addr(0)).unwrap_or_else(|e| panic!("bind {self:?}: {e}"));
        let port = l.local_addr().unwrap().port();
        (l, port)
    }

    /// A std client to `port` here, with read and write timeouts of [`LONG`].
    pub fn std_connect(self, port: u16) -> StdStream {
        match self {
            Loop::Unix(p) => {
                let s = UnixStream::connect(p).unwrap_or_else(|e| panic!("connect {self:?}: {e}"));
                s.set_read_timeout(Some(LONG)).unwrap();
                s.set_write_timeout(Some(LONG)).unwrap();
                StdStream::Unix(s)
            }
            ip => StdStream::Tcp(tcp_client(ip.addr(port))),
        }
    }

    /// A TCP client to `port` here (an IP entry only), with read and write
    /// timeouts of [`LONG`].
    pub fn tcp_connect(self, port: u16) -> TcpStream {
        tcp_client(self.addr(port))
    }

    /// A port here with nothing listening (bound, then released). Unix: 0,
    /// and the entry's path, where nothing listens until a test does.
    pub fn closed_port(self) -> u16 {
        match self {
            Loop::Unix(p) => {
                assert!(!p.exists(), "{self:?}: something is at the path");
                0
            }
            ip => ip.tcp_listener().1,
        }
    }
}

/// `sonda -v listen EXTRA... <lo's operands>`, running, with its port (0
/// for Unix).
pub fn listen_on(lo: Loop, extra: &[&str], input: Input, output: Output) -> (Running, u16) {
    let ops = lo.listen_args(0);
    let mut args = vec!["-v", "listen"];
    args.extend_from_slice(extra);
    args.extend(ops.iter().map(String::as_str));
    let mut l = spawn(&args, input, output);
    let port = lo.listening_port(&mut l);
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

// ---------------------------------------------------------------- the test's own sockets

/// The socket file a test's Unix listener created: removed when the
/// listener drops, if the path still names that file, so the entry's path
/// is free for the next listener.
#[derive(Debug)]
pub struct OwnSocketFile {
    path: &'static Path,
    ino: Option<u64>,
}

impl OwnSocketFile {
    fn of(path: &'static Path) -> OwnSocketFile {
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::symlink_metadata(path).ok().map(|m| m.ino());
        OwnSocketFile { path, ino }
    }
}

impl Drop for OwnSocketFile {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        let now = std::fs::symlink_metadata(self.path).ok().map(|m| m.ino());
        if now.is_some() && now == self.ino {
            let _ = std::fs::remove_file(self.path);
        }
    }
}

/// A listener of the test's own on a [`Loop`]: TCP or Unix.
#[derive(Debug)]
pub enum StdListener {
    Tcp(TcpListener),
    Unix(UnixListener, OwnSocketFile),
}

impl StdListener {
    /// accept(2), as the std listeners do; the peer's address as text
    /// (`unnamed` for most Unix clients).
    pub fn accept(&self) -> std::io::Result<(StdStream, String)> {
        match self {
            StdListener::Tcp(l) => l.accept().map(|(s, a)| (StdStream::Tcp(s), a.to_string())),
            StdListener::Unix(l, _) => l
                .accept()
                .map(|(s, a)| (StdStream::Unix(s), unix_addr_text(&a))),
        }
    }

    pub fn set_nonblocking(&self, on: bool) -> std::io::Result<()> {
        match self {
            StdListener::Tcp(l) => l.set_nonblocking(on),
            StdListener::Unix(l, _) => l.set_nonblocking(on),
        }
    }

    /// Where it listens, as text.
    pub fn local_text(&self) -> String {
        match self {
            StdListener::Tcp(l) => format!("{:?}", l.local_addr()),
            StdListener::Unix(l, _) => l
                .local_addr()
                .map(|a| unix_addr_text(&a))
                .unwrap_or_else(|e| e.to_string()),
        }
    }
}

fn unix_addr_text(a: &std::os::unix::net::SocketAddr) -> String {
    match a.as_pathname() {
        Some(p) => p.display().to_string(),
        None => "unnamed".to_string(),
    }
}

/// A connected stream of the test's own on a [`Loop`]: TCP or Unix, with
/// the methods of both std types that the tests call.
#[derive(Debug)]
pub enum StdStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// `$s.$call` on whichever std stream `$s` holds.
macro_rules! on_stream {
    ($s:expr, $x:ident => $e:expr) => {
        match $s {
            StdStream::Tcp($x) => $e,
            StdStream::Unix($x) => $e,
        }
    };
}

impl StdStream {
    pub fn shutdown(&self, how: Shutdown) -> std::io::Result<()> {
        on_stream!(self, s => s.shutdown(how))
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        on_stream!(self, s => s.set_read_timeout(t))
    }

    pub fn set_write_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        on_stream!(self, s => s.set_write_timeout(t))
    }

    pub fn set_nonblocking(&self, on: bool) -> std::io::Result<()> {
        on_stream!(self, s => s.set_nonblocking(on))
    }

    pub fn try_clone(&self) -> std::io::Result<StdStream> {
        match self {
            StdStream::Tcp(s) => s.try_clone().map(StdStream::Tcp),
            StdStream::Unix(s) => s.try_clone().map(StdStream::Unix),
        }
    }

    /// The peer's address as text (`HOST:PORT`, a path, `unnamed`).
    pub fn peer_text(&self) -> String {
        match self {
            StdStream::Tcp(s) => s
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|e| e.to_string()),
            StdStream::Unix(s) => s
                .peer_addr()
                .map(|a| unix_addr_text(&a))
                .unwrap_or_else(|e| e.to_string()),
        }
    }
}

impl Read for StdStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        on_stream!(self, s => s.read(buf))
    }
}

impl Write for StdStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        on_stream!(self, s => s.write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        on_stream!(self, s => s.flush())
    }
}

impl Read for &StdStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match *self {
            StdStream::Tcp(s) => (&*s).read(buf),
            StdStream::Unix(s) => (&*s).read(buf),
        }
    }
}

impl Write for &StdStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match *self {
            StdStream::Tcp(s) => (&*s).write(buf),
            StdStream::Unix(s) => (&*s).write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A listener [`accept_within`] can wait on: the std TCP listener, or a
/// [`StdListener`] of the table.
pub trait Acceptor {
    type Stream;
    fn set_nonblocking(&self, on: bool) -> std::io::Result<()>;
    /// One accept(2); the stream back in blocking mode with read and write
    /// timeouts of [`LONG`].
    fn accept_one(&self) -> std::io::Result<Self::Stream>;
    fn describe(&self) -> String;
}

impl Acceptor for TcpListener {
    type Stream = TcpStream;
    fn set_nonblocking(&self, on: bool) -> std::io::Result<()> {
        TcpListener::set_nonblocking(self, on)
    }
    fn accept_one(&self) -> std::io::Result<TcpStream> {
        let (s, _) = self.accept()?;
        s.set_nonblocking(false)?;
        s.set_read_timeout(Some(LONG))?;
        s.set_write_timeout(Some(LONG))?;
        Ok(s)
    }
    fn describe(&self) -> String {
        format!("{:?}", self.local_addr())
    }
}

impl Acceptor for StdListener {
    type Stream = StdStream;
    fn set_nonblocking(&self, on: bool) -> std::io::Result<()> {
        StdListener::set_nonblocking(self, on)
    }
    fn accept_one(&self) -> std::io::Result<StdStream> {
        let (s, _) = self.accept()?;
        s.set_nonblocking(false)?;
        s.set_read_timeout(Some(LONG))?;
        s.set_write_timeout(Some(LONG))?;
        Ok(s)
    }
    fn describe(&self) -> String {
        self.local_text()
    }
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
pub fn accept_within<L: Acceptor>(l: &L, limit: Duration) -> L::Stream {
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + limit;
    loop {
        match l.accept_one() {
            Ok(s) => return s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "nothing connected to {} within {limit:?}",
                    l.describe()
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
    expect_closed(StdStream::Tcp(tcp_client(addr)), &addr.to_string(), data);
}

/// [`expect_closed_unread`] for a listener on any entry of the table.
pub fn expect_closed_unread_on(lo: Loop, port: u16, data: &[u8]) {
    expect_closed(lo.std_connect(port), &lo.endpoint(port), data);
}

fn expect_closed(mut s: StdStream, to: &str, data: &[u8]) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(data);
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Ok(n) => panic!("{to}: a closed connection delivered {n} bytes"),
            Err(e) => panic!("{to}: not closed after {:?}: {e}", started.elapsed()),
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
/// `port` of `lo` (an IP entry). Connecting to find out would use up the
/// one connection a `nc -l` accepts.
pub fn wait_tcp_listen(lo: Loop, port: u16) {
    let (table, local) = match lo {
        Loop::V4 => ("/proc/net/tcp", format!("0100007F:{port:04X}")),
        Loop::V6 => (
            "/proc/net/tcp6",
            format!("00000000000000000000000001000000:{port:04X}"),
        ),
        Loop::Unix(_) => panic!("{lo:?} is not TCP"),
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

/// The SHA-256 a `listen --tls` without --cert prints for its ephemeral
/// certificate.
pub fn ephemeral_pin(l: &mut Running) -> String {
    let line = l.wait_for_stderr("ephemeral self-signed certificate");
    let fp = line
        .split("SHA-256 ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a fingerprint")
        .to_string();
    assert_eq!(fp.len(), 64, "{line}");
    fp
}
