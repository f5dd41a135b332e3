//! Stress and fault tests (issue 7, "Hardening"): a thousand concurrent
//! `listen -k` clients of 1 MiB each (to `--sink` and to stdout) with every
//! byte accounted for, no fd leak and bounded peak RSS; a 100,000-datagram
//! `udp-recv` burst whose loss the kernel's drop counter explains exactly;
//! peers that reset mid-transfer or never read; SIGINT/SIGTERM mid-transfer;
//! and `--max-conns`/`--deny` as defences against slowloris and unwanted
//! peers. Loopback only; every wait is bounded and polls for readiness.
//!
//! The load tests hold `HEAVY` so that their figures (time, peak RSS, kernel
//! drops) are measured one at a time on a small machine.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
use common::*;

use std::collections::HashSet;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once};
use std::thread;
use std::time::{Duration, Instant};

use socket2::SockRef;

/// The loopback these tests run on (their figures are about load, not
/// the address family).
const LO: Loop = Loop::V4;
const MIB: usize = 1024 * 1024;
/// Concurrent clients in the load tests.
const CLIENTS: usize = 1000;
/// Clients are connected in waves no larger than the default backlog (128),
/// so that no SYN is dropped and retried a second later.
const WAVE: usize = 100;
/// The target for the listener's peak resident set.
const RSS_LIMIT_KIB: u64 = 64 * 1024;
/// Values a load client's bytes take (`i % FILL_VALUES`, a prime).
const FILL_VALUES: usize = 251;
/// The byte value of the client served after the load (none of the load
/// clients uses it).
const LATE_FILL: u8 = 255;
const LATE_LEN: usize = 64 * 1024;
/// Stack of a client thread: 1,000 of them stay cheap.
const CLIENT_STACK: usize = 64 * 1024;

/// Serialises the load tests (see the file's doc).
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Raises this process's RLIMIT_NOFILE soft limit to the hard limit: the
/// load tests hold a thousand sockets here too.
fn raise_nofile() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit write/read one valid rlimit struct.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
            if lim.rlim_cur < lim.rlim_max {
                lim.rlim_cur = lim.rlim_max;
                assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
            }
        }
        assert!(
            lim.rlim_cur >= 2 * CLIENTS as libc::rlim_t + 100,
            "RLIMIT_NOFILE {} is too low for {CLIENTS} clients",
            lim.rlim_cur
        );
    });
}

/// Open descriptors of a process (entries of /proc/PID/fd).
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/fd: {e}"))
        .count()
}

/// The peer port of a `sonda: connection from 127.0.0.1:PORT ...` line.
fn peer_port(line: &str) -> Option<u16> {
    let addr = line
        .strip_prefix("sonda: connection from ")?
        .split_whitespace()
        .next()?;
    addr.rsplit(':').next()?.parse().ok()
}

/// Bytes in a socket's send queue not yet acknowledged by the peer
/// (SIOCOUTQ).
fn unacked(s: &TcpStream) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int for an open socket.
    let rc = unsafe { libc::ioctl(s.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    assert_eq!(rc, 0, "SIOCOUTQ: {}", std::io::Error::last_os_error());
    n as usize
}

/// Closes `s` with SO_LINGER 0: the kernel sends RST instead of FIN.
fn reset(s: TcpStream) {
    SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    drop(s);
}

fn says_reset(line: &str) -> bool {
    let l = line.to_lowercase();
    l.contains("reset by peer") || l.contains("connection reset")
}

// ------------------------------------------------------------------- load

/// A gate the client threads wait at (bounded) until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    /// False when the gate stayed shut for `limit`.
    fn wait(&self, limit: Duration) -> bool {
        let open = self.open.lock().unwrap();
        let (open, _) = self
            .opened
            .wait_timeout_while(open, limit, |open| !*open)
            .unwrap();
        *open
    }
}

/// What a load client reports: its local port, or what went wrong.
type ClientResult = Result<u16, String>;

