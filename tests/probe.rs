//! `sonda probe`: the verdict, the socket table and the exit status against
//! real sockets held by processes nobody here wrote (python3, OpenBSD netcat)
//! and by the test itself: a free port, a listener, TIME-WAIT, a UDP socket, a
//! bound-inactive socket, SO_REUSEPORT siblings, a dual-stack listener, an
//! owner another user cannot see; `--reproduce`, `--json`, usage errors and a
//! closed stdout; and `-U PATH`: a free path, a live listener (with queued
//! and accepted connections), a stale socket file, an orphaned listener, a
//! regular file, an abstract name, and a path too long for sun_path.
//!
//! Loopback only (a wildcard is bound only where the case is about the
//! wildcard: the dual-stack listener). A python3 holder binds port 0, prints
//! the port on stdout once its sockets are ready, and holds them until its
//! stdin closes; the test reads that line (bounded) instead of sleeping.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
use common::*;

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const V4: &str = "127.0.0.1";

// ---------------------------------------------------------------- helpers

/// A python3 process holding sockets until it is dropped (see
/// [`port_holder`]).
struct Holder {
    run: Running,
    port: u16,
}

impl Holder {
    /// Runs `script`, which must print the port on stdout once its sockets
    /// are in place and then block in `sys.stdin.read()`.
    fn start(script: &str) -> Holder {
        let (run, port) = port_holder(python(script, &[]));
        Holder { run, port }
    }

    /// Runs `script` with `args` (sys.argv[1:]); a holder of Unix sockets
    /// prints 0, having no port.
    fn start_args(script: &str, args: &[&str]) -> Holder {
        let (run, port) = port_holder(python(script, args));
        Holder { run, port }
    }

    fn pid(&self) -> u32 {
        self.run.pid()
    }
}

/// A TCP listener on 127.0.0.1 without SO_REUSEADDR.
const PY_LISTEN: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
sys.stdin.read()
"#;

/// A UDP socket bound to 127.0.0.1 without SO_REUSEADDR.
const PY_UDP: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
sys.stdin.read()
"#;

/// A TCP socket bound to 127.0.0.1, never listening nor connected.
const PY_BOUND: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
sys.stdin.read()
"#;

/// Two listeners on one 127.0.0.1 port, both with SO_REUSEPORT.
const PY_REUSEPORT_PAIR: &str = r#"
import socket, sys
def one(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    return s
a = one(0)
b = one(a.getsockname()[1])
print(a.getsockname()[1], flush=True)
sys.stdin.read()
"#;

/// One listener on 127.0.0.1 with SO_REUSEPORT (a sibling may join it).
const PY_REUSEPORT_ONE: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
sys.stdin.read()
"#;

/// A dual-stack listener: `::` with IPV6_V6ONLY off.
const PY_DUAL: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
sys.stdin.read()
"#;

/// `sonda probe ARGS...`, run to completion.
fn probe(args: &[&str]) -> Finished {
    let mut all = vec!["probe"];
    all.extend_from_slice(args);
    run(&all, Input::Null)
}

fn out(f: &Finished) -> String {
    String::from_utf8_lossy(&f.stdout).into_owned()
}

/// The text after `verdict: ` on the one verdict line.
fn verdict(f: &Finished) -> String {
    let text = out(f);
    let lines: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("verdict: "))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one verdict line\nstdout:\n{text}\n{}",
        f.dump()
    );
    lines[0].to_string()
}

/// The rows of the socket table (after its header), trimmed.
fn table_rows(f: &Finished) -> Vec<String> {
    let text = out(f);
    let mut rows = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("sockets on port ") {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        if !line.starts_with("  ") {
            break;
        }
        let row = line.trim();
        if !row.starts_with("STATE ") {
            rows.push(row.to_string());
        }
    }
    rows
}

/// The bind-attempt line for ADDRESS and OPTIONS (`plain`, `SO_REUSEADDR`,
/// `SO_REUSEPORT`): the result column.
fn bind_result(f: &Finished, address: &str, options: &str) -> String {
    let text = out(f);
    let found: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let opt_at = words.iter().position(|w| *w == options)?;
            (words[0] == address).then(|| words[opt_at + 1..].join(" "))
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one bind line for {address} {options}\nstdout:\n{text}"
    );
    found[0].clone()
}

/// The notes, one string each.
fn notes(f: &Finished) -> Vec<String> {
    out(f)
        .lines()
        .filter_map(|l| l.strip_prefix("  - "))
        .map(str::to_string)
        .collect()
}

/// `sonda probe --json ARGS...`: the run and its parsed object.
fn probe_json(args: &[&str]) -> (Finished, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let f = probe(&all);
    let v: Value = serde_json::from_slice(&f.stdout).unwrap_or_else(|e| {
        panic!(
            "--json output does not parse: {e}\nstdout:\n{}\n{}",
            out(&f),
            f.dump()
        )
    });
    (f, v)
}

fn sockets(v: &Value) -> &Vec<Value> {
    v["sockets"].as_array().expect("sockets array")
}

fn binds(v: &Value) -> &Vec<Value> {
    v["binds"].as_array().expect("binds array")
}

