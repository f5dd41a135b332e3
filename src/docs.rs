//! Man pages and shell completions, rendered from the clap definitions in
//! `cli.rs` plus the sections clap does not know: EXAMPLES, EXIT STATUS and
//! SEE ALSO. `sonda generate man|completions --dir DIR` writes them; the
//! committed copies in `man/` and `completions/` are checked by a test.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;
use roff::{bold, roman, Roff};

use crate::cli::Cli;

/// (command, what it does) pairs for a page's EXAMPLES section.
type Examples = &'static [(&'static str, &'static str)];

const SONDA_EXAMPLES: Examples = &[
    (
        "sonda listen 8080 > received",
        "Receive one TCP client's bytes into a file.",
    ),
    (
        "sonda connect host.example 8080 < file",
        "Send a file to that listener.",
    ),
    (
        "sonda -v connect -w 2s db.internal 5432 < /dev/null",
        "Check that a port answers within 2 seconds.",
    ),
];

const LISTEN_EXAMPLES: Examples = &[
    (
        "sonda listen 8080 > upload.bin",
        "Receive one client's upload on every interface, IPv4 and IPv6, then exit.",
    ),
    (
        "sonda -v listen 127.0.0.1 0",
        "Listen on a free loopback port; stderr says which (listening on 127.0.0.1:PORT).",
    ),
    (
        "sonda listen -k --sink -v 9000",
        "Accept any number of clients, discard what they send and report bytes per client.",
    ),
    (
        "sonda listen -k --echo --allow 10.0.0.0/8 7",
        "An echo service for one network only; other peers are closed unread.",
    ),
    (
        "tail -f app.log | sonda listen -k 5140",
        "Stream a log to every client that connects.",
    ),
    (
        "sonda listen --no-reuseaddr 8080",
        "Fail (exit 5) instead of binding while old connections sit in TIME-WAIT.",
    ),
];

const CONNECT_EXAMPLES: Examples = &[
    ("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | sonda connect example.org 80", "Send a request; the connection is half-closed at stdin's EOF and the reply is read to the end."),
    ("sonda connect -w 1s --timeout-method alarm 192.0.2.1 22", "Give up after one second (exit 4), timing the connect with SIGALRM."),
    ("sonda connect -s 127.0.0.1:40000 127.0.0.1 8080", "Connect from a fixed source port (SO_REUSEADDR, so a run a minute ago does not block it); if it is busy, exit 5."),
    ("sonda -v connect -w 5s dual.example 443 < /dev/null", "A name with IPv6 and IPv4 addresses is raced: stderr says which family answered, and when an IPv6 path that drops cost 250 ms instead of the timeout; --sequential shows the old way."),
    ("sonda connect [::1]:8080 < request", "HOST:PORT in one argument works too, an IPv6 address in brackets."),
    ("sonda connect -p 40000 host.example http", "Connect from local port 40000 on any address (nc -p) to the http port of /etc/services."),
    ("printf 'EHLO me\\nQUIT\\n' | sonda connect --crlf --quit-after 2s mail.example 25", "Speak SMTP by hand: each LF goes as CRLF, and the session ends 2 s after the last line even if the server keeps the connection open (nc -C -q 2)."),
    ("sonda connect --hexdump=session.hex api.example 80 < request > response", "Keep a hex dump of both directions, with offsets and times, beside the byte-exact response."),
    ("coproc S { sonda connect mail 25; }", "Drive a line protocol from a shell script: each reply is on stdout before sonda waits for more."),
    ("tar c dir | sonda connect backup 9000", "Stream an archive; exit 0 only when the peer read all of it."),
    ("sonda connect --recv-only --idle-timeout 30s feed 7000 > feed.log", "Record a feed until it falls silent for 30 seconds (exit 4)."),
    ("sonda connect -z 127.0.0.1 1-65535", "Scan every TCP port on loopback: open ports in port order with their connect time; -v adds closed and filtered ones. Exit 0 if any is open, 3 if all refused, 4 if none answered."),
    ("sonda connect -z --udp -w 500ms 10.0.0.5 53,123,161", "Probe UDP ports: closed on ICMP port unreachable, open|filtered on silence. Exit 0 if any is open or open|filtered, 3 if all are closed."),
    ("sonda connect -z --json 127.0.0.1 20-25 | jq -c 'select(.state == \"open\")'", "One JSON object per port."),
    ("sonda connect -z -p 53 --bind-device eth1 host 22 80 8000-8100", "Several PORT arguments, as nc -z takes them; every probe from source port 53, out of eth1."),
    ("sonda connect --retry 30 --retry-delay 200ms db 5432 < /dev/null", "Wait for a service to come up (the delay doubles after each failure, up to 2 s); exit with the last attempt's status."),
    ("pv -q < image.iso | sonda connect --progress host 9000", "A progress bar on stderr while stdout stays byte-exact."),
];

const UDP_SEND_EXAMPLES: Examples = &[
    ("sonda udp-send --message hello 127.0.0.1 9000", "Send one datagram; exit 3 with 'port unreachable' if nothing listens there."),
    ("printf 'a\\nbb\\n' | sonda udp-send --lines 127.0.0.1 9000", "Send one datagram per line: 'a', then 'bb'."),
    ("head -c 9000 /dev/urandom | sonda udp-send --size 9000 ::1 9000", "Send one 9000-byte datagram over IPv6."),
    ("tail -f app.log | sonda udp-send --lines loghost 5140", "Ship a growing log, each new line as its own datagram the moment it is written."),
    ("sonda udp-send --message ping --count 1000 --interval 1ms host 7", "A thousand datagrams, one per millisecond."),
    ("sonda udp-send -p 5353 --message x 127.0.0.1 9000", "From a fixed source port (nc -u -p), for a peer or firewall that expects it."),
    ("sonda udp-send --message STATUS --wait-reply 2s 127.0.0.1 9999", "Request and response: print every reply until 2 seconds pass without one (exit 4 if none came)."),
];

