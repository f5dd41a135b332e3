//! `sonda bench`: local runs (server and client in one process over
//! loopback), `--server`/`--client` in two processes, the JSON document, the
//! control exchange against peers that are not sonda, and bad input.
//!
//! These tests check correctness and the presence of every field, never
//! speed: the machine is small and shared. Every run is short (`--duration
//! 1s` or less), every wait is bounded, and readiness is polled (a stderr
//! line, the kernel's socket table), never slept for.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

// ---------------------------------------------------------------- helpers

/// Runs `sonda <args>`, expects exit 0 and one JSON document on stdout.
fn bench_json(args: &[&str]) -> (Value, Finished) {
    let f = run(args, Input::Null);
    f.expect_code(0);
    (one_document(&f), f)
}

/// stdout of `f` as one JSON document, or a failure naming what it was.
fn one_document(f: &Finished) -> Value {
    serde_json::from_slice(&f.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document: {e}\nstdout:\n{}\n{}",
            String::from_utf8_lossy(&f.stdout),
            f.dump()
        )
    })
}

/// The JSON document and the run, for a failure message.
fn ctx(doc: &Value, f: &Finished) -> String {
    format!(
        "{}\ndocument:\n{}",
        f.dump(),
        serde_json::to_string_pretty(doc).unwrap()
    )
}

/// `doc[key]` as a number, or a panic naming the field.
fn num(v: &Value, key: &str, why: &str) -> f64 {
    v.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("'{key}' is missing or not a number\n{why}"))
}

/// `doc[key]` as a non-negative integer, or a panic naming the field.
fn int(v: &Value, key: &str, why: &str) -> u64 {
    v.get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("'{key}' is missing or not an integer\n{why}"))
}

/// The `results` array.
fn results<'a>(doc: &'a Value, why: &str) -> &'a Vec<Value> {
    doc.get("results")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("'results' is missing or not an array\n{why}"))
}

/// Checks the top level of a stream-mode document and returns its results.
fn stream_results<'a>(doc: &'a Value, f: &Finished) -> &'a Vec<Value> {
    let why = ctx(doc, f);
    assert!(
        doc.get("version").and_then(Value::as_str).is_some(),
        "'version' missing\n{why}"
    );
    assert!(
        doc.get("params").map(Value::is_object).unwrap_or(false),
        "'params' missing\n{why}"
    );
    assert!(
        doc.get("target").and_then(Value::as_str).is_some(),
        "'target' missing\n{why}"
    );
    assert!(
        doc.get("intervals").map(Value::is_array).unwrap_or(false),
        "'intervals' is not an array\n{why}"
    );
    assert!(
        doc.get("latency").map(Value::is_null).unwrap_or(false),
        "'latency' must be null in stream mode\n{why}"
    );
    let r = results(doc, &why);
    assert!(!r.is_empty(), "no results\n{why}");
    r
}

/// Checks one stream-mode result: direction, moved bytes, every field.
fn check_result(r: &Value, direction: &str, udp: bool, why: &str) {
    assert_eq!(
        r.get("direction").and_then(Value::as_str),
        Some(direction),
        "wrong direction\n{why}"
    );
    assert!(int(r, "streams", why) >= 1, "streams < 1\n{why}");
    assert!(int(r, "bytes", why) > 0, "no bytes moved\n{why}");
    assert!(num(r, "seconds", why) > 0.0, "seconds not > 0\n{why}");
    assert!(
        num(r, "bits_per_second", why) > 0.0,
        "bits_per_second not > 0\n{why}"
    );
    assert!(num(r, "sender_cpu_percent", why) >= 0.0, "{why}");
    assert!(num(r, "receiver_cpu_percent", why) >= 0.0, "{why}");
    assert!(
        num(r, "bytes_per_send_call", why) > 0.0,
        "bytes_per_send_call not > 0\n{why}"
    );
    assert!(num(r, "bytes_per_recv_call", why) > 0.0, "{why}");
    for key in [
        "datagrams_sent",
        "datagrams_received",
        "lost",
        "loss_percent",
        "reordered",
    ] {
        let v = r
            .get(key)
            .unwrap_or_else(|| panic!("'{key}' is missing\n{why}"));
        if udp {
            assert!(v.is_number(), "'{key}' must be a number for UDP\n{why}");
        } else {
            assert!(v.is_null(), "'{key}' must be null for TCP\n{why}");
        }
    }
}

/// Checks an rr document: latency present and ordered, no stream results.
fn check_rr(doc: &Value, f: &Finished) -> (u64, u64) {
    let why = ctx(doc, f);
    let l = doc
        .get("latency")
        .filter(|l| l.is_object())
        .unwrap_or_else(|| panic!("'latency' missing in rr mode\n{why}"));
    assert!(int(l, "transactions", &why) > 0, "no transactions\n{why}");
    assert!(num(l, "transactions_per_second", &why) > 0.0, "{why}");
    int(l, "lost", &why);
    let order = ["min_us", "p50_us", "p90_us", "p99_us", "p99_9_us", "max_us"];
    let values: Vec<f64> = order.iter().map(|k| num(l, k, &why)).collect();
    assert!(values[0] > 0.0, "min_us not > 0\n{why}");
    for i in 1..values.len() {
        assert!(
            values[i - 1] <= values[i],
            "{} ({}) > {} ({})\n{why}",
            order[i - 1],
            values[i - 1],
            order[i],
            values[i]
        );
    }
    let client = int(l, "client_cpu", &why);
    let server = int(l, "server_cpu", &why);
    assert!(
        results(doc, &why).is_empty(),
        "rr must have no stream results\n{why}"
    );
    (client, server)
}

