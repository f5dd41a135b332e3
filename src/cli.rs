//! The command line: every flag of every subcommand, as clap derive types.
//!
//! This is the one source of `--help`, the man pages and the completions.
//! Values are checked here (ports, durations, sizes, CIDR blocks) so a bad
//! one is a one-line usage error before any socket opens.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;

use crate::bench::params as bench;
use crate::engine::addr::{parse_cidr, parse_source};
use crate::engine::proxy::ProxyUrl;
use crate::engine::transport::UnixAddr;
use crate::parse::{parse_buffer_size, parse_duration, parse_keepalive};

#[derive(Debug, Parser)]
#[command(
    name = "sonda",
    version,
    about = "Network diagnostics in the tradition of netcat",
    long_about = "sonda pipes bytes through TCP connections and measures and explains \
sockets. Payload goes to stdout only; every diagnostic goes to stderr, prefixed \
'sonda:'. Durations are humantime ('500ms', '2s', '1m'; a bare number means \
seconds); sizes take K, M and G binary suffixes.",
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    // The global flags are listed after each subcommand's own.
    /// Print diagnostics to stderr (repeat for more).
    #[arg(short, long, action = ArgAction::Count, global = true, display_order = 1000)]
    pub verbose: u8,

    /// Print nothing to stderr but fatal errors.
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        display_order = 1001
    )]
    pub quiet: bool,

    /// Use IPv4 only.
    #[arg(
        short = '4',
        global = true,
        conflicts_with = "ipv6",
        display_order = 1002
    )]
    pub ipv4: bool,

    /// Use IPv6 only.
    #[arg(short = '6', global = true, display_order = 1003)]
    pub ipv6: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Accept TCP connections and relay them to stdin and stdout.
    #[command(
        override_usage = "sonda listen [OPTIONS] [HOST] PORT",
        long_about = "Listen on PORT and relay one TCP client to stdin and stdout, then exit. \
Without HOST, sonda listens on every interface of both families (a dual-stack [::] \
socket with IPV6_V6ONLY off, or 0.0.0.0 where the host has no IPv6). PORT 0 picks a \
free port, printed with -v. SO_REUSEADDR is on by default so a restarted listener \
binds while old connections sit in TIME-WAIT.\n\n\
When stdin reaches EOF the connection is half-closed (shutdown SHUT_WR) and sonda \
keeps reading until the client closes; when the client closes, stdout is closed at \
once. The session ends when both directions are finished.\n\n\
With -k, clients are served concurrently until interrupted: what each sends goes to \
stdout in whole chunks, stdin goes to every connected client (a client that does not \
read slows the fan-out for all), and stdin's EOF half-closes every current and \
future client. A client's EOF ends its session at once (a half-close cannot be told \
from a close): one that half-closes and then waits for an answer gets it without -k, \
from --echo, or through --to. Ctrl-C ends it with status 130; with -v it first says how many \
clients were served and how many bytes moved.\n\n\
Data moves in calls of 1 MiB, and what arrives is spliced (splice(2)) from the \
socket straight into a stdout pipe (not with -k, where clients share stdout in whole \
chunks); --no-splice forces the buffered path. Either way every byte that arrives is \
on stdout before sonda waits for more (the splice runs only once poll(2) reports \
data), so lock-step dialogues through sonda's pipes work.\n\n\
Exit 0 after sending data means the client's kernel acknowledged every byte and no \
reset had arrived; a client that closes with unread data (a reset) is exit 1."
    )]
    Listen(Box<ListenArgs>),

    /// Connect to HOST PORT over TCP and relay stdin and stdout.
    #[command(
        long_about = "Connect to PORT on HOST and relay stdin to the connection and the \
connection to stdout. The addresses HOST resolves to are tried within one \
--timeout: when they are of both families they are raced (RFC 8305 Happy Eyeballs: \
IPv6 first, the families alternating, each next address started when the one before \
has had 250 ms without an answer or has failed, the first to connect wins and the \
others are closed; -v reports each attempt's outcome and time), otherwise, or with \
--sequential or --timeout-method alarm, tried in turn. When stdin reaches EOF the connection is half-closed (shutdown SHUT_WR) \
and sonda keeps reading until the peer closes; when the peer closes, stdout is closed \
at once, and sonda goes on sending stdin when it is a pipe or a file (the peer may \
only have half-closed) or ends when it is a terminal, saying so on stderr \
(--stay-open keeps sending typed lines).\n\n\
Exit 0 after sending data means the peer's kernel acknowledged every byte and no \
reset had arrived when sonda ended: sonda waits for the send queue to drain \
(SIOCOUTQ) before it exits. A peer that closes with unread data resets the \
connection, which is exit 1 whichever direction notices first. (TCP cannot tell \
whether the peer's application then used the bytes.) When sonda ends because the \
peer closed while stdin was still open, only a reset that already came counts.\n\n\
Every byte that arrives is on stdout before sonda waits for more, also on the \
splice(2) path into a stdout pipe (which splices only after poll(2) reports data), \
so a lock-step dialogue driven through sonda's pipes by a coproc, an expect script \
or a FIFO forward works as with nc. When connect fails with an ICMP error (host or \
network unreachable, administratively prohibited), the hint names who sent it, \
read back from the socket's error queue (IP_RECVERR)."
    )]
    Connect(Box<ConnectArgs>),

    /// Send datagrams from stdin or --message over connected UDP.
    #[command(
        name = "udp-send",
        long_about = "Send UDP datagrams to PORT on HOST: by default each read of stdin, at most \
--size bytes, is one datagram, sent as soon as the read returns (as nc -u does: what \
a live writer such as tail -f writes at once goes at once, and separate writes are \
never merged; a larger write is cut at --size); with --lines, one datagram per line \
of stdin, sent as soon as its newline is read; or exactly --message TEXT. The socket is connected, so an ICMP port unreachable from the peer \
is reported ('port unreachable', exit 3): after the last datagram sonda waits up to \
100ms for one, so even a single datagram is checked.\n\n\
--count N sends N datagrams: the message N times, or the first N datagrams of \
stdin. --wait-reply DUR then prints every reply's payload to stdout until DUR \
passes without one; no reply at all exits 4."
    )]
    UdpSend(UdpSendArgs),

    /// Receive datagrams, never truncating one silently.
    #[command(
        name = "udp-recv",
        override_usage = "sonda udp-recv [OPTIONS] [HOST] PORT",
        long_about = "Bind PORT (every interface of both families without HOST) and receive \
datagrams. Each datagram is first peeked (MSG_PEEK with MSG_TRUNC, which returns its \
real length) into a buffer of --buffer bytes; if it did not fit, the buffer doubles \
up to --max-size before the datagram is received for real, so none is ever cut \
silently. A datagram larger than the buffer allows under --no-grow or --max-size is \
delivered truncated and reported on stderr (even without -v) with its real length; \
that does not change the exit status.\n\n\
By default payloads go to stdout back to back (datagram boundaries are not visible \
there); --show prints a line per datagram (time, sender, for UDP the destination \
with the interface it came in on, TTL and TOS, then length, truncated or not, an \
escaped preview) and --json one JSON object per datagram:\n\n\
{\"time\": RFC 3339 UTC, \"from\": \"ADDR:PORT\", \"to\": the destination \
address (a group, a broadcast address or this host's), \"ttl\": TTL or hop limit, \
\"tos\": TOS byte or traffic class, \"interface\": where it came in (these four \
null for a Unix socket), \"len\": bytes delivered, \
\"original_len\": the datagram's real length, \"truncated\": bool, \
\"payload_base64\": the delivered bytes}\n\n\
Multicast (--join, --source), the IP_MULTICAST_ALL trap and --reply: see \
MULTICAST in sonda-udp-recv(1).\n\n\
With -v, buffer growth and a summary at exit (datagrams, bytes, truncated, largest) \
go to stderr, also when interrupted.\n\n\
SO_REUSEADDR is off, so a port another socket holds is exit 5 ('sonda probe --udp \
PORT' shows who holds it): two UDP sockets that both set SO_REUSEADDR share a port, \
and the one bound last then gets every unicast datagram while the other gets none, \
which a diagnostic tool must not do to a running service behind its back. \
--reuseaddr shares the port on purpose."
    )]
    UdpRecv(UdpRecvArgs),

    /// Say why a port or a Unix socket path will not bind, and prove it.
    #[command(
        override_usage = "sonda probe [OPTIONS] [HOST] PORT\n       sonda probe [--json] -U PATH\n       sonda probe --reproduce [PORT]",
        long_about = "Answer \"why will this port not bind?\" in one command. sonda probe tries \
the bind for real on throw-away sockets (TCP: bind and listen) without SO_REUSEADDR, with \
it, and with SO_REUSEPORT; lists every socket on that local port with its state, peer, \
the time left for TIME-WAIT and the owning process; points out what the usual tools \
miss; and gives a verdict with advice. Without HOST it probes what 'sonda listen PORT' \
binds: [::] dual-stack (and 0.0.0.0 beside it).\n\n\
The table comes from NETLINK_SOCK_DIAG with the port filter in the kernel request, as \
ss reads it, or from /proc/net when netlink is unavailable. Owners are found by \
matching socket inodes under /proc/*/fd; another user's processes are \"not visible\" \
unless run as root. The trial bind holds the port for an instant: a client connecting \
at that moment is refused or reset.\n\n\
TIME-WAIT, briefly: the side that closes a TCP connection first keeps it in TIME-WAIT \
for 2*MSL (60 s on Linux) so late segments of the old connection cannot corrupt a new \
one. A listener without SO_REUSEADDR cannot bind while any such connection exists on \
its port; SO_REUSEADDR allows it (but never beside another listener). SO_REUSEPORT \
is different: every socket that sets it may bind and listen on the same port at once, \
and the kernel splits new connections between them.\n\n\
UDP (--udp) has no TIME-WAIT and no listeners: a UDP port is held by a bound UDP \
socket, named with its owner. There SO_REUSEADDR does not step past old state; it \
lets sockets that all set it share the port, and the one bound last then gets every \
unicast datagram, so a second receiver steals the first one's datagrams. \
SO_REUSEPORT shares the port between sockets of one user, split by sender.\n\n\
--bind-device IFACE probes the bind a listener with that option makes (SO_BINDTODEVICE, \
set on the trial sockets before they bind, as 'sonda listen --bind-device' does): the \
kernel lets sockets bound to different interfaces share a port, so sockets bound to \
another interface are listed last and noted, and do not enter the verdict; a socket \
bound to no interface meets every bind. The table shows a socket's interface as ss \
does (0.0.0.0%lo:8080; /proc/net does not tell it). --mark, --tos and --ttl are set \
too, but change nothing a bind decides. An option the kernel refuses (no such \
interface, --mark without CAP_NET_ADMIN) is the error it is for listen, exit 1.\n\n\
--json prints one object: {\"proto\", \"port\", \"source\" (\"sock_diag\" or \
\"/proc/net\"), \"binds\": [{\"address\", \"dual_stack\", \"options\" (\"plain\", \"SO_REUSEADDR\", \
\"SO_REUSEPORT\"), \"ok\", \"errno\" (e.g. \"EADDRINUSE\", null when ok), \"error\"}], \
\"sockets\": [{\"proto\", \"state\", \"local\", \"remote\", \"expires_ms\" (null \
without a timer), \"uid\", \"inode\", \"v6only\" (null when unknown), \"device\" (the interface it is \
bound to, null for none or from /proc/net), \"owners\": \
[{\"pid\", \"command\"}], \"owner_visible\"}], \"findings\": [{\"kind\", \"text\"}], \
\"verdict\": {\"bind_ok\", \"text\"}}.\n\n\
-U PATH (Unix domain sockets) asks the same of a socket path, whose bind fails \
whenever anything is there. A socket is bound to a file's inode, not to its name, so \
probe compares the file at PATH (stat: inode and device) with every Unix socket the \
kernel lists (NETLINK_SOCK_DIAG unix_diag: name, the inode and device of the file \
it is bound to, peer, queue, uid; or /proc/net/unix when netlink is unavailable, \
which shows names but not files) and says which of these it is: free (nothing there, \
exit 0; a trial bind, whose file is removed at once, proves the directory takes it); \
a live listener (exit 5: its pid, command and uid, pending connections and backlog, \
connected peers); a stale socket file that no socket is bound to (exit 5: safe to \
remove, or 'sonda listen -U PATH --unlink-stale'); an orphaned listener, one with \
the same name but bound to a file since unlinked or replaced, which no client can \
reach by path (reported beside the state of the file at PATH, which sets the exit \
status); or not a socket (exit 5). @NAME is a Linux abstract name: no file, matched \
by name, tried with a stream and a datagram bind (the kernel keeps one abstract \
namespace per socket type). Only this network namespace's sockets are visible. A \
relative path that begins with @ is written ./@NAME.\n\n\
With -U, --json prints one object: {\"path\", \"abstract\", \"source\" \
(\"sock_diag\" or \"/proc/net/unix\"), \"file\": null or {\"kind\", \"inode\", \
\"device\" (\"MAJOR:MINOR\"), \"uid\", \"gid\", \"mode\", \"link_target\"}, \"binds\": \
[{\"type\", \"ok\", \"errno\", \"error\"}], \"sockets\": [{\"type\", \"state\", \"role\" \
(\"listener\", \"bound\", \"connection\", \"pending\"), \"binding\" (\"this-file\", \
\"other-inode\", \"unknown\", \"abstract\"), \"inode\", \"name\", \"file_inode\", \
\"file_device\", \"uid\", \"pending\", \"backlog\", \"peer\", \"peer_owners\", \
\"owners\": [{\"pid\", \"command\"}], \"owner_visible\"}], \"holder\": the socket the \
verdict is about or null, \"connected_peers\", \"findings\": [{\"kind\", \"text\"}], \
\"verdict\": {\"state\" (\"free\", \"live\", \"stale\", \"orphaned\", \
\"not-a-socket\"), \"bind_ok\", \"text\"}, \"hint\": a command to run, or null}.\n\n\
--reproduce makes TIME-WAIT on loopback and shows the two outcomes: a listener opens, \
a client connects, the server side closes first so its end enters TIME-WAIT; then a \
bind without SO_REUSEADDR fails with EADDRINUSE and one with it succeeds, with the \
socket table at each step. It closes every socket it opened; the TIME-WAIT entry \
itself expires on its own."
    )]
    Probe(ProbeArgs),

    /// Measure throughput and latency, over loopback or between two hosts.
    #[command(
        override_usage = "sonda bench [OPTIONS]\n       sonda bench --server [HOST] [PORT] [--once]\n       sonda bench --client HOST [PORT] [OPTIONS]\n       sonda bench -U PATH [OPTIONS]\n       sonda bench --server -U PATH [--once]\n       sonda bench --client -U PATH [OPTIONS]",
        long_about = "Measure TCP or UDP throughput (--mode stream) or request/response latency \
(--mode rr). With no arguments, sonda starts its own server and client over loopback \
and measures a 5-second TCP stream: nothing to set up. --server and --client run the \
same measurement between two hosts, the way iperf3 does; the client chooses every \
parameter and the server reports its side back over a small versioned control \
exchange on TCP (a peer that is not a sonda bench server is an error within \
--control-timeout). -U PATH runs the same stream and rr tests over a Unix stream \
socket instead, locally or with --server -U PATH and --client -U PATH (see UNIX \
DOMAIN SOCKETS in sonda-bench(1)).\n\n\
Throughput is counted by the receiver, over the test time after --omit. In a timed \
test, bytes still queued at the sender when it ends (megabytes, behind a tiny \
--rcvbuf) get a quarter of --control-timeout to arrive; the receiver counts what has \
arrived by then and says on stderr that it stopped waiting. TCP moves \
data in calls of --size bytes (default 1 MiB: on these machines the cost is wake-ups, \
so fewer, larger calls are faster; SO_SNDBUF/SO_RCVBUF are left to the kernel's \
autotuning unless --sndbuf/--rcvbuf are given). UDP sends --size-byte datagrams \
(default 1472) as fast as possible or at --rate, each carrying a sequence number, so \
the receiver counts loss and reordering; UDP GSO on the sender and GRO on the \
receiver batch datagrams through the kernel (on by default, --no-gso to compare), and \
the receiver asks for a 4 MiB receive buffer. --mode rr ping-pongs --size bytes \
(default 1) and reports latency percentiles from an HDR histogram, with the CPU each \
side ran on (latency depends on whether client and server share a vCPU; --pin \
places them).\n\n\
The summary goes to stdout; a progress bar with the live rate goes to stderr only \
when stderr is a terminal. With --interval, intervals start at the end of --omit and \
fall every --interval from there, the last one (possibly shorter) ending with the test. \
Ctrl-C stops a test early: the figures so far go to stdout (in the same form: the table, \
or with --json one document with \"interrupted\": true; rr gives the transactions \
finished so far), counted by the receiver where this process has its count (a local \
run, or --reverse), else by the sender, which the figures then say. What this process \
did not measure is null in JSON and unknown in the table, never a guess: in a --client \
test the server's counts (datagrams received, loss, reordering, its bytes per call), \
and in any interrupted test the CPU figures, as the workers are still running; the \
status is 130. --json prints one \
document: {\"version\", \"params\": {the test parameters}, \"target\", \"results\": \
[{\"direction\" (\"client->server\" or \"server->client\"), \"counted_by\" \
(\"receiver\", or \"sender\" in an interrupted test), \"streams\", \"bytes\", \"seconds\", \"bits_per_second\", \
\"sender_cpu_percent\", \"receiver_cpu_percent\", \"bytes_per_send_call\", \
\"bytes_per_recv_call\", \"datagrams_sent\", \"datagrams_received\", \"lost\", \
\"loss_percent\", \"reordered\" (UDP only, else null; any of these null when not \
measured)}], \"intervals\": [{\"start\", \
\"end\", \"bytes\", \"bits_per_second\"}], \"latency\": {\"transactions\", \
\"transactions_per_second\", \"lost\", \"min_us\", \"p50_us\", \"p90_us\", \"p99_us\", \
\"p99_9_us\", \"max_us\", \"client_cpu\", \"server_cpu\"} (rr only, else null), \
\"interrupted\"}.\n\n\
A server checks every request with the ranges of the flags below (--size, --streams, \
--duration, --omit, --interval, --sndbuf, --rcvbuf, --rcvlowat, --rate, --pin against \
its own CPUs, and at most 256M of buffers per side) and refuses one outside them with \
the reason, which the client prints (exit 1). Once the control connection is up, a step \
that --control-timeout ends is exit 1, like any other failure of the exchange: the peer \
answered, but not as a working sonda bench server."
    )]
    Bench(BenchArgs),

    /// Write man pages or shell completions (for packagers).
    #[command(hide = true)]
    Generate(GenerateArgs),
}

