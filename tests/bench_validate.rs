//! `sonda bench` at its edges: a server that gets well-formed but hostile
//! requests (it refuses them with a reason and keeps serving, with bounded
//! memory), `--pin` with CPUs that do not exist, HOST:PORT for --client and
//! --server, and control steps that time out after the connection is made.
//!
//! Requests are spoken from the test with the crate's own control types, so
//! they are exactly what a client could send, minus the client's checks.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
use common::*;

use std::cell::{Cell, RefCell};
use std::net::TcpStream;
use std::os::unix::net::{UnixListener, UnixStream};
use std::thread;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use sonda::bench::control::{Control, Msg, VERSION};
use sonda::bench::params::MAX_DURATION_MS;
use sonda::bench::sampler::Tally;
use sonda::bench::session::{self, client_channels, Role};
use sonda::bench::{Direction, Mode, Params, Proto};
use sonda::engine::socket::SocketOpts;

fn base() -> Params {
    Params {
        proto: Proto::Tcp,
        mode: Mode::Stream,
        direction: Direction::Up,
        size: 1 << 20,
        rate_bps: None,
        streams: 1,
        duration_ms: 300,
        bytes: None,
        omit_ms: 0,
        interval_ms: None,
        gso: true,
        sndbuf: None,
        rcvbuf: None,
        rcvlowat: None,
        pin: None,
        multicast: None,
        group_ports: Vec::new(),
    }
}

/// Sends `params` as a hello to the server on `port`; returns the control
/// connection and the server's answer.
fn hello(port: u16, params: &Params) -> (Control, Msg) {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut ctrl = Control::new(stream, format!("127.0.0.1:{port}"));
    ctrl.set_timeout(Duration::from_secs(20)).unwrap();
    ctrl.send_magic().unwrap();
    ctrl.expect_magic().unwrap();
    ctrl.send(&Msg::Hello {
        version: VERSION,
        params: params.clone(),
    })
    .unwrap();
    let answer = ctrl
        .recv()
        .unwrap_or_else(|e| panic!("no answer to {params:?}: {e}"));
    (ctrl, answer)
}

/// The server's answer; the connection then closes, so an accepted test is
/// abandoned, which the server must notice.
fn ask(port: u16, params: &Params) -> Msg {
    hello(port, params).1
}