/// A timer cell such as `59.9s`.
fn is_timer(cell: &str) -> bool {
    let Some(num) = cell.strip_suffix('s') else {
        return false;
    };
    match num.split_once('.') {
        Some((whole, tenth)) => {
            !whole.is_empty()
                && whole.bytes().all(|b| b.is_ascii_digit())
                && tenth.len() == 1
                && tenth.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

fn assert_one_error_line(f: &Finished) {
    let lines: Vec<&str> = f.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one stderr line\n{}",
        f.dump()
    );
    assert!(
        lines[0].starts_with("sonda: "),
        "error line without 'sonda: '\n{}",
        f.dump()
    );
    assert!(
        f.stdout.is_empty(),
        "a usage error printed to stdout\n{}",
        f.dump()
    );
}

// ---------------------------------------------------------------- free port

#[test]
fn free_port_would_bind() {
    let port = closed_port(V4).to_string();
    for args in [vec![port.as_str()], vec![V4, port.as_str()]] {
        let f = probe(&args);
        f.expect_code(0);
        let v = verdict(&f);
        assert!(
            v.starts_with("bind would succeed"),
            "verdict: {v}\n{}",
            f.dump()
        );
        assert!(
            table_rows(&f).is_empty(),
            "a free port with sockets?\n{}",
            out(&f)
        );
    }
}

// ---------------------------------------------------------------- listener

#[test]
fn held_listener_is_named_and_reuseaddr_does_not_help() {
    require!("python3");
    let h = Holder::start(PY_LISTEN);
    let port = h.port.to_string();
    let owner = format!("pid {} (python3)", h.pid());
    for args in [vec![port.as_str()], vec![V4, port.as_str()]] {
        let f = probe(&args);
        f.expect_code(5);
        let v = verdict(&f);
        assert!(v.contains(&owner), "verdict does not name {owner}: {v}");
        assert!(
            v.contains("even with SO_REUSEADDR"),
            "verdict does not say SO_REUSEADDR will not help: {v}"
        );
        let rows = table_rows(&f);
        assert!(
            rows.iter()
                .any(|r| r.starts_with("LISTEN") && r.contains(&owner)),
            "no LISTEN row owned by {owner}\n{}",
            out(&f)
        );
    }
    // The explicit address: every trial fails, SO_REUSEADDR included.
    let f = probe(&[V4, &port]);
    for opts in ["plain", "SO_REUSEADDR"] {
        let r = bind_result(&f, &format!("{V4}:{port}"), opts);
        assert!(r.starts_with("EADDRINUSE"), "{opts}: {r}\n{}", out(&f));
    }
}

// ---------------------------------------------------------------- TIME-WAIT

/// Leaves the server end of one loopback connection in TIME-WAIT on a port
/// nothing listens on any more; returns the port.
fn make_time_wait() -> u16 {
    let (listener, port) = Loop::V4.std_listener();
    let mut client = Loop::V4.std_connect(port);
    let server_side = accept_within(&listener, LONG);
    // The server closes first (active close): its end enters TIME-WAIT once
    // the client's FIN arrives.
    drop(server_side);
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 16];
    let n = client
        .read(&mut buf)
        .expect("client reads the server's EOF");
    assert_eq!(n, 0, "expected EOF from the server side");
    drop(client);
    drop(listener);
    port
}

/// Polls (bounded) `probe --json 127.0.0.1 PORT` until the table shows a
/// TIME-WAIT socket; returns that run.
fn wait_for_time_wait(port: u16) -> (Finished, Value) {
    let port = port.to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (f, v) = probe_json(&[V4, &port]);
        if sockets(&v).iter().any(|s| s["state"] == "TIME-WAIT") {
            return (f, v);
        }
        assert!(
            Instant::now() < deadline,
            "no TIME-WAIT on port {port} within 20 s\nstdout:\n{}",
            out(&f)
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn time_wait_is_shown_and_reuseaddr_binds() {
    let port = make_time_wait();
    let (jf, v) = wait_for_time_wait(port);
    jf.expect_code(5);
    let tw: Vec<&Value> = sockets(&v)
        .iter()
        .filter(|s| s["state"] == "TIME-WAIT")
        .collect();
    for s in &tw {
        let ms = s["expires_ms"].as_u64().expect("a TIME-WAIT timer");
        assert!(ms <= 60_000, "TIME-WAIT timer beyond 2*MSL: {ms} ms");
        assert_eq!(s["local"], format!("{V4}:{port}"), "{s}");
    }
    assert_eq!(v["verdict"]["bind_ok"], false);

    let port_s = port.to_string();
    let f = probe(&[V4, &port_s]);
    f.expect_code(5);
    let rows = table_rows(&f);
    let tw_rows: Vec<&String> = rows.iter().filter(|r| r.starts_with("TIME-WAIT")).collect();
    assert!(!tw_rows.is_empty(), "no TIME-WAIT row\n{}", out(&f));
    for r in &tw_rows {
        assert!(
            r.split_whitespace().any(is_timer),
            "TIME-WAIT row without a timer like 59.9s: {r}\n{}",
            out(&f)
        );
    }
    let addr = format!("{V4}:{port}");
    let plain = bind_result(&f, &addr, "plain");
    assert!(plain.starts_with("EADDRINUSE"), "plain bind: {plain}");
    let reuse = bind_result(&f, &addr, "SO_REUSEADDR");
    assert_eq!(
        reuse,
        "ok",
        "SO_REUSEADDR bind beside TIME-WAIT\n{}",
        out(&f)
    );
    let v = verdict(&f);
    assert!(v.contains("TIME-WAIT"), "verdict: {v}");
    assert!(v.contains("SO_REUSEADDR"), "verdict: {v}");
    assert!(
        notes(&f).iter().any(|n| n.contains("TIME-WAIT")),
        "no TIME-WAIT note\n{}",
        out(&f)
    );
}

// ---------------------------------------------------------------- UDP

#[test]
fn udp_holder_is_named_and_tcp_is_free() {
    require!("python3");
    let h = Holder::start(PY_UDP);
    let port = h.port.to_string();
    let owner = format!("pid {} (python3)", h.pid());
    for args in [
        vec!["--udp", port.as_str()],
        vec!["--udp", V4, port.as_str()],
    ] {
        let f = probe(&args);
        f.expect_code(5);
        let v = verdict(&f);
        assert!(v.contains(&owner), "verdict does not name {owner}: {v}");
        assert!(
            out(&f).contains(&format!("sockets on port {port}/udp")),
            "no UDP table\n{}",
            out(&f)
        );
    }
    // TCP on the same number is another port altogether.
    let f = probe(&[&port]);
    f.expect_code(0);
    assert!(verdict(&f).starts_with("bind would succeed"), "{}", out(&f));
}

/// Two UDP sockets sharing one 127.0.0.1 port, both with SO_REUSEADDR.
const PY_UDP_REUSEADDR_PAIR: &str = r#"
import socket, sys
def one(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    return s
a = one(0)
b = one(a.getsockname()[1])
print(a.getsockname()[1], flush=True)
sys.stdin.read()
"#;

/// Asserts a verdict or note speaks of UDP, not of TCP's TIME-WAIT or
/// listeners.
fn assert_udp_wording(text: &str) {
    for tcp in ["TIME-WAIT", "listener", "listens", "connections"] {
        assert!(!text.contains(tcp), "TCP wording '{tcp}' in: {text}");
    }
}

/// A UDP socket that set SO_REUSEADDR (`sonda udp-recv --reuseaddr`): the
/// verdict names the UDP socket and its owner, and says what SO_REUSEADDR
/// does on UDP: it shares the port, and a second receiver steals the
/// datagrams.
#[test]
fn udp_holder_with_reuseaddr_gets_udp_advice() {
    let mut holder = spawn(
        &["-v", "udp-recv", "--reuseaddr", V4, "0"],
        Input::Null,
        Output::Null,
    );
    let port = holder.listening_port().to_string();
    let f = probe(&["--udp", V4, &port]);
    f.expect_code(5);
    let v = verdict(&f);
    assert!(v.contains("UDP socket"), "verdict: {v}");
    assert!(
        v.contains(&format!("pid {} (sonda)", holder.pid())),
        "verdict does not name the owner: {v}"
    );
    assert!(
        v.contains("SO_REUSEADDR") && v.contains("shares the port"),
        "verdict: {v}"
    );
    assert!(v.contains("steals the datagrams"), "verdict: {v}");
    assert_udp_wording(&v);
}

/// A UDP socket without SO_REUSEADDR (python3): SO_REUSEADDR will not
/// help, and the verdict says why in UDP's terms.
#[test]
fn udp_holder_without_reuseaddr_gets_udp_advice() {
    require!("python3");
    let h = Holder::start(PY_UDP);
    let port = h.port.to_string();
    let f = probe(&["--udp", V4, &port]);
    f.expect_code(5);
    let v = verdict(&f);
    assert!(
        v.contains(&format!("pid {} (python3)", h.pid())),
        "verdict: {v}"
    );
    assert!(v.contains("UDP socket"), "verdict: {v}");
    assert!(v.contains("did not set SO_REUSEADDR"), "verdict: {v}");
    assert_udp_wording(&v);
}

/// Two UDP sockets sharing a port through SO_REUSEADDR: a note says which
/// option shares it and that the one bound last takes the datagrams.
#[test]
fn udp_sockets_sharing_a_port_are_explained() {
    require!("python3");
    let h = Holder::start(PY_UDP_REUSEADDR_PAIR);
    let port = h.port.to_string();
    let f = probe(&["--udp", V4, &port]);
    f.expect_code(5);
    let note = notes(&f)
        .into_iter()
        .find(|n| n.contains("share"))
        .unwrap_or_else(|| panic!("no note on the shared port\n{}", out(&f)));
    assert!(
        note.contains("SO_REUSEADDR") && !note.contains("SO_REUSEPORT"),
        "note: {note}"
    );
    assert!(note.contains("bound last"), "note: {note}");
    assert_udp_wording(&note);
    assert_udp_wording(&verdict(&f));
}

// ---------------------------------------------------------------- bound-inactive

#[test]
fn bound_inactive_socket_is_found() {
    require!("python3");
    let h = Holder::start(PY_BOUND);
    let port = h.port.to_string();
    let f = probe(&[&port]);
    f.expect_code(5);
    let v = verdict(&f);
    assert!(v.contains("bound-inactive"), "verdict: {v}");
    assert!(
        v.contains(&format!("pid {} (python3)", h.pid())),
        "verdict does not name pid {}: {v}",
        h.pid()
    );
    assert!(
        table_rows(&f)
            .iter()
            .any(|r| r.starts_with("BOUND-INACTIVE")),
        "no BOUND-INACTIVE row\n{}",
        out(&f)
    );
    let (_, j) = probe_json(&[&port]);
    let kinds: Vec<&Value> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| &x["kind"])
        .collect();
    assert!(kinds.iter().any(|k| *k == "bound-inactive"), "{j}");
}

// ---------------------------------------------------------------- SO_REUSEPORT

#[test]
fn reuseport_siblings_are_shown_together() {
    require!("python3");
    let h = Holder::start(PY_REUSEPORT_PAIR);
    let port = h.port.to_string();
    let f = probe(&[V4, &port]);
    f.expect_code(5);
    let listen_rows: Vec<String> = table_rows(&f)
        .into_iter()
        .filter(|r| r.starts_with("LISTEN"))
        .collect();
    assert_eq!(
        listen_rows.len(),
        2,
        "expected two LISTEN rows\n{}",
        out(&f)
    );
    let owner = format!("pid {} (python3)", h.pid());
    assert!(
        listen_rows.iter().all(|r| r.contains(&owner)),
        "LISTEN rows not owned by {owner}\n{}",
        out(&f)
    );
    assert!(
        notes(&f)
            .iter()
            .any(|n| n.contains("2 sockets share") && n.contains("splits new connections")),
        "no note that the sockets share the port\n{}",
        out(&f)
    );
    // Only another SO_REUSEPORT socket may join them.
    let addr = format!("{V4}:{port}");
    assert_eq!(bind_result(&f, &addr, "SO_REUSEPORT"), "ok", "{}", out(&f));
    assert!(bind_result(&f, &addr, "SO_REUSEADDR").starts_with("EADDRINUSE"));
}

#[test]
fn reuseport_beside_openbsd_netcat() {
    require!("python3");
    require!("nc.openbsd");
    let h = Holder::start(PY_REUSEPORT_ONE);
    let port = h.port.to_string();
    // nc.openbsd -l sets SO_REUSEPORT (and SO_REUSEADDR) on its listener, so
    // on Linux it binds and listens beside the python listener instead of
    // failing with EADDRINUSE; this is the trap the probe note warns about.
    // Its stdin is a pipe held open so it waits for a client.
    let mut cmd = Command::new("nc.openbsd");
    cmd.args(["-l", V4, &port]);
    let mut nc = spawn_cmd(cmd, Input::Pipe, Output::Null);
    let nc_pid = nc.pid();
    let mut seen = None;
    poll_until(
        LONG,
        || {
            assert!(
                nc.is_running(),
                "nc.openbsd exited instead of binding beside an SO_REUSEPORT listener\n{}",
                nc.dump()
            );
            let (f, v) = probe_json(&[V4, &port]);
            let has_nc = sockets(&v)
                .iter()
                .any(|s| s["owners"][0]["pid"].as_u64() == Some(u64::from(nc_pid)));
            seen = Some((f, v));
            has_nc
        },
        || format!("nc.openbsd never showed up on port {port}"),
    );
    let (f, v) = seen.unwrap();
    f.expect_code(5);
    let listeners: Vec<&Value> = sockets(&v)
        .iter()
        .filter(|s| s["state"] == "LISTEN")
        .collect();
    let pids: Vec<u64> = listeners
        .iter()
        .filter_map(|s| s["owners"][0]["pid"].as_u64())
        .collect();
    assert!(pids.contains(&u64::from(nc_pid)), "{v}");
    assert!(pids.contains(&u64::from(h.pid())), "{v}");

    let t = probe(&[V4, &port]);
    t.expect_code(5);
    let nc_owner = format!("pid {nc_pid} (nc.openbsd)");
    let py_owner = format!("pid {} (python3)", h.pid());
    let text = out(&t);
    assert!(text.contains(&nc_owner), "{nc_owner} not shown\n{text}");
    assert!(text.contains(&py_owner), "{py_owner} not shown\n{text}");
    assert!(
        notes(&t).iter().any(|n| n.contains("2 sockets share")
            && n.contains("splits new connections")
            && n.contains(&nc_owner)
            && n.contains(&py_owner)),
        "no shared-port note naming both owners\n{text}"
    );
    // Dropping `nc` kills it.
    drop(nc);
}

// ---------------------------------------------------------------- --reproduce

/// Checks a `--reproduce` transcript: EADDRINUSE for the plain bind, then
/// SO_REUSEADDR ok, TIME-WAIT in both tables.
fn check_reproduce(f: &Finished) {
    f.expect_code(0);
    let text = out(f);
    let lines: Vec<&str> = text.lines().collect();
    let plain = lines
        .iter()
        .position(|l| l.contains("without SO_REUSEADDR") && l.contains("EADDRINUSE"))
        .unwrap_or_else(|| panic!("no EADDRINUSE for the plain bind\n{text}"));
    let reuse = lines
        .iter()
        .position(|l| l.contains("with SO_REUSEADDR: ok"))
        .unwrap_or_else(|| panic!("no SO_REUSEADDR ok line\n{text}"));
    assert!(
        plain < reuse,
        "SO_REUSEADDR shown before the failure\n{text}"
    );
    let tw = lines
        .iter()
        .filter(|l| l.trim_start().starts_with("TIME-WAIT"))
        .count();
    assert!(
        tw >= 2,
        "expected TIME-WAIT in the table before and after\n{text}"
    );
    assert!(
        lines[..plain]
            .iter()
            .any(|l| l.trim_start().starts_with("TIME-WAIT")),
        "no TIME-WAIT row before the plain bind\n{text}"
    );
    assert!(
        lines[reuse..]
            .iter()
            .any(|l| l.trim_start().starts_with("TIME-WAIT")),
        "no TIME-WAIT row after the SO_REUSEADDR bind\n{text}"
    );
}

#[test]
fn reproduce_shows_eaddrinuse_then_reuseaddr() {
    let f = probe(&["--reproduce"]);
    check_reproduce(&f);
}

#[test]
fn reproduce_on_a_given_free_port() {
    let port = closed_port(V4);
    let f = probe(&["--reproduce", &port.to_string()]);
    check_reproduce(&f);
    assert!(
        out(&f).contains(&format!("listens on {V4}:{port}")),
        "not on the port asked for\n{}",
        out(&f)
    );
}

// ---------------------------------------------------------------- --json

#[test]
fn json_carries_the_same_facts_as_text() {
    require!("python3");
    let h = Holder::start(PY_LISTEN);
    let port = h.port.to_string();
    let (jf, v) = probe_json(&[&port]);
    jf.expect_code(5);
    assert_eq!(v["proto"], "tcp");
    assert_eq!(v["port"].as_u64(), Some(u64::from(h.port)));
    assert!(
        v["source"] == "sock_diag" || v["source"] == "/proc/net",
        "source: {}",
        v["source"]
    );
    let plain: Vec<&Value> = binds(&v)
        .iter()
        .filter(|b| b["options"] == "plain")
        .collect();
    assert!(!plain.is_empty(), "no plain bind\n{v}");
    for b in &plain {
        assert_eq!(b["ok"], false, "{b}");
        assert_eq!(b["errno"], "EADDRINUSE", "{b}");
        assert!(b["error"].is_string(), "{b}");
    }
    let listen: Vec<&Value> = sockets(&v)
        .iter()
        .filter(|s| s["state"] == "LISTEN")
        .collect();
    assert_eq!(listen.len(), 1, "{v}");
    let s = listen[0];
    assert_eq!(s["proto"], "tcp");
    assert_eq!(s["local"], format!("{V4}:{port}"));
    assert_eq!(
        s["owners"][0]["pid"].as_u64(),
        Some(u64::from(h.pid())),
        "{s}"
    );
    assert_eq!(s["owners"][0]["command"], "python3", "{s}");
    assert_eq!(s["owner_visible"], true, "{s}");
    assert!(s["expires_ms"].is_null(), "{s}");
    assert!(s["inode"].as_u64().is_some_and(|i| i > 0), "{s}");
    assert_eq!(v["verdict"]["bind_ok"], false);

    let tf = probe(&[&port]);
    tf.expect_code(5);
    assert_eq!(
        v["verdict"]["text"].as_str().unwrap(),
        verdict(&tf),
        "JSON and text verdicts differ"
    );
    // Every finding is a note of the text, and the tables agree in size.
    let text_notes = notes(&tf);
    for finding in v["findings"].as_array().unwrap() {
        let t = finding["text"].as_str().unwrap();
        assert!(
            text_notes.iter().any(|n| n == t),
            "finding not in the text: {t}"
        );
    }
    assert_eq!(sockets(&v).len(), table_rows(&tf).len(), "{}", out(&tf));
    assert_eq!(binds(&v).len(), 6, "[::] and 0.0.0.0, three options each");
}

// ---------------------------------------------------------------- usage errors

#[test]
fn bad_input_is_a_usage_error() {
    let cases: [&[&str]; 6] = [
        &["probe", "70000"],
        &["probe", "abc"],
        &["probe"],
        &["probe", "0"],
        &["probe", "--reproduce", "--udp", "1"],
        &["probe", "", "80"],
    ];
    for args in cases {
        let f = run(args, Input::Null);
        f.expect_code(2);
        assert_one_error_line(&f);
    }
}

// ---------------------------------------------------------------- unprivileged

#[test]
fn unprivileged_probe_sees_the_listener_but_not_its_owner() {
    require!("python3");
    require!("setpriv");
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: not running as root, cannot drop to nobody");
        return;
    }
    let as_nobody = |args: &[&str]| {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()])
            .args(args);
        spawn_cmd(cmd, Input::Null, Output::Capture).finish()
    };
    let version = as_nobody(&["--version"]);
    if version.code() != Some(0) {
        eprintln!(
            "skipped: uid 65534 cannot run {} (status {:?}): {}",
            bin(),
            version.status,
            version.stderr.trim()
        );
        return;
    }
    let h = Holder::start(PY_LISTEN); // root's
    let port = h.port.to_string();
    let pid = h.pid().to_string();
    for args in [
        vec!["probe", port.as_str()],
        vec!["probe", V4, port.as_str()],
    ] {
        let f = as_nobody(&args);
        f.expect_code(5);
        let text = out(&f);
        let rows = table_rows(&f);
        assert!(
            rows.iter()
                .any(|r| r.starts_with("LISTEN") && r.contains("not visible")),
            "owner of root's listener not shown as 'not visible'\n{text}"
        );
        assert!(
            !text.contains(&format!("pid {pid} ")),
            "nobody saw root's pid {pid}\n{text}"
        );
        let v = verdict(&f);
        assert!(v.starts_with("bind would fail"), "verdict: {v}");
        assert!(v.contains("not visible"), "verdict: {v}");
    }
    let f = as_nobody(&["probe", "--json", V4, &port]);
    f.expect_code(5);
    let v: Value = serde_json::from_slice(&f.stdout).unwrap();
    let s = sockets(&v)
        .iter()
        .find(|s| s["state"] == "LISTEN")
        .expect("LISTEN entry");
    assert_eq!(s["owner_visible"], false, "{s}");
    assert_eq!(s["owners"].as_array().map(Vec::len), Some(0), "{s}");
    assert_eq!(s["uid"], 0, "{s}");
}

