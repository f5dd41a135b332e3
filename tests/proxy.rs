//! `connect --proxy`: through real proxies nobody here wrote (microsocks
//! for SOCKS5 with and without credentials, dante for SOCKS5 with
//! half-close and its ruleset, tinyproxy for HTTP CONNECT)
//! and python stubs for what those cannot show (SOCKS4a, a SOCKS5 reply
//! with a domain-name bound address followed at once by the target's
//! bytes, a proxy that stalls, half-close through the tunnel). Transfers
//! are checked by SHA-256; every failure by its exit code and its words.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// microsocks on a free loopback port; `auth` is (user, password).
fn microsocks(auth: Option<(&str, &str)>) -> (Running, u16) {
    let port = closed_port("127.0.0.1");
    let mut cmd = Command::new("microsocks");
    cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
    if let Some((u, p)) = auth {
        cmd.args(["-u", u, "-P", p]);
    }
    let r = spawn_cmd(cmd, Input::Null, Output::Null);
    wait_tcp_listen(Loop::V4, port);
    (r, port)
}

/// tinyproxy in the foreground with its own configuration; `auth` adds
/// BasicAuth.
fn tinyproxy(dir: &std::path::Path, auth: Option<(&str, &str)>) -> (Running, u16) {
    let port = closed_port("127.0.0.1");
    let conf = dir.join(format!("tinyproxy-{port}.conf"));
    let mut text = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 50\nAllow 127.0.0.1\nLogLevel Critical\n"
    );
    if let Some((u, p)) = auth {
        text.push_str(&format!("BasicAuth {u} {p}\n"));
    }
    std::fs::write(&conf, text).unwrap();
    let mut cmd = Command::new("tinyproxy");
    cmd.arg("-d").arg("-c").arg(&conf);
    let r = spawn_cmd(cmd, Input::Null, Output::Null);
    wait_tcp_listen(Loop::V4, port);
    (r, port)
}

/// dante (danted) in the foreground on a free loopback port, without
/// authentication, refusing by rule every connect to `blocked`.
fn dante(dir: &std::path::Path, blocked: u16) -> (Running, u16) {
    let port = closed_port("127.0.0.1");
    let conf = dir.join(format!("danted-{port}.conf"));
    // As root dante drops to this user for what it need not do as root;
    // as anyone else it runs as that user and must not be told one.
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user.unprivileged: nobody\n"
    } else {
        ""
    };
    let text = format!(
        "logoutput: stderr\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\n\
         clientmethod: none\nsocksmethod: none\n{user}\
         client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n\
         socks block {{ from: 0.0.0.0/0 to: 0.0.0.0/0 port = {blocked} }}\n\
         socks pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect }}\n"
    );
    std::fs::write(&conf, text).unwrap();
    let mut cmd = Command::new("danted");
    cmd.arg("-f").arg(&conf).args(["-N", "1"]);
    let r = spawn_cmd(cmd, Input::Null, Output::Capture);
    wait_tcp_listen(Loop::V4, port);
    (r, port)
}

