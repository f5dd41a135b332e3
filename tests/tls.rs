//! TLS: `connect --tls` and `listen --tls` against peers nobody here wrote
//! (openssl s_server/s_client, socat OPENSSL, ncat --ssl, python's ssl) and
//! against each other, over a test PKI made here with rcgen: a root, an
//! intermediate, a leaf for localhost/127.0.0.1/::1, an expired leaf, a
//! leaf for another name, a self-signed leaf and a client certificate.
//! Every verdict has its exit code; the fingerprints printed are checked
//! against the SHA-256 the test computes from the DER.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use sha2::{Digest, Sha256};

/// A certificate made for the tests, written as PEM files.
struct Made {
    cert: PathBuf,
    key: PathBuf,
    der: Vec<u8>,
}

impl Made {
    fn sha256(&self) -> String {
        hex(&Sha256::digest(&self.der))
    }
}

struct Pki {
    dir: tempfile::TempDir,
    root: Made,
    /// Leaf + intermediate, as a server sends them.
    leaf: Made,
    expired: Made,
    not_yet_valid: Made,
    /// The leaf with one bit of its signature flipped.
    bad_signature: Made,
    wrong_name: Made,
    self_signed: Made,
    client: Made,
}

fn days(n: i64) -> SystemTime {
    let now = SystemTime::now();
    if n >= 0 {
        now + Duration::from_secs(n as u64 * 86_400)
    } else {
        now - Duration::from_secs((-n) as u64 * 86_400)
    }
}

fn write(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, pem).unwrap();
    p
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    text.as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.not_before = days(-1).into();
    p.not_after = days(3650).into();
    p
}

fn leaf_params(cn: &str, names: &[&str], from: i64, to: i64) -> CertificateParams {
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.not_before = days(from).into();
    p.not_after = days(to).into();
    p
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let root_key = KeyPair::generate().unwrap();
    let root_cert = ca_params("sonda test root").self_signed(&root_key).unwrap();
    let root = Made {
        cert: write(&d, "root.pem", &root_cert.pem()),
        key: write(&d, "root.key", &root_key.serialize_pem()),
        der: root_cert.der().to_vec(),
    };
    let int_key = KeyPair::generate().unwrap();
    let int_cert = ca_params("sonda test intermediate")
        .signed_by(&int_key, &root_cert, &root_key)
        .unwrap();
    let int_pem = int_cert.pem();
    let leaf = |name: &str, params: CertificateParams| {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &int_cert, &int_key).unwrap();
        Made {
            cert: write(&d, &format!("{name}.pem"), &(cert.pem() + &int_pem)),
            key: write(&d, &format!("{name}.key"), &key.serialize_pem()),
            der: cert.der().to_vec(),
        }
    };
    let names = ["localhost", "127.0.0.1", "::1"];
    let ss_key = KeyPair::generate().unwrap();
    let ss_cert = leaf_params("self-signed", &names, -1, 30)
        .self_signed(&ss_key)
        .unwrap();
    Pki {
        leaf: leaf("leaf", leaf_params("localhost", &names, -1, 365)),
        expired: leaf("expired", leaf_params("localhost", &names, -30, -2)),
        not_yet_valid: leaf("future", leaf_params("localhost", &names, 2, 30)),
        bad_signature: {
            let good = leaf("tampered", leaf_params("localhost", &names, -1, 365));
            let mut der = good.der.clone();
            let last = der.len() - 1;
            der[last] ^= 1;
            let pem = format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n{int_pem}",
                base64_lines(&der)
            );
            std::fs::write(&good.cert, pem).unwrap();
            Made { der, ..good }
        },
        wrong_name: leaf("wrong", leaf_params("other", &["other.example"], -1, 365)),
        client: leaf(
            "client",
            leaf_params("sonda test client", &["client"], -1, 365),
        ),
        self_signed: Made {
            cert: write(&d, "ss.pem", &ss_cert.pem()),
            key: write(&d, "ss.key", &ss_key.serialize_pem()),
            der: ss_cert.der().to_vec(),
        },
        root,
        dir,
    }
}