// ---------------------------------------------------------------- dual-stack

#[test]
fn dual_stack_listener_blocks_ipv4_too() {
    require!("python3");
    require_ipv6!();
    let h = Holder::start(PY_DUAL);
    let port = h.port.to_string();
    let f = probe(&[&port]);
    f.expect_code(5);
    assert!(
        notes(&f).iter().any(|n| n.contains("dual-stack")),
        "no dual-stack note\n{}",
        out(&f)
    );
    let v4 = bind_result(&f, &format!("0.0.0.0:{port}"), "plain");
    assert!(
        v4.starts_with("EADDRINUSE"),
        "0.0.0.0 plain: {v4}\n{}",
        out(&f)
    );
    assert!(
        table_rows(&f)
            .iter()
            .any(|r| r.starts_with("LISTEN") && r.contains(&format!("[::]:{port} (v4+v6)"))),
        "listener not marked v4+v6\n{}",
        out(&f)
    );
    let (_, j) = probe_json(&[&port]);
    let s = sockets(&j)
        .iter()
        .find(|s| s["state"] == "LISTEN")
        .expect("LISTEN entry");
    assert_eq!(s["v6only"], false, "{s}");
    let b = binds(&j)
        .iter()
        .find(|b| b["address"] == format!("0.0.0.0:{port}") && b["options"] == "plain")
        .expect("0.0.0.0 plain bind");
    assert_eq!(b["ok"], false, "{b}");
}

