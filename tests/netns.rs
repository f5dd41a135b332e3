//! Two hosts, for real: `sonda` between two network namespaces joined by a
//! veth pair, with the faults a real network has and loopback does not.
//!
//! Each test builds its own pair of namespaces, A (10.199.N.1/24) and B
//! (10.199.N.2/24), N distinct per test so the tests run in parallel, the
//! names carrying the test's N and this process's id. The addresses exist
//! only inside those namespaces and A has no default route, so no packet
//! can leave them. A guard deletes the namespaces (`ip netns del`, which
//! also removes the veth pair) when the test ends, on failure too; the sonda
//! processes inside are killed first, as their guards are dropped first.
//!
//! What runs:
//! - connect timeout against a host that silently drops (an nft or iptables
//!   DROP rule in B), with both `--timeout-method poll` and `alarm`;
//! - `bench --server` in B and `--client` in A, then the same with `tc
//!   netem` delay and loss where the kernel has netem (skipped otherwise);
//! - `connect -z` across the link: open, filtered (DROP) and closed ports;
//! - `udp-send` receiving a real ICMP port unreachable from B;
//! - blackhole, unreachable and prohibit routes in A, each failing at once
//!   with a message of its own;
//! - link-local addresses with a scope (`fe80::b%veth-a`): `connect -z` and
//!   `udp-send` keep the scope id all the way to connect(2);
//! - `connect -z` of a name with an address of each family (named in the
//!   namespace's own hosts file, /etc/netns/NS/hosts, removed afterwards)
//!   scans and reports both;
//! - the same kind of name with IPv6 dropped (nft, ip6 table) is raced
//!   (RFC 8305): connected over IPv4 in about 250 ms, `--sequential` times
//!   out;
//! - a relay, `bench` and `probe` on a scoped link-local address;
//! - `listen -k --to` between two ends on the other host, the spliced path.
//!
//! A test skips (an `eprintln!` saying why, then returns) when it cannot
//! run: not root, `ip` missing, `ip netns add` or veth creation refused,
//! neither `nft` nor `iptables` present for the tests that need a DROP rule,
//! netem missing for the delay/loss test. Every wait is bounded.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
use common::netns::*;
use common::*;

use std::time::Duration;

