//! Multicast, broadcast and two-way UDP between network namespaces this
//! test makes: one sender (S, the bridge br0) and two receivers (R1, R2) on
//! one segment ([`lan`]), and only there; `--reply` also on loopback
//! against python3.
//!
//! What runs: joins on the named interface and through the group's route,
//! IPv4 and IPv6, with the TTL, TOS and destination each receiver saw;
//! source-specific joins taking only the named source; multicast loopback
//! on and off; a socket joined to one group not getting another group on
//! the same port (IP_MULTICAST_ALL off); broadcast on the subnet, and its
//! refusal without --broadcast; the strict rp_filter warning; `--reply`
//! round trips. Every wait is bounded; the namespaces go when a test ends,
//! on failure too; without root a test says "skipped" and returns.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
use common::netns::*;
use common::*;

use serde_json::Value;

/// A receiver in `ns`, `-v` so its joins and port show on stderr; waits
/// until every join is made and returns it with its port.
fn receiver(ns: &str, args: &[&str]) -> (Running, u16) {
    let mut full = vec!["-v", "udp-recv"];
    full.extend_from_slice(args);
    let joins = args.iter().filter(|a| **a == "--join").count();
    let mut r = spawn_cmd(sonda_in(ns, &full), Input::Null, Output::Capture);
    let port = r.listening_port();
    for _ in 0..joins {
        r.wait_for_stderr("joined ");
    }
    (r, port)
}

fn send(ns: &str, args: &[&str]) -> Finished {
    let mut full = vec!["udp-send"];
    full.extend_from_slice(args);
    let (f, _) = sonda_run(ns, &full);
    f
}

/// The JSON lines a receiver printed.
fn records(f: &Finished) -> Vec<Value> {
    String::from_utf8_lossy(&f.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("bad JSON line ({e}): {l}\n{}", f.dump()))
        })
        .collect()
}

fn payload(r: &Value) -> String {
    use base64::Engine as _;
    let b = r["payload_base64"].as_str().unwrap_or_default();
    String::from_utf8_lossy(&base64::engine::general_purpose::STANDARD.decode(b).unwrap()).into()
}

/// Both receivers join the group on their interface; S sends with --ttl
/// and --tos out of br0; each receiver reports the group as destination,
/// its own interface, and exactly that TTL and TOS.
fn group_reaches_both_receivers(l: &Lan, group: &str, s_args: &[&str]) {
    let (r1, port) = receiver(
        l.r1(),
        &[
            "--join",
            &format!("{group}@r1-in"),
            "--json",
            "--count",
            "1",
            "--timeout",
            "10s",
            "0",
        ],
    );
    let p = port.to_string();
    let (r2, _) = receiver(
        l.r2(),
        &[
            "--join",
            &format!("{group}@r2-in"),
            "--json",
            "--count",
            "1",
            "--timeout",
            "10s",
            &p,
        ],
    );
    let mut args = vec![
        "--multicast-if",
        "br0",
        "--ttl",
        "7",
        "--tos",
        "0x28",
        "--message",
        "to both",
    ];
    args.extend_from_slice(s_args);
    args.extend_from_slice(&[group, &p]);
    send(l.s(), &args).expect_code(0);
    for (mut r, dev) in [(r1, "r1-in"), (r2, "r2-in")] {
        let f = r.finish_within(RUN_LIMIT);
        f.expect_code(0);
        assert!(
            f.stderr.contains(&format!("joined {group} on {dev}")),
            "{}",
            f.dump()
        );
        let rec = records(&f);
        assert_eq!(rec.len(), 1, "{}", f.dump());
        assert_eq!(rec[0]["to"], group, "{}", f.dump());
        assert_eq!(rec[0]["ttl"], 7, "{}", f.dump());
        assert_eq!(rec[0]["tos"], 0x28, "{}", f.dump());
        assert_eq!(rec[0]["interface"], dev, "{}", f.dump());
        assert_eq!(payload(&rec[0]), "to both", "{}", f.dump());
    }
}

