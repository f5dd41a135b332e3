//! `sonda connect` (without -z): where to connect, how long to try, how
//! to relay.

use std::time::Duration;

use crate::cli::{ConnectArgs, ProxyDnsArg, StarttlsArg, TimeoutMethodArg};
use crate::engine::addr::{parse_port, parse_port_list, Family};
use crate::engine::connect::{ConnectOpts, TimeoutMethod};
use crate::engine::proxy::{Scheme, Via};
use crate::engine::relay::RelayOpts;
use crate::engine::tls::starttls::Starttls;
use crate::engine::tls::ClientOpts;
use crate::engine::transport::unix::Kind;
use crate::error::Error;

use super::{host_and_port, nonzero, unix_only, Target};

#[derive(Clone, Debug)]
pub struct Connect {
    pub target: Target,
    pub family: Family,
    pub kind: Kind,
    pub connect: ConnectOpts,
    /// Attempts after the first (`--retry`).
    pub retries: u32,
    pub retry_delay: Duration,
    pub retry_until: Option<Duration>,
    pub relay: RelayOpts,
    pub progress: bool,
    pub notice_peer_eof: bool,
    /// TLS over the connection (`--tls`).
    pub tls: Option<ClientOpts>,
    /// `--tls -z --json`: the handshake report as one JSON object.
    pub json: bool,
    /// `--proxy`: the connect goes through a tunnel.
    pub proxy: Option<Via>,
}

/// `connect -z`: which ports of which host, how.
#[derive(Clone, Debug)]
pub struct Scan {
    pub host: String,
    pub family: Family,
    pub ports: Vec<u16>,
    pub udp: bool,
    /// Probes in flight at most (`None`: the default, fitted to the
    /// descriptor limit).
    pub concurrency: Option<u64>,
    pub json: bool,
    /// The bound on each probe.
    pub timeout: Duration,
    /// `--proxy`: each port asked of the proxy in turn.
    pub proxy: Option<Via>,
    /// The socket options and source address of every probe (and of
    /// every connection to the proxy); its timeout is `timeout`.
    pub local: ConnectOpts,
}

/// What `connect` was asked to do: a relay, or a `-z` scan.
pub enum Plan {
    Relay(Box<Connect>),
    Scan(Box<Scan>),
    /// `--tls -z`: connect, handshake, report, close.
    Handshake(Box<Connect>),
}

impl TryFrom<(&ConnectArgs, Family)> for Plan {
    type Error = Error;

    fn try_from((args, family): (&ConnectArgs, Family)) -> Result<Plan, Error> {
        if let Some(flag) = args.relay.first_set().filter(|_| args.zero_io) {
            return Err(Error::usage(
                format!("'{flag}'"),
                "shapes a relay, and -z relays nothing",
            ));
        }
        let (source, source_port) = super::source_and_port(args.source, args.source_port)?;
        let target = match (&args.unix, &args.host) {
            (Some(addr), _) => unix_only(addr, family, Some(&args.socket), None)?,
            (None, Some(host)) => {
                let port = match args.port.as_slice() {
                    [] => None,
                    [one] => Some(one.clone()),
                    many if args.zero_io && !args.tls.tls => Some(many.join(",")),
                    _ => {
                        return Err(Error::usage(
                            format!("'{}'", args.port[1]),
                            if args.tls.tls {
                                "one PORT (with --tls, -z handshakes with one PORT)"
                            } else {
                                "one PORT to connect to (several are a scan: -z)"
                            },
                        ))
                    }
                };
                let (host, port_text) = host_and_port(host, port.as_deref())?;
                if args.zero_io && !args.tls.tls {
                    let ports = parse_port_list(&port_text).map_err(|why| {
                        Error::usage(format!("invalid port list '{port_text}'"), why)
                    })?;
                    let timeout = nonzero(args.timeout).unwrap_or(Duration::from_secs(1));
                    let mut sock = args.socket.to_opts();
                    if args.udp {
                        // Stream options mean nothing to a datagram probe.
                        (sock.nodelay, sock.keepalive) = (false, None);
                    }
                    let proxy = via(args, Some(&host))?;
                    return Ok(Plan::Scan(Box::new(Scan {
                        host,
                        family,
                        ports,
                        udp: args.udp,
                        concurrency: args.concurrency.map(u64::from),
                        json: args.json,
                        timeout,
                        proxy,
                        local: ConnectOpts {
                            timeout: Some(timeout),
                            source,
                            source_port,
                            sock,
                            ..ConnectOpts::default()
                        },
                    })));
                }
                Target::Inet {
                    host: Some(host),
                    port: parse_port(&port_text).map_err(|why| {
                        let hint = match (port_text.contains([',', '-']), args.zero_io) {
                            (true, true) => " (with --tls, -z handshakes with one PORT)",
                            (true, false) => " (port lists need -z)",
                            _ => "",
                        };
                        Error::usage(
                            format!("invalid port '{port_text}'"),
                            format!("{why}{hint}"),
                        )
                    })?,
                }
            }
            (None, None) => return Err(Error::usage("arguments", "expected HOST PORT or -U PATH")),
        };
        if args.tls.tls && args.udp {
            return Err(Error::usage(
                "'--udp'",
                "TLS runs over a stream (--tls with -z handshakes over TCP)",
            ));
        }
        let tls = args
            .tls
            .tls
            .then(|| client_opts(args, &target))
            .transpose()?;
        let proxy = via(args, target_host(&target))?;
        let cfg = Box::new(Connect {
            target,
            family,
            kind: Kind::stream(args.seqpacket),
            connect: ConnectOpts {
                timeout: nonzero(args.timeout),
                method: match args.timeout_method {
                    TimeoutMethodArg::Poll => TimeoutMethod::Poll,
                    TimeoutMethodArg::Alarm => TimeoutMethod::Alarm,
                },
                source,
                source_port,
                sock: args.socket.to_opts(),
                sequential: args.sequential,
            },
            retries: args.retry,
            retry_delay: args.retry_delay,
            retry_until: args.retry_until,
            relay: args.relay.to_opts()?,
            progress: args.progress,
            notice_peer_eof: args.relay.ends_at_peer_eof_for_terminal(),
            tls,
            json: args.json,
            proxy,
        });
        Ok(if args.zero_io {
            Plan::Handshake(cfg)
        } else {
            Plan::Relay(cfg)
        })
    }
}

