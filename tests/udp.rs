//! UDP: `sonda udp-send` and `sonda udp-recv` against each other and against
//! peers nobody here wrote (python3 sockets, OpenBSD netcat, plain std
//! sockets): byte-exact datagrams up to the IPv4 and IPv6 limits, buffer
//! growth and reported truncation, a burst of 10,000 datagrams in bounded
//! memory, ICMP port unreachable, replies, `--lines`, and the error paths.
//!
//! Loopback only. A receiver is always started first and is ready once its
//! `listening on` line is on stderr; where a test runs a receiver without
//! `-v`, the sender retries while it gets `port unreachable` (exit 3), which
//! is exactly "not bound yet".

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
use common::*;

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;

const V4: &str = "127.0.0.1";
const V6: &str = "::1";

// ---------------------------------------------------------------- helpers

/// Starts `sonda -v udp-recv EXTRA... HOST 0`; returns it with its port.
fn receiver(host: &str, extra: &[&str], output: Output) -> (Running, String) {
    let mut args = vec!["-v", "udp-recv"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[host, "0"]);
    let mut r = spawn(&args, Input::Null, output);
    let port = r.listening_port().to_string();
    (r, port)
}

/// Runs `sonda udp-send EXTRA... HOST PORT` to completion.
fn send(host: &str, port: &str, extra: &[&str], input: Input) -> Finished {
    let mut args = vec!["udp-send"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[host, port]);
    run(&args, input)
}

/// One `--json` line of udp-recv.
#[derive(Debug)]
struct Datagram {
    time: String,
    from: String,
    len: u64,
    original_len: u64,
    truncated: bool,
    payload: Vec<u8>,
}

/// Parses udp-recv's `--json` stdout: one object per line, every key of the
/// documented shape present and typed, `len` equal to the decoded payload.
fn datagrams(f: &Finished) -> Vec<Datagram> {
    parse_json(&f.stdout, f)
}

/// Parses `--json` output in `out` (stdout of `f`, or the file it wrote).
fn parse_json(out: &[u8], f: &Finished) -> Vec<Datagram> {
    let text = std::str::from_utf8(out)
        .unwrap_or_else(|e| panic!("--json stdout is not UTF-8: {e}\n{}", f.dump()));
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line: {e}: {line:?}\n{}", f.dump()));
            let field = |key: &str| {
                v.get(key)
                    .unwrap_or_else(|| panic!("no key '{key}' in {line}\n{}", f.dump()))
            };
            let string = |key: &str| {
                field(key)
                    .as_str()
                    .unwrap_or_else(|| panic!("'{key}' is not a string in {line}"))
                    .to_string()
            };
            let number = |key: &str| {
                field(key)
                    .as_u64()
                    .unwrap_or_else(|| panic!("'{key}' is not a count in {line}"))
            };
            let payload = base64::engine::general_purpose::STANDARD
                .decode(string("payload_base64"))
                .unwrap_or_else(|e| panic!("payload_base64 does not decode: {e}: {line}"));
            let d = Datagram {
                time: string("time"),
                from: string("from"),
                len: number("len"),
                original_len: number("original_len"),
                truncated: field("truncated")
                    .as_bool()
                    .unwrap_or_else(|| panic!("'truncated' is not a bool in {line}")),
                payload,
            };
            assert_eq!(
                d.len,
                d.payload.len() as u64,
                "len differs from the decoded payload in {line}"
            );
            assert!(
                d.time.len() >= 20
                    && d.time.as_bytes()[..4].iter().all(u8::is_ascii_digit)
                    && d.time.contains('T')
                    && (d.time.ends_with('Z') || d.time.ends_with("+00:00")),
                "time {:?} is not RFC 3339 UTC in {line}",
                d.time
            );
            d
        })
        .collect()
}

/// The numbers in a line, with thousands separators (`10,000`, `10_000`)
/// taken as part of the number.
fn numbers_in(line: &str) -> Vec<u64> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut digits = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if (c == ',' || c == '_')
            && !digits.is_empty()
            && chars.get(i + 1).is_some_and(char::is_ascii_digit)
        {
            continue;
        } else if !digits.is_empty() {
            out.extend(digits.parse::<u64>().ok());
            digits.clear();
        }
    }
    out.extend(digits.parse::<u64>().ok());
    out
}

/// The number just before the first word of `line` that starts with
/// `word` (`10,000 datagrams` for `datagram`).
fn number_before(line: &str, word: &str) -> Option<u64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| w.starts_with(word))?;
    let before = words.get(at.checked_sub(1)?)?;
    let digits: String = before.chars().filter(|c| *c != ',' && *c != '_').collect();
    digits.parse().ok()
}

/// The first stderr line that mentions every one of `numbers`.
fn line_with_numbers<'a>(stderr: &'a str, numbers: &[u64]) -> Option<&'a str> {
    stderr.lines().find(|l| {
        let got = numbers_in(l);
        numbers.iter().all(|n| got.contains(n))
    })
}