// ---------------------------------------------------------------- closed stdout

/// Runs sonda with its stdout a pipe the test reads once (at most `n`
/// bytes) and then closes, as `| head -c N` does; returns the run and what
/// was read.
fn run_head(args: &[&str], n: usize) -> (Finished, Vec<u8>) {
    let mut r = spawn(args, Input::Null, Output::Pipe);
    // The pipe drops at the end of the statement: its read end closes.
    let head = r.stdout_pipe().read_within(n, LONG);
    (r.finish(), head)
}

fn assert_quiet_exit(f: &Finished, code: i32) {
    f.expect_code(code);
    assert!(!f.stderr.contains("panicked"), "panic\n{}", f.dump());
    assert!(
        f.stderr.is_empty(),
        "closed stdout must leave stderr empty (DESIGN.md)\n{}",
        f.dump()
    );
}

#[test]
fn closed_stdout_does_not_panic() {
    require!("python3");
    let free = closed_port(V4).to_string();
    let h = Holder::start(PY_LISTEN);
    let held = h.port.to_string();
    for (args, code) in [
        (vec!["probe", free.as_str()], 0),
        (vec!["probe", held.as_str()], 5),
        (vec!["probe", "--json", held.as_str()], 5),
        (vec!["probe", "--reproduce"], 0),
    ] {
        let f = spawn(&args, Input::Null, Output::Closed).finish();
        assert_quiet_exit(&f, code);
        let (f, head) = run_head(&args, 10);
        assert_quiet_exit(&f, code);
        assert!(!head.is_empty(), "nothing read\n{}", f.dump());
    }
}

