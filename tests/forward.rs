//! `listen --to`: each client forwarded to its own upstream connection.
//! The upstreams are python servers (and sonda's TLS listener where TLS is
//! the subject); the clients are the test's own sockets, nc.openbsd and
//! sonda connect. Every transfer is checked by SHA-256, both halves of
//! half-close are shown, and each failure by its exit code, its words and
//! what the peer on the other side saw (a reset, not a clean EOF).

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// A python upstream on 127.0.0.1 serving every connection in a thread.
/// `mode`: `after` reads to EOF, then sends it all back and closes;
/// `first` sends 256 x N bytes of 0..255 and ends its half, then reads to
/// EOF and says on stderr `got LEN SHA256`; `flood` sends until the send
/// fails; `read` reads until EOF or an error. `flood` and `read` say how
/// they ended on stderr (`upstream: eof` or `upstream: errno N`).
fn upstream(mode: &str, n: usize) -> (Running, u16) {
    let script = r#"
import hashlib, socket, sys, threading
mode, n = sys.argv[1], int(sys.argv[2])
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(64)
print(l.getsockname()[1], flush=True)
def say(*a):
    print(*a, file=sys.stderr, flush=True)
def serve(c):
    try:
        if mode == 'after':
            data = bytearray()
            while True:
                b = c.recv(1 << 16)
                if not b:
                    break
                data += b
            c.sendall(data)
        elif mode == 'first':
            c.sendall(bytes(range(256)) * n)
            c.shutdown(socket.SHUT_WR)
            h, total = hashlib.sha256(), 0
            while True:
                b = c.recv(1 << 16)
                if not b:
                    break
                h.update(b); total += len(b)
            say('got', total, h.hexdigest())
        elif mode == 'flood':
            chunk = b'x' * 65536
            while True:
                c.sendall(chunk)
        elif mode == 'read':
            while c.recv(1 << 16):
                pass
            say('upstream: eof')
        c.close()
    except OSError as e:
        say('upstream: errno', e.errno)
while True:
    c, _ = l.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;
    port_holder(python(script, &[mode, &n.to_string()]))
}