/// A python proxy for one client. `mode`: socks5 (answers with a
/// domain-name bound address and sends `banner` in the same segment as
/// the reply), socks4a, http (the same banner after its header), stall
/// (accepts, never answers). It relays with half-close, and prints the
/// request it got (hex) on stderr.
fn stub(mode: &str, banner: &str) -> (Running, u16) {
    let script = r#"
import socket, sys, threading
mode, banner = sys.argv[1], sys.argv[2].encode()
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(4)
print(l.getsockname()[1], flush=True)
c, _ = l.accept()
def exact(n):
    b = b''
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d: sys.exit(0)
        b += d
    return b
def until(end):
    b = b''
    while not b.endswith(end):
        d = c.recv(1)
        if not d: sys.exit(0)
        b += d
    return b
if mode == 'stall':
    sys.stdin.read(); sys.exit(0)
if mode == 'socks5':
    ver, n = exact(2); exact(n); c.sendall(b'\x05\x00')
    head = exact(4); atyp = head[3]
    if atyp == 1: addr = socket.inet_ntoa(exact(4))
    elif atyp == 4: addr = socket.inet_ntop(socket.AF_INET6, exact(16))
    else: addr = exact(exact(1)[0]).decode()
    port = int.from_bytes(exact(2), 'big')
    print('request atyp=%d %s %d' % (atyp, addr, port), file=sys.stderr, flush=True)
    name = b'proxy.example'
    reply = b'\x05\x00\x00\x03' + bytes([len(name)]) + name + b'\x04\x38'
elif mode == 'socks4a':
    head = exact(8); until(b'\0')
    port = int.from_bytes(head[2:4], 'big')
    addr = until(b'\0')[:-1].decode() if head[4:7] == b'\0\0\0' else socket.inet_ntoa(head[4:8])
    print('request socks4 %s %d' % (addr, port), file=sys.stderr, flush=True)
    reply = b'\x00\x5a' + head[2:8]
else:
    req = until(b'\r\n\r\n').decode()
    print('request ' + req.split('\r\n')[0], file=sys.stderr, flush=True)
    addr, port = req.split()[1].rsplit(':', 1); addr = addr.strip('[]'); port = int(port)
    reply = b'HTTP/1.1 200 Connection established\r\nVia: stub\r\n\r\n'
try:
    u = socket.create_connection((addr, port))
except OSError:
    c.sendall({'socks5': b'\x05\x05\x00\x01\0\0\0\0\0\0', 'socks4a': b'\x00\x5b' + bytes(6),
               'http': b'HTTP/1.1 502 Bad Gateway\r\n\r\n'}[mode]); sys.exit(0)
c.sendall(reply + banner)
def pump(a, b):
    while True:
        d = a.recv(65536)
        if not d: break
        b.sendall(d)
    b.shutdown(socket.SHUT_WR)
t = threading.Thread(target=pump, args=(u, c)); t.start()
pump(c, u); t.join()
"#;
    let mut h = spawn_cmd(python(script, &[mode, banner]), Input::Pipe, Output::Pipe);
    let line = h.stdout_pipe().next_line(LONG).unwrap_or_default();
    let port = String::from_utf8_lossy(&line)
        .trim()
        .parse::<u16>()
        .unwrap();
    (h, port)
}

fn connect_via(proxy: &str, extra: &[&str], host: &str, port: u16, input: Input) -> Finished {
    let port = port.to_string();
    let mut args = vec!["connect", "--proxy", proxy];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[host, &port]);
    run(&args, input)
}

/// An upload through the proxy into `sonda listen`: every byte, in order.
/// The listener's stdin stays open until the upload is done: these
/// proxies close both ways when one side ends, so a listener that
/// half-closed at once would cut the upload.
fn upload(proxy: &str, extra: &[&str], host: &str, size: usize, seed: u64) -> Finished {
    let data = random_bytes(size, seed);
    let (mut l, port) = listen("127.0.0.1", &[], Input::Pipe, Output::Capture);
    let mut args = vec!["-v"];
    args.extend_from_slice(extra);
    let f = connect_via(proxy, &args, host, port, Input::Bytes(data.clone()));
    drop(l.stdin.take());
    let lf = l.finish();
    assert_eq!(
        sha256(&lf.stdout),
        sha256(&data),
        "the target got other bytes\n{}\n{}",
        f.dump(),
        lf.dump()
    );
    f
}