/// One load client: connects, waits at the gate, sends `len` bytes of
/// `fill`, half-closes and reads to EOF (expecting nothing back).
fn load_client(port: u16, fill: u8, len: usize, gate: &Gate) -> ClientResult {
    let mut s = TcpStream::connect_timeout(&LO.addr(port), Duration::from_secs(20))
        .map_err(|e| format!("connect: {e}"))?;
    let local = s.local_addr().map_err(|e| e.to_string())?.port();
    let timeouts = Some(Duration::from_secs(90));
    s.set_read_timeout(timeouts).map_err(|e| e.to_string())?;
    s.set_write_timeout(timeouts).map_err(|e| e.to_string())?;
    if !gate.wait(Duration::from_secs(120)) {
        return Err(format!("{local}: the gate never opened"));
    }
    let chunk = vec![fill; 16 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        s.write_all(&chunk[..n])
            .map_err(|e| format!("{local}: send: {e}"))?;
        left -= n;
    }
    s.shutdown(Shutdown::Write)
        .map_err(|e| format!("{local}: shutdown: {e}"))?;
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(local),
            Ok(n) => return Err(format!("{local}: received {n} unexpected bytes")),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{local}: read to EOF: {e}")),
        }
    }
}

/// What a thousand-client run measured.
struct LoadRun {
    listener: Running,
    port: u16,
    base_fds: usize,
    peak_kib: u64,
}

/// Starts `sonda -v listen -k --max-conns 2000 EXTRA... 127.0.0.1 0`,
/// connects CLIENTS clients (in waves, all held open at once), then lets
/// every one of them send 1 MiB of `i % FILL_VALUES` concurrently. Checks a
/// `closed: received 1048576 bytes` line per client, that the descriptors
/// return to their count before the clients, and the peak RSS bound.
fn thousand_clients(extra: &[&str], output: Output) -> LoadRun {
    raise_nofile();
    let mut flags = vec!["-k", "--max-conns", "2000"];
    flags.extend_from_slice(extra);
    let (mut l, port) = listen_on(LO, &flags, Input::Null, output);
    let pid = l.pid();
    let base_fds = fd_count(pid);
    let started = Instant::now();

    let gate = Arc::new(Gate::default());
    let mut threads = Vec::with_capacity(CLIENTS);
    for wave in 0..CLIENTS.div_ceil(WAVE) {
        for i in wave * WAVE..((wave + 1) * WAVE).min(CLIENTS) {
            let gate = gate.clone();
            let fill = (i % FILL_VALUES) as u8;
            let t = thread::Builder::new()
                .name(format!("load-{i}"))
                .stack_size(CLIENT_STACK)
                .spawn(move || load_client(port, fill, MIB, &gate))
                .expect("spawn a client thread");
            threads.push(t);
        }
        // The listener has admitted this wave before the next one knocks.
        wait_lines(&mut l, "admitted", threads.len(), is_admitted_line);
    }
    let fds_connected = fd_count(pid);
    let connected_in = started.elapsed();
    assert!(
        fds_connected >= base_fds + CLIENTS,
        "{CLIENTS} clients admitted but the listener holds {fds_connected} fds (from {base_fds})"
    );
    // Timed from before the gate opens: a thousand woken threads may keep
    // this one off the CPU for a while.
    let sending = Instant::now();
    gate.open();
    let results: Vec<ClientResult> = threads
        .into_iter()
        .map(|t| {
            t.join()
                .unwrap_or_else(|_| Err("client thread panicked".into()))
        })
        .collect();
    let joined_in = sending.elapsed();
    let errors: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        errors.is_empty(),
        "{} of {CLIENTS} clients failed, first ones: {:?}\nstderr (tail):\n{}",
        errors.len(),
        &errors[..errors.len().min(10)],
        tail(&l.stderr_now(), 40)
    );
    let ports: HashSet<u16> = results.iter().map(|r| *r.as_ref().unwrap()).collect();
    assert_eq!(ports.len(), CLIENTS, "client ports are not distinct");

    wait_lines(&mut l, "closed", CLIENTS, is_closed_line);
    let sent_in = sending.elapsed();
    let stderr = l.stderr_now();
    let closed: Vec<&str> = stderr.lines().filter(|x| is_closed_line(x)).collect();
    assert_eq!(closed.len(), CLIENTS, "closed lines\n{}", tail(&stderr, 40));
    let mut seen = HashSet::new();
    for line in &closed {
        assert!(
            line.contains(" closed: received 1048576 bytes"),
            "a client was not received whole: {line}"
        );
        let p = peer_port(line).unwrap_or_else(|| panic!("no peer port in {line}"));
        assert!(ports.contains(&p), "closed line of no client: {line}");
        assert!(seen.insert(p), "two closed lines for one client: {line}");
    }
    assert!(
        !stderr.contains("refused connection"),
        "a client was refused under --max-conns 2000\n{}",
        tail(&stderr, 40)
    );

    // No descriptor outlives its client.
    let mut fds_now = fd_count(pid);
    poll_until(
        LONG,
        || {
            fds_now = fd_count(pid);
            fds_now == base_fds
        },
        || {
            format!(
                "the listener holds {} fds, {base_fds} before the clients",
                fd_count(pid)
            )
        },
    );
    let peak_kib = peak_rss_kib(pid).expect("VmHWM of the listener");
    eprintln!(
        "listen -k {}: {CLIENTS} clients x 1 MiB; connected in {connected_in:?}, \
         all sent and read to EOF in {joined_in:?}, all closed lines in {sent_in:?}; fds {base_fds} -> {fds_connected} -> {fds_now}; \
         peak RSS (VmHWM) {peak_kib} KiB ({:.1} MiB)",
        extra.join(" "),
        peak_kib as f64 / 1024.0
    );
    assert!(
        peak_kib < RSS_LIMIT_KIB,
        "listener peak RSS {peak_kib} KiB >= {RSS_LIMIT_KIB} KiB"
    );
    LoadRun {
        listener: l,
        port,
        base_fds,
        peak_kib,
    }
}

