//! Network namespaces for the tests that need two hosts or more: a guard
//! that deletes a namespace on drop (on failure too), a veth [`Pair`] per
//! test number, and the commands run inside. Everything here needs root;
//! without it, or without `ip`, the builders say "skipped" and return
//! `None`.

use std::process::{Command, Output as ProcOutput, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// The bound on any sonda run here that is expected to end on its own.
pub const RUN_LIMIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- namespaces

/// A network namespace this test created; deleted on drop.
pub struct Netns {
    name: String,
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Two namespaces joined by a veth pair: `veth-a` in A, `veth-b` in B.
pub struct Pair {
    // Field order is drop order: B, then A.
    b: Netns,
    a: Netns,
    pub n: u8,
}

impl Pair {
    pub fn a(&self) -> &str {
        &self.a.name
    }

    pub fn b(&self) -> &str {
        &self.b.name
    }

    /// A's address, 10.199.N.1.
    pub fn a_addr(&self) -> String {
        format!("10.199.{}.1", self.n)
    }

    /// B's address, 10.199.N.2.
    pub fn b_addr(&self) -> String {
        format!("10.199.{}.2", self.n)
    }
}

/// Runs `program args...`, capturing everything; `None` if it cannot start.
pub fn output(program: &str, args: &[&str]) -> Option<ProcOutput> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()
}

/// Runs `program args...` and panics with its stderr unless it succeeds.
pub fn must(program: &str, args: &[&str]) {
    let out = output(program, args).unwrap_or_else(|| panic!("cannot run {program}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed ({:?}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ip netns exec NS program args...`, capturing everything.
pub fn in_ns(ns: &str, program: &str, args: &[&str]) -> Option<ProcOutput> {
    let mut full = vec!["netns", "exec", ns, program];
    full.extend_from_slice(args);
    output("ip", &full)
}

/// The command `ip netns exec NS sonda args...`, for `spawn_cmd`.
pub fn sonda_in(ns: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, bin()]).args(args);
    cmd
}

/// Runs sonda in `ns` to completion (bounded), stdin empty, stdout captured;
/// returns the result and the wall time it took.
pub fn sonda_run(ns: &str, args: &[&str]) -> (Finished, Duration) {
    let start = Instant::now();
    let finished =
        spawn_cmd(sonda_in(ns, args), Input::Null, Output::Capture).finish_within(RUN_LIMIT);
    (finished, start.elapsed())
}

/// Creates the namespace `name`, or says why it cannot and returns `None`.
pub fn netns(name: String) -> Option<Netns> {
    // A namespace of this name can only be left over from a dead process
    // that had our pid; it is ours to remove.
    let _ = output("ip", &["netns", "del", &name]);
    match output("ip", &["netns", "add", &name]) {
        Some(out) if out.status.success() => Some(Netns { name }),
        Some(out) => {
            eprintln!(
                "skipped: `ip netns add {name}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
        None => {
            eprintln!("skipped: cannot run `ip netns add {name}`");
            None
        }
    }
}

/// Root and `ip`, or says why a test skips.
fn can_make_namespaces() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: network namespace tests need root (ip netns add)");
        return false;
    }
    if !have("ip") {
        eprintln!("skipped: `ip` (iproute2) is not installed");
        return false;
    }
    true
}

/// Builds the pair for test number `n` (1-254), or says why it cannot and
/// returns `None`: the caller then returns (skips).
pub fn pair(n: u8) -> Option<Pair> {
    if !can_make_namespaces() {
        return None;
    }
    let pid = std::process::id();
    let a = netns(format!("sonda-test-{pid}-{n}-a"))?;
    let b = netns(format!("sonda-test-{pid}-{n}-b"))?;
    let p = Pair { b, a, n };
    // The veth is created in A with its peer in B: it never exists in the
    // host's namespace, so fixed names cannot clash between tests.
    let veth = output(
        "ip",
        &[
            "-n",
            p.a(),
            "link",
            "add",
            "veth-a",
            "type",
            "veth",
            "peer",
            "name",
            "veth-b",
            "netns",
            p.b(),
        ],
    )
    .unwrap();
    if !veth.status.success() {
        eprintln!(
            "skipped: cannot create a veth pair: {}",
            String::from_utf8_lossy(&veth.stderr).trim()
        );
        return None;
    }
    let a_cidr = format!("{}/24", p.a_addr());
    let b_cidr = format!("{}/24", p.b_addr());
    must(
        "ip",
        &["-n", p.a(), "addr", "add", &a_cidr, "dev", "veth-a"],
    );
    must(
        "ip",
        &["-n", p.b(), "addr", "add", &b_cidr, "dev", "veth-b"],
    );
    for (ns, dev) in [(p.a(), "veth-a"), (p.b(), "veth-b")] {
        must("ip", &["-n", ns, "link", "set", "lo", "up"]);
        must("ip", &["-n", ns, "link", "set", dev, "up"]);
    }
    Some(p)
}

/// One sender and two receivers on one Ethernet segment: namespace S holds
/// the bridge `br0` (10.198.N.1/24, fd00:198:N::1/64), and R1, R2 each a
/// veth (`r1-in`, `r2-in`: .2 and .3, ::2 and ::3) whose peer is a port of
/// the bridge. Multicast snooping is off, so the bridge floods every group
/// to both ports, and DAD is off, so the IPv6 addresses work at once.
pub struct Lan {
    // Field order is drop order: the receivers first.
    pub r2: Netns,
    pub r1: Netns,
    pub s: Netns,
    pub n: u8,
}

impl Lan {
    pub fn s(&self) -> &str {
        &self.s.name
    }

    pub fn r1(&self) -> &str {
        &self.r1.name
    }

    pub fn r2(&self) -> &str {
        &self.r2.name
    }

    /// 10.198.N.`host`.
    pub fn v4(&self, host: u8) -> String {
        format!("10.198.{}.{host}", self.n)
    }

    /// fd00:198:N::`host`.
    pub fn v6(&self, host: u8) -> String {
        format!("fd00:198:{}::{host}", self.n)
    }
}

/// Builds the segment for test number `n` (1-254), or says why it cannot
/// and returns `None`.
pub fn lan(n: u8) -> Option<Lan> {
    if !can_make_namespaces() {
        return None;
    }
    let pid = std::process::id();
    let s = netns(format!("sonda-lan-{pid}-{n}-s"))?;
    let r1 = netns(format!("sonda-lan-{pid}-{n}-r1"))?;
    let r2 = netns(format!("sonda-lan-{pid}-{n}-r2"))?;
    let l = Lan { r2, r1, s, n };
    for ns in [l.s(), l.r1(), l.r2()] {
        for key in ["all", "default"] {
            let _ = in_ns(
                ns,
                "sysctl",
                &["-qw", &format!("net.ipv6.conf.{key}.accept_dad=0")],
            );
        }
        must("ip", &["-n", ns, "link", "set", "lo", "up"]);
    }
    let bridge = output(
        "ip",
        &[
            "-n",
            l.s(),
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ],
    )
    .unwrap();
    if !bridge.status.success() {
        eprintln!(
            "skipped: cannot create a bridge: {}",
            String::from_utf8_lossy(&bridge.stderr).trim()
        );
        return None;
    }
    for (i, ns, dev) in [(2u8, l.r1(), "r1-in"), (3, l.r2(), "r2-in")] {
        let port = format!("{dev}-port");
        must(
            "ip",
            &[
                "-n",
                l.s(),
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                dev,
                "netns",
                ns,
            ],
        );
        must("ip", &["-n", l.s(), "link", "set", &port, "master", "br0"]);
        must("ip", &["-n", l.s(), "link", "set", &port, "up"]);
        let (a4, a6) = (format!("{}/24", l.v4(i)), format!("{}/64", l.v6(i)));
        must("ip", &["-n", ns, "addr", "add", &a4, "dev", dev]);
        must("ip", &["-n", ns, "addr", "add", &a6, "dev", dev, "nodad"]);
        must("ip", &["-n", ns, "link", "set", dev, "up"]);
    }
    let (a4, a6) = (format!("{}/24", l.v4(1)), format!("{}/64", l.v6(1)));
    must("ip", &["-n", l.s(), "addr", "add", &a4, "dev", "br0"]);
    must(
        "ip",
        &["-n", l.s(), "addr", "add", &a6, "dev", "br0", "nodad"],
    );
    must("ip", &["-n", l.s(), "link", "set", "br0", "up"]);
    // The bridge has carrier, and IPv6 its multicast route, only a moment
    // after its ports are up: wait for that route on every interface.
    for (ns, dev) in [(l.s(), "br0"), (l.r1(), "r1-in"), (l.r2(), "r2-in")] {
        let want = format!("multicast ff00::/8 dev {dev} ");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let routes = in_ns(ns, "ip", &["-6", "route", "show", "table", "local"]).unwrap();
            if String::from_utf8_lossy(&routes.stdout).contains(&want) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no IPv6 multicast route on {dev} in {ns}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Some(l)
}

/// One nft `rule` (its words after the chain) in an input chain of a fresh
/// table `sonda_test` of `family` (`ip`, `ip6`, `inet`) in `ns`; false,
/// after saying skipped and why, when nft is missing or refuses it.
pub fn nft_input_rule(ns: &str, family: &str, rule: &[&str]) -> bool {
    nft_input_rules(ns, family, &[rule])
}

/// [`nft_input_rule`] for several rules, in order, in the one chain.
pub fn nft_input_rules(ns: &str, family: &str, rules: &[&[&str]]) -> bool {
    let chain = [
        "add",
        "chain",
        family,
        "sonda_test",
        "input",
        "{",
        "type",
        "filter",
        "hook",
        "input",
        "priority",
        "0",
        ";",
        "policy",
        "accept",
        ";",
        "}",
    ];
    let add_rules: Vec<Vec<&str>> = rules
        .iter()
        .map(|rule| {
            let mut add = vec!["add", "rule", family, "sonda_test", "input"];
            add.extend_from_slice(rule);
            add
        })
        .collect();
    let table = ["add", "table", family, "sonda_test"];
    let mut steps: Vec<&[&str]> = vec![&table, &chain];
    steps.extend(add_rules.iter().map(Vec::as_slice));
    for step in steps {
        match in_ns(ns, "nft", step) {
            Some(out) if out.status.success() => {}
            other => {
                eprintln!(
                    "skipped: `nft {}` failed in the namespace (no nf_tables?): {}",
                    step.join(" "),
                    other.map_or("nft not found".to_string(), |o| {
                        String::from_utf8_lossy(&o.stderr).trim().to_string()
                    })
                );
                return false;
            }
        }
    }
    true
}