#[test]
fn socks5_through_microsocks_with_and_without_credentials() {
    require!("microsocks");
    let (_open, port) = microsocks(None);
    let url = format!("socks5://127.0.0.1:{port}");
    let f = upload(&url, &[], "localhost", 4 << 20, 1);
    f.expect_code(0);
    for stage in [
        "proxy: TCP to 127.0.0.1:",
        "proxy: method: no authentication in ",
        "proxy: reply: succeeded, the proxy connected to localhost:",
        "through socks5://127.0.0.1:",
    ] {
        assert!(f.stderr.contains(stage), "no '{stage}'\n{}", f.dump());
    }
    let (_auth, aport) = microsocks(Some(("alice", "s3cret")));
    // The password in the URL, percent-encoded or not, and from the
    // environment (never on the command line).
    let f = upload(
        &format!("socks5://alice:s3cret@127.0.0.1:{aport}"),
        &[],
        "127.0.0.1",
        1 << 20,
        2,
    );
    f.expect_code(0);
    assert!(
        f.stderr.contains("authenticated as 'alice'"),
        "{}",
        f.dump()
    );
    let data = random_bytes(100_000, 3);
    let (mut l, lport) = listen("127.0.0.1", &[], Input::Pipe, Output::Capture);
    let mut cmd = Command::new(bin());
    cmd.args([
        "connect",
        "--proxy",
        &format!("socks5://alice@127.0.0.1:{aport}"),
    ])
    .args(["127.0.0.1", &lport.to_string()])
    .env("SONDA_PROXY_PASSWORD", "s3cret");
    spawn_cmd(cmd, Input::Bytes(data.clone()), Output::Capture)
        .finish()
        .expect_code(0);
    drop(l.stdin.take());
    assert_eq!(sha256(&l.finish().stdout), sha256(&data));
    // Wrong password, and no credentials for a proxy that wants them.
    let (l, lport) = listen("127.0.0.1", &[], Input::Null, Output::Capture);
    let f = connect_via(
        &format!("socks5://alice:wrong@127.0.0.1:{aport}"),
        &[],
        "127.0.0.1",
        lport,
        Input::Bytes(b"x".to_vec()),
    );
    f.expect_code(1);
    assert!(
        one_line(&f).contains("authentication rejected for user 'alice'"),
        "{}",
        f.dump()
    );
    let f = connect_via(
        &format!("socks5://127.0.0.1:{aport}"),
        &[],
        "127.0.0.1",
        lport,
        Input::Null,
    );
    f.expect_code(1);
    assert!(
        f.stderr
            .contains("authentication rejected: the proxy accepts no method offered"),
        "{}",
        f.dump()
    );
    assert!(
        f.stderr.contains("SONDA_PROXY_PASSWORD"),
        "the hint names the variable\n{}",
        f.dump()
    );
    drop(l);
}

#[test]
fn refusals_through_the_proxy_and_a_proxy_that_is_down_or_silent() {
    require!("microsocks");
    let (_p, port) = microsocks(None);
    let closed = closed_port("127.0.0.1");
    let f = connect_via(
        &format!("socks5://127.0.0.1:{port}"),
        &[],
        "127.0.0.1",
        closed,
        Input::Null,
    );
    f.expect_code(3);
    assert!(
        one_line(&f).contains("connection refused (SOCKS5 reply 5)"),
        "{}",
        f.dump()
    );
    // The proxy itself refused: as a direct connect, naming the proxy.
    let down = closed_port("127.0.0.1");
    let f = connect_via(
        &format!("socks5://127.0.0.1:{down}"),
        &[],
        "127.0.0.1",
        closed,
        Input::Null,
    );
    f.expect_code(3);
    assert!(one_line(&f).contains("SOCKS5 proxy"), "{}", f.dump());
    // A proxy that accepts and never answers: -w bounds it, exit 4.
    for mode in ["socks5", "http"] {
        let (_stall, sport) = stub("stall", "");
        let started = Instant::now();
        let f = connect_via(
            &format!("{mode}://127.0.0.1:{sport}"),
            &["-w", "1s"],
            "127.0.0.1",
            closed,
            Input::Null,
        );
        f.expect_code(4);
        assert!(started.elapsed() < Duration::from_secs(20), "{}", f.dump());
        assert!(one_line(&f).contains("no reply"), "{}", f.dump());
    }
    assert_no_panic(&f);
}