/// `openssl s_server` on a free loopback port with `made`'s chain; gone
/// when the returned `Running` drops.
fn s_server(made: &Made, extra: &[&str]) -> (Running, u16) {
    let port = closed_port("127.0.0.1");
    let mut cmd = Command::new("openssl");
    cmd.args(["s_server", "-quiet", "-naccept", "50", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&made.cert)
        .arg("-key")
        .arg(&made.key)
        // -cert sends only the leaf; the chain file adds the intermediate.
        .arg("-cert_chain")
        .arg(&made.cert)
        .args(extra);
    let r = spawn_cmd(cmd, Input::Pipe, Output::Null);
    wait_tcp_listen(Loop::V4, port);
    (r, port)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn handshake(args: &[&str]) -> Finished {
    let mut all = vec!["connect", "--tls", "-z", "-w", "10s"];
    all.extend_from_slice(args);
    run(&all, Input::Null)
}

#[test]
fn a_trusted_chain_is_exit_0_and_the_report_names_its_facts() {
    require!("openssl");
    let pki = pki();
    let (_srv, port) = s_server(&pki.leaf, &[]);
    let port = port.to_string();
    let f = handshake(&["--ca", p(&pki.root.cert), "localhost", &port]);
    f.expect_code(0);
    let out = String::from_utf8_lossy(&f.stdout);
    for fact in [
        "TLS 1.3",
        "SNI localhost",
        "trusted:",
        "matched: DNS:localhost",
    ] {
        assert!(out.contains(fact), "no {fact:?} in\n{}", f.dump());
    }
    assert!(out.contains(&pki.leaf.sha256()), "{}", f.dump());
    // The JSON carries the same facts; an IP literal sends no SNI and
    // matches an IP SAN.
    let f = handshake(&["--ca", p(&pki.root.cert), "--json", "127.0.0.1", &port]);
    f.expect_code(0);
    let j: serde_json::Value = serde_json::from_slice(&f.stdout).expect("one JSON object");
    assert_eq!(j["trusted"], true, "{j}");
    assert_eq!(j["sni"], serde_json::Value::Null, "{j}");
    assert_eq!(j["matched_san"]["value"], "127.0.0.1", "{j}");
    assert_eq!(j["version"], "TLS 1.3", "{j}");
    assert_eq!(j["chain"][0]["sha256"], pki.leaf.sha256(), "{j}");
    assert!(j["chain"][0]["days_left"].as_i64().unwrap() >= 363, "{j}");
    assert!(
        j["cipher_suite"].as_str().unwrap().starts_with("TLS13_"),
        "{j}"
    );
}

#[test]
fn every_verdict_has_its_reason_and_exit_7() {
    require!("openssl");
    let pki = pki();
    let ca = p(&pki.root.cert).to_string();
    let cases: [(&Made, &[&str], &str); 6] = [
        (&pki.leaf, &[], "unknown issuer"),
        (&pki.expired, &["--ca", &ca], "expired"),
        (&pki.not_yet_valid, &["--ca", &ca], "not valid yet"),
        (&pki.bad_signature, &["--ca", &ca], "bad signature"),
        (&pki.wrong_name, &["--ca", &ca], "name mismatch"),
        (&pki.self_signed, &["--ca", &ca], "unknown issuer"),
    ];
    for (made, flags, reason) in cases {
        let (_srv, port) = s_server(made, &[]);
        let port = port.to_string();
        let mut args = flags.to_vec();
        args.extend_from_slice(&["localhost", &port]);
        let f = handshake(&args);
        f.expect_code(7);
        assert!(
            String::from_utf8_lossy(&f.stdout).contains("NOT trusted"),
            "{}",
            f.dump()
        );
        assert!(one_line(&f).contains(reason), "{reason}: {}", f.dump());
        assert_no_panic(&f);
        // The relay refuses too, and sends nothing.
        let mut args = vec!["connect", "--tls"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["localhost", &port]);
        let f = run(&args, Input::Bytes(b"never sent".to_vec()));
        f.expect_code(7);
        assert!(one_line(&f).contains(reason), "{reason}: {}", f.dump());
    }
}

/// No Rust names (`CertificateRequired`, `MissingData("..")`) in what a
/// user reads: every word of stderr is plain.
fn assert_plain_words(f: &Finished) {
    let err = &f.stderr;
    // Paths (temporary directories) are the user's own words.
    let camel = err
        .split_whitespace()
        .filter(|t| !t.contains('/'))
        // X.509's own names for its fields.
        .filter(|t| {
            !["basicConstraints", "notBefore", "notAfter"]
                .iter()
                .any(|x| t.contains(x))
        })
        .flat_map(|t| t.split(|c: char| !c.is_alphanumeric()))
        .find(|w| {
            w.chars().skip(1).any(|c| c.is_ascii_uppercase())
                && w.chars().any(|c| c.is_ascii_lowercase())
        });
    assert!(
        camel.is_none() && !err.contains('{'),
        "debug text on stderr: {camel:?}\n{}",
        f.dump()
    );
}

/// webpki names only the first problem, and checks dates before it looks
/// for an issuer; the report names the rest too, and the certificate each
/// date belongs to.
#[test]
fn problems_behind_the_first_are_named_in_plain_words() {
    require!("openssl");
    let pki = pki();
    let ca = p(&pki.root.cert).to_string();
    let (_srv, port) = s_server(&pki.expired, &[]);
    let port_s = port.to_string();
    let f = handshake(&["localhost", &port_s]);
    f.expect_code(7);
    let line = one_line(&f);
    assert!(
        line.contains("the leaf (CN=localhost) has expired"),
        "{}",
        f.dump()
    );
    assert!(line.contains("unknown issuer"), "{}", f.dump());
    assert_plain_words(&f);
    let f = handshake(&[
        "--ca",
        &ca,
        "--servername",
        "other.example",
        "localhost",
        &port_s,
    ]);
    f.expect_code(7);
    assert!(
        one_line(&f).contains("expired") && one_line(&f).contains("name mismatch"),
        "{}",
        f.dump()
    );
    assert!(!one_line(&f).contains("unknown issuer"), "{}", f.dump());
    // The JSON carries the same reasons.
    let f = handshake(&["--json", "localhost", &port_s]);
    let j: serde_json::Value = serde_json::from_slice(&f.stdout).unwrap();
    let reasons = j["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 2, "{j}");
    // A CA certificate served as the leaf (what a bare `openssl req -x509`
    // makes).
    let (_srv, port) = s_server(&pki.root, &[]);
    let f = handshake(&["--ca", &ca, "localhost", &port.to_string()]);
    f.expect_code(7);
    assert!(one_line(&f).contains("is a CA certificate"), "{}", f.dump());
    assert_plain_words(&f);
    // --tls-min 1.3 against a TLS 1.2 server names the version asked for.
    let (_srv, port) = s_server(&pki.leaf, &["-tls1_2"]);
    let f = handshake(&[
        "--ca",
        &ca,
        "--tls-min",
        "1.3",
        "localhost",
        &port.to_string(),
    ]);
    f.expect_code(7);
    assert!(
        one_line(&f).contains("does not speak TLS 1.3"),
        "{}",
        f.dump()
    );
    assert_plain_words(&f);
    // A client certificate the server requires and did not get.
    let (mut l, lport) = listen(
        "127.0.0.1",
        &[
            "--tls",
            "--cert",
            p(&pki.leaf.cert),
            "--key",
            p(&pki.leaf.key),
            "--client-ca",
            &ca,
        ],
        Input::Null,
        Output::Null,
    );
    let f = run(
        &[
            "connect",
            "--tls",
            "--ca",
            &ca,
            "localhost",
            &lport.to_string(),
        ],
        Input::Bytes(b"x".to_vec()),
    );
    f.expect_code(7);
    assert!(
        one_line(&f).contains("requires a client certificate"),
        "{}",
        f.dump()
    );
    assert_plain_words(&f);
    let lf = l.finish_within(LONG);
    assert_plain_words(&lf);
    // The report to a full stdout is an error, as any stdout is.
    let (_srv, port) = s_server(&pki.leaf, &[]);
    let f = spawn(
        &[
            "connect",
            "--tls",
            "-z",
            "--ca",
            &ca,
            "localhost",
            &port.to_string(),
        ],
        Input::Null,
        Output::File("/dev/full".into()),
    )
    .finish();
    f.expect_code(1);
    assert!(one_line(&f).contains("write to stdout"), "{}", f.dump());
}

/// Key files in words: one that does not fit the certificate, an
/// encrypted one, a PEM body that is not base64.
#[test]
fn key_and_pem_problems_are_named() {
    require!("openssl");
    let pki = pki();
    let d = pki.dir.path();
    let serve = |cert: &Path, key: &Path| {
        run(
            &[
                "listen",
                "--tls",
                "--cert",
                p(cert),
                "--key",
                p(key),
                "127.0.0.1",
                "0",
            ],
            Input::Null,
        )
    };
    let f = serve(&pki.leaf.cert, &pki.client.key);
    f.expect_code(1);
    assert!(
        one_line(&f).contains("does not belong to the certificate"),
        "{}",
        f.dump()
    );
    let enc = d.join("enc.key");
    let st = Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes256",
            "-passout",
            "pass:secret",
            "-in",
        ])
        .arg(&pki.leaf.key)
        .arg("-out")
        .arg(&enc)
        .status()
        .unwrap();
    assert!(st.success());
    let f = serve(&pki.leaf.cert, &enc);
    f.expect_code(1);
    assert!(
        one_line(&f).contains("encrypted") && one_line(&f).contains("enc.key"),
        "{}",
        f.dump()
    );
    let bad = write(
        d,
        "bad.pem",
        "-----BEGIN CERTIFICATE-----\nnot!base64\n-----END CERTIFICATE-----\n",
    );
    let f = serve(&bad, &pki.leaf.key);
    f.expect_code(1);
    assert!(
        one_line(&f).contains("not valid base64") && one_line(&f).contains("bad.pem"),
        "{}",
        f.dump()
    );
    for f in [serve(&pki.leaf.cert, &pki.client.key), serve(&enc, &enc)] {
        assert_plain_words(&f);
    }
}

#[test]
fn a_pin_trusts_exactly_that_leaf() {
    require!("openssl");
    let pki = pki();
    let (_srv, port) = s_server(&pki.self_signed, &[]);
    let port = port.to_string();
    let pin = pki.self_signed.sha256();
    handshake(&["--pin-sha256", &pin, "localhost", &port]).expect_code(0);
    // openssl's spelling, upper case with colons, is the same pin.
    let colons: Vec<String> = pin
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_uppercase())
        .collect();
    handshake(&["--pin-sha256", &colons.join(":"), "localhost", &port]).expect_code(0);
    let f = handshake(&["--pin-sha256", &pki.leaf.sha256(), "localhost", &port]);
    f.expect_code(7);
    assert!(one_line(&f).contains("--pin-sha256"), "{}", f.dump());
    usage_error(
        &["connect", "--tls", "--pin-sha256", "abc", "localhost", "1"],
        "abc",
    );
}

