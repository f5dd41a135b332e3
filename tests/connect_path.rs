//! The connect path's addresses and options: `-p` for the source port
//! alone, service names from /etc/services wherever a port goes.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use common::*;

/// The source port python's listener (or UDP socket) saw for a sonda
/// command run with `args`, then `127.0.0.1 PORT`.
fn source_port_seen(udp: bool, args: &[&str]) -> (String, Finished) {
    let script = if udp {
        "import socket\n\
        u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.bind(('127.0.0.1',0))\n\
        print(u.getsockname()[1],flush=True)\n\
        d,a=u.recvfrom(100); print(a[1],flush=True)\n"
    } else {
        "import socket\n\
        l=socket.socket(); l.bind(('127.0.0.1',0)); l.listen()\n\
        print(l.getsockname()[1],flush=True)\n\
        c,a=l.accept(); print(a[1],flush=True); c.close()\n"
    };
    let mut h = spawn_cmd(python(script, &[]), Input::Null, Output::Pipe);
    let mut out = h.stdout_pipe();
    let line = out.next_line(LONG).unwrap_or_default();
    let port = String::from_utf8_lossy(&line).trim().to_string();
    let mut all = args.to_vec();
    all.extend(["127.0.0.1", &port]);
    let f = run(&all, Input::Null);
    let got = out.next_line(LONG).unwrap_or_default();
    (String::from_utf8_lossy(&got).trim().to_string(), f)
}

/// `-p` alone, `-s ADDR -p PORT` (nc's idiom), every `-z` probe, and
/// udp-send's `-p`: the peer sees the port asked for.
#[test]
fn source_port_alone() {
    require!("python3");
    for (udp, lead) in [
        (false, &["connect", "-p"][..]),
        (false, &["connect", "-s", "127.0.0.1", "-p"][..]),
        (false, &["connect", "-z", "-p"][..]),
        (true, &["udp-send", "--message", "x", "-p"][..]),
        (
            true,
            &["udp-send", "--message", "x", "-s", "127.0.0.1", "-p"][..],
        ),
    ] {
        let want = if udp {
            free_udp_port("127.0.0.1")
        } else {
            closed_port("127.0.0.1")
        }
        .to_string();
        let mut args = lead.to_vec();
        args.push(&want);
        let (got, f) = source_port_seen(udp, &args);
        f.expect_code(0);
        assert_eq!(got, want, "{args:?}\n{}", f.dump());
    }
    usage_error(&["connect", "-p", "70000", "127.0.0.1", "80"], "70000");
    usage_error(&["udp-send", "-p", "70000", "127.0.0.1", "80"], "70000");
    usage_error(
        &["connect", "-p", "1", "-s", "127.0.0.1:5", "127.0.0.1", "80"],
        "-p",
    );
}