/// Adds rules in `ns` that silently drop incoming TCP to `ports`, with nft
/// if installed, else iptables. Returns `false` (after saying why) when
/// neither can: the caller skips.
fn drop_tcp(ns: &str, ports: &[u16]) -> bool {
    if have("nft") {
        return nft_drop_tcp(ns, "inet", ports);
    }
    if have("iptables") {
        for port in ports.iter().map(u16::to_string) {
            let args = ["-A", "INPUT", "-p", "tcp", "--dport", &port, "-j", "DROP"];
            let out = in_ns(ns, "iptables", &args).unwrap();
            if !out.status.success() {
                eprintln!(
                    "skipped: `iptables {}` failed in the namespace: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                return false;
            }
        }
        return true;
    }
    eprintln!("skipped: neither nft nor iptables is installed (apt-get install nftables)");
    false
}

/// The nft rules of [`drop_tcp`] in a table of `family` (`inet` for both
/// IP versions, `ip6` for IPv6 alone); false (after saying why) when nft
/// refuses them.
fn nft_drop_tcp(ns: &str, family: &str, ports: &[u16]) -> bool {
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    let set = format!("{{ {} }}", list.join(", "));
    nft_input_rule(ns, family, &["tcp", "dport", &set, "drop"])
}

// ---------------------------------------------------------------- connect timeout

/// `sonda connect -w 1s --timeout-method METHOD` to a port B drops.
fn connect_timeout_against_dropping_host(n: u8, method: &str) {
    let Some(p) = pair(n) else { return };
    if !drop_tcp(p.b(), &[9]) {
        return;
    }
    let b = p.b_addr();
    let (f, elapsed) = sonda_run(
        p.a(),
        &["connect", "-w", "1s", "--timeout-method", method, &b, "9"],
    );
    eprintln!("{method}: {elapsed:?}: {}", f.stderr.trim_end());
    f.expect_code(4);
    let lines: Vec<&str> = f.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected\n{}", f.dump());
    assert!(lines[0].contains("timed out"), "{}", f.dump());
    assert!(f.stdout.is_empty(), "{}", f.dump());
    assert!(
        elapsed >= Duration::from_millis(900),
        "gave up after {elapsed:?}, before the 1s timeout\n{}",
        f.dump()
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "took {elapsed:?} for a 1s timeout\n{}",
        f.dump()
    );
}

#[test]
fn connect_timeout_poll_against_dropping_host() {
    connect_timeout_against_dropping_host(1, "poll");
}

#[test]
fn connect_timeout_alarm_against_dropping_host() {
    connect_timeout_against_dropping_host(2, "alarm");
}

// ---------------------------------------------------------------- bench

/// Starts `sonda -v bench --server B 0 --once` in B; returns it and its port.
fn bench_server(p: &Pair) -> (Running, u16) {
    let b = p.b_addr();
    bench_server_cmd(sonda_in(
        p.b(),
        &["-v", "bench", "--server", &b, "0", "--once"],
    ))
}

/// Runs one bench client in A against a fresh `--once` server in B with
/// `extra` arguments and `--json`; checks both exit 0 and returns the
/// client's JSON document.
fn bench_across(p: &Pair, extra: &[&str]) -> serde_json::Value {
    let (mut server, port) = bench_server(p);
    let b = p.b_addr();
    let port = port.to_string();
    let mut args = vec!["bench", "--client", &b, &port];
    args.extend_from_slice(extra);
    args.push("--json");
    let (client, elapsed) = sonda_run(p.a(), &args);
    client.expect_code(0);
    let server = server.finish_within(RUN_LIMIT);
    server.expect_code(0);
    eprintln!("bench {} took {elapsed:?}", extra.join(" "));
    serde_json::from_slice(&client.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e})\n{}", client.dump()))
}

/// Checks a stream document: bytes moved; prints the throughput.
fn check_stream(doc: &serde_json::Value, what: &str) {
    let result = &doc["results"][0];
    let bytes = result["bytes"].as_u64().unwrap_or(0);
    assert!(bytes > 0, "{what}: no bytes counted\n{doc:#}");
    let bps = result["bits_per_second"].as_f64().unwrap();
    eprintln!(
        "{what}: {bytes} bytes in {}s, {:.1} Mbit/s",
        result["seconds"],
        bps / 1e6
    );
}

#[test]
fn bench_server_and_client_across_the_link() {
    let Some(p) = pair(3) else { return };
    let doc = bench_across(&p, &["--duration", "1s"]);
    check_stream(&doc, "tcp stream A->B");
}