/// One more client after the load: the listener still serves it.
fn still_serves(run: &mut LoadRun) {
    let gate = Gate::default();
    gate.open();
    let local = load_client(run.port, LATE_FILL, LATE_LEN, &gate)
        .unwrap_or_else(|e| panic!("the listener no longer serves: {e}"));
    let want = format!(" closed: received {LATE_LEN} bytes");
    wait_lines(&mut run.listener, "late closed", 1, |line| {
        is_closed_line(line) && peer_port(line) == Some(local) && line.contains(&want)
    });
}

#[test]
fn thousand_clients_into_a_sink() {
    let _heavy = heavy();
    let mut run = thousand_clients(&["--sink"], Output::Null);
    still_serves(&mut run);
    poll_until(
        LONG,
        || fd_count(run.listener.pid()) == run.base_fds,
        || "the late client's descriptor was not closed".into(),
    );
    let LoadRun {
        mut listener,
        peak_kib,
        ..
    } = run;
    listener.signal(libc::SIGTERM);
    let f = listener.finish_within(LONG);
    f.expect_code(143);
    assert_no_panic(&f);
    assert!(f.stdout.is_empty(), "--sink wrote to stdout");
    eprintln!(
        "sink: {} clients served, {} bytes received and counted, peak RSS {peak_kib} KiB",
        CLIENTS + 1,
        CLIENTS * MIB + LATE_LEN
    );
}

/// The byte-value histogram of a file, streamed: runs of one value are
/// counted with slice comparisons (memcmp) so a gigabyte stays cheap even in
/// a debug build.
fn histogram(path: &Path) -> (u64, [u64; 256]) {
    const RUNS: [usize; 5] = [4096, 512, 64, 8, 1];
    let refs: Vec<Vec<u8>> = (0..=255u8).map(|v| vec![v; RUNS[0]]).collect();
    let mut hist = [0u64; 256];
    let mut total = 0u64;
    let mut f = File::open(path).expect("open stdout file");
    let mut buf = vec![0u8; 4 * MIB];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("read stdout file: {e}"),
        };
        total += n as u64;
        let b = &buf[..n];
        let mut i = 0;
        while i < n {
            let v = b[i] as usize;
            let run = RUNS
                .iter()
                .map(|&r| r.min(n - i))
                .find(|&r| b[i..i + r] == refs[v][..r])
                .unwrap_or(1);
            hist[v] += run as u64;
            i += run;
        }
    }
    (total, hist)
}