/// Sends `data` with `udp-send EXTRA...` to a receiver that may not be bound
/// yet: retries (bounded) while the send reports port unreachable.
fn send_when_bound(host: &str, port: &str, extra: &[&str], data: &[u8]) -> Finished {
    let deadline = Instant::now() + LONG;
    loop {
        let f = send(host, port, extra, Input::Bytes(data.to_vec()));
        if f.code() != Some(3) {
            return f;
        }
        assert!(
            Instant::now() < deadline,
            "the receiver never bound {host} {port}\n{}",
            f.dump()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) for one datagram on `sock`.
fn recv_one(sock: &UdpSocket, what: &str) -> Vec<u8> {
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set_read_timeout");
    let mut buf = vec![0u8; 65536];
    let (n, _) = sock
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("{what}: no datagram: {e}"));
    buf.truncate(n);
    buf
}

// ---------------------------------------------------------------- sizes and growth

fn sizes_arrive_byte_exact(host: &str, sizes: &[usize]) {
    let count = sizes.len().to_string();
    let (r, port) = receiver(host, &["--count", &count, "--json"], Output::Capture);
    let sent: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| random_bytes(n, 100 + i as u64))
        .collect();
    for data in &sent {
        let max = if host.contains(':') { "65527" } else { "65507" };
        let s = send(host, &port, &["--size", max], Input::Bytes(data.clone()));
        assert!(
            s.code() == Some(0),
            "send of {} bytes failed\n{}\n---\nreceiver stderr:\n{}",
            data.len(),
            s.dump(),
            r.stderr_now()
        );
    }
    let f = r.finish();
    f.expect_code(0);
    let got = datagrams(&f);
    assert_eq!(
        got.len(),
        sent.len(),
        "datagrams received: {:?}\n{}",
        got.iter().map(|d| d.len).collect::<Vec<_>>(),
        f.dump()
    );
    let want_from = if host.contains(':') {
        format!("[{host}]:")
    } else {
        format!("{host}:")
    };
    for (d, data) in got.iter().zip(&sent) {
        assert!(
            !d.truncated && d.original_len == data.len() as u64,
            "{} bytes sent, got len {} original_len {} truncated {}\n{}",
            data.len(),
            d.len,
            d.original_len,
            d.truncated,
            f.dump()
        );
        assert_eq!(
            sha256(&d.payload),
            sha256(data),
            "payload of the {}-byte datagram differs (got {} bytes)\n{}",
            data.len(),
            d.payload.len(),
            f.dump()
        );
        assert!(
            d.from.starts_with(&want_from),
            "from {:?}, want {want_from}PORT\n{}",
            d.from,
            f.dump()
        );
    }
    // Growth is reported for the datagrams that did not fit 2048 bytes, and
    // only for those.
    for &n in sizes {
        let grew = f
            .stderr
            .lines()
            .any(|l| l.contains("grew buffer") && numbers_in(l).contains(&(n as u64)));
        assert_eq!(
            grew,
            n > 2048,
            "buffer growth for the {n}-byte datagram {} reported\n{}",
            if grew { "wrongly" } else { "not" },
            f.dump()
        );
    }
    // The summary at exit: datagrams, bytes, truncated, largest.
    let total: u64 = sizes.iter().map(|&n| n as u64).sum();
    let largest = *sizes.iter().max().unwrap() as u64;
    assert!(
        f.stderr.lines().any(|l| l.contains("largest")
            && number_before(l, "datagram") == Some(sizes.len() as u64)
            && numbers_in(l).contains(&total)
            && numbers_in(l).contains(&largest)),
        "no summary with {} datagrams, {total} bytes, largest {largest}\n{}",
        sizes.len(),
        f.dump()
    );
}

#[test]
fn ipv4_sizes_up_to_the_limit_arrive_byte_exact() {
    sizes_arrive_byte_exact(V4, &[1, 1472, 9000, 65507]);
}

#[test]
fn growth_message_names_old_and_new_size_and_datagram() {
    let (r, port) = receiver(V4, &["--count", "1"], Output::Capture);
    let data = random_bytes(3000, 7);
    send(V4, &port, &["--size", "3000"], Input::Bytes(data.clone())).expect_code(0);
    let f = r.finish();
    f.expect_code(0);
    assert!(
        f.stderr
            .contains("grew buffer 2048 -> 4096 for a 3000-byte datagram"),
        "{}",
        f.dump()
    );
    assert!(
        f.stdout == data,
        "raw stdout differs: {} bytes\n{}",
        f.stdout.len(),
        f.dump()
    );
}

#[test]
fn stdin_is_cut_at_size_and_count_limits_datagrams() {
    // 3000 bytes at the default --size 1472: 1472 + 1472 + 56.
    let (r, port) = receiver(V4, &["--count", "3", "--json"], Output::Capture);
    let data = random_bytes(3000, 8);
    send(V4, &port, &[], Input::Bytes(data.clone())).expect_code(0);
    let f = r.finish();
    f.expect_code(0);
    let got = datagrams(&f);
    let lens: Vec<u64> = got.iter().map(|d| d.len).collect();
    assert_eq!(lens, [1472, 1472, 56], "{}", f.dump());
    let joined: Vec<u8> = got.iter().flat_map(|d| d.payload.clone()).collect();
    assert!(joined == data, "payloads differ\n{}", f.dump());

    // --count 2 with --size 1000 sends the first two datagrams of stdin only.
    let (r, port) = receiver(
        V4,
        &["--count", "3", "--timeout", "1s", "--json"],
        Output::Capture,
    );
    let s = send(
        V4,
        &port,
        &["--size", "1000", "--count", "2"],
        Input::Bytes(data.clone()),
    );
    s.expect_code(0);
    let f = r.finish();
    let got = datagrams(&f);
    let lens: Vec<u64> = got.iter().map(|d| d.len).collect();
    assert_eq!(lens, [1000, 1000], "{}\n---\n{}", s.dump(), f.dump());
    assert!(got[0].payload == data[..1000] && got[1].payload == data[1000..2000]);
    // Only two arrived, so the receiver's idle timeout ends it.
    f.expect_code(4);
}

// ---------------------------------------------------------------- truncation