/// The CPUs this process may run on (`Cpus_allowed_list`).
fn allowed_cpus() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or("")
        .trim()
        .to_string();
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap()),
            None => cpus.push(part.parse().unwrap()),
        }
    }
    cpus
}

// ---------------------------------------------------------------- local runs

#[test]
fn local_tcp_stream_json() {
    let (doc, f) = bench_json(&["bench", "--json", "--duration", "1s"]);
    let why = ctx(&doc, &f);
    let r = stream_results(&doc, &f);
    assert_eq!(r.len(), 1, "one direction expected\n{why}");
    check_result(&r[0], "client->server", false, &why);
    assert_eq!(int(&r[0], "streams", &why), 1, "{why}");
    assert!(
        doc["intervals"].as_array().unwrap().is_empty(),
        "intervals without --interval\n{why}"
    );
    assert_eq!(doc["params"]["proto"], "tcp", "{why}");
    assert_eq!(doc["params"]["mode"], "stream", "{why}");
    assert!(
        f.stderr.is_empty(),
        "stderr not empty without -v\n{}",
        f.dump()
    );
}

#[test]
fn local_tcp_stream_text_has_rate_and_no_progress_bar() {
    let f = run(&["bench", "--duration", "500ms"], Input::Null);
    f.expect_code(0);
    let out = String::from_utf8_lossy(&f.stdout);
    assert!(
        out.lines()
            .any(|l| l.contains("Gbit/s") || l.contains("Mbit/s")),
        "no rate line on stdout\nstdout:\n{out}\n{}",
        f.dump()
    );
    assert!(
        f.stderr.is_empty(),
        "stderr is not a terminal: no progress bar expected\n{}",
        f.dump()
    );
}

#[test]
fn local_reverse_is_server_to_client() {
    let (doc, f) = bench_json(&["bench", "--reverse", "--json", "--duration", "1s"]);
    let why = ctx(&doc, &f);
    let r = stream_results(&doc, &f);
    assert_eq!(r.len(), 1, "one direction expected\n{why}");
    check_result(&r[0], "server->client", false, &why);
}

#[test]
fn local_bidir_two_streams() {
    let (doc, f) = bench_json(&[
        "bench",
        "--bidir",
        "--streams",
        "2",
        "--json",
        "--duration",
        "1s",
    ]);
    let why = ctx(&doc, &f);
    let r = stream_results(&doc, &f);
    assert_eq!(r.len(), 2, "two directions expected\n{why}");
    let mut dirs: Vec<&str> = r
        .iter()
        .map(|x| x["direction"].as_str().unwrap_or(""))
        .collect();
    dirs.sort_unstable();
    assert_eq!(dirs, ["client->server", "server->client"], "{why}");
    for x in r {
        let d = x["direction"].as_str().unwrap();
        check_result(x, d, false, &why);
        assert_eq!(int(x, "streams", &why), 2, "streams\n{why}");
    }
}

#[test]
fn local_rr_tcp_and_udp() {
    for proto in ["tcp", "udp"] {
        let (doc, f) = bench_json(&[
            "bench",
            "--mode",
            "rr",
            "--proto",
            proto,
            "--json",
            "--duration",
            "1s",
        ]);
        check_rr(&doc, &f);
        assert_eq!(doc["params"]["proto"], proto, "{}", ctx(&doc, &f));
        assert_eq!(doc["params"]["mode"], "rr", "{}", ctx(&doc, &f));
    }
}

#[test]
fn local_rr_pin_places_client_and_server() {
    let cpus = allowed_cpus();
    if !(cpus.contains(&0) && cpus.contains(&1)) {
        eprintln!("skipped: CPUs 0 and 1 are not both available ({cpus:?})");
        return;
    }
    let (doc, f) = bench_json(&[
        "bench",
        "--mode",
        "rr",
        "--pin",
        "0,1",
        "--json",
        "--duration",
        "500ms",
    ]);
    let (client, server) = check_rr(&doc, &f);
    let why = ctx(&doc, &f);
    assert_eq!(client, 0, "client_cpu\n{why}");
    assert_eq!(server, 1, "server_cpu\n{why}");
}

#[test]
fn local_udp_stream_counts_datagrams() {
    let (doc, f) = bench_json(&["bench", "--proto", "udp", "--json", "--duration", "1s"]);
    let why = ctx(&doc, &f);
    let r = stream_results(&doc, &f);
    assert_eq!(r.len(), 1, "{why}");
    check_result(&r[0], "client->server", true, &why);
    let sent = int(&r[0], "datagrams_sent", &why);
    let got = int(&r[0], "datagrams_received", &why);
    let lost = int(&r[0], "lost", &why);
    let pct = num(&r[0], "loss_percent", &why);
    assert!(sent > 0 && got > 0, "{why}");
    assert!(got <= sent, "received more than sent\n{why}");
    assert_eq!(lost, sent - got, "lost is not sent - received\n{why}");
    assert!((0.0..=100.0).contains(&pct), "loss_percent\n{why}");
}

#[test]
fn local_udp_tiny_rcvbuf_loses_datagrams() {
    let (doc, f) = bench_json(&[
        "bench",
        "--proto",
        "udp",
        "--no-gso",
        "--rcvbuf",
        "4K",
        "--duration",
        "1s",
        "--json",
    ]);
    let why = ctx(&doc, &f);
    let r = stream_results(&doc, &f);
    check_result(&r[0], "client->server", true, &why);
    assert!(
        int(&r[0], "lost", &why) > 0,
        "a 4K receive buffer should drop datagrams\n{why}"
    );
    assert!(num(&r[0], "loss_percent", &why) > 0.0, "{why}");
    assert_eq!(doc["params"]["gso"], false, "{why}");
}