/// Runs an accepted test to its end with the crate's own client side.
fn run_test(mut ctrl: Control, ports: &[u16], params: &Params) -> Result<(), String> {
    let ct = Duration::from_secs(10);
    let server = "127.0.0.1:0".parse().unwrap();
    let ch = client_channels(params, server, ports, &SocketOpts::default(), ct)
        .map_err(|e| e.to_string())?;
    ctrl.send(&Msg::Start).map_err(|e| e.to_string())?;
    session::run(
        Role::Client,
        params,
        ch,
        std::slice::from_mut(&mut ctrl),
        ct,
        None,
        &Tally::default(),
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Accepted tests short and small enough to run here, the rest abandoned.
fn runnable(p: &Params) -> bool {
    p.bytes.is_none() && p.total() <= Duration::from_millis(600) && p.buffers_per_side() <= 64 << 20
}

/// A short normal test against the server on `port`: exit 0, bytes moved.
fn normal_test(port: u16) -> Finished {
    let port = port.to_string();
    let f = run(
        &[
            "bench",
            "--client",
            "127.0.0.1",
            &port,
            "--duration",
            "300ms",
            "--json",
        ],
        Input::Null,
    );
    f.expect_code(0);
    let doc: Value = serde_json::from_slice(&f.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", f.dump()));
    assert!(
        doc["results"][0]["bytes"].as_u64().unwrap_or(0) > 0,
        "no bytes moved\n{}",
        f.dump()
    );
    f
}

fn assert_serving(server: &mut Running, port: u16) {
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited\nstderr:\n{}",
        server.stderr_now()
    );
    let stderr = server.stderr_now();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("memory allocation"),
        "the server panicked or aborted\nstderr:\n{stderr}"
    );
    normal_test(port);
}

fn refused_reason(answer: Msg, what: &str) -> String {
    match answer {
        Msg::Reject { reason } => reason,
        other => panic!("{what}: expected a reject, got {other:?}"),
    }
}

#[test]
fn server_refuses_requests_that_used_to_crash_it() {
    let (mut server, port) = bench_server("127.0.0.1", &[]);
    let cases: &[(&str, Params, &str)] = &[
        (
            "udp size 0 from the server",
            Params {
                proto: Proto::Udp,
                direction: Direction::Down,
                size: 0,
                ..base()
            },
            "--size",
        ),
        (
            "size 1 TiB",
            Params {
                size: 1 << 40,
                ..base()
            },
            "--size",
        ),
        (
            "pin 99999,99999",
            Params {
                pin: Some((99_999, 99_999)),
                ..base()
            },
            "--pin",
        ),
        (
            "streams 0",
            Params {
                streams: 0,
                ..base()
            },
            "--streams",
        ),
        (
            "duration of u64::MAX ms",
            Params {
                duration_ms: u64::MAX,
                ..base()
            },
            "--duration",
        ),
        (
            "rate below the stream count",
            Params {
                proto: Proto::Udp,
                size: 1472,
                rate_bps: Some(0),
                streams: 2,
                ..base()
            },
            "--rate",
        ),
    ];
    for (what, params, flag) in cases {
        let reason = refused_reason(ask(port, params), what);
        assert!(
            reason.contains(flag),
            "{what}: the reason does not name {flag}: {reason}"
        );
    }
    let line = server.wait_for_stderr("refused the test");
    assert!(line.starts_with("sonda: "), "log line: {line}");
    assert_serving(&mut server, port);
}

#[test]
fn client_prints_the_servers_refusal() {
    let (mut server, port) = bench_server("127.0.0.1", &[]);
    let port_s = port.to_string();
    // CPU 0 exists here, so the client's own check passes; the server's
    // CPU (99999) is the server's to refuse.
    let f = run(
        &[
            "bench",
            "--client",
            "127.0.0.1",
            &port_s,
            "--pin",
            "0,99999",
            "--duration",
            "300ms",
        ],
        Input::Null,
    );
    f.expect_code(1);
    let line = one_line(&f);
    assert!(
        line.contains("refused") && line.contains("--pin") && line.contains("CPUs available"),
        "the refusal is not explained: {line}\n{}",
        f.dump()
    );
    assert!(f.stdout.is_empty(), "stdout not empty\n{}", f.dump());
    assert_serving(&mut server, port);
}

// Each field is mostly in range, so that about half the requests pass and
// run; the rest carry the edges: zero, one past the range, the type's
// maximum.
fn arb_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        24 => 8usize..2000,
        1 => Just(0usize),
        1 => Just(7),
        1 => Just(65527),
        1 => Just(1 << 20),
        1 => Just((64 << 20) + 1),
        1 => Just(1 << 40),
        1 => Just(usize::MAX),
    ]
}

fn arb_ms() -> impl Strategy<Value = u64> {
    prop_oneof![
        24 => 1u64..300,
        1 => Just(0u64),
        1 => Just(MAX_DURATION_MS),
        1 => Just(MAX_DURATION_MS + 1),
        1 => Just(u64::MAX),
    ]
}

fn rarely<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<T>> {
    prop_oneof![8 => Just(None), 1 => s.prop_map(Some)]
}

fn arb_buf() -> impl Strategy<Value = Option<usize>> {
    rarely(prop_oneof![
        4 => 1usize..(1 << 20),
        1 => Just(0usize),
        1 => Just(i32::MAX as usize),
        1 => Just(usize::MAX),
    ])
}

fn arb_cpu() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => Just(0usize),
        1 => Just(1023),
        1 => Just(1024),
        1 => Just(99_999),
        1 => Just(usize::MAX),
    ]
}

