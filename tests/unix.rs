//! Unix domain sockets (DESIGN.md "Unix domain sockets"): listen and
//! connect over `-U PATH` and `@NAME`, byte-exact against sonda, nc.openbsd,
//! socat, ncat and python3; the socket file's life; every connect error.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// `sonda -v listen <extra> -U PATH`, once it is listening.
fn listen_unix(path: &str, extra: &[&str], input: Input, output: Output) -> Running {
    let mut args = vec!["-v", "listen"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-U", path]);
    let mut l = spawn(&args, input, output);
    l.wait_for_stderr("listening on ");
    l
}

/// Polls (bounded) until a listening socket is bound to `path`, as
/// /proc/net/unix tells (a test connect would use up a one-shot listener).
fn wait_listening(path: &Path, who: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let table = std::fs::read_to_string("/proc/net/unix").unwrap();
        let listening = table.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Num RefCount Protocol Flags Type St Inode Path; Flags 00010000
            // is __SO_ACCEPTCON, a listening socket.
            f.len() >= 8 && f[3] == "00010000" && Path::new(f[7]) == path
        });
        if listening {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{who} never listened on {path:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// A python3 script run with `args`, stdout captured, stdin none.
fn python_child(script: &str, args: &[&str]) -> std::process::Child {
    python(script, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Reads one line from a python child's stdout (it prints when ready).
fn ready_line(child: &mut std::process::Child) -> String {
    let mut out = child.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while out.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    child.stdout = Some(out);
    String::from_utf8(line).unwrap()
}

fn duplex(path: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (up, down) = (dir.path().join("up"), dir.path().join("down"));
    let (up_data, down_data) = (random_bytes(24 << 20, 11), random_bytes(8 << 20, 12));
    std::fs::write(&up, &up_data).unwrap();
    std::fs::write(&down, &down_data).unwrap();
    let server = listen_unix(path, extra, Input::File(down), Output::Capture);
    let mut args = vec!["connect"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-U", path]);
    let client = spawn(&args, Input::File(up), Output::Capture);
    let (c, s) = (client.finish(), server.finish());
    c.expect_code(0);
    s.expect_code(0);
    assert_eq!(
        sha256(&s.stdout),
        sha256(&up_data),
        "up differs\n{}",
        s.dump()
    );
    assert_eq!(
        sha256(&c.stdout),
        sha256(&down_data),
        "down differs\n{}",
        c.dump()
    );
}

#[test]
fn byte_exact_both_ways_splice_and_plain_path_and_abstract() {
    let (_d, path) = sock_path("relay.sock");
    duplex(s(&path), &[]);
    assert!(wait_gone(&path), "listen left {path:?} behind");
    duplex(s(&path), &["--no-splice"]);
    let name = format!("@sonda-test-{}", std::process::id());
    duplex(&name, &[]);
}

/// The peer half-closes after its data; sonda sends a reply after reading
/// to EOF, which the peer still reads (python: read to EOF, answer with the
/// SHA-256 of what came).
#[test]
fn half_close_then_reply_with_python() {
    require!("python3");
    let (_d, path) = sock_path("half.sock");
    let mut py = python_child(
        "import socket,sys,hashlib,os\n\
         s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); print('ready',flush=True)\n\
         c,_=s.accept(); h=hashlib.sha256()\n\
         while True:\n  b=c.recv(1<<20)\n  if not b: break\n  h.update(b)\n\
         c.sendall(h.hexdigest().encode()); c.close(); os.unlink(sys.argv[1])\n",
        &[s(&path)],
    );
    assert_eq!(ready_line(&mut py), "ready");
    let data = random_bytes(10 << 20, 21);
    let f = run(&["connect", "-U", s(&path)], Input::Bytes(data.clone()));
    f.expect_code(0);
    assert_eq!(
        String::from_utf8_lossy(&f.stdout),
        sha256(&data),
        "{}",
        f.dump()
    );
    assert!(py.wait().unwrap().success());
}

#[test]
fn interop_with_nc_socat_ncat_and_std() {
    let data = random_bytes(6 << 20, 31);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, &data).unwrap();

    // sonda listen <- each peer's client.
    let clients: Vec<(&str, Vec<String>)> = vec![
        ("nc", vec!["-N".into(), "-U".into(), "{}".into()]),
        (
            "socat",
            vec!["-u".into(), "-".into(), "UNIX-CONNECT:{}".into()],
        ),
        ("ncat", vec!["--send-only".into(), "-U".into(), "{}".into()]),
    ];
    for (peer, args) in &clients {
        if !have(peer) {
            eprintln!("skipped: {peer} is not installed");
            continue;
        }
        let (_d, path) = sock_path("in.sock");
        let server = listen_unix(s(&path), &[], Input::Null, Output::Capture);
        let args: Vec<String> = args.iter().map(|a| a.replace("{}", s(&path))).collect();
        let st = Command::new(peer)
            .args(&args)
            .stdin(std::fs::File::open(&file).unwrap())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "{peer} {args:?} failed");
        let f = server.finish();
        f.expect_code(0);
        assert_eq!(
            sha256(&f.stdout),
            sha256(&data),
            "from {peer}\n{}",
            f.dump()
        );
    }

    // sonda connect -> each peer's listener.
    let listeners: Vec<(&str, Vec<String>)> = vec![
        ("nc", vec!["-lU".into(), "{}".into()]),
        (
            "socat",
            vec!["-u".into(), "UNIX-LISTEN:{}".into(), "-".into()],
        ),
        (
            "ncat",
            vec!["--recv-only".into(), "-lU".into(), "{}".into()],
        ),
    ];
    for (peer, args) in &listeners {
        if !have(peer) {
            eprintln!("skipped: {peer} is not installed");
            continue;
        }
        let (_d, path) = sock_path("out.sock");
        let args: Vec<String> = args.iter().map(|a| a.replace("{}", s(&path))).collect();
        let out = dir.path().join(format!("from-{peer}"));
        let mut child = Command::new(peer)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .spawn()
            .unwrap();
        wait_listening(&path, peer);
        let f = run(&["connect", "-U", s(&path)], Input::File(file.clone()));
        f.expect_code(0);
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "{peer} did not end");
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            sha256(&std::fs::read(&out).unwrap()),
            sha256(&data),
            "to {peer}"
        );
    }

    // std's UnixListener, both ways in one session.
    let (_d, path) = sock_path("std.sock");
    let l = UnixListener::bind(&path).unwrap();
    let reply = random_bytes(1 << 20, 32);
    let expected = reply.clone();
    let server = thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        c.write_all(&reply).unwrap();
        got
    });
    let f = run(&["connect", "-U", s(&path)], Input::Bytes(data.clone()));
    f.expect_code(0);
    assert_eq!(sha256(&server.join().unwrap()), sha256(&data));
    assert_eq!(sha256(&f.stdout), sha256(&expected));
}

