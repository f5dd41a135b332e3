//! `listen -k`: concurrent clients, stdin fan-out, `--max-conns`, ACLs,
//! `--echo` and `--sink`.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
use common::*;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;

fn client(port: u16) -> TcpStream {
    client_to(SocketAddr::from(([127, 0, 0, 1], port)))
}

fn client_to(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(LONG)).unwrap();
    s.set_write_timeout(Some(LONG)).unwrap();
    s
}

/// Sends `data`, half-closes, and returns everything read until EOF.
fn send_and_drain(mut s: TcpStream, data: &[u8]) -> Vec<u8> {
    s.write_all(data).expect("send");
    s.shutdown(Shutdown::Write).expect("shutdown");
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("read to EOF");
    got
}

/// Sends `data` while reading concurrently (for `--echo`), half-closes, and
/// returns everything read until EOF.
fn send_and_collect_concurrently(s: TcpStream, data: Vec<u8>) -> Vec<u8> {
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

/// A connection the listener must close at once, unread: `data` is sent
/// (it may already be refused) and the read ends with EOF or a reset well
/// within the bound.
fn expect_closed_unread(addr: SocketAddr, data: &[u8]) {
    let mut s = client_to(addr);
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
    let (mut l, port) = listen("127.0.0.1", &["-k"], Input::Null, Output::Capture);

    let barrier = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                let data = tagged(i, MIB);
                barrier.wait();
                let got = send_and_drain(client(port), &data);
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
    let got = send_and_drain(client(port), &late);
    assert!(got.is_empty());
    wait_lines(&mut l, "closed", CLIENTS + 1, is_closed_line);

    l.signal(libc::SIGTERM);
    let f = l.finish();
    f.expect_code(143);
    assert_eq!(
        f.stdout.len(),
        CLIENTS * MIB + LATE_LEN,
        "total stdout\n{}",
        f.dump()
    );
    let mut streams: Vec<Vec<u8>> = vec![Vec::new(); 64];
    for &b in &f.stdout {
        streams[(b >> 2) as usize].push(b);
    }
    for (i, want) in sent.iter().enumerate() {
        assert_eq!(streams[i].len(), MIB, "client {i} length\n{}", f.dump());
        assert_eq!(&sha256(&streams[i]), want, "client {i} data\n{}", f.dump());
    }
    assert_eq!(streams[LATE], late, "51st client's data\n{}", f.dump());
    assert!(
        streams[LATE + 1..].iter().all(|s| s.is_empty()),
        "bytes from no client\n{}",
        f.dump()
    );
    let closed = f.stderr.lines().filter(|l| is_closed_line(l)).count();
    assert_eq!(closed, CLIENTS + 1, "{}", f.dump());
}

#[test]
fn stdin_fans_out_to_every_client_and_its_eof_half_closes_them() {
    let (mut l, port) = listen("127.0.0.1", &["-k"], Input::Pipe, Output::Capture);
    let clients: Vec<TcpStream> = (0..3).map(|_| client(port)).collect();
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
            "client {i} length\n{}",
            l.stderr_now()
        );
        assert!(got == data, "client {i} received other bytes");
        held.push(s);
    }

    // stdin has ended: a later client is half-closed at once.
    let mut late = client(port);
    late.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 1024];
    match late.read(&mut buf) {
        Ok(0) => {}
        other => panic!(
            "client after stdin EOF: expected EOF, got {other:?}\nstderr:\n{}",
            l.stderr_now()
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
    assert_eq!(f.stdout, b"late-client", "{}", f.dump());
}

#[test]
fn max_conns_closes_extra_connections_unread_and_frees_slots() {
    let (mut l, port) = listen(
        "127.0.0.1",
        &["-k", "--max-conns", "2"],
        Input::Pipe,
        Output::Capture,
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut first = client(port);
    let second = client(port);
    wait_lines(&mut l, "connection from", 2, is_admitted_line);
    first.write_all(b"first;").unwrap();

    expect_closed_unread(addr, b"OVER-THE-LIMIT");
    let line = l.wait_for_stderr("--max-conns");
    assert!(line.contains("refused"), "{line}");

    // A client that closes frees its slot at once.
    drop(second);
    wait_lines(&mut l, "closed", 1, is_closed_line);
    let got = send_and_drain(client(port), b"fourth;");
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
        "stdout {out:?}\n{}",
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

/// A `listen -k` with `extra` ACL flags on 127.0.0.1: the client from
/// 127.0.0.1 is closed unread and reported as denied.
fn assert_denied_on_loopback(extra: &[&str]) {
    let mut args = vec!["-k"];
    args.extend_from_slice(extra);
    let (mut l, port) = listen("127.0.0.1", &args, Input::Null, Output::Capture);
    expect_closed_unread(SocketAddr::from(([127, 0, 0, 1], port)), b"DENIED-DATA");
    let line = l.wait_for_stderr("denied");
    assert!(line.contains("127.0.0.1"), "{line}");
    l.signal(libc::SIGTERM);
    let f = l.finish();
    f.expect_code(143);
    assert!(
        f.stdout.is_empty(),
        "denied data reached stdout\n{}",
        f.dump()
    );
    assert!(
        !f.stderr.lines().any(is_admitted_line),
        "denied peer was admitted\n{}",
        f.dump()
    );
}

#[test]
fn deny_closes_the_client_unread() {
    assert_denied_on_loopback(&["--deny", "127.0.0.1"]);
}

#[test]
fn allow_alone_denies_unlisted_peers() {
    assert_denied_on_loopback(&["--allow", "10.0.0.0/8"]);
}

#[test]
fn deny_wins_over_allow() {
    assert_denied_on_loopback(&["--allow", "127.0.0.1", "--deny", "127.0.0.1"]);
    assert_denied_on_loopback(&["--allow", "127.0.0.0/8", "--deny", "127.0.0.1/32"]);
    assert_denied_on_loopback(&["--deny", "127.0.0.0/8", "--allow", "127.0.0.1/32"]);
}

#[test]
fn deny_without_keep_open_waits_for_an_admitted_client() {
    let (mut l, port) = listen(
        "127.0.0.1",
        &["--deny", "127.0.0.1"],
        Input::Null,
        Output::Capture,
    );
    expect_closed_unread(SocketAddr::from(([127, 0, 0, 1], port)), b"DENIED-DATA");
    l.wait_for_stderr("denied");
    assert!(l.child.try_wait().unwrap().is_none(), "listener ended");
    l.signal(libc::SIGTERM);
    let f = l.finish();
    f.expect_code(143);
    assert!(f.stdout.is_empty(), "{}", f.dump());
}

#[test]
fn allow_admits_a_listed_peer() {
    let (l, port) = listen(
        "127.0.0.1",
        &["--allow", "127.0.0.1/32"],
        Input::Null,
        Output::Capture,
    );
    let got = send_and_drain(client(port), b"allowed data");
    assert!(got.is_empty());
    let f = l.finish();
    f.expect_code(0);
    assert_eq!(f.stdout, b"allowed data", "{}", f.dump());
}

#[test]
fn dual_stack_listener_matches_v4_rules_against_v4_mapped_peers() {
    let mut l = spawn(
        &["-v", "listen", "-k", "--allow", "127.0.0.0/8", "0"],
        Input::Null,
        Output::Capture,
    );
    let port = l.listening_port();

    let got = send_and_drain(client(port), b"from-v4;");
    assert!(got.is_empty());
    wait_lines(&mut l, "closed", 1, is_closed_line);

    if have_ipv6() {
        expect_closed_unread(
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
            b"FROM-V6",
        );
        l.wait_for_stderr("denied");
    } else {
        eprintln!("no IPv6 loopback: the ::1 half is skipped");
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
    let (l, port) = listen(
        "127.0.0.1",
        &["--echo"],
        Input::Bytes(b"stdin is ignored".to_vec()),
        Output::Capture,
    );
    let data = random_bytes(2 * MIB, 11);
    let got = send_and_collect_concurrently(client(port), data.clone());
    assert_eq!(got.len(), data.len());
    assert_eq!(sha256(&got), sha256(&data));
    let f = l.finish();
    f.expect_code(0);
    assert!(f.stdout.is_empty(), "--echo wrote to stdout\n{}", f.dump());
}

#[test]
fn echo_keep_open_serves_two_clients_concurrently() {
    let (mut l, port) = listen("127.0.0.1", &["-k", "--echo"], Input::Pipe, Output::Capture);
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2u64)
        .map(|i| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                let data = random_bytes(2 * MIB, 100 + i);
                barrier.wait();
                let got = send_and_collect_concurrently(client(port), data.clone());
                assert_eq!(got.len(), data.len(), "client {i} length");
                assert_eq!(sha256(&got), sha256(&data), "client {i} data");
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

#[test]
fn sink_discards_and_reports_bytes_per_client() {
    let (mut l, port) = listen("127.0.0.1", &["-k", "--sink"], Input::Null, Output::Capture);
    let threads: Vec<_> = (0..2u64)
        .map(|i| {
            thread::spawn(move || {
                let got = send_and_drain(client(port), &random_bytes(MIB, 200 + i));
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