fn arb_params() -> impl Strategy<Value = Params> {
    let shape = (
        prop_oneof![Just(Proto::Tcp), Just(Proto::Udp)],
        prop_oneof![3 => Just(Mode::Stream), 1 => Just(Mode::Rr)],
        prop_oneof![
            4 => Just(Direction::Up),
            1 => Just(Direction::Down),
            1 => Just(Direction::Both)
        ],
        arb_size(),
        rarely(prop_oneof![
            4 => 1_000_000u64..1_000_000_000,
            1 => Just(0u64),
            1 => Just(1),
            1 => Just(u64::MAX)
        ]),
        prop_oneof![
            16 => 1u16..4,
            1 => Just(0u16),
            1 => Just(128),
            1 => Just(129),
            1 => Just(u16::MAX)
        ],
    );
    let time = (
        arb_ms(),
        rarely(prop_oneof![
            3 => 1u64..(1 << 20),
            1 => Just(0u64),
            1 => Just(u64::MAX)
        ]),
        prop_oneof![4 => Just(0u64), 1 => arb_ms()],
        rarely(arb_ms()),
    );
    let knobs = (
        any::<bool>(),
        arb_buf(),
        arb_buf(),
        arb_buf(),
        rarely((arb_cpu(), arb_cpu())),
        // A group to join (on lo, for a server on 127.0.0.1), one of the
        // other family, and an address that is no group.
        rarely(prop_oneof![
            Just(std::net::IpAddr::from([239, 77, 0, 1])),
            Just(std::net::IpAddr::from([10, 0, 0, 1])),
            Just("ff15::1".parse::<std::net::IpAddr>().unwrap()),
        ]),
        // A further receiver's ports: too few, too many, 0, or any.
        rarely(proptest::collection::vec(
            prop_oneof![1 => Just(0u16), 4 => any::<u16>()],
            0..4,
        )),
    );
    (shape, time, knobs).prop_map(
        |(
            (proto, mode, direction, size, rate_bps, streams),
            (duration_ms, bytes, omit_ms, interval_ms),
            (gso, sndbuf, rcvbuf, rcvlowat, pin, multicast, group_ports),
        )| Params {
            proto,
            mode,
            direction,
            size,
            rate_bps,
            streams,
            duration_ms,
            bytes,
            omit_ms,
            interval_ms,
            gso,
            sndbuf,
            rcvbuf,
            rcvlowat,
            pin,
            multicast,
            group_ports: group_ports.unwrap_or_default(),
        },
    )
}

#[test]
fn random_requests_never_crash_the_server() {
    let (mut server, port) = bench_server("127.0.0.1", &["--control-timeout", "3s"]);
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let started = Instant::now();
    // The runner takes a Fn: the tallies and the child live in cells.
    let (accepted, refused, ran) = (Cell::new(0), Cell::new(0), Cell::new(0));
    {
        let child = RefCell::new(&mut server);
        runner
            .run(&arb_params(), |params| {
                match hello(port, &params) {
                    (ctrl, Msg::Accept { data_ports, .. }) => {
                        accepted.set(accepted.get() + 1);
                        if runnable(&params) {
                            let r = run_test(ctrl, &data_ports, &params);
                            prop_assert!(r.is_ok(), "{:?}: {:?}", params, r);
                            ran.set(ran.get() + 1);
                        }
                    }
                    (_, Msg::Reject { reason }) => {
                        prop_assert!(!reason.is_empty());
                        refused.set(refused.get() + 1);
                    }
                    // Binding the ports a further receiver is given can
                    // fail (another socket holds one): an answer too.
                    (_, Msg::Error { reason }) if !params.group_ports.is_empty() => {
                        prop_assert!(reason.contains("bind"), "{reason}");
                        refused.set(refused.get() + 1);
                    }
                    (_, other) => prop_assert!(false, "{params:?}: answered {other:?}"),
                }
                let mut s = child.borrow_mut();
                prop_assert!(
                    s.child.try_wait().unwrap().is_none(),
                    "the server exited after {:?}\nstderr:\n{}",
                    params,
                    s.stderr_now()
                );
                Ok(())
            })
            .unwrap();
    }
    eprintln!(
        "{} accepted ({} run to the end), {} refused in {:?}",
        accepted.get(),
        ran.get(),
        refused.get(),
        started.elapsed()
    );
    assert_serving(&mut server, port);
    let peak = peak_rss_kib(server.pid()).unwrap();
    assert!(
        peak < 200 * 1024,
        "the server's peak RSS is {peak} KiB\nstderr:\n{}",
        server.stderr_now()
    );
}

#[test]
fn pin_with_absent_cpus_is_a_usage_error_naming_them() {
    for pin in ["0,99999", "4096,0", "99999,99999"] {
        let f = spawn(
            &["bench", "--pin", pin, "--duration", "300ms"],
            Input::Null,
            Output::Capture,
        )
        .finish_within(Duration::from_secs(15));
        f.expect_code(2);
        let line = one_line(&f);
        assert!(
            line.contains("--pin") && line.contains(pin) && line.contains("CPUs available: "),
            "the error does not name --pin, the value and the CPUs: {line}\n{}",
            f.dump()
        );
        assert!(f.stdout.is_empty(), "stdout not empty\n{}", f.dump());
    }
}

#[test]
fn client_and_server_take_host_colon_port() {
    let mut server = spawn(
        &["-v", "bench", "--server", "127.0.0.1:0"],
        Input::Null,
        Output::Null,
    );
    let port = server.listening_port();
    let target = format!("127.0.0.1:{port}");
    let f = run(
        &["bench", "--client", &target, "--duration", "300ms"],
        Input::Null,
    );
    f.expect_code(0);
    assert!(
        String::from_utf8_lossy(&f.stdout).contains(&target),
        "the summary does not name {target}\n{}",
        f.dump()
    );
    assert_serving(&mut server, port);
}