/// `[HOST] PORT`, as typed; `cmd::listen` splits and checks it.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Address to listen on (default: every interface), then the port (0
    /// picks a free one); or HOST:PORT, an IPv6 address in brackets.
    #[arg(value_name = "[HOST] PORT", num_args = 1..=2, required_unless_present = "unix")]
    pub addr: Vec<String>,

    /// Listen on a Unix domain socket at PATH instead (@NAME: a Linux
    /// abstract name). The file is created, and removed when sonda exits;
    /// an existing path is never replaced (see --unlink-stale).
    #[arg(short = 'U', long, value_name = "PATH", value_parser = unix_addr_parser(), conflicts_with_all = ["addr", "allow", "deny", "reuseport", "no_reuseaddr"])]
    pub unix: Option<UnixAddr>,

    /// With -U, SOCK_SEQPACKET instead of SOCK_STREAM: each record is read
    /// whole, whatever its size, and --echo returns it as one record; an
    /// empty record reads as the end (read(2) returns 0 for both).
    #[arg(long, requires = "unix")]
    pub seqpacket: bool,

    /// With -U, remove a stale socket file at PATH first: only a socket
    /// file no socket is bound to (checked in the kernel's socket table),
    /// never a live socket or any other file.
    #[arg(long, requires = "unix")]
    pub unlink_stale: bool,

    /// Serve clients concurrently and keep listening after each one ends
    /// (a client's EOF ends its session: it cannot be told from a close).
    #[arg(short = 'k', long)]
    pub keep_open: bool,

    /// With -k, the most clients served at once (default 100); a
    /// connection over the limit is closed at once, unread.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_conns: Option<u32>,

    /// Accept clients only from this address or CIDR block (repeatable).
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    pub allow: Vec<IpNet>,

    /// Close connections from this address or CIDR block at once, unread
    /// (repeatable; wins over --allow).
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    pub deny: Vec<IpNet>,

    /// Send back everything a client sends; stdin is ignored.
    #[arg(long, conflicts_with_all = ["sink", "send_only", "recv_only"])]
    pub echo: bool,

    /// Read and discard what clients send (bytes per client with -v);
    /// stdin is ignored and nothing is written to stdout.
    #[arg(long, conflicts_with_all = ["send_only", "recv_only"])]
    pub sink: bool,

    /// Leave SO_REUSEADDR off: bind fails while connections on the port
    /// are in TIME-WAIT.
    #[arg(long)]
    pub no_reuseaddr: bool,

    /// Set SO_REUSEPORT: share the port with other sockets that set it.
    #[arg(long)]
    pub reuseport: bool,

    /// Draw a progress bar on stderr (bytes each way, rate, elapsed; a total
    /// when stdin is a regular file), only when stderr is a terminal. One
    /// client at a time (without -k).
    #[arg(long)]
    pub progress: bool,

    /// Length of the accept queue passed to listen(2).
    #[arg(long, value_name = "N", default_value_t = 128,
          value_parser = clap::value_parser!(i32).range(0..))]
    pub backlog: i32,

    #[command(flatten)]
    pub socket: SocketArgs,

    #[command(flatten)]
    pub relay: RelayArgs,

    #[command(flatten)]
    pub tls: ListenTlsArgs,

    #[command(flatten)]
    pub forward: ForwardArgs,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Host name or address (IPv6 with or without brackets; a link-local
    /// IPv6 address with its interface, fe80::1%eth0), or HOST:PORT
    /// with an IPv6 address in brackets, without a separate PORT.
    #[arg(required_unless_present = "unix")]
    pub host: Option<String>,

    /// Port, 0-65535; with -z, a list of ports and ranges (20-25,80,443),
    /// or several such arguments (as nc -z takes them: 22 80 8000-8100).
    #[arg(value_name = "PORT")]
    pub port: Vec<String>,

    /// Connect to the Unix domain socket at PATH instead of HOST PORT
    /// (@NAME: a Linux abstract name).
    #[arg(short = 'U', long, value_name = "PATH", value_parser = unix_addr_parser(), conflicts_with_all = ["host", "port", "zero_io", "source"])]
    pub unix: Option<UnixAddr>,

    /// With -U, SOCK_SEQPACKET instead of SOCK_STREAM: each read of stdin
    /// goes as one record, each record received is read whole; an empty
    /// record reads as the end (read(2) returns 0 for both).
    #[arg(long, requires = "unix")]
    pub seqpacket: bool,

    /// Give up connecting after DUR (all addresses together; with -U, a
    /// listener whose backlog is full); exit 4. With -z, the bound on each
    /// probe (default 1s).
    #[arg(short = 'w', long, value_name = "DUR", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Zero-I/O mode: scan PORT (a list) for listeners and send nothing;
    /// open ports are printed in port order, closed and filtered ones with -v.
    /// Every address HOST resolves to is scanned (nc scans only the first),
    /// each on lines of its own. Every probe comes from -s/-p and carries
    /// the socket options (--mark, --bind-device, --tos, --ttl).
    #[arg(short = 'z', long)]
    pub zero_io: bool,

    /// With -z, probe UDP: an empty datagram per port; ICMP port
    /// unreachable is closed, a reply open, silence open|filtered. Exit 0
    /// when any port is open or open|filtered, 3 when all are closed.
    #[arg(long, requires = "zero_io")]
    pub udp: bool,

    /// With -z, the most probes in flight (default: 512, fewer if the
    /// descriptor limit is lower; the soft limit is raised to the hard one).
    #[arg(long, value_name = "N", requires = "zero_io",
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub concurrency: Option<u32>,

    /// With -z, print one JSON object per port (every port, any state).
    #[arg(long, requires = "zero_io")]
    pub json: bool,

    /// Try again up to N more times when the connect fails (refused, timed
    /// out, unreachable, name not found); the exit status is the last
    /// attempt's.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        conflicts_with = "zero_io"
    )]
    pub retry: u32,

    /// Wait DUR before the first retry, doubling after each failure up to
    /// ten times DUR.
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = parse_duration)]
    pub retry_delay: Duration,

    /// Stop retrying once DUR has passed since the first attempt.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub retry_until: Option<Duration>,

    /// Draw a progress bar on stderr (bytes each way, rate, elapsed; a total
    /// when stdin is a regular file), only when stderr is a terminal.
    #[arg(long, conflicts_with = "zero_io")]
    pub progress: bool,

    /// How the connect timeout is enforced.
    #[arg(long, value_name = "METHOD", value_enum, default_value_t = TimeoutMethodArg::Poll)]
    pub timeout_method: TimeoutMethodArg,

    /// Try the addresses of a name one at a time, in the resolver's order,
    /// instead of racing IPv6 and IPv4 (RFC 8305: IPv6 first, the next
    /// address 250 ms later, the first to connect wins). The alarm method
    /// is always sequential. Under -w each address gets an equal share of
    /// the time left (two addresses, -w 2s: 1s each), so one that never
    /// answers does not keep the next from being tried.
    #[arg(long)]
    pub sequential: bool,

    /// Bind to this local address (and port) before connecting; a busy port
    /// is an error, never replaced by another. With a fixed port,
    /// SO_REUSEADDR is set, so the port can be used again while the last
    /// connection from it is in TIME-WAIT (as with ncat -p).
    #[arg(short = 's', long, value_name = "ADDR[:PORT]", value_parser = parse_source)]
    pub source: Option<std::net::SocketAddr>,

    /// Connect from this local port (a number or a service name), on any
    /// local address (nc -p), or on the -s address; SO_REUSEADDR as with
    /// -s ADDR:PORT. With -z every probe comes from this port.
    #[arg(short = 'p', long, value_name = "PORT", value_parser = parse_source_port,
          conflicts_with = "unix")]
    pub source_port: Option<u16>,

    #[command(flatten)]
    pub socket: SocketArgs,

    #[command(flatten)]
    pub relay: RelayArgs,

    #[command(flatten)]
    pub tls: ConnectTlsArgs,

    #[command(flatten)]
    pub proxy: ProxyArgs,
}