const UDP_RECV_EXAMPLES: Examples = &[
    ("sonda -v udp-recv 9000 > payloads", "Receive on every interface, payloads back to back into a file; buffer growth and a summary on stderr."),
    ("sonda udp-recv --show 127.0.0.1 9000", "A line per datagram: time, sender, length, truncated or not, escaped preview."),
    ("sonda udp-recv --json --count 10 9000 | jq .original_len", "Ten datagrams as JSON objects, then exit."),
    ("sonda udp-recv --buffer 512 --no-grow 9000", "Show what a 512-byte receive buffer does to larger datagrams: cut, and reported with their real length."),
    ("sonda udp-recv --echo --timeout 30s 7", "An echo service that exits 4 after 30 quiet seconds."),
];

const PROBE_EXAMPLES: Examples = &[
    ("sonda probe 8080", "Why will 8080 not bind? Trial binds, every socket on the port with its owner, and a verdict; exit 5 if a plain bind would fail."),
    ("sonda probe --udp 5353", "The same for a UDP port."),
    ("sonda probe --json 127.0.0.1 8080 | jq .verdict", "The facts as one JSON object, for scripts."),
    ("sonda probe --reproduce", "Make TIME-WAIT on loopback and watch a plain bind fail with EADDRINUSE and an SO_REUSEADDR bind succeed. The side that closes first keeps the connection in TIME-WAIT for 2*MSL (60 s on Linux); SO_REUSEADDR lets a new listener bind beside such entries, never beside another listener. SO_REUSEPORT instead lets several live sockets share the port, and the kernel splits connections between them."),
    ("sudo sonda probe --bind-device eth1 8080", "Would 'listen --bind-device eth1 8080' bind? A listener bound to another interface (0.0.0.0%lo:8080 in the table) shares the port; one bound to none does not."),
    ("sudo sonda probe 443", "As root every owning process is named; otherwise other users' processes are 'not visible'."),
];

const BENCH_EXAMPLES: Examples = &[
    ("sonda bench", "Five seconds of TCP over loopback, server and client in one process: nothing to set up."),
    ("sonda bench --proto udp --size 1472", "UDP datagrams as fast as they go, with loss and reordering counted from sequence numbers (GSO/GRO on)."),
    ("sonda bench --proto udp --no-gso --rate 1G", "The same at 1 Gbit/s, one datagram per system call."),
    ("sonda bench --mode rr --pin 0,1", "Request/response latency percentiles with client and server on different CPUs."),
    ("sonda bench --streams 4 --reverse --json | jq '.results[0].bits_per_second'", "Four parallel streams from the server; the figures as JSON."),
    ("sonda -v bench --server", "On one host: serve tests on port 5205 until interrupted."),
    ("sonda bench --client 10.0.0.2 --duration 10s --interval 1s", "On the other: ten seconds against that server, a line per second."),
];

