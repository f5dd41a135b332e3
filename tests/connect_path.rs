//! The connect path's addresses and options: `-p` for the source port
//! alone, service names from /etc/services wherever a port goes.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use common::*;

/// python's listener reports the client's port: the one `-p` asked for.
#[test]
fn source_port_alone() {
    require!("python3");
    let script = "import socket\n\
        l=socket.socket(); l.bind(('127.0.0.1',0)); l.listen()\n\
        print(l.getsockname()[1],flush=True)\n\
        c,a=l.accept(); print(a[1],flush=True); c.close()\n";
    let mut h = spawn_cmd(python(script, &[]), Input::Null, Output::Pipe);
    let mut out = h.stdout_pipe();
    let line = out.next_line(LONG).unwrap_or_default();
    let port: u16 = String::from_utf8_lossy(&line).trim().parse().unwrap();
    let want = closed_port("127.0.0.1");
    let f = run(
        &[
            "connect",
            "-p",
            &want.to_string(),
            "127.0.0.1",
            &port.to_string(),
        ],
        Input::Null,
    );
    f.expect_code(0);
    let got = out.next_line(LONG).unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&got).trim(),
        want.to_string(),
        "{}",
        f.dump()
    );
    usage_error(&["connect", "-p", "70000", "127.0.0.1", "80"], "70000");
    let f = run(
        &["connect", "-p", "1", "-s", "127.0.0.1", "127.0.0.1", "80"],
        Input::Null,
    );
    f.expect_code(2);
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