#[test]
fn thousand_clients_to_stdout_every_byte_accounted_for() {
    let _heavy = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("stdout");
    let mut run = thousand_clients(&[], Output::File(out.clone()));
    still_serves(&mut run);
    let LoadRun {
        mut listener,
        peak_kib,
        ..
    } = run;
    listener.signal(libc::SIGTERM);
    let f = listener.finish_within(LONG);
    f.expect_code(143);
    assert_no_panic(&f);

    let hashing = Instant::now();
    let (total, hist) = histogram(&out);
    let want_total = (CLIENTS * MIB + LATE_LEN) as u64;
    assert_eq!(total, want_total, "stdout length\n{}", tail(&f.stderr, 20));
    let mut want = [0u64; 256];
    for i in 0..CLIENTS {
        want[i % FILL_VALUES] += MIB as u64;
    }
    want[LATE_FILL as usize] += LATE_LEN as u64;
    for v in 0..256 {
        assert_eq!(
            hist[v], want[v],
            "stdout holds {} bytes of value {v}, {} were sent",
            hist[v], want[v]
        );
    }
    eprintln!(
        "stdout: {} clients served, {total} bytes on stdout checked by value in {:?}, \
         peak RSS {peak_kib} KiB",
        CLIENTS + 1,
        hashing.elapsed()
    );
}

// -------------------------------------------------------------------- udp

const DATAGRAMS: u64 = 100_000;
const UDP_TAG: &[u8; 8] = b"sondaUDP";

/// The number just before the first word of `line` that starts with `word`.
fn number_before(line: &str, word: &str) -> Option<u64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| w.starts_with(word))?;
    let before = words.get(at.checked_sub(1)?)?;
    let digits: String = before.chars().filter(|c| *c != ',' && *c != '_').collect();
    digits.parse().ok()
}

/// Per-CPU backlog drops (second column of /proc/net/softnet_stat), summed:
/// loss on loopback that no socket counts.
fn softnet_drops() -> u64 {
    std::fs::read_to_string("/proc/net/softnet_stat")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|h| u64::from_str_radix(h, 16).ok())
        .sum()
}

#[test]
fn udp_burst_loss_is_explained_by_the_kernel_drop_counter() {
    let _heavy = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("datagrams");
    let (mut r, port) = {
        let mut r = spawn(
            &["-v", "udp-recv", "--timeout", "2s", LO.host(), "0"],
            Input::Null,
            Output::File(out.clone()),
        );
        let port = r.listening_port();
        (r, port)
    };
    let backlog_before = softnet_drops();
    let sock = UdpSocket::bind(LO.addr(0)).expect("bind sender");
    sock.connect(LO.addr(port)).expect("connect sender");
    let started = Instant::now();
    let mut datagram = [0u8; 16];
    datagram[8..].copy_from_slice(UDP_TAG);
    for seq in 0..DATAGRAMS {
        datagram[..8].copy_from_slice(&seq.to_be_bytes());
        let n = sock
            .send(&datagram)
            .unwrap_or_else(|e| panic!("send datagram {seq}: {e}"));
        assert_eq!(n, 16, "datagram {seq} sent short");
    }
    let burst = started.elapsed();
    let f = r.finish_within(LONG);
    let backlog_drops = softnet_drops() - backlog_before;
    f.expect_code(4);
    assert_no_panic(&f);
    let summary = f
        .stderr
        .lines()
        .find(|l| l.contains("received") && l.contains("datagram"))
        .unwrap_or_else(|| panic!("no -v summary\n{}", f.dump()))
        .to_string();
    let received = number_before(&summary, "datagram")
        .unwrap_or_else(|| panic!("no datagram count in: {summary}"));
    let dropped = number_before(&summary, "dropped")
        .unwrap_or_else(|| panic!("no kernel drop count in: {summary}"));

    let bytes = std::fs::read(&out).expect("read receiver stdout");
    assert_eq!(bytes.len() % 16, 0, "stdout is not whole datagrams");
    let mut last = None;
    for (k, d) in bytes.chunks(16).enumerate() {
        assert_eq!(&d[8..], UDP_TAG, "datagram {k} on stdout is corrupt");
        let seq = u64::from_be_bytes(d[..8].try_into().unwrap());
        assert!(seq < DATAGRAMS, "datagram {k} has sequence {seq}");
        // One sender to one socket on loopback: order is kept, and nothing
        // is delivered twice.
        assert!(
            last.is_none_or(|l| seq > l),
            "datagram {k} (sequence {seq}) after {last:?}"
        );
        last = Some(seq);
    }
    let on_stdout = (bytes.len() / 16) as u64;
    eprintln!(
        "udp burst: {DATAGRAMS} datagrams sent in {burst:?}; received {received} \
         (on stdout {on_stdout}), dropped by the kernel {dropped}, \
         per-CPU backlog drops meanwhile {backlog_drops}; summary: {summary}"
    );
    assert_eq!(
        on_stdout, received,
        "stdout holds {on_stdout} datagrams, the summary says {received}"
    );
    assert_eq!(
        received + dropped,
        DATAGRAMS,
        "{received} received + {dropped} dropped != {DATAGRAMS} sent \
         (per-CPU backlog drops meanwhile: {backlog_drops})\n{}",
        f.dump()
    );
}

