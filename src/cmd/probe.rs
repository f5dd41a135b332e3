//! `sonda probe [HOST] PORT`: why a port will not bind, with proof.

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::cli::ProbeArgs;
use crate::engine::addr::{resolve, Family};
use crate::engine::diag::{self, find_owners, Owner, SockEntry, State, TableSource};
use crate::engine::socket::{display_addr, Proto, Shown};
use crate::error::{Error, Exit};

use super::Global;

/// The socket options of one trial bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum BindOpts {
    #[serde(rename = "plain")]
    Plain,
    #[serde(rename = "SO_REUSEADDR")]
    ReuseAddr,
    #[serde(rename = "SO_REUSEPORT")]
    ReusePort,
}

impl BindOpts {
    fn label(self) -> &'static str {
        match self {
            BindOpts::Plain => "plain",
            BindOpts::ReuseAddr => "SO_REUSEADDR",
            BindOpts::ReusePort => "SO_REUSEPORT",
        }
    }
}

/// Where to try: an address, with IPV6_V6ONLY for IPv6 when set.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub v6only: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct BindAttempt {
    pub address: String,
    /// An IPv6 wildcard with IPV6_V6ONLY off (takes IPv4 too).
    pub dual_stack: bool,
    pub options: BindOpts,
    pub ok: bool,
    pub errno: Option<&'static str>,
    pub error: Option<String>,
    #[serde(skip)]
    pub raw_errno: Option<i32>,
}

/// socket, setsockopt, bind(2) and for TCP listen(2), on a throw-away
/// socket closed at once.
pub fn trial(target: &Target, proto: Proto, opts: BindOpts) -> BindAttempt {
    let result = (|| -> io::Result<()> {
        let (ty, p) = match proto {
            Proto::Tcp => (Type::STREAM, Protocol::TCP),
            Proto::Udp => (Type::DGRAM, Protocol::UDP),
        };
        let sock = Socket::new(Domain::for_address(target.addr), ty, Some(p))?;
        match opts {
            BindOpts::Plain => {}
            BindOpts::ReuseAddr => sock.set_reuse_address(true)?,
            BindOpts::ReusePort => sock.set_reuse_port(true)?,
        }
        if let (true, Some(only)) = (target.addr.is_ipv6(), target.v6only) {
            sock.set_only_v6(only)?;
        }
        sock.bind(&SockAddr::from(target.addr))?;
        if proto == Proto::Tcp {
            sock.listen(1)?;
        }
        Ok(())
    })();
    let (errno, error, raw) = match &result {
        Ok(()) => (None, None, None),
        Err(e) => (
            e.raw_os_error().map(errno_name),
            Some(crate::error::describe(e)),
            e.raw_os_error(),
        ),
    };
    BindAttempt {
        address: display_addr(&target.addr),
        dual_stack: target.v6only == Some(false),
        options: opts,
        ok: result.is_ok(),
        errno,
        error,
        raw_errno: raw,
    }
}

fn errno_name(code: i32) -> &'static str {
    match code {
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EACCES => "EACCES",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EPERM => "EPERM",
        libc::EINVAL => "EINVAL",
        _ => "EOTHER",
    }
}

/// A socket on the port, with its owners.
#[derive(Debug, Serialize)]
pub struct Row {
    pub proto: &'static str,
    pub state: &'static str,
    #[serde(serialize_with = "shown")]
    pub local: SocketAddr,
    #[serde(serialize_with = "shown")]
    pub remote: SocketAddr,
    pub expires_ms: Option<u64>,
    pub uid: u32,
    pub inode: u64,
    pub v6only: Option<bool>,
    pub owners: Vec<OwnerJson>,
    pub owner_visible: bool,
    #[serde(skip)]
    pub entry: SockEntry,
}

fn shown<S: serde::Serializer>(addr: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&Shown(addr))
}

#[derive(Debug, Serialize)]
pub struct OwnerJson {
    pub pid: u32,
    pub command: String,
}

pub struct Table {
    pub source: TableSource,
    pub sockets: Vec<Row>,
}