#[test]
fn a_group_reaches_every_joined_receiver_with_the_ttl_sent() {
    let Some(l) = lan(1) else { return };
    group_reaches_both_receivers(&l, "239.77.1.1", &[]);
    group_reaches_both_receivers(&l, "ff15::77:1", &[]);
}

/// Without @IFACE the join goes where the group's route leads, and -v
/// names that interface; with no route at all it fails, saying to name one.
#[test]
fn a_join_without_an_interface_follows_the_route() {
    let Some(l) = lan(2) else { return };
    let (f, _) = sonda_run(
        l.r1(),
        &["udp-recv", "--join", "239.77.2.1", "--timeout", "1s", "0"],
    );
    f.expect_code(1);
    assert!(
        one_line(&f).contains("no route to the group"),
        "{}",
        f.dump()
    );
    must(
        "ip",
        &["-n", l.r1(), "route", "add", "224.0.0.0/4", "dev", "r1-in"],
    );
    let (mut r, port) = receiver(
        l.r1(),
        &[
            "--join",
            "239.77.2.1",
            "--show",
            "--count",
            "1",
            "--timeout",
            "10s",
            "0",
        ],
    );
    send(
        l.s(),
        &[
            "--multicast-if",
            "br0",
            "--message",
            "routed",
            "239.77.2.1",
            &port.to_string(),
        ],
    )
    .expect_code(0);
    let f = r.finish_within(RUN_LIMIT);
    f.expect_code(0);
    assert!(
        f.stderr.contains("joined 239.77.2.1 on r1-in"),
        "{}",
        f.dump()
    );
    assert!(
        f.stderr.contains("the interface of the group's route"),
        "{}",
        f.dump()
    );
    let out = String::from_utf8_lossy(&f.stdout);
    assert!(out.contains("-> 239.77.2.1%r1-in ttl 1 "), "{}", f.dump());
    assert!(out.contains("\"routed\""), "{}", f.dump());
}

/// A source-specific join takes the named source only: S sends from a
/// second address first, then from the named one; the receiver's first
/// and only datagram is the second. IPv4 (232/8) and IPv6 (ff35::/16).
#[test]
fn a_source_specific_join_takes_only_that_source() {
    let Some(l) = lan(3) else { return };
    must(
        "ip",
        &[
            "-n",
            l.s(),
            "addr",
            "add",
            &format!("{}/24", l.v4(9)),
            "dev",
            "br0",
        ],
    );
    must(
        "ip",
        &[
            "-n",
            l.s(),
            "addr",
            "add",
            &format!("{}/64", l.v6(9)),
            "dev",
            "br0",
            "nodad",
        ],
    );
    for (group, good, bad) in [
        ("232.77.3.1", l.v4(1), l.v4(9)),
        ("ff35::77:3", l.v6(1), l.v6(9)),
    ] {
        let (mut r, port) = receiver(
            l.r1(),
            &[
                "--join",
                &format!("{group}@r1-in"),
                "--source",
                &good,
                "--json",
                "--count",
                "1",
                "--timeout",
                "10s",
                "0",
            ],
        );
        let p = port.to_string();
        for (from, text) in [(&bad, "other source"), (&good, "named source")] {
            send(
                l.s(),
                &[
                    "--multicast-if",
                    "br0",
                    "-s",
                    from,
                    "--message",
                    text,
                    group,
                    &p,
                ],
            )
            .expect_code(0);
        }
        let f = r.finish_within(RUN_LIMIT);
        f.expect_code(0);
        assert!(
            f.stderr.contains(&format!("from {good} only")),
            "{}",
            f.dump()
        );
        let rec = records(&f);
        assert_eq!(payload(&rec[0]), "named source", "{}", f.dump());
        assert!(
            rec[0]["from"].as_str().unwrap().contains(good.as_str()),
            "{}",
            f.dump()
        );
    }
}