// ---------------------------------------------------------------- -U PATH

/// A Unix stream listener: `argv[1]` path (or `@NAME`, abstract), backlog
/// `argv[2]`, then `argv[3]` clients of its own connect and `argv[4]` of
/// them are accepted. Prints 0 when all of that is in place.
const PY_UNIX_LISTEN: &str = r#"
import socket, sys
path, backlog, clients, accepts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if path.startswith("@"):
    path = "\0" + path[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(backlog)
cs = []
for _ in range(clients):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(path)
    cs.append(c)
got = [s.accept()[0] for _ in range(accepts)]
print(0, flush=True)
sys.stdin.read()
"#;

/// Binds a Unix stream socket at `argv[1]` and exits without removing the
/// file (Python never unlinks it), leaving a stale socket file.
const PY_UNIX_BIND_AND_EXIT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(1)
"#;

fn unix_listener(path: &str, backlog: u32, clients: u32, accepts: u32) -> Holder {
    let (b, c, a) = (
        backlog.to_string(),
        clients.to_string(),
        accepts.to_string(),
    );
    Holder::start_args(PY_UNIX_LISTEN, &[path, &b, &c, &a])
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn path_in(dir: &tempfile::TempDir, name: &str) -> String {
    dir.path().join(name).to_str().unwrap().to_string()
}

/// `probe --json -U NAME`, parsed.
fn probe_unix_json(name: &str) -> (Finished, Value) {
    probe_json(&["-U", name])
}

fn verdict_state(v: &Value) -> &str {
    v["verdict"]["state"].as_str().unwrap_or("?")
}

/// The notes of kind `kind` in a --json report.
fn findings_of<'a>(v: &'a Value, kind: &str) -> Vec<&'a Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

#[test]
fn unix_free_path() {
    let dir = tempdir();
    let path = path_in(&dir, "free.sock");
    let f = probe(&["-U", &path]);
    f.expect_code(0);
    let v = verdict(&f);
    assert!(
        v.starts_with("free: nothing is at"),
        "verdict: {v}\n{}",
        out(&f)
    );
    assert!(
        out(&f).contains(&format!("path {path}: nothing there")),
        "{}",
        out(&f)
    );
    // The trial bind made a file for an instant; none is left.
    assert!(
        !std::path::Path::new(&path).exists(),
        "the trial bind left {path} behind"
    );
    let (jf, j) = probe_unix_json(&path);
    jf.expect_code(0);
    assert_eq!(verdict_state(&j), "free", "{j}");
    assert_eq!(j["verdict"]["bind_ok"], true, "{j}");
    assert!(j["file"].is_null(), "{j}");
    assert_eq!(j["binds"][0]["ok"], true, "{j}");
    assert!(!std::path::Path::new(&path).exists());
    // A directory that does not exist: nothing holds the path, yet no
    // listener can bind there.
    let missing = path_in(&dir, "no/such/dir.sock");
    let f = probe(&["-U", &missing]);
    f.expect_code(5);
    assert!(verdict(&f).contains("ENOENT"), "{}", out(&f));
}

#[test]
fn unix_live_listener_names_python() {
    require!("python3");
    let dir = tempdir();
    let path = path_in(&dir, "live.sock");
    let h = unix_listener(&path, 16, 0, 0);
    let owner = format!("pid {} (python3)", h.pid());
    let f = probe(&["-U", &path]);
    f.expect_code(5);
    let v = verdict(&f);
    assert!(
        v.starts_with(&format!("live listener: {owner}")),
        "verdict: {v}\n{}",
        out(&f)
    );
    assert!(v.contains("backlog of 16"), "verdict: {v}");
    assert!(
        table_rows_unix(&f).iter().any(|r| r.starts_with("stream")
            && r.contains("LISTEN")
            && r.contains("this file")
            && r.contains(&owner)),
        "no LISTEN row on this file owned by {owner}\n{}",
        out(&f)
    );
    let (jf, j) = probe_unix_json(&path);
    jf.expect_code(5);
    assert_eq!(verdict_state(&j), "live", "{j}");
    assert_eq!(
        j["holder"]["owners"][0]["pid"].as_u64(),
        Some(u64::from(h.pid())),
        "{j}"
    );
    assert_eq!(j["holder"]["owners"][0]["command"], "python3", "{j}");
    assert_eq!(j["holder"]["binding"], "this-file", "{j}");
    // The holder is bound to the very file stat(2) sees: inode and device
    // (unix_diag's device converted to st_dev's encoding) agree.
    let meta = std::fs::metadata(&path).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(j["file"]["inode"].as_u64(), Some(meta.ino()), "{j}");
    if j["source"] == "sock_diag" {
        assert_eq!(
            j["holder"]["file_inode"].as_u64(),
            Some(meta.ino() & 0xffff_ffff),
            "{j}"
        );
        assert_eq!(j["holder"]["file_device"], j["file"]["device"], "{j}");
        assert_eq!(
            j["holder"]["uid"].as_u64(),
            Some(u64::from(meta.uid())),
            "{j}"
        );
    }
    assert!(
        j["binds"].as_array().unwrap().is_empty(),
        "an existing path got a trial bind: {j}"
    );
}

/// Table rows of a -U report (after its header), trimmed.
fn table_rows_unix(f: &Finished) -> Vec<String> {
    let text = out(f);
    let mut rows = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("sockets ") {
            inside = true;
            continue;
        }
        if inside && line.starts_with("  ") {
            if !line.trim_start().starts_with("TYPE ") {
                rows.push(line.trim().to_string());
            }
        } else if inside {
            break;
        }
    }
    rows
}