#[test]
fn http_connect_through_tinyproxy() {
    require!("tinyproxy");
    let dir = tempfile::tempdir().unwrap();
    let (_p, port) = tinyproxy(dir.path(), None);
    let url = format!("http://127.0.0.1:{port}");
    let f = upload(&url, &[], "localhost", 4 << 20, 4);
    f.expect_code(0);
    assert!(
        f.stderr
            .contains("proxy: reply: 'HTTP/1.0 200 Connection established'"),
        "{}",
        f.dump()
    );
    // The target refused: tinyproxy says "500 Unable to connect".
    let closed = closed_port("127.0.0.1");
    let f = connect_via(&url, &[], "127.0.0.1", closed, Input::Null);
    f.expect_code(3);
    assert!(one_line(&f).contains("Unable to connect"), "{}", f.dump());
    let (_a, aport) = tinyproxy(dir.path(), Some(("bob", "pw")));
    let f = upload(
        &format!("http://bob:pw@127.0.0.1:{aport}"),
        &[],
        "127.0.0.1",
        1 << 20,
        5,
    );
    f.expect_code(0);
    let f = connect_via(
        &format!("http://127.0.0.1:{aport}"),
        &[],
        "127.0.0.1",
        closed,
        Input::Null,
    );
    f.expect_code(1);
    assert!(
        f.stderr.contains("authentication required: 'HTTP/1.0 407 Proxy Authentication Required' (the proxy asks for Basic)"),
        "{}",
        f.dump()
    );
    let f = connect_via(
        &format!("http://bob:no@127.0.0.1:{aport}"),
        &[],
        "127.0.0.1",
        closed,
        Input::Null,
    );
    f.expect_code(1);
    assert!(
        one_line(&f).contains("authentication rejected for user 'bob'"),
        "{}",
        f.dump()
    );
}

/// The reply and the target's first bytes in one segment: a SOCKS5 reply
/// whose bound address is a name (ATYP 3), an HTTP 200 with headers. Not a
/// byte of the target's stream is lost, and half-close works through a
/// proxy that relays it.
#[test]
fn the_target_bytes_after_the_reply_are_kept_and_half_close_holds() {
    require!("python3");
    for mode in ["socks5", "socks4a", "http"] {
        let download = random_bytes(2 << 20, 6);
        let upload = random_bytes(1 << 20, 7);
        let (l, lport) = listen(
            "127.0.0.1",
            &[],
            Input::Bytes(download.clone()),
            Output::Capture,
        );
        let (proxy, pport) = stub(mode, "BANNER\n");
        let f = connect_via(
            &format!("{mode}://127.0.0.1:{pport}"),
            &["-v"],
            "localhost",
            lport,
            Input::Bytes(upload.clone()),
        );
        f.expect_code(0);
        let mut want = b"BANNER\n".to_vec();
        want.extend_from_slice(&download);
        assert_eq!(sha256(&f.stdout), sha256(&want), "{mode}: {}", f.dump());
        let lf = l.finish();
        assert_eq!(sha256(&lf.stdout), sha256(&upload), "{mode}: {}", lf.dump());
        let pf = proxy.finish();
        // The name went to the proxy (remote DNS, the default).
        assert!(pf.stderr.contains("localhost"), "{mode}: {}", pf.dump());
        if mode == "socks5" {
            assert!(
                pf.stderr.contains("request atyp=3 localhost"),
                "{}",
                pf.dump()
            );
            assert!(f.stderr.contains("from proxy.example:1080"), "{}", f.dump());
        }
    }
    // --proxy-dns local: the address goes instead of the name.
    let (l, lport) = listen("127.0.0.1", &[], Input::Null, Output::Capture);
    let (proxy, pport) = stub("socks5", "");
    let f = connect_via(
        &format!("socks5://127.0.0.1:{pport}"),
        &["-4", "--proxy-dns", "local"],
        "localhost",
        lport,
        Input::Bytes(b"hi\n".to_vec()),
    );
    f.expect_code(0);
    assert_eq!(l.finish().stdout, b"hi\n");
    let pf = proxy.finish();
    assert!(
        pf.stderr.contains("request atyp=1 127.0.0.1"),
        "{}",
        pf.dump()
    );
    // A refusal by the SOCKS4a stub.
    let (_proxy, pport) = stub("socks4a", "");
    let f = connect_via(
        &format!("socks4a://127.0.0.1:{pport}"),
        &[],
        "localhost",
        closed_port("127.0.0.1"),
        Input::Null,
    );
    f.expect_code(3);
    assert!(one_line(&f).contains("SOCKS4 reply 91"), "{}", f.dump());
}