#[test]
fn keep_open_serves_many_clients_echo_and_sink() {
    let (_d, path) = sock_path("k.sock");
    let mut sink = listen_unix(s(&path), &["-k", "--sink"], Input::Null, Output::Capture);
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let path = path.clone();
            thread::spawn(move || {
                let mut c = UnixStream::connect(&path).unwrap();
                c.write_all(&random_bytes(1 << 20, 100 + i)).unwrap();
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    wait_lines(&mut sink, "closed lines", 20, |l| {
        l.contains("closed: received 1048576 bytes")
    });
    sink.signal(libc::SIGTERM);
    let f = sink.finish();
    f.expect_code(143);
    assert!(f.stdout.is_empty());
    assert!(wait_gone(&path), "SIGTERM left {path:?} behind");

    let echo = listen_unix(s(&path), &["-k", "--echo"], Input::Null, Output::Null);
    for i in 0..5 {
        let mut c = UnixStream::connect(&path).unwrap();
        c.set_read_timeout(Some(LONG)).unwrap();
        let data = random_bytes(256 << 10, 200 + i);
        let writer = {
            let mut c = c.try_clone().unwrap();
            let data = data.clone();
            thread::spawn(move || {
                c.write_all(&data).unwrap();
                c.shutdown(std::net::Shutdown::Write).unwrap();
            })
        };
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        assert_eq!(sha256(&back), sha256(&data));
    }
    echo.signal(libc::SIGINT);
    let mut echo = echo;
    echo.finish_within(LONG).expect_code(130);
    assert!(wait_gone(&path), "SIGINT left {path:?} behind");
}

#[test]
fn max_conns_closes_the_extra_client_unread() {
    let (_d, path) = sock_path("m.sock");
    let mut l = listen_unix(
        s(&path),
        &["-k", "--max-conns", "1"],
        Input::Null,
        Output::Capture,
    );
    let first = UnixStream::connect(&path).unwrap();
    l.wait_for_stderr("connection from");
    let mut second = UnixStream::connect(&path).unwrap();
    second.set_read_timeout(Some(LONG)).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(
        second.read(&mut b).unwrap(),
        0,
        "the extra client was served"
    );
    l.wait_for_stderr("--max-conns");
    drop(first);
    l.signal(libc::SIGINT);
    l.finish().expect_code(130);
}

#[test]
fn idle_timeout_ends_and_removes_the_file() {
    let (_d, path) = sock_path("idle.sock");
    let l = listen_unix(
        s(&path),
        &["--idle-timeout", "300ms"],
        Input::Pipe,
        Output::Null,
    );
    let _c = UnixStream::connect(&path).unwrap();
    let f = l.finish();
    f.expect_code(4);
    assert!(f.stderr.contains("--idle-timeout"), "{}", f.dump());
    assert!(!path.exists(), "idle timeout left the file");
}

#[test]
fn verbose_listen_names_the_client_process() {
    require!("python3");
    let (_d, path) = sock_path("cred.sock");
    let mut l = listen_unix(s(&path), &[], Input::Null, Output::Capture);
    let mut py = python_child(
        "import socket,sys\n\
         c=socket.socket(socket.AF_UNIX); c.connect(sys.argv[1]); c.sendall(b'hi'); print('sent',flush=True)\n\
         sys.stdin.read() if False else c.recv(1)\n",
        &[s(&path)],
    );
    let pid = py.id();
    assert_eq!(ready_line(&mut py), "sent");
    let line = l.wait_for_stderr("connection from pid");
    let uid = unsafe { libc::getuid() };
    assert!(
        line.contains(&format!("pid {pid} (python3) uid {uid}")),
        "{line}"
    );
    let f = l.finish();
    f.expect_code(0);
    assert_eq!(f.stdout, b"hi");
    py.wait().unwrap();
}

#[test]
fn seqpacket_keeps_record_boundaries() {
    require!("python3");
    let (_d, path) = sock_path("seq.sock");
    let l = listen_unix(
        s(&path),
        &["--seqpacket", "--echo"],
        Input::Null,
        Output::Null,
    );
    let mut py = python_child(
        "import socket,sys\n\
         c=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); c.connect(sys.argv[1])\n\
         for n in (1000, 1, 100000, 300, 150000, 7):\n  c.send(b'x'*n); print(len(c.recv(1<<20)))\n\
         c.close()\n",
        &[s(&path)],
    );
    let mut out = String::new();
    py.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(py.wait().unwrap().success());
    // Records larger than the echo's 16 KiB buffer come back whole too.
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["1000", "1", "100000", "300", "150000", "7"]
    );
    l.finish().expect_code(0);
}

/// A record larger than a read buffer is read whole, never cut (the kernel
/// drops the rest of a record a read does not take): `-k` reads clients in
/// 16 KiB, and every byte of 200 KB records reaches stdout.
#[test]
fn seqpacket_records_larger_than_the_read_buffer_arrive_whole() {
    require!("python3");
    let (_d, path) = sock_path("big.sock");
    let mut l = listen_unix(s(&path), &["--seqpacket", "-k"], Input::Null, Output::Pipe);
    let mut out = l.stdout_pipe();
    let sizes = [200_000usize, 1, 150_000, 65_537];
    let mut py = python(
        "import socket,sys\n\
         c=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); c.connect(sys.argv[1])\n\
         for i,n in enumerate(sys.argv[2:]):\n  c.send(bytes([i+65])*int(n))\n\
         c.close()\n",
        &[s(&path), "200000", "1", "150000", "65537"],
    )
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let want: Vec<u8> = sizes
        .iter()
        .enumerate()
        .flat_map(|(i, &n)| std::iter::repeat_n(65 + i as u8, n))
        .collect();
    // Read while python sends: the records fill the stdout pipe, and a
    // listener blocked on stdout stops reading, which blocks python.
    let got = out.read_exact_within(want.len(), LONG);
    assert!(py.wait().unwrap().success());
    assert_eq!(sha256(&got), sha256(&want), "{}", l.dump());
    l.signal(libc::SIGINT);
    l.finish().expect_code(130);
}

#[test]
fn an_existing_regular_file_is_never_replaced() {
    let (_d, path) = sock_path("regular");
    std::fs::write(&path, b"keep me").unwrap();
    let f = run(&["listen", "-U", s(&path)], Input::Null);
    f.expect_code(5);
    assert!(one_line(&f).contains("not a socket"), "{}", f.dump());
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
}

#[test]
fn connect_errors_name_the_cause() {
    let (_d, dir) = sock_path("");
    // No such file: exit 6.
    let missing = dir.join("missing.sock");
    let f = run(&["connect", "-U", s(&missing)], Input::Null);
    f.expect_code(6);
    assert!(one_line(&f).contains("no such socket file"), "{}", f.dump());

    // A stale file (its listener gone): exit 3 and the hint.
    let stale = dir.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let f = run(&["connect", "-U", s(&stale)], Input::Null);
    f.expect_code(3);
    assert!(f.stderr.contains("stale"), "{}", f.dump());

    // A regular file: refused, and said to be no socket.
    let regular = dir.join("regular");
    std::fs::write(&regular, b"x").unwrap();
    let f = run(&["connect", "-U", s(&regular)], Input::Null);
    f.expect_code(3);
    assert!(f.stderr.contains("not a socket"), "{}", f.dump());

    // A datagram socket: the right command is named.
    let dgram = dir.join("dgram.sock");
    let _d = std::os::unix::net::UnixDatagram::bind(&dgram).unwrap();
    let f = run(&["connect", "-U", s(&dgram)], Input::Null);
    f.expect_code(1);
    assert!(f.stderr.contains("udp-send -U"), "{}", f.dump());

    // Abstract name nothing holds: refused.
    let f = run(
        &[
            "connect",
            "-U",
            &format!("@sonda-none-{}", std::process::id()),
        ],
        Input::Null,
    );
    f.expect_code(3);
}

/// EACCES names the owner and mode. As root the check needs another user:
/// setpriv runs sonda as nobody.
#[test]
fn permission_denied_names_owner_and_mode() {
    let (_d, dir) = sock_path("");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.join("private.sock");
    let _l = UnixListener::bind(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let root = unsafe { libc::geteuid() } == 0;
    let f = if root {
        if !have("setpriv") {
            eprintln!("skipped: root, and no setpriv to drop privileges");
            return;
        }
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()])
            .args(["connect", "-U", s(&path)]);
        spawn_cmd(cmd, Input::Null, Output::Capture).finish()
    } else {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
        run(&["connect", "-U", s(&path)], Input::Null)
    };
    f.expect_code(1);
    let line = one_line(&f);
    assert!(line.contains("permission denied (s"), "{}", f.dump());
    assert!(line.contains("owned by"), "{}", f.dump());
}