/// Proxies on connect.
#[derive(Debug, Args)]
#[command(next_help_heading = "Proxy")]
pub struct ProxyArgs {
    // The text is an attribute, not a doc comment: rustdoc would read the
    // URL's brackets as links.
    #[arg(long, value_name = "URL", value_parser = parse_proxy, conflicts_with = "unix",
          help = "Connect through this proxy: socks5://[USER[:PASS]@]HOST:PORT, \
socks4a://[USER@]HOST:PORT or http://[USER[:PASS]@]HOST:PORT (HTTP CONNECT). A user without a \
password takes it from SONDA_PROXY_PASSWORD, so it never shows in ps. -w bounds the connect and \
the proxy's answer together (30s for the answer without -w); -v reports each stage with its time. \
--tls and --starttls run over the tunnel.")]
    pub proxy: Option<ProxyUrl>,

    /// Who resolves HOST: the proxy (remote, the default) or this host
    /// (local, the first address in the -4/-6 family goes to the proxy).
    #[arg(long, value_name = "WHERE", value_enum, default_value_t = ProxyDnsArg::Remote, requires = "proxy")]
    pub proxy_dns: ProxyDnsArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProxyDnsArg {
    Remote,
    Local,
}

/// A bench group is an address alone: each receiver joins on the
/// interface of the address the client reached it at.
fn parse_bench_group(s: &str) -> Result<std::net::IpAddr, String> {
    if s.contains('@') {
        return Err(
            "GROUP@IFACE is udp-recv's: a bench receiver joins on the interface \
the client reached it by"
                .into(),
        );
    }
    s.parse()
        .map_err(|_| "expected a multicast group address (239.1.1.1, ff15::1)".into())
}

