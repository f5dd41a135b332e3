//! Error paths: exit codes, the one-line messages, and what must not happen
//! (panics, silent fallbacks, wrapped ports, fixed sleeps).

mod common;
use common::*;

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

/// Asserts nothing is waiting in `l`'s accept queue.
fn assert_no_connection(l: &TcpListener, context: &str) {
    l.set_nonblocking(true).expect("set_nonblocking");
    match l.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("unexpected connection from {peer}\n{context}"),
        Err(e) => panic!("accept: {e}\n{context}"),
    }
}

// ---------------------------------------------------------------- refused

fn refused_on(host: &str) {
    let port = closed_port(host).to_string();
    let f = run(&["connect", host, &port], Input::Null);
    f.expect_code(3);
    let line = one_line(&f);
    assert!(line.contains("connection refused"), "{}", f.dump());
    assert!(f.stdout.is_empty(), "stdout not empty\n{}", f.dump());
    assert_no_panic(&f);
}

#[test]
fn connect_refused_v4() {
    refused_on("127.0.0.1");
}

#[test]
fn connect_refused_v6() {
    require_ipv6!();
    refused_on("::1");
}

// ---------------------------------------------------------------- connect timeout

/// A listener whose accept queue is full, so further SYNs are dropped and a
/// connect to it hangs until the kernel's SYN retries run out. Returns the
/// listener and the clients that keep the queue full.
fn full_backlog_listener() -> (Socket, u16, Vec<TcpStream>) {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    sock.bind(&addr.into()).expect("bind 127.0.0.1:0");
    sock.listen(0).expect("listen(0)");
    let local = sock
        .local_addr()
        .expect("local_addr")
        .as_socket()
        .expect("inet address");
    let mut clients = Vec::new();
    for i in 0..3 {
        match TcpStream::connect_timeout(&local, Duration::from_secs(1)) {
            Ok(s) => clients.push(s),
            Err(e) if i == 0 => panic!("first client to the backlog-0 listener failed: {e}"),
            // The queue is full: the SYN was dropped, which is what we want.
            Err(_) => break,
        }
    }
    (sock, local.port(), clients)
}

fn connect_times_out(timeout_args: &[&str]) {
    let (_listener, port, _clients) = full_backlog_listener();
    let port = port.to_string();
    let mut args = vec!["connect"];
    args.extend_from_slice(timeout_args);
    args.extend_from_slice(&["127.0.0.1", &port]);
    let start = Instant::now();
    let f = run(&args, Input::Null);
    let elapsed = start.elapsed();
    f.expect_code(4);
    let line = one_line(&f);
    assert!(line.contains("timed out"), "{}", f.dump());
    assert!(f.stdout.is_empty(), "stdout not empty\n{}", f.dump());
    assert_no_panic(&f);
    assert!(
        elapsed >= Duration::from_millis(900),
        "gave up too early ({elapsed:?})\n{}",
        f.dump()
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "timeout not enforced ({elapsed:?})\n{}",
        f.dump()
    );
}

#[test]
fn connect_timeout_poll() {
    connect_times_out(&["--timeout", "1s", "--timeout-method", "poll"]);
}

#[test]
fn connect_timeout_alarm() {
    connect_times_out(&["--timeout", "1s", "--timeout-method", "alarm"]);
}

#[test]
fn connect_timeout_short_flag() {
    connect_times_out(&["-w", "1s"]);
}

#[test]
fn connect_timeout_bare_number_is_seconds() {
    connect_times_out(&["-w", "1", "--timeout-method", "alarm"]);
}

// ---------------------------------------------------------------- EADDRINUSE

fn listen_on_busy_port(extra: &[&str]) {
    let (holder, port) = Loop::V4.tcp_listener();
    let port = port.to_string();
    let mut args = vec!["listen"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["127.0.0.1", &port]);
    let f = run(&args, Input::Null);
    f.expect_code(5);
    assert!(f.stderr.contains("address already in use"), "{}", f.dump());
    let probe = format!("sonda probe {port}");
    assert!(
        f.stderr
            .lines()
            .any(|l| l.contains("hint") && l.contains(&probe)),
        "no hint line mentioning '{probe}'\n{}",
        f.dump()
    );
    assert!(f.stdout.is_empty(), "stdout not empty\n{}", f.dump());
    assert_no_panic(&f);
    drop(holder);
}