/// A receiver on the sending host gets a copy (the kernel's default);
/// with --no-multicast-loop it gets none, while R1 still gets the datagram.
#[test]
fn multicast_loopback_on_and_off() {
    let Some(l) = lan(4) else { return };
    let group = "239.77.4.1";
    let (mut local, port) = receiver(
        l.s(),
        &[
            "--join",
            &format!("{group}@br0"),
            "--show",
            "--count",
            "1",
            "--timeout",
            "10s",
            "0",
        ],
    );
    let p = port.to_string();
    send(
        l.s(),
        &["--multicast-if", "br0", "--message", "looped", group, &p],
    )
    .expect_code(0);
    let f = local.finish_within(RUN_LIMIT);
    f.expect_code(0);
    assert!(
        String::from_utf8_lossy(&f.stdout).contains("\"looped\""),
        "{}",
        f.dump()
    );

    let (mut local, _) = receiver(
        l.s(),
        &[
            "--join",
            &format!("{group}@br0"),
            "--show",
            "--timeout",
            "1s",
            &p,
        ],
    );
    let (mut remote, _) = receiver(
        l.r1(),
        &[
            "--join",
            &format!("{group}@r1-in"),
            "--show",
            "--count",
            "1",
            "--timeout",
            "10s",
            &p,
        ],
    );
    send(
        l.s(),
        &[
            "--multicast-if",
            "br0",
            "--no-multicast-loop",
            "--message",
            "not looped",
            group,
            &p,
        ],
    )
    .expect_code(0);
    let f = remote.finish_within(RUN_LIMIT);
    f.expect_code(0);
    assert!(
        String::from_utf8_lossy(&f.stdout).contains("\"not looped\""),
        "{}",
        f.dump()
    );
    let f = local.finish_within(RUN_LIMIT);
    f.expect_code(4);
    assert!(f.stdout.is_empty(), "a looped copy arrived\n{}", f.dump());
}

/// Two receivers share a port (--reuseaddr), each joined to its own group:
/// with IP_MULTICAST_ALL off, each gets its group's datagram only (Linux's
/// default, on, would give the wildcard-bound sockets both); a third,
/// with two --join, gets both.
#[test]
fn a_receiver_gets_only_the_groups_it_joined() {
    let Some(l) = lan(5) else { return };
    let (g1, g2) = ("239.77.5.1", "239.77.5.2");
    let (a, port) = receiver(
        l.r1(),
        &[
            "--reuseaddr",
            "--join",
            &format!("{g1}@r1-in"),
            "--json",
            "--count",
            "1",
            "--timeout",
            "10s",
            "0",
        ],
    );
    let p = port.to_string();
    let (b, _) = receiver(
        l.r1(),
        &[
            "--reuseaddr",
            "--join",
            &format!("{g2}@r1-in"),
            "--json",
            "--count",
            "1",
            "--timeout",
            "10s",
            &p,
        ],
    );
    // A third socket, joined to both at once, gets both.
    let (mut both, _) = receiver(
        l.r1(),
        &[
            "--reuseaddr",
            "--join",
            &format!("{g1}@r1-in"),
            "--join",
            &format!("{g2}@r1-in"),
            "--json",
            "--count",
            "2",
            "--timeout",
            "10s",
            &p,
        ],
    );
    for (group, text) in [(g2, "for two"), (g1, "for one")] {
        send(
            l.s(),
            &["--multicast-if", "br0", "--message", text, group, &p],
        )
        .expect_code(0);
    }
    let f = both.finish_within(RUN_LIMIT);
    f.expect_code(0);
    let got: Vec<String> = records(&f).iter().map(payload).collect();
    assert_eq!(got, ["for two", "for one"], "{}", f.dump());
    for (mut r, group, text) in [(a, g1, "for one"), (b, g2, "for two")] {
        let f = r.finish_within(RUN_LIMIT);
        f.expect_code(0);
        let rec = records(&f);
        assert_eq!(rec[0]["to"], group, "{}", f.dump());
        assert_eq!(payload(&rec[0]), text, "{}", f.dump());
    }
}

