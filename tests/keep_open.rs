//! `listen -k`: concurrent clients, stdin fan-out, `--max-conns`, ACLs,
//! `--echo` and `--sink`. The relay's cases run over every stream transport
//! of the table (the IP loopbacks and a Unix socket); the ACL cases, whose
//! subject is the peer's IP address, over the IP loopbacks.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

const MIB: usize = 1024 * 1024;

/// Sends `data`, half-closes, and returns everything read until EOF.
fn send_and_drain(mut s: StdStream, data: &[u8]) -> Vec<u8> {
    s.write_all(data).expect("send");
    s.shutdown(Shutdown::Write).expect("shutdown");
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("read to EOF");
    got
}

/// Sends `data` while reading concurrently (for `--echo`), half-closes, and
/// returns everything read until EOF.
fn send_and_collect_concurrently(s: StdStream, data: Vec<u8>) -> Vec<u8> {
    let mut w = s.try_clone().expect("clone");
    let writer = thread::spawn(move || {
        w.write_all(&data).expect("send");
        w.shutdown(Shutdown::Write).expect("shutdown");
    });
    let mut r = s;
    let mut got = Vec::new();
    r.read_to_end(&mut got).expect("read to EOF");
    writer.join().expect("writer");
    got
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Client `i`'s payload: every byte carries `i` in its top six bits.
fn tagged(i: usize, len: usize) -> Vec<u8> {
    assert!(i < 64);
    random_bytes(len, i as u64)
        .into_iter()
        .map(|r| ((i as u8) << 2) | (r & 3))
        .collect()
}

#[test]
fn fifty_concurrent_clients_each_byte_exact_on_stdout() {
    const CLIENTS: usize = 50;
    const LATE: usize = CLIENTS; // the 51st client's tag
    const LATE_LEN: usize = 64 * 1024;
    for lo in stream_loops() {
        let (mut l, port) = listen_on(lo, &["-k"], Input::Null, Output::Capture);

        let barrier = Arc::new(Barrier::new(CLIENTS));
        let threads: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let barrier = barrier.clone();
                thread::spawn(move || {
                    let data = tagged(i, MIB);
                    barrier.wait();
                    let got = send_and_drain(lo.std_connect(port), &data);
                    assert!(got.is_empty(), "client {i} received {} bytes", got.len());
                    sha256(&data)
                })
            })
            .collect();
        let sent: Vec<String> = threads
            .into_iter()
            .map(|t| t.join().expect("client thread"))
            .collect();
        wait_lines(&mut l, "closed", CLIENTS, is_closed_line);

        // The listener still serves.
        let late = tagged(LATE, LATE_LEN);
        let got = send_and_drain(lo.std_connect(port), &late);
        assert!(got.is_empty());
        wait_lines(&mut l, "closed", CLIENTS + 1, is_closed_line);

        l.signal(libc::SIGTERM);
        let f = l.finish();
        f.expect_code(143);
        assert_eq!(
            f.stdout.len(),
            CLIENTS * MIB + LATE_LEN,
            "{lo:?}: total stdout\n{}",
            f.dump()
        );
        let mut streams: Vec<Vec<u8>> = vec![Vec::new(); 64];
        for &b in &f.stdout {
            streams[(b >> 2) as usize].push(b);
        }
        for (i, want) in sent.iter().enumerate() {
            assert_eq!(
                streams[i].len(),
                MIB,
                "{lo:?}: client {i} length\n{}",
                f.dump()
            );
            assert_eq!(
                &sha256(&streams[i]),
                want,
                "{lo:?}: client {i} data\n{}",
                f.dump()
            );
        }
        assert_eq!(
            streams[LATE],
            late,
            "{lo:?}: 51st client's data\n{}",
            f.dump()
        );
        assert!(
            streams[LATE + 1..].iter().all(|s| s.is_empty()),
            "{lo:?}: bytes from no client\n{}",
            f.dump()
        );
        let closed = f.stderr.lines().filter(|l| is_closed_line(l)).count();
        assert_eq!(closed, CLIENTS + 1, "{}", f.dump());
    }
}

#[test]
fn stdin_fans_out_to_every_client_and_its_eof_half_closes_them() {
    for lo in stream_loops() {
        let (mut l, port) = listen_on(lo, &["-k"], Input::Pipe, Output::Capture);
        let clients: Vec<StdStream> = (0..3).map(|_| lo.std_connect(port)).collect();
        wait_lines(&mut l, "connection from", 3, is_admitted_line);

        let data = random_bytes(100 * 1024, 7);
        let mut stdin = l.stdin.take().expect("stdin pipe");
        stdin.write_all(&data).expect("write stdin");
        drop(stdin);

        let readers: Vec<_> = clients
            .into_iter()
            .map(|mut s| {
                thread::spawn(move || {
                    let mut got = Vec::new();
                    s.read_to_end(&mut got).expect("read to EOF");
                    (s, got)
                })
            })
            .collect();
        let mut held = Vec::new();
        for (i, r) in readers.into_iter().enumerate() {
            let (s, got) = r.join().expect("reader");
            assert_eq!(
                got.len(),
                data.len(),
                "{lo:?}: client {i} length\n{}",
                l.dump()
            );
            assert!(got == data, "{lo:?}: client {i} received other bytes");
            held.push(s);
        }

        // stdin has ended: a later client is half-closed at once.
        let mut late = lo.std_connect(port);
        late.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 1024];
        match late.read(&mut buf) {
            Ok(0) => {}
            other => panic!(
                "{lo:?}: client after stdin EOF: expected EOF, got {other:?}\n{}",
                l.dump()
            ),
        }
        // Half-closed, not closed: what the late client sends still arrives.
        late.write_all(b"late-client").unwrap();
        late.shutdown(Shutdown::Write).unwrap();
        drop(held);
        wait_lines(&mut l, "closed", 4, is_closed_line);

        l.signal(libc::SIGTERM);
        let f = l.finish();
        f.expect_code(143);
        assert_eq!(f.stdout, b"late-client", "{lo:?}\n{}", f.dump());
    }
}