/// Reads the socket table for `port` and finds the owners.
pub fn gather(proto: Proto, port: u16) -> Result<Table, Error> {
    let (entries, source) = diag::sockets_on_port(proto, port)
        .map_err(|e| Error::io(format!("read the socket table for port {port}"), &e))?;
    let mut table = Table {
        source,
        sockets: Vec::new(),
    };
    add_sockets(&mut table, entries, proto);
    Ok(table)
}

/// Adds the bound-inactive TCP sockets on `port` to the table.
fn add_bound_inactive(table: &mut Table, port: u16) {
    add_sockets(table, diag::bound_inactive_on_port(port), Proto::Tcp);
}

fn add_sockets(table: &mut Table, entries: Vec<SockEntry>, proto: Proto) {
    let inodes: HashSet<u64> = entries
        .iter()
        .map(|e| e.inode)
        .filter(|&i| i != 0)
        .collect();
    let owners = find_owners(&inodes);
    table.sockets.extend(entries.into_iter().map(|e| {
        let found: Vec<Owner> = owners.by_inode.get(&e.inode).cloned().unwrap_or_default();
        Row {
            proto: match proto {
                Proto::Tcp => "tcp",
                Proto::Udp => "udp",
            },
            state: e.state.name(proto),
            local: e.local,
            remote: e.remote,
            expires_ms: e.expires.map(|d| d.as_millis() as u64),
            uid: e.uid,
            inode: e.inode,
            v6only: e.v6only,
            owner_visible: e.inode == 0 || !found.is_empty(),
            owners: found
                .into_iter()
                .map(|o| OwnerJson {
                    pid: o.pid,
                    command: o.command,
                })
                .collect(),
            entry: e,
        }
    }));
    // Listeners first, then by state and address: the usual culprits on top.
    table.sockets.sort_unstable_by_key(|s| {
        (
            s.entry.state != State::LISTEN,
            s.entry.state.0,
            s.local,
            s.remote,
        )
    });
}

/// "pid 812 (python3)", or why no owner is shown.
pub fn owner_text(s: &Row) -> String {
    if s.inode == 0 {
        return "(kernel: no process holds it)".to_string();
    }
    if s.owners.is_empty() {
        return "not visible (another user's process; run as root to see it)".to_string();
    }
    s.owners
        .iter()
        .map(|o| format!("pid {} ({})", o.pid, o.command))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table as text, a header and a line per socket, columns sized to fit.
/// Written straight into one String: a busy port has thousands of rows.
pub fn render_table(table: &Table, port: u16, proto: Proto) -> String {
    use std::fmt::Write as _;
    let p = match proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    };
    let source = table.source.name();
    if table.sockets.is_empty() {
        return format!("sockets on port {port}/{p} (from {source}): none\n");
    }
    let cells = |s: &Row, col: usize, out: &mut String| {
        let _ = match col {
            0 => write!(out, "{}", s.state),
            1 if s.v6only == Some(false) && s.local.ip().is_unspecified() => {
                write!(out, "{} (v4+v6)", Shown(&s.local))
            }
            1 => write!(out, "{}", Shown(&s.local)),
            2 if s.remote.port() == 0 && s.remote.ip().is_unspecified() => write!(out, "*"),
            2 => write!(out, "{}", Shown(&s.remote)),
            _ => match s.expires_ms {
                Some(ms) => write!(out, "{:.1}s", ms as f64 / 1000.0),
                None => write!(out, "-"),
            },
        };
    };
    let header = ["STATE", "LOCAL", "REMOTE", "TIMER"];
    let mut width = header.map(str::len);
    let mut scratch = String::new();
    for s in &table.sockets {
        for (col, w) in width.iter_mut().enumerate() {
            scratch.clear();
            cells(s, col, &mut scratch);
            *w = (*w).max(scratch.len());
        }
    }
    let mut out =
        String::with_capacity((table.sockets.len() + 2) * (width.iter().sum::<usize>() + 40));
    let _ = writeln!(out, "sockets on port {port}/{p} (from {source}):");
    out.push_str("  ");
    for (h, w) in header.iter().zip(width) {
        let _ = write!(out, "{h:<w$}  ");
    }
    out.push_str("OWNER\n");
    for s in &table.sockets {
        out.push_str("  ");
        for (col, w) in width.iter().enumerate() {
            let start = out.len();
            cells(s, col, &mut out);
            let pad = w.saturating_sub(out.len() - start) + 2;
            out.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(&owner_text(s));
        out.push('\n');
    }
    out
}

#[derive(Debug, Serialize)]
struct Finding {
    kind: &'static str,
    text: String,
}

#[derive(Debug, Serialize)]
struct Verdict {
    bind_ok: bool,
    text: String,
}

#[derive(Serialize)]
struct Report<'a> {
    proto: &'static str,
    port: u16,
    source: &'static str,
    binds: &'a [BindAttempt],
    sockets: &'a [Row],
    findings: &'a [Finding],
    verdict: &'a Verdict,
}