fn parse_source_port(s: &str) -> Result<u16, String> {
    crate::engine::addr::parse_port(s)
}

fn parse_proxy(s: &str) -> Result<ProxyUrl, String> {
    ProxyUrl::parse(s)
}

/// TLS on connect.
#[derive(Debug, Args)]
#[command(next_help_heading = "TLS")]
pub struct ConnectTlsArgs {
    /// Speak TLS, verifying the server's certificate against the system
    /// roots (or --ca): exit 7 when the handshake fails or the certificate
    /// is not trusted. With -z, handshake only and print the report on
    /// stdout (--json: one object); -v prints it on stderr in a relay.
    #[arg(long, conflicts_with = "seqpacket")]
    pub tls: bool,

    /// Trust the CA certificates in FILE (PEM) instead of the system roots.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub ca: Option<PathBuf>,

    /// Go on when the certificate is not trusted, with a warning naming
    /// every problem on stderr.
    #[arg(long, requires = "tls")]
    pub insecure: bool,

    /// The name sent as SNI and verified (default: HOST; an IP address is
    /// verified against the certificate's IP SANs and sends no SNI).
    #[arg(long, value_name = "NAME", requires = "tls")]
    pub servername: Option<String>,

    /// Send no SNI (the name is still verified).
    #[arg(long, requires = "tls")]
    pub no_sni: bool,