// ----------------------------------------------------------------- faults

#[test]
fn peer_reset_while_sending_is_reported_with_exit_1() {
    let (l, port) = LO.tcp_listener();
    let data = random_bytes(64 * MIB, 41);
    let c = connect_to(LO, port, &[], Input::Bytes(data.clone()), Output::Capture);
    let mut s = accept_within(&l, LONG);
    let mut got = vec![0u8; 256 * 1024];
    s.read_exact(&mut got).expect("read the first bytes");
    assert_eq!(got, data[..got.len()], "the first bytes differ");
    reset(s);
    let mut c = c;
    let f = c.finish_within(Duration::from_secs(20));
    f.expect_code(1);
    assert_no_panic(&f);
    let line = one_line(&f);
    assert!(
        says_reset(&line),
        "not a reset report: {line}\n{}",
        f.dump()
    );
    assert!(f.stdout.is_empty(), "stdout from a peer that sent nothing");
    eprintln!("reset while sending: {line}");
}

#[test]
fn peer_reset_after_sending_keeps_everything_received() {
    let (l, port) = LO.tcp_listener();
    let data = random_bytes(MIB, 42);
    // stdin stays open: the reset, not stdin, ends the session.
    let mut c = connect_to(LO, port, &[], Input::Pipe, Output::Capture);
    let mut s = accept_within(&l, LONG);
    s.write_all(&data).expect("send 1 MiB");
    // Every byte is acknowledged by sonda's kernel before the reset, so
    // every byte was received and none may be lost.
    poll_until(
        LONG,
        || unacked(&s) == 0,
        || format!("{} bytes never acknowledged", unacked(&s)),
    );
    reset(s);
    let f = c.finish_within(Duration::from_secs(20));
    eprintln!(
        "reset after sending: {} of {} bytes on stdout; stderr: {}",
        f.stdout.len(),
        data.len(),
        f.stderr.trim_end()
    );
    assert!(
        data.starts_with(&f.stdout),
        "stdout is not a prefix of what was sent\n{}",
        f.dump()
    );
    assert_eq!(
        f.stdout.len(),
        data.len(),
        "acknowledged bytes were lost\n{}",
        f.dump()
    );
    f.expect_code(1);
    assert_no_panic(&f);
    let line = one_line(&f);
    assert!(
        says_reset(&line),
        "not a reset report: {line}\n{}",
        f.dump()
    );
}

/// `connect --idle-timeout 2s` sending 64 MiB from `input` to a peer that
/// accepts and never reads: the send blocks, the idle timeout still fires.
fn idle_timeout_fires_while_blocked(input: Input) {
    let (l, port) = LO.tcp_listener();
    let started = Instant::now();
    let mut c = connect_to(LO, port, &["--idle-timeout", "2s"], input, Output::Capture);
    let s = accept_within(&l, LONG);
    let f = c.finish_within(Duration::from_secs(20));
    let took = started.elapsed();
    let queued = {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int for an open socket.
        unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n) };
        n
    };
    drop(s);
    eprintln!(
        "never-reading peer: exit {:?} after {took:?} ({queued} bytes queued unread at the peer)",
        f.code()
    );
    f.expect_code(4);
    assert_no_panic(&f);
    assert!(
        took >= Duration::from_secs(2),
        "the 2s idle timeout fired after {took:?}"
    );
    let line = one_line(&f);
    let lower = line.to_lowercase();
    assert!(
        lower.contains("idle") || lower.contains("timed out") || lower.contains("timeout"),
        "not a timeout report: {line}"
    );
    assert!(queued > 0, "nothing was sent before the block");
}

#[test]
fn idle_timeout_fires_while_blocked_on_a_peer_that_never_reads_pipe() {
    idle_timeout_fires_while_blocked(Input::Bytes(random_bytes(64 * MIB, 43)));
}

#[test]
fn idle_timeout_fires_while_blocked_on_a_peer_that_never_reads_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stdin");
    std::fs::write(&path, random_bytes(64 * MIB, 44)).expect("write stdin file");
    idle_timeout_fires_while_blocked(Input::File(path));
}