pub fn run(global: &Global, args: ProbeArgs) -> anyhow::Result<Exit> {
    if args.addr.is_empty() {
        return Err(Error::usage("probe", "missing PORT (sonda probe [HOST] PORT)").into());
    }
    let (host, port) = super::split_addr(&args.addr)?;
    if port == 0 {
        return Err(Error::usage("invalid port '0'", "probe a real port (1-65535)").into());
    }
    let proto = if args.udp { Proto::Udp } else { Proto::Tcp };
    let targets = targets(host.as_deref(), port, global.family)?;
    let mut binds = Vec::new();
    for t in &targets {
        for opts in [BindOpts::Plain, BindOpts::ReuseAddr, BindOpts::ReusePort] {
            binds.push(trial(t, proto, opts));
        }
    }
    let mut table = gather(proto, port)?;
    if unexplained(&table, proto, &binds) {
        add_bound_inactive(&mut table, port);
    }
    let findings = findings(&table, port, proto, &binds);
    let verdict = verdict(&table, port, proto, &binds, &findings);

    if args.json {
        let report = Report {
            proto: if proto == Proto::Tcp { "tcp" } else { "udp" },
            port,
            source: table.source.name(),
            binds: &binds,
            sockets: &table.sockets,
            findings: &findings,
            verdict: &verdict,
        };
        let text = serde_json::to_string_pretty(&report)?;
        super::print_stdout(&format!("{text}\n"))?;
    } else {
        let mut out = String::new();
        out.push_str("bind attempts (throw-away sockets");
        out.push_str(if proto == Proto::Tcp {
            ", bind + listen):\n"
        } else {
            "):\n"
        });
        for b in &binds {
            let result = match (&b.errno, &b.error) {
                (Some(n), Some(e)) => format!("{n} ({e})"),
                _ => "ok".to_string(),
            };
            let address = if b.dual_stack {
                format!("{} (v4+v6)", b.address)
            } else {
                b.address.clone()
            };
            out.push_str(&format!(
                "  {address:<28} {:<13} {result}\n",
                b.options.label()
            ));
        }
        out.push_str(&render_table(&table, port, proto));
        if !findings.is_empty() {
            out.push_str("notes:\n");
            for f in &findings {
                out.push_str(&format!("  - {}\n", f.text));
            }
        }
        out.push_str(&format!("verdict: {}\n", verdict.text));
        super::print_stdout(&out)?;
    }
    Ok(if verdict.bind_ok {
        Exit::Success
    } else {
        Exit::AddrInUse
    })
}

/// Whether a trial bind failed for a reason the table does not show: then
/// the culprit may be a bound-inactive socket, which the kernel lists only
/// on request and at the price of walking every bound socket.
fn unexplained(table: &Table, proto: Proto, binds: &[BindAttempt]) -> bool {
    let failed = |opts: BindOpts| {
        binds
            .iter()
            .any(|b| b.options == opts && b.raw_errno == Some(libc::EADDRINUSE))
    };
    let listening = table.sockets.iter().any(|s| s.entry.state == State::LISTEN);
    proto == Proto::Tcp
        && ((failed(BindOpts::Plain) && table.sockets.is_empty())
            || (failed(BindOpts::ReuseAddr) && !listening))
}