#[test]
fn max_conns_closes_extra_connections_unread_and_frees_slots() {
    for lo in stream_loops() {
        let (mut l, port) = listen_on(
            lo,
            &["-k", "--max-conns", "2"],
            Input::Pipe,
            Output::Capture,
        );
        let mut first = lo.std_connect(port);
        let second = lo.std_connect(port);
        wait_lines(&mut l, "connection from", 2, is_admitted_line);
        first.write_all(b"first;").unwrap();

        expect_closed_unread_on(lo, port, b"OVER-THE-LIMIT");
        let line = l.wait_for_stderr("--max-conns");
        assert!(line.contains("refused"), "{lo:?}: {line}");

        // A client that closes frees its slot at once.
        drop(second);
        wait_lines(&mut l, "closed", 1, is_closed_line);
        let got = send_and_drain(lo.std_connect(port), b"fourth;");
        assert!(got.is_empty());
        wait_lines(&mut l, "closed", 2, is_closed_line);

        first.shutdown(Shutdown::Write).unwrap();
        wait_lines(&mut l, "closed", 3, is_closed_line);
        l.signal(libc::SIGTERM);
        let f = l.finish();
        f.expect_code(143);
        let out = String::from_utf8_lossy(&f.stdout);
        assert!(
            out == "first;fourth;" || out == "fourth;first;",
            "{lo:?}: stdout {out:?}\n{}",
            f.dump()
        );
        assert!(!contains(&f.stdout, b"OVER-THE-LIMIT"), "{}", f.dump());
        assert_eq!(
            f.stderr.lines().filter(|l| is_admitted_line(l)).count(),
            3,
            "{}",
            f.dump()
        );
    }
}

/// ACL rules for one loopback: the address alone (`/32`, `/128`), a wider
/// net holding it, and a net that does not.
struct Nets {
    host: &'static str,
    wide: &'static str,
    other: &'static str,
}

fn nets(lo: Loop) -> Nets {
    match lo {
        Loop::V4 => Nets {
            host: "127.0.0.1/32",
            wide: "127.0.0.0/8",
            other: "10.0.0.0/8",
        },
        Loop::V6 => Nets {
            host: "::1/128",
            wide: "::/64",
            other: "fd00::/8",
        },
        Loop::Unix(_) => panic!("{lo:?}: no ACL over a Unix socket"),
    }
}

/// A `listen -k` with the ACL flags `extra(lo)` on `lo`, for every
/// loopback: the client from the loopback is closed unread and reported as
/// denied.
fn assert_denied_on_loopbacks(extra: impl Fn(Loop) -> Vec<String>) {
    for lo in loopbacks() {
        let acl = extra(lo);
        let mut args = vec!["-k"];
        args.extend(acl.iter().map(String::as_str));
        let (mut l, port) = listen_on(lo, &args, Input::Null, Output::Capture);
        expect_closed_unread(lo.addr(port), b"DENIED-DATA");
        let line = l.wait_for_stderr("denied");
        assert!(line.contains(lo.shown()), "{acl:?}: {line}");
        l.signal(libc::SIGTERM);
        let f = l.finish();
        f.expect_code(143);
        assert!(
            f.stdout.is_empty(),
            "{acl:?}: denied data reached stdout\n{}",
            f.dump()
        );
        assert!(
            !f.stderr.lines().any(is_admitted_line),
            "{acl:?}: denied peer was admitted\n{}",
            f.dump()
        );
    }
}