/// A server that sends `stream`: the first MiB at once, then 16 KiB every
/// 5 ms (a transfer in progress) until `stop` or an error.
fn trickle(
    mut s: TcpStream,
    stream: Arc<Vec<u8>>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        if s.write_all(&stream[..MIB]).is_err() {
            return;
        }
        for chunk in stream[MIB..].chunks(16 * 1024) {
            if stop.load(Ordering::SeqCst) || s.write_all(chunk).is_err() {
                return;
            }
            // Pacing the transfer, not waiting for readiness.
            thread::sleep(Duration::from_millis(5));
        }
    })
}

fn file_len(path: &Path) -> usize {
    std::fs::metadata(path)
        .map(|m| m.len() as usize)
        .unwrap_or(0)
}

/// `sig` while `args` (with `PORT` replaced) receives a stream: exit `code`,
/// and stdout holds a prefix of the stream no shorter than what was on it
/// before the signal.
fn signal_mid_transfer(sig: i32, code: i32, listen_side: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("stdout");
    let stream = Arc::new(random_bytes(64 * MIB, 45));
    let stop = Arc::new(AtomicBool::new(false));
    let (mut c, server) = if listen_side {
        let (mut l, port) = listen_on(LO, &["-k"], Input::Pipe, Output::File(out.clone()));
        let s = LO.tcp_connect(port);
        l.wait_for_stderr("connection from");
        let server = trickle(s, stream.clone(), stop.clone());
        (l, server)
    } else {
        let (l, port) = LO.tcp_listener();
        let c = connect_to(LO, port, &[], Input::Pipe, Output::File(out.clone()));
        let s = accept_within(&l, LONG);
        let server = trickle(s, stream.clone(), stop.clone());
        (c, server)
    };
    poll_until(
        LONG,
        || file_len(&out) > MIB,
        || format!("stdout reached only {} bytes", file_len(&out)),
    );
    let before = file_len(&out);
    c.signal(sig);
    let f = c.finish_within(Duration::from_secs(20));
    stop.store(true, Ordering::SeqCst);
    server.join().expect("server thread");
    let got = std::fs::read(&out).expect("read stdout");
    eprintln!(
        "signal {sig} mid-transfer ({}): exit {:?}, {} bytes on stdout ({before} before the signal)",
        if listen_side { "listen -k" } else { "connect" },
        f.code(),
        got.len()
    );
    f.expect_code(code);
    assert_no_panic(&f);
    assert!(
        got.len() >= before,
        "stdout shrank from {before} to {} bytes",
        got.len()
    );
    assert!(
        stream.starts_with(&got),
        "stdout ({} bytes) is not a prefix of the stream\n{}",
        got.len(),
        f.dump()
    );
}

#[test]
fn sigint_mid_transfer_keeps_what_was_received_and_exits_130() {
    signal_mid_transfer(libc::SIGINT, 130, false);
}

#[test]
fn sigterm_mid_transfer_keeps_what_was_received_and_exits_143() {
    signal_mid_transfer(libc::SIGTERM, 143, false);
}

#[test]
fn sigint_mid_transfer_of_a_keep_open_listener_exits_130() {
    signal_mid_transfer(libc::SIGINT, 130, true);
}

// ----------------------------------------------------------------- limits