/// A python ssl server with `made`'s chain on a free port, for one
/// client. `mode`: `send FILE` (send it, close_notify, close), `abrupt
/// FILE` (send it, close without close_notify), `echo` (echo to EOF, then
/// close_notify), `verify CA` (require a client certificate from CA, print
/// its subject's CN, echo).
fn py_tls_server(made: &Made, mode: &[&str]) -> (Running, u16) {
    let script = "import socket,ssl,sys\n\
        ctx=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[1],sys.argv[2])\n\
        mode=sys.argv[3:]\n\
        l=socket.socket(); l.bind(('127.0.0.1',0)); l.listen()\n\
        print(l.getsockname()[1],flush=True)\n\
        c,_=l.accept(); s=ctx.wrap_socket(c,server_side=True)\n\
        if mode[0]=='echo':\n  \
          while True:\n    \
            d=s.recv(65536)\n    \
            if not d: break\n    \
            s.sendall(d)\n  \
          s.unwrap()\n\
        else:\n  \
          s.sendall(open(mode[1],'rb').read())\n  \
          if mode[0]=='send': s.unwrap()\n\
        c.close()\n";
    let mut args = vec![p(&made.cert), p(&made.key)];
    args.extend_from_slice(mode);
    port_holder(python(script, &args))
}

fn payload(pki: &Pki, data: &[u8]) -> PathBuf {
    let path = pki.dir.path().join("payload");
    std::fs::write(&path, data).unwrap();
    path
}