#[test]
fn unix_listener_with_pending_and_accepted_connections() {
    require!("python3");
    let dir = tempdir();
    let path = path_in(&dir, "queue.sock");
    // Four clients connect; one is accepted, three wait in the queue.
    let h = unix_listener(&path, 8, 4, 1);
    let f = probe(&["-U", &path]);
    f.expect_code(5);
    let v = verdict(&f);
    assert!(
        v.contains(&format!("pid {} (python3)", h.pid())),
        "verdict: {v}"
    );
    let (_, j) = probe_unix_json(&path);
    if j["source"] == "sock_diag" {
        assert!(
            v.contains("3 pending connection(s) of a backlog of 8, 1 connected peer(s)"),
            "verdict: {v}"
        );
        assert_eq!(j["holder"]["pending"].as_u64(), Some(3), "{j}");
        assert_eq!(j["holder"]["backlog"].as_u64(), Some(8), "{j}");
    } else {
        assert!(v.contains("3 pending connection(s)"), "verdict: {v}");
    }
    assert_eq!(j["connected_peers"].as_u64(), Some(1), "{j}");
    let conns: Vec<&Value> = sockets(&j)
        .iter()
        .filter(|s| s["role"] == "connection")
        .collect();
    assert_eq!(conns.len(), 1, "{j}");
}

