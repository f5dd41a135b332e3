//! The IP-level socket options (`--ttl`, `--tos`, `--mark`,
//! `--bind-device`) on the UDP commands, seen from outside: a python3
//! receiver reads each datagram's TTL (hop limit) and TOS (traffic class)
//! from its ancillary data (IP_RECVTTL, IP_RECVTOS and their IPv6
//! counterparts), and `ss -e` shows the fwmark and the device a socket is
//! bound to. Loopback only; `--mark` and `--bind-device` need root
//! (CAP_NET_ADMIN, CAP_NET_RAW) and skip without it.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
use common::*;

use std::process::{Command, Stdio};

/// Prints its port; then, on stderr, "got TTL TOS PAYLOAD" for one
/// datagram.
const RECEIVER: &str = r#"
import socket, sys
v6 = sys.argv[1] == '6'
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
if v6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
    ttl_of, tos_of = (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT), (socket.IPPROTO_IPV6, socket.IPV6_TCLASS)
else:
    s.setsockopt(socket.IPPROTO_IP, getattr(socket, 'IP_RECVTTL', 12), 1)  # 12 on Linux; absent from some Pythons
    s.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
    ttl_of, tos_of = (socket.IPPROTO_IP, socket.IP_TTL), (socket.IPPROTO_IP, socket.IP_TOS)
s.bind(('::1' if v6 else '127.0.0.1', 0))
print(s.getsockname()[1], flush=True)
s.settimeout(20)
data, anc, _, _ = s.recvmsg(65535, 256)
got = {(level, kind): value for level, kind, value in anc}
num = lambda v: int.from_bytes(v, sys.byteorder) if len(v) > 1 else v[0]
print('got', num(got[ttl_of]), num(got[tos_of]), data.decode(), file=sys.stderr, flush=True)
"#;