#[test]
fn service_names_where_a_port_goes() {
    if !std::path::Path::new("/etc/services").exists() {
        eprintln!("skipped: no /etc/services (Debian's netbase)");
        return;
    }
    // ssh is 22 in every services(5); open or closed here, it is 22.
    let f = run(
        &["-v", "connect", "-z", "-w", "2s", "127.0.0.1", "ssh,http"],
        Input::Null,
    );
    assert!(matches!(f.code(), Some(0) | Some(3)), "{}", f.dump());
    let all = format!("{}{}", String::from_utf8_lossy(&f.stdout), f.stderr);
    assert!(
        all.contains("22/tcp") && all.contains("80/tcp"),
        "{}",
        f.dump()
    );
    usage_error(&["connect", "127.0.0.1", "htp"], "htp");
    usage_error(
        &["listen", "127.0.0.1", "no-such-service"],
        "no-such-service",
    );
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// --mark, --tos and --bind-device as the kernel's socket table shows
/// them (ss -e --tos), on both ends; --ttl as a raw socket sees the
/// packets arrive.
#[test]
fn socket_options_reach_the_socket() {
    require!("ss");
    if !is_root() {
        let f = run(&["connect", "--mark", "5", "127.0.0.1", "1"], Input::Null);
        f.expect_code(1);
        assert!(one_line(&f).contains("CAP_NET_ADMIN"), "{}", f.dump());
        eprintln!("skipped: SO_MARK and SO_BINDTODEVICE need root");
        return;
    }
    let (l, port) = listen(
        "127.0.0.1",
        &["--mark", "0x2a", "--tos", "0xb8"],
        Input::Pipe,
        Output::Null,
    );
    let c = spawn(
        &[
            "connect",
            "--mark",
            "5",
            "--tos",
            "0x20",
            "--bind-device",
            "lo",
            "127.0.0.1",
            &port.to_string(),
        ],
        Input::Pipe,
        Output::Null,
    );
    let table = || {
        let out = std::process::Command::new("ss")
            .args(["-tneH", "--tos", "state", "established"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let client_row = |t: &str| {
        t.lines()
            .find(|l| l.contains(&format!("127.0.0.1:{port} ")) && l.contains("%lo:"))
            .map(str::to_string)
    };
    poll_until(
        LONG,
        || client_row(&table()).is_some(),
        || format!("no client socket bound to lo\n{}", table()),
    );
    let row = client_row(&table()).unwrap();
    assert!(
        row.contains("fwmark:0x5") && row.contains("tos:0x20"),
        "{row}"
    );
    let t = table();
    let server_row = t
        .lines()
        .find(|l| l.contains(&format!("127.0.0.1:{port} ")) && !l.contains("%lo:"))
        .unwrap_or_default();
    assert!(
        server_row.contains("fwmark:0x2a"),
        "the accepted socket has the listener's mark\n{t}"
    );
    drop(c);
    drop(l);
}

#[test]
fn ttl_on_the_wire() {
    require!("python3");
    if !is_root() {
        eprintln!("skipped: a raw socket to read the TTL needs root");
        return;
    }
    // Sees every TCP segment to the listener's port on loopback and
    // prints the TTL of the first one with data, within 10 s.
    let script = "import socket,sys,time\n\
        port=int(sys.argv[1])\n\
        r=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_TCP); r.settimeout(10)\n\
        print('ready',flush=True)\n\
        end=time.time()+10\n\
        while time.time()<end:\n  \
          p=r.recv(65535); ihl=(p[0]&15)*4\n  \
          dport=int.from_bytes(p[ihl+2:ihl+4],'big'); off=(p[ihl+12]>>4)*4\n  \
          if dport==port and len(p)>ihl+off:\n    \
            print(p[8],flush=True); break\n";
    let (l, port) = listen("127.0.0.1", &[], Input::Null, Output::Null);
    let mut sniff = spawn_cmd(
        python(script, &[&port.to_string()]),
        Input::Null,
        Output::Pipe,
    );
    let mut out = sniff.stdout_pipe();
    assert_eq!(out.next_line(LONG).unwrap_or_default(), b"ready\n");
    let f = run(
        &["connect", "--ttl", "9", "127.0.0.1", &port.to_string()],
        Input::Bytes(b"x".to_vec()),
    );
    f.expect_code(0);
    let ttl = out.next_line(LONG).unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&ttl).trim(),
        "9",
        "{}",
        sniff.dump()
    );
    let _ = l.finish();
    usage_error(&["connect", "--ttl", "0", "127.0.0.1", "80"], "0");
    usage_error(&["connect", "--tos", "256", "127.0.0.1", "80"], "256");
    usage_error(
        &["connect", "--bind-device", "a/b", "127.0.0.1", "80"],
        "a/b",
    );
    let f = run(
        &["connect", "--bind-device", "nosuchif0", "127.0.0.1", "80"],
        Input::Null,
    );
    f.expect_code(1);
    assert!(
        one_line(&f).contains("SO_BINDTODEVICE: no such device"),
        "{}",
        f.dump()
    );
}

/// `nc -z HOST 22 80 8000-8100`: several PORT arguments are one scan.
/// Without -z a second PORT is a usage error naming it.
#[test]
fn scan_takes_several_port_arguments() {
    let (l, open) = listen("127.0.0.1", &["-k", "--sink"], Input::Null, Output::Null);
    let closed = closed_port("127.0.0.1");
    let (o, c) = (open.to_string(), closed.to_string());
    let f = run(&["-v", "connect", "-z", "127.0.0.1", &c, &o], Input::Null);
    f.expect_code(0);
    let out = String::from_utf8_lossy(&f.stdout);
    assert!(out.contains(&format!("{open}/tcp open")), "{}", f.dump());
    assert!(
        out.contains(&format!("{closed}/tcp closed")),
        "{}",
        f.dump()
    );
    assert!(f.stderr.contains("scanned 2 tcp ports"), "{}", f.dump());
    usage_error(&["connect", "127.0.0.1", &o, &c], &c);
    usage_error(&["connect", "--tls", "-z", "127.0.0.1", &o, &c], &c);
    l.signal(libc::SIGTERM);
}

/// A flag without its value says so and nothing more (clap's empty list
/// of accepted values once trailed "one of "); `--hexdump FILE`, as ncat
/// takes its --hex-dump, is told to be `--hexdump=FILE`.
#[test]
fn usage_errors_say_what_was_meant() {
    for args in [
        &["connect", "--proxy"][..],
        &["connect", "--tos"][..],
        &["udp-recv", "--join"][..],
        &["bench", "--receiver"][..],
    ] {
        let f = run(args, Input::Null);
        f.expect_code(2);
        let line = one_line(&f);
        assert!(line.contains("a value is required"), "{}", f.dump());
        assert!(!line.contains("one of"), "{}", f.dump());
    }
    let f = run(
        &["connect", "--hexdump", "/tmp/x", "127.0.0.1", "5"],
        Input::Null,
    );
    f.expect_code(2);
    assert!(one_line(&f).contains("--hexdump=FILE"), "{}", f.dump());
}