/// A tiny receive window behind a 4 MiB send queue lets the queued bytes
/// through at a few KB per delayed ACK: a minute for all of them. The
/// sender stops at the test's end even when a full queue holds it in
/// write(2), and the receiver waits a bounded time after the test (a
/// quarter of the control timeout), says so, and reports what had arrived,
/// rather than outwaiting the peer's patience for the report (once 1 run in
/// 6 failed "read: no answer in time"; --size 1K failed every time, the
/// sender blocked in write until its own timeout).
#[test]
fn local_tcp_tiny_window_drain_is_bounded() {
    // 16K calls fill the queue whatever the build's speed; 13-byte calls
    // from a slow build may not, and then nothing is left to cut.
    for (size, cut) in [("16K", true), ("1K", true), ("13", false)] {
        let started = Instant::now();
        let (doc, f) = bench_json(&[
            "bench",
            "--size",
            size,
            "--rcvbuf",
            "8965",
            "--sndbuf",
            "4M",
            "--duration",
            "200ms",
            "--json",
        ]);
        let why = ctx(&doc, &f);
        let r = stream_results(&doc, &f);
        check_result(&r[0], "client->server", false, &why);
        assert!(int(&r[0], "bytes", &why) > 0, "{why}");
        if cut {
            assert!(
                f.stderr
                    .contains("data was still arriving 2.5s after the test ended"),
                "the cut drain is not reported (--size {size})\n{why}"
            );
        }
        // 200 ms + 2.5 s of drain; generous for a loaded machine, far below
        // the minute the queue would take.
        assert!(started.elapsed() < Duration::from_secs(20), "{why}");
    }
}

#[test]
fn local_udp_large_datagrams() {
    let (doc, f) = bench_json(&[
        "bench",
        "--proto",
        "udp",
        "--size",
        "64000",
        "--json",
        "--duration",
        "1s",
    ]);
    let why = ctx(&doc, &f);
    let r = stream_results(&doc, &f);
    check_result(&r[0], "client->server", true, &why);
    let got = int(&r[0], "datagrams_received", &why);
    assert!(got > 0, "{why}");
    assert_eq!(
        int(&r[0], "bytes", &why),
        got * 64000,
        "bytes is not datagrams_received x 64000\n{why}"
    );
}

/// A paced UDP test at a rate below one GSO batch per pacing step: it lasts
/// its --duration, each interval holds no more than the rate allowed in it
/// (one datagram of rounding), and the throughput is over the test time.
#[test]
fn udp_slow_rate_lasts_the_duration_and_never_bursts() {
    // 1000-byte datagrams at 80 kbit/s: one every 100 ms.
    let started = Instant::now();
    let (doc, f) = bench_json(&[
        "bench",
        "--json",
        "--proto",
        "udp",
        "--rate",
        "80K",
        "--size",
        "1000",
        "--duration",
        "1s",
        "--interval",
        "250ms",
    ]);
    let took = started.elapsed();
    let why = ctx(&doc, &f);
    assert!(
        took >= Duration::from_secs(1),
        "ended after {took:?}\n{why}"
    );
    let r = &stream_results(&doc, &f)[0];
    let secs = num(r, "seconds", &why);
    assert!((0.99..1.5).contains(&secs), "over {secs} s, not 1 s\n{why}");
    let sent = int(r, "datagrams_sent", &why);
    assert!((1..=10).contains(&sent), "{sent} datagrams at 10/s\n{why}");
    let bps = num(r, "bits_per_second", &why);
    assert!(
        bps <= 80_000.0 * 1.01,
        "{bps} bit/s over an 80 kbit/s rate\n{why}"
    );
    for iv in doc["intervals"].as_array().unwrap() {
        // 2.5 datagrams are earned in 250 ms.
        let bytes = int(iv, "bytes", &why);
        assert!(bytes <= 3000, "a burst of {bytes} bytes in 250 ms\n{why}");
    }
}

/// A rate that earns less than one datagram over the whole test sends the
/// first at once and no more, and the test still lasts its --duration.
#[test]
fn udp_rate_below_one_datagram_per_test_sends_the_first_at_once() {
    let started = Instant::now();
    let (doc, f) = bench_json(&[
        "bench",
        "--json",
        "--proto",
        "udp",
        "--rate",
        "1",
        "--size",
        "1000",
        "--duration",
        "1s",
    ]);
    let took = started.elapsed();
    let why = ctx(&doc, &f);
    assert!(
        took >= Duration::from_secs(1),
        "ended after {took:?}\n{why}"
    );
    let r = &stream_results(&doc, &f)[0];
    assert_eq!(int(r, "datagrams_sent", &why), 1, "{why}");
    let secs = num(r, "seconds", &why);
    assert!((0.99..1.5).contains(&secs), "over {secs} s, not 1 s\n{why}");
    let f = run(
        &[
            "bench",
            "--proto",
            "udp",
            "--rate",
            "1",
            "--size",
            "1000",
            "--duration",
            "1s",
        ],
        Input::Null,
    );
    f.expect_code(0);
    let out = String::from_utf8_lossy(&f.stdout);
    assert!(
        out.contains(" in 1.0") && !out.contains(" in 0.00 s"),
        "not over the test time\nstdout:\n{out}\n{}",
        f.dump()
    );
}

