//! HOST and PORT parsing, resolution through the system resolver, and the
//! CIDR access lists of `listen`.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6, ToSocketAddrs};

use ipnet::IpNet;

use crate::error::{Error, Exit};

/// Which address family a command may use (`-4`, `-6`, or either).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Family {
    #[default]
    Any,
    V4,
    V6,
}

impl Family {
    pub fn admits(self, ip: &IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

/// A TCP or UDP port, 0-65535, or a service name from /etc/services
/// (`http`, `ssh`). Never wrapped: 70000 is an error, not 4464.
pub fn parse_port(s: &str) -> Result<u16, String> {
    let t = s.trim();
    let number = "a port is a number from 0 to 65535 or a service name from /etc/services";
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<u16>().map_err(|_| number.to_string());
    }
    let name_like = t.starts_with(|c: char| c.is_ascii_alphabetic())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+' | b'/'));
    if !name_like {
        return Err(number.to_string());
    }
    service_port(t, SERVICES).ok_or_else(|| format!("no service '{t}' in {SERVICES} ({number})"))
}

const SERVICES: &str = "/etc/services";

/// The port of service `name` (or an alias) in a services(5) file: the
/// TCP entry first, else any. Read each time: a command looks up a few
/// names at most.
fn service_port(name: &str, file: &str) -> Option<u16> {
    let text = std::fs::read_to_string(file).ok()?;
    services_lookup(name, &text)
}

fn services_lookup(name: &str, text: &str) -> Option<u16> {
    let mut any = None;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        let (Some(service), Some(port_proto)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !std::iter::once(service)
            .chain(fields)
            .any(|n| n.eq_ignore_ascii_case(name))
        {
            continue;
        }
        let Some((port, proto)) = port_proto.split_once('/') else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        if proto == "tcp" {
            return Some(port);
        }
        any = any.or(Some(port));
    }
    any
}

/// A port list for `connect -z`: ports and ranges separated by commas
/// (`22`, `20-25,80,443`, `1-65535`), in the order given, duplicates
/// dropped. Ports are 1-65535 (port 0 cannot be connected to); the error
/// names the bad part.
pub fn parse_port_list(s: &str) -> Result<Vec<u16>, String> {
    let mut seen = vec![false; 65536];
    let mut out = Vec::new();
    for part in s.split(',') {
        let item = part.trim();
        let one = |t: &str| -> Result<u16, String> {
            match parse_port(t) {
                Ok(0) | Err(_) => Err(format!("'{item}' is not a port or range of ports 1-65535")),
                Ok(p) => Ok(p),
            }
        };
        // A service name may hold a dash (ms-sql-s): whole first.
        let whole = (!item.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
            .then(|| parse_port(item).ok())
            .flatten();
        let (lo, hi) = match item.split_once('-') {
            _ if whole.is_some_and(|p| p > 0) => (whole.unwrap_or(1), whole.unwrap_or(1)),
            Some((a, b)) => (one(a)?, one(b)?),
            None => {
                let p = one(item)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(format!("range '{item}' runs backwards"));
        }
        for p in lo..=hi {
            if !seen[p as usize] {
                seen[p as usize] = true;
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// A host name or address literal; IPv6 literals may carry brackets.
pub fn parse_host(s: &str) -> Result<String, String> {
    let t = s.trim();
    let inner = match t.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .ok_or_else(|| "unbalanced '[' in address".to_string())?,
        None => t,
    };
    if inner.is_empty() {
        return Err("the host must not be empty".to_string());
    }
    if inner
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err("not a host name or address".to_string());
    }
    Ok(inner.to_string())
}

/// One value that may carry its port: `HOST:PORT`, `[V6]:PORT`, or a HOST
/// alone (`name`, `10.0.0.1`, `[::1]`, and a bare IPv6 literal such as `::1`,
/// whose colons are never taken for a port separator).
pub fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = split_port_text(s)?;
    let host = parse_host(host)?;
    let port = port.map(parse_port).transpose()?;
    Ok((host, port))
}

/// The syntax of [`split_host_port`] without checking either part: the
/// host as written (brackets removed) and the port text, if any (a port
/// list for `connect -z`).
pub fn split_port_text(s: &str) -> Result<(&str, Option<&str>), String> {
    let t = s.trim();
    if let Some(rest) = t.strip_prefix('[') {
        let (inner, after) = rest
            .split_once(']')
            .ok_or_else(|| "unbalanced '[' in address".to_string())?;
        if !inner.contains(':') {
            return Err("brackets are for an IPv6 address ([::1]:80)".to_string());
        }
        return match after {
            "" => Ok((inner, None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((inner, Some(p))),
                None => Err("expected ':PORT' after ']'".to_string()),
            },
        };
    }
    Ok(match t.split_once(':') {
        Some((h, p)) if !p.contains(':') => (h, Some(p)),
        _ => (t, None),
    })
}

/// `-s/--source`: an address literal with an optional port:
/// `10.0.0.1`, `10.0.0.1:5000`, `::1`, `[::1]:5000`, `fe80::1%eth0`,
/// `[fe80::1%eth0]:5000`.
pub fn parse_source(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    let expected = "expected ADDR or ADDR:PORT with a numeric address";
    let (bare, port) = match t.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((inner, "")) => (inner, 0),
        Some((inner, rest)) => {
            let port = rest
                .strip_prefix(':')
                .and_then(|p| parse_port(p).ok())
                .ok_or_else(|| expected.to_string())?;
            (inner, port)
        }
        None => match t.rsplit_once(':') {
            // One colon: IPv4 with a port; more: a bare IPv6 address.
            Some((ip, p)) if !ip.contains(':') => {
                (ip, parse_port(p).map_err(|_| expected.to_string())?)
            }
            _ => (t, 0),
        },
    };
    let sa = match parse_scoped(bare, port) {
        Some(scoped) => scoped?,
        None => bare
            .parse::<IpAddr>()
            .map(|ip| SocketAddr::new(ip, port))
            .map_err(|_| expected.to_string())?,
    };
    if needs_scope(&sa) {
        return Err(scope_needed(bare));
    }
    Ok(sa)
}

/// An IPv6 literal with a zone (`fe80::1%eth0` or `fe80::1%2`) as a socket
/// address with that interface's index as its scope id; `None` when `s` is
/// not an IPv6 literal with a zone. The zone is looked up here, not left to
/// getaddrinfo, so an unknown interface is named as such rather than
/// reported as an unknown host.
fn parse_scoped(s: &str, port: u16) -> Option<Result<SocketAddr, String>> {
    let (ip, zone) = s.split_once('%')?;
    let ip: Ipv6Addr = ip.parse().ok()?;
    let index = match zone.parse::<u32>() {
        // An index names an interface only while one has it.
        Ok(n) if nix::net::if_::if_indextoname(n).is_ok_and(|name| !name.is_empty()) => Ok(n),
        Ok(n) => Err(format!(
            "no network interface has index {n} ('ip -br link' lists them)"
        )),
        Err(_) if zone.is_empty() => Err("the scope after '%' is empty".to_string()),
        Err(_) => nix::net::if_::if_nametoindex(zone)
            .map_err(|_| format!("no network interface named '{zone}' ('ip -br link' lists them)")),
    };
    Some(index.map(|scope| SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope))))
}

/// Whether `addr` is IPv6 link-local (fe80::/10) without a scope id: the
/// same address may exist on every link, so the kernel cannot pick one and
/// connect(2) and bind(2) fail with a bare EINVAL.
pub fn needs_scope(addr: &SocketAddr) -> bool {
    match addr {
        SocketAddr::V6(a) => a.ip().is_unicast_link_local() && a.scope_id() == 0,
        SocketAddr::V4(_) => false,
    }
}

fn scope_needed(ip: &str) -> String {
    format!("a link-local address needs a scope naming its interface, as in {ip}%eth0")
}

/// A CIDR block (`10.0.0.0/8`, `::1/128`) or a single address.
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let t = s.trim();
    if let Ok(net) = t.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    t.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| "expected an address or a CIDR block such as 10.0.0.0/8".to_string())
}