/// The UNIX DOMAIN SOCKETS section of a page: what -U does there, and
/// examples.
fn unix_section(stem: &str) -> Option<(&'static str, Examples)> {
    match stem {
        "sonda-listen" => Some((
            "-U PATH listens on a Unix stream socket (--seqpacket: SOCK_SEQPACKET) instead of TCP; @NAME is a Linux abstract name (no file). Every relay rule holds as over TCP: half-close, -k, --echo, --sink, --max-conns, --idle-timeout, the splice fast path (not with --seqpacket, whose records are read whole whatever their size). The file is created at PATH and removed when sonda exits, by SIGINT and SIGTERM too. An existing path is never replaced: a live socket is exit 5 naming its holder, a stale socket file (nothing bound to it, as the kernel's socket table tells by the file's inode, and, since that table shows only this network namespace, no connect of any type reaches it) is exit 5 unless --unlink-stale removes it, and any other file is exit 5 and stays. -v names each client's pid, command, uid and gid (SO_PEERCRED). --allow, --deny and the port options do not apply; -4, -6, --nodelay and --keepalive with -U are usage errors (exit 2).",
            &[
                ("sonda -v listen -U /tmp/app.sock > got", "Receive one client's bytes over a Unix socket; -v names the client's process."),
                ("sonda listen -k --echo -U @echo", "An echo service on the abstract name 'echo': no file to clean up."),
                ("sonda listen -U /run/app.sock --unlink-stale", "Replace a socket file left by a listener that crashed (never a live one)."),
            ],
        )),
        "sonda-connect" => Some((
            "-U PATH connects to a Unix stream socket (--seqpacket: SOCK_SEQPACKET); @NAME is a Linux abstract name. No such file is exit 6; a file nothing listens on is exit 3 with the hint that it is stale, or, when a socket is bound to it without listening, naming that socket's holder; an abstract name held by a socket of another type is exit 3 naming the holder and the flag (--seqpacket, or udp-send for a datagram socket); permission denied is exit 1 naming the file's owner and mode; a datagram socket at PATH is named as one (use udp-send -U). -w bounds a connect that waits on a full backlog (exit 4).",
            &[
                ("printf 'GET /containers/json HTTP/1.0\\r\\n\\r\\n' | sonda connect -U /var/run/docker.sock", "Ask a daemon on its control socket."),
                ("sonda -v connect -U @echo < file", "Talk to an abstract name; -v names the listener's process."),
            ],
        )),
        "sonda-udp-send" => Some((
            "-U PATH sends Unix datagrams (SOCK_DGRAM) to the socket at PATH; @NAME is a Linux abstract name. The sending socket is autobound to an abstract name of the kernel's choosing (no file left behind), so --wait-reply works and a receiver sees who sent. A Unix datagram is bounded by the socket buffer, not by UDP's 65507 bytes: --size takes up to 16M (the send buffer is raised to fit; beyond net.core.wmem_max the send fails naming the limit). No such file is exit 6; nobody bound there any more is exit 3; a stream socket at PATH is named as one (use connect -U).",
            &[
                ("sonda udp-send --message reload -U /run/app/ctl.sock", "One datagram to a daemon's control socket."),
                ("sonda udp-send --size 256K -U /tmp/d.sock < blob", "A 200 KiB file as one datagram."),
                ("sonda udp-send --message STATUS --wait-reply 1s -U @ctl", "Ask and print the answer; exit 4 if none comes."),
            ],
        )),
        "sonda-udp-recv" => Some((
            "-U PATH receives Unix datagrams on a socket bound at PATH (@NAME: abstract); the file is removed when udp-recv exits (any way but SIGKILL, --timeout and --count included), and an existing path is never replaced (a live socket, a stale file or any other file is exit 5). The peek-and-grow receive works beyond 64 KiB: the buffer grows up to --max-size (default 16M over -U), so a 200 KiB datagram arrives whole, and a cut one is reported with its real length. --show and --json name the sender by its path, its abstract name (@NAME, an autobound sender's too) or 'unnamed' (a socket never bound; --echo cannot answer it).",
            &[
                ("sonda udp-recv --show -U /tmp/d.sock", "A line per datagram with its sender."),
                ("sonda udp-recv --echo -U @echo", "Answer every named sender with its own datagram."),
            ],
        )),
        "sonda-probe" => Some((
            "-U PATH (or @NAME) explains a Unix socket address instead of a port, from the kernel's socket table (NETLINK_SOCK_DIAG, UNIX_DIAG, matched on the file's inode and device; /proc/net/unix where netlink is unavailable): free (exit 0), a live listener or bound socket (exit 5: pid, command, uid, pending connections and backlog, connected peers), a stale socket file (exit 5: safe to remove, 'sonda listen -U PATH --unlink-stale' does so), an orphaned listener (same name, bound to a replaced or unlinked file: unreachable by path), or not a socket (exit 5). --json carries the same facts.",
            &[
        ("sonda probe -U /run/app.sock", "Who holds a socket path. A live listener (exit 5) is named with its pid, uid, pending connections and backlog; a stale file (exit 5) is safe to remove; a listener whose file was unlinked or replaced is reported as orphaned, unreachable by path."),
        ("sonda probe -U @app --json | jq .verdict.state", "An abstract name: matched by name, no file; the verdict's state for scripts (free, live, stale, orphaned, not-a-socket)."),
            ],
        )),
        "sonda" => Some((
            "Every command takes -U PATH (@NAME: a Linux abstract name) in place of [HOST] PORT: listen and connect over Unix stream sockets (--seqpacket: SOCK_SEQPACKET) with every relay rule of TCP, udp-send and udp-recv over Unix datagrams, probe to explain a socket path, bench to measure local IPC. A socket file a sonda command creates is removed when it exits; one it finds is never replaced silently.",
            &[
                ("sonda listen -k --echo -U @echo & sonda connect -U @echo < file", "An echo service and a client over an abstract name."),
                ("sonda probe -U /run/app.sock", "Who holds a socket path, or whether it is stale."),
            ],
        )),
        "sonda-bench" => Some((
            "-U PATH runs bench over a Unix stream socket (SOCK_STREAM) instead of TCP; @NAME is a Linux abstract name (no file). Alone, -U PATH is a local test: bench creates the socket at PATH, runs its server and client in one process over it, and removes it when the test ends. --server -U PATH serves tests there until interrupted (or one, --once), and --client -U PATH runs a test against such a server; the PATH takes the place of HOST and PORT, and giving both is a usage error. --mode stream and rr, --streams, --reverse, --bidir, --bytes, --duration, --omit, --interval, --pin, --sndbuf, --rcvbuf and --json work as over TCP, and --size defaults to 1M as for TCP. TCP_NODELAY does not apply; SO_SNDBUF defaults to 1M (forced when root), as a Unix stream sender waits once its send buffer is full and the kernel's default holds a fifth of a 1M write (measured: about twice the throughput); SO_RCVLOWAT is off unless --rcvlowat asks for it (a Unix reader is woken at every write whatever it says, and it measured no faster). --proto does not apply: there is no Unix datagram test, and --proto with -U is a usage error. The control exchange goes over PATH; the data connections go to a second listener the server binds for each test at an abstract name of its own, @sonda-bench-PID-N, announced in its accept message (the control listener is not used for them, as the next client's control connection may be waiting there). The client connects only to a name of that form (any other is exit 1, so a server cannot send it to another socket), and the server takes data connections only from the process that holds the control connection (SO_PEERCRED); others are closed unread. An abstract name lives in the server's network namespace, so a client must share it. In the report the transport is unix: the title says \"unix stream\" or \"unix rr\", the JSON has \"proto\": \"unix\" in params, and \"target\" is PATH. Whatever bench binds leaves no file behind when it exits, by SIGINT and SIGTERM too; an existing path is never replaced: a live socket, a stale socket file (unless --unlink-stale, which removes only a socket file nothing is bound to) or any other file there is exit 5. A client's PATH that does not exist is exit 6. A path of 108 bytes or more is a usage error.",
            &[
                ("sonda bench -U /tmp/b.sock", "Five seconds of a Unix stream socket, server and client in one process; the file is gone afterwards."),
                ("sonda bench -U @bench --mode rr --pin 0,1", "Request/response latency over an abstract socket, client and server on different CPUs, to compare with 'sonda bench --mode rr --pin 0,1' over TCP loopback."),
                ("sonda -v bench --server -U /run/bench.sock", "Serve tests on a Unix socket until interrupted; -v names each client's process."),
                ("sonda bench --client -U /run/bench.sock --reverse --json | jq '.results[0].bits_per_second'", "A server-to-client test against it, the rate as JSON."),
            ],
        )),
        _ => None,
    }
}

