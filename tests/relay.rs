//! The relay contract of DESIGN.md, sonda against sonda, over 127.0.0.1 and
//! ::1: full duplex, half-close, binary safety, empty stdin.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use common::*;

/// `client_bytes` from connect's stdin to listen's stdout while
/// `server_bytes` go the other way, in one session; both byte-exact.
fn duplex(host: &str, client_bytes: usize, server_bytes: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (up, down) = (dir.path().join("up"), dir.path().join("down"));
    let (up_data, down_data) = (random_bytes(client_bytes, 1), random_bytes(server_bytes, 2));
    std::fs::write(&up, &up_data).unwrap();
    std::fs::write(&down, &down_data).unwrap();
    let (server, port) = listen(host, &[], Input::File(down), Output::Capture);
    let client = spawn(
        &["connect", host, &port.to_string()],
        Input::File(up),
        Output::Capture,
    );
    let (c, s) = (client.finish(), server.finish());
    c.expect_code(0);
    s.expect_code(0);
    assert_eq!(s.stdout.len(), client_bytes, "{}", s.dump());
    assert_eq!(
        sha256(&s.stdout),
        sha256(&up_data),
        "client to server differs"
    );
    assert_eq!(c.stdout.len(), server_bytes, "{}", c.dump());
    assert_eq!(
        sha256(&c.stdout),
        sha256(&down_data),
        "server to client differs"
    );
}

#[test]
fn full_duplex_unequal_sizes() {
    for host in loopbacks() {
        duplex(host, 64 << 20, 32 << 20);
        duplex(host, 32 << 20, 64 << 20);
    }
}

/// Same through pipes rather than files on both stdins.
#[test]
fn full_duplex_through_pipes() {
    let up = random_bytes(16 << 20, 3);
    let down = random_bytes(8 << 20, 4);
    let (server, port) = listen(
        "127.0.0.1",
        &[],
        Input::Bytes(down.clone()),
        Output::Capture,
    );
    let client = spawn(
        &["connect", "127.0.0.1", &port.to_string()],
        Input::Bytes(up.clone()),
        Output::Capture,
    );
    let (c, s) = (client.finish(), server.finish());
    c.expect_code(0);
    s.expect_code(0);
    assert_eq!(sha256(&s.stdout), sha256(&up), "{}", s.dump());
    assert_eq!(sha256(&c.stdout), sha256(&down), "{}", c.dump());
}