/// Adds `netem ARGS` as the root qdisc of `dev` in `ns`; why not when the
/// kernel (or tc) cannot.
fn netem(ns: &str, dev: &str, args: &[&str]) -> Result<(), String> {
    let mut full = vec!["qdisc", "add", "dev", dev, "root", "netem"];
    full.extend_from_slice(args);
    match in_ns(ns, "tc", &full) {
        Some(out) if out.status.success() => Ok(()),
        Some(out) => Err(format!(
            "`tc {}` failed: {}",
            full.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        None => Err("cannot run tc".into()),
    }
}

#[test]
fn bench_across_the_link_with_delay_and_loss() {
    let Some(p) = pair(4) else { return };
    if !have("tc") {
        eprintln!("skipped: tc is not installed: no delay/loss test");
        return;
    }
    // 20 ms each way (so a round trip takes at least 40 ms), and 1% loss
    // from A.
    for (ns, dev, args) in [
        (p.a(), "veth-a", &["delay", "20ms", "loss", "1%"][..]),
        (p.b(), "veth-b", &["delay", "20ms"][..]),
    ] {
        if let Err(why) = netem(ns, dev, args) {
            eprintln!("skipped: netem is not available in this kernel: {why}");
            return;
        }
    }
    let doc = bench_across(&p, &["--duration", "1s"]);
    check_stream(&doc, "tcp stream A->B, 20ms each way, 1% loss");

    let doc = bench_across(&p, &["--mode", "rr", "--duration", "1s"]);
    let latency = &doc["latency"];
    let p50 = latency["p50_us"]
        .as_f64()
        .unwrap_or_else(|| panic!("no latency.p50_us\n{doc:#}"));
    eprintln!(
        "rr with 40ms round trip: {} transactions, p50 {p50} us, p99 {} us",
        latency["transactions"], latency["p99_us"]
    );
    assert!(
        p50 >= 40_000.0,
        "rr p50 {p50} us is below the 40 ms the link imposes\n{doc:#}"
    );
}

// ---------------------------------------------------------------- connect -z

/// `listen -k --sink HOST 8080` in `ns`, once it listens.
fn sink_on_8080(ns: &str, host: &str) -> Running {
    let mut listener = spawn_cmd(
        sonda_in(ns, &["-v", "listen", "-k", "--sink", host, "8080"]),
        Input::Null,
        Output::Null,
    );
    listener.wait_for_stderr("listening on ");
    listener
}

#[test]
fn scan_across_the_link_open_filtered_closed() {
    let Some(p) = pair(5) else { return };
    if !drop_tcp(p.b(), &[8081]) {
        return;
    }
    let b = p.b_addr();
    let _listener = sink_on_8080(p.b(), &b);

    let (f, elapsed) = sonda_run(
        p.a(),
        &["-v", "connect", "-z", "-w", "500ms", &b, "8080-8082"],
    );
    eprintln!(
        "scan took {elapsed:?}\nstdout:\n{}stderr:\n{}",
        String::from_utf8_lossy(&f.stdout),
        f.stderr
    );
    f.expect_code(0);
    let stdout = String::from_utf8_lossy(&f.stdout).into_owned();
    let both = format!("{stdout}\n{}", f.stderr);
    let line_for = |text: &str, port: &str| -> String {
        let needle = format!("{port}/tcp");
        text.lines()
            .find(|l| l.contains(&needle))
            .unwrap_or_else(|| panic!("no line for {needle}\n{}", f.dump()))
            .to_string()
    };
    // Open ports are the payload; closed and filtered are reported with -v.
    let open = line_for(&stdout, "8080");
    assert!(open.contains("open"), "8080: {open}\n{}", f.dump());
    let filtered = line_for(&both, "8081");
    assert!(
        filtered.contains("filtered") && !filtered.contains("open"),
        "8081 (dropped): {filtered}\n{}",
        f.dump()
    );
    let closed = line_for(&both, "8082");
    assert!(
        closed.contains("closed") && !closed.contains("open"),
        "8082 (nothing listens): {closed}\n{}",
        f.dump()
    );
    let opens: Vec<&str> = stdout.lines().filter(|l| l.contains("open")).collect();
    assert_eq!(opens, [open.as_str()], "only 8080 is open\n{}", f.dump());
    assert!(elapsed < Duration::from_secs(10), "scan took {elapsed:?}");
}

// ---------------------------------------------------------------- udp-send

#[test]
fn udp_send_gets_a_real_port_unreachable() {
    let Some(p) = pair(6) else { return };
    let b = p.b_addr();
    let (f, elapsed) = sonda_run(p.a(), &["udp-send", "--message", "x", &b, "9999"]);
    eprintln!("udp-send: {elapsed:?}: {}", f.stderr.trim_end());
    f.expect_code(3);
    assert!(f.stderr.contains("port unreachable"), "{}", f.dump());
}

// ---------------------------------------------------------------- route types

#[test]
fn blackhole_unreachable_prohibit_routes_fail_at_once_and_distinctly() {
    let Some(p) = pair(7) else { return };
    let n = p.n;
    let mut whys: Vec<(String, String)> = Vec::new();
    for (kind, net) in [("blackhole", 200), ("unreachable", 201), ("prohibit", 202)] {
        let cidr = format!("10.{net}.{n}.0/24");
        must("ip", &["-n", p.a(), "route", "add", kind, &cidr]);
        let host = format!("10.{net}.{n}.1");
        let (f, elapsed) = sonda_run(p.a(), &["connect", "-w", "2s", &host, "80"]);
        let message = f.stderr.trim_end().to_string();
        eprintln!(
            "{kind} route: exit {:?} after {elapsed:?}: {message}",
            f.code()
        );
        assert!(
            f.code().is_some_and(|c| c != 0 && c != 4),
            "{kind}: expected a failure that is not a timeout\n{}",
            f.dump()
        );
        assert!(
            elapsed < Duration::from_secs(1),
            "{kind}: took {elapsed:?}, not immediate\n{}",
            f.dump()
        );
        assert!(message.starts_with("sonda: "), "{kind}\n{}", f.dump());
        assert!(f.stdout.is_empty(), "{kind}\n{}", f.dump());
        // The address differs per route; compare what is said about it.
        let why = message.replace(&host, "HOST");
        whys.push((kind.to_string(), why));
    }
    for i in 0..whys.len() {
        for j in i + 1..whys.len() {
            assert_ne!(
                whys[i].1, whys[j].1,
                "{} and {} routes give the same message",
                whys[i].0, whys[j].0
            );
        }
    }
}

#[test]
fn namespaces_are_removed_when_the_guard_drops() {
    let name = {
        let Some(p) = pair(8) else { return };
        p.a().to_string()
    };
    let out = output("ip", &["netns", "list"]).unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        !list
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&name)),
        "{name} is still there:\n{list}"
    );
}