/// `sonda connect --tls --recv-only EXTRA localhost PORT`: the server's
/// bytes, to its end.
fn receive(extra: &[&str], port: u16) -> Finished {
    let port = port.to_string();
    let mut args = vec!["connect", "--tls", "--recv-only"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["localhost", &port]);
    run(&args, Input::Null)
}

#[test]
fn insecure_relays_with_a_warning_naming_the_problem() {
    require!("python3");
    let pki = pki();
    let data = random_bytes(1 << 20, 7);
    let file = payload(&pki, &data);
    let (_srv, port) = py_tls_server(&pki.expired, &["send", p(&file)]);
    let f = receive(&["--insecure"], port);
    f.expect_code(0);
    assert_eq!(sha256(&f.stdout), sha256(&data));
    assert!(
        f.stderr.contains("expired") && f.stderr.contains("--insecure"),
        "{}",
        f.dump()
    );
}

/// The server's close_notify is EOF (exit 0); a close without one is
/// reported (exit 1), though every byte that came is on stdout.
#[test]
fn a_close_without_close_notify_is_reported_as_truncation() {
    require!("python3");
    let pki = pki();
    let ca = p(&pki.root.cert).to_string();
    let data = random_bytes(3 << 20, 11);
    let file = payload(&pki, &data);
    let (_srv, port) = py_tls_server(&pki.leaf, &["send", p(&file)]);
    let f = receive(&["--ca", &ca], port);
    f.expect_code(0);
    assert_eq!(sha256(&f.stdout), sha256(&data));
    let (_srv, port) = py_tls_server(&pki.leaf, &["abrupt", p(&file)]);
    let f = receive(&["--ca", &ca], port);
    f.expect_code(1);
    assert!(
        one_line(&f).contains("without a TLS close_notify"),
        "{}",
        f.dump()
    );
    assert_eq!(sha256(&f.stdout), sha256(&data));
}

/// Both directions at once through python's echo: byte-exact, stdin's
/// EOF sends close_notify, the echo's close_notify ends the session.
#[test]
fn echo_through_python_ssl_is_byte_exact() {
    require!("python3");
    let pki = pki();
    let data = random_bytes(8 << 20, 3);
    let (_srv, port) = py_tls_server(&pki.leaf, &["echo"]);
    let port = port.to_string();
    let f = run(
        &[
            "connect",
            "--tls",
            "--ca",
            p(&pki.root.cert),
            "localhost",
            &port,
        ],
        Input::Bytes(data.clone()),
    );
    f.expect_code(0);
    assert_eq!(f.stdout.len(), data.len(), "{}", f.dump());
    assert_eq!(sha256(&f.stdout), sha256(&data));
}

/// sonda to sonda with the ephemeral certificate: the fingerprint printed
/// is the certificate's, a pin on it is trusted, and bytes go both ways.
#[test]
fn listen_tls_with_an_ephemeral_certificate_and_a_pinned_client() {
    let to_listener = random_bytes(4 << 20, 1);
    let to_client = random_bytes(3 << 20, 2);
    let (mut l, port) = listen(
        "127.0.0.1",
        &["--tls"],
        Input::Bytes(to_client.clone()),
        Output::Capture,
    );
    let fp = ephemeral_pin(&mut l);
    let port_s = port.to_string();
    let f = handshake(&["--pin-sha256", &fp, "--json", "127.0.0.1", &port_s]);
    // The one-client listener took the handshake as its client.
    f.expect_code(0);
    let j: serde_json::Value = serde_json::from_slice(&f.stdout).unwrap();
    assert_eq!(j["chain"][0]["sha256"], fp.as_str(), "{j}");
    assert!(
        j["chain"][0]["key"]
            .as_str()
            .unwrap()
            .starts_with("ECDSA P-256"),
        "{j}"
    );
    let _ = l.finish();
    let (l, port) = listen(
        "127.0.0.1",
        &["--tls"],
        Input::Bytes(to_client.clone()),
        Output::Capture,
    );
    let mut l = l;
    let fp = ephemeral_pin(&mut l);
    let port = port.to_string();
    let c = run(
        &["connect", "--tls", "--pin-sha256", &fp, "127.0.0.1", &port],
        Input::Bytes(to_listener.clone()),
    );
    c.expect_code(0);
    let lf = l.finish();
    lf.expect_code(0);
    assert_eq!(sha256(&lf.stdout), sha256(&to_listener));
    assert_eq!(sha256(&c.stdout), sha256(&to_client));
    // Without the pin the self-signed certificate is not trusted.
    let (mut l, port) = listen("127.0.0.1", &["--tls"], Input::Null, Output::Null);
    l.wait_for_stderr("ephemeral");
    let f = handshake(&["127.0.0.1", &port.to_string()]);
    f.expect_code(7);
    assert!(one_line(&f).contains("unknown issuer"), "{}", f.dump());
}

/// python's ssl client verifies sonda's chain and sends a file; openssl
/// s_client does the handshake and gets the listener's bytes.
#[test]
fn python_and_openssl_clients_against_listen_tls() {
    require!("python3");
    let pki = pki();
    let data = random_bytes(2 << 20, 5);
    let (l, port) = listen(
        "127.0.0.1",
        &[
            "--tls",
            "--cert",
            p(&pki.leaf.cert),
            "--key",
            p(&pki.leaf.key),
        ],
        Input::Null,
        Output::Capture,
    );
    let file = payload(&pki, &data);
    let st = python(
        "import socket,ssl,sys\n\
         ctx=ssl.create_default_context(cafile=sys.argv[1])\n\
         s=ctx.wrap_socket(socket.create_connection(('127.0.0.1',int(sys.argv[2]))),server_hostname='localhost')\n\
         s.sendall(open(sys.argv[3],'rb').read()); s=s.unwrap(); s.close()\n",
        &[p(&pki.root.cert), &port.to_string(), p(&file)],
    )
    .status()
    .unwrap();
    assert!(st.success());
    let f = l.finish();
    f.expect_code(0);
    assert_eq!(sha256(&f.stdout), sha256(&data));
    if !have("openssl") {
        eprintln!("skipped: openssl is not installed");
        return;
    }
    let (l, port) = listen(
        "127.0.0.1",
        &[
            "--tls",
            "--cert",
            p(&pki.leaf.cert),
            "--key",
            p(&pki.leaf.key),
        ],
        Input::Bytes(b"hello from sonda\n".to_vec()),
        Output::Null,
    );
    let out = Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error", "-CAfile"])
        .arg(&pki.root.cert)
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hello from sonda"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    l.finish().expect_code(0);
}

