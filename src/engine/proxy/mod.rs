//! A tunnel through a proxy: SOCKS5 (RFC 1928, with RFC 1929 username and
//! password), SOCKS4a, or HTTP CONNECT. Hand-written over a connected
//! [`Stream`] rather than a crate that opens its own socket, so the
//! connection to the proxy is sonda's: its timeout, source address and
//! socket options hold, and TLS or STARTTLS runs over the tunnel as over
//! any stream.
//!
//! Every reply is read to its exact length (SOCKS) or to the end of its
//! header (HTTP, a byte at a time), so no byte of the target's stream is
//! taken by the negotiation.

mod http;
mod socks4;
mod socks5;
mod wire;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::transport::Stream;
use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Socks5,
    Socks4a,
    Http,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Socks5 => "SOCKS5",
            Scheme::Socks4a => "SOCKS4a",
            Scheme::Http => "HTTP",
        }
    }
}

/// `--proxy SCHEME://[USER[:PASS]@]HOST:PORT`.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// Never the password: a config is printed in debug logs and panics.
impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyUrl")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "..."))
            .finish()
    }
}

const URL_FORM: &str = "a proxy is socks5://, socks4a:// or http:// [USER[:PASS]@]HOST:PORT";

impl ProxyUrl {
    pub fn parse(s: &str) -> Result<ProxyUrl, String> {
        let (scheme, rest) = s.split_once("://").ok_or(URL_FORM)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "socks5" | "socks5h" => Scheme::Socks5,
            "socks4a" => Scheme::Socks4a,
            "http" => Scheme::Http,
            "https" => return Err("an https:// proxy (TLS to the proxy) is not supported; http:// proxies tunnel --tls".into()),
            "socks4" => return Err("socks4:// cannot send a name; use socks4a:// (with --proxy-dns local it sends the address)".into()),
            other => return Err(format!("unknown proxy scheme '{other}'; {URL_FORM}")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') || rest.contains('#') {
            return Err(format!("a proxy URL has no path; {URL_FORM}"));
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (name, pass) = match u.split_once(':') {
                    Some((n, p)) => (n, Some(p)),
                    None => (u, None),
                };
                if name.is_empty() {
                    return Err("the proxy user name is empty".into());
                }
                (
                    Some(percent_decode(name)?),
                    pass.map(percent_decode).transpose()?,
                )
            }
        };
        match (scheme, &user, &password) {
            (Scheme::Socks4a, _, Some(_)) => {
                return Err(
                    "SOCKS4a has no passwords (its user id only): socks4a://USER@HOST:PORT".into(),
                )
            }
            // RFC 1929 gives each a length byte.
            (Scheme::Socks5, Some(u), _) if u.len() > 255 => {
                return Err(format!(
                    "the proxy user name is {} bytes; SOCKS5 carries at most 255",
                    u.len()
                ))
            }
            (Scheme::Socks5, _, Some(p)) if p.len() > 255 => {
                return Err(format!(
                    "the proxy password is {} bytes; SOCKS5 carries at most 255",
                    p.len()
                ))
            }
            _ => {}
        }
        let (host, port) = split_host_port(hostport)?;
        Ok(ProxyUrl {
            scheme,
            host,
            port,
            user,
            password,
        })
    }

    /// `socks5://127.0.0.1:1080`, without the credentials.
    pub fn display(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let scheme = match self.scheme {
            Scheme::Socks5 => "socks5",
            Scheme::Socks4a => "socks4a",
            Scheme::Http => "http",
        };
        format!("{scheme}://{host}:{}", self.port)
    }
}

fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest
            .split_once(']')
            .ok_or("unbalanced '[' in the proxy address")?;
        (h, p.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err("an IPv6 proxy address goes in brackets: [::1]:1080".into())
            }
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(format!("the proxy has no host; {URL_FORM}"));
    }
    let port = port.ok_or(format!("the proxy has no port; {URL_FORM}"))?;
    match port.parse::<u16>() {
        Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok((host.to_string(), p)),
        _ => Err(format!("invalid proxy port '{port}': a port is 1 to 65535")),
    }
}

/// `%40` in a user name or password is `@`.
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in '{s}'"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the proxy credentials are not UTF-8".to_string())
}

/// A connect through a proxy: which, and who resolves the target's name.
#[derive(Clone, Debug)]
pub struct Via {
    pub url: ProxyUrl,
    /// The proxy resolves names (the default); else this host does.
    pub remote_dns: bool,
}

