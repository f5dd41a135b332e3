//! `--crlf`, `--hexdump[=FILE]` and `--quit-after` on the relay, against
//! python peers that record exactly what came over the wire.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::time::{Duration, Instant};

use common::*;

/// A python server that replies `reply`, then records everything the
/// client sends until the client's EOF (or `hold`: never closes, and
/// prints what came after a quiet second) as hex on stdout.
fn recorder(reply: &str, hold: bool) -> (Running, u16, StdoutPipe) {
    let script = "import socket,sys,binascii\n\
        reply=sys.argv[1].encode(); hold=sys.argv[2]=='hold'\n\
        l=socket.socket(); l.bind(('127.0.0.1',0)); l.listen()\n\
        print(l.getsockname()[1],flush=True)\n\
        c,_=l.accept(); c.sendall(reply)\n\
        if hold: c.settimeout(1.0)\n\
        got=b''\n\
        while True:\n  \
          try: d=c.recv(65536)\n  \
          except socket.timeout: break\n  \
          if not d: break\n  \
          got+=d\n\
        print(binascii.hexlify(got).decode(),flush=True)\n\
        if hold:\n  \
          import time; time.sleep(30)\n";
    let mut h = spawn_cmd(
        python(script, &[reply, if hold { "hold" } else { "close" }]),
        Input::Null,
        Output::Pipe,
    );
    let mut out = h.stdout_pipe();
    let line = out.next_line(LONG).unwrap_or_default();
    let port = String::from_utf8_lossy(&line).trim().parse().unwrap();
    (h, port, out)
}

fn recorded(out: &mut StdoutPipe) -> Vec<u8> {
    let line = out.next_line(LONG).unwrap_or_default();
    let hex = String::from_utf8_lossy(&line).trim().to_string();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn crlf_sends_each_line_end_as_crlf() {
    require!("python3");
    let (_h, port, mut out) = recorder("220 ready\r\n", false);
    let f = run(
        &["connect", "--crlf", "127.0.0.1", &port.to_string()],
        Input::Bytes(b"EHLO sonda\nMAIL FROM:<a@b>\r\n\nQUIT\n".to_vec()),
    );
    f.expect_code(0);
    assert_eq!(
        f.stdout, b"220 ready\r\n",
        "received bytes are never changed"
    );
    assert_eq!(
        recorded(&mut out),
        b"EHLO sonda\r\nMAIL FROM:<a@b>\r\n\r\nQUIT\r\n"
    );
    // listen --crlf, a python client.
    let (mut l, lport) = listen(
        "127.0.0.1",
        &["--crlf"],
        Input::Bytes(b"a\nb\n".to_vec()),
        Output::Capture,
    );
    let script = "import socket,sys\n\
        s=socket.create_connection(('127.0.0.1',int(sys.argv[1])))\n\
        s.shutdown(socket.SHUT_WR); got=b''\n\
        while True:\n  \
          d=s.recv(100)\n  \
          if not d: break\n  \
          got+=d\n\
        print(repr(got))\n";
    let p = spawn_cmd(
        python(script, &[&lport.to_string()]),
        Input::Null,
        Output::Capture,
    )
    .finish();
    assert_eq!(
        String::from_utf8_lossy(&p.stdout).trim(),
        "b'a\\r\\nb\\r\\n'",
        "{}",
        l.dump()
    );
    l.finish().expect_code(0);
}

#[test]
fn quit_after_ends_a_session_the_peer_never_closes() {
    require!("python3");
    let (_h, port, mut out) = recorder("hello\n", true);
    let data = random_bytes(300_000, 11);
    let started = Instant::now();
    let f = spawn(
        &[
            "connect",
            "--quit-after",
            "500ms",
            "127.0.0.1",
            &port.to_string(),
        ],
        Input::Bytes(data.clone()),
        Output::Capture,
    )
    .finish_within(Duration::from_secs(20));
    f.expect_code(0);
    assert!(started.elapsed() < Duration::from_secs(15), "{}", f.dump());
    assert_eq!(f.stdout, b"hello\n");
    assert_eq!(
        sha256(&recorded(&mut out)),
        sha256(&data),
        "every byte went before the end"
    );
}

#[test]
fn hexdump_shows_both_directions_and_leaves_the_data_alone() {
    require!("python3");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dump.txt");
    let (_h, port, mut out) = recorder("hi there\n", false);
    let arg = format!("--hexdump={}", file.display());
    let f = run(
        &["connect", &arg, "127.0.0.1", &port.to_string()],
        Input::Bytes(b"hello\n".to_vec()),
    );
    f.expect_code(0);
    assert_eq!(f.stdout, b"hi there\n");
    assert_eq!(recorded(&mut out), b"hello\n");
    let dump = std::fs::read_to_string(&file).unwrap();
    assert!(dump.contains("sent 6 bytes at offset 0"), "{dump}");
    assert!(
        dump.contains("> 00000000  68 65 6c 6c 6f 0a                                 |hello.|"),
        "{dump}"
    );
    assert!(dump.contains("received 9 bytes at offset 0"), "{dump}");
    assert!(
        dump.contains("< 00000000  68 69 20 74 68 65 72 65  0a"),
        "{dump}"
    );
    // To stderr, with a large transfer: stdout stays byte-exact and the
    // dump's offsets add up to what moved.
    let data = random_bytes(1 << 20, 12);
    let (l, lport) = listen("127.0.0.1", &[], Input::Bytes(data.clone()), Output::Null);
    let f = run(
        &["connect", "--hexdump", "127.0.0.1", &lport.to_string()],
        Input::Null,
    );
    f.expect_code(0);
    assert_eq!(sha256(&f.stdout), sha256(&data));
    let received: usize = f
        .stderr
        .lines()
        .filter_map(|l| {
            l.strip_prefix("< ")?
                .split(" received ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert_eq!(received, data.len(), "the dump accounts for every byte");
    let _ = l.finish();
    // One session's modes, not -k's.
    for flag in ["--crlf", "--hexdump", "--quit-after=1s"] {
        let f = run(&["listen", "-k", flag, "127.0.0.1", "0"], Input::Null);
        f.expect_code(2);
        assert!(one_line(&f).contains("not with -k"), "{}", f.dump());
    }
    let f = run(
        &["connect", "--hexdump=/nonexistent/dir/x", "127.0.0.1", "1"],
        Input::Null,
    );
    f.expect_code(1);
    assert!(one_line(&f).contains("--hexdump file"), "{}", f.dump());
}