#[test]
fn socat_and_ncat_peers_are_byte_exact() {
    let pki = pki();
    let data = random_bytes(4 << 20, 9);
    let ca = p(&pki.root.cert).to_string();
    if have("socat") {
        let port = closed_port("127.0.0.1");
        let out = pki.dir.path().join("socat.out");
        let srv = spawn_cmd(
            {
                let mut c = Command::new("socat");
                c.arg("-u")
                    .arg(format!(
                        "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,cert={},key={},verify=0",
                        p(&pki.leaf.cert),
                        p(&pki.leaf.key)
                    ))
                    .arg(format!("CREATE:{}", p(&out)));
                c
            },
            Input::Null,
            Output::Null,
        );
        wait_tcp_listen(Loop::V4, port);
        let f = run(
            &[
                "connect",
                "--tls",
                "--ca",
                &ca,
                "localhost",
                &port.to_string(),
            ],
            Input::Bytes(data.clone()),
        );
        f.expect_code(0);
        srv.finish().expect_code(0);
        assert_eq!(sha256(&std::fs::read(&out).unwrap()), sha256(&data));
    } else {
        eprintln!("skipped: socat is not installed");
    }
    if have("ncat") {
        let port = closed_port("127.0.0.1");
        let file = payload(&pki, &data);
        let mut cmd = Command::new("ncat");
        cmd.args([
            "--ssl",
            "--ssl-cert",
            p(&pki.leaf.cert),
            "--ssl-key",
            p(&pki.leaf.key),
        ])
        .args(["--send-only", "-l", "127.0.0.1", &port.to_string()]);
        let srv = spawn_cmd(cmd, Input::File(file), Output::Null);
        wait_tcp_listen(Loop::V4, port);
        let f = receive(&["--ca", &ca], port);
        drop(srv);
        // ncat closes without close_notify: all the bytes, and the report.
        assert_eq!(sha256(&f.stdout), sha256(&data), "{}", f.dump());
        assert!(matches!(f.code(), Some(0) | Some(1)), "{}", f.dump());
    } else {
        eprintln!("skipped: ncat is not installed");
    }
}

/// --client-ca: a client with a certificate from that CA is named with
/// -v; one without is refused (exit 7 on the listener).
#[test]
fn client_certificates_are_required_and_named() {
    let pki = pki();
    let listen_args = [
        "--tls",
        "--cert",
        p(&pki.leaf.cert),
        "--key",
        p(&pki.leaf.key),
        "--client-ca",
        p(&pki.root.cert),
    ];
    let (mut l, port) = listen("127.0.0.1", &listen_args, Input::Null, Output::Capture);
    let port_s = port.to_string();
    let c = run(
        &[
            "connect",
            "--tls",
            "--ca",
            p(&pki.root.cert),
            "--cert",
            p(&pki.client.cert),
            "--key",
            p(&pki.client.key),
            "localhost",
            &port_s,
        ],
        Input::Bytes(b"with a certificate".to_vec()),
    );
    c.expect_code(0);
    let line = l.wait_for_stderr("client certificate");
    assert!(line.contains("sonda test client"), "{line}");
    let f = l.finish();
    f.expect_code(0);
    assert_eq!(f.stdout, b"with a certificate");
    let (l, port) = listen("127.0.0.1", &listen_args, Input::Null, Output::Capture);
    let c = run(
        &[
            "connect",
            "--tls",
            "--ca",
            p(&pki.root.cert),
            "localhost",
            &port.to_string(),
        ],
        Input::Bytes(b"without".to_vec()),
    );
    let f = l.finish();
    f.expect_code(7);
    assert!(f.stdout.is_empty());
    assert_ne!(c.code(), Some(0), "{}", c.dump());
    assert_no_panic(&c);
}

#[test]
fn a_peer_that_does_not_speak_tls_or_never_answers() {
    require!("python3");
    // A plaintext banner instead of a ServerHello.
    let (_srv, port) = port_holder(python(
        "import socket\n\
         l=socket.socket(); l.bind(('127.0.0.1',0)); l.listen()\n\
         print(l.getsockname()[1],flush=True)\n\
         c,_=l.accept(); c.sendall(b'SSH-2.0-OpenSSH_9.2\\r\\n'); c.recv(4096); c.close()\n",
        &[],
    ));
    let f = handshake(&["127.0.0.1", &port.to_string()]);
    f.expect_code(7);
    assert!(one_line(&f).contains("does not speak TLS"), "{}", f.dump());
    // Accepts and says nothing: -w bounds the handshake (exit 4).
    let (_srv, port) = port_holder(python(
        "import socket,sys\n\
         l=socket.socket(); l.bind(('127.0.0.1',0)); l.listen()\n\
         print(l.getsockname()[1],flush=True)\n\
         c,_=l.accept(); sys.stdin.read()\n",
        &[],
    ));
    let f = run(
        &[
            "connect",
            "--tls",
            "-w",
            "1s",
            "127.0.0.1",
            &port.to_string(),
        ],
        Input::Null,
    );
    f.expect_code(4);
    assert!(one_line(&f).contains("handshake timed out"), "{}", f.dump());
}