/// --broadcast reaches every host on the subnet, which sees the broadcast
/// address as destination; without it the kernel refuses (exit 1) and the
/// error says to add it.
#[test]
fn broadcast_on_the_subnet() {
    let Some(l) = lan(6) else { return };
    let bcast = l.v4(255);
    let (f, _) = sonda_run(l.s(), &["udp-send", "--message", "x", &bcast, "9"]);
    f.expect_code(1);
    assert!(f.stderr.contains("add --broadcast"), "{}", f.dump());
    let (r1, port) = receiver(
        l.r1(),
        &["--json", "--count", "1", "--timeout", "10s", "0.0.0.0", "0"],
    );
    let p = port.to_string();
    let (r2, _) = receiver(
        l.r2(),
        &["--json", "--count", "1", "--timeout", "10s", "0.0.0.0", &p],
    );
    send(
        l.s(),
        &["--broadcast", "--message", "all of you", &bcast, &p],
    )
    .expect_code(0);
    for mut r in [r1, r2] {
        let f = r.finish_within(RUN_LIMIT);
        f.expect_code(0);
        let rec = records(&f);
        assert_eq!(rec[0]["to"], bcast, "{}", f.dump());
        assert_eq!(payload(&rec[0]), "all of you", "{}", f.dump());
    }
}

/// Strict reverse-path filtering on the join's interface, and a source
/// whose route back does not leave by it: the datagrams would be dropped
/// before any socket, and udp-recv says so (without -v).
#[test]
fn strict_rp_filter_is_warned() {
    let Some(l) = lan(7) else { return };
    for key in ["all", "r1-in"] {
        let _ = in_ns(
            l.r1(),
            "sysctl",
            &["-qw", &format!("net.ipv4.conf.{key}.rp_filter=1")],
        );
    }
    let (f, _) = sonda_run(
        l.r1(),
        &[
            "udp-recv",
            "--join",
            "232.77.7.1@r1-in",
            "--source",
            "192.0.2.1",
            "--timeout",
            "1s",
            "0",
        ],
    );
    f.expect_code(4);
    assert!(
        f.stderr.contains("rp_filter is strict on r1-in"),
        "{}",
        f.dump()
    );
}

/// `udp-recv --reply --lines`, the `nc -u -l` session: the sender's
/// --wait-reply prints the answer, across the segment.
#[test]
fn reply_round_trip_across_the_segment() {
    let Some(l) = lan(8) else { return };
    let mut r = spawn_cmd(
        sonda_in(
            l.r1(),
            &[
                "-v",
                "udp-recv",
                "--reply",
                "--lines",
                "--count",
                "1",
                "--timeout",
                "10s",
                "0",
            ],
        ),
        Input::Bytes(b"pong\n".to_vec()),
        Output::Capture,
    );
    let p = r.listening_port().to_string();
    let f = send(
        l.s(),
        &["--message", "ping", "--wait-reply", "5s", &l.v4(2), &p],
    );
    f.expect_code(0);
    assert_eq!(f.stdout, b"pong", "{}", f.dump());
    let got = r.finish_within(RUN_LIMIT);
    got.expect_code(0);
    assert_eq!(got.stdout, b"ping", "{}", got.dump());
    // Asked by broadcast and by group, answered from the member's own
    // address: --wait-reply leaves such a socket unconnected to hear it.
    let group = "239.77.8.1".to_string();
    for (dest, via) in [
        (l.v4(255), ["--broadcast"].as_slice()),
        (group.clone(), ["--multicast-if", "br0"].as_slice()),
    ] {
        let join = format!("{group}@r1-in");
        let mut args = vec![
            "-v",
            "udp-recv",
            "--reply",
            "--lines",
            "--count",
            "1",
            "--timeout",
            "10s",
        ];
        if dest == group {
            args.extend_from_slice(&["--join", &join]);
        }
        args.push("0");
        let mut r = spawn_cmd(
            sonda_in(l.r1(), &args),
            Input::Bytes(b"here\n".to_vec()),
            Output::Capture,
        );
        let p = r.listening_port().to_string();
        if dest == group {
            r.wait_for_stderr("joined ");
        }
        let mut s_args = via.to_vec();
        s_args.extend_from_slice(&["--message", "who", "--wait-reply", "3s", &dest, &p]);
        let f = send(l.s(), &s_args);
        f.expect_code(0);
        assert_eq!(f.stdout, b"here", "{}", f.dump());
        r.finish_within(RUN_LIMIT).expect_code(0);
    }
}