// ---------------------------------------------------------------- link-local scopes

/// Gives A fe80::a and B fe80::b on the veth, without duplicate address
/// detection so they are usable at once (a tentative address is not).
fn link_local(p: &Pair) {
    for (ns, addr, dev) in [
        (p.a(), "fe80::a/64", "veth-a"),
        (p.b(), "fe80::b/64", "veth-b"),
    ] {
        must("ip", &["-n", ns, "addr", "add", addr, "dev", dev, "nodad"]);
    }
}

#[test]
fn scan_keeps_the_scope_of_a_link_local_address() {
    let Some(p) = pair(9) else { return };
    link_local(&p);
    let mut listener = spawn_cmd(
        sonda_in(
            p.b(),
            &["-v", "listen", "-k", "--sink", "fe80::b%veth-b", "8080"],
        ),
        Input::Null,
        Output::Null,
    );
    listener.wait_for_stderr("listening on ");

    let (f, elapsed) = sonda_run(
        p.a(),
        &[
            "-v",
            "connect",
            "-z",
            "-w",
            "500ms",
            "fe80::b%veth-a",
            "8080-8081",
        ],
    );
    eprintln!("scan took {elapsed:?}\n{}", f.dump());
    f.expect_code(0);
    let stdout = String::from_utf8_lossy(&f.stdout).into_owned();
    let open: Vec<&str> = stdout.lines().filter(|l| l.contains(" open")).collect();
    assert_eq!(open.len(), 1, "only 8080 is open\n{}", f.dump());
    assert!(
        open[0].starts_with("fe80::b%veth-a 8080/tcp open"),
        "the open line names the scoped address: {}\n{}",
        open[0],
        f.dump()
    );
    assert!(
        stdout.contains("fe80::b%veth-a 8081/tcp closed"),
        "8081 is closed (a line with -v)\n{}",
        f.dump()
    );
}

#[test]
fn udp_send_keeps_the_scope_of_a_link_local_address() {
    let Some(p) = pair(10) else { return };
    link_local(&p);
    let mut receiver = spawn_cmd(
        sonda_in(
            p.b(),
            &["-v", "udp-recv", "--count", "1", "fe80::b%veth-b", "9000"],
        ),
        Input::Null,
        Output::Capture,
    );
    receiver.wait_for_stderr("listening on ");
    let (f, _) = sonda_run(
        p.a(),
        &["udp-send", "--message", "scoped", "fe80::b%veth-a", "9000"],
    );
    f.expect_code(0);
    let r = receiver.finish_within(RUN_LIMIT);
    r.expect_code(0);
    assert_eq!(r.stdout, b"scoped", "{}", r.dump());
}