const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Success; for a relay that sent data, the peer's kernel acknowledged every byte and no reset had arrived. A reader of stdout that goes away (EPIPE) also ends sonda quietly with 0."),
    ("1", "Any other runtime failure: I/O error, connection reset by peer (a peer that closes with unread data resets), the peer closing before it read all input, host or network unreachable, stdout full; for bench, a peer that is not a working sonda bench server (including a control step that --control-timeout ended) or a server that refused the test."),
    ("2", "Usage error: unknown flag, port out of range, malformed address, duration, size or CIDR block."),
    ("3", "Connection refused, or ICMP port unreachable (udp-send)."),
    ("4", "Timed out: connect (--timeout; bench --control-timeout while connecting), idle (--idle-timeout), no datagram (udp-recv --timeout), no reply (udp-send --wait-reply)."),
    ("5", "Address in use: bind failed (listen, udp-recv, or --source; for -U, a live socket, a stale socket file or another file at the path); for probe, a plain bind would fail (with -U: the path is held by a live socket, is a stale socket file, or is not a socket)."),
    ("6", "The name or address could not be resolved, or has no address in the family forced by -4 or -6; for -U (connect, udp-send), no such socket file."),
    ("7", "TLS (--tls): the handshake failed or the peer's certificate was not trusted; the reason is named (expired, not yet valid, unknown issuer, name mismatch, pin mismatch, a protocol version or cipher sonda never speaks)."),
    ("130", "Interrupted by SIGINT (143 for SIGTERM)."),
];

/// Every page: (file stem, clap command path, examples, see also).
fn pages() -> Vec<(&'static str, Option<&'static str>, Examples, &'static str)> {
    vec![
        (
            "sonda",
            None,
            SONDA_EXAMPLES,
            "sonda-listen(1), sonda-connect(1), sonda-udp-send(1), sonda-udp-recv(1), sonda-probe(1), sonda-bench(1), nc(1), ncat(1), socat(1), ss(8)",
        ),
        (
            "sonda-listen",
            Some("listen"),
            LISTEN_EXAMPLES,
            "sonda(1), sonda-connect(1), nc(1), ncat(1), socat(1), ss(8), tcp(7), socket(7)",
        ),
        (
            "sonda-connect",
            Some("connect"),
            CONNECT_EXAMPLES,
            "sonda(1), sonda-listen(1), nc(1), ncat(1), socat(1), connect(2), tcp(7)",
        ),
        (
            "sonda-bench",
            Some("bench"),
            BENCH_EXAMPLES,
            "sonda(1), iperf3(1), sockperf(1), tcp(7), udp(7), unix(7)",
        ),
        (
            "sonda-probe",
            Some("probe"),
            PROBE_EXAMPLES,
            "sonda(1), sonda-listen(1), ss(8), netstat(8), lsof(8), fuser(1), socket(7), tcp(7)",
        ),
        (
            "sonda-udp-send",
            Some("udp-send"),
            UDP_SEND_EXAMPLES,
            "sonda(1), sonda-udp-recv(1), nc(1), socat(1), udp(7)",
        ),
        (
            "sonda-udp-recv",
            Some("udp-recv"),
            UDP_RECV_EXAMPLES,
            "sonda(1), sonda-udp-send(1), nc(1), socat(1), recvfrom(2), udp(7)",
        ),
    ]
}

/// Renders every man page as (file name, roff text).
pub fn man_pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut root = Cli::command();
    // Propagates the global flags (-v, -q, -4, -6) into each subcommand's page.
    root.build();
    let version = root.get_version().unwrap_or_default().to_string();
    let mut out = Vec::new();
    for (stem, sub, examples, see_also) in pages() {
        let cmd = match sub {
            None => root.clone(),
            Some(name) => root
                .find_subcommand(name)
                .with_context(|| format!("no subcommand {name}"))?
                .clone()
                .name(stem)
                .bin_name(format!("sonda {name}"))
                .version(env!("CARGO_PKG_VERSION")),
        };
        let man = clap_mangen::Man::new(cmd)
            .source(format!("sonda {version}"))
            .manual("sonda manual");
        let mut buf = Vec::new();
        man.render_title(&mut buf)?;
        man.render_name_section(&mut buf)?;
        man.render_synopsis_section(&mut buf)?;
        man.render_description_section(&mut buf)?;
        man.render_options_section(&mut buf)?;
        if sub.is_none() {
            man.render_subcommands_section(&mut buf)?;
        }
        let security = matches!(stem, "sonda" | "sonda-listen" | "sonda-bench");
        buf.write_all(extra_sections(stem, examples, see_also, security).as_bytes())?;
        man.render_version_section(&mut buf)?;
        out.push((format!("{stem}.1"), buf));
    }
    Ok(out)
}