#[test]
fn unix_stale_file_is_safe_to_remove() {
    require!("python3");
    let dir = tempdir();
    let path = path_in(&dir, "stale.sock");
    let mut py = Command::new("python3")
        .args(["-c", PY_UNIX_BIND_AND_EXIT, &path])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + LONG;
    let status = loop {
        if let Some(s) = py.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "python3 did not exit");
        thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "python3 failed: {status}");
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata(&path).unwrap().file_type().is_socket(),
        "no socket file left"
    );
    let f = probe(&["-U", &path]);
    f.expect_code(5);
    let v = verdict(&f);
    assert!(v.starts_with("stale socket file:"), "verdict: {v}");
    assert!(v.contains("safe to remove"), "verdict: {v}");
    let hint = format!("sonda listen -U {path} --unlink-stale");
    assert!(
        out(&f).lines().any(|l| l == format!("hint: {hint}")),
        "no hint line\n{}",
        out(&f)
    );
    let (_, j) = probe_unix_json(&path);
    assert_eq!(verdict_state(&j), "stale", "{j}");
    assert_eq!(j["hint"], hint.as_str(), "{j}");
    assert_eq!(j["file"]["kind"], "socket", "{j}");
    assert!(j["holder"].is_null(), "{j}");
    // probe only looks: the file is still there.
    assert!(std::path::Path::new(&path).exists());
}

#[test]
fn unix_orphaned_listener_is_unreachable_by_path() {
    require!("python3");
    let dir = tempdir();
    let path = path_in(&dir, "orphan.sock");
    let a = unix_listener(&path, 16, 0, 0);
    std::fs::remove_file(&path).unwrap();
    let a_owner = format!("pid {} (python3)", a.pid());

    // Nothing at the path: free to bind, but A still listens on the name.
    let (jf, j) = probe_unix_json(&path);
    jf.expect_code(0);
    assert_eq!(verdict_state(&j), "orphaned", "{j}");
    let text = j["verdict"]["text"].as_str().unwrap();
    assert!(text.contains(&a_owner), "verdict: {text}");
    assert!(
        text.contains("no client can reach it by path"),
        "verdict: {text}"
    );
    assert_eq!(
        j["holder"]["owners"][0]["pid"].as_u64(),
        Some(u64::from(a.pid())),
        "{j}"
    );
    assert!(
        !std::path::Path::new(&path).exists(),
        "the trial bind left a file"
    );

    // B binds the same path: B is live, A is orphaned beside it.
    let b = unix_listener(&path, 16, 0, 0);
    let b_owner = format!("pid {} (python3)", b.pid());
    let f = probe(&["-U", &path]);
    f.expect_code(5);
    let v = verdict(&f);
    assert!(
        v.starts_with(&format!("live listener: {b_owner}")),
        "verdict: {v}\n{}",
        out(&f)
    );
    let orphan_notes: Vec<String> = notes(&f)
        .into_iter()
        .filter(|n| n.starts_with("orphaned:"))
        .collect();
    assert_eq!(orphan_notes.len(), 1, "{}", out(&f));
    assert!(
        orphan_notes[0].contains(&a_owner),
        "note: {}",
        orphan_notes[0]
    );
    let (_, j) = probe_unix_json(&path);
    assert_eq!(verdict_state(&j), "live", "{j}");
    assert_eq!(
        j["holder"]["owners"][0]["pid"].as_u64(),
        Some(u64::from(b.pid())),
        "{j}"
    );
    assert_eq!(findings_of(&j, "orphaned").len(), 1, "{j}");
    if j["source"] == "sock_diag" {
        let a_row = sockets(&j)
            .iter()
            .find(|s| s["owners"][0]["pid"].as_u64() == Some(u64::from(a.pid())))
            .expect("A's listener in the table");
        assert_eq!(a_row["binding"], "other-inode", "{a_row}");
    }
}