/// `/etc/netns/NS/hosts`, which `ip netns exec NS` mounts over /etc/hosts:
/// a name only processes in NS resolve. Removed on drop.
struct NsHosts {
    dir: std::path::PathBuf,
}

impl NsHosts {
    fn write(ns: &str, text: &str) -> NsHosts {
        let dir = std::path::PathBuf::from("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hosts"), text).unwrap();
        NsHosts { dir }
    }
}

impl Drop for NsHosts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        // /etc/netns itself too, unless something else lives there.
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// A name with an IPv4 and an IPv6 address: both are scanned and reported
/// apart, open on one and closed on the other.
#[test]
fn scan_reports_every_address_of_a_name() {
    let Some(p) = pair(11) else { return };
    let (a6, b6) = ("fd00:199:11::1", "fd00:199:11::2");
    must(
        "ip",
        &[
            "-n",
            p.a(),
            "addr",
            "add",
            &format!("{a6}/64"),
            "dev",
            "veth-a",
            "nodad",
        ],
    );
    must(
        "ip",
        &[
            "-n",
            p.b(),
            "addr",
            "add",
            &format!("{b6}/64"),
            "dev",
            "veth-b",
            "nodad",
        ],
    );
    let b4 = p.b_addr();
    let _hosts = NsHosts::write(p.a(), &format!("{b4} sonda-both\n{b6} sonda-both\n"));
    let mut listener = spawn_cmd(
        sonda_in(p.b(), &["-v", "listen", "-k", "--sink", &b4, "8080"]),
        Input::Null,
        Output::Null,
    );
    listener.wait_for_stderr("listening on ");

    let (f, _) = sonda_run(
        p.a(),
        &["-v", "connect", "-z", "-w", "500ms", "sonda-both", "8080"],
    );
    eprintln!("{}", f.dump());
    f.expect_code(0);
    let stdout = String::from_utf8_lossy(&f.stdout).into_owned();
    let both = format!("{stdout}{}", f.stderr);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("{b4} 8080/tcp open"))),
        "IPv4 8080 is open\n{}",
        f.dump()
    );
    assert!(
        both.lines()
            .any(|l| l.contains(&format!("{b6} 8080/tcp closed"))),
        "IPv6 8080 is scanned too, and closed\n{}",
        f.dump()
    );
    for addr in [b4.as_str(), b6] {
        assert!(
            f.stderr.contains(&format!("scanned 1 tcp ports on {addr}")),
            "no summary for {addr}\n{}",
            f.dump()
        );
    }
}

// ---------------------------------------------------------------- ICMP answers