#[test]
fn bad_tls_files_and_flags() {
    let pki = pki();
    let missing = pki.dir.path().join("missing.pem");
    let garbage = write(pki.dir.path(), "garbage.pem", "not a certificate\n");
    for (flags, named) in [
        (vec!["--ca", p(&missing)], p(&missing).to_string()),
        (vec!["--ca", p(&garbage)], p(&garbage).to_string()),
        (
            vec!["--cert", p(&pki.leaf.cert), "--key", p(&garbage)],
            p(&garbage).to_string(),
        ),
    ] {
        let mut args = vec!["connect", "--tls"];
        args.extend_from_slice(&flags);
        args.extend_from_slice(&["127.0.0.1", "1"]);
        let f = run(&args, Input::Null);
        f.expect_code(1);
        assert!(one_line(&f).contains(&named), "{}", f.dump());
    }
    let f = run(
        &[
            "listen",
            "--tls",
            "--cert",
            p(&garbage),
            "--key",
            p(&pki.leaf.key),
            "127.0.0.1",
            "0",
        ],
        Input::Null,
    );
    f.expect_code(1);
    assert!(one_line(&f).contains(p(&garbage)), "{}", f.dump());
    for args in [
        &["connect", "--tls", "--cert", "c.pem", "127.0.0.1", "1"][..],
        &["connect", "--ca", "c.pem", "127.0.0.1", "1"],
        &["listen", "--tls", "--key", "k.pem", "0"],
        &["connect", "--tls", "--tls-min", "1.1", "127.0.0.1", "1"],
        &["connect", "--tls", "-z", "--udp", "127.0.0.1", "1"],
        &["connect", "--tls", "-z", "127.0.0.1", "443,8443"],
    ] {
        let f = run(args, Input::Null);
        f.expect_code(2);
        assert_no_panic(&f);
    }
}

/// sonda's echo to sonda, 16 MiB both ways at once: neither side stops
/// reading while its writes wait, so the two cannot stall each other.
#[test]
fn sonda_echo_over_tls_both_ways_at_once() {
    let data = random_bytes(16 << 20, 21);
    let (mut l, port) = listen("127.0.0.1", &["--tls", "--echo"], Input::Null, Output::Null);
    let fp = ephemeral_pin(&mut l);
    let f = run(
        &[
            "connect",
            "--tls",
            "--pin-sha256",
            &fp,
            "127.0.0.1",
            &port.to_string(),
        ],
        Input::Bytes(data.clone()),
    );
    f.expect_code(0);
    assert_eq!(sha256(&f.stdout), sha256(&data));
    l.finish().expect_code(0);
}

/// --idle-timeout holds over TLS even when a client sends part of a record
/// and stops (a read waiting for the rest would wait for ever).
#[test]
fn a_partial_record_does_not_defeat_the_idle_timeout() {
    require!("python3");
    let (mut l, port) = listen(
        "127.0.0.1",
        &["--tls", "--sink", "--idle-timeout", "1s"],
        Input::Null,
        Output::Null,
    );
    l.wait_for_stderr("ephemeral");
    let mut py = python(
        "import socket,ssl,sys,os\n\
         ctx=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname=False; ctx.verify_mode=ssl.CERT_NONE\n\
         s=ctx.wrap_socket(socket.create_connection(('127.0.0.1',int(sys.argv[1]))))\n\
         s.sendall(b'whole record')\n\
         os.write(s.fileno(), b'\\x17\\x03')\n\
         print('sent',flush=True); sys.stdin.read()\n",
        &[&port.to_string()],
    )
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let f = l.finish_within(Duration::from_secs(20));
    let _ = py.kill();
    let _ = py.wait();
    f.expect_code(4);
    assert!(f.stderr.contains("--idle-timeout"), "{}", f.dump());
}

#[test]
fn a_peer_that_drops_the_client_hello_is_exit_7() {
    require!("python3");
    let (_srv, port) = port_holder(python(
        "import socket\n\
         l=socket.socket(); l.bind(('127.0.0.1',0)); l.listen()\n\
         print(l.getsockname()[1],flush=True)\n\
         c,_=l.accept(); c.recv(4096); c.close()\n",
        &[],
    ));
    let f = handshake(&["127.0.0.1", &port.to_string()]);
    f.expect_code(7);
    assert!(
        one_line(&f).contains("during the handshake"),
        "{}",
        f.dump()
    );
    usage_error(
        &["connect", "--tls", "--seqpacket", "-U", "/tmp/x.sock"],
        "--seqpacket",
    );
}