#[test]
fn listen_addr_in_use_no_reuseaddr() {
    listen_on_busy_port(&["--no-reuseaddr"]);
}

#[test]
fn listen_addr_in_use_with_reuseaddr() {
    // SO_REUSEADDR does not let a second socket bind next to a LISTEN one.
    listen_on_busy_port(&[]);
}

// ---------------------------------------------------------------- bad input

#[test]
fn bad_connect_port_out_of_range() {
    usage_error(&["connect", "127.0.0.1", "70000"], "70000");
}

#[test]
fn port_70000_is_never_wrapped_to_4464() {
    usage_error(&["connect", "127.0.0.1", "70000"], "70000");
    // 70000 mod 65536 = 4464: a wrapped port would connect there.
    let Ok(l) = TcpListener::bind("127.0.0.1:4464") else {
        eprintln!("skipped the wrap check: 127.0.0.1:4464 is busy");
        return;
    };
    let f = run(&["connect", "127.0.0.1", "70000"], Input::Null);
    f.expect_code(2);
    assert_no_connection(&l, &f.dump());
}

#[test]
fn bad_connect_port_not_a_number() {
    usage_error(&["connect", "127.0.0.1", "abc"], "abc");
}

#[test]
fn bad_connect_empty_host() {
    usage_error(&["connect", "", "80"], "");
}

#[test]
fn bad_connect_unknown_flag() {
    usage_error(
        &["connect", "--bogus-flag", "127.0.0.1", "80"],
        "--bogus-flag",
    );
}

#[test]
fn bad_connect_timeout_duration() {
    usage_error(&["connect", "-w", "5x", "127.0.0.1", "80"], "5x");
}

#[test]
fn bad_connect_idle_timeout_duration() {
    usage_error(
        &["connect", "--idle-timeout", "5x", "127.0.0.1", "80"],
        "5x",
    );
}

#[test]
fn bad_connect_sndbuf_zero() {
    usage_error(&["connect", "--sndbuf", "0", "127.0.0.1", "80"], "0");
}

/// `--keepalive` outside whole seconds 1..=32767 (what TCP_KEEPIDLE takes)
/// is refused at parse time naming the flag and its range, on connect and
/// listen alike, instead of a runtime "invalid argument" blamed on the
/// connect or the listen.
#[test]
fn keepalive_out_of_range_is_a_usage_error_naming_the_range() {
    let port = closed_port("127.0.0.1").to_string();
    for bad in ["500ms", "0", "1000000s", "1.5", "32768"] {
        for args in [
            vec!["connect", "--keepalive", bad, "127.0.0.1", port.as_str()],
            vec!["listen", "--keepalive", bad, "127.0.0.1", "0"],
        ] {
            let f =
                spawn(&args, Input::Null, Output::Capture).finish_within(Duration::from_secs(10));
            f.expect_code(2);
            let line = one_line(&f);
            assert!(
                line.contains(&format!("'{bad}'"))
                    && line.contains("--keepalive")
                    && line.contains("1s to 32767s"),
                "{args:?}: the message does not name the value, the flag and the range\n{}",
                f.dump()
            );
        }
    }
}

/// A keepalive in range still works: the connect succeeds.
#[test]
fn keepalive_in_range_is_accepted() {
    let (l, port) = listen("127.0.0.1", &["--sink"], Input::Null, Output::Null);
    let port = port.to_string();
    let c = spawn(
        &["connect", "--keepalive", "32767", "127.0.0.1", &port],
        Input::Bytes(b"x".to_vec()),
        Output::Capture,
    )
    .finish_within(Duration::from_secs(10));
    c.expect_code(0);
    let mut l = l;
    l.finish_within(Duration::from_secs(10)).expect_code(0);
}