#[test]
fn no_grow_delivers_truncated_and_reports_without_verbose() {
    let port = free_udp_port(V4).to_string();
    let r = spawn(
        &[
            "udp-recv",
            "--buffer",
            "512",
            "--no-grow",
            "--count",
            "1",
            V4,
            &port,
        ],
        Input::Null,
        Output::Capture,
    );
    let data = random_bytes(3000, 21);
    send_when_bound(V4, &port, &["--size", "3000"], &data).expect_code(0);
    let f = r.finish();
    f.expect_code(0);
    assert!(
        f.stdout == data[..512],
        "stdout is {} bytes, want the first 512 sent\n{}",
        f.stdout.len(),
        f.dump()
    );
    assert!(
        f.stderr
            .lines()
            .any(|l| l.contains("truncated") && numbers_in(l).contains(&3000)),
        "no stderr line reporting the truncation of the 3000-byte datagram\n{}",
        f.dump()
    );
    assert_no_panic(&f);
}

#[test]
fn no_grow_json_reports_original_length() {
    let (r, port) = receiver(
        V4,
        &["--buffer", "512", "--no-grow", "--count", "1", "--json"],
        Output::Capture,
    );
    let data = random_bytes(3000, 22);
    send(V4, &port, &["--size", "3000"], Input::Bytes(data.clone())).expect_code(0);
    let f = r.finish();
    f.expect_code(0);
    let got = datagrams(&f);
    assert_eq!(got.len(), 1, "{}", f.dump());
    let d = &got[0];
    assert!(
        d.truncated && d.len == 512 && d.original_len == 3000,
        "want truncated 512 of 3000, got {d:?}\n{}",
        f.dump()
    );
    assert!(d.payload == data[..512], "payload differs\n{}", f.dump());
    assert!(
        f.stderr
            .lines()
            .any(|l| l.contains("truncated") && numbers_in(l).contains(&3000)),
        "{}",
        f.dump()
    );
    assert!(
        !f.stderr.contains("grew buffer"),
        "--no-grow grew\n{}",
        f.dump()
    );
}

#[test]
fn max_size_caps_growth_and_reports_truncation() {
    let (r, port) = receiver(
        V4,
        &["--max-size", "4096", "--count", "1", "--json"],
        Output::Capture,
    );
    let data = random_bytes(9000, 23);
    send(V4, &port, &["--size", "9000"], Input::Bytes(data.clone())).expect_code(0);
    let f = r.finish();
    f.expect_code(0);
    let got = datagrams(&f);
    assert_eq!(got.len(), 1, "{}", f.dump());
    let d = &got[0];
    assert!(
        d.truncated && d.len == 4096 && d.original_len == 9000,
        "want truncated 4096 of 9000, got {d:?}\n{}",
        f.dump()
    );
    assert!(d.payload == data[..4096], "payload differs\n{}", f.dump());
    assert!(
        f.stderr
            .contains("grew buffer 2048 -> 4096 for a 9000-byte datagram"),
        "{}",
        f.dump()
    );
    assert!(
        f.stderr
            .lines()
            .any(|l| l.contains("truncated") && numbers_in(l).contains(&9000)),
        "{}",
        f.dump()
    );
}

// ---------------------------------------------------------------- volume and memory

/// Lines written so far to a file (0 while it does not exist).
fn lines_in(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

#[test]
fn ten_thousand_datagrams_arrive_in_bounded_memory() {
    const N: u64 = 10_000;
    const LIMIT_KIB: u64 = 32 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("recv.jsonl");
    let (mut r, port) = receiver(
        V4,
        &["--count", "10000", "--timeout", "10s", "--json"],
        Output::File(out.clone()),
    );
    let message: String = (0..64u8).map(|i| char::from(b'a' + i % 26)).collect();
    // A 50us pause between datagrams: a burst with no pause can overrun the
    // receiver's default socket buffer, which is loss by design, not a bug.
    let s = spawn(
        &[
            "-v",
            "udp-send",
            "--message",
            &message,
            "--count",
            "10000",
            "--interval",
            "50us",
            V4,
            &port,
        ],
        Input::Null,
        Output::Capture,
    );
    let deadline = Instant::now() + LONG;
    let mut peak = 0u64;
    let mut peak_at_half = None;
    loop {
        if let Ok(Some(_)) = r.child.try_wait() {
            break;
        }
        if let Some(k) = peak_rss_kib(r.pid()) {
            peak = peak.max(k);
            if peak_at_half.is_none() && lines_in(&out) as u64 >= N / 2 {
                peak_at_half = Some(k);
            }
        }
        assert!(
            Instant::now() < deadline,
            "the receiver did not finish\n{}",
            r.stderr_now()
        );
        // Pacing the memory sampler, not waiting for readiness.
        thread::sleep(Duration::from_millis(10));
    }
    let sf = s.finish();
    let rf = r.finish();
    eprintln!("receiver VmHWM: {peak} KiB (at half the datagrams: {peak_at_half:?})");

    let got = parse_json(&std::fs::read(&out).expect("read receiver output"), &rf);
    let arrived = got.len() as u64;
    assert!(
        got.iter().all(|d| d.payload == message.as_bytes()),
        "a payload differs\n{}",
        rf.dump()
    );
    // The receiver's own count agrees with what reached stdout.
    assert!(
        rf.stderr
            .lines()
            .any(|l| l.contains("largest") && number_before(l, "datagram") == Some(arrived)),
        "the -v summary does not say {arrived} datagrams\n{}",
        rf.dump()
    );
    assert_eq!(
        arrived,
        N,
        "{} of {N} datagrams were lost on loopback with a 50us interval\n{}\n---\n{}",
        N - arrived,
        sf.dump(),
        rf.dump()
    );
    sf.expect_code(0);
    rf.expect_code(0);
    assert!(
        line_with_numbers(&rf.stderr, &[N, N * 64, 0, 64]).is_some(),
        "summary without {N} datagrams, {} bytes, 0 truncated, largest 64\n{}",
        N * 64,
        rf.dump()
    );
    assert!(
        line_with_numbers(&sf.stderr, &[N, N * 64]).is_some(),
        "the sender's -v summary does not say {N} datagrams and {} bytes\n{}",
        N * 64,
        sf.dump()
    );
    assert!(peak > 0, "no memory sample of the receiver was taken");
    assert!(
        peak < LIMIT_KIB,
        "receiver VmHWM {peak} KiB >= {LIMIT_KIB} KiB\n{}",
        rf.dump()
    );
}

// ---------------------------------------------------------------- interop

/// Sends three datagrams of distinct sizes to 127.0.0.1:PORT.
const PY_SENDER: &str = r#"
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for n in (3, 1400, 5000):
    s.sendto(bytes((i * 7 + n) % 256 for i in range(n)), ("127.0.0.1", port))
s.close()
"#;

/// What PY_SENDER sends as its `n`-byte datagram.
fn py_datagram(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + n) % 256) as u8).collect()
}