/// `["--flag", "value", ...]` as owned strings.
fn flags(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

#[test]
fn deny_closes_the_client_unread() {
    assert_denied_on_loopbacks(|lo| flags(&["--deny", lo.host()]));
}

#[test]
fn allow_alone_denies_unlisted_peers() {
    assert_denied_on_loopbacks(|lo| flags(&["--allow", nets(lo).other]));
}

#[test]
fn deny_wins_over_allow() {
    assert_denied_on_loopbacks(|lo| flags(&["--allow", lo.host(), "--deny", lo.host()]));
    assert_denied_on_loopbacks(|lo| flags(&["--allow", nets(lo).wide, "--deny", nets(lo).host]));
    assert_denied_on_loopbacks(|lo| flags(&["--deny", nets(lo).wide, "--allow", nets(lo).host]));
}

#[test]
fn deny_without_keep_open_waits_for_an_admitted_client() {
    for lo in loopbacks() {
        let (mut l, port) = listen_on(lo, &["--deny", lo.host()], Input::Null, Output::Capture);
        expect_closed_unread(lo.addr(port), b"DENIED-DATA");
        l.wait_for_stderr("denied");
        assert!(l.is_running(), "{lo:?}: listener ended\n{}", l.dump());
        l.signal(libc::SIGTERM);
        let f = l.finish();
        f.expect_code(143);
        assert!(f.stdout.is_empty(), "{}", f.dump());
    }
}

#[test]
fn allow_admits_a_listed_peer() {
    for lo in loopbacks() {
        let (l, port) = listen_on(
            lo,
            &["--allow", nets(lo).host],
            Input::Null,
            Output::Capture,
        );
        let got = send_and_drain(lo.std_connect(port), b"allowed data");
        assert!(got.is_empty());
        let f = l.finish();
        f.expect_code(0);
        assert_eq!(f.stdout, b"allowed data", "{lo:?}\n{}", f.dump());
    }
}

/// One wildcard listener, both families: `--allow 127.0.0.0/8` admits the
/// v4-mapped IPv4 client and denies the IPv6 one.
#[test]
fn dual_stack_listener_matches_v4_rules_against_v4_mapped_peers() {
    let mut l = spawn(
        &["-v", "listen", "-k", "--allow", "127.0.0.0/8", "0"],
        Input::Null,
        Output::Capture,
    );
    let port = l.listening_port();

    let got = send_and_drain(Loop::V4.std_connect(port), b"from-v4;");
    assert!(got.is_empty());
    wait_lines(&mut l, "closed", 1, is_closed_line);

    if have_ipv6() {
        expect_closed_unread(Loop::V6.addr(port), b"FROM-V6");
        l.wait_for_stderr("denied");
    } else {
        eprintln!("skipped: no IPv6 loopback (the ::1 half)");
    }

    l.signal(libc::SIGTERM);
    let f = l.finish();
    f.expect_code(143);
    assert_eq!(f.stdout, b"from-v4;", "{}", f.dump());
    assert_eq!(
        f.stderr.lines().filter(|l| is_admitted_line(l)).count(),
        1,
        "{}",
        f.dump()
    );
}

#[test]
fn echo_returns_two_mib_byte_exact() {
    let data = random_bytes(2 * MIB, 11);
    for lo in stream_loops() {
        let (l, port) = listen_on(
            lo,
            &["--echo"],
            Input::Bytes(b"stdin is ignored".to_vec()),
            Output::Capture,
        );
        let got = send_and_collect_concurrently(lo.std_connect(port), data.clone());
        assert_eq!(got.len(), data.len(), "{lo:?}");
        assert_eq!(sha256(&got), sha256(&data), "{lo:?}");
        let f = l.finish();
        f.expect_code(0);
        assert!(f.stdout.is_empty(), "--echo wrote to stdout\n{}", f.dump());
    }
}

#[test]
fn echo_keep_open_serves_two_clients_concurrently() {
    for lo in stream_loops() {
        let (mut l, port) = listen_on(lo, &["-k", "--echo"], Input::Pipe, Output::Capture);
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = (0..2u64)
            .map(|i| {
                let barrier = barrier.clone();
                thread::spawn(move || {
                    let data = random_bytes(2 * MIB, 100 + i);
                    barrier.wait();
                    let got = send_and_collect_concurrently(lo.std_connect(port), data.clone());
                    assert_eq!(got.len(), data.len(), "{lo:?}: client {i} length");
                    assert_eq!(sha256(&got), sha256(&data), "{lo:?}: client {i} data");
                })
            })
            .collect();
        for t in threads {
            t.join().expect("echo client");
        }
        wait_lines(&mut l, "closed", 2, is_closed_line);
        l.signal(libc::SIGTERM);
        let f = l.finish();
        f.expect_code(143);
        assert!(f.stdout.is_empty(), "{}", f.dump());
    }
}

#[test]
fn sink_discards_and_reports_bytes_per_client() {
    for lo in stream_loops() {
        let (mut l, port) = listen_on(lo, &["-k", "--sink"], Input::Null, Output::Capture);
        let threads: Vec<_> = (0..2u64)
            .map(|i| {
                thread::spawn(move || {
                    let got = send_and_drain(lo.std_connect(port), &random_bytes(MIB, 200 + i));
                    assert!(got.is_empty());
                })
            })
            .collect();
        for t in threads {
            t.join().expect("sink client");
        }
        wait_lines(&mut l, "closed", 2, is_closed_line);
        l.signal(libc::SIGTERM);
        let f = l.finish();
        f.expect_code(143);
        assert!(f.stdout.is_empty(), "--sink wrote to stdout\n{}", f.dump());
        assert_eq!(
            f.stderr
                .lines()
                .filter(|l| is_closed_line(l) && l.contains("received 1048576 bytes"))
                .count(),
            2,
            "{}",
            f.dump()
        );
    }
}