#[test]
fn bad_listen_allow_cidr() {
    usage_error(&["listen", "--allow", "300.1.1.1/8", "8080"], "300.1.1.1/8");
}

#[test]
fn bad_listen_port_out_of_range() {
    usage_error(&["listen", "70000"], "70000");
}

#[test]
fn bad_listen_port_not_a_number() {
    usage_error(&["listen", "127.0.0.1", "abc"], "abc");
}

#[test]
fn bad_listen_empty_host() {
    usage_error(&["listen", "", "80"], "");
}

#[test]
fn bad_listen_negative_backlog() {
    usage_error(&["listen", "--backlog", "-1", "80"], "-1");
}

// ---------------------------------------------------------------- --source

#[test]
fn source_port_busy_is_an_error_not_a_fallback() {
    let (busy, src_port) = Loop::V4.tcp_listener();
    let (target, dst_port) = Loop::V4.tcp_listener();
    let dst_port = dst_port.to_string();
    let source = format!("127.0.0.1:{src_port}");
    let f = run(
        &["connect", "-s", &source, "127.0.0.1", &dst_port],
        Input::Null,
    );
    f.expect_code(5);
    assert_no_panic(&f);
    assert!(
        f.stderr.contains(&source),
        "the error does not name {source}\n{}",
        f.dump()
    );
    assert!(f.stderr.contains("address already in use"), "{}", f.dump());
    assert!(f.stdout.is_empty(), "stdout not empty\n{}", f.dump());
    // No silent fallback to another source port.
    assert_no_connection(&target, &f.dump());
    drop(busy);
}

#[test]
fn source_address_without_port() {
    let data = random_bytes(256 * 1024, 11);
    let (l, port) = listen("127.0.0.1", &[], Input::Null, Output::Capture);
    let port = port.to_string();
    let c = run(
        &["connect", "-s", "127.0.0.1", "127.0.0.1", &port],
        Input::Bytes(data.clone()),
    );
    let lf = l.finish();
    c.expect_code(0);
    lf.expect_code(0);
    assert!(
        lf.stdout == data,
        "listener got {} bytes, sha {} != {}\n{}\n{}",
        lf.stdout.len(),
        sha256(&lf.stdout),
        sha256(&data),
        lf.dump(),
        c.dump()
    );
    assert!(
        lf.stderr.contains("connection from 127.0.0.1:"),
        "{}",
        lf.dump()
    );
}

// ---------------------------------------------------------------- stdout errors

#[test]
fn listen_stdout_dev_full() {
    let (l, port) = listen(
        "127.0.0.1",
        &[],
        Input::Null,
        Output::File("/dev/full".into()),
    );
    let port = port.to_string();
    let c = spawn(
        &["connect", "127.0.0.1", &port],
        Input::Bytes(random_bytes(1 << 20, 21)),
        Output::Null,
    );
    let lf = l.finish();
    lf.expect_code(1);
    assert_no_panic(&lf);
    let errs: Vec<&str> = lf
        .stderr
        .lines()
        .filter(|l| !l.contains("listening on") && !l.contains("connection from"))
        .collect();
    assert_eq!(errs.len(), 1, "expected one error line\n{}", lf.dump());
    assert!(
        errs[0].contains("stdout") && errs[0].contains("no space left on device"),
        "{}",
        lf.dump()
    );
    // The client only has to end; a reset by the peer is a legitimate failure.
    let _ = c.finish();
}

#[test]
fn connect_stdout_dev_full() {
    let (server, port) = Loop::V4.tcp_listener();
    let port = port.to_string();
    let c = spawn(
        &["connect", "127.0.0.1", &port],
        Input::Null,
        Output::File("/dev/full".into()),
    );
    let mut peer = accept_within(&server, LONG);
    let feeder = thread::spawn(move || {
        let data = random_bytes(1 << 20, 22);
        // sonda exits on the stdout error; a reset here is expected.
        let _ = peer.write_all(&data);
        let _ = peer.shutdown(std::net::Shutdown::Write);
    });
    let f = c.finish();
    let _ = feeder.join();
    f.expect_code(1);
    assert_no_panic(&f);
    let line = one_line(&f);
    assert!(
        line.contains("stdout") && line.contains("no space left on device"),
        "{}",
        f.dump()
    );
}