/// The SECURITY section of the pages that accept connections.
const SECURITY: &[&str] = &[
    "sonda never runs a command on behalf of a peer, never looks up a name to decide an --allow/--deny rule, and writes only payload to stdout.",
    "listen binds every interface of both families unless HOST is given: use 'sonda listen 127.0.0.1 PORT' for local use. --allow and --deny (CIDR, repeatable; deny wins; IPv4 rules match v4-mapped peers) are checked before any byte is read; a denied peer is closed unread. With -k, --max-conns (default 100) caps the clients served at once and a connection over it is closed unread; --idle-timeout frees the slot of a client that stalls. With -k a client's EOF ends its session and frees its slot at once, whatever stdin does (a half-close cannot be told from a close): a client that half-closes and then waits for an answer gets it from listen without -k, from --echo, or through --to, which pass each end on. Memory per client is bounded (16 KiB reads under -k; 1 MiB buffers for one session), whatever a client sends or how slowly.",
    "bench --server takes every test parameter from its client (--proto, --duration, --size and the rest given to a server are a usage error) and lets a client choose the test within the ranges of the client's flags (up to 128 streams, 256 MiB of buffers per side, CPUs it has, up to 100 years) and serves one test at a time; a request outside them is refused with the reason; every control step is bounded by --control-timeout, a hello by 64 KiB and other control messages by 4 MiB. Bind it to a private address, or use --once.",
    "probe needs no privileges: it reads sock_diag and /proc; another user's processes are shown as not visible unless run as root. Its trial binds hold the port for an instant.",
];

/// The TLS section of a page: what --tls does there, and examples.
fn tls_section(stem: &str) -> Option<(&'static str, Examples)> {
    match stem {
        "sonda-connect" => Some((
            "--tls speaks TLS (rustls: TLS 1.2 and 1.3 only) over the connection, TCP or -U, and verifies the server's certificate by default against the system roots, or the CA certificates of --ca; the name verified and sent as SNI is HOST (or --servername; an IP address is matched against the certificate's IP SANs and sends no SNI; --no-sni sends none). An untrusted certificate is exit 7 naming every problem found (expired, not yet valid, unknown issuer, name mismatch); --insecure goes on with a warning naming them; --pin-sha256 trusts exactly the leaf with that SHA-256, whatever its chain. With -z the handshake is the whole job: the report goes to stdout (--json: one object): version, cipher suite, key-exchange group, ALPN, SNI sent, full or resumed, the chain as the server sent it (subject, issuer, validity and days left, key, SHA-256 of the DER), the leaf's SANs and the one that matched, the verdict and its reasons, whether an OCSP response was stapled; exit 0 when trusted, 7 when not. Reading it: the verdict line says trusted or NOT trusted and every reason; the chain is as the server sent it, so a missing intermediate shows as a chain of one whose issuer is not a root (unknown issuer), an expired certificate as 'expired N days ago' (a negative days_left in JSON); 'matched' names the SAN the verified name hit (none: name mismatch); 'failed' gives the handshake's own error when there was one, such as a protocol version sonda never speaks. In a relay, -v prints the same report on stderr. The relay's rules hold: stdin's EOF sends close_notify and half-closes (many TLS peers then close their side too); the server's close_notify is EOF; a connection closed without close_notify is exit 1, as the data may be truncated. The handshake is bounded by -w, or 10 seconds. --starttls smtp|imap|pop3|ftp|postgres speaks the protocol's plaintext preamble first (EHLO and STARTTLS, a1 STARTTLS, STLS, AUTH TLS, SSLRequest) and hands over the same connection to TLS; a refusal, or any byte the server sends after its go-ahead and before the handshake (the response-injection class), is exit 7 and nothing of it reaches stdout; -v shows the exchange.",
            &[
                ("sonda connect --tls -z example.org 443", "Who is this server, and is its certificate trusted here? The report on stdout, exit 7 when not."),
                ("sonda connect --tls -z --json --servername api.internal 10.0.0.5 443 | jq .reasons", "Check a certificate by name on an address; the reasons as JSON."),
                ("printf 'GET / HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' | sonda connect --tls --ca ca.pem localhost 8443", "An HTTPS request by hand, verified against a private CA."),
                ("sonda connect --tls --pin-sha256 4a86...8b5b 127.0.0.1 4433 < file", "Send a file to a 'listen --tls' with an ephemeral certificate, trusting its printed fingerprint."),
                ("sonda -v connect --tls -z --starttls smtp mail.example.org 25", "The certificate of a mail server behind SMTP STARTTLS; -v shows the plaintext exchange."),
            ],
        )),
        "sonda-listen" => Some((
            "--tls speaks TLS to each client (TLS 1.2 and 1.3). --cert and --key give the certificate chain and key (PEM); without them an ephemeral self-signed ECDSA P-256 certificate is made for the listening host (when one is given), localhost, 127.0.0.1 and ::1, and its SHA-256 fingerprint printed on stderr for connect --pin-sha256. --client-ca requires a client certificate issued by one of its CAs; -v names each client's subject and the cipher suite. The handshake runs in the client's own thread (with -k a slow client holds only its slot) and is bounded by --idle-timeout, or 10 seconds; a failed handshake ends that client (exit 7 without -k). Every relay rule holds over TLS except the splice path: stdin's EOF sends close_notify and half-closes, a client's close_notify is EOF, a close without one is reported. Unlike a TCP FIN, close_notify is data: a client that never reads (ncat --send-only) and closes with it unread makes its kernel reset the connection, dropping what it had not sent yet (sonda reports the reset, exit 1); receive from such clients with --recv-only, which sends nothing. For the same reason listen sends no TLS 1.3 session tickets (ncat --send-only never reads them), so a client cannot resume a session.",
            &[
                ("sonda listen --tls 127.0.0.1 4433 > got", "Receive a file over TLS with an ephemeral certificate; stderr prints its fingerprint."),
                ("sonda -v listen -k --tls --cert server.pem --key server.key --client-ca clients.pem 8443", "Many clients, each with a client certificate from clients.pem; -v names them."),
            ],
        )),
        _ => None,
    }
}