/// Binds HOST:0, prints `PORT <n> ready` on stderr, receives one datagram
/// and prints `<sha256 hex> <length>` on stdout.
const PY_RECEIVER: &str = r#"
import hashlib, socket, sys
host = sys.argv[1]
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((host, 0))
s.settimeout(60)
sys.stderr.write("PORT %d ready\n" % s.getsockname()[1])
sys.stderr.flush()
data, _ = s.recvfrom(65535)
print(hashlib.sha256(data).hexdigest(), len(data), flush=True)
"#;

#[test]
fn python_datagrams_reach_udp_recv() {
    require!("python3");
    let (r, port) = receiver(V4, &["--json", "--count", "3"], Output::Capture);
    let p = spawn_cmd(python(PY_SENDER, &[&port]), Input::Null, Output::Capture).finish();
    p.expect_code(0);
    let f = r.finish();
    f.expect_code(0);
    let got = datagrams(&f);
    let lens: Vec<u64> = got.iter().map(|d| d.len).collect();
    assert_eq!(lens, [3, 1400, 5000], "{}", f.dump());
    for d in &got {
        assert!(
            d.payload == py_datagram(d.len as usize) && !d.truncated,
            "the {}-byte datagram differs\n{}",
            d.len,
            f.dump()
        );
        assert!(d.from.starts_with("127.0.0.1:"), "from {:?}", d.from);
    }
}

#[test]
fn nc_openbsd_line_reaches_udp_recv() {
    require!("nc.openbsd");
    let (r, port) = receiver(V4, &["--count", "1"], Output::Capture);
    let mut nc = Command::new("nc.openbsd");
    nc.args(["-u", "-w", "1", V4, &port]);
    let n = spawn_cmd(nc, Input::Bytes(b"hello from nc\n".to_vec()), Output::Null);
    let f = r.finish();
    let nf = n.finish();
    f.expect_code(0);
    assert_eq!(
        String::from_utf8_lossy(&f.stdout),
        "hello from nc\n",
        "{}\n---\n{}",
        f.dump(),
        nf.dump()
    );
}

fn udp_send_reaches_python(host: &str) {
    require!("python3");
    let mut p = spawn_cmd(python(PY_RECEIVER, &[host]), Input::Null, Output::Capture);
    let line = p.wait_for_stderr(" ready");
    let port = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("bad port line {line:?}"))
        .to_string();
    let data = random_bytes(1200, 31);
    let s = send(host, &port, &[], Input::Bytes(data.clone()));
    let pf = p.finish();
    s.expect_code(0);
    pf.expect_code(0);
    let report = String::from_utf8_lossy(&pf.stdout).to_string();
    assert_eq!(
        report.trim(),
        format!("{} 1200", sha256(&data)),
        "python received something else\n{}\n---\n{}",
        s.dump(),
        pf.dump()
    );
}

#[test]
fn udp_send_reaches_python_receiver() {
    udp_send_reaches_python(V4);
}

// ---------------------------------------------------------------- port unreachable

fn unreachable(host: &str, extra: &[&str], input: Input) {
    let port = free_udp_port(host).to_string();
    let f = send(host, &port, extra, input);
    f.expect_code(3);
    let line = one_line(&f);
    assert!(line.contains("port unreachable"), "{}", f.dump());
    assert!(f.stdout.is_empty(), "stdout not empty\n{}", f.dump());
    assert_no_panic(&f);
}

#[test]
fn port_unreachable_single_message() {
    unreachable(V4, &["--message", "x"], Input::Null);
}

#[test]
fn port_unreachable_with_count() {
    unreachable(V4, &["--count", "3", "--message", "x"], Input::Null);
}

#[test]
fn port_unreachable_single_datagram_from_stdin() {
    unreachable(V4, &[], Input::Bytes(b"x".to_vec()));
}

// ---------------------------------------------------------------- broadcast

/// Loopback's broadcast address: the kernel refuses it (EACCES) to a socket
/// without SO_BROADCAST, as it does any broadcast address, and a datagram
/// sent there never leaves lo.
const LO_BROADCAST: &str = "127.255.255.255";