/// Issue 10.6: every "destination unreachable" is EHOSTUNREACH to TCP, and
/// the hint lumped a firewall's admin-prohibited reject together with "no
/// host answered on the link". The ICMP message itself (read back from the
/// error queue) says who answered what; each case gets its own hint:
/// B's reject rules (admin-prohibited, host-unreachable), B as a router
/// with no route onwards (network unreachable from B), an address on the
/// link that nobody has (A's own ARP gives up), and A's unreachable route.
#[test]
fn unreachable_answers_are_told_apart_by_who_sent_what() {
    let Some(p) = pair(12) else { return };
    if !have("nft") {
        eprintln!("skipped: nft is not installed (apt-get install nftables)");
        return;
    }
    let n = p.n;
    let rules: [&[&str]; 2] = [
        &[
            "tcp",
            "dport",
            "81",
            "reject",
            "with",
            "icmp",
            "type",
            "admin-prohibited",
        ],
        &[
            "tcp",
            "dport",
            "82",
            "reject",
            "with",
            "icmp",
            "type",
            "host-unreachable",
        ],
    ];
    if !nft_input_rules(p.b(), "inet", &rules) {
        return;
    }
    // B routes for A (forwarding on) but has no route to 10.203.N.0/24.
    must(
        "ip",
        &[
            "netns",
            "exec",
            p.b(),
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ],
    );
    let beyond = format!("10.203.{n}.0/24");
    must(
        "ip",
        &["-n", p.a(), "route", "add", &beyond, "via", &p.b_addr()],
    );
    let unreachable = format!("10.204.{n}.0/24");
    must(
        "ip",
        &["-n", p.a(), "route", "add", "unreachable", &unreachable],
    );
    let b = p.b_addr();
    let absent = format!("10.199.{n}.77");
    let cases = [
        (
            "admin-prohibited",
            b.clone(),
            "81",
            "administratively prohibited",
        ),
        (
            "host-unreachable reject",
            b.clone(),
            "82",
            "itself answered ICMP host unreachable",
        ),
        (
            "router without a route",
            format!("10.203.{n}.1"),
            "80",
            "network unreachable",
        ),
        ("nobody on the link", absent, "80", "no host answered ARP"),
        (
            "unreachable route",
            format!("10.204.{n}.1"),
            "80",
            "unreachable route",
        ),
    ];
    let mut hints = Vec::new();
    for (what, host, port, expect) in cases {
        let (f, took) = sonda_run(p.a(), &["connect", "-w", "10s", &host, port]);
        eprintln!(
            "{what}: exit {:?} in {took:?}: {}",
            f.code(),
            f.stderr.trim_end()
        );
        assert_no_panic(&f);
        assert!(
            f.code().is_some_and(|c| c != 0 && c != 4),
            "{what}\n{}",
            f.dump()
        );
        let hint = f
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("hint: "))
            .unwrap_or_else(|| panic!("{what}: no hint\n{}", f.dump()))
            .to_string();
        assert!(
            hint.contains(expect),
            "{what}: hint '{hint}' lacks '{expect}'"
        );
        hints.push(hint.replace(&host, "HOST"));
    }
    for i in 0..hints.len() {
        for j in i + 1..hints.len() {
            assert_ne!(hints[i], hints[j], "two cases share a hint");
        }
    }
}

// ---------------------------------------------------------------- forwarding

/// `listen -k --to` in A between a client and an upstream both in B: each
/// direction goes toward another host, which is where the forwarder
/// splices (toward this host it copies, as tests/forward.rs covers). Two
/// clients at once, 8 MiB each, echoed back byte-exact, half-close passed
/// on both ways.
#[test]
fn forwarding_across_the_link_splices_byte_exact() {
    let Some(p) = pair(13) else { return };
    let (a, b) = (p.a_addr(), p.b_addr());
    let mut upstream = spawn_cmd(
        sonda_in(p.b(), &["-v", "listen", "-k", "--echo", &b, "0"]),
        Input::Null,
        Output::Null,
    );
    let up_port = upstream.listening_port();
    let to = format!("{b}:{up_port}");
    let mut fwd = spawn_cmd(
        sonda_in(p.a(), &["-v", "listen", "-k", "--to", &to, &a, "0"]),
        Input::Null,
        Output::Null,
    );
    let port = fwd.listening_port().to_string();
    let clients: Vec<(Vec<u8>, Running)> = (0..2u64)
        .map(|i| {
            let data = random_bytes(8 << 20, 1200 + i);
            let client = spawn_cmd(
                sonda_in(p.b(), &["connect", &a, &port]),
                Input::Bytes(data.clone()),
                Output::Capture,
            );
            (data, client)
        })
        .collect();
    for (data, client) in clients {
        let mut client = client;
        let f = client.finish_within(RUN_LIMIT);
        f.expect_code(0);
        assert_eq!(sha256(&f.stdout), sha256(&data), "{}", f.dump());
    }
    let line = fwd.wait_for_stderr(" back in ");
    let bytes = format!("{} bytes (8.00 MiB)", 8 << 20);
    assert!(
        line.contains(&format!("{bytes} to {to}, {bytes} back")),
        "{line}"
    );
}

// ---------------------------------------------------------------- racing