/// connect's PROXIES section: what each stage reports and how failures map
/// to exit codes.
fn proxy_section(stem: &str) -> Option<(&'static str, Examples)> {
    (stem == "sonda-connect").then_some((
        "--proxy URL connects through a SOCKS5 (RFC 1928, with RFC 1929 username and password), SOCKS4a or HTTP CONNECT proxy over sonda's own socket, so -w, -s and the socket options apply to the connection to the proxy. The proxy resolves HOST unless --proxy-dns local, which resolves it here and sends the first address in the -4/-6 family (SOCKS4a then sends plain SOCKS4). A user in the URL without a password takes it from the environment variable SONDA_PROXY_PASSWORD, so it never shows in ps (a password in the URL wins over the variable; SOCKS4a carries a user id and no password, so socks4a://USER:PASS@ is a usage error); user names and passwords may be percent-encoded (%40 for @). What a proxy could never be asked is refused before any socket opens (exit 2): an IPv6 address through SOCKS4a, a name, user or password over SOCKS5's 255 bytes. A reply in another protocol is named at once (exit 1): an SSH banner or a SOCKS reply to an http:// request, HTTP to a socks5:// one. With -v each stage is reported with its time: TCP to the proxy, the SOCKS5 method chosen, the authentication, the reply (with the address the proxy bound, a name included). -w bounds the connect to the proxy and its answer together; without -w the answer may take 30 seconds (the proxy's own connect to the target is part of it). Exit status: a proxy that cannot be reached is reported as a direct connect would be (3 refused, 4 timed out, 6 name not found), naming the proxy; the target refused through the proxy is 3 (SOCKS5 reply 5, SOCKS4 reply 91, HTTP 502 or 503, or a 5xx 'unable to connect': HTTP does not tell a refusal from an unreachable host or an unknown name); the proxy's connect timing out is 4 (SOCKS5 reply 6, HTTP 504); credentials refused or required is 1 with the reason (the HTTP status line and the Proxy-Authenticate scheme); every other SOCKS reply is 1, named in words. The reply is read to its exact length (SOCKS) or to the end of its header, a byte at a time (HTTP), so the target's first bytes are never lost. --tls and --starttls run over the tunnel, verifying HOST. -z through a proxy asks it for each port in turn: its refusal is closed, its policy's refusal (HTTP 403, SOCKS5 reply 2) and its silence within -w (1s by default) filtered. Proxies that close both directions when one ends (microsocks, many HTTP proxies) break half-close: after stdin's EOF the target's answer may not arrive.",
        &[
            ("sonda -v connect --proxy socks5://127.0.0.1:1080 example.org 80", "Through a SOCKS5 proxy that resolves the name; -v shows each stage and its time."),
            ("SONDA_PROXY_PASSWORD=secret sonda connect --proxy http://alice@proxy:3128 --tls example.org 443", "TLS to example.org through an HTTP CONNECT proxy with Basic credentials, the password from the environment."),
            ("sonda connect -z --proxy socks4a://127.0.0.1:1080 intranet.example 22,80,443", "Which ports the proxy can reach on a host only it can resolve."),
        ],
    ))
}