    /// Offer these ALPN protocols, comma-separated (h2,http/1.1).
    #[arg(long, value_name = "LIST", requires = "tls")]
    pub alpn: Option<String>,

    /// Present this client certificate chain (PEM), with --key.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "key"])]
    pub cert: Option<PathBuf>,

    /// The private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "cert"])]
    pub key: Option<PathBuf>,

    /// Trust exactly the leaf certificate whose SHA-256 is HEX (64 hex
    /// digits, colons allowed), whatever its chain and names.
    #[arg(long, value_name = "HEX", requires = "tls", value_parser = parse_pin_sha256)]
    pub pin_sha256: Option<[u8; 32]>,

    /// The lowest TLS version accepted (1.2 by default).
    #[arg(long, value_name = "VERSION", requires = "tls", value_parser = ["1.2", "1.3"])]
    pub tls_min: Option<String>,

    /// Speak PROTO's plaintext preamble first (SMTP EHLO+STARTTLS, IMAP
    /// STARTTLS, POP3 STLS, FTP AUTH TLS, PostgreSQL SSLRequest), then the
    /// handshake on the same connection; bytes the server sends after its
    /// go-ahead are an error (exit 7), never passed on. -v shows the
    /// exchange.
    #[arg(long, value_name = "PROTO", value_enum, requires = "tls")]
    pub starttls: Option<StarttlsArg>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StarttlsArg {
    Smtp,
    Imap,
    Pop3,
    Ftp,
    Postgres,
}

/// TLS on listen.
#[derive(Debug, Args)]
#[command(next_help_heading = "TLS")]
pub struct ListenTlsArgs {
    /// Speak TLS to each client. Without --cert/--key an ephemeral
    /// self-signed ECDSA certificate is made for the listening names, and
    /// its SHA-256 fingerprint printed on stderr (for connect --pin-sha256).
    #[arg(long, conflicts_with = "seqpacket")]
    pub tls: bool,

    /// The certificate chain to present (PEM), with --key.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "key"])]
    pub cert: Option<PathBuf>,

    /// The private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "cert"])]
    pub key: Option<PathBuf>,

    /// Require a client certificate issued by a CA in FILE (PEM); -v names
    /// each client's subject.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub client_ca: Option<PathBuf>,

    /// Accept these ALPN protocols, comma-separated, in order of preference.
    #[arg(long, value_name = "LIST", requires = "tls")]
    pub alpn: Option<String>,
}

/// Forwarding on listen (`--to`).
#[derive(Debug, Args)]
#[command(next_help_heading = "Forwarding")]
pub struct ForwardArgs {
    /// Forward each client to TARGET instead of relaying stdin and stdout:
    /// HOST:PORT (an IPv6 HOST in brackets) or unix:PATH (unix:@NAME, an
    /// abstract name).
    /// Each client gets its own upstream connection, bytes go both ways
    /// and each end of stream is passed on (half-close); with -k, clients
    /// at once. A failed upstream connect resets the client.
    #[arg(long, value_name = "TARGET", conflicts_with_all = [
        "echo", "sink", "send_only", "recv_only", "crlf", "hexdump", "quit_after",
        "progress", "exit_on_eof", "stay_open", "no_shutdown", "seqpacket",
    ])]
    pub to: Option<String>,

    /// Give up each upstream connect after DUR (default 10s).
    #[arg(long, value_name = "DUR", value_parser = parse_duration, requires = "to")]
    pub to_timeout: Option<Duration>,

    /// Speak TLS to the upstream, verified against the system roots (or
    /// --to-ca) for the HOST of --to; an untrusted upstream resets the
    /// client.
    #[arg(long, requires = "to")]
    pub to_tls: bool,

    /// Trust the CA certificates in FILE (PEM) for the upstream instead of
    /// the system roots.
    #[arg(long, value_name = "FILE", requires = "to_tls")]
    pub to_ca: Option<PathBuf>,

    /// Trust the upstream whose leaf certificate has this SHA-256.
    #[arg(long, value_name = "HEX", requires = "to_tls", value_parser = parse_pin_sha256)]
    pub to_pin_sha256: Option<[u8; 32]>,

    /// Verify the upstream's certificate for NAME instead of HOST (and send
    /// it as SNI).
    #[arg(long, value_name = "NAME", requires = "to_tls")]
    pub to_servername: Option<String>,

    /// Go on with an upstream certificate that is not trusted.
    #[arg(long, requires = "to_tls")]
    pub to_insecure: bool,
}