#[test]
fn client_and_server_take_bracketed_and_bare_ipv6() {
    require_ipv6!();
    let mut server = spawn(
        &["-v", "bench", "--server", "[::1]:0"],
        Input::Null,
        Output::Null,
    );
    let port = server.listening_port();
    let port_s = port.to_string();
    let bracketed = format!("[::1]:{port}");
    for client in [vec![bracketed.as_str()], vec!["::1", port_s.as_str()]] {
        let mut args = vec!["bench", "--client"];
        args.extend(client);
        args.extend(["--duration", "300ms"]);
        let f = run(&args, Input::Null);
        f.expect_code(0);
    }
    // A bare ::1 is a host on the default port, not HOST:PORT: whatever
    // answers there, it is neither a usage error nor a failed lookup.
    let f = spawn(
        &["bench", "--client", "::1", "--duration", "300ms"],
        Input::Null,
        Output::Capture,
    )
    .finish_within(Duration::from_secs(30));
    assert!(
        !matches!(f.code(), Some(2) | Some(6)),
        "a bare ::1 was not taken as a host\n{}",
        f.dump()
    );
    drop(server);
}

#[test]
fn port_given_twice_is_a_usage_error() {
    usage_error(
        &["bench", "--client", "127.0.0.1:7900", "7901"],
        "127.0.0.1:7900",
    );
}

/// A peer that speaks the control protocol up to the start of the test,
/// then never answers: the client gives up after --control-timeout with
/// exit 1 (DESIGN: not a working sonda bench server).
#[test]
fn control_timeout_after_connecting_is_exit_1() {
    let (l, port) = Loop::V4.tcp_listener();
    let (data, data_port) = Loop::V4.tcp_listener();
    let peer = thread::spawn(move || {
        let s = accept_within(&l, LONG);
        let mut ctrl = Control::new(s, "client".into());
        ctrl.set_timeout(LONG).unwrap();
        ctrl.expect_magic().unwrap();
        ctrl.send_magic().unwrap();
        let _ = ctrl.recv().unwrap();
        ctrl.send(&Msg::Accept {
            data_ports: vec![data_port],
            data_socket: None,
        })
        .unwrap();
        // Take the data (and drop it), then go silent on the control
        // connection until the client leaves.
        let mut d = accept_within(&data, LONG);
        let sink = thread::spawn(move || {
            d.set_read_timeout(Some(LONG)).unwrap();
            let _ = std::io::copy(&mut d, &mut std::io::sink());
        });
        while ctrl.recv().is_ok() {}
        sink.join().unwrap();
    });
    let port_s = port.to_string();
    let started = Instant::now();
    let f = spawn(
        &[
            "bench",
            "--client",
            "127.0.0.1",
            &port_s,
            "--duration",
            "200ms",
            "--control-timeout",
            "1s",
        ],
        Input::Null,
        Output::Capture,
    )
    .finish_within(Duration::from_secs(30));
    let took = started.elapsed();
    f.expect_code(1);
    let line = one_line(&f);
    assert!(
        line.contains("no answer in time"),
        "the error does not name the problem: {line}\n{}",
        f.dump()
    );
    assert!(
        took < Duration::from_secs(20),
        "took {took:?}\n{}",
        f.dump()
    );
    peer.join().unwrap();
}

/// The server's log line for a failed test names the client once, whether
/// the test was refused or the control exchange broke off.
#[test]
fn server_log_names_the_client_once() {
    let (mut server, port) = bench_server("127.0.0.1", &[]);
    let refused = Params {
        streams: 0,
        ..base()
    };
    refused_reason(ask(port, &refused), "streams 0");
    let line = server.wait_for_stderr("refused the test");
    assert_eq!(
        line.matches("127.0.0.1:").count(),
        1,
        "the peer is named more than once: {line}"
    );
    // A client that greets, then leaves before its hello.
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut ctrl = Control::new(stream, format!("127.0.0.1:{port}"));
    ctrl.set_timeout(Duration::from_secs(20)).unwrap();
    ctrl.send_magic().unwrap();
    ctrl.expect_magic().unwrap();
    drop(ctrl);
    let line = server.wait_for_stderr("closed the connection");
    assert_eq!(
        line.matches("127.0.0.1:").count(),
        1,
        "the peer is named more than once: {line}"
    );
    assert_serving(&mut server, port);
}