#[test]
fn local_intervals() {
    let (doc, f) = bench_json(&["bench", "--interval", "200ms", "--duration", "1s", "--json"]);
    let why = ctx(&doc, &f);
    let r = stream_results(&doc, &f);
    let total = int(&r[0], "bytes", &why);
    let iv = doc["intervals"].as_array().unwrap();
    assert!(iv.len() >= 3, "fewer than 3 intervals\n{why}");
    let mut last_end = f64::NEG_INFINITY;
    let mut sum = 0u64;
    for i in iv {
        let start = num(i, "start", &why);
        let end = num(i, "end", &why);
        num(i, "bits_per_second", &why);
        assert!(start < end, "interval start >= end\n{why}");
        assert!(end > last_end, "interval ends do not increase\n{why}");
        last_end = end;
        sum += int(i, "bytes", &why);
    }
    assert!(sum > 0, "intervals carry no bytes\n{why}");
    // Intervals cover part of the same receiver's count as the total.
    assert!(
        sum <= total,
        "intervals sum to {sum}, more than the total {total}\n{why}"
    );
}

#[test]
fn local_bytes_limit_is_exact_for_tcp() {
    let (doc, f) = bench_json(&["bench", "--bytes", "10M", "--json"]);
    let why = ctx(&doc, &f);
    let r = stream_results(&doc, &f);
    assert_eq!(int(&r[0], "bytes", &why), 10 * 1024 * 1024, "{why}");
}

// ---------------------------------------------------------------- two processes

/// `--server HOST 0 --once`, then `--client HOST PORT extra...`: both succeed.
fn server_and_client(host: &str, extra: &[&str], direction: &str, udp: bool) {
    let (server, port) = bench_server(host, &["--once"]);
    let port = port.to_string();
    let mut args = vec![
        "bench",
        "--client",
        host,
        &port,
        "--duration",
        "1s",
        "--json",
    ];
    args.extend_from_slice(extra);
    let (doc, f) = bench_json(&args);
    let s = server.finish();
    let why = format!("{}\nserver:\n{}", ctx(&doc, &f), s.dump());
    s.expect_code(0);
    assert!(
        s.stderr.lines().any(|l| l.contains(" done")),
        "no 'done' line from the server\n{why}"
    );
    let r = stream_results(&doc, &f);
    assert_eq!(r.len(), 1, "{why}");
    check_result(&r[0], direction, udp, &why);
}

#[test]
fn two_processes_tcp() {
    server_and_client("127.0.0.1", &[], "client->server", false);
}

#[test]
fn two_processes_udp() {
    server_and_client("127.0.0.1", &["--proto", "udp"], "client->server", true);
}

#[test]
fn two_processes_reverse() {
    server_and_client("127.0.0.1", &["--reverse"], "server->client", false);
}

#[test]
fn two_processes_ipv6() {
    require_ipv6!();
    server_and_client("::1", &[], "client->server", false);
}

// ---------------------------------------------------------------- peers that are not sonda

#[test]
fn client_against_netcat_times_out_naming_the_problem() {
    require!("nc.openbsd");
    let port = closed_port("127.0.0.1");
    let mut cmd = Command::new("nc.openbsd");
    cmd.args(["-l", "127.0.0.1", &port.to_string()]);
    // Its stdin stays open (the pipe is kept), so nc neither sends nor exits.
    let nc = spawn_cmd(cmd, Input::Pipe, Output::Null);
    wait_tcp_listen(Loop::V4, port);
    let started = Instant::now();
    let port_s = port.to_string();
    let mut c = spawn(
        &[
            "bench",
            "--client",
            "127.0.0.1",
            &port_s,
            "--control-timeout",
            "2s",
        ],
        Input::Null,
        Output::Capture,
    );
    let f = c.finish_within(Duration::from_secs(15));
    let took = started.elapsed();
    drop(nc);
    f.expect_code(1);
    let line = one_line(&f);
    assert!(
        line.contains("sonda bench") || line.contains("no answer"),
        "the error does not name the problem: {line}\n{}",
        f.dump()
    );
    assert!(
        took >= Duration::from_millis(1500),
        "gave up after {took:?}, before the 2 s control timeout\n{}",
        f.dump()
    );
    assert!(
        took < Duration::from_secs(15),
        "took {took:?}\n{}",
        f.dump()
    );
    assert!(f.stdout.is_empty(), "stdout not empty\n{}", f.dump());
}

#[test]
fn client_against_http_server_says_not_a_sonda_peer() {
    let (l, port) = Loop::V4.std_listener();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let mut s = accept_within(&l, LONG);
        s.write_all(b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
        // Hold the connection open until the test is done (bounded).
        let _ = stop_rx.recv_timeout(LONG);
    });
    let port_s = port.to_string();
    let started = Instant::now();
    let mut c = spawn(
        &["bench", "--client", "127.0.0.1", &port_s],
        Input::Null,
        Output::Capture,
    );
    let f = c.finish_within(Duration::from_secs(15));
    let took = started.elapsed();
    let _ = stop_tx.send(());
    peer.join().unwrap();
    f.expect_code(1);
    let line = one_line(&f);
    assert!(
        line.contains("not a sonda bench peer"),
        "the error does not name the problem: {line}\n{}",
        f.dump()
    );
    // The default control timeout is 10 s; garbage is recognised at once.
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} to reject garbage\n{}",
        f.dump()
    );
}

#[test]
fn client_to_closed_port_is_refused() {
    let port = closed_port("127.0.0.1").to_string();
    let f = run(
        &[
            "bench",
            "--client",
            "127.0.0.1",
            &port,
            "--duration",
            "500ms",
        ],
        Input::Null,
    );
    f.expect_code(3);
    one_line(&f);
    assert!(f.stdout.is_empty(), "stdout not empty\n{}", f.dump());
}

// ---------------------------------------------------------------- bad input