fn forwarder(to: &str, extra: &[&str]) -> (Running, u16) {
    let mut args = vec!["--to", to];
    args.extend_from_slice(extra);
    listen("127.0.0.1", &args, Input::Null, Output::Null)
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Writes `data`, ends the half, reads to EOF: what came back.
fn round_trip(port: u16, data: &[u8]) -> Vec<u8> {
    let mut s = tcp_client(addr(port));
    s.set_read_timeout(Some(LONG)).unwrap();
    let mut reader = s.try_clone().unwrap();
    let got = thread::spawn(move || {
        let mut back = Vec::new();
        reader.read_to_end(&mut back).unwrap();
        back
    });
    s.write_all(data).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    got.join().unwrap()
}

/// What a read sees once the forwarder gave up on this client: a reset
/// (Err) or data/EOF (Ok).
fn read_outcome(s: &mut TcpStream) -> std::io::Result<usize> {
    s.set_read_timeout(Some(LONG)).unwrap();
    let mut buf = [0u8; 1024];
    s.read(&mut buf)
}

/// Connects and reads once: whether the forwarder reset this client. The
/// reset may come so soon after the accept (a refused upstream on
/// loopback) that it lands before connect(2) has returned here, which then
/// fails with ECONNRESET: the same outcome.
fn is_reset(port: u16) -> bool {
    match TcpStream::connect_timeout(&addr(port), Duration::from_secs(20)) {
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(mut s) => read_outcome(&mut s).is_err(),
    }
}

#[test]
fn many_clients_forwarded_byte_exact_both_ways() {
    let (_up, up_port) = upstream("after", 0);
    let to = format!("127.0.0.1:{up_port}");
    let (mut fwd, port) = forwarder(&to, &["-k"]);
    let clients: Vec<_> = (0..8u64)
        .map(|i| {
            thread::spawn(move || {
                let data = random_bytes(2 << 20, 100 + i);
                let back = round_trip(port, &data);
                assert_eq!(back.len(), data.len(), "client {i}");
                assert_eq!(sha256(&back), sha256(&data), "client {i}");
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    // nc.openbsd through it too: -N ends its half at stdin's EOF.
    if have("nc.openbsd") {
        let data = random_bytes(1 << 20, 7);
        let mut nc = Command::new("nc.openbsd");
        nc.args(["-N", "127.0.0.1", &port.to_string()]);
        let f = spawn_cmd(nc, Input::Bytes(data.clone()), Output::Capture).finish();
        f.expect_code(0);
        assert_eq!(sha256(&f.stdout), sha256(&data), "nc through the forwarder");
    } else {
        eprintln!("skipped: nc.openbsd through the forwarder (not installed)");
    }
    let clients = if have("nc.openbsd") { 9 } else { 8 };
    wait_lines(&mut fwd, "closed", clients, is_closed_line);
    let text = fwd.stderr_now();
    let forwarded = text
        .lines()
        .filter(|l| l.contains(&format!("forwarded to {to} from 127.0.0.1:")))
        .count();
    assert_eq!(forwarded, clients, "{text}");
    let two_mib = "2097152 bytes (2.00 MiB)";
    assert!(
        text.contains(&format!("closed: {two_mib} to {to}, {two_mib} back in")),
        "{text}"
    );
}

#[test]
fn half_close_passes_each_way_on() {
    // The upstream ends its half first and reads on: the client gets all
    // 1 MiB and its EOF while still sending, and its own end arrives after.
    let (mut up, up_port) = upstream("first", 4096);
    let (_fwd, port) = forwarder(&format!("127.0.0.1:{up_port}"), &["-k"]);
    let mut s = tcp_client(addr(port));
    s.set_read_timeout(Some(LONG)).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let expected: Vec<u8> = (0..4096).flat_map(|_| 0..=255u8).collect();
    assert_eq!(sha256(&got), sha256(&expected));
    // Still open upstream-bound, after the EOF the other way.
    let data = random_bytes(3 << 20, 9);
    s.write_all(&data).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let line = up.wait_for_stderr("got ");
    assert!(
        line.contains(&format!("got {} {}", data.len(), sha256(&data))),
        "{line}"
    );
}

#[test]
fn upstream_failures_reset_the_client_and_name_the_upstream() {
    let closed = closed_port("127.0.0.1");
    let to = format!("127.0.0.1:{closed}");
    // One client: the command's exit is the upstream connect's, 3.
    let (fwd, port) = forwarder(&to, &[]);
    assert!(is_reset(port), "the client was not reset");
    let f = fwd.finish();
    f.expect_code(3);
    assert!(
        f.stderr
            .contains(&format!("to {to}: connect {to}: connection refused")),
        "{}",
        f.dump()
    );
    // With -k each client is reset, the line is shown without -v, and the
    // listener goes on.
    let port = closed_port("127.0.0.1");
    let port_text = port.to_string();
    let args = ["listen", "-k", "--to", &to, "127.0.0.1", &port_text];
    let mut k = spawn(&args, Input::Null, Output::Null);
    wait_tcp_listen(Loop::V4, port);
    for _ in 0..2 {
        assert!(is_reset(port), "a -k client was not reset");
    }
    wait_lines(&mut k, "refused", 2, |l| l.contains("connection refused"));
    assert!(k.child.try_wait().unwrap().is_none(), "-k ended");
    // An upstream that does not answer within --to-timeout: exit 4. A
    // listener that never accepts, with its queue (backlog 0: one) full,
    // drops the SYN.
    let script = r#"
import socket, sys
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(0)
c = socket.create_connection(l.getsockname())
print(l.getsockname()[1], flush=True)
sys.stdin.read()
"#;
    let (_full, full_port) = port_holder(python(script, &[]));
    let to = format!("127.0.0.1:{full_port}");
    let (fwd, port) = forwarder(&to, &["--to-timeout", "0.5s"]);
    assert!(is_reset(port), "the client was not reset");
    let f = fwd.finish();
    f.expect_code(4);
    assert!(f.stderr.contains("timed out after 500ms"), "{}", f.dump());
}

#[test]
fn a_reset_on_one_side_resets_the_other() {
    // The client resets mid-upload: the upstream's read fails too.
    let (mut up, up_port) = upstream("read", 0);
    let (fwd, port) = forwarder(&format!("127.0.0.1:{up_port}"), &[]);
    let s = tcp_client(addr(port));
    (&s).write_all(&random_bytes(1 << 20, 3)).unwrap();
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    let line = up.wait_for_stderr("upstream: ");
    assert!(line.contains("errno 104"), "the upstream saw {line}");
    let f = fwd.finish();
    f.expect_code(1);
    assert!(f.stderr.contains("reset"), "{}", f.dump());

    // The upstream floods a client that never reads, then that client
    // resets: the forwarder, blocked on the full client, wakes and resets
    // the upstream.
    let (mut up, up_port) = upstream("flood", 0);
    let (fwd, port) = forwarder(&format!("127.0.0.1:{up_port}"), &[]);
    let s = tcp_client(addr(port));
    poll_until(
        LONG,
        || fwd.stderr_now().contains("forwarded to"),
        || fwd.stderr_now(),
    );
    // Let the buffers fill: the forwarder is then waiting to write.
    thread::sleep(Duration::from_millis(200));
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    let started = Instant::now();
    let f = fwd.finish();
    f.expect_code(1);
    assert!(started.elapsed() < LONG);
    let line = up.wait_for_stderr("upstream: ");
    assert!(
        line.contains("errno 104") || line.contains("errno 32"),
        "the upstream saw {line}"
    );
}

#[test]
fn idle_forwarded_sessions_end_with_exit_4() {
    let (_up, up_port) = upstream("read", 0);
    let (fwd, port) = forwarder(&format!("127.0.0.1:{up_port}"), &["--idle-timeout", "1s"]);
    let _s = tcp_client(addr(port));
    let f = fwd.finish();
    f.expect_code(4);
    assert!(f.stderr.contains("--idle-timeout"), "{}", f.dump());
}

#[test]
fn tls_on_both_sides_and_a_unix_upstream() {
    // client --TLS--> forwarder --TLS--> sonda listen --tls --echo
    let (mut echo, echo_port) = listen(
        "127.0.0.1",
        &["-k", "--tls", "--echo"],
        Input::Null,
        Output::Null,
    );
    let up_pin = ephemeral_pin(&mut echo);
    let to = format!("127.0.0.1:{echo_port}");
    let (mut fwd, port) = forwarder(
        &to,
        &["-k", "--tls", "--to-tls", "--to-pin-sha256", &up_pin],
    );
    let pin = ephemeral_pin(&mut fwd);
    let data = random_bytes(3 << 20, 11);
    let f = run(
        &[
            "connect",
            "--tls",
            "--pin-sha256",
            &pin,
            "127.0.0.1",
            &port.to_string(),
        ],
        Input::Bytes(data.clone()),
    );
    f.expect_code(0);
    assert_eq!(sha256(&f.stdout), sha256(&data));
    fwd.wait_for_stderr(&format!("TLS with {to}: TLS 1.3"));

    // An upstream whose certificate is not trusted (no pin): the client
    // is reset and the line says why.
    let (bad, bad_port) = forwarder(&to, &["--to-tls"]);
    let mut client = tcp_client(addr(bad_port));
    assert!(read_outcome(&mut client).is_err());
    let f = bad.finish();
    f.expect_code(7);
    assert!(f.stderr.contains("certificate not trusted"), "{}", f.dump());

    // A Unix upstream, and a Unix listener forwarding to TCP.
    let (_dir, path) = sock_path("up.sock");
    let mut unix_echo = spawn(
        &["-v", "listen", "-k", "--echo", "-U", s(&path)],
        Input::Null,
        Output::Null,
    );
    unix_echo.wait_for_stderr("listening on");
    let to_unix = format!("unix:{}", s(&path));
    let (_fu, fu_port) = forwarder(&to_unix, &["-k"]);
    let data = random_bytes(2 << 20, 12);
    assert_eq!(sha256(&round_trip(fu_port, &data)), sha256(&data));
    let (_dir2, front) = sock_path("front.sock");
    let mut fwd_unix = spawn(
        &[
            "-v",
            "listen",
            "-k",
            "-U",
            s(&front),
            "--to",
            &format!("127.0.0.1:{fu_port}"),
        ],
        Input::Null,
        Output::Null,
    );
    fwd_unix.wait_for_stderr("listening on");
    let f = run(&["connect", "-U", s(&front)], Input::Bytes(data.clone()));
    f.expect_code(0);
    assert_eq!(sha256(&f.stdout), sha256(&data));
}

#[test]
fn acl_and_max_conns_apply_to_forwarded_clients() {
    let (_up, up_port) = upstream("read", 0);
    let to = format!("127.0.0.1:{up_port}");
    let (mut fwd, port) = forwarder(&to, &["-k", "--max-conns", "1"]);
    let first = tcp_client(addr(port));
    fwd.wait_for_stderr("forwarded to");
    let mut second = tcp_client(addr(port));
    fwd.wait_for_stderr("--max-conns");
    let mut buf = [0u8; 1];
    second.set_read_timeout(Some(LONG)).unwrap();
    assert!(matches!(second.read(&mut buf), Ok(0) | Err(_)));
    drop(first);
    let (mut denied, dport) = forwarder(&to, &["-k", "--deny", "127.0.0.0/8"]);
    let mut s = tcp_client(addr(dport));
    denied.wait_for_stderr("denied connection");
    s.set_read_timeout(Some(LONG)).unwrap();
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
    assert!(!denied.stderr_now().contains("forwarded to"));
}

#[test]
fn bad_forwarding_arguments_are_usage_errors() {
    for (args, bad) in [
        (&["listen", "--to", "foo", "0"][..], "foo"),
        (&["listen", "--to", "127.0.0.1:99999", "0"], "99999"),
        (&["listen", "--to", "127.0.0.1:0", "0"], "127.0.0.1:0"),
        (&["listen", "--to", "unix:", "0"], "unix:"),
        (&["listen", "--to", "127.0.0.1:80", "--echo", "0"], "--echo"),
        (
            &["listen", "--to", "127.0.0.1:1", "--hexdump", "0"],
            "--hexdump[=<FILE>]",
        ),
    ] {
        usage_error(args, bad);
    }
    for (args, says) in [
        (&["listen", "--to-tls", "0"][..], "--to <TARGET>"),
        (
            &["listen", "--to", "unix:/x", "--to-tls", "0"],
            "--to-servername",
        ),
    ] {
        let f = run(args, Input::Null);
        f.expect_code(2);
        assert!(f.stderr.contains(says), "{}", f.dump());
    }
    let f = run(&["listen", "--to", "nosuch.invalid:80", "0"], Input::Null);
    f.expect_code(6);
    assert_no_panic(&f);
}