/// The same on loopback with python3 as the client, no root needed: each
/// line of stdin goes back to whoever sent last.
#[test]
fn reply_answers_a_python_client_on_loopback() {
    require!("python3");
    let mut r = spawn(
        &[
            "-v",
            "udp-recv",
            "--reply",
            "--lines",
            "--count",
            "2",
            "--timeout",
            "10s",
            "127.0.0.1",
            "0",
        ],
        Input::Bytes(b"one\ntwo\n".to_vec()),
        Output::Capture,
    );
    let port = r.listening_port().to_string();
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
got = []
for word in (b'a', b'b'):
    s.sendto(word, ('127.0.0.1', int(sys.argv[1])))
    got.append(s.recv(100).decode())
print(' '.join(got))
"#;
    let out = python(script, &[&port]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "one two");
    let f = r.finish_within(LONG);
    f.expect_code(0);
    assert_eq!(f.stdout, b"ab", "{}", f.dump());
}

#[test]
fn multicast_usage_errors() {
    usage_error(&["udp-recv", "--join", "10.0.0.1", "5000"], "10.0.0.1");
    usage_error(&["udp-recv", "--join", "239.1.1.1@", "5000"], "239.1.1.1@");
    // clap names a flag another needs without quotes.
    for (args, needed) in [
        (&["udp-recv", "--source", "10.0.0.1", "5000"][..], "--join"),
        (&["udp-recv", "--lines", "5000"][..], "--reply"),
        (
            &["bench", "--proto", "udp", "--receiver", "10.0.0.3"][..],
            "--multicast",
        ),
        // A further receiver needs a --client server to share its ports.
        (
            &[
                "bench",
                "--proto",
                "udp",
                "--multicast",
                "239.1.1.1",
                "--receiver",
                "10.0.0.3",
            ][..],
            "--receiver",
        ),
    ] {
        let f = run(args, Input::Null);
        f.expect_code(2);
        assert!(one_line(&f).contains(needed), "{}", f.dump());
    }
    usage_error(
        &["udp-recv", "--join", "239.1.1.1", "--source", "::1", "5000"],
        "--source ::1",
    );
    usage_error(
        &["udp-recv", "-4", "--join", "ff15::1", "5000"],
        "--join ff15::1",
    );
    usage_error(&["udp-recv", "--reply", "--echo", "5000"], "--reply");
    usage_error(
        &[
            "bench",
            "--client",
            "10.0.0.2",
            "--proto",
            "udp",
            "--multicast",
            "239.1.1.1",
            "--receiver",
            "[::1",
        ],
        "[::1",
    );
    usage_error(
        &["udp-recv", "--join", "239.1.1.1", "127.0.0.1", "5000"],
        "127.0.0.1",
    );
    usage_error(
        &[
            "udp-recv",
            "--join",
            "239.1.1.1",
            "--join",
            "239.1.1.2",
            "239.1.1.1",
            "5000",
        ],
        "239.1.1.1",
    );
    usage_error(
        &["udp-recv", "--join", "ff15::1", "0.0.0.0", "5000"],
        "0.0.0.0",
    );
    usage_error(
        &[
            "udp-recv",
            "--join",
            "232.1.1.1",
            "--source",
            "0.0.0.0",
            "5000",
        ],
        "--source 0.0.0.0",
    );
    usage_error(
        &[
            "udp-recv",
            "--join",
            "239.1.1.1@eth9",
            "--bind-device",
            "lo",
            "5000",
        ],
        "--join 239.1.1.1@eth9",
    );
    usage_error(
        &[
            "udp-send",
            "--multicast-if",
            "lo",
            "--message",
            "x",
            "127.0.0.1",
            "9",
        ],
        "--multicast-if",
    );
    usage_error(
        &[
            "udp-send",
            "-U",
            "/tmp/x.sock",
            "--no-multicast-loop",
            "--message",
            "x",
        ],
        "--no-multicast-loop",
    );
}