/// A listener that never accepts, its backlog full: -w bounds the connect.
#[test]
fn timeout_bounds_a_connect_to_a_full_backlog() {
    require!("python3");
    let (_d, path) = sock_path("full.sock");
    let mut py = python_child(
        "import socket,sys,time\n\
         s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(0)\n\
         held=[]\n\
         while True:\n  c=socket.socket(socket.AF_UNIX); c.setblocking(False)\n  \
         try: c.connect(sys.argv[1]); held.append(c)\n  \
         except BlockingIOError: break\n\
         print('full',flush=True); time.sleep(30)\n",
        &[s(&path)],
    );
    assert_eq!(ready_line(&mut py), "full");
    let started = Instant::now();
    let f = run(&["connect", "-w", "500ms", "-U", s(&path)], Input::Null);
    let _ = py.kill();
    let _ = py.wait();
    f.expect_code(4);
    assert!(one_line(&f).contains("backlog is full"), "{}", f.dump());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn bad_paths_are_usage_errors() {
    let long = "x".repeat(108);
    usage_error(&["connect", "-U", &long], &long);
    usage_error(&["listen", "-U", "@"], "@");
    let f = run(
        &["listen", "-U", "/tmp/x.sock", "--allow", "10.0.0.0/8"],
        Input::Null,
    );
    f.expect_code(2);
    // An abstract name's '@' is its leading NUL: 107 bytes after it fit.
    let over = format!("@{}", "n".repeat(108));
    usage_error(&["listen", "-U", &over], &over);
    // IP and TCP options are refused with -U, not ignored.
    usage_error(&["-4", "connect", "-U", "/tmp/x.sock"], "-4");
    usage_error(&["-6", "udp-send", "-U", "/tmp/x.sock"], "-6");
    usage_error(&["listen", "-U", "/tmp/x.sock", "--nodelay"], "--nodelay");
    usage_error(
        &["connect", "-U", "/tmp/x.sock", "--keepalive", "5s"],
        "--keepalive",
    );
}

#[test]
fn the_longest_abstract_name_works_with_socat() {
    require!("socat");
    let name = format!("sonda-{}-{}", std::process::id(), "n".repeat(107));
    let name = &name[..107];
    let l = listen_unix(&format!("@{name}"), &[], Input::Null, Output::Capture);
    let st = Command::new("socat")
        .args(["-u", "-", &format!("ABSTRACT-CONNECT:{name}")])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"107 bytes")?;
            c.wait()
        })
        .unwrap();
    assert!(st.success());
    let f = l.finish();
    f.expect_code(0);
    assert_eq!(f.stdout, b"107 bytes");
}