#[test]
fn tls_through_the_tunnel_verifies_the_target() {
    require!("microsocks");
    let (_p, port) = microsocks(None);
    let (mut l, lport) = listen("127.0.0.1", &["--tls"], Input::Pipe, Output::Capture);
    let fp = ephemeral_pin(&mut l);
    let data = random_bytes(1 << 20, 8);
    let f = connect_via(
        &format!("socks5://127.0.0.1:{port}"),
        &["-v", "--tls", "--pin-sha256", &fp],
        "localhost",
        lport,
        Input::Bytes(data.clone()),
    );
    // microsocks closes both ways when one ends, so the listener's own
    // close_notify may not come back: only the upload is checked.
    assert!(
        f.stderr.contains("TLS with localhost:"),
        "the report names the target\n{}",
        f.dump()
    );
    assert!(f.stderr.contains("verdict       trusted"), "{}", f.dump());
    drop(l.stdin.take());
    let lf = l.finish();
    assert_eq!(sha256(&lf.stdout), sha256(&data), "{}", lf.dump());
    // The handshake report through the proxy.
    let (mut l, lport) = listen("127.0.0.1", &["--tls"], Input::Null, Output::Null);
    l.wait_for_stderr("ephemeral");
    let f = connect_via(
        &format!("socks5://127.0.0.1:{port}"),
        &["--tls", "-z", "--json", "--insecure"],
        "localhost",
        lport,
        Input::Null,
    );
    f.expect_code(7);
    let j: serde_json::Value = serde_json::from_slice(&f.stdout).unwrap();
    assert_eq!(j["name_verified"], "localhost", "{j}");
}

#[test]
fn scan_through_the_proxy() {
    require!("microsocks");
    let (_p, port) = microsocks(None);
    let (l, open) = listen("127.0.0.1", &["-k"], Input::Null, Output::Null);
    let closed = closed_port("127.0.0.1");
    let ports = format!("{open},{closed}");
    let f = run(
        &[
            "-v",
            "connect",
            "-z",
            "--proxy",
            &format!("socks5://127.0.0.1:{port}"),
            "127.0.0.1",
            &ports,
        ],
        Input::Null,
    );
    f.expect_code(0);
    let out = String::from_utf8_lossy(&f.stdout);
    assert!(
        out.contains(&format!("127.0.0.1 {open}/tcp open")),
        "{}",
        f.dump()
    );
    assert!(
        out.contains(&format!("127.0.0.1 {closed}/tcp closed")),
        "{}",
        f.dump()
    );
    let f = run(
        &[
            "connect",
            "-z",
            "--json",
            "--proxy",
            &format!("socks5://127.0.0.1:{port}"),
            "127.0.0.1",
            &closed.to_string(),
        ],
        Input::Null,
    );
    f.expect_code(3);
    let j: serde_json::Value = serde_json::from_slice(&f.stdout).unwrap();
    assert_eq!(j["state"], "closed");
    l.signal(libc::SIGTERM);
    let _ = l.finish();
}

#[test]
fn bad_proxy_urls_are_usage_errors() {
    for bad in [
        "127.0.0.1:1080",
        "ftp://127.0.0.1:21",
        "socks5://127.0.0.1",
        "socks5://127.0.0.1:0",
        "socks5://127.0.0.1:70000",
        "socks5://::1:1080",
        "socks5://u:%zz@127.0.0.1:1080",
        "http://127.0.0.1:8080/path",
        "socks4://127.0.0.1:1080",
    ] {
        usage_error(&["connect", "--proxy", bad, "127.0.0.1", "80"], bad);
    }
    // What the proxy could never be asked, refused before any socket
    // opens: the proxy's port is closed, so a connect would be exit 3.
    let closed = closed_port("127.0.0.1");
    let long_user = format!("socks5://{}@127.0.0.1:{closed}", "u".repeat(300));
    let long_name = format!("{}.example", "a".repeat(300));
    let socks4a = format!("socks4a://127.0.0.1:{closed}");
    let socks5 = format!("socks5://127.0.0.1:{closed}");
    for (args, bad) in [
        (
            vec!["socks4a://u:pw@127.0.0.1:1080", "x", "80"],
            "socks4a://u:pw@127.0.0.1:1080",
        ),
        (vec![long_user.as_str(), "x", "80"], long_user.as_str()),
        (vec![socks4a.as_str(), "::1", "80"], "--proxy"),
        (vec![socks5.as_str(), long_name.as_str(), "80"], "--proxy"),
    ] {
        let mut all = vec!["connect", "--proxy"];
        all.extend(args);
        usage_error(&all, bad);
    }
    let f = run(
        &["connect", "--proxy-dns", "local", "127.0.0.1", "80"],
        Input::Null,
    );
    f.expect_code(2);
    assert!(one_line(&f).contains("--proxy <URL>"), "{}", f.dump());
    usage_error(
        &[
            "connect",
            "-z",
            "--udp",
            "--proxy",
            "socks5://127.0.0.1:1080",
            "127.0.0.1",
            "80",
        ],
        "--udp",
    );
}