/// Without --broadcast, "permission denied" comes with the hint to add it;
/// with it the same datagram goes.
#[test]
fn broadcast_address_without_flag_hints_broadcast() {
    let rx = match UdpSocket::bind((LO_BROADCAST, 0)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("skipped: cannot bind {LO_BROADCAST} here: {e}");
            return;
        }
    };
    let port = rx.local_addr().unwrap().port().to_string();
    let f = send(LO_BROADCAST, &port, &["--message", "x"], Input::Null);
    f.expect_code(1);
    assert!(
        f.stderr
            .lines()
            .any(|l| l.starts_with("sonda: ") && l.contains("permission denied")),
        "{}",
        f.dump()
    );
    assert!(
        f.stderr
            .lines()
            .any(|l| l.starts_with("hint: ") && l.contains("--broadcast")),
        "no hint naming --broadcast\n{}",
        f.dump()
    );
    assert_no_panic(&f);

    let f = send(
        LO_BROADCAST,
        &port,
        &["--broadcast", "--message", "all"],
        Input::Null,
    );
    f.expect_code(0);
    assert_eq!(recv_one(&rx, "broadcast"), b"all", "{}", f.dump());
}

// ---------------------------------------------------------------- replies

fn wait_reply_prints_echo(host: &str, family: &str) {
    let (r, port) = receiver(host, &["--echo", "--count", "1"], Output::Capture);
    let s = send(
        host,
        &port,
        &[family, "--message", "ping 1", "--wait-reply", "1s"],
        Input::Null,
    );
    let f = r.finish();
    f.expect_code(0);
    s.expect_code(0);
    assert_eq!(
        String::from_utf8_lossy(&s.stdout),
        "ping 1",
        "{}\n---\n{}",
        s.dump(),
        f.dump()
    );
}

#[test]
fn wait_reply_prints_the_echo() {
    wait_reply_prints_echo(V4, "-4");
}

#[test]
fn wait_reply_without_reply_exits_4() {
    let quiet = UdpSocket::bind((V4, 0)).expect("bind");
    let port = quiet.local_addr().unwrap().port().to_string();
    let started = Instant::now();
    let f = send(
        V4,
        &port,
        &["--message", "anyone?", "--wait-reply", "300ms"],
        Input::Null,
    );
    let took = started.elapsed();
    f.expect_code(4);
    assert!(f.stdout.is_empty(), "stdout not empty\n{}", f.dump());
    assert!(f.stderr.contains("sonda: "), "no message\n{}", f.dump());
    assert_no_panic(&f);
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(10),
        "took {took:?} for --wait-reply 300ms\n{}",
        f.dump()
    );
    assert_eq!(recv_one(&quiet, "the silent peer"), b"anyone?");
}

#[test]
fn wait_reply_prints_every_reply() {
    // An echoing udp-recv answers each of three datagrams.
    let (r, port) = receiver(V4, &["--echo", "--count", "3"], Output::Capture);
    let s = send(
        V4,
        &port,
        &["--message", "hi.", "--count", "3", "--wait-reply", "1s"],
        Input::Null,
    );
    let f = r.finish();
    f.expect_code(0);
    s.expect_code(0);
    assert_eq!(
        String::from_utf8_lossy(&s.stdout),
        "hi.hi.hi.",
        "{}\n---\n{}",
        s.dump(),
        f.dump()
    );

    // A peer that answers one datagram twice: both replies are printed.
    let peer = UdpSocket::bind((V4, 0)).expect("bind");
    let port = peer.local_addr().unwrap().port().to_string();
    let answer = thread::spawn(move || {
        peer.set_read_timeout(Some(LONG)).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = peer.recv_from(&mut buf).expect("the question");
        peer.send_to(b"one,", from).unwrap();
        peer.send_to(b"two", from).unwrap();
        buf[..n].to_vec()
    });
    let s = send(
        V4,
        &port,
        &["--message", "question", "--wait-reply", "1s"],
        Input::Null,
    );
    assert_eq!(answer.join().unwrap(), b"question");
    s.expect_code(0);
    assert_eq!(
        String::from_utf8_lossy(&s.stdout),
        "one,two",
        "{}",
        s.dump()
    );
}

#[test]
fn source_address_and_port_are_used() {
    let (r, port) = receiver(V4, &["--count", "1", "--json"], Output::Capture);
    let src = free_udp_port(V4);
    let source = format!("127.0.0.1:{src}");
    send(
        V4,
        &port,
        &["-s", &source, "--broadcast", "--message", "from me"],
        Input::Null,
    )
    .expect_code(0);
    let f = r.finish();
    f.expect_code(0);
    let got = datagrams(&f);
    assert_eq!(got.len(), 1, "{}", f.dump());
    assert_eq!(got[0].from, source, "{}", f.dump());
    assert_eq!(got[0].payload, b"from me");

    // A source port another socket holds is an error, never replaced.
    let holder = UdpSocket::bind((V4, 0)).expect("bind");
    let busy = format!("127.0.0.1:{}", holder.local_addr().unwrap().port());
    let peer = UdpSocket::bind((V4, 0)).expect("bind");
    let port = peer.local_addr().unwrap().port().to_string();
    let f = send(V4, &port, &["-s", &busy, "--message", "x"], Input::Null);
    f.expect_code(5);
    assert!(f.stderr.contains("address already in use"), "{}", f.dump());
    assert_no_panic(&f);
    peer.set_nonblocking(true).expect("set_nonblocking");
    assert!(
        peer.recv_from(&mut [0u8; 16]).is_err(),
        "sent from another port\n{}",
        f.dump()
    );
}