/// An rr client whose server stops answering mid-test is stuck in a read;
/// Ctrl-C still reports the transactions finished so far, at once.
#[test]
fn interrupted_rr_with_a_stuck_worker_reports_at_once() {
    use std::io::{Read, Write};
    const ECHOED: u64 = 100;
    let (l, port) = Loop::V4.tcp_listener();
    let (data, data_port) = Loop::V4.tcp_listener();
    let (stuck_tx, stuck_rx) = std::sync::mpsc::channel();
    let peer = thread::spawn(move || {
        let s = accept_within(&l, LONG);
        let mut ctrl = Control::new(s, "client".into());
        ctrl.set_timeout(LONG).unwrap();
        ctrl.expect_magic().unwrap();
        ctrl.send_magic().unwrap();
        let _ = ctrl.recv().unwrap();
        ctrl.send(&Msg::Accept {
            data_ports: vec![data_port],
            data_socket: None,
        })
        .unwrap();
        let mut d = accept_within(&data, LONG);
        d.set_read_timeout(Some(LONG)).unwrap();
        let mut b = [0u8; 1];
        d.read_exact(&mut b).unwrap(); // the tag
        for _ in 0..ECHOED {
            d.read_exact(&mut b).unwrap();
            d.write_all(&b).unwrap();
        }
        // The next request means the last answer was counted; it gets
        // no answer, so the client's worker waits in its read.
        d.read_exact(&mut b).unwrap();
        stuck_tx.send(()).unwrap();
        while ctrl.recv().is_ok() {}
        drop(d);
    });
    let port_s = port.to_string();
    let mut c = spawn(
        &[
            "bench",
            "--json",
            "--mode",
            "rr",
            "--client",
            "127.0.0.1",
            &port_s,
            "--duration",
            "60s",
        ],
        Input::Null,
        Output::Capture,
    );
    stuck_rx
        .recv_timeout(LONG)
        .unwrap_or_else(|_| panic!("the client never got stuck\n{}", c.stderr_now()));
    let started = Instant::now();
    c.signal(libc::SIGINT);
    let f = c.finish_within(Duration::from_secs(10));
    let took = started.elapsed();
    f.expect_code(130);
    assert!(
        took < Duration::from_millis(1500),
        "the report took {took:?}\n{}",
        f.dump()
    );
    let doc: Value = serde_json::from_slice(&f.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", f.dump()));
    assert_eq!(doc["interrupted"], true, "{}", f.dump());
    assert_eq!(
        doc["latency"]["transactions"].as_u64(),
        Some(ECHOED),
        "{}",
        serde_json::to_string_pretty(&doc).unwrap()
    );
    peer.join().unwrap();
}

// ---------------------------------------------------------------- Unix sockets

/// `sonda -v bench --server -U PATH`, once it is listening.
fn unix_server(path: &std::path::Path) -> Running {
    let mut s = spawn(
        &["-v", "bench", "--server", "-U", s(path)],
        Input::Null,
        Output::Null,
    );
    s.wait_for_stderr("bench server listening on ");
    s
}

/// A hello over a Unix control connection to `path`; the answer.
fn unix_hello(path: &std::path::Path, params: &Params) -> (Control, Msg) {
    let stream = UnixStream::connect(path).unwrap();
    let mut ctrl = Control::new(stream, s(path).to_string());
    ctrl.set_timeout(Duration::from_secs(20)).unwrap();
    ctrl.send_magic().unwrap();
    ctrl.expect_magic().unwrap();
    ctrl.send(&Msg::Hello {
        version: VERSION,
        params: params.clone(),
    })
    .unwrap();
    let answer = ctrl.recv().unwrap();
    (ctrl, answer)
}

/// The transport in a request must be the control connection's: a Unix
/// server refuses TCP and UDP tests, a TCP server refuses Unix ones, each
/// with the reason, and goes on serving.
#[test]
fn a_server_refuses_a_transport_other_than_its_own() {
    let (_dir, path) = sock_path("refuse.sock");
    let mut server = unix_server(&path);
    for proto in [Proto::Tcp, Proto::Udp] {
        let p = Params {
            proto,
            size: 1000,
            ..base()
        };
        match unix_hello(&path, &p).1 {
            Msg::Reject { reason } => assert!(
                reason.contains("Unix streams only"),
                "reason for {proto:?}: {reason}"
            ),
            other => panic!("{proto:?} over a Unix socket was not refused: {other:?}"),
        }
    }
    server.wait_for_stderr("refused the test");
    let ok = Params {
        proto: Proto::Unix,
        ..base()
    };
    assert!(matches!(unix_hello(&path, &ok).1, Msg::Accept { .. }));
    drop(server);

    let (mut tcp, port) = bench_server("127.0.0.1", &[]);
    match ask(port, &ok) {
        Msg::Reject { reason } => assert!(reason.contains("proto 'unix'"), "reason: {reason}"),
        other => panic!("a Unix test over TCP was not refused: {other:?}"),
    }
    assert_serving(&mut tcp, port);
}

/// A server that announces a data socket a sonda server does not make (a
/// path, another abstract name) is refused before the client connects
/// anywhere: exit 1 naming the socket, and the named socket never sees a
/// connection.
#[test]
fn client_refuses_a_data_socket_that_is_not_a_sonda_one() {
    let (dir, path) = sock_path("fake.sock");
    let decoy = dir.path().join("decoy.sock");
    let decoy_l = UnixListener::bind(&decoy).unwrap();
    decoy_l.set_nonblocking(true).unwrap();
    let abstract_decoy = format!("@sonda-decoy-{}", std::process::id());
    for announced in [
        s(&decoy).to_string(),
        abstract_decoy,
        "@sonda-bench-1-x".to_string(),
    ] {
        let l = UnixListener::bind(&path).unwrap();
        let told = announced.clone();
        let peer = thread::spawn(move || {
            let (st, _) = l.accept().unwrap();
            let mut ctrl = Control::new(st, "client".into());
            ctrl.set_timeout(LONG).unwrap();
            ctrl.expect_magic().unwrap();
            ctrl.send_magic().unwrap();
            let _ = ctrl.recv().unwrap();
            ctrl.send(&Msg::Accept {
                data_ports: Vec::new(),
                data_socket: Some(told),
            })
            .unwrap();
            // Until the client leaves.
            while ctrl.recv().is_ok() {}
        });
        let f = spawn(
            &["bench", "--client", "-U", s(&path), "--duration", "200ms"],
            Input::Null,
            Output::Capture,
        )
        .finish_within(Duration::from_secs(30));
        peer.join().unwrap();
        std::fs::remove_file(&path).unwrap();
        f.expect_code(1);
        let line = one_line(&f);
        assert!(
            line.contains(&announced) && line.contains("not an abstract name @sonda-bench-"),
            "the refusal does not name the socket: {line}"
        );
        assert!(
            decoy_l.accept().is_err(),
            "the client connected to the decoy {announced}"
        );
    }
}

/// Another process that connects to the server's data socket first is
/// closed (its credentials are not the client's), and the client's test
/// runs as if it had not.
#[test]
fn a_stranger_on_the_data_socket_is_closed_and_the_test_runs() {
    require!("python3");
    let (_dir, path) = sock_path("stranger.sock");
    let mut server = unix_server(&path);
    let p = Params {
        proto: Proto::Unix,
        ..base()
    };
    let (mut ctrl, answer) = unix_hello(&path, &p);
    let Msg::Accept {
        data_socket: Some(name),
        ..
    } = answer
    else {
        panic!("no data socket in {answer:?}");
    };
    let addr = session::check_data_socket(Some(&name)).unwrap();
    // A process of its own (the server compares SO_PEERCRED pids), which
    // sends the tag of an upload and waits to be closed. The server may
    // close it before the tag is even sent: a broken pipe or a reset is as
    // closed as an EOF.
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("\0" + sys.argv[1][1:])
s.settimeout(20)
try:
    s.sendall(b"\0")
    print("closed" if s.recv(1) == b"" else "data")
except (BrokenPipeError, ConnectionResetError):
    print("closed")
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &name])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "closed",
        "the stranger was not closed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.wait_for_stderr("not the client's process");
    let ct = Duration::from_secs(10);
    let ch = session::client_unix_channels(&p, Some(&name), ct).unwrap();
    ctrl.send(&Msg::Start).unwrap();
    let (mine, peers) = session::run(
        Role::Client,
        &p,
        ch,
        std::slice::from_mut(&mut ctrl),
        ct,
        None,
        &Tally::default(),
    )
    .unwrap();
    let peer = &peers[0];
    assert!(
        mine.sent.bytes > 0 && peer.received.bytes == mine.sent.bytes,
        "{addr:?}"
    );
    server.wait_for_stderr(" done: unix ");
}