/// `--pin-sha256`: 64 hex digits, colons (as openssl prints them) allowed.
fn parse_pin_sha256(s: &str) -> Result<[u8; 32], String> {
    let digits: String = s.chars().filter(|c| *c != ':').collect();
    if digits.len() != 64 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("a SHA-256 fingerprint is 64 hex digits (colons allowed)".into());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TimeoutMethodArg {
    /// Non-blocking connect, poll(2) for writability until the deadline,
    /// then SO_ERROR.
    Poll,
    /// Blocking connect interrupted by SIGALRM from a sub-second timer.
    Alarm,
}

/// Options on the connected socket.
#[derive(Debug, Args)]
pub struct SocketArgs {
    /// Set TCP_NODELAY (send small writes at once, no Nagle).
    #[arg(long)]
    pub nodelay: bool,

    /// Set SO_SNDBUF (turns off the kernel's send buffer autotuning).
    #[arg(long, value_name = "SIZE", value_parser = parse_buffer_size)]
    pub sndbuf: Option<usize>,

    /// Set SO_RCVBUF (turns off the kernel's receive buffer autotuning).
    #[arg(long, value_name = "SIZE", value_parser = parse_buffer_size)]
    pub rcvbuf: Option<usize>,

    /// Turn on TCP keepalive, probing after DUR of silence and every DUR;
    /// whole seconds from 1s to 32767s (TCP_KEEPIDLE's range).
    #[arg(long, value_name = "DUR", value_parser = parse_keepalive)]
    pub keepalive: Option<Duration>,

    #[command(flatten)]
    pub ip: IpArgs,
}

/// IP-level options, set on every socket a command opens before its first
/// packet.
#[derive(Debug, Args)]
pub struct IpArgs {
    /// Set SO_MARK to N, the mark firewall rules and policy routing see
    /// (needs CAP_NET_ADMIN).
    #[arg(long, value_name = "N", value_parser = parse_mark)]
    pub mark: Option<u32>,

    /// Use only interface IFACE (SO_BINDTODEVICE; needs CAP_NET_RAW).
    #[arg(long, value_name = "IFACE", value_parser = parse_iface)]
    pub bind_device: Option<String>,

    /// Set the IP TOS byte (IPv6 traffic class), 0-255; DSCP is the top
    /// six bits (0xb8 is EF). Hex with 0x.
    #[arg(long, value_name = "N", value_parser = parse_u8)]
    pub tos: Option<u8>,

    /// Set the IP TTL (IPv6 hop limit) of outgoing packets, 1-255.
    #[arg(long, value_name = "N", value_parser = parse_ttl)]
    pub ttl: Option<u8>,
}

fn parse_join_arg(s: &str) -> Result<(std::net::IpAddr, Option<String>), String> {
    let (group, iface) = crate::engine::multicast::parse_join(s)?;
    match iface {
        Some(i) => Ok((group, Some(parse_iface(&i)?))),
        None => Ok((group, None)),
    }
}

/// A number, decimal or 0x hex.
fn parse_number(s: &str) -> Option<u64> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

fn parse_mark(s: &str) -> Result<u32, String> {
    parse_number(s)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| "a mark is a number from 0 to 4294967295 (0x hex allowed)".into())
}

fn parse_u8(s: &str) -> Result<u8, String> {
    parse_number(s)
        .and_then(|n| u8::try_from(n).ok())
        .ok_or_else(|| "a number from 0 to 255 (0x hex allowed)".into())
}

fn parse_ttl(s: &str) -> Result<u8, String> {
    match parse_u8(s) {
        Ok(0) | Err(_) => Err("a TTL is a number from 1 to 255".into()),
        Ok(n) => Ok(n),
    }
}

/// An interface name as the kernel takes it: 1 to 15 bytes, no '/', no
/// spaces.
fn parse_iface(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 15 || s.contains(['/', ' ', '\0']) {
        return Err("an interface name is 1 to 15 bytes without '/' or spaces".into());
    }
    Ok(s.to_string())
}

/// How the relay runs.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// End the session (exit 4) when no byte has moved either way for DUR
    /// (bytes the peer acknowledges count). Under listen -k the idle client
    /// is closed instead and the listener goes on.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,

    /// Only send stdin; what arrives is read and discarded. Ends at stdin's
    /// EOF once the peer has acknowledged every byte; a reset is exit 1.
    #[arg(long, conflicts_with = "recv_only")]
    pub send_only: bool,

    /// Only receive to stdout; stdin is never read and nothing is sent.
    #[arg(long)]
    pub recv_only: bool,

    /// Do not half-close the connection at stdin's EOF.
    #[arg(long)]
    pub no_shutdown: bool,

    /// End when the peer closes, even while stdin is still open (the
    /// default when stdin is a terminal; a pipe or a file is sent to its
    /// end, since the peer may only have half-closed). What stdin still
    /// holds then is not sent; what was sent must still be acknowledged
    /// for exit 0.
    #[arg(long)]
    pub exit_on_eof: bool,

    /// When stdin is a terminal, keep sending typed lines after the peer
    /// closed, until stdin's EOF or until the peer refuses them.
    #[arg(long, conflicts_with = "exit_on_eof")]
    pub stay_open: bool,

    /// Always copy through a user-space buffer: no splice(2) from the
    /// socket into a stdout pipe.
    #[arg(long)]
    pub no_splice: bool,

    /// Send each LF of stdin as CRLF (an LF already after a CR is left
    /// alone), for SMTP or HTTP typed by hand.
    #[arg(long)]
    pub crlf: bool,

    /// Dump both directions as hex and text, each chunk with its
    /// direction (> sent, < received), time since the start and offset,
    /// to stderr or to FILE (--hexdump=FILE). Turns splice off.
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true, default_missing_value = "-")]
    pub hexdump: Option<PathBuf>,

    /// End DUR after stdin's EOF even if the peer has not closed, exit 0
    /// (nc -q; 0 ends once what was sent is acknowledged). For peers that
    /// never close.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub quit_after: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct UdpSendArgs {
    /// Host name or address (IPv6 with or without brackets; a link-local
    /// IPv6 address with its interface, fe80::1%eth0), or HOST:PORT
    /// with an IPv6 address in brackets, without a separate PORT.
    #[arg(required_unless_present = "unix")]
    pub host: Option<String>,

    /// Port, 0-65535.
    #[arg(value_name = "PORT")]
    pub port: Option<String>,

    /// Send to the Unix datagram socket at PATH instead (@NAME: a Linux
    /// abstract name). The sending socket is bound to an abstract name of
    /// its own, so replies can reach it.
    #[arg(short = 'U', long, value_name = "PATH", value_parser = unix_addr_parser(), conflicts_with_all = ["host", "port", "source", "broadcast"])]
    pub unix: Option<UnixAddr>,

    /// Largest datagram cut from stdin, in bytes (1-65527; IPv4 carries at
    /// most 65507; a Unix datagram may be larger, up to the socket buffer).
    #[arg(long, value_name = "N", default_value = "1472", value_parser = parse_datagram_size)]
    pub size: usize,

    /// Send one datagram per line of stdin, without its newline, as soon as
    /// the line is complete (an empty line is an empty datagram; a line
    /// longer than --size is an error).
    #[arg(long, conflicts_with = "message")]
    pub lines: bool,

    /// Send exactly TEXT instead of reading stdin.
    #[arg(long, value_name = "TEXT")]
    pub message: Option<String>,

    /// Datagrams to send: the message N times (default once), or at most N
    /// from stdin (default all of it).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Pause DUR between datagrams.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub interval: Option<Duration>,

    /// After sending, print replies to stdout until DUR passes without one;
    /// exit 4 if none came.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub wait_reply: Option<Duration>,

    /// Bind to this local address (and port) first.
    #[arg(short = 's', long, value_name = "ADDR[:PORT]", value_parser = parse_source)]
    pub source: Option<std::net::SocketAddr>,

    /// Send from this local port (a number or a service name), on any local
    /// address (nc -u -p), or on the -s address.
    #[arg(short = 'p', long, value_name = "PORT", value_parser = parse_source_port,
          conflicts_with = "unix")]
    pub source_port: Option<u16>,

    /// Set SO_BROADCAST, to send to a broadcast address (without it the
    /// kernel refuses one: "permission denied", exit 1, with a hint).
    #[arg(long)]
    pub broadcast: bool,

    /// To a multicast group: send out of interface IFACE (IP_MULTICAST_IF,
    /// IPV6_MULTICAST_IF) rather than where the group's route leads.
    #[arg(long, value_name = "IFACE", value_parser = parse_iface)]
    pub multicast_if: Option<String>,

    /// To a multicast group: no copy for receivers on this host (the
    /// kernel's default, kept otherwise, loops one back).
    #[arg(long)]
    pub no_multicast_loop: bool,

    #[command(flatten)]
    pub ip: IpArgs,
}