// ---------------------------------------------------------------- IPv6

#[test]
fn ipv6_both_directions() {
    require_ipv6!();
    // 65527 bytes is the IPv6 limit and more than IPv4 carries.
    sizes_arrive_byte_exact(V6, &[1, 9000, 65527]);
    wait_reply_prints_echo(V6, "-6");
    udp_send_reaches_python(V6);
    // The bracketed form is accepted too.
    let (r, port) = receiver("[::1]", &["--count", "1"], Output::Capture);
    send("[::1]", &port, &["--message", "bracket"], Input::Null).expect_code(0);
    let f = r.finish();
    f.expect_code(0);
    assert_eq!(f.stdout, b"bracket", "{}", f.dump());
    unreachable(V6, &["--message", "x"], Input::Null);
}

// ---------------------------------------------------------------- bad input

#[test]
fn bad_send_size_zero() {
    usage_error(&["udp-send", "--size", "0", V4, "9"], "0");
}

#[test]
fn bad_send_size_too_large() {
    usage_error(&["udp-send", "--size", "70000", V4, "9"], "70000");
}

#[test]
fn bad_send_port_out_of_range() {
    usage_error(&["udp-send", V4, "99999"], "99999");
}

#[test]
fn bad_send_interval() {
    usage_error(&["udp-send", "--interval", "x", V4, "9"], "x");
}

#[test]
fn bad_recv_port_out_of_range() {
    usage_error(&["udp-recv", "70000"], "70000");
}

#[test]
fn bad_recv_buffer_zero() {
    usage_error(&["udp-recv", "--buffer", "0", "9000"], "0");
}

/// `--max-size` below `--buffer` contradicts it (the buffer only grows):
/// exit 2 naming both flags, before any socket opens.
#[test]
fn max_size_below_buffer_is_a_usage_error_naming_both_flags() {
    let f = spawn(
        &[
            "udp-recv",
            "--buffer",
            "4096",
            "--max-size",
            "1024",
            V4,
            "0",
        ],
        Input::Null,
        Output::Capture,
    )
    .finish_within(Duration::from_secs(10));
    f.expect_code(2);
    let line = one_line(&f);
    assert!(
        line.contains("'1024'") && line.contains("--max-size") && line.contains("--buffer"),
        "the message does not name both flags\n{}",
        f.dump()
    );
    // Equal is fine, and a --buffer above the default limit needs no
    // --max-size.
    for extra in [
        &["--buffer", "4096", "--max-size", "4096"][..],
        &["--buffer", "65536"],
    ] {
        let mut args = vec!["udp-recv", "--timeout", "100ms"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[V4, "0"]);
        let f = spawn(&args, Input::Null, Output::Capture).finish_within(Duration::from_secs(10));
        f.expect_code(4);
    }
}

#[test]
fn bad_recv_timeout() {
    usage_error(&["udp-recv", "--timeout", "5x", "9000"], "5x");
}

// ---------------------------------------------------------------- --lines

#[test]
fn lines_sends_one_datagram_per_line() {
    let (r, port) = receiver(
        V4,
        &["--json", "--count", "4", "--timeout", "5s"],
        Output::Capture,
    );
    let s = send(
        V4,
        &port,
        &["--lines"],
        Input::Bytes(b"a\nbb\n\nccc".to_vec()),
    );
    let f = r.finish();
    s.expect_code(0);
    let got: Vec<String> = datagrams(&f)
        .iter()
        .map(|d| String::from_utf8_lossy(&d.payload).into_owned())
        .collect();
    assert_eq!(
        got,
        ["a", "bb", "", "ccc"],
        "an empty line is an empty datagram; the last line needs no newline\n{}\n---\n{}",
        s.dump(),
        f.dump()
    );
    f.expect_code(0);
}

/// Drives `sonda udp-send EXTRA... 127.0.0.1 PORT` through a stdin pipe
/// the test holds, to a std socket: each write goes in alone, and the next
/// is written only once the datagram of the one before has arrived
/// (bounded by 5 s), so a sender that holds input back to fill a datagram
/// or waits for EOF fails here, as does one that merges writes.
fn live_stdin_is_sent_at_once(extra: &[&str], writes: &[&[u8]], expect: &[&[u8]]) {
    use std::io::Write;
    let rx = UdpSocket::bind((V4, 0)).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = rx.local_addr().unwrap().port().to_string();
    let mut args = vec!["udp-send"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[V4, &port]);
    let mut s = spawn(&args, Input::Pipe, Output::Capture);
    let mut pipe = s.stdin.take().unwrap();
    let mut buf = vec![0u8; 65536];
    let mut want = expect.iter();
    for w in writes {
        pipe.write_all(w).unwrap();
        pipe.flush().unwrap();
        // A write with no complete line (--lines) sends nothing yet.
        let Some(next) = (if w.ends_with(b"\n") || !extra.contains(&"--lines") {
            want.next()
        } else {
            None
        }) else {
            continue;
        };
        let started = Instant::now();
        let got = match rx.recv(&mut buf) {
            Ok(n) => buf[..n].to_vec(),
            Err(e) => panic!(
                "no datagram within 5 s of writing {:?} while stdin stays open: {e}\nstderr:\n{}",
                String::from_utf8_lossy(w),
                s.stderr_now()
            ),
        };
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(next),
            "after writing {:?} (took {:?})",
            String::from_utf8_lossy(w),
            started.elapsed()
        );
    }
    drop(pipe);
    let f = s.finish();
    f.expect_code(0);
    assert!(
        want.next().is_none(),
        "datagrams expected but not sent\n{}",
        f.dump()
    );
    // Nothing more arrives after EOF: no held-back remainder.
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(
        rx.recv(&mut buf).is_err(),
        "an extra datagram after EOF\n{}",
        f.dump()
    );
}