/// listen's FORWARDED SESSIONS section: `--to`, what passes between the two ends
/// and what a failure does to the other.
fn forward_section(stem: &str) -> Option<(&'static str, Examples)> {
    (stem == "sonda-listen").then_some((
        "--to TARGET makes listen a forwarder, the job of socat TCP-LISTEN,fork TCP:HOST:PORT: each client gets its own connection to TARGET (HOST:PORT, an IPv6 HOST in brackets, or unix:PATH), made when the client arrives, and bytes go both ways until both directions have ended; stdin and stdout are not used. HOST is resolved once at startup (a name that does not resolve is exit 6 before the port opens) and again for each client, its addresses tried within --to-timeout (10 seconds by default), raced when they are of both families as connect races them. The end of each direction is passed on as the end of the stream (shutdown SHUT_WR) while the other goes on: half-close both ways, so a client that sends a request and then EOF still gets the whole answer. A failure on one side resets the other (SO_LINGER 0, RST): a refused or timed-out upstream connect resets the client, and a reset from either end resets the other, so neither peer takes a failure for a clean end. --idle-timeout ends a session with no byte either way for that long; --max-conns, --allow and --deny apply to clients before any upstream connect; --nodelay, --keepalive, --sndbuf and --rcvbuf apply to the upstream connection as well as to the client's; --mark, --bind-device, --tos and --ttl to the client's only. -v prints a line per client when forwarded (the upstream's address, the local address used and the connect time) and one when it ends, with the bytes each way and the time. Without -k one client is forwarded and its outcome is the exit status (3 upstream refused, 4 upstream timeout or idle, 7 upstream TLS not trusted, 1 a reset); with -k clients are forwarded at once and a failed session is a warning on stderr. --tls (the client side) and --to-tls (the upstream, verified for HOST or --to-servername against the system roots, --to-ca or --to-pin-sha256) may be combined: TLS termination, origination, or re-encryption. Between two kernel sockets, a direction toward another host moves by splice(2) through a 1 MiB pipe and never enters user space (a fifth of the CPU of a copy); toward this host (loopback, a Unix socket) the bytes are copied in calls of 1 MiB, as measured faster overall there (the receiving socket on this host took twice the CPU for spliced pages); --no-splice copies always. One thread per direction; the memory per client is a stack and a buffer, not a process.",
        &[
            ("sonda -v listen -k --to db.internal:5432 127.0.0.1 15432", "Forward local port 15432 to a database, a line per client with its bytes each way."),
            ("sonda listen -k --to unix:/run/app.sock --allow 10.0.0.0/8 8080", "Expose a Unix-socket service on TCP to one network only."),
            ("sonda listen -k --tls --cert site.pem --key site.key --to 127.0.0.1:8080 443", "Terminate TLS in front of a plaintext service."),
            ("sonda listen -k --to-tls --to-ca ca.pem --to backend.internal:8443 127.0.0.1 8080", "Give a plaintext local client a verified TLS upstream."),
        ],
    ))
}

/// The MULTICAST section of udp-recv and udp-send: joins, what the
/// receiver sees of each datagram, the sender's options, broadcast and the
/// two-way session.
fn multicast_section(stem: &str) -> Option<(&'static str, Examples)> {
    match stem {
        "sonda-udp-recv" => Some((
            "--join GROUP[@IFACE] joins a multicast group, IPv4 (224.0.0.0/4) or IPv6 (ff00::/8), on interface IFACE, or without one on the interface the kernel routes the group to (a join without an interface and without such a route is an error saying to name one); -v names the interface and its index for each join. Repeat --join for several groups. --source S makes every join source-specific (SSM, IGMPv3/MLDv2: 232.0.0.0/8, ff3x::/32): only datagrams sent by S are delivered. The joins are MCAST_JOIN_GROUP and MCAST_JOIN_SOURCE_GROUP (RFC 3678) by interface index, the same call for both families. IP_MULTICAST_ALL is turned off first: Linux's default hands a socket bound to the wildcard every group any socket on the host joined on that port, so a receiver would see traffic it never asked for; with it off, only the groups this socket joined arrive (and unicast to its port). With IPv4 groups only and no HOST, the socket binds 0.0.0.0; give HOST (the group itself) to take that group's datagrams only. Strict reverse-path filtering (net.ipv4.conf.IFACE.rp_filter=1) drops datagrams whose source is not routed back out of IFACE before any socket sees them: with --source S udp-recv warns when that is the case, and -v notes strict filtering otherwise. --show and --json report, for every UDP datagram, where it was sent (the group, a broadcast address, or this host's address) with the interface it came in on, its TTL (IPv6: hop limit) and its TOS byte (IPv6: traffic class), from IP_PKTINFO, IP_RECVTTL, IP_RECVTOS and their IPv6 counterparts: whether it arrived as multicast, on which interface and with which TTL. --reply sends stdin to the sender of the latest datagram, the nc -u -l session: each read of stdin is a datagram (each line without its newline with --lines), held until a first datagram names the peer; --count and --timeout still end the session, after a reply already read has gone out (at most a second).",
            &[
                ("sonda -v udp-recv --join 239.1.2.3@eth1 --show 5000", "Join a group on eth1 and print each datagram with its destination, TTL and TOS; -v names the interface the join used."),
                ("sonda udp-recv --join 232.1.1.1@eth1 --source 10.0.0.7 --json 5000 | jq .ttl", "A source-specific join: only 10.0.0.7's datagrams; the TTL each arrived with."),
                ("sonda udp-recv --join 'ff15::42@eth1' --join 'ff15::43@eth1' --show 5000", "Two IPv6 groups on one socket, and nothing of the groups other programs joined."),
                ("sonda udp-recv --reply --lines 9000", "The nc -u -l session: print what arrives, send each line typed to whoever sent last."),
            ],
        )),
        "sonda-udp-send" => Some((
            "To a multicast group, --multicast-if IFACE chooses the interface the datagrams leave by (IP_MULTICAST_IF by index, IPV6_MULTICAST_IF) instead of the group's route; --ttl sets the multicast TTL (IPv6: hop limit), whose default is 1, one link, as the kernel has it; --tos the TOS byte. Multicast loopback stays on as the kernel has it, so a receiver joined on the sending host gets a copy; --no-multicast-loop turns that off. These are set before connect(2), which picks the route. --broadcast sets SO_BROADCAST: without it the kernel refuses a broadcast address with EACCES, and udp-send says to add --broadcast. --wait-reply DUR keeps the socket open for answers after the last datagram; to a broadcast address or a group the socket is then left unconnected, so the answers, which come from the members' own addresses, arrive (each printed as it comes), and no ICMP error can be reported.",
            &[
                ("sonda udp-send --multicast-if eth1 --ttl 8 --message hello 239.1.2.3 5000", "One datagram to a group out of eth1, allowed 8 router hops."),
                ("sonda udp-send --no-multicast-loop --multicast-if eth1 --lines 'ff15::42' 5000 < lines", "Each line to an IPv6 group, with no copy for receivers on this host."),
                ("sonda udp-send --broadcast --message discover --wait-reply 1s 192.168.1.255 9000", "To the subnet's broadcast address, then every answer for a second."),
                ("sonda udp-send --message ping --wait-reply 2s 10.0.0.2 9000", "Ask, and print the answer of a udp-recv --reply on 10.0.0.2."),
            ],
        )),
        "sonda-bench" => Some((
            "--multicast GROUP measures a UDP stream (--proto udp, from the client: not --reverse or --bidir) sent to a multicast group, which iperf3 cannot do. For each --streams the server binds the group itself on a port of its own, so it takes that group's datagrams only, turns IP_MULTICAST_ALL off and joins the group on the interface holding the address the client reached it at; the client sends to GROUP and that port out of the interface toward the server (IP_MULTICAST_IF; its scope for a link-local address), with --ttl as the multicast TTL (default 1: one link) and multicast loopback on. The server counts as for any UDP stream: rate, loss and reordering from the sequence numbers, in the same table and JSON (\"params\".\"multicast\" names the group). Locally (no --server/--client) an IPv4 group goes over loopback; IPv6 multicast does not pass over lo, so an IPv6 group needs two hosts. The default --size 1472 fits an IPv4 path of MTU 1500; over IPv6 use at most 1452. One sender, several receivers: each --receiver HOST[:PORT] (repeatable; PORT defaults to the --client server's) is a further bench server, which the client asks to bind the group on the ports the --client server chose (SO_REUSEADDR, so receivers may share a host) and to join it on the interface holding the address the client reached it at. The datagrams leave out of the interface toward the --client server, so every receiver must be on that link or behind multicast routing. Each receiver counts what reached it: the JSON has a result per receiver, \"receiver\" naming it (the --client server first; \"intervals\" are its), and the table a block per receiver.",
            &[
                ("sonda bench --proto udp --multicast 239.1.2.3 --duration 2s", "A multicast stream over loopback: rate, loss and reordering counted by the receiver."),
                ("sonda bench --client 10.0.0.2 --proto udp --multicast 239.1.2.3 --rate 100M --json | jq '.results[0].loss_percent'", "100 Mbit/s to a group that the server on 10.0.0.2 joins; the loss it saw."),
                ("sonda bench --client fd00::2 --proto udp --multicast ff15::42 --size 1400 --ttl 4", "IPv6, allowed four router hops."),
                ("sonda bench --client 10.0.0.2 --receiver 10.0.0.3 --receiver 10.0.0.4 --proto udp --multicast 239.1.2.3 --rate 50M --json | jq '.results[] | {receiver, loss_percent}'", "One sender, three receivers on the segment, the loss each saw."),
            ],
        )),
        _ => None,
    }
}