/// Resolves HOST and PORT to every address of the admitted family, in the
/// resolver's order. Address literals never touch the resolver.
pub fn resolve(host: &str, port: u16, family: Family) -> Result<Vec<SocketAddr>, Error> {
    let what = format!("resolve '{host}'");
    let literal = match parse_scoped(host, port) {
        Some(Ok(sa)) => Some(sa),
        // A '%' with nothing after it is a malformed address, not a name
        // that failed to resolve.
        Some(Err(why)) if host.ends_with('%') => {
            return Err(Error::usage(format!("invalid address '{host}'"), why))
        }
        Some(Err(why)) => return Err(Error::new(Exit::Resolve, what, why)),
        None => host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, port)),
    };
    let found: Vec<SocketAddr> = match literal {
        Some(sa) if needs_scope(&sa) => {
            return Err(Error::usage(
                format!("invalid address '{host}'"),
                scope_needed(host),
            ))
        }
        Some(sa) => vec![sa],
        None => (host, port)
            .to_socket_addrs()
            .map_err(|e| Error::new(Exit::Resolve, &what, resolver_reason(&e)))?
            .collect(),
    };
    let mut addrs: Vec<SocketAddr> = Vec::with_capacity(found.len());
    let mut unscoped = false;
    for sa in found {
        // A name's link-local address without a scope cannot be used on any
        // link; its other addresses still can.
        if needs_scope(&sa) {
            unscoped = true;
        } else if family.admits(&sa.ip()) && !addrs.contains(&sa) {
            addrs.push(sa);
        }
    }
    if addrs.is_empty() {
        let why = match (family, literal) {
            // An address of the other family was never looked up.
            (Family::V4, Some(_)) => return Err(other_family(host, "an IPv6", "-4")),
            (Family::V6, Some(_)) => return Err(other_family(host, "an IPv4", "-6")),
            _ if unscoped => "only link-local IPv6 addresses without a scope (fe80::...%eth0)",
            (Family::V4, _) => "no IPv4 address (-4 given)",
            (Family::V6, _) => "no IPv6 address (-6 given)",
            (Family::Any, _) => "no address found",
        };
        return Err(Error::new(Exit::Resolve, what, why));
    }
    Ok(addrs)
}