/// A byte-at-a-second client; returns its thread and the bytes it sent.
fn slowloris(port: u16, stop: Arc<AtomicBool>) -> (u16, thread::JoinHandle<usize>) {
    let mut s = LO.tcp_connect(port);
    let local = s.local_addr().unwrap().port();
    let t = thread::spawn(move || {
        let mut sent = 0;
        while !stop.load(Ordering::SeqCst) {
            if s.write_all(&[0]).is_err() {
                break;
            }
            sent += 1;
            // The client's pace (1 byte/s), checked every 50 ms for `stop`.
            for _ in 0..20 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = s.shutdown(Shutdown::Write);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        sent
    });
    (local, t)
}

#[test]
fn slowloris_clients_hold_only_their_own_slots() {
    const SLOW: usize = 4;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("stdout");
    let (mut l, port) = listen_on(
        LO,
        &["-k", "--max-conns", "5"],
        Input::Null,
        Output::File(out.clone()),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let slow: Vec<_> = (0..SLOW).map(|_| slowloris(port, stop.clone())).collect();
    wait_lines(&mut l, "admitted", SLOW, is_admitted_line);
    // Every slow client is mid-request: two bytes each have reached stdout.
    poll_until(
        LONG,
        || file_len(&out) >= 2 * SLOW,
        || format!("the slow clients' bytes: {} on stdout", file_len(&out)),
    );

    // A fifth, normal client takes the last slot.
    let mut fifth = LO.tcp_connect(port);
    let fifth_port = fifth.local_addr().unwrap().port();
    wait_lines(&mut l, "admitted", SLOW + 1, is_admitted_line);

    // A sixth while five are connected: closed unread, and logged.
    expect_closed_unread(LO.addr(port), b"sixth client's bytes");
    wait_lines(&mut l, "refused", 1, |line| {
        line.contains("refused") && line.contains("--max-conns")
    });

    // The fifth is served fully while the slow ones trickle.
    let started = Instant::now();
    let data: Vec<u8> = random_bytes(MIB, 46).into_iter().map(|b| b | 1).collect();
    fifth.write_all(&data).expect("fifth client sends");
    fifth.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    fifth
        .read_to_end(&mut back)
        .expect("fifth client reads to EOF");
    wait_lines(&mut l, "fifth closed", 1, |line| {
        is_closed_line(line)
            && peer_port(line) == Some(fifth_port)
            && line.contains(" received 1048576 bytes")
    });
    let served_in = started.elapsed();

    // Its slot is free again at once; the slow ones still hold theirs.
    let seventh: Vec<u8> = random_bytes(4096, 47).into_iter().map(|b| b | 1).collect();
    let mut s = LO.tcp_connect(port);
    let seventh_port = s.local_addr().unwrap().port();
    s.write_all(&seventh).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    wait_lines(&mut l, "seventh closed", 1, |line| {
        is_closed_line(line) && peer_port(line) == Some(seventh_port)
    });
    let stderr = l.stderr_now();
    let slow_closed = stderr
        .lines()
        .filter(|line| {
            is_closed_line(line) && slow.iter().any(|(p, _)| peer_port(line) == Some(*p))
        })
        .count();
    assert_eq!(slow_closed, 0, "a slow client was dropped\n{stderr}");
    let refused = stderr.lines().filter(|x| x.contains("refused")).count();
    assert_eq!(refused, 1, "refusals other than the sixth\n{stderr}");

    stop.store(true, Ordering::SeqCst);
    let trickled: usize = slow.into_iter().map(|(_, t)| t.join().unwrap()).sum();
    wait_lines(&mut l, "closed", SLOW + 2, is_closed_line);
    l.signal(libc::SIGTERM);
    let f = l.finish();
    f.expect_code(143);
    assert_no_panic(&f);
    let stdout = std::fs::read(&out).expect("read stdout");
    let zeros = stdout.iter().filter(|&&b| b == 0).count();
    let others: Vec<u8> = stdout.iter().copied().filter(|&b| b != 0).collect();
    assert_eq!(
        zeros,
        trickled,
        "slow clients' bytes on stdout\n{}",
        f.dump()
    );
    assert!(
        others == [data.as_slice(), seventh.as_slice()].concat(),
        "the fifth and seventh clients' bytes differ on stdout ({} bytes)\n{}",
        others.len(),
        f.dump()
    );
    eprintln!(
        "slowloris: {SLOW} slow clients ({trickled} bytes), fifth client's 1 MiB served in \
         {served_in:?}, the sixth refused over --max-conns 5, a seventh served in the freed slot"
    );
}

#[test]
fn denied_peer_is_closed_before_any_byte_is_read() {
    let (l, port) = listen_on(
        LO,
        &["-k", "--deny", LO.host()],
        Input::Null,
        Output::Capture,
    );
    let base_fds = fd_count(l.pid());
    let secret = b"denied client's bytes".repeat(1000);
    expect_closed_unread(LO.addr(port), &secret);
    poll_until(
        LONG,
        || fd_count(l.pid()) == base_fds,
        || "the denied connection's descriptor stayed open".into(),
    );
    l.signal(libc::SIGTERM);
    let f = l.finish();
    f.expect_code(143);
    assert_no_panic(&f);
    assert!(
        f.stdout.is_empty(),
        "a denied peer's bytes reached stdout\n{}",
        f.dump()
    );
    assert!(
        !f.stderr.lines().any(is_admitted_line),
        "a denied peer was admitted\n{}",
        f.dump()
    );
}