#[derive(Debug, Args)]
pub struct UdpRecvArgs {
    /// Address to bind (default: every interface), then the port (0 picks a
    /// free one); or HOST:PORT, an IPv6 address in brackets.
    #[arg(value_name = "[HOST] PORT", num_args = 1..=2, required_unless_present = "unix")]
    pub addr: Vec<String>,

    /// Receive on a Unix datagram socket at PATH instead (@NAME: a Linux
    /// abstract name); the file is removed when udp-recv exits.
    #[arg(short = 'U', long, value_name = "PATH", value_parser = unix_addr_parser(), conflicts_with_all = ["addr", "reuseaddr", "no_reuseaddr"])]
    pub unix: Option<UnixAddr>,

    /// Initial receive buffer, in bytes.
    #[arg(long, value_name = "N", default_value = "2048", value_parser = parse_datagram_buffer)]
    pub buffer: usize,

    /// Largest the buffer may grow to, in bytes; at least --buffer
    /// (default: 65535, or --buffer if that is larger).
    #[arg(long, value_name = "N", value_parser = parse_datagram_buffer)]
    pub max_size: Option<usize>,

    /// Keep the buffer at --buffer: larger datagrams are delivered truncated
    /// and reported.
    #[arg(long)]
    pub no_grow: bool,

    /// Print a line per datagram (time, sender, length, truncated, escaped
    /// preview; for UDP also destination, TTL and TOS) instead of the raw
    /// payload.
    #[arg(long, conflicts_with = "json")]
    pub show: bool,

    /// Print one JSON object per datagram (payload in base64).
    #[arg(long)]
    pub json: bool,

    /// Exit after N datagrams.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Exit 4 when no datagram arrives for DUR.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Send every datagram back to its sender.
    #[arg(long)]
    pub echo: bool,

    /// Set SO_REUSEADDR, to share the port on purpose with sockets that set
    /// it too. Off by default, so a port another socket holds is exit 5:
    /// of two receivers on one port, the one bound last gets every unicast
    /// datagram and the other none.
    #[arg(long)]
    pub reuseaddr: bool,

    /// What udp-recv does by default now; still accepted so scripts that
    /// asked for it keep working.
    #[arg(long, hide = true, conflicts_with = "reuseaddr")]
    pub no_reuseaddr: bool,

    /// Join multicast GROUP (IPv4 224.0.0.0/4, IPv6 ff00::/8) on interface
    /// IFACE, by default the one the group's route leads to; repeat for
    /// more groups. Only joined groups are delivered (IP_MULTICAST_ALL
    /// off).
    #[arg(long, value_name = "GROUP[@IFACE]", value_parser = parse_join_arg, conflicts_with = "unix")]
    pub join: Vec<(std::net::IpAddr, Option<String>)>,

    /// With --join: a source-specific join (SSM): only datagrams sent by
    /// address S.
    #[arg(long, value_name = "S", requires = "join")]
    pub source: Option<std::net::IpAddr>,

    /// Send stdin to the last sender, the 'nc -u -l' session: each read of
    /// stdin (or each line, with --lines) is one datagram, held until a
    /// first datagram names the peer.
    #[arg(long, conflicts_with = "echo")]
    pub reply: bool,

    /// With --reply: one datagram per line of stdin, without its newline.
    #[arg(long, requires = "reply")]
    pub lines: bool,