#[test]
fn connect_closed_stdout_is_quiet_success() {
    let (server, port) = Loop::V4.tcp_listener();
    let mut c = connect_to(Loop::V4, port, &[], Input::Null, Output::Pipe);
    let mut peer = accept_within(&server, LONG);
    let feeder = thread::spawn(move || {
        let data = random_bytes(10 << 20, 23);
        let _ = peer.write_all(&data);
    });
    // Ten bytes, then the read end closes, like `| head -c 10`.
    let first = c.stdout_pipe().read_exact_within(10, LONG);
    let f = c.finish();
    let _ = feeder.join();
    assert_eq!(
        &first[..],
        &random_bytes(10, 23)[..],
        "wrong first bytes\n{}",
        f.dump()
    );
    f.expect_code(0);
    assert!(
        f.stderr.is_empty(),
        "closed stdout must be quiet\n{}",
        f.dump()
    );
}

// ---------------------------------------------------------------- resolution

#[test]
fn force_v6_with_v4_literal() {
    let f = run(&["-6", "connect", "127.0.0.1", "80"], Input::Null);
    f.expect_code(6);
    one_line(&f);
    assert_no_panic(&f);
}

#[test]
fn force_v4_with_v6_literal() {
    let f = run(&["-4", "connect", "::1", "80"], Input::Null);
    f.expect_code(6);
    one_line(&f);
    assert_no_panic(&f);
}

/// An address of the other family is said to be one, not "resolved" to
/// nothing: it was never looked up.
#[test]
fn force_family_after_subcommand() {
    let f = run(&["connect", "-6", "127.0.0.1", "80"], Input::Null);
    f.expect_code(6);
    assert!(
        one_line(&f).contains("an IPv4 address, and -6 was given"),
        "{}",
        f.dump()
    );
}

/// Every command that takes an address refuses a link-local one without a
/// scope at once, saying a scope is needed, instead of a bare "invalid
/// argument" from connect(2) or bind(2).
#[test]
fn link_local_without_scope_is_a_usage_error_everywhere() {
    let cases: [&[&str]; 9] = [
        &["connect", "fe80::1", "80"],
        &["connect", "-z", "fe80::1", "80"],
        &["connect", "[fe80::1]", "80"],
        &["connect", "-s", "fe80::1", "::1", "80"],
        &["listen", "fe80::1", "0"],
        &["udp-send", "--message", "x", "fe80::1", "9"],
        &["udp-recv", "fe80::1", "0"],
        &["probe", "fe80::1", "80"],
        &["bench", "--client", "fe80::1"],
    ];
    for args in cases {
        let f = spawn(args, Input::Null, Output::Capture).finish_within(Duration::from_secs(10));
        f.expect_code(2);
        let line = one_line(&f);
        assert!(
            line.contains("'fe80::1'") && line.contains("scope") && line.contains("fe80::1%eth0"),
            "{args:?}: the message does not say a scope is needed\n{}",
            f.dump()
        );
    }
}

/// A scope naming no interface is named as such (exit 6), not reported as
/// an unknown host.
#[test]
fn link_local_with_an_unknown_interface_names_it() {
    let f = run(&["connect", "fe80::1%nosuch0", "80"], Input::Null);
    f.expect_code(6);
    let line = one_line(&f);
    assert!(
        line.contains("no network interface named 'nosuch0'"),
        "{}",
        f.dump()
    );
}

/// An index no interface has is the same as an unknown name (exit 6),
/// never accepted and shown as an empty scope; a '%' with nothing after
/// it is a malformed address (exit 2).
#[test]
fn link_local_scope_edge_cases() {
    let f = run(&["connect", "fe80::1%65000", "80"], Input::Null);
    f.expect_code(6);
    assert!(
        one_line(&f).contains("no network interface has index 65000"),
        "{}",
        f.dump()
    );
    usage_error(&["connect", "fe80::1%", "80"], "fe80::1%");
}