impl Via {
    /// What can be known before connecting about asking this proxy for
    /// `host`: the request's own limits, and the password's.
    pub fn check(&self, host: &str) -> Result<(), String> {
        let literal = host.trim_matches(['[', ']']).parse::<IpAddr>().ok();
        match self.url.scheme {
            Scheme::Socks4a if literal.is_some_and(|ip| ip.is_ipv6()) => Err(format!(
                "SOCKS4a cannot carry the IPv6 address {host}; use a socks5:// proxy"
            )),
            Scheme::Socks5 if literal.is_none() && self.remote_dns && host.len() > 255 => {
                Err(format!(
                    "a SOCKS5 request carries a name of at most 255 bytes, not {}",
                    host.len()
                ))
            }
            Scheme::Socks5 if self.url.password.as_ref().is_some_and(|p| p.len() > 255) => {
                Err("the password (SONDA_PROXY_PASSWORD) is over 255 bytes, SOCKS5's limit".into())
            }
            _ => Ok(()),
        }
    }
}

/// Marks a refusal by the proxy's own policy (HTTP 403, SOCKS5 "not
/// allowed by ruleset") as EACCES, so a scan can tell a forbidden port
/// (filtered, the scan goes on) from credentials refused (the scan ends).
pub fn forbidden(err: Error) -> Error {
    Error {
        errno: Some(libc::EACCES),
        ..err
    }
}

/// Whether [`forbidden`] marked `err`.
pub fn is_forbidden(err: &Error) -> bool {
    err.errno == Some(libc::EACCES)
}

/// What the proxy is asked to connect to.
#[derive(Clone, Debug)]
pub enum Dest {
    /// Resolved by the proxy.
    Name(String, u16),
    Addr(SocketAddr),
}

impl fmt::Display for Dest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dest::Name(h, p) if h.contains(':') => write!(f, "[{h}]:{p}"),
            Dest::Name(h, p) => write!(f, "{h}:{p}"),
            Dest::Addr(a) => write!(f, "{}", super::socket::display_addr(a)),
        }
    }
}

impl Dest {
    /// An address literal goes as an address, a name as a name.
    pub fn new(host: &str, port: u16) -> Dest {
        match host.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => Dest::Addr(SocketAddr::new(ip, port)),
            Err(_) => Dest::Name(host.to_string(), port),
        }
    }
}

/// One step of the negotiation, done, for -v.
pub struct Stage {
    pub what: String,
    pub took: Duration,
}

/// Asks the proxy at the other end of `conn` for a tunnel to `dest`,
/// within `deadline`. On success, `conn` carries the target's stream.
pub fn tunnel(
    conn: &dyn Stream,
    proxy: &ProxyUrl,
    dest: &Dest,
    deadline: Option<Instant>,
    report: &mut dyn FnMut(Stage),
) -> Result<(), Error> {
    let wire = wire::Wire::new(conn, proxy, deadline);
    match proxy.scheme {
        Scheme::Socks5 => socks5::tunnel(&wire, proxy, dest, report),
        Scheme::Socks4a => socks4::tunnel(&wire, proxy, dest, report),
        Scheme::Http => http::tunnel(&wire, proxy, dest, report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = ProxyUrl::parse("socks5://al%40ice:p%3Ass@127.0.0.1:1080").unwrap();
        assert_eq!(u.scheme, Scheme::Socks5);
        assert_eq!(u.user.as_deref(), Some("al@ice"));
        assert_eq!(u.password.as_deref(), Some("p:ss"));
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 1080));
        assert!(!format!("{u:?}").contains("p:ss"));
        let u = ProxyUrl::parse("http://[::1]:3128/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.scheme),
            ("::1", 3128, Scheme::Http)
        );
        assert_eq!(u.display(), "http://[::1]:3128");
        let u = ProxyUrl::parse("socks4a://bob@proxy.example:1080").unwrap();
        assert_eq!((u.user.as_deref(), u.password), (Some("bob"), None));
        for bad in [
            "127.0.0.1:1080",
            "ftp://h:1",
            "socks5://h",
            "socks5://h:0",
            "socks5://h:70000",
            "socks5://::1:1080",
            "socks5://:1080",
            "socks5://@h:1",
            "socks5://u:%zz@h:1",
            "http://h:1/path",
            "socks4://h:1",
        ] {
            assert!(ProxyUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dest_keeps_literals_as_addresses() {
        assert!(matches!(Dest::new("127.0.0.1", 80), Dest::Addr(_)));
        assert!(matches!(Dest::new("::1", 80), Dest::Addr(_)));
        assert!(matches!(Dest::new("example.org", 80), Dest::Name(..)));
        assert_eq!(Dest::new("::1", 80).to_string(), "[::1]:80");
    }
}