/// Without --lines each read of stdin is one datagram, sent while stdin is
/// still open (`(echo line; sleep 3) | sonda udp-send` delivers at once),
/// and two separate writes are two datagrams, never merged.
#[test]
fn each_read_of_live_stdin_is_one_datagram_sent_at_once() {
    live_stdin_is_sent_at_once(
        &[],
        &[b"first line\n", b"second line\n", b"no newline"],
        &[b"first line\n", b"second line\n", b"no newline"],
    );
}

/// With --lines a line goes as soon as its newline is read; a partial line
/// waits for the rest of it, not for a buffer to fill.
#[test]
fn lines_sends_each_line_as_soon_as_it_is_complete() {
    live_stdin_is_sent_at_once(
        &["--lines"],
        &[b"one\n", b"tw", b"o\n", b"three\n"],
        &[b"one", b"two", b"three"],
    );
}

// ---------------------------------------------------------------- --show

#[test]
fn show_prints_one_escaped_line_per_datagram() {
    let (r, port) = receiver(V4, &["--show", "--count", "2"], Output::Capture);
    send(V4, &port, &["--message", "two\nlines"], Input::Null).expect_code(0);
    send(V4, &port, &[], Input::Bytes(vec![0, 0xff, b'\r', 7])).expect_code(0);
    let f = r.finish();
    f.expect_code(0);
    let text = String::from_utf8(f.stdout.clone())
        .unwrap_or_else(|_| panic!("--show wrote raw bytes\n{}", f.dump()));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "want one line per datagram: {text:?}");
    assert!(
        lines[0].contains("127.0.0.1:") && numbers_in(lines[0]).contains(&9),
        "line 1 lacks the sender or the length 9: {:?}",
        lines[0]
    );
    assert!(
        lines[1].contains("127.0.0.1:") && numbers_in(lines[1]).contains(&4),
        "line 2 lacks the sender or the length 4: {:?}",
        lines[1]
    );
    assert!(
        !text.contains('\0') && !text.contains('\r') && !text.contains('\u{7}'),
        "control bytes reached --show output unescaped: {text:?}"
    );
}

// ---------------------------------------------------------------- bind errors, timeouts, limits

#[test]
fn recv_on_a_busy_port_exits_5_with_probe_hint() {
    let holder = UdpSocket::bind((V4, 0)).expect("bind");
    let port = holder.local_addr().unwrap().port().to_string();
    let f = run(&["udp-recv", V4, &port], Input::Null);
    f.expect_code(5);
    assert!(f.stderr.contains("address already in use"), "{}", f.dump());
    assert!(
        f.stderr
            .lines()
            .any(|l| l.contains("hint") && l.contains(&format!("sonda probe --udp {port}"))),
        "no hint mentioning 'sonda probe --udp {port}'\n{}",
        f.dump()
    );
    assert!(f.stdout.is_empty(), "stdout not empty\n{}", f.dump());
    assert_no_panic(&f);
    drop(holder);
}

/// A python3 UDP socket on 127.0.0.1 with SO_REUSEADDR (as many daemons
/// set it): says `PORT N ready` on stderr, counts the datagrams it gets
/// and prints the count on stdout when its stdin closes.
const PY_REUSEADDR_HOLDER: &str = r#"
import select, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
sys.stderr.write("PORT %d ready\n" % s.getsockname()[1])
sys.stderr.flush()
got = 0
while True:
    ready, _, _ = select.select([s, sys.stdin], [], [])
    if s in ready:
        s.recv(65535)
        got += 1
    if sys.stdin in ready and not sys.stdin.read(1):
        break
print(got, flush=True)
"#;

/// Starts [`PY_REUSEADDR_HOLDER`]; returns it with its port.
fn reuseaddr_holder() -> (Running, String) {
    let mut p = spawn_cmd(
        python(PY_REUSEADDR_HOLDER, &[]),
        Input::Pipe,
        Output::Capture,
    );
    let line = p.wait_for_stderr(" ready");
    let port = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("bad port line {line:?}"))
        .to_string();
    (p, port)
}

fn assert_held(f: &Finished, port: &str) {
    f.expect_code(5);
    assert!(f.stderr.contains("address already in use"), "{}", f.dump());
    assert!(
        f.stderr
            .lines()
            .any(|l| l.starts_with("hint: ") && l.contains(&format!("sonda probe --udp {port}"))),
        "no hint naming 'sonda probe --udp {port}'\n{}",
        f.dump()
    );
    assert!(f.stdout.is_empty(), "{}", f.dump());
}

/// A receiver never joins a port another socket holds unless told to, even
/// when the holder set SO_REUSEADDR (the kernel would let a second
/// SO_REUSEADDR socket in and hand it every datagram): exit 5.
#[test]
fn second_receiver_on_a_held_port_exits_5_instead_of_stealing() {
    // Another sonda udp-recv holds the port.
    let (_first, port) = receiver(V4, &[], Output::Null);
    let f = spawn(&["udp-recv", V4, &port], Input::Null, Output::Capture)
        .finish_within(Duration::from_secs(10));
    assert_held(&f, &port);

    // A python3 socket with SO_REUSEADDR holds the port.
    require!("python3");
    let (_holder, port) = reuseaddr_holder();
    let f = spawn(&["udp-recv", V4, &port], Input::Null, Output::Capture)
        .finish_within(Duration::from_secs(10));
    assert_held(&f, &port);
}