/// Flags that would do nothing where they are given are usage errors
/// naming them, not silently ignored.
#[test]
fn flags_that_do_nothing_here_are_usage_errors() {
    let cases: [(&[&str], &str); 8] = [
        (&["connect", "-z", "--crlf", "127.0.0.1", "1"], "--crlf"),
        (
            &["connect", "-z", "--quit-after", "1s", "127.0.0.1", "1"],
            "--quit-after",
        ),
        (
            &["connect", "-z", "--hexdump", "127.0.0.1", "1"],
            "--hexdump",
        ),
        (
            &["bench", "--server", "127.0.0.1", "0", "--duration", "7s"],
            "--duration <DUR>",
        ),
        // A value equal to the default is still a parameter given.
        (&["bench", "--server", "--proto", "tcp"], "--proto <PROTO>"),
        (
            &["bench", "--server", "--multicast", "239.1.1.1"],
            "--multicast <GROUP>",
        ),
        (
            &["udp-send", "--broadcast", "--message", "x", "::1", "9"],
            "--broadcast",
        ),
        // Before any socket: a source that cannot be bound does not matter.
        (
            &[
                "udp-send",
                "--broadcast",
                "-s",
                "2001:db8::1",
                "--message",
                "x",
                "::1",
                "9",
            ],
            "--broadcast",
        ),
    ];
    for (args, flag) in cases {
        usage_error(args, flag);
    }
    // udp-recv's GROUP@IFACE: a bench receiver picks its interface itself.
    let group = "239.1.1.1@lo";
    usage_error(&["bench", "--proto", "udp", "--multicast", group], group);
}

#[test]
fn unresolvable_name() {
    let f = run(&["connect", "nosuch.invalid", "80"], Input::Null);
    f.expect_code(6);
    let line = one_line(&f);
    assert!(line.contains("nosuch.invalid"), "{}", f.dump());
    assert!(f.stdout.is_empty(), "stdout not empty\n{}", f.dump());
    assert_no_panic(&f);
}

// ---------------------------------------------------------------- signals

fn signal_during_transfer(sig: i32, code: i32) {
    let (mut l, port) = listen("127.0.0.1", &[], Input::Pipe, Output::Null);
    let mut client = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to listener: {e}"));
    client
        .write_all(b"some bytes in flight\n")
        .expect("client write");
    l.wait_for_stderr("connection from");
    if let Some(stdin) = l.stdin.as_mut() {
        stdin
            .write_all(b"and some the other way\n")
            .expect("listener stdin write");
    }
    l.signal(sig);
    let f = l.finish();
    assert_eq!(
        f.status.code(),
        Some(code),
        "wrong status after signal {sig}\n{}",
        f.dump()
    );
    assert_no_panic(&f);
    drop(client);
}

#[test]
fn sigint_exits_130() {
    signal_during_transfer(libc::SIGINT, 130);
}

#[test]
fn sigterm_exits_143() {
    signal_during_transfer(libc::SIGTERM, 143);
}

// ---------------------------------------------------------------- empty sessions

#[test]
fn empty_stdin_both_sides() {
    let (l, port) = listen("127.0.0.1", &[], Input::Null, Output::Capture);
    let port = port.to_string();
    let start = Instant::now();
    let c = spawn(
        &["connect", "127.0.0.1", &port],
        Input::Null,
        Output::Capture,
    )
    .finish_within(Duration::from_secs(10));
    let mut l = l;
    let lf = l.finish_within(Duration::from_secs(10));
    let elapsed = start.elapsed();
    c.expect_code(0);
    lf.expect_code(0);
    assert!(
        c.stdout.is_empty(),
        "connect stdout not empty\n{}",
        c.dump()
    );
    assert!(
        lf.stdout.is_empty(),
        "listener stdout not empty\n{}",
        lf.dump()
    );
    assert!(
        c.stderr.is_empty(),
        "connect stderr not empty\n{}",
        c.dump()
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "empty session took {elapsed:?}\n{}\n{}",
        c.dump(),
        lf.dump()
    );
}