#[test]
fn bad_input_is_a_usage_error_naming_the_value() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["--size", "0", "--duration", "500ms"], &["'0'", "--size"]),
        (
            &["--streams", "0", "--duration", "500ms"],
            &["'0'", "--streams"],
        ),
        (&["--duration", "-1"], &["-1"]),
        (&["--mode", "foo", "--duration", "500ms"], &["foo"]),
        (&["--proto", "sctp", "--duration", "500ms"], &["sctp"]),
        (&["--rate", "1G", "--duration", "500ms"], &["--rate"]),
        (
            &["--mode", "rr", "--reverse", "--duration", "500ms"],
            &["--reverse"],
        ),
        (
            &["--proto", "udp", "--size", "70000", "--duration", "500ms"],
            &["70000"],
        ),
        (
            &["--proto", "udp", "--size", "4", "--duration", "500ms"],
            &["'4'"],
        ),
        (&["--pin", "0", "--duration", "500ms"], &["--pin"]),
        (&["--duration", "0"], &["'0'", "duration"]),
    ];
    for (extra, needles) in cases {
        let mut args = vec!["bench"];
        args.extend_from_slice(extra);
        let f = spawn(&args, Input::Null, Output::Capture).finish_within(Duration::from_secs(15));
        f.expect_code(2);
        let line = one_line(&f);
        for n in *needles {
            assert!(
                line.contains(n),
                "the error for {extra:?} does not name {n}: {line}\n{}",
                f.dump()
            );
        }
        assert!(f.stdout.is_empty(), "stdout not empty\n{}", f.dump());
    }
}

// ---------------------------------------------------------------- server robustness

#[test]
fn server_survives_a_garbage_client() {
    let (mut server, port) = bench_server("127.0.0.1", &[]);
    {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let _ = s.shutdown(std::net::Shutdown::Write);
        // Drain whatever the server answers until it closes (bounded).
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    let warn = server.wait_for_stderr("not a sonda bench peer");
    assert!(warn.starts_with("sonda: "), "warning line: {warn}");
    let port_s = port.to_string();
    let (doc, f) = bench_json(&[
        "bench",
        "--client",
        "127.0.0.1",
        &port_s,
        "--duration",
        "500ms",
        "--json",
    ]);
    let why = ctx(&doc, &f);
    let r = stream_results(&doc, &f);
    check_result(&r[0], "client->server", false, &why);
    server.wait_for_stderr(" done");
    server.signal(libc::SIGTERM);
    let s = server.finish_within(Duration::from_secs(15));
    s.expect_code(143);
}

// ---------------------------------------------------------------- intervals

/// (start, end) of each interval of a document.
fn bounds(doc: &Value, why: &str) -> Vec<(f64, f64)> {
    doc["intervals"]
        .as_array()
        .unwrap_or_else(|| panic!("'intervals' is not an array\n{why}"))
        .iter()
        .map(|i| (num(i, "start", why), num(i, "end", why)))
        .collect()
}

/// The `start-end` columns of the text interval lines.
fn text_bounds(f: &Finished) -> Vec<String> {
    String::from_utf8_lossy(&f.stdout)
        .lines()
        .filter(|l| l.trim_end().ends_with("Gbit/s") && l.contains(" s "))
        .filter_map(|l| l.split(" s ").next())
        .map(|b| b.split_whitespace().collect::<Vec<_>>().join(""))
        .collect()
}

#[test]
fn intervals_fall_on_exact_quarter_seconds() {
    let (doc, f) = bench_json(&["bench", "--interval", "250ms", "--duration", "1s", "--json"]);
    let why = ctx(&doc, &f);
    assert_eq!(
        bounds(&doc, &why),
        [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)],
        "{why}"
    );
    let f = run(
        &["bench", "--interval", "250ms", "--duration", "1s"],
        Input::Null,
    );
    f.expect_code(0);
    assert_eq!(
        text_bounds(&f),
        ["0.00-0.25", "0.25-0.50", "0.50-0.75", "0.75-1.00"],
        "\nstdout:\n{}\n{}",
        String::from_utf8_lossy(&f.stdout),
        f.dump()
    );
}

#[test]
fn intervals_start_when_omit_ends() {
    let (doc, f) = bench_json(&[
        "bench",
        "--omit",
        "500ms",
        "--interval",
        "250ms",
        "--duration",
        "500ms",
        "--json",
    ]);
    let why = ctx(&doc, &f);
    assert_eq!(bounds(&doc, &why), [(0.0, 0.25), (0.25, 0.5)], "{why}");
}