/// A refused connect says what holds the name: a socket bound but not
/// listening, a datagram socket, a listener of the other stream type.
#[test]
fn a_refused_connect_names_what_holds_the_name() {
    require!("python3");
    let (_d, path) = sock_path("bound.sock");
    let tag = format!("sonda-t{}", std::process::id());
    let mut py = python_child(
        "import socket,sys,time\n\
         a=socket.socket(socket.AF_UNIX); a.bind(sys.argv[1])\n\
         b=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); b.bind('\\0'+sys.argv[2]+'-dg')\n\
         c=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); c.bind('\\0'+sys.argv[2]+'-sp'); c.listen()\n\
         print('bound',flush=True); time.sleep(30)\n",
        &[s(&path), &tag],
    );
    assert_eq!(ready_line(&mut py), "bound");
    let pid = py.id();
    let bound = run(&["connect", "-U", s(&path)], Input::Null);
    let dgram = run(&["connect", "-U", &format!("@{tag}-dg")], Input::Null);
    let seq = run(&["connect", "-U", &format!("@{tag}-sp")], Input::Null);
    let _ = py.kill();
    let _ = py.wait();
    bound.expect_code(3);
    assert!(
        bound
            .stderr
            .contains("bound to the file but does not listen")
            && bound.stderr.contains(&format!("pid {pid}")),
        "{}",
        bound.dump()
    );
    dgram.expect_code(3);
    assert!(dgram.stderr.contains("udp-send -U"), "{}", dgram.dump());
    seq.expect_code(3);
    assert!(seq.stderr.contains("add --seqpacket"), "{}", seq.dump());
    // Its holder gone, the file is stale.
    let stale = run(&["connect", "-U", s(&path)], Input::Null);
    stale.expect_code(3);
    assert!(stale.stderr.contains("stale"), "{}", stale.dump());
}