fn target_host(target: &Target) -> Option<&str> {
    match target {
        Target::Inet { host, .. } => host.as_deref(),
        Target::Unix(_) => None,
    }
}

/// `--proxy`, its password from SONDA_PROXY_PASSWORD when the URL names a
/// user without one (SOCKS4a has none), checked against what the proxy
/// will be asked for `host` before any socket opens.
fn via(args: &ConnectArgs, host: Option<&str>) -> Result<Option<Via>, Error> {
    let Some(url) = &args.proxy.proxy else {
        return Ok(None);
    };
    let mut url = url.clone();
    if url.user.is_some() && url.password.is_none() && url.scheme != Scheme::Socks4a {
        url.password = std::env::var("SONDA_PROXY_PASSWORD").ok();
    }
    if args.udp {
        return Err(Error::usage(
            "'--udp'",
            "a proxy tunnels TCP only (SOCKS5 UDP ASSOCIATE is not supported)",
        ));
    }
    let via = Via {
        url,
        remote_dns: args.proxy.proxy_dns == ProxyDnsArg::Remote,
    };
    if let Some(host) = host {
        via.check(host)
            .map_err(|why| Error::usage("'--proxy'", why))?;
    }
    Ok(Some(via))
}

/// `--tls` and its flags; the name verified defaults to HOST (or
/// `localhost` over -U).
fn client_opts(args: &ConnectArgs, target: &Target) -> Result<ClientOpts, Error> {
    let t = &args.tls;
    let name = match (&t.servername, target) {
        // [::1] as the address is written in a URL.
        (Some(n), _) => n
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(n)
            .to_string(),
        (None, Target::Inet { host: Some(h), .. }) => h.clone(),
        _ => "localhost".to_string(),
    };
    Ok(ClientOpts {
        ca: t.ca.clone(),
        insecure: t.insecure,
        name,
        sni: !t.no_sni,
        alpn: alpn_list(t.alpn.as_deref())?,
        identity: t.cert.clone().zip(t.key.clone()),
        pin: t.pin_sha256,
        only_13: t.tls_min.as_deref() == Some("1.3"),
        starttls: t.starttls.map(|p| match p {
            StarttlsArg::Smtp => Starttls::Smtp,
            StarttlsArg::Imap => Starttls::Imap,
            StarttlsArg::Pop3 => Starttls::Pop3,
            StarttlsArg::Ftp => Starttls::Ftp,
            StarttlsArg::Postgres => Starttls::Postgres,
        }),
    })
}

/// `--alpn h2,http/1.1`: each protocol 1 to 255 bytes.
pub fn alpn_list(list: Option<&str>) -> Result<Vec<Vec<u8>>, Error> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(|p| {
            if p.is_empty() || p.len() > 255 {
                Err(Error::usage(
                    format!("--alpn '{list}'"),
                    "an ALPN protocol name is 1 to 255 bytes; separate them with commas",
                ))
            } else {
                Ok(p.as_bytes().to_vec())
            }
        })
        .collect()
}