/// RFC 8305: a name with both families where B drops IPv6 TCP (an nft
/// rule in an ip6 table) and answers IPv4. The race connects over IPv4
/// about 250 ms after the IPv6 attempt began, far inside -w, and -v says
/// what became of each; `--sequential` gives IPv6 half of -w (one of two
/// addresses), then IPv4 connects.
#[test]
fn racing_connects_over_ipv4_when_ipv6_is_dropped() {
    let Some(p) = pair(14) else { return };
    if !have("nft") {
        eprintln!("skipped: nft is not installed (apt-get install nftables)");
        return;
    }
    let (a6, b6) = ("fd00:199:14::1", "fd00:199:14::2");
    for (ns, addr, dev) in [(p.a(), a6, "veth-a"), (p.b(), b6, "veth-b")] {
        let cidr = format!("{addr}/64");
        must("ip", &["-n", ns, "addr", "add", &cidr, "dev", dev, "nodad"]);
    }
    let b4 = p.b_addr();
    let _hosts = NsHosts::write(p.a(), &format!("{b4} sonda-race\n{b6} sonda-race\n"));
    let mut listener = spawn_cmd(
        sonda_in(p.b(), &["-v", "listen", "-k", "--sink", "0"]),
        Input::Null,
        Output::Null,
    );
    let port = listener.listening_port();
    if !nft_drop_tcp(p.b(), "ip6", &[port]) {
        return;
    }
    let port = port.to_string();

    let (f, took) = sonda_run(p.a(), &["-v", "connect", "-w", "5s", "sonda-race", &port]);
    eprintln!("raced in {took:?}\n{}", f.dump());
    f.expect_code(0);
    let v6 = format!("[{b6}]:{port}");
    let v4 = format!("{b4}:{port}");
    let lines: Vec<&str> = f.stderr.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with '{needle}'\n{}", f.dump()))
    };
    // IPv6 first, then IPv4 beside it, IPv4 wins, the IPv6 attempt closed.
    let order = [
        at(&format!("trying {v6}")),
        at(&format!("{v6}: no answer after")),
        at(&format!("trying {v4}")),
        at(&format!("{v6}: no answer after")),
        at(&format!("connected to {v4}")),
    ];
    assert!(order[0] < order[2] && order[2] < order[4], "{}", f.dump());
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&v6) && l.contains("closed")),
        "the losing attempt is reported closed\n{}",
        f.dump()
    );
    // About 250 ms; the bound only keeps it well inside -w on a busy host.
    assert!(took < Duration::from_millis(2500), "took {took:?}");

    let (f, took) = sonda_run(
        p.a(),
        &[
            "-v",
            "connect",
            "--sequential",
            "-w",
            "2s",
            "sonda-race",
            &port,
        ],
    );
    eprintln!("sequential took {took:?}\n{}", f.dump());
    f.expect_code(0);
    assert!(
        f.stderr
            .contains(&format!("connect {v6}: timed out after 1s")),
        "{}",
        f.dump()
    );
    assert!(
        f.stderr.contains(&format!("connected to {v4}")),
        "{}",
        f.dump()
    );
    assert!(took >= Duration::from_millis(900), "took {took:?}");
}

/// The commands scan and udp-send leave out, on a link-local address with
/// its scope: a relay through `connect` to `listen` byte-exact, `bench
/// --server`/`--client`, and `probe` naming the scoped listener.
#[test]
fn relay_bench_and_probe_keep_the_scope_of_a_link_local_address() {
    let Some(p) = pair(15) else { return };
    link_local(&p);
    let mut listener = spawn_cmd(
        sonda_in(p.b(), &["-v", "listen", "fe80::b%veth-b", "0"]),
        Input::Null,
        Output::Capture,
    );
    let port = listener.listening_port().to_string();
    let data = random_bytes(1 << 20, 1500);
    let client = spawn_cmd(
        sonda_in(p.a(), &["-v", "connect", "fe80::b%veth-a", &port]),
        Input::Bytes(data.clone()),
        Output::Capture,
    )
    .finish_within(RUN_LIMIT);
    client.expect_code(0);
    assert!(
        client.stderr.contains("connected to [fe80::b%veth-a]"),
        "{}",
        client.dump()
    );
    let got = listener.finish_within(RUN_LIMIT);
    got.expect_code(0);
    assert_eq!(sha256(&got.stdout), sha256(&data), "{}", got.dump());

    let (mut server, port) = bench_server_cmd(sonda_in(
        p.b(),
        &["-v", "bench", "--server", "fe80::b%veth-b", "0", "--once"],
    ));
    let port = port.to_string();
    let (f, _) = sonda_run(
        p.a(),
        &[
            "bench",
            "--client",
            "fe80::b%veth-a",
            &port,
            "--duration",
            "1s",
            "--json",
        ],
    );
    f.expect_code(0);
    let doc: serde_json::Value = serde_json::from_slice(&f.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e})\n{}", f.dump()));
    check_stream(&doc, "tcp stream to fe80::b%veth-a");
    server.finish_within(RUN_LIMIT).expect_code(0);

    let mut held = spawn_cmd(
        sonda_in(
            p.b(),
            &["-v", "listen", "-k", "--sink", "fe80::b%veth-b", "0"],
        ),
        Input::Null,
        Output::Null,
    );
    let port = held.listening_port().to_string();
    let (f, _) = sonda_run(p.b(), &["probe", "fe80::b%veth-b", &port]);
    f.expect_code(5);
    let text = String::from_utf8_lossy(&f.stdout);
    assert!(text.contains("fe80::b%veth-b"), "{}", f.dump());
    assert!(text.contains("LISTEN"), "{}", f.dump());
}