#[test]
fn last_partial_interval_is_kept_and_intervals_add_up() {
    let (doc, f) = bench_json(&["bench", "--interval", "300ms", "--duration", "1s", "--json"]);
    let why = ctx(&doc, &f);
    assert_eq!(
        bounds(&doc, &why),
        [(0.0, 0.3), (0.3, 0.6), (0.6, 0.9), (0.9, 1.0)],
        "{why}"
    );
    let sum: u64 = doc["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| int(i, "bytes", &why))
        .sum();
    let total = int(&stream_results(&doc, &f)[0], "bytes", &why);
    assert_eq!(
        sum, total,
        "the intervals do not add up to the total\n{why}"
    );
    let f = run(
        &["bench", "--interval", "300ms", "--duration", "1s"],
        Input::Null,
    );
    f.expect_code(0);
    assert_eq!(
        text_bounds(&f).last().map(String::as_str),
        Some("0.90-1.00"),
        "no last partial line\nstdout:\n{}\n{}",
        String::from_utf8_lossy(&f.stdout),
        f.dump()
    );
}

// ---------------------------------------------------------------- interrupts

/// CPU time of a process so far, in clock ticks (utime + stime).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit(") ").next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

/// Starts a long local bench, waits (bounded) until its test runs and has
/// used some CPU (data is moving), and interrupts it.
fn interrupted_run(extra: &[&str]) -> Finished {
    let mut args = vec!["-v", "bench", "--duration", "60s"];
    args.extend_from_slice(extra);
    let mut b = spawn(&args, Input::Null, Output::Capture);
    b.wait_for_stderr("test running");
    let from = cpu_ticks(b.pid());
    let deadline = Instant::now() + LONG;
    while cpu_ticks(b.pid()) < from + 20 {
        assert!(b.is_running(), "the bench ended early\n{}", b.dump());
        assert!(Instant::now() < deadline, "no work done\n{}", b.dump());
        // Polling the CPU counter, bounded above.
        thread::sleep(Duration::from_millis(20));
    }
    b.signal(libc::SIGINT);
    b.finish_within(Duration::from_secs(30))
}

#[test]
fn interrupted_json_is_one_document_with_the_receivers_count() {
    let f = interrupted_run(&["--json", "--interval", "100ms"]);
    f.expect_code(130);
    let doc = one_document(&f);
    let why = ctx(&doc, &f);
    assert_eq!(doc["interrupted"], true, "{why}");
    let r = results(&doc, &why);
    assert_eq!(r.len(), 1, "{why}");
    assert_eq!(r[0]["counted_by"], "receiver", "{why}");
    assert!(int(&r[0], "bytes", &why) > 0, "received 0\n{why}");
    assert!(num(&r[0], "seconds", &why) > 0.0, "{why}");
    assert!(!bounds(&doc, &why).is_empty(), "no intervals so far\n{why}");
}

#[test]
fn interrupted_text_shows_the_receivers_count() {
    let f = interrupted_run(&[]);
    f.expect_code(130);
    let out = String::from_utf8_lossy(&f.stdout).to_string();
    assert!(
        out.contains("interrupted after"),
        "no interrupted summary\nstdout:\n{out}\n{}",
        f.dump()
    );
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("client->server"))
        .unwrap_or_else(|| panic!("no result line\nstdout:\n{out}"));
    // "client->server  X Gbit/s (Y GiB/s)  Z MiB in S s"
    let moved: f64 = line
        .split(")  ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unreadable result line: {line}"));
    assert!(moved > 0.0, "received 0: {line}\n{}", f.dump());
}

#[test]
fn interrupted_rr_reports_the_transactions_so_far() {
    let f = interrupted_run(&["--json", "--mode", "rr"]);
    f.expect_code(130);
    let doc = one_document(&f);
    let why = ctx(&doc, &f);
    assert_eq!(doc["interrupted"], true, "{why}");
    let l = &doc["latency"];
    assert!(l.is_object(), "no latency so far\n{why}");
    assert!(int(l, "transactions", &why) > 0, "{why}");
    assert!(num(l, "transactions_per_second", &why) > 0.0, "{why}");
    let (p50, p99) = (num(l, "p50_us", &why), num(l, "p99_us", &why));
    assert!(p50 > 0.0 && p50 <= p99, "{why}");

    let f = interrupted_run(&["--mode", "rr", "--proto", "udp"]);
    f.expect_code(130);
    let out = String::from_utf8_lossy(&f.stdout).to_string();
    assert!(
        out.contains("interrupted after") && out.contains("latency (us)"),
        "no latency in the interrupted summary\nstdout:\n{out}\n{}",
        f.dump()
    );
    let count: u64 = out
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("transactions"))
        .and_then(|t| t.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no transactions line\nstdout:\n{out}"));
    assert!(count > 0, "0 transactions\nstdout:\n{out}");
}

