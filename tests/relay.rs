//! The relay contract of DESIGN.md, sonda against sonda, over every
//! stream transport of the table (the IP loopbacks and a Unix socket):
//! full duplex, half-close, binary safety, empty stdin; name resolution and
//! the dual-stack wildcard over IP only.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::io::Write;
use std::thread;
use std::time::Duration;

use common::*;

/// `client_bytes` from connect's stdin to listen's stdout while
/// `server_bytes` go the other way, in one session; both byte-exact.
fn duplex(lo: Loop, client_bytes: usize, server_bytes: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (up, down) = (dir.path().join("up"), dir.path().join("down"));
    let (up_data, down_data) = (random_bytes(client_bytes, 1), random_bytes(server_bytes, 2));
    std::fs::write(&up, &up_data).unwrap();
    std::fs::write(&down, &down_data).unwrap();
    let (server, port) = listen_on(lo, &[], Input::File(down), Output::Capture);
    let client = connect_to(lo, port, &[], Input::File(up), Output::Capture);
    let (c, s) = (client.finish(), server.finish());
    c.expect_code(0);
    s.expect_code(0);
    assert_eq!(s.stdout.len(), client_bytes, "{lo:?}\n{}", s.dump());
    assert_eq!(
        sha256(&s.stdout),
        sha256(&up_data),
        "{lo:?}: client to server differs"
    );
    assert_eq!(c.stdout.len(), server_bytes, "{lo:?}\n{}", c.dump());
    assert_eq!(
        sha256(&c.stdout),
        sha256(&down_data),
        "{lo:?}: server to client differs"
    );
}

#[test]
fn full_duplex_unequal_sizes() {
    for lo in stream_loops() {
        duplex(lo, 64 << 20, 32 << 20);
        duplex(lo, 32 << 20, 64 << 20);
    }
}

/// Same through pipes rather than files on both stdins.
#[test]
fn full_duplex_through_pipes() {
    let up = random_bytes(16 << 20, 3);
    let down = random_bytes(8 << 20, 4);
    for lo in stream_loops() {
        let (server, port) = listen_on(lo, &[], Input::Bytes(down.clone()), Output::Capture);
        let client = connect_to(lo, port, &[], Input::Bytes(up.clone()), Output::Capture);
        let (c, s) = (client.finish(), server.finish());
        c.expect_code(0);
        s.expect_code(0);
        assert_eq!(sha256(&s.stdout), sha256(&up), "{lo:?}\n{}", s.dump());
        assert_eq!(sha256(&c.stdout), sha256(&down), "{lo:?}\n{}", c.dump());
    }
}

/// The client sends a request and EOF; the server sees the request and its
/// EOF, and replies 1.5 s later; the reply reaches the client.
#[test]
fn half_close_delayed_reply() {
    for lo in stream_loops() {
        let (mut server, port) = listen_on(lo, &[], Input::Pipe, Output::Pipe);
        let request = b"GET /half-close\r\n".to_vec();
        let client = connect_to(
            lo,
            port,
            &[],
            Input::Bytes(request.clone()),
            Output::Capture,
        );
        // The server's stdout reaches EOF when the client's EOF arrives.
        let seen = server.stdout_pipe().read_to_end_within(LONG);
        assert_eq!(seen, request, "{lo:?}\n{}", server.dump());
        // The delay is the scenario (a slow server), not a readiness wait.
        thread::sleep(Duration::from_millis(1500));
        let reply = b"HTTP/1.0 200 OK\r\n\r\nlate but whole\n".to_vec();
        let mut stdin = server.stdin.take().unwrap();
        stdin.write_all(&reply).unwrap();
        drop(stdin);
        let c = client.finish();
        c.expect_code(0);
        assert_eq!(c.stdout, reply, "{lo:?}\n{}", c.dump());
        server.finish().expect_code(0);
    }
}