/// A python STARTTLS server for `proto`: the plaintext preamble, then TLS
/// with `made`'s chain, then an echo to EOF. With `inject`, the go-ahead
/// comes with extra bytes in the same write.
fn starttls_server(made: &Made, proto: &str, inject: bool) -> (Running, u16) {
    let script = "import socket,ssl,sys\n\
        ctx=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[1],sys.argv[2])\n\
        proto=sys.argv[3]; extra=b'250 injected\\r\\n' if sys.argv[4]=='1' else b''\n\
        l=socket.socket(); l.bind(('127.0.0.1',0)); l.listen()\n\
        print(l.getsockname()[1],flush=True)\n\
        c,_=l.accept(); f=c.makefile('rb')\n\
        def line(): return f.readline()\n\
        if proto=='smtp':\n  \
          c.sendall(b'220 mail ESMTP\\r\\n'); line(); c.sendall(b'250-mail\\r\\n250-SIZE 1000\\r\\n250 STARTTLS\\r\\n'); line(); c.sendall(b'220 go ahead\\r\\n'+extra)\n\
        elif proto=='imap':\n  \
          c.sendall(b'* OK IMAP ready\\r\\n'); line(); c.sendall(b'a1 OK Begin TLS\\r\\n'+extra)\n\
        elif proto=='pop3':\n  \
          c.sendall(b'+OK POP3 ready\\r\\n'); line(); c.sendall(b'+OK Begin TLS\\r\\n'+extra)\n\
        elif proto=='ftp':\n  \
          c.sendall(b'220 FTP ready\\r\\n'); line(); c.sendall(b'234 AUTH TLS ok\\r\\n'+extra)\n\
        elif proto=='postgres':\n  \
          f.read(8); c.sendall(b'S'+extra)\n\
        if extra: c.recv(4096); sys.exit(0)\n\
        s=ctx.wrap_socket(c,server_side=True)\n\
        while True:\n  \
          d=s.recv(65536)\n  \
          if not d: break\n  \
          s.sendall(d)\n\
        s.unwrap(); c.close()\n";
    port_holder(python(
        script,
        &[
            p(&made.cert),
            p(&made.key),
            proto,
            if inject { "1" } else { "0" },
        ],
    ))
}

#[test]
fn starttls_for_each_protocol_then_a_verified_relay() {
    require!("python3");
    let pki = pki();
    let data = random_bytes(1 << 20, 31);
    for proto in ["smtp", "imap", "pop3", "ftp", "postgres"] {
        let (_srv, port) = starttls_server(&pki.leaf, proto, false);
        let f = run(
            &[
                "-v",
                "connect",
                "--tls",
                "--starttls",
                proto,
                "--ca",
                p(&pki.root.cert),
                "localhost",
                &port.to_string(),
            ],
            Input::Bytes(data.clone()),
        );
        f.expect_code(0);
        assert_eq!(sha256(&f.stdout), sha256(&data), "{proto}: {}", f.dump());
        assert!(
            f.stderr.contains(&format!("{proto}: C: ")),
            "{proto}: {}",
            f.dump()
        );
    }
}

/// STARTTLS through a SOCKS5 proxy (microsocks): the preamble, the
/// handshake and the verified session all run over the tunnel. microsocks
/// closes both ways when one ends, so the dialogue is lock-step.
#[test]
fn starttls_through_a_socks5_proxy() {
    require!("python3");
    require!("microsocks");
    let pki = pki();
    let proxy_port = closed_port("127.0.0.1");
    let mut cmd = Command::new("microsocks");
    cmd.args(["-i", "127.0.0.1", "-p", &proxy_port.to_string()]);
    let _proxy = spawn_cmd(cmd, Input::Null, Output::Null);
    wait_tcp_listen(Loop::V4, proxy_port);
    for proto in ["smtp", "imap"] {
        let (_srv, port) = starttls_server(&pki.leaf, proto, false);
        let mut c = spawn(
            &[
                "-v",
                "connect",
                "--proxy",
                &format!("socks5://127.0.0.1:{proxy_port}"),
                "--tls",
                "--starttls",
                proto,
                "--ca",
                p(&pki.root.cert),
                "localhost",
                &port.to_string(),
            ],
            Input::Pipe,
            Output::Pipe,
        );
        let mut out = c.stdout_pipe();
        for round in 0..3 {
            let line = format!("{proto} line {round}\n");
            c.stdin
                .as_mut()
                .unwrap()
                .write_all(line.as_bytes())
                .unwrap();
            let got = out.next_line(LONG).unwrap_or_default();
            assert_eq!(got, line.as_bytes(), "{proto}: {}", c.dump());
        }
        let text = c.stderr_now();
        assert!(text.contains("proxy: reply: succeeded"), "{text}");
        assert!(text.contains(&format!("{proto}: C: ")), "{text}");
        assert!(text.contains("verdict       trusted"), "{text}");
        drop(c.stdin.take());
        drop(out);
        let f = c.finish();
        assert_no_panic(&f);
    }
}

/// Bytes after the go-ahead are the response-injection class: exit 7, and
/// none of them reach stdout.
#[test]
fn starttls_refuses_bytes_injected_after_the_go_ahead() {
    require!("python3");
    let pki = pki();
    for proto in ["smtp", "imap", "pop3", "ftp", "postgres"] {
        let (_srv, port) = starttls_server(&pki.leaf, proto, true);
        let f = run(
            &[
                "connect",
                "--tls",
                "--starttls",
                proto,
                "--ca",
                p(&pki.root.cert),
                "localhost",
                &port.to_string(),
            ],
            Input::Null,
        );
        f.expect_code(7);
        assert!(
            one_line(&f).contains("after its go-ahead"),
            "{proto}: {}",
            f.dump()
        );
        assert!(f.stdout.is_empty(), "{proto}: {}", f.dump());
    }
}

/// A server that speaks only TLS 1.1 (which rustls never does) is named
/// as that, not as a generic failure.
#[test]
fn a_legacy_only_server_is_named_as_one() {
    require!("openssl");
    let pki = pki();
    let (_srv, port) = s_server(&pki.leaf, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]);
    let f = handshake(&["--ca", p(&pki.root.cert), "localhost", &port.to_string()]);
    f.expect_code(7);
    assert!(one_line(&f).contains("TLS 1.0 or 1.1"), "{}", f.dump());
    assert!(
        String::from_utf8_lossy(&f.stdout).contains("TLS 1.0 or 1.1"),
        "{}",
        f.dump()
    );
}