fn other_family(host: &str, kind: &str, flag: &str) -> Error {
    Error::new(
        Exit::Resolve,
        format!("address '{host}'"),
        format!("{kind} address, and {flag} was given"),
    )
}

/// getaddrinfo's message without std's "failed to lookup address
/// information: " prefix, in lower case.
fn resolver_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = text
        .strip_prefix("failed to lookup address information: ")
        .unwrap_or(&text);
    text.to_lowercase()
}

/// `--allow` / `--deny` rules. Deny wins; with any allow rule, unlisted peers
/// are denied; IPv4 rules match v4-mapped peers of a dual-stack listener.
#[derive(Clone, Debug, Default)]
pub struct Acl {
    pub allow: Vec<IpNet>,
    pub deny: Vec<IpNet>,
}

impl Acl {
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_port("0"), Ok(0));
        let services =
            "http 80/tcp www # WorldWideWeb\nhttp 80/udp\nsyslog 514/udp\nms-sql-s 1433/tcp\n";
        assert_eq!(services_lookup("http", services), Some(80));
        assert_eq!(services_lookup("WWW", services), Some(80));
        assert_eq!(services_lookup("syslog", services), Some(514));
        assert_eq!(services_lookup("WorldWideWeb", services), None);
        assert_eq!(services_lookup("nope", services), None);
        assert_eq!(parse_port("65535"), Ok(65535));
        for bad in ["", "abc", "70000", "-1", "+80", "8 0", "65536"] {
            assert!(parse_port(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn port_lists() {
        assert_eq!(parse_port_list("22"), Ok(vec![22]));
        assert_eq!(parse_port_list("20-22,80,21"), Ok(vec![20, 21, 22, 80]));
        assert_eq!(parse_port_list("1-65535").map(|v| v.len()), Ok(65535));
        for bad in ["10-5", "0", "65536", "1,,2", "a-b", "", "-5", "5-", "1-2-3"] {
            assert!(parse_port_list(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(parse_host("[::1]").as_deref(), Ok("::1"));
        assert_eq!(parse_host("::1").as_deref(), Ok("::1"));
        assert_eq!(parse_host("localhost").as_deref(), Ok("localhost"));
        for bad in ["", "[]", "[::1", "a b", "10.0.0.0/8"] {
            assert!(parse_host(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn hosts_with_ports() {
        let ok = |s: &str, h: &str, p: Option<u16>| {
            assert_eq!(split_host_port(s), Ok((h.to_string(), p)), "{s}");
        };
        ok("127.0.0.1:7900", "127.0.0.1", Some(7900));
        ok("[::1]:7900", "::1", Some(7900));
        ok("::1", "::1", None);
        ok("[::1]", "::1", None);
        ok("fe80::1%eth0", "fe80::1%eth0", None);
        ok("example.net:80", "example.net", Some(80));
        ok("example.net", "example.net", None);
        for bad in ["[::1]x", "[::1", "host:99999", "host:", ":80", "[]:1"] {
            assert!(split_host_port(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sources() {
        assert_eq!(
            parse_source("127.0.0.1"),
            Ok("127.0.0.1:0".parse().unwrap())
        );
        assert_eq!(parse_source("[::1]:99"), Ok("[::1]:99".parse().unwrap()));
        assert_eq!(parse_source("::1"), Ok("[::1]:0".parse().unwrap()));
        assert!(parse_source("host:1").is_err());
        assert_eq!(
            parse_source("[fe80::1%1]:99"),
            Ok("[fe80::1%1]:99".parse().unwrap())
        );
        assert_eq!(
            parse_source("fe80::1%1"),
            Ok("[fe80::1%1]:0".parse().unwrap())
        );
        assert_eq!(
            parse_source("10.0.0.1:5"),
            Ok("10.0.0.1:5".parse().unwrap())
        );
        for bad in [
            "fe80::1",
            "[fe80::1]:5",
            "fe80::1%",
            "[::1]x",
            "1.2.3.4:99999",
        ] {
            assert!(parse_source(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn link_local_needs_a_scope() {
        let e = resolve("fe80::1", 80, Family::Any).unwrap_err();
        assert_eq!(e.exit, Exit::Usage);
        assert!(e.why.contains("fe80::1%eth0"), "{}", e.why);
        let v = resolve("fe80::1%1", 80, Family::Any).unwrap();
        assert_eq!(v, vec!["[fe80::1%1]:80".parse().unwrap()]);
        let e = resolve("fe80::1%no-such-if0", 80, Family::Any).unwrap_err();
        assert_eq!(e.exit, Exit::Resolve);
        assert!(e.why.contains("no-such-if0"), "{}", e.why);
    }

    #[test]
    fn acl() {
        let acl = Acl {
            allow: vec![parse_cidr("127.0.0.0/8").unwrap()],
            deny: vec![parse_cidr("127.0.0.2").unwrap()],
        };
        assert!(acl.permits("127.0.0.1".parse().unwrap()));
        assert!(acl.permits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!acl.permits("127.0.0.2".parse().unwrap()));
        assert!(!acl.permits("::1".parse().unwrap()));
        assert!(parse_cidr("300.1.1.1/8").is_err());
        assert!(Acl::default().permits("::1".parse().unwrap()));
    }

    #[test]
    fn literals_skip_the_resolver() {
        let v = resolve("::1", 80, Family::Any).unwrap();
        assert_eq!(v, vec!["[::1]:80".parse().unwrap()]);
        let e = resolve("::1", 80, Family::V4).unwrap_err();
        assert_eq!(e.exit, Exit::Resolve);
    }
}
