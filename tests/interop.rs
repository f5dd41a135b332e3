//! Interoperability: sonda against peers nobody here wrote (python3 sockets,
//! OpenBSD netcat, ncat, socat). Every peer is on loopback; a test is skipped
//! when its peer is not installed.

mod common;
use common::*;

use std::process::Command;

/// A one-client TCP server: binds HOST:0, prints `PORT <n> ready` on stderr in
/// one write (the readiness signal; the trailing word proves the line is whole), reads to EOF, prints `<sha256 hex> <count>` on stdout,
/// then sends 2 MiB of `bytes(range(256))` and closes.
const PY_SERVER: &str = r#"
import hashlib, socket, sys
host = sys.argv[1]
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.bind((host, 0))
s.listen(1)
sys.stderr.write("PORT %d ready\n" % s.getsockname()[1])
sys.stderr.flush()
c, _ = s.accept()
h = hashlib.sha256()
n = 0
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    h.update(b)
    n += len(b)
print(h.hexdigest(), n, flush=True)
c.sendall(bytes(range(256)) * 8192)
c.close()
s.close()
"#;

/// A client: reads all of stdin, connects to HOST PORT, sends it from a
/// thread and half-closes, reads to EOF, prints `<sha256 hex> <count>`.
const PY_CLIENT: &str = r#"
import hashlib, socket, sys, threading
host, port = sys.argv[1], int(sys.argv[2])
data = sys.stdin.buffer.read()
c = socket.create_connection((host, port), timeout=60)
def send():
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send)
t.start()
h = hashlib.sha256()
n = 0
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    h.update(b)
    n += len(b)
t.join()
c.close()
print(h.hexdigest(), n, flush=True)
"#;

/// The 2 MiB PY_SERVER sends.
fn py_server_payload() -> Vec<u8> {
    (0..=255u8).cycle().take(2 << 20).collect()
}

/// Python's `<sha256 hex> <count>` line.
fn py_report(f: &Finished) -> (String, usize) {
    let text = String::from_utf8_lossy(&f.stdout).to_string();
    let mut words = text.split_whitespace();
    let hash = words
        .next()
        .unwrap_or_else(|| panic!("no hash from python\n{}", f.dump()));
    let count = words
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count from python: {text:?}\n{}", f.dump()));
    (hash.to_string(), count)
}

fn assert_same(what: &str, got: &[u8], want: &[u8], dumps: &[&Finished]) {
    if got != want {
        let all: Vec<String> = dumps.iter().map(|f| f.dump()).collect();
        panic!(
            "{what}: got {} bytes (sha256 {}), want {} bytes (sha256 {})\n{}",
            got.len(),
            sha256(got),
            want.len(),
            sha256(want),
            all.join("\n---\n")
        );
    }
}

fn expect_ok(fs: &[&Finished]) {
    for f in fs {
        if f.status.code() != Some(0) {
            let all: Vec<String> = fs.iter().map(|f| f.dump()).collect();
            panic!("{} did not exit 0\n{}", f.desc, all.join("\n---\n"));
        }
    }
}

// ---------------------------------------------------------------- python3

fn connect_to_python_server(host: &str) {
    let mut server = spawn_cmd(python(PY_SERVER, &[host]), Input::Null, Output::Capture);
    let line = server.wait_for_stderr(" ready");
    let port = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("bad port line {line:?}"))
        .to_string();
    let sent = random_bytes(8 << 20, 101);
    let c = run(&["connect", host, &port], Input::Bytes(sent.clone()));
    let s = server.finish();
    expect_ok(&[&c, &s]);
    let (hash, count) = py_report(&s);
    assert_eq!(
        (hash.as_str(), count),
        (sha256(&sent).as_str(), sent.len()),
        "python received something else\n{}\n---\n{}",
        c.dump(),
        s.dump()
    );
    assert_same(
        "sonda connect stdout",
        &c.stdout,
        &py_server_payload(),
        &[&c, &s],
    );
}

fn listen_for_python_client(host: &str) {
    let to_client = random_bytes(3 << 20, 102);
    let from_client = random_bytes(8 << 20, 103);
    let (l, port) = listen(host, &[], Input::Bytes(to_client.clone()), Output::Capture);
    let port = port.to_string();
    let p = spawn_cmd(
        python(PY_CLIENT, &[host, &port]),
        Input::Bytes(from_client.clone()),
        Output::Capture,
    )
    .finish();
    let lf = l.finish();
    expect_ok(&[&p, &lf]);
    assert_same("sonda listen stdout", &lf.stdout, &from_client, &[&lf, &p]);
    let (hash, count) = py_report(&p);
    assert_eq!(
        (hash.as_str(), count),
        (sha256(&to_client).as_str(), to_client.len()),
        "python received something else\n{}\n---\n{}",
        lf.dump(),
        p.dump()
    );
}

#[test]
fn connect_to_python_server_v4() {
    require!("python3");
    connect_to_python_server("127.0.0.1");
}

#[test]
fn listen_for_python_client_v4() {
    require!("python3");
    listen_for_python_client("127.0.0.1");
}

#[test]
fn connect_to_python_server_v6() {
    require!("python3");
    require_ipv6!();
    connect_to_python_server("::1");
}