/// An interrupted `--client` test against a `--server` has only its own
/// side's counts: what the server counted is null in JSON and unknown in
/// the table, never copied from the sender, and the table says whose count
/// the figures are.
#[test]
fn interrupted_client_leaves_what_the_server_counted_unknown() {
    let (_server, port) = bench_server("127.0.0.1", &[]);
    let port = port.to_string();
    let client = ["--proto", "udp", "--client", "127.0.0.1", &port];

    let mut args = vec!["--json"];
    args.extend_from_slice(&client);
    let f = interrupted_run(&args);
    f.expect_code(130);
    let doc: Value = serde_json::from_slice(&f.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", f.dump()));
    let why = ctx(&doc, &f);
    let r = &results(&doc, &why)[0];
    assert_eq!(r["counted_by"], "sender", "{why}");
    assert!(int(r, "datagrams_sent", &why) > 0, "{why}");
    assert!(int(r, "bytes", &why) > 0, "{why}");
    assert!(num(r, "bytes_per_send_call", &why) > 0.0, "{why}");
    for key in [
        "datagrams_received",
        "lost",
        "loss_percent",
        "reordered",
        "bytes_per_recv_call",
        "receiver_cpu_percent",
        "sender_cpu_percent",
    ] {
        assert!(r[key].is_null(), "'{key}' was not measured here\n{why}");
    }

    // --reverse: this side receives, so the sender's counts are unknown.
    let mut args = vec!["--json", "--reverse"];
    args.extend_from_slice(&client);
    let f = interrupted_run(&args);
    f.expect_code(130);
    let doc: Value = serde_json::from_slice(&f.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", f.dump()));
    let why = ctx(&doc, &f);
    let r = &results(&doc, &why)[0];
    assert_eq!(r["counted_by"], "receiver", "{why}");
    assert!(int(r, "datagrams_received", &why) > 0, "{why}");
    for key in [
        "datagrams_sent",
        "lost",
        "loss_percent",
        "bytes_per_send_call",
    ] {
        assert!(r[key].is_null(), "'{key}' was not measured here\n{why}");
    }

    let f = interrupted_run(&client);
    f.expect_code(130);
    let out = String::from_utf8_lossy(&f.stdout).to_string();
    let why = format!("stdout:\n{out}\n{}", f.dump());
    assert!(
        out.contains("as sent"),
        "not said to be the sender's count\n{why}"
    );
    let line = out
        .lines()
        .find(|l| l.contains("datagrams:"))
        .unwrap_or_else(|| panic!("no datagrams line\n{why}"));
    assert!(
        line.contains("received unknown") && line.contains("lost unknown"),
        "the receiver's count is made up: {line}\n{why}"
    );
}

// ---------------------------------------------------------------- Unix sockets

/// `sonda -v bench --server -U PATH extra...`, once it is listening.
fn unix_server(path: &str, extra: &[&str]) -> Running {
    let mut args = vec!["-v", "bench", "--server", "-U", path];
    args.extend_from_slice(extra);
    let mut s = spawn(&args, Input::Null, Output::Null);
    let line = s.wait_for_stderr("bench server listening on ");
    assert!(line.ends_with(path), "listening line: {line}");
    s
}

#[test]
fn local_unix_stream_json_and_the_file_is_gone() {
    let (_dir, path) = sock_path("b.sock");
    let (doc, f) = bench_json(&["bench", "-U", s(&path), "--json", "--duration", "1s"]);
    let why = ctx(&doc, &f);
    let r = stream_results(&doc, &f);
    assert_eq!(r.len(), 1, "one direction expected\n{why}");
    check_result(&r[0], "client->server", false, &why);
    assert_eq!(doc["params"]["proto"], "unix", "{why}");
    assert_eq!(doc["target"], s(&path), "{why}");
    assert!(!path.exists(), "the socket file is left behind\n{why}");
    assert!(f.stderr.is_empty(), "stderr without -v\n{}", f.dump());
}

#[test]
fn local_unix_text_names_the_transport_and_the_path() {
    let (_dir, path) = sock_path("b.sock");
    let f = run(
        &["bench", "-U", s(&path), "--duration", "500ms", "--reverse"],
        Input::Null,
    );
    f.expect_code(0);
    let out = String::from_utf8_lossy(&f.stdout);
    let first = out.lines().next().unwrap_or("");
    assert!(
        first.contains("unix stream server -> client") && first.ends_with(s(&path)),
        "the title does not say unix and the path: {first}\n{}",
        f.dump()
    );
    assert!(!path.exists(), "the socket file is left behind");
}

#[test]
fn local_unix_rr_json_percentiles_are_ordered() {
    let (_dir, path) = sock_path("rr.sock");
    let (doc, f) = bench_json(&[
        "bench",
        "-U",
        s(&path),
        "--mode",
        "rr",
        "--json",
        "--duration",
        "1s",
    ]);
    check_rr(&doc, &f);
    assert_eq!(doc["params"]["proto"], "unix", "{}", ctx(&doc, &f));
    assert!(!path.exists(), "the socket file is left behind");
}

#[test]
fn local_unix_abstract_bidir_streams_and_bytes() {
    let name = format!("@sonda-test-bench-{}", std::process::id());
    let (doc, f) = bench_json(&[
        "bench",
        "-U",
        &name,
        "--bidir",
        "--streams",
        "2",
        "--json",
        "--duration",
        "1s",
    ]);
    let why = ctx(&doc, &f);
    let r = stream_results(&doc, &f);
    assert_eq!(r.len(), 2, "two directions expected\n{why}");
    for x in r {
        let d = x["direction"].as_str().unwrap();
        check_result(x, d, false, &why);
        assert_eq!(int(x, "streams", &why), 2, "streams\n{why}");
    }
    let (doc, f) = bench_json(&["bench", "-U", &name, "--bytes", "10M", "--json"]);
    let why = ctx(&doc, &f);
    let r = stream_results(&doc, &f);
    assert_eq!(int(&r[0], "bytes", &why), 10 * 1024 * 1024, "{why}");
}

#[test]
fn local_unix_pin_and_interval() {
    let cpus = allowed_cpus();
    if !(cpus.contains(&0) && cpus.contains(&1)) {
        eprintln!("skipped: CPUs 0 and 1 are not both available ({cpus:?})");
        return;
    }
    let (_dir, path) = sock_path("pin.sock");
    let (doc, f) = bench_json(&[
        "bench",
        "-U",
        s(&path),
        "--mode",
        "rr",
        "--pin",
        "0,1",
        "--json",
        "--duration",
        "500ms",
    ]);
    let (client, server) = check_rr(&doc, &f);
    let why = ctx(&doc, &f);
    assert_eq!((client, server), (0, 1), "placement\n{why}");
    let (doc, f) = bench_json(&[
        "bench",
        "-U",
        s(&path),
        "--json",
        "--duration",
        "1s",
        "--interval",
        "250ms",
    ]);
    let why = ctx(&doc, &f);
    assert_eq!(bounds(&doc, &why).len(), 4, "four intervals\n{why}");
}

/// `--server -U` and `--client -U` in two processes: stream, --reverse and
/// rr against one server, which then ends at SIGINT (130) and takes its
/// file with it.
#[test]
fn two_processes_over_a_unix_socket() {
    let (_dir, path) = sock_path("server.sock");
    let mut server = unix_server(s(&path), &[]);
    for (extra, direction) in [
        (&[][..], "client->server"),
        (&["--reverse"][..], "server->client"),
    ] {
        let mut args = vec![
            "bench",
            "--client",
            "-U",
            s(&path),
            "--json",
            "--duration",
            "1s",
        ];
        args.extend_from_slice(extra);
        let (doc, f) = bench_json(&args);
        let why = format!("{}\nserver:\n{}", ctx(&doc, &f), server.stderr_now());
        let r = stream_results(&doc, &f);
        assert_eq!(r.len(), 1, "{why}");
        check_result(&r[0], direction, false, &why);
        assert_eq!(doc["params"]["proto"], "unix", "{why}");
        assert_eq!(doc["target"], s(&path), "{why}");
    }
    let (doc, f) = bench_json(&[
        "bench",
        "--client",
        "-U",
        s(&path),
        "--mode",
        "rr",
        "--json",
        "--duration",
        "1s",
    ]);
    check_rr(&doc, &f);
    wait_lines(&mut server, "done", 3, |l| l.contains(" done: unix "));
    assert!(path.exists(), "the server's socket file went early");
    server.signal(libc::SIGINT);
    let s_done = server.finish_within(Duration::from_secs(15));
    s_done.expect_code(130);
    assert!(
        wait_gone(&path),
        "the server left its socket file behind\n{}",
        s_done.dump()
    );
}

#[test]
fn unix_server_at_sigterm_and_once_leave_no_file() {
    let (_dir, path) = sock_path("term.sock");
    let mut server = unix_server(s(&path), &[]);
    server.signal(libc::SIGTERM);
    server
        .finish_within(Duration::from_secs(15))
        .expect_code(143);
    assert!(
        wait_gone(&path),
        "the socket file is left behind at SIGTERM"
    );

    let server = unix_server(s(&path), &["--once"]);
    let (_, f) = bench_json(&[
        "bench",
        "--client",
        "-U",
        s(&path),
        "--json",
        "--duration",
        "500ms",
    ]);
    f.expect_code(0);
    let done = server.finish();
    done.expect_code(0);
    assert!(
        !path.exists(),
        "--once left its socket file behind\n{}",
        done.dump()
    );
}

#[test]
fn interrupted_local_unix_run_reports_and_removes_the_file() {
    let (_dir, path) = sock_path("int.sock");
    let f = interrupted_run(&["-U", s(&path), "--json"]);
    f.expect_code(130);
    let doc = one_document(&f);
    assert_eq!(doc["interrupted"], true, "{}", ctx(&doc, &f));
    assert!(int(&doc["results"][0], "bytes", &ctx(&doc, &f)) > 0);
    assert!(
        wait_gone(&path),
        "the socket file is left behind\n{}",
        f.dump()
    );
}

#[test]
fn unix_usage_errors() {
    let (_dir, path) = sock_path("x.sock");
    // A Unix datagram bench is not offered: -U is a stream socket.
    let f = run(&["bench", "--proto", "udp", "-U", s(&path)], Input::Null);
    f.expect_code(2);
    let line = one_line(&f);
    assert!(
        line.contains("--proto") && line.contains("--unix"),
        "the conflict is not named: {line}"
    );
    let long = format!("/tmp/{}", "a".repeat(110));
    let f = run(&["bench", "-U", &long, "--duration", "1s"], Input::Null);
    f.expect_code(2);
    assert!(
        one_line(&f).contains("is too long for a Unix socket address"),
        "{}",
        f.dump()
    );
    for args in [
        &["bench", "--server", "127.0.0.1", "-U", s(&path)][..],
        &["bench", "--client", "127.0.0.1", "-U", s(&path)],
        &["bench", "--client"],
    ] {
        let f = run(args, Input::Null);
        f.expect_code(2);
        one_line(&f);
    }
    assert!(!path.exists(), "a usage error made a file");
}

#[test]
fn unix_client_to_no_such_socket_is_exit_6() {
    let (_dir, path) = sock_path("absent.sock");
    let f = run(
        &["bench", "--client", "-U", s(&path), "--duration", "500ms"],
        Input::Null,
    );
    f.expect_code(6);
    assert!(one_line(&f).contains("no such socket file"), "{}", f.dump());
}

#[test]
fn a_live_socket_or_a_file_at_the_path_is_exit_5_and_stays() {
    let (dir, path) = sock_path("live.sock");
    let server = unix_server(s(&path), &[]);
    for args in [
        &["bench", "-U", s(&path), "--duration", "500ms"][..],
        &["bench", "--server", "-U", s(&path)],
    ] {
        let f = run(args, Input::Null);
        f.expect_code(5);
        // The holder named, and a hint line.
        assert!(
            f.stderr
                .contains("a live socket is bound to it, held by pid"),
            "{}",
            f.dump()
        );
        assert_no_panic(&f);
    }
    assert!(path.exists(), "the live server's file was removed");
    drop(server);
    let file = dir.path().join("regular");
    std::fs::write(&file, b"keep me").unwrap();
    let f = run(
        &["bench", "-U", s(&file), "--duration", "500ms"],
        Input::Null,
    );
    f.expect_code(5);
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn unix_server_survives_a_garbage_client() {
    let (_dir, path) = sock_path("garbage.sock");
    let mut server = unix_server(s(&path), &[]);
    {
        let mut c = std::os::unix::net::UnixStream::connect(&path).unwrap();
        c.write_all(b"\x00\xffGET / HTTP/1.0\r\n\r\n").unwrap();
        let _ = c.shutdown(std::net::Shutdown::Write);
        c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut sink = Vec::new();
        let _ = c.read_to_end(&mut sink);
    }
    let warn = server.wait_for_stderr("not a sonda bench peer");
    assert!(warn.starts_with("sonda: "), "warning line: {warn}");
    let (doc, f) = bench_json(&[
        "bench",
        "--client",
        "-U",
        s(&path),
        "--json",
        "--duration",
        "500ms",
    ]);
    let why = ctx(&doc, &f);
    check_result(&stream_results(&doc, &f)[0], "client->server", false, &why);
    server.wait_for_stderr(" done");
    server.signal(libc::SIGTERM);
    server
        .finish_within(Duration::from_secs(15))
        .expect_code(143);
    assert!(wait_gone(&path), "the socket file is left behind");
}