/// What `sonda listen PORT` (or HOST PORT) binds, first, then the IPv4
/// wildcard beside a dual-stack one.
fn targets(host: Option<&str>, port: u16, family: Family) -> Result<Vec<Target>, Error> {
    let v4 = Target {
        addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        v6only: None,
    };
    let v6 = |only| Target {
        addr: SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
        v6only: Some(only),
    };
    Ok(match (host, family) {
        (None, Family::V4) => vec![v4],
        (None, Family::V6) => vec![v6(true)],
        (None, Family::Any) => {
            if std::net::UdpSocket::bind("[::]:0").is_ok() {
                vec![v6(false), v4]
            } else {
                vec![v4]
            }
        }
        (Some(h), _) => {
            let addr = resolve(h, port, family)?[0];
            vec![Target {
                addr,
                v6only: (family == Family::V6).then_some(true),
            }]
        }
    })
}

fn read_sysctl(name: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Whether `port` appears in a list such as "8080,9000-9010".
fn in_port_list(list: &str, port: u16) -> bool {
    list.split(',').filter(|s| !s.is_empty()).any(|item| match item.split_once('-') {
        Some((a, b)) => matches!((a.trim().parse::<u16>(), b.trim().parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&port)),
        None => item.trim().parse::<u16>() == Ok(port),
    })
}

fn who(s: &Row) -> String {
    match s.owners.first() {
        Some(o) if s.owners.len() == 1 => format!("pid {} ({})", o.pid, o.command),
        Some(_) => owner_text(s),
        None if s.inode == 0 => "the kernel".to_string(),
        None => format!("a process of uid {} (not visible; run as root)", s.uid),
    }
}

/// A socket in a connection's state (not listening, not TIME-WAIT, not
/// merely bound): it holds its local port as long as the connection lasts.
fn is_connected(s: &Row) -> bool {
    ![
        State::LISTEN,
        State::TIME_WAIT,
        State::BOUND_INACTIVE,
        State::CLOSE,
    ]
    .contains(&s.entry.state)
}

/// "pid 42 (sonda): 127.0.0.1:8096 -> 127.0.0.1:9000, ESTABLISHED", and how
/// many more there are.
fn connection_text(c: &Row, count: usize) -> String {
    let more = if count > 1 {
        format!("; and {} more", count - 1)
    } else {
        String::new()
    };
    format!("{}: {} -> {}, {}{more}", who(c), c.local, c.remote, c.state)
}

fn findings(table: &Table, port: u16, proto: Proto, binds: &[BindAttempt]) -> Vec<Finding> {
    let mut out = Vec::new();
    let by_state = |st: State| table.sockets.iter().filter(move |s| s.entry.state == st);
    for s in by_state(State::BOUND_INACTIVE) {
        out.push(Finding {
            kind: "bound-inactive",
            text: format!(
                "{} holds a socket bound to {} that neither listens nor is connected (bound-inactive): it causes EADDRINUSE, yet ss 6.1, netstat, lsof -i and fuser do not show it",
                who(s),
                s.local
            ),
        });
    }
    for s in table.sockets.iter().filter(|s| {
        s.entry.local.ip().is_unspecified()
            && s.entry.local.is_ipv6()
            && s.v6only == Some(false)
            && (proto == Proto::Udp || s.entry.state == State::LISTEN)
    }) {
        out.push(Finding {
            kind: "dual-stack",
            text: format!(
                "{} on {} is dual-stack (IPV6_V6ONLY off): it also takes IPv4, so a later bind to 0.0.0.0:{port} fails too",
                who(s),
                s.local
            ),
        });
    }
    let listeners: Vec<&Row> = match proto {
        Proto::Tcp => by_state(State::LISTEN).collect(),
        Proto::Udp => table.sockets.iter().filter(|s| s.inode != 0).collect(),
    };
    let mut seen = HashSet::new();
    for l in &listeners {
        let same: Vec<&&Row> = listeners
            .iter()
            .filter(|o| o.entry.local == l.entry.local)
            .collect();
        if same.len() > 1 && seen.insert(l.entry.local) {
            let names: Vec<String> = same.iter().map(|s| who(s)).collect();
            if proto == Proto::Udp && udp_reuseaddr_shared(binds) {
                out.push(Finding {
                    kind: "reuseaddr-shared",
                    text: format!(
                        "{} UDP sockets share {} (SO_REUSEADDR): {}; the one bound last gets every unicast datagram and the others none, so each later receiver steals the datagrams from the earlier",
                        same.len(),
                        Shown(&l.local),
                        names.join(", ")
                    ),
                });
                continue;
            }
            let what = if proto == Proto::Tcp {
                "connections"
            } else {
                "datagrams"
            };
            out.push(Finding {
                kind: "reuseport-shared",
                text: format!(
                    "{} sockets share {} (SO_REUSEPORT): {}; the kernel splits new {what} between them, so each sees only part of the traffic (nc.openbsd -l sets SO_REUSEPORT and binds beside another listener this way)",
                    same.len(),
                    l.local,
                    names.join(", ")
                ),
            });
        }
    }
    let tw: Vec<&Row> = by_state(State::TIME_WAIT).collect();
    if !tw.is_empty() {
        let last = tw.iter().filter_map(|s| s.expires_ms).max().unwrap_or(0);
        out.push(Finding {
            kind: "time-wait",
            text: format!(
                "{} connection(s) on this port are in TIME-WAIT (2*MSL after an active close); the last expires in {:.0}s",
                tw.len(),
                (last as f64 / 1000.0).ceil()
            ),
        });
    }
    if proto == Proto::Tcp {
        let connected: Vec<&Row> = table.sockets.iter().filter(|s| is_connected(s)).collect();
        if let Some(c) = connected.first() {
            out.push(Finding {
                kind: "connected",
                text: format!(
                    "{} connection(s) still use local port {port} ({}): left from an earlier listener on this port, or a client that bound it as its source port (sonda connect -s, nc -p); a new listener binds beside them only with SO_REUSEADDR, and only if they were bound with it too",
                    connected.len(),
                    connection_text(c, connected.len())
                ),
            });
        }
    }
    if binds.iter().any(|b| b.raw_errno == Some(libc::EACCES)) {
        let start = read_sysctl("ip_unprivileged_port_start").unwrap_or_else(|| "1024".into());
        out.push(Finding {
            kind: "privileged-port",
            text: format!(
                "port {port} is below net.ipv4.ip_unprivileged_port_start ({start}): binding it needs root or CAP_NET_BIND_SERVICE (EACCES, not EADDRINUSE)"
            ),
        });
    }
    if let Some(range) = read_sysctl("ip_local_port_range") {
        let mut it = range
            .split_whitespace()
            .filter_map(|p| p.parse::<u16>().ok());
        if let (Some(lo), Some(hi)) = (it.next(), it.next()) {
            let reserved = read_sysctl("ip_local_reserved_ports").unwrap_or_default();
            if in_port_list(&reserved, port) {
                out.push(Finding {
                    kind: "reserved-port",
                    text: format!("port {port} is in net.ipv4.ip_local_reserved_ports: the kernel never picks it as an ephemeral port"),
                });
            } else if (lo..=hi).contains(&port) {
                out.push(Finding {
                    kind: "ephemeral-range",
                    text: format!(
                        "port {port} is inside net.ipv4.ip_local_port_range ({lo}-{hi}): outgoing connections may take it at any time; a service port is safer outside it, or listed in ip_local_reserved_ports"
                    ),
                });
            }
        }
    }
    let hidden = table.sockets.iter().filter(|s| !s.owner_visible).count();
    if hidden > 0 {
        out.push(Finding {
            kind: "owner-not-visible",
            text: format!("{hidden} socket(s) belong to processes whose descriptors this user cannot read; run as root to name them"),
        });
    }
    out
}

fn verdict(
    table: &Table,
    port: u16,
    proto: Proto,
    binds: &[BindAttempt],
    findings: &[Finding],
) -> Verdict {
    // The first attempt is the plain bind of what `sonda listen` binds.
    let Some(first) = binds.first() else {
        return Verdict {
            bind_ok: false,
            text: "no trial bind could be made".to_string(),
        };
    };
    let reuse_ok = binds
        .iter()
        .find(|b| b.address == first.address && b.options == BindOpts::ReuseAddr)
        .is_some_and(|b| b.ok);
    let p = if proto == Proto::Tcp { "tcp" } else { "udp" };
    if first.ok {
        let mut text = format!(
            "bind would succeed: {} is free for a new {p} socket",
            first.address
        );
        if let Some(v4) = binds
            .iter()
            .find(|b| b.address.starts_with("0.0.0.0") && b.options == BindOpts::Plain && !b.ok)
        {
            text.push_str(&format!(
                " (but {} alone fails: {})",
                v4.address,
                v4.error.clone().unwrap_or_default()
            ));
        }
        return Verdict {
            bind_ok: true,
            text,
        };
    }
    let errno = first.errno.unwrap_or("EOTHER");
    if first.raw_errno == Some(libc::EACCES) {
        return Verdict {
            bind_ok: false,
            text: format!("bind would fail (EACCES): port {port} is privileged here; run as root, grant CAP_NET_BIND_SERVICE, or lower net.ipv4.ip_unprivileged_port_start"),
        };
    }
    if proto == Proto::Udp {
        return udp_verdict(table, port, first, binds, reuse_ok);
    }
    let holders: Vec<&Row> = table
        .sockets
        .iter()
        .filter(|s| s.entry.state == State::LISTEN)
        .collect();
    if !reuse_ok {
        if let Some(h) = holders.first() {
            let more = if holders.len() > 1 {
                format!(" (and {} more)", holders.len() - 1)
            } else {
                String::new()
            };
            let reuseport_ok = binds
                .iter()
                .any(|b| b.address == first.address && b.options == BindOpts::ReusePort && b.ok);
            let share = if reuseport_ok {
                "; only a socket with SO_REUSEPORT would bind beside it, and would take a share of its traffic"
            } else {
                ""
            };
            return Verdict {
                bind_ok: false,
                text: format!(
                    "bind would fail even with SO_REUSEADDR: {} listens on {}{more}; SO_REUSEADDR will not help. Stop it, or pick another port{share}",
                    who(h),
                    h.local
                ),
            };
        }
    }
    if let Some(b) = table
        .sockets
        .iter()
        .find(|s| s.entry.state == State::BOUND_INACTIVE)
    {
        return Verdict {
            bind_ok: false,
            text: format!(
                "bind would fail ({errno}): {} holds a socket bound to {} that neither listens nor is connected (bound-inactive; invisible to ss 6.1, netstat, lsof -i and fuser){}",
                who(b),
                b.local,
                if reuse_ok { "; SO_REUSEADDR binds beside it" } else { "" }
            ),
        };
    }
    let tw: Vec<&Row> = table
        .sockets
        .iter()
        .filter(|s| s.entry.state == State::TIME_WAIT)
        .collect();
    if reuse_ok && !tw.is_empty() {
        let last = tw.iter().filter_map(|s| s.expires_ms).max().unwrap_or(0);
        return Verdict {
            bind_ok: false,
            text: format!(
                "bind would fail ({errno}): {} connection(s) on this port are in TIME-WAIT, the last expires in {:.0}s; SO_REUSEADDR lets a listener bind now — sonda listen sets it by default",
                tw.len(),
                (last as f64 / 1000.0).ceil()
            ),
        };
    }
    if let (false, Some(last)) = (reuse_ok, tw.iter().filter_map(|s| s.expires_ms).max()) {
        return Verdict {
            bind_ok: false,
            text: format!(
                "bind would fail even with SO_REUSEADDR ({errno}): {} connection(s) on this port are in TIME-WAIT, and the socket they came from did not set SO_REUSEADDR (the old and the new socket must both set it); the last expires in {:.0}s: wait, or pick another port",
                tw.len(),
                (last as f64 / 1000.0).ceil()
            ),
        };
    }
    let connected: Vec<&Row> = table.sockets.iter().filter(|s| is_connected(s)).collect();
    if let Some(c) = connected.first() {
        let text = if reuse_ok {
            format!(
                "bind would fail ({errno}) without SO_REUSEADDR: {} connection(s) still use port {port} ({}); with SO_REUSEADDR a listener binds now — sonda listen sets it by default",
                connected.len(),
                connection_text(c, connected.len())
            )
        } else {
            format!(
                "bind would fail even with SO_REUSEADDR ({errno}): {} connection(s) use port {port} ({}) and were bound without SO_REUSEADDR (both sockets must set it): close them, or pick another port",
                connected.len(),
                connection_text(c, connected.len())
            )
        };
        return Verdict {
            bind_ok: false,
            text,
        };
    }
    if reuse_ok {
        return Verdict {
            bind_ok: false,
            text: format!("bind would fail ({errno}) without SO_REUSEADDR: connections on the port remain (see the table); with SO_REUSEADDR a listener binds now — sonda listen sets it by default"),
        };
    }
    let _ = findings;
    Verdict {
        bind_ok: false,
        text: format!(
            "bind would fail ({errno}: {}), and no socket on port {port} is visible to this user; run as root to see every socket",
            first.error.clone().unwrap_or_default()
        ),
    }
}

/// Whether the UDP sockets on the port set SO_REUSEADDR: a trial bind with
/// it succeeded where a plain one failed (the kernel lets a UDP socket
/// share a port with SO_REUSEADDR only when every socket on it set it).
fn udp_reuseaddr_shared(binds: &[BindAttempt]) -> bool {
    binds
        .iter()
        .any(|b| b.options == BindOpts::ReuseAddr && b.ok)
        && binds.iter().any(|b| b.options == BindOpts::Plain && !b.ok)
}

/// The verdict for a UDP port that will not bind. UDP has no TIME-WAIT and
/// no listeners: what holds the port is a bound UDP socket, and
/// SO_REUSEADDR there does not step past stale state but shares the port
/// with a live receiver, which then loses its datagrams.
fn udp_verdict(
    table: &Table,
    port: u16,
    first: &BindAttempt,
    binds: &[BindAttempt],
    reuse_ok: bool,
) -> Verdict {
    let errno = first.errno.unwrap_or("EOTHER");
    let holders: Vec<&Row> = table.sockets.iter().filter(|s| s.inode != 0).collect();
    let Some(h) = holders.first() else {
        return Verdict {
            bind_ok: false,
            text: format!(
                "bind would fail ({errno}: {}), and no UDP socket on port {port} is visible to this user; run as root to see every socket",
                first.error.clone().unwrap_or_default()
            ),
        };
    };
    let more = if holders.len() > 1 {
        format!(" (and {} more)", holders.len() - 1)
    } else {
        String::new()
    };
    let held = format!(
        "{} holds the port: a UDP socket bound to {}{more}",
        who(h),
        Shown(&h.local)
    );
    let reuseport_ok = binds
        .iter()
        .any(|b| b.address == first.address && b.options == BindOpts::ReusePort && b.ok);
    let text = if reuse_ok {
        format!(
            "bind would fail ({errno}) without SO_REUSEADDR: {held}, and it set SO_REUSEADDR, so a socket that sets it too binds beside it ('sonda udp-recv --reuseaddr'). That shares the port on purpose: the receiver bound last gets every unicast datagram and the first gets none, so a second receiver steals the datagrams. Stop the first, or pick another port"
        )
    } else if reuseport_ok {
        format!(
            "bind would fail even with SO_REUSEADDR ({errno}): {held}, with SO_REUSEPORT; only another SO_REUSEPORT socket of the same user binds beside it, and the kernel then splits the datagrams between them by sender. Stop it, or pick another port"
        )
    } else {
        format!(
            "bind would fail even with SO_REUSEADDR ({errno}): {held}, and it did not set SO_REUSEADDR (a UDP port is shared only when every socket on it sets it). Stop it, or pick another port"
        )
    };
    Verdict {
        bind_ok: false,
        text,
    }
}