/// Each (command, what it does) as a tagged paragraph, the command bold.
fn tagged(roff: &mut Roff, examples: Examples) {
    for (command, what) in examples {
        roff.control("TP", [] as [&str; 0])
            .text([bold(*command)])
            .text([roman(*what)]);
    }
}

fn extra_sections(stem: &str, examples: Examples, see_also: &str, security: bool) -> String {
    let mut roff = Roff::new();
    let sections = [
        ("FORWARDED SESSIONS", forward_section(stem)),
        ("TLS SESSIONS", tls_section(stem)),
        ("PROXIES", proxy_section(stem)),
        ("UNIX DOMAIN SOCKETS", unix_section(stem)),
        ("MULTICAST", multicast_section(stem)),
    ];
    for (title, section) in sections {
        let Some((text, section_examples)) = section else {
            continue;
        };
        roff.control("SH", [title]).text([roman(text)]);
        tagged(&mut roff, section_examples);
    }
    if security {
        roff.control("SH", ["SECURITY"]);
        for (i, para) in SECURITY.iter().enumerate() {
            if i > 0 {
                roff.control("PP", [] as [&str; 0]);
            }
            roff.text([roman(*para)]);
        }
    }
    roff.control("SH", ["EXAMPLES"]);
    tagged(&mut roff, examples);
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in EXIT_STATUS {
        roff.control("TP", [] as [&str; 0])
            .text([bold(*code)])
            .text([roman(*meaning)]);
    }
    roff.control("SH", ["SEE ALSO"]).text([roman(see_also)]);
    roff.to_roff()
}

pub fn write_man_pages(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for (name, text) in man_pages()? {
        let path = dir.join(name);
        fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

/// Renders every completion script as (file name, text).
pub fn completions() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::PowerShell,
    ] {
        let mut cmd = Cli::command();
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, "sonda", &mut buf);
        let name = match shell {
            Shell::Bash => "sonda.bash".to_string(),
            Shell::Zsh => "_sonda".to_string(),
            Shell::Fish => "sonda.fish".to_string(),
            Shell::Elvish => "sonda.elv".to_string(),
            _ => "_sonda.ps1".to_string(),
        };
        out.push((name, buf));
    }
    out
}

pub fn write_completions(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for (name, text) in completions() {
        let path = dir.join(name);
        fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}