/// The client sends a request and EOF; the server sees the request and its
/// EOF, and replies 1.5 s later; the reply reaches the client.
#[test]
fn half_close_delayed_reply() {
    for host in loopbacks() {
        let mut server = Command::new(bin())
            .args(["-v", "listen", host, "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = server.stderr.take().unwrap();
        let port = read_port(&mut err);
        let request = b"GET /half-close\r\n".to_vec();
        let client = spawn(
            &["connect", host, &port.to_string()],
            Input::Bytes(request.clone()),
            Output::Capture,
        );
        // The server's stdout reaches EOF when the client's EOF arrives.
        let mut out = server.stdout.take().unwrap();
        let mut seen = Vec::new();
        out.read_to_end(&mut seen).unwrap();
        assert_eq!(seen, request);
        // The reply comes 1.5 s after the EOF, as the acceptance asks.
        thread::sleep(Duration::from_millis(1500));
        let reply = b"HTTP/1.0 200 OK\r\n\r\nlate but whole\n".to_vec();
        {
            use std::io::Write;
            let mut stdin = server.stdin.take().unwrap();
            stdin.write_all(&reply).unwrap();
        }
        let c = client.finish();
        c.expect_code(0);
        assert_eq!(c.stdout, reply, "{}", c.dump());
        let status = wait_child(&mut server);
        assert_eq!(status.code(), Some(0));
        drop(err);
    }
}

fn read_port(err: &mut std::process::ChildStderr) -> u16 {
    let mut text = String::new();
    let mut byte = [0u8; 1];
    while !text.contains('\n') {
        match err.read(&mut byte) {
            Ok(1) => text.push(byte[0] as char),
            _ => panic!("listener ended before its port line: {text}"),
        }
    }
    let addr = text.split("listening on ").nth(1).expect("listening line");
    addr.trim()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .expect("port")
}

fn wait_child(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not exit");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Every byte value, CR, LF and NUL included, passes unchanged both ways.
#[test]
fn binary_safe() {
    let mut all: Vec<u8> = (0..=255u8).collect();
    all.extend_from_slice(b"\r\n\0\r\r\n\n\0\0\x1b[2J\x04\x03");
    let pattern: Vec<u8> = all.iter().cycle().take(all.len() * 300).copied().collect();
    let (server, port) = listen(
        "127.0.0.1",
        &[],
        Input::Bytes(pattern.clone()),
        Output::Capture,
    );
    let c = run(
        &["connect", "127.0.0.1", &port.to_string()],
        Input::Bytes(pattern.clone()),
    );
    let s = server.finish();
    c.expect_code(0);
    s.expect_code(0);
    assert_eq!(s.stdout, pattern);
    assert_eq!(c.stdout, pattern);
}

/// An empty stdin gives the peer an immediate EOF; both sides exit 0.
#[test]
fn empty_stdin_is_immediate_eof() {
    let (server, port) = listen(
        "127.0.0.1",
        &[],
        Input::Bytes(b"bye\n".to_vec()),
        Output::Capture,
    );
    let c = run(&["connect", "127.0.0.1", &port.to_string()], Input::Null);
    let s = server.finish();
    c.expect_code(0);
    s.expect_code(0);
    assert!(s.stdout.is_empty(), "{}", s.dump());
    assert_eq!(c.stdout, b"bye\n");
}

/// A name is resolved by the system resolver; `localhost` reaches a
/// loopback listener of either family.
#[test]
fn connects_by_name() {
    let (server, port) = listen("127.0.0.1", &[], Input::Null, Output::Capture);
    let c = run(
        &["-4", "connect", "localhost", &port.to_string()],
        Input::Bytes(b"by name".to_vec()),
    );
    c.expect_code(0);
    let s = server.finish();
    s.expect_code(0);
    assert_eq!(s.stdout, b"by name");
}

/// With no HOST, listen takes both families on one dual-stack socket.
#[test]
fn wildcard_listener_is_dual_stack() {
    if !have_ipv6() {
        eprintln!("skipped: no IPv6");
        return;
    }
    for (i, client_host) in ["127.0.0.1", "[::1]"].iter().enumerate() {
        let mut l = spawn(&["-v", "listen", "0"], Input::Null, Output::Capture);
        let line = l.wait_for_stderr("listening on");
        assert!(line.contains("[::]"), "{line}");
        let port = l.listening_port();
        let data = random_bytes(1 << 20, 10 + i as u64);
        let c = run(
            &["connect", client_host, &port.to_string()],
            Input::Bytes(data.clone()),
        );
        c.expect_code(0);
        let s = l.finish();
        s.expect_code(0);
        assert_eq!(sha256(&s.stdout), sha256(&data));
        let peer_line = s
            .stderr
            .lines()
            .find(|l| l.contains("connection from"))
            .unwrap();
        let expected = if i == 0 { "127.0.0.1:" } else { "[::1]:" };
        assert!(peer_line.contains(expected), "{peer_line}");
    }
}

/// `-v` on connect names the address tried, the connect time and the byte
/// counts; stdout carries payload only.
#[test]
fn verbose_connect_reports_on_stderr_only() {
    let (server, port) = listen(
        "127.0.0.1",
        &[],
        Input::Bytes(b"pong".to_vec()),
        Output::Capture,
    );
    let c = run(
        &["-v", "connect", "127.0.0.1", &port.to_string()],
        Input::Bytes(b"ping".to_vec()),
    );
    c.expect_code(0);
    server.finish().expect_code(0);
    assert_eq!(c.stdout, b"pong");
    assert!(
        c.stderr.contains(&format!("trying 127.0.0.1:{port}")),
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