#[test]
fn unix_regular_file_is_not_a_socket() {
    let dir = tempdir();
    let path = path_in(&dir, "plain.txt");
    std::fs::write(&path, b"keep me").unwrap();
    let f = probe(&["-U", &path]);
    f.expect_code(5);
    let v = verdict(&f);
    assert!(
        v.starts_with(&format!("not a socket: {path} is a regular file")),
        "verdict: {v}"
    );
    let (_, j) = probe_unix_json(&path);
    assert_eq!(verdict_state(&j), "not-a-socket", "{j}");
    assert_eq!(j["file"]["kind"], "regular file", "{j}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"keep me",
        "probe touched the file"
    );
    let f = probe(&["-U", dir.path().to_str().unwrap()]);
    f.expect_code(5);
    assert!(verdict(&f).contains("is a directory"), "{}", out(&f));
}

/// A name no other test or run uses.
fn abstract_name(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("@sonda-test-{tag}-{}-{nanos}", std::process::id())
}

#[test]
fn unix_abstract_name_held_by_python() {
    require!("python3");
    let name = abstract_name("py");
    let f = probe(&["-U", &name]);
    f.expect_code(0);
    assert!(
        verdict(&f).starts_with("free: no socket holds the abstract name"),
        "{}",
        out(&f)
    );
    let h = unix_listener(&name, 4, 0, 0);
    let f = probe(&["-U", &name]);
    f.expect_code(5);
    let v = verdict(&f);
    assert!(
        v.starts_with(&format!("live: pid {} (python3)", h.pid())),
        "verdict: {v}"
    );
    let (_, j) = probe_unix_json(&name);
    assert_eq!(j["abstract"], true, "{j}");
    assert!(j["file"].is_null(), "{j}");
    let stream = binds(&j)
        .iter()
        .find(|b| b["type"] == "stream")
        .expect("a stream trial");
    assert_eq!(stream["errno"], "EADDRINUSE", "{j}");
    let dgram = binds(&j)
        .iter()
        .find(|b| b["type"] == "dgram")
        .expect("a dgram trial");
    assert_eq!(dgram["ok"], true, "abstract names are per socket type: {j}");
}

#[test]
fn unix_abstract_name_held_by_socat() {
    if !have("socat") {
        eprintln!("skipped: socat is not installed");
        return;
    }
    let name = abstract_name("socat");
    let mut socat = Command::new("socat")
        .arg(format!("ABSTRACT-LISTEN:{}", &name[1..]))
        .arg("STDOUT")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = u64::from(socat.id());
    // socat prints nothing when it listens: poll probe (bounded) instead.
    let deadline = Instant::now() + LONG;
    let j = loop {
        let (_, j) = probe_unix_json(&name);
        if j["holder"]["owners"][0]["pid"].as_u64() == Some(pid) {
            break j;
        }
        if let Ok(Some(status)) = socat.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = socat.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("socat exited ({status}) before listening\nstderr:\n{err}");
        }
        if Instant::now() >= deadline {
            let _ = socat.kill();
            let _ = socat.wait();
            panic!("socat's listener never showed up\n{j}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(verdict_state(&j), "live", "{j}");
    assert_eq!(j["holder"]["owners"][0]["command"], "socat", "{j}");
    let f = probe(&["-U", &name]);
    f.expect_code(5);
    assert!(
        verdict(&f).contains(&format!("pid {pid} (socat)")),
        "{}",
        out(&f)
    );
    let _ = socat.kill();
    let _ = socat.wait();
}

#[test]
fn unix_json_is_one_object_with_every_field() {
    require!("python3");
    let dir = tempdir();
    let path = path_in(&dir, "json.sock");
    let _h = unix_listener(&path, 8, 1, 1);
    let (f, j) = probe_unix_json(&path);
    f.expect_code(5);
    for key in [
        "path",
        "abstract",
        "source",
        "file",
        "binds",
        "sockets",
        "holder",
        "connected_peers",
        "findings",
        "verdict",
    ] {
        assert!(j.get(key).is_some(), "no '{key}' in {j}");
    }
    assert_eq!(j["path"], path.as_str());
    assert_eq!(j["abstract"], false);
    for s in sockets(&j) {
        for key in [
            "type",
            "state",
            "role",
            "binding",
            "inode",
            "name",
            "owners",
            "owner_visible",
        ] {
            assert!(s.get(key).is_some(), "no '{key}' in socket {s}");
        }
    }
    assert!(
        j["file"]["mode"].as_str().is_some_and(|m| m.len() == 4),
        "{j}"
    );
    assert!(
        j["file"]["device"]
            .as_str()
            .is_some_and(|d| d.contains(':')),
        "{j}"
    );
    // The text report and the JSON say the same.
    let t = probe(&["-U", &path]);
    assert_eq!(j["verdict"]["text"].as_str().unwrap(), verdict(&t));
}

#[test]
fn unix_bad_paths_are_usage_errors() {
    let dir = tempdir();
    let base = dir.path().to_str().unwrap().to_string();
    let sized = |n: usize| {
        let fill = n - base.len() - 1;
        format!("{base}/{}", "a".repeat(fill))
    };
    let long = sized(108);
    assert_eq!(long.len(), 108);
    let longer = sized(200);
    // The @ stands for the leading NUL: 107 bytes after it fit, 108 do not.
    let abstract_long = format!("@{}", "n".repeat(108));
    let cases: [&[&str]; 7] = [
        &["probe", "-U", &long],
        &["probe", "-U", &longer],
        &["probe", "-U", &abstract_long],
        &["probe", "-U", ""],
        &["probe", "-U", "@"],
        &["probe", "-U", "/tmp/x.sock", "8080"],
        &["probe", "--udp", "-U", "/tmp/x.sock"],
    ];
    for args in cases {
        let f = run(args, Input::Null);
        f.expect_code(2);
        assert_one_error_line(&f);
    }
    let f = run(&["probe", "-U", &long], Input::Null);
    assert!(f.stderr.contains("too long"), "{}", f.dump());
    // 107 bytes fit.
    let fits = sized(107);
    let f = probe(&["-U", &fits]);
    f.expect_code(0);
    assert!(!std::path::Path::new(&fits).exists());
    let f = run(&["probe", "--reproduce", "-U", &fits], Input::Null);
    f.expect_code(2);
}