    #[command(flatten)]
    pub ip: IpArgs,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Address to probe (default: what 'sonda listen PORT' binds), then the
    /// port, or HOST:PORT; with --reproduce, an optional port (default: a
    /// free one).
    #[arg(
        value_name = "[HOST] PORT",
        num_args = 0..=2,
        required_unless_present_any = ["unix", "reproduce"]
    )]
    pub addr: Vec<String>,

    /// Probe a Unix domain socket path instead of a port (@NAME: a Linux
    /// abstract name): free, a live listener, a stale socket file, an
    /// orphaned listener, or not a socket. At most 107 bytes.
    #[arg(
        short = 'U',
        long = "unix",
        value_name = "PATH",
        value_parser = unix_addr_parser(),
        conflicts_with_all = ["addr", "udp", "reproduce"]
    )]
    pub unix: Option<UnixAddr>,

    /// Probe UDP instead of TCP.
    #[arg(long)]
    pub udp: bool,

    /// Print one JSON object (schema in DESCRIPTION) instead of text.
    #[arg(long)]
    pub json: bool,

    /// Demonstrate TIME-WAIT and SO_REUSEADDR on loopback.
    #[arg(long, conflicts_with_all = ["udp", "json"])]
    pub reproduce: bool,

    /// Set on the trial sockets before they bind, as the listener you are
    /// about to start would: --bind-device probes a bind to that interface
    /// (sockets bound to other devices then share the port); --mark, --tos
    /// and --ttl change nothing a bind decides, and are taken so a listen
    /// command line can be probed as it stands.
    #[command(flatten)]
    pub ip: IpArgs,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Transport to measure (-U measures a Unix stream socket instead).
    #[arg(long, value_enum, default_value_t = BenchProto::Tcp)]
    pub proto: BenchProto,

    /// stream: bulk throughput; rr: request/response latency.
    #[arg(long, value_enum, default_value_t = BenchMode::Stream)]
    pub mode: BenchMode,

    /// Send from the server to the client instead.
    #[arg(long, conflicts_with = "bidir")]
    pub reverse: bool,

    /// Send both ways at once (--streams each way).
    #[arg(long)]
    pub bidir: bool,

    /// Bytes per call (TCP or Unix stream, default 1M), per datagram (UDP
    /// stream, default 1472) or per request and response (rr, default 1).
    #[arg(long, value_name = "SIZE", value_parser = parse_bench_size)]
    pub size: Option<usize>,

    /// UDP sending rate in bits per second (K, M, G are powers of 1000);
    /// default: as fast as possible. The first datagram goes at once and
    /// each next one when the rate has earned it, so no burst exceeds the
    /// rate, and the test lasts --duration however low the rate.
    #[arg(long, value_name = "RATE", value_parser = crate::parse::parse_rate)]
    pub rate: Option<u64>,

    /// Parallel connections (UDP: sockets) per direction.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=i64::from(bench::MAX_STREAMS)))]
    pub streams: u16,

    /// How long to measure, after --omit.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_duration,
          conflicts_with = "bytes")]
    pub duration: Duration,

    /// Stop after this many bytes instead of a duration (stream mode).
    #[arg(long, value_name = "SIZE", value_parser = crate::parse::parse_size)]
    pub bytes: Option<u64>,

    /// Warm-up excluded from the results.
    #[arg(long, value_name = "DUR", default_value = "0s", value_parser = parse_duration)]
    pub omit: Duration,

    /// Print a line of figures every DUR, from the end of --omit; the last
    /// line covers what is left of the test (at most 20000 per test).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub interval: Option<Duration>,

    /// Print one JSON document (schema in DESCRIPTION) instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Pin the client to CPU C and the server to CPU S (local runs; on two
    /// hosts each side pins its own). A CPU this machine does not offer the
    /// process is an error naming the CPUs available (a server refuses the
    /// test).
    #[arg(long, value_name = "C,S", value_parser = parse_pin)]
    pub pin: Option<(usize, usize)>,

    /// Turn off UDP GSO (sender) and GRO (receiver).
    #[arg(long)]
    pub no_gso: bool,

    /// UDP stream to multicast GROUP: the client sends to the group (out of
    /// the interface toward the server, TTL --ttl or 1), the server joins
    /// it there and counts rate, loss and reordering. See MULTICAST in
    /// sonda-bench(1).
    #[arg(long, value_name = "GROUP", value_parser = parse_bench_group)]
    pub multicast: Option<std::net::IpAddr>,

    /// With --client and --multicast: one more receiver, a bench server on
    /// another host (or this one) that joins the group on the same port and
    /// reports its own rate, loss and reordering, a result each (repeatable;
    /// PORT defaults to the --client server's).
    #[arg(long, value_name = "HOST[:PORT]", requires = "multicast")]
    pub receiver: Vec<String>,

    /// Set SO_SNDBUF on data sockets (turns off autotuning; Unix stream
    /// default: 1M, forced when root).
    #[arg(long, value_name = "SIZE", value_parser = parse_buffer_size)]
    pub sndbuf: Option<usize>,

    /// Set SO_RCVBUF on data sockets (UDP default: 4M, forced when root).
    #[arg(long, value_name = "SIZE", value_parser = parse_buffer_size)]
    pub rcvbuf: Option<usize>,

    /// SO_RCVLOWAT on stream receivers: a read returns only once SIZE bytes
    /// are there (TCP default: --size, which also wakes the reader less
    /// often; Unix default: off, as the kernel wakes a Unix reader at every
    /// write anyway and it measured no faster; 0 turns it off).
    #[arg(long, value_name = "SIZE", value_parser = parse_rcvlowat)]
    pub rcvlowat: Option<u64>,

    /// Serve tests until interrupted, on the HOST and PORT given, if any
    /// (default: every interface, port 5205). HOST PORT, HOST:PORT, an
    /// IPv6 address in brackets before :PORT, a HOST alone (::1 is one) or a
    /// PORT alone; with -U PATH and no address, on that Unix socket. Each
    /// client chooses its test: a test parameter (--proto, --duration,
    /// --size and the rest) given to a server is a usage error.
    #[arg(long, value_name = "ADDR", num_args = 0..=2, conflicts_with_all = [
        "client", "proto", "mode", "reverse", "bidir", "size", "rate", "streams", "duration",
        "bytes", "omit", "interval", "pin", "no_gso", "multicast", "receiver", "sndbuf",
        "rcvbuf", "rcvlowat",
    ])]
    pub server: Option<Vec<String>>,

    /// Run the test against a sonda bench server: HOST, then PORT if not
    /// 5205; HOST:PORT works too, with an IPv6 address in brackets before
    /// :PORT (a bare ::1 is a host). With -U PATH and no address, the
    /// server listening on that Unix socket.
    #[arg(long, value_name = "ADDR", num_args = 0..=2)]
    pub client: Option<Vec<String>>,

    /// Measure a Unix stream socket at PATH (@NAME: a Linux abstract name)
    /// instead of TCP: alone, a local test over a socket bench creates at
    /// PATH and removes; with --server, serve there; with --client, test
    /// against the server there. --proto does not apply.
    #[arg(short = 'U', long, value_name = "PATH", value_parser = unix_addr_parser(), conflicts_with = "proto")]
    pub unix: Option<UnixAddr>,

    /// With -U (alone or with --server), remove a stale socket file at PATH
    /// first: only a socket file no socket is bound to, never a live
    /// socket or any other file.
    #[arg(long, requires = "unix", conflicts_with = "client")]
    pub unlink_stale: bool,

    /// With --server, exit after one test.
    #[arg(long, requires = "server")]
    pub once: bool,

    /// Bound on every control step (connect, handshake, results). A step
    /// it ends after the connection is made is exit 1 (a connect that times
    /// out is exit 4).
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub control_timeout: Duration,

    /// On this side's sockets (control and data); the other side's are
    /// its own to set.
    #[command(flatten)]
    pub ip: IpArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchProto {
    Tcp,
    Udp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchMode {
    Stream,
    Rr,
}

/// `-U PATH` or `-U @NAME`, checked against sun_path's size (a longer
/// one is exit 2, not a truncated address).
fn unix_addr_parser() -> impl clap::builder::TypedValueParser<Value = UnixAddr> {
    use clap::builder::TypedValueParser as _;
    clap::builder::OsStringValueParser::new().try_map(|s| UnixAddr::parse(&s))
}

fn parse_bench_size(s: &str) -> Result<usize, String> {
    let n = crate::parse::parse_size(s)?;
    if n == 0 || n > bench::MAX_SIZE {
        return Err("a size from 1 byte to 64M".to_string());
    }
    Ok(n as usize)
}

/// SO_RCVLOWAT: 0 (off) or a size that fits the socket option.
fn parse_rcvlowat(s: &str) -> Result<u64, String> {
    let n = crate::parse::parse_size(s)?;
    if n > bench::MAX_SOCKET_INT {
        return Err("from 1 byte to 2G-1 (0 turns it off)".to_string());
    }
    Ok(n)
}

fn parse_pin(s: &str) -> Result<(usize, usize), String> {
    let (c, srv) = s
        .split_once(',')
        .ok_or_else(|| "expected two CPU numbers, C,S (e.g. 0,1)".to_string())?;
    let cpu = |t: &str| {
        t.trim()
            .parse::<usize>()
            .ok()
            .ok_or_else(|| "expected two CPU numbers, C,S (e.g. 0,1)".to_string())
    };
    Ok((cpu(c)?, cpu(srv)?))
}

/// A UDP payload size: 1 to 65527 bytes (the IPv6 limit; IPv4's 65507 is
/// checked when sending, where the family is known).
fn parse_datagram_size(s: &str) -> Result<usize, String> {
    let n = crate::parse::parse_size(s)?;
    if n == 0 || n > crate::config::udp::UNIX_DATAGRAM_MAX as u64 {
        return Err(
            "a datagram holds 1 to 65527 bytes (up to 16M over a Unix socket, -U)".to_string(),
        );
    }
    Ok(n as usize)
}

/// A receive buffer: 1 byte to 64K (16M for a Unix socket; checked again
/// per transport).
fn parse_datagram_buffer(s: &str) -> Result<usize, String> {
    let n = crate::parse::parse_size(s)?;
    if n == 0 || n > crate::config::udp::UNIX_DATAGRAM_MAX as u64 {
        return Err(
            "a datagram buffer holds 1 to 65536 bytes (up to 16M over a Unix socket, -U)"
                .to_string(),
        );
    }
    Ok(n as usize)
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[arg(value_enum)]
    pub what: GenerateWhat,

    /// Directory to write into.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GenerateWhat {
    Man,
    Completions,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