/// `bench --multicast` between namespaces: the server in R1 joins the
/// group on r1-in, the client in S sends to it out of br0; the server's
/// count gives rate, loss and reordering, IPv4 and IPv6. R2, joined to the
/// same group by udp-recv, sees the same stream arrive (with the TTL set).
#[test]
fn bench_multicast_across_the_segment() {
    let Some(l) = lan(9) else { return };
    // The IPv4 group against a server on the dual-stack wildcard, which
    // sees the client as ::ffff:10.198.9.1.
    for (group, bind, server) in [
        ("239.77.9.1", "::".to_string(), l.v4(2)),
        ("ff15::77:9", l.v6(2), l.v6(2)),
    ] {
        let (mut srv, port) = bench_server_cmd(sonda_in(
            l.r1(),
            &["-v", "bench", "--server", &bind, "0", "--once"],
        ));
        let (f, _) = sonda_run(
            l.s(),
            &[
                "bench",
                "--client",
                &server,
                &port.to_string(),
                "--proto",
                "udp",
                "--multicast",
                group,
                // 1472 (the default) fits IPv4's 1500-byte MTU, not IPv6's.
                "--size",
                "1400",
                "--rate",
                "200M",
                "--duration",
                "1s",
                "--json",
            ],
        );
        f.expect_code(0);
        let doc: Value = serde_json::from_slice(&f.stdout)
            .unwrap_or_else(|e| panic!("bad JSON ({e})\n{}", f.dump()));
        assert_eq!(doc["params"]["multicast"], group, "{}", f.dump());
        let r = &doc["results"][0];
        assert_eq!(r["direction"], "client->server", "{}", f.dump());
        let received = r["datagrams_received"].as_u64().unwrap_or(0);
        assert!(received > 1000, "{}", f.dump());
        for key in ["lost", "loss_percent", "reordered", "bits_per_second"] {
            assert!(r[key].is_number(), "no '{key}'\n{}", f.dump());
        }
        eprintln!(
            "bench multicast {group}: {:.1} Mbit/s, {} received, {} lost ({}%), {} reordered",
            r["bits_per_second"].as_f64().unwrap_or(0.0) / 1e6,
            received,
            r["lost"],
            r["loss_percent"],
            r["reordered"]
        );
        srv.finish_within(RUN_LIMIT).expect_code(0);
    }
    // A 4 KiB receive buffer against an unpaced sender: the loss is
    // counted from the sequence numbers, as for unicast.
    let server = l.v4(2);
    let (mut srv, port) = bench_server_cmd(sonda_in(
        l.r1(),
        &["-v", "bench", "--server", &server, "0", "--once"],
    ));
    let (f, _) = sonda_run(
        l.s(),
        &[
            "bench",
            "--client",
            &server,
            &port.to_string(),
            "--proto",
            "udp",
            "--multicast",
            "239.77.9.2",
            "--no-gso",
            "--rcvbuf",
            "4K",
            "--duration",
            "1s",
            "--json",
        ],
    );
    f.expect_code(0);
    let doc: Value = serde_json::from_slice(&f.stdout).unwrap();
    let r = &doc["results"][0];
    assert!(r["lost"].as_u64().unwrap_or(0) > 0, "{}", f.dump());
    eprintln!(
        "bench multicast unpaced, --rcvbuf 4K: {:.1} Mbit/s, {} lost ({}%), {} reordered",
        r["bits_per_second"].as_f64().unwrap_or(0.0) / 1e6,
        r["lost"],
        r["loss_percent"],
        r["reordered"]
    );
    srv.finish_within(RUN_LIMIT).expect_code(0);
}