/// `probe --bind-device` asks what `listen --bind-device` would meet: a
/// listener bound to lo shares its port with a bind to veth-a (the kernel
/// lets sockets on different devices share a port), but not with a bind
/// to lo or to no device. The table shows the device as ss does.
#[test]
fn probe_bind_device_sets_apart_sockets_on_other_interfaces() {
    let Some(p) = pair(16) else { return };
    let mut held = spawn_cmd(
        sonda_in(
            p.a(),
            &[
                "-v",
                "listen",
                "-k",
                "--sink",
                "--bind-device",
                "lo",
                "0.0.0.0",
                "0",
            ],
        ),
        Input::Null,
        Output::Null,
    );
    let port = held.listening_port().to_string();

    let (f, _) = sonda_run(p.a(), &["probe", &port]);
    f.expect_code(5);
    let text = String::from_utf8_lossy(&f.stdout);
    assert!(text.contains(&format!("0.0.0.0%lo:{port}")), "{}", f.dump());
    assert!(text.contains("bound to an interface (lo"), "{}", f.dump());
    assert!(text.contains("listens on"), "{}", f.dump());

    let (f, _) = sonda_run(p.a(), &["probe", "--bind-device", "lo", &port]);
    f.expect_code(5);

    let (f, _) = sonda_run(
        p.a(),
        &["probe", "--json", "--bind-device", "veth-a", &port],
    );
    f.expect_code(0);
    let doc: serde_json::Value = serde_json::from_slice(&f.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e})\n{}", f.dump()));
    assert_eq!(doc["verdict"]["bind_ok"], true, "{}", f.dump());
    assert_eq!(doc["sockets"][0]["device"], "lo", "{}", f.dump());
    assert_eq!(
        doc["binds"][0]["address"],
        format!("[::]%veth-a:{port}"),
        "{}",
        f.dump()
    );
    let kinds: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"other-device"), "{}", f.dump());
    held.signal(libc::SIGTERM);
}

/// Every `-z` probe carries the socket options: bound to lo, B's address
/// has no route and nothing is open; bound to veth-a, the port is.
#[test]
fn scan_probes_take_bind_device() {
    let Some(p) = pair(17) else { return };
    let b = p.b_addr();
    let listener = sink_on_8080(p.b(), &b);
    let scan = |dev: &str| {
        sonda_run(
            p.a(),
            &[
                "connect",
                "-z",
                "-w",
                "500ms",
                "--bind-device",
                dev,
                &b,
                "8080",
            ],
        )
        .0
    };
    let f = scan("veth-a");
    f.expect_code(0);
    assert!(
        String::from_utf8_lossy(&f.stdout).contains("8080/tcp open"),
        "{}",
        f.dump()
    );
    let f = scan("lo");
    assert_ne!(f.code(), Some(0), "{}", f.dump());
    assert!(f.stdout.is_empty(), "{}", f.dump());
    listener.signal(libc::SIGTERM);
}