fn ttl_and_tos_arrive(family: &str, host: &str) {
    if !have("python3") {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let (mut rx, port) = port_holder(python(RECEIVER, &[family]));
    let port = port.to_string();
    let f = run(
        &[
            "udp-send",
            "--ttl",
            "7",
            "--tos",
            "0x28",
            "--message",
            "marked",
            host,
            &port,
        ],
        Input::Null,
    );
    f.expect_code(0);
    let line = rx.wait_for_stderr("got ");
    assert_eq!(
        line.trim(),
        "got 7 40 marked",
        "TTL 7, TOS 0x28 (40) over {host}"
    );
}

#[test]
fn udp_send_ttl_and_tos_reach_an_ipv4_receiver() {
    ttl_and_tos_arrive("4", "127.0.0.1");
}

#[test]
fn udp_send_hop_limit_and_traffic_class_reach_an_ipv6_receiver() {
    if !have_ipv6() {
        eprintln!("skipped: no IPv6 loopback");
        return;
    }
    ttl_and_tos_arrive("6", "::1");
}

/// `ss -uanpe` about the socket on `port`.
fn ss_line(port: u16) -> String {
    let out = Command::new("ss")
        .args(["-uanpe", &format!("( sport = :{port} )")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a test that reads options back with `ss` can run: root (why
/// it needs it is `need_root`) and ss installed; says "skipped" if not.
fn root_with_ss(need_root: &str) -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: {need_root}");
        return false;
    }
    if !have("ss") {
        eprintln!("skipped: ss (iproute2) is not installed");
        return false;
    }
    true
}

#[test]
fn udp_recv_mark_and_bind_device_are_on_its_socket() {
    if !root_with_ss("--mark and --bind-device need root (CAP_NET_ADMIN, CAP_NET_RAW)") {
        return;
    }
    let mut rx = spawn(
        &[
            "-v",
            "udp-recv",
            "--mark",
            "42",
            "--bind-device",
            "lo",
            "--count",
            "1",
            "127.0.0.1",
            "0",
        ],
        Input::Null,
        Output::Capture,
    );
    let port = rx.listening_port();
    let line = ss_line(port);
    assert!(
        line.contains("fwmark:0x2a"),
        "no fwmark 42 on the socket:\n{line}"
    );
    assert!(line.contains("%lo:"), "not bound to lo:\n{line}");
    let f = run(
        &[
            "udp-send",
            "--mark",
            "42",
            "--message",
            "in",
            "127.0.0.1",
            &port.to_string(),
        ],
        Input::Null,
    );
    f.expect_code(0);
    let r = rx.finish_within(LONG);
    r.expect_code(0);
    assert_eq!(r.stdout, b"in", "{}", r.dump());
}

#[test]
fn ip_options_with_a_unix_socket_are_usage_errors() {
    for (args, flag) in [
        (
            &[
                "udp-send",
                "-U",
                "/tmp/x.sock",
                "--ttl",
                "3",
                "--message",
                "x",
            ][..],
            "--ttl",
        ),
        (
            &["udp-recv", "-U", "/tmp/x.sock", "--tos", "8"][..],
            "--tos",
        ),
    ] {
        usage_error(args, flag);
    }
}

/// `bench --mark` marks this side's sockets, the data connections
/// included: while a local run goes, `ss -tane` shows established sockets
/// with fwmark 0x2a.
#[test]
fn bench_mark_is_on_its_data_sockets() {
    if !root_with_ss("--mark needs root (CAP_NET_ADMIN)") {
        return;
    }
    let mut bench = spawn(
        &["bench", "--mark", "42", "--duration", "3s", "--json"],
        Input::Null,
        Output::Capture,
    );
    let deadline = std::time::Instant::now() + LONG;
    // The control connection comes up before the data connections, so one
    // look can see it alone: keep looking until both kinds show.
    let mut marked = 0;
    while marked < 2 && std::time::Instant::now() < deadline && bench.is_running() {
        let out = Command::new("ss")
            .args(["-tane", "state", "established"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        marked = marked.max(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains("fwmark:0x2a"))
                .count(),
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let f = bench.finish_within(LONG);
    f.expect_code(0);
    assert!(marked >= 2, "control and data sockets marked: saw {marked}");
}

#[test]
fn bench_ip_options_with_a_unix_socket_are_usage_errors() {
    usage_error(&["bench", "-U", "/tmp/x.sock", "--ttl", "3"], "--ttl");
}

#[test]
fn probe_ip_options_without_an_ip_bind_are_usage_errors() {
    usage_error(&["probe", "-U", "/tmp/x.sock", "--ttl", "3"], "--ttl");
    usage_error(&["probe", "--reproduce", "--mark", "1"], "--mark");
}

/// An interface that does not exist is the error it is for listen (exit
/// 1, naming the option), not a bind verdict.
#[test]
fn probe_with_an_unknown_interface_fails_as_listen_does() {
    let f = run(&["probe", "--bind-device", "nosuch0", "8080"], Input::Null);
    f.expect_code(1);
    let line = one_line(&f);
    assert!(line.contains("SO_BINDTODEVICE"), "{}", f.dump());
    assert!(f.stdout.is_empty(), "{}", f.dump());
}

/// `connect -z` opens its probe sockets with the options too: an unknown
/// interface is the same error, before any port is tried.
#[test]
fn scan_with_an_unknown_interface_fails_as_connect_does() {
    for udp in [false, true] {
        let mut args = vec!["connect", "-z", "--bind-device", "nosuch0"];
        if udp {
            args.push("--udp");
        }
        args.extend(["127.0.0.1", "1-3"]);
        let f = run(&args, Input::Null);
        f.expect_code(1);
        let line = one_line(&f);
        assert!(line.contains("SO_BINDTODEVICE"), "{}", f.dump());
        assert!(f.stdout.is_empty(), "{}", f.dump());
    }
}

/// A local run's server thread failing is reported as that failure, not
/// as the client's "the peer failed" about its own process.
#[test]
fn local_bench_names_its_own_server_failure() {
    let f = run(
        &["bench", "--bind-device", "nosuch0", "--duration", "1s"],
        Input::Null,
    );
    f.expect_code(1);
    let line = one_line(&f);
    assert!(line.contains("SO_BINDTODEVICE"), "{}", f.dump());
    assert!(!line.contains("the peer failed"), "{}", f.dump());
}