/// -z over TLS keeps connect's codes: refused 3, a listener that never
/// accepts within -w 4.
#[test]
fn handshake_report_keeps_the_connect_exit_codes() {
    let port = closed_port("127.0.0.1").to_string();
    let f = handshake(&["127.0.0.1", &port]);
    f.expect_code(3);
    assert_no_panic(&f);
}

/// socat and ncat clients against listen --tls (the other direction of
/// socat_and_ncat_peers_are_byte_exact), and -k serving several at once.
#[test]
fn socat_and_ncat_clients_against_listen_k_tls() {
    let pki = pki();
    let data = random_bytes(2 << 20, 41);
    let file = payload(&pki, &data);
    // These clients never read: a session ticket or a close_notify (sent
    // at stdin's EOF) they left unread would make their close reset the
    // connection and drop their last bytes; --recv-only sends nothing.
    let l = listen(
        "127.0.0.1",
        &[
            "-k",
            "--recv-only",
            "--tls",
            "--cert",
            p(&pki.leaf.cert),
            "--key",
            p(&pki.leaf.key),
        ],
        Input::Null,
        Output::File(pki.dir.path().join("k.out")),
    );
    let (l, port) = l;
    let mut sent = 0;
    if have("socat") {
        let st = Command::new("socat")
            .arg("-u")
            .arg(format!("OPEN:{}", p(&file)))
            .arg(format!(
                "OPENSSL:127.0.0.1:{port},cafile={},commonname=localhost",
                p(&pki.root.cert)
            ))
            .status()
            .unwrap();
        assert!(st.success());
        sent += 1;
    } else {
        eprintln!("skipped: socat is not installed");
    }
    if have("ncat") {
        let st = Command::new("ncat")
            .args([
                "--ssl",
                "--ssl-verify",
                "--ssl-trustfile",
                p(&pki.root.cert),
                "--send-only",
            ])
            .args(["localhost", &port.to_string()])
            .stdin(std::fs::File::open(&file).unwrap())
            .status()
            .unwrap();
        assert!(st.success());
        sent += 1;
    } else {
        eprintln!("skipped: ncat is not installed");
    }
    let out = pki.dir.path().join("k.out");
    poll_until(
        LONG,
        || std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) >= (sent * data.len()) as u64,
        || format!("the listener wrote too little\n{}", l.stderr_now()),
    );
    l.signal(libc::SIGINT);
    l.finish().expect_code(130);
    let got = std::fs::read(&out).unwrap();
    // Each client's 16 KiB reads may interleave with the other's: compare
    // the byte counts, and the content of a lone client exactly.
    assert_eq!(got.len(), sent * data.len());
    if sent == 1 {
        assert_eq!(sha256(&got), sha256(&data));
    }
}

/// A lock-step dialogue through both ends over TLS (each line must come
/// out before the next goes in, as a coproc drives it), then a signal on
/// each side: 130 for SIGINT, 143 for SIGTERM, whatever TLS was doing.
#[test]
fn lock_step_over_tls_then_signals_end_each_side() {
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let (mut l, port) = listen("127.0.0.1", &["--tls"], Input::Pipe, Output::Pipe);
        let fp = ephemeral_pin(&mut l);
        let port = port.to_string();
        let mut c = spawn(
            &["connect", "--tls", "--pin-sha256", &fp, "127.0.0.1", &port],
            Input::Pipe,
            Output::Pipe,
        );
        let mut l_out = l.stdout_pipe();
        let mut c_out = c.stdout_pipe();
        for round in 0..10 {
            let ask = format!("question {round}\n");
            c.stdin.as_mut().unwrap().write_all(ask.as_bytes()).unwrap();
            let got = l_out.next_line(LONG).unwrap_or_default();
            assert_eq!(got, ask.as_bytes(), "round {round}: {}", l.dump());
            let answer = format!("answer {round}\n");
            l.stdin
                .as_mut()
                .unwrap()
                .write_all(answer.as_bytes())
                .unwrap();
            let got = c_out.next_line(LONG).unwrap_or_default();
            assert_eq!(got, answer.as_bytes(), "round {round}: {}", c.dump());
        }
        // The client first, mid-session: then the listener, whose peer
        // has gone.
        c.signal(sig);
        let cf = c.finish();
        assert_eq!(cf.code(), Some(code), "connect --tls\n{}", cf.dump());
        assert_no_panic(&cf);
        l.signal(sig);
        let lf = l.finish();
        assert!(
            lf.code() == Some(code) || lf.code() == Some(1),
            "listen --tls after its client was killed: {}",
            lf.dump()
        );
        assert_no_panic(&lf);
    }
    // A listener killed while its client is connected and idle.
    let (mut l, port) = listen("127.0.0.1", &["--tls"], Input::Pipe, Output::Null);
    let fp = ephemeral_pin(&mut l);
    let port = port.to_string();
    let c = spawn(
        &["connect", "--tls", "--pin-sha256", &fp, "127.0.0.1", &port],
        Input::Pipe,
        Output::Capture,
    );
    // -v names the suite once the handshake is done.
    l.wait_for_stderr("TLS with");
    l.signal(libc::SIGTERM);
    let lf = l.finish();
    assert_eq!(lf.code(), Some(143), "{}", lf.dump());
    // The client sees the end without close_notify: reported, not hidden.
    let cf = c.finish();
    cf.expect_code(1);
    assert!(one_line(&cf).contains("truncated"), "{}", cf.dump());
}