#[test]
fn listen_for_python_client_v6() {
    require!("python3");
    require_ipv6!();
    listen_for_python_client("::1");
}

// ---------------------------------------------------------------- OpenBSD netcat

/// Runs `sonda connect 127.0.0.1 PORT` once the peer listens there (polled,
/// bounded, in the socket table: a probing connect would use up the one
/// connection a `nc -l` accepts).
fn connect_when_listening(port: u16, data: &[u8]) -> Finished {
    wait_tcp_listen(Loop::V4, port);
    connect_to(
        Loop::V4,
        port,
        &[],
        Input::Bytes(data.to_vec()),
        Output::Capture,
    )
    .finish()
}

#[test]
fn connect_to_nc_openbsd_listener() {
    require!("nc.openbsd");
    let port = closed_port("127.0.0.1");
    let mut cmd = Command::new("nc.openbsd");
    cmd.args(["-N", "-l", "127.0.0.1", &port.to_string()]);
    let nc = spawn_cmd(cmd, Input::Null, Output::Capture);
    let data = random_bytes(4 << 20, 104);
    let c = connect_when_listening(port, &data);
    let n = nc.finish();
    expect_ok(&[&c, &n]);
    assert_same("nc.openbsd stdout", &n.stdout, &data, &[&c, &n]);
    assert!(
        c.stdout.is_empty(),
        "sonda got bytes nc never sent\n{}",
        c.dump()
    );
}

#[test]
fn connect_to_nc_openbsd_listener_both_ways() {
    require!("nc.openbsd");
    let port = closed_port("127.0.0.1");
    let from_nc = random_bytes(2 << 20, 105);
    let to_nc = random_bytes(3 << 20, 106);
    let mut cmd = Command::new("nc.openbsd");
    cmd.args(["-N", "-l", "127.0.0.1", &port.to_string()]);
    let nc = spawn_cmd(cmd, Input::Bytes(from_nc.clone()), Output::Capture);
    let c = connect_when_listening(port, &to_nc);
    let n = nc.finish();
    expect_ok(&[&c, &n]);
    assert_same("nc.openbsd stdout", &n.stdout, &to_nc, &[&c, &n]);
    assert_same("sonda connect stdout", &c.stdout, &from_nc, &[&c, &n]);
}

#[test]
fn listen_for_nc_openbsd_client() {
    require!("nc.openbsd");
    let from_nc = random_bytes(4 << 20, 107);
    let to_nc = random_bytes(1 << 20, 108);
    let (l, port) = listen(
        "127.0.0.1",
        &[],
        Input::Bytes(to_nc.clone()),
        Output::Capture,
    );
    let mut cmd = Command::new("nc.openbsd");
    cmd.args(["-N", "127.0.0.1", &port.to_string()]);
    let n = spawn_cmd(cmd, Input::Bytes(from_nc.clone()), Output::Capture).finish();
    let lf = l.finish();
    expect_ok(&[&lf, &n]);
    assert_same("sonda listen stdout", &lf.stdout, &from_nc, &[&lf, &n]);
    assert_same("nc.openbsd stdout", &n.stdout, &to_nc, &[&lf, &n]);
}

// ---------------------------------------------------------------- ncat, socat

#[test]
fn listen_for_ncat_send_only() {
    require!("ncat");
    let data = random_bytes(4 << 20, 109);
    // stdin stays open until ncat is done, so sonda's half-close cannot make
    // ncat stop early; then EOF on stdin ends the session.
    let (mut l, port) = listen("127.0.0.1", &[], Input::Pipe, Output::Capture);
    let mut cmd = Command::new("ncat");
    cmd.args(["--send-only", "127.0.0.1", &port.to_string()]);
    let n = spawn_cmd(cmd, Input::Bytes(data.clone()), Output::Capture).finish();
    drop(l.stdin.take());
    let lf = l.finish();
    expect_ok(&[&lf, &n]);
    assert_same("sonda listen stdout", &lf.stdout, &data, &[&lf, &n]);
}

#[test]
fn listen_for_socat_unidirectional() {
    require!("socat");
    let data = random_bytes(4 << 20, 110);
    let (l, port) = listen("127.0.0.1", &[], Input::Null, Output::Capture);
    let mut cmd = Command::new("socat");
    cmd.args(["-u", "STDIN", &format!("TCP:127.0.0.1:{port}")]);
    let s = spawn_cmd(cmd, Input::Bytes(data.clone()), Output::Capture).finish();
    let lf = l.finish();
    expect_ok(&[&lf, &s]);
    assert_same("sonda listen stdout", &lf.stdout, &data, &[&lf, &s]);
}

#[test]
fn connect_to_socat_listener() {
    require!("socat");
    let port = closed_port("127.0.0.1");
    let mut cmd = Command::new("socat");
    cmd.args([
        "-u",
        &format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"),
        "STDOUT",
    ]);
    let s = spawn_cmd(cmd, Input::Null, Output::Capture);
    let data = random_bytes(4 << 20, 111);
    let c = connect_when_listening(port, &data);
    let sf = s.finish();
    expect_ok(&[&c, &sf]);
    assert_same("socat stdout", &sf.stdout, &data, &[&c, &sf]);
}