#[test]
fn a_symbolic_link_is_named_as_one_and_left_alone() {
    let (_d, dir) = sock_path("");
    let link = dir.join("link.sock");
    std::os::unix::fs::symlink("/nonexistent-target", &link).unwrap();
    let f = run(&["listen", "-U", s(&link), "--unlink-stale"], Input::Null);
    f.expect_code(5);
    assert!(one_line(&f).contains("a symbolic link"), "{}", f.dump());
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn listen_names_the_pid_of_a_live_socket_and_never_replaces_it() {
    require!("python3");
    let (_d, path) = sock_path("live.sock");
    let mut py = python_child(
        "import socket,sys,time\n\
         s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); print('up',flush=True); time.sleep(30)\n",
        &[s(&path)],
    );
    assert_eq!(ready_line(&mut py), "up");
    for extra in [&[][..], &["--unlink-stale"][..]] {
        let mut args = vec!["listen"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-U", s(&path)]);
        let f = run(&args, Input::Null);
        f.expect_code(5);
        assert!(
            f.stderr.contains(&format!("pid {} (python3)", py.id())),
            "{}",
            f.dump()
        );
    }
    // Still python's: a client reaches it.
    UnixStream::connect(&path).unwrap();
    let _ = py.kill();
    let _ = py.wait();
}

#[test]
fn a_stale_file_is_exit_5_with_the_hint_and_unlink_stale_replaces_it() {
    let (_d, path) = sock_path("stale.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let f = run(&["listen", "-U", s(&path)], Input::Null);
    f.expect_code(5);
    assert!(f.stderr.contains("stale"), "{}", f.dump());
    assert!(f.stderr.contains("--unlink-stale"), "{}", f.dump());
    let l = listen_unix(s(&path), &["--unlink-stale"], Input::Null, Output::Capture);
    let mut c = UnixStream::connect(&path).unwrap();
    c.write_all(b"reclaimed").unwrap();
    drop(c);
    let f = l.finish();
    f.expect_code(0);
    assert_eq!(f.stdout, b"reclaimed");
    assert!(!path.exists(), "listen left its file");
    // --unlink-stale never removes anything but a socket file.
    std::fs::write(&path, b"data").unwrap();
    let f = run(&["listen", "--unlink-stale", "-U", s(&path)], Input::Null);
    f.expect_code(5);
    assert_eq!(std::fs::read(&path).unwrap(), b"data");
}

/// `udp-recv -U` with --json: what sonda, python (unbound: "unnamed") and
/// socat send, a 200 KiB datagram whole, and the file gone at the end.
#[test]
fn unix_datagrams_arrive_whole_and_name_their_sender() {
    require!("python3");
    let (_d, path) = sock_path("dgram.sock");
    let mut rx = spawn(
        &["-v", "udp-recv", "--json", "--count", "3", "-U", s(&path)],
        Input::Null,
        Output::Capture,
    );
    rx.wait_for_stderr("listening on");
    // From a file: each read(2) of stdin is one datagram, and a pipe may
    // hand over less than its writer wrote.
    let big = random_bytes(200 << 10, 41);
    let file = path.with_extension("big");
    std::fs::write(&file, &big).unwrap();
    let f = run(
        &["udp-send", "--size", "256K", "-U", s(&path)],
        Input::File(file),
    );
    f.expect_code(0);
    let st = Command::new("python3")
        .args([
            "-c",
            "import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b'anon', sys.argv[1])",
            s(&path),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    run(
        &["udp-send", "--message", "hi", "-U", s(&path)],
        Input::Null,
    )
    .expect_code(0);
    let f = rx.finish();
    f.expect_code(0);
    let lines: Vec<serde_json::Value> = String::from_utf8(f.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", f.dump());
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(lines[0]["payload_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(lines[0]["len"], 200 << 10);
    assert_eq!(lines[0]["truncated"], false);
    assert_eq!(sha256(&payload), sha256(&big));
    // sonda's sender is autobound to an abstract name; python's is unnamed.
    assert!(
        lines[0]["from"].as_str().unwrap().starts_with('@'),
        "{}",
        f.dump()
    );
    assert_eq!(lines[1]["from"], "unnamed");
    assert!(lines[2]["from"].as_str().unwrap().starts_with('@'));
    assert!(!path.exists(), "udp-recv left its file");
}

#[test]
fn unix_datagram_echo_replies_reach_an_autobound_sender() {
    let (_d, path) = sock_path("echo.sock");
    let mut rx = spawn(
        &["-v", "udp-recv", "--echo", "--count", "1", "-U", s(&path)],
        Input::Null,
        Output::Null,
    );
    rx.wait_for_stderr("listening on");
    let f = run(
        &[
            "udp-send",
            "--message",
            "ping",
            "--wait-reply",
            "2s",
            "-U",
            s(&path),
        ],
        Input::Null,
    );
    f.expect_code(0);
    assert_eq!(f.stdout, b"ping");
    rx.finish().expect_code(0);
}

#[test]
fn unix_datagram_truncation_beyond_64k_is_reported_with_the_real_length() {
    let (_d, path) = sock_path("trunc.sock");
    let mut rx = spawn(
        &[
            "udp-recv",
            "--buffer",
            "1000",
            "--no-grow",
            "--show",
            "--count",
            "1",
            "-U",
            s(&path),
        ],
        Input::Null,
        Output::Capture,
    );
    // Without -v there is no "listening" line: wait for the file.
    let deadline = Instant::now() + LONG;
    while !path.exists() {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(10));
    }
    let file = path.with_extension("data");
    std::fs::write(&file, random_bytes(100 << 10, 42)).unwrap();
    let f = run(
        &["udp-send", "--size", "100K", "-U", s(&path)],
        Input::File(file),
    );
    f.expect_code(0);
    let r = rx.finish_within(LONG);
    r.expect_code(0);
    assert!(
        r.stderr.contains("102400 bytes, 1000 delivered"),
        "{}",
        r.dump()
    );
    assert!(String::from_utf8_lossy(&r.stdout).contains("truncated from 102400"));
}

#[test]
fn unix_datagram_interop_with_socat_and_nc() {
    let (_d, path) = sock_path("peer.sock");
    // socat and nc.openbsd send to sonda.
    for (peer, args) in [
        (
            "socat",
            vec![
                "-u".to_string(),
                "-".into(),
                format!("UNIX-SENDTO:{}", s(&path)),
            ],
        ),
        ("nc", vec!["-uU".to_string(), s(&path).into()]),
    ] {
        if !have(peer) {
            eprintln!("skipped: {peer} is not installed");
            continue;
        }
        let mut rx = spawn(
            &["-v", "udp-recv", "--count", "1", "-U", s(&path)],
            Input::Null,
            Output::Capture,
        );
        rx.wait_for_stderr("listening on");
        let mut child = Command::new(peer)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"from-peer").unwrap();
        let f = rx.finish();
        let _ = child.kill();
        let _ = child.wait();
        f.expect_code(0);
        assert_eq!(f.stdout, b"from-peer", "{peer}\n{}", f.dump());
    }
    // sonda sends to socat's receiver.
    if have("socat") {
        let out = path.with_extension("out");
        let mut child = Command::new("socat")
            .args(["-u", &format!("UNIX-RECV:{}", s(&path)), "-"])
            .stdout(std::fs::File::create(&out).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + LONG;
        while !path.exists() {
            assert!(Instant::now() < deadline, "socat never bound");
            thread::sleep(Duration::from_millis(10));
        }
        run(
            &["udp-send", "--message", "to-socat", "-U", s(&path)],
            Input::Null,
        )
        .expect_code(0);
        let deadline = Instant::now() + LONG;
        while std::fs::read(&out).unwrap().len() < 8 {
            assert!(Instant::now() < deadline, "socat got nothing");
            thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(std::fs::read(&out).unwrap(), b"to-socat");
    }
}

#[test]
fn udp_send_errors_name_the_cause() {
    let (_d, dir) = sock_path("");
    let f = run(
        &[
            "udp-send",
            "--message",
            "x",
            "-U",
            s(&dir.join("none.sock")),
        ],
        Input::Null,
    );
    f.expect_code(6);
    let stream = dir.join("stream.sock");
    let _l = UnixListener::bind(&stream).unwrap();
    let f = run(
        &["udp-send", "--message", "x", "-U", s(&stream)],
        Input::Null,
    );
    f.expect_code(1);
    assert!(f.stderr.contains("sonda connect -U"), "{}", f.dump());
    // udp-recv's idle timeout is exit 4 and leaves no file.
    let idle = dir.join("idle.sock");
    let f = run(
        &["udp-recv", "--timeout", "200ms", "-U", s(&idle)],
        Input::Null,
    );
    f.expect_code(4);
    assert!(!idle.exists());
}

/// socat's abstract namespace and its datagram replier: ABSTRACT-LISTEN
/// takes what `connect -U @NAME` sends, ABSTRACT-CONNECT feeds `listen -U
/// @NAME`, and UNIX-RECVFROM answers an autobound `udp-send --wait-reply`.
#[test]
fn socat_abstract_names_and_recvfrom_replies() {
    require!("socat");
    let data = random_bytes(2 << 20, 51);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, &data).unwrap();

    let name = format!("sonda-abs-{}", std::process::id());
    let out = dir.path().join("socat.out");
    let mut socat = Command::new("socat")
        .args(["-u", &format!("ABSTRACT-LISTEN:{name}"), "-"])
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + LONG;
    loop {
        let table = std::fs::read_to_string("/proc/net/unix").unwrap();
        if table.lines().any(|l| l.ends_with(&format!(" @{name}"))) {
            break;
        }
        assert!(Instant::now() < deadline, "socat never listened on @{name}");
        thread::sleep(Duration::from_millis(10));
    }
    run(
        &["connect", "-U", &format!("@{name}")],
        Input::File(file.clone()),
    )
    .expect_code(0);
    let deadline = Instant::now() + LONG;
    while socat.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "socat did not end");
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(sha256(&std::fs::read(&out).unwrap()), sha256(&data));

    let l = listen_unix(&format!("@{name}"), &[], Input::Null, Output::Capture);
    let st = Command::new("socat")
        .args(["-u", "-", &format!("ABSTRACT-CONNECT:{name}")])
        .stdin(std::fs::File::open(&file).unwrap())
        .status()
        .unwrap();
    assert!(st.success());
    let f = l.finish();
    f.expect_code(0);
    assert_eq!(sha256(&f.stdout), sha256(&data));

    let path = dir.path().join("recvfrom.sock");
    let mut replier = Command::new("socat")
        .args([&format!("UNIX-RECVFROM:{}", s(&path)), "PIPE"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + LONG;
    while !path.exists() {
        assert!(Instant::now() < deadline, "socat never bound");
        thread::sleep(Duration::from_millis(10));
    }
    let f = run(
        &[
            "udp-send",
            "--message",
            "ask",
            "--wait-reply",
            "2s",
            "-U",
            s(&path),
        ],
        Input::Null,
    );
    let _ = replier.kill();
    let _ = replier.wait();
    f.expect_code(0);
    assert_eq!(f.stdout, b"ask");
}

/// SIGHUP (a closed terminal) and its kin end a listener with 128 + the
/// signal and remove its file, as SIGINT and SIGTERM do.
#[test]
fn sighup_and_sigusr1_remove_the_socket_file() {
    for (sig, code) in [(libc::SIGHUP, 129), (libc::SIGUSR1, 138)] {
        let (_d, path) = sock_path("hup.sock");
        let l = listen_unix(s(&path), &[], Input::Pipe, Output::Null);
        l.signal(sig);
        let mut l = l;
        l.finish_within(LONG).expect_code(code);
        assert!(wait_gone(&path), "signal {sig} left {path:?} behind");
    }
}

/// A listener in another network namespace is invisible to the socket
/// table yet reachable through the file: --unlink-stale must not remove it.
#[test]
fn unlink_stale_never_removes_a_socket_live_in_another_namespace() {
    if unsafe { libc::geteuid() } != 0 || !have("unshare") || !have("python3") {
        eprintln!("skipped: needs root, unshare and python3");
        return;
    }
    let (_d, path) = sock_path("ns.sock");
    let mut py = Command::new("unshare")
        .args(["-n", "python3", "-c"])
        .arg("import socket,sys,time\ns=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(5); print('up',flush=True); time.sleep(30)\n")
        .arg(s(&path))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(ready_line(&mut py), "up");
    let f = run(&["listen", "--unlink-stale", "-U", s(&path)], Input::Null);
    let _ = py.kill();
    let _ = py.wait();
    f.expect_code(5);
    assert!(
        f.stderr.contains("another network namespace"),
        "{}",
        f.dump()
    );
    assert!(path.exists(), "the live socket's file was removed");
}