/// Every byte value, CR, LF and NUL included, passes unchanged both ways.
#[test]
fn binary_safe() {
    let mut all: Vec<u8> = (0..=255u8).collect();
    all.extend_from_slice(b"\r\n\0\r\r\n\n\0\0\x1b[2J\x04\x03");
    let pattern: Vec<u8> = all.iter().cycle().take(all.len() * 300).copied().collect();
    for lo in stream_loops() {
        let (server, port) = listen_on(lo, &[], Input::Bytes(pattern.clone()), Output::Capture);
        let c = connect_to(
            lo,
            port,
            &[],
            Input::Bytes(pattern.clone()),
            Output::Capture,
        )
        .finish();
        let s = server.finish();
        c.expect_code(0);
        s.expect_code(0);
        assert!(s.stdout == pattern, "{lo:?}: to the server\n{}", s.dump());
        assert!(c.stdout == pattern, "{lo:?}: to the client\n{}", c.dump());
    }
}

/// An empty stdin gives the peer an immediate EOF; both sides exit 0.
#[test]
fn empty_stdin_is_immediate_eof() {
    for lo in stream_loops() {
        let (server, port) = listen_on(lo, &[], Input::Bytes(b"bye\n".to_vec()), Output::Capture);
        let c = connect_to(lo, port, &[], Input::Null, Output::Capture).finish();
        let s = server.finish();
        c.expect_code(0);
        s.expect_code(0);
        assert!(s.stdout.is_empty(), "{lo:?}\n{}", s.dump());
        assert_eq!(c.stdout, b"bye\n", "{lo:?}\n{}", c.dump());
    }
}

/// A name is resolved by the system resolver; `-4 localhost` reaches an
/// IPv4 loopback listener (the hosts file need not name ::1 at all).
#[test]
fn connects_by_name() {
    let (server, port) = listen_on(Loop::V4, &[], Input::Null, Output::Capture);
    let c = run(
        &["-4", "connect", "localhost", &port.to_string()],
        Input::Bytes(b"by name".to_vec()),
    );
    c.expect_code(0);
    let s = server.finish();
    s.expect_code(0);
    assert_eq!(s.stdout, b"by name", "{}", s.dump());
}

/// With no HOST, listen takes both families on one dual-stack socket.
#[test]
fn wildcard_listener_is_dual_stack() {
    require_ipv6!();
    for (i, lo) in [Loop::V4, Loop::V6].into_iter().enumerate() {
        let mut l = spawn(&["-v", "listen", "0"], Input::Null, Output::Capture);
        let line = l.wait_for_stderr("listening on");
        assert!(line.contains("[::]"), "{line}");
        let port = l.listening_port();
        let data = random_bytes(1 << 20, 10 + i as u64);
        let c = connect_to(lo, port, &[], Input::Bytes(data.clone()), Output::Capture).finish();
        c.expect_code(0);
        let s = l.finish();
        s.expect_code(0);
        assert_eq!(sha256(&s.stdout), sha256(&data), "{lo:?}\n{}", s.dump());
        let peer_line = s
            .stderr
            .lines()
            .find(|l| l.contains("connection from"))
            .unwrap_or_else(|| panic!("no peer line\n{}", s.dump()));
        // The peer as sonda prints it: HOST:PORT, brackets around IPv6.
        let expected = format!("{}:", lo.shown());
        assert!(peer_line.contains(&expected), "{lo:?}: {peer_line}");
    }
}

/// `-v` on connect names the address tried, the connect time and the byte
/// counts; stdout carries payload only.
#[test]
fn verbose_connect_reports_on_stderr_only() {
    for lo in stream_loops() {
        let (server, port) = listen_on(lo, &[], Input::Bytes(b"pong".to_vec()), Output::Capture);
        let c = connect_to(
            lo,
            port,
            &["-v"],
            Input::Bytes(b"ping".to_vec()),
            Output::Capture,
        )
        .finish();
        c.expect_code(0);
        server.finish().expect_code(0);
        assert_eq!(c.stdout, b"pong", "{lo:?}\n{}", c.dump());
        assert!(
            c.stderr.contains(&format!("trying {}", lo.endpoint(port))),
            "{}",
            c.dump()
        );
        assert!(c.stderr.contains("connected to"), "{}", c.dump());
        assert!(
            c.stderr.contains("sent 4 bytes, received 4 bytes"),
            "{}",
            c.dump()
        );
    }
}