/// One sender, four receivers: `bench --multicast` with `--receiver`. The
/// --client server in R1 chooses the ports; a server in R2, a second one
/// in R2 (the same group and port on one host, SO_REUSEADDR) and one on
/// the sending host (fed by multicast loopback) bind them too. Each
/// receiver reports what reached it, a result each, IPv4 and IPv6.
#[test]
fn bench_multicast_to_several_receivers() {
    let Some(l) = lan(10) else { return };
    for (group, v6) in [("239.77.10.1", false), ("ff15::77:10", true)] {
        let addr = |h: u8| if v6 { l.v6(h) } else { l.v4(h) };
        let server = |ns: &str, host: u8| {
            bench_server_cmd(sonda_in(
                ns,
                &["-v", "bench", "--server", &addr(host), "0", "--once"],
            ))
        };
        let (mut s1, p1) = server(l.r1(), 2);
        let (mut s2, p2) = server(l.r2(), 3);
        let (mut s3, p3) = server(l.r2(), 3);
        let (mut s4, p4) = server(l.s(), 1);
        let at = |h: u8, port: u16| {
            if v6 {
                format!("[{}]:{port}", addr(h))
            } else {
                format!("{}:{port}", addr(h))
            }
        };
        let further = [at(3, p2), at(3, p3), at(1, p4)];
        // R2 drops one datagram of the IPv4 group in ten before any
        // socket: its two receivers must report that loss, the others none.
        let lossy = !v6 && drop_one_in_ten(l.r2(), group);
        let (f, _) = sonda_run(
            l.s(),
            &[
                "bench",
                "--client",
                &addr(2),
                &p1.to_string(),
                "--receiver",
                &further[0],
                "--receiver",
                &further[1],
                "--receiver",
                &further[2],
                "--proto",
                "udp",
                "--multicast",
                group,
                "--size",
                "1400",
                "--rate",
                "100M",
                "--duration",
                "1s",
                "--json",
            ],
        );
        f.expect_code(0);
        let doc: Value = serde_json::from_slice(&f.stdout)
            .unwrap_or_else(|e| panic!("bad JSON ({e})\n{}", f.dump()));
        let results = doc["results"].as_array().cloned().unwrap_or_default();
        assert_eq!(results.len(), 4, "{}", f.dump());
        let sent = results[0]["datagrams_sent"].as_u64().unwrap_or(0);
        assert!(sent > 1000, "{}", f.dump());
        for (r, port) in results.iter().zip([p1, p2, p3, p4]) {
            let who = r["receiver"].as_str().unwrap_or_default();
            assert!(who.ends_with(&format!(":{port}")), "{who}\n{}", f.dump());
            assert_eq!(r["direction"], "client->server", "{}", f.dump());
            assert_eq!(r["datagrams_sent"].as_u64(), Some(sent), "{}", f.dump());
            let received = r["datagrams_received"].as_u64().unwrap_or(0);
            let loss = r["loss_percent"].as_f64().unwrap_or(-1.0);
            if lossy && port != p1 && port != p4 {
                assert!((4.0..=16.0).contains(&loss), "{who}: {loss}%\n{}", f.dump());
            } else {
                // Paced at 100 Mbit/s on a bridge: all or nearly all arrive.
                assert!(
                    received * 100 >= sent * 95,
                    "{who}: {received} of {sent}\n{}",
                    f.dump()
                );
            }
            eprintln!(
                "bench multicast {group} receiver {who}: {:.1} Mbit/s, {received} of {sent} received, {} lost ({}%), {} reordered",
                r["bits_per_second"].as_f64().unwrap_or(0.0) / 1e6,
                r["lost"],
                r["loss_percent"],
                r["reordered"]
            );
        }
        for s in [&mut s1, &mut s2, &mut s3, &mut s4] {
            s.finish_within(RUN_LIMIT).expect_code(0);
        }
    }
}

/// An nftables rule in `ns` that drops one datagram to `group` in ten at
/// input; false (and says skipped) where nftables is missing.
fn drop_one_in_ten(ns: &str, group: &str) -> bool {
    nft_input_rule(
        ns,
        "ip",
        &[
            "ip", "daddr", group, "numgen", "random", "mod", "10", "0", "drop",
        ],
    )
}