/// dante, the SOCKS server of many corporate networks: an upload and a
/// download byte-exact, the target refused through it (exit 3, reply 5
/// in words), and a connect its rules forbid (exit 1, reply 2).
#[test]
fn socks5_through_dante() {
    require!("danted");
    let dir = tempfile::tempdir().unwrap();
    let blocked = closed_port("127.0.0.1");
    let (mut d, port) = dante(dir.path(), blocked);
    let url = format!("socks5://127.0.0.1:{port}");
    // dante relays a half-close, so the listener may end its side at once
    // (the proxies `upload` serves close both ways when one side ends).
    let data = random_bytes(2 << 20, 21);
    let (l, lport) = listen("127.0.0.1", &[], Input::Null, Output::Capture);
    let f = connect_via(
        &url,
        &["-v"],
        "127.0.0.1",
        lport,
        Input::Bytes(data.clone()),
    );
    f.expect_code(0);
    let got = l.finish();
    assert_eq!(
        sha256(&got.stdout),
        sha256(&data),
        "{}\n{}",
        f.dump(),
        got.dump()
    );
    assert!(
        f.stderr
            .contains("proxy: reply: succeeded, the proxy connected to 127.0.0.1:"),
        "{}",
        f.dump()
    );

    let data = random_bytes(1 << 20, 22);
    let (l, lport) = listen("127.0.0.1", &[], Input::Bytes(data.clone()), Output::Null);
    let f = connect_via(&url, &[], "127.0.0.1", lport, Input::Null);
    f.expect_code(0);
    assert_eq!(sha256(&f.stdout), sha256(&data), "{}", f.dump());
    l.finish().expect_code(0);

    let refused = closed_port("127.0.0.1");
    let f = connect_via(&url, &[], "127.0.0.1", refused, Input::Null);
    f.expect_code(3);
    assert!(
        one_line(&f).contains("connection refused (SOCKS5 reply 5)"),
        "{}",
        f.dump()
    );
    let f = connect_via(&url, &[], "127.0.0.1", blocked, Input::Null);
    f.expect_code(1);
    assert!(
        one_line(&f).contains("not allowed by ruleset (SOCKS5 reply 2)"),
        "{}",
        f.dump()
    );
    d.signal(libc::SIGTERM);
    d.finish_within(LONG);
}

/// Something that is not an HTTP proxy (an SSH server's banner) is said to
/// be so at once, exit 1, not left to run out -w as "no reply in time".
#[test]
fn a_reply_that_is_not_http_is_named() {
    require!("python3");
    // An SSH banner, and a SOCKS5 method reply (two bytes), each left
    // open after it: the answer must come from the bytes, not a timeout.
    for (reply, said) in [
        ("5353482d322e302d4f70656e5353485f392e320d0a", "SSH-2"),
        ("0500", "socks5://"),
    ] {
        let script = "import socket,sys\n\
            l=socket.socket(); l.bind(('127.0.0.1',0)); l.listen()\n\
            print(l.getsockname()[1],flush=True)\n\
            c,a=l.accept(); c.sendall(bytes.fromhex(sys.argv[1])); sys.stdin.read()\n";
        let mut h = spawn_cmd(python(script, &[reply]), Input::Pipe, Output::Pipe);
        let line = h.stdout_pipe().next_line(LONG).unwrap_or_default();
        let port = String::from_utf8_lossy(&line).trim().to_string();
        let proxy = format!("http://127.0.0.1:{port}");
        let started = std::time::Instant::now();
        let f = run(
            &[
                "connect",
                "-w",
                "20s",
                "--proxy",
                &proxy,
                "example.org",
                "80",
            ],
            Input::Null,
        );
        f.expect_code(1);
        let line = one_line(&f);
        assert!(line.contains(said), "{}", f.dump());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "{}",
            f.dump()
        );
    }
}