/// `--reuseaddr` shares the port on purpose, and the man page's warning
/// holds: the receiver bound last gets the datagrams, the holder none.
#[test]
fn reuseaddr_shares_a_held_port_and_takes_its_datagrams() {
    require!("python3");
    let (mut holder, port) = reuseaddr_holder();
    let mut r = spawn(
        &["-v", "udp-recv", "--reuseaddr", "--count", "1", V4, &port],
        Input::Null,
        Output::Capture,
    );
    r.wait_for_stderr("listening on ");
    let tx = UdpSocket::bind((V4, 0)).unwrap();
    tx.send_to(b"mine now", (V4, port.parse::<u16>().unwrap()))
        .unwrap();
    let f = r.finish();
    f.expect_code(0);
    assert_eq!(f.stdout, b"mine now", "{}", f.dump());
    drop(holder.stdin.take());
    let h = holder.finish();
    h.expect_code(0);
    assert_eq!(
        String::from_utf8_lossy(&h.stdout).trim(),
        "0",
        "the first receiver should have lost the datagram\n{}",
        h.dump()
    );
}

/// The old `--no-reuseaddr` now names the default: still accepted, hidden,
/// and contradicting `--reuseaddr` is a usage error.
#[test]
fn no_reuseaddr_is_still_accepted_by_udp_recv() {
    let f = spawn(
        &["udp-recv", "--no-reuseaddr", "--timeout", "200ms", V4, "0"],
        Input::Null,
        Output::Capture,
    )
    .finish_within(Duration::from_secs(10));
    f.expect_code(4);
    let f = run(
        &["udp-recv", "--no-reuseaddr", "--reuseaddr", V4, "0"],
        Input::Null,
    );
    f.expect_code(2);
    one_line(&f);
}

#[test]
fn recv_idle_timeout_exits_4() {
    let started = Instant::now();
    let mut r = spawn(
        &["udp-recv", "--timeout", "1s", V4, "0"],
        Input::Null,
        Output::Capture,
    );
    let f = r.finish_within(Duration::from_secs(10));
    let took = started.elapsed();
    f.expect_code(4);
    assert!(
        took >= Duration::from_millis(900),
        "gave up after {took:?} with --timeout 1s\n{}",
        f.dump()
    );
    assert!(
        f.stderr.lines().any(|l| l.starts_with("sonda: ")),
        "no message on stderr\n{}",
        f.dump()
    );
    assert!(f.stdout.is_empty(), "stdout not empty\n{}", f.dump());
    assert_no_panic(&f);
}

/// A `-v` receiver gets two datagrams, then `sig`: it exits with `code` and
/// still prints its summary.
fn summary_when_signalled(sig: i32, code: i32) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("payload");
    let (r, port) = receiver(V4, &[], Output::File(out.clone()));
    send(V4, &port, &["--message", "hello"], Input::Null).expect_code(0);
    send(V4, &port, &["--message", "goodbye"], Input::Null).expect_code(0);
    poll_until(
        LONG,
        || std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) >= 12,
        || format!("the payloads never reached stdout\n{}", r.stderr_now()),
    );
    r.signal(sig);
    let f = r.finish();
    f.expect_code(code);
    assert_eq!(std::fs::read(&out).unwrap(), b"hellogoodbye");
    assert!(
        f.stderr.lines().any(|l| l.contains("largest")
            && number_before(l, "datagram") == Some(2)
            && numbers_in(l).contains(&12)
            && numbers_in(l).contains(&7)),
        "no summary of 2 datagrams, 12 bytes, largest 7\n{}",
        f.dump()
    );
    assert_no_panic(&f);
}

#[test]
fn sigint_prints_the_summary_and_exits_130() {
    summary_when_signalled(libc::SIGINT, 130);
}

#[test]
fn sigterm_prints_the_summary_and_exits_143() {
    summary_when_signalled(libc::SIGTERM, 143);
}

#[test]
fn oversize_ipv4_datagram_exits_1_naming_the_limit() {
    let peer = UdpSocket::bind((V4, 0)).expect("bind");
    let port = peer.local_addr().unwrap().port().to_string();
    let f = send(
        V4,
        &port,
        &["--size", "65527"],
        Input::Bytes(random_bytes(65527, 41)),
    );
    f.expect_code(1);
    assert_no_panic(&f);
    let line = one_line(&f);
    let nums = numbers_in(&line);
    assert!(
        nums.contains(&65527) && nums.contains(&65507),
        "the message does not name the size 65527 and the limit 65507\n{}",
        f.dump()
    );
    peer.set_nonblocking(true).expect("set_nonblocking");
    let mut buf = [0u8; 16];
    assert!(
        peer.recv_from(&mut buf).is_err(),
        "something was sent\n{}",
        f.dump()
    );
}

/// `--lines` reads at most one datagram per line: a longer line is an error
/// naming the line, not an unbounded read or a silent cut.
#[test]
fn lines_longer_than_size_are_an_error() {
    let holder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let mut input = b"short\n".to_vec();
    input.extend(std::iter::repeat_n(b'a', 3000));
    input.push(b'\n');
    let r = run(
        &["udp-send", "--lines", "127.0.0.1", &port],
        Input::Bytes(input),
    );
    r.expect_code(1);
    assert!(
        r.stderr.contains("line 2") && r.stderr.contains("--size 1472"),
        "{}",
        r.dump()
    );
    let mut buf = [0u8; 64];
    holder
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let (n, _) = holder.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"short", "the line before the long one was sent");
}
