//! `listen --to`: each client's upstream connection, and the session
//! between the two with its `-v` lines.

use std::time::{Duration, Instant};

use crate::config::listen::Forward;
use crate::config::Target;
use crate::engine::addr::{resolve, Family};
use crate::engine::connect::ConnectOpts;
use crate::engine::forward::forward;
use crate::engine::relay::Counters;
use crate::engine::socket::SocketOpts;
use crate::engine::tls;
use crate::engine::transport::unix::Kind;
use crate::engine::transport::{tcp, unix, Conn};
use crate::error::Error;
use crate::report;

/// Where clients go: made once, before the port opens, so a CA file or a
/// name that does not resolve is the command's error, not each client's.
pub struct Upstream {
    target: Target,
    family: Family,
    timeout: Duration,
    /// The stream options of listen (buffers, --nodelay, --keepalive);
    /// the IP-level ones (--mark, --bind-device) are the listening
    /// socket's.
    sock: SocketOpts,
    tls: Option<tls::Client>,
    splice: bool,
    /// How -v and errors name it.
    pub label: String,
}

impl Upstream {
    pub fn new(fwd: &Forward, family: Family, sock: &SocketOpts) -> Result<Upstream, Error> {
        let tls = fwd.tls.as_ref().map(tls::Client::new).transpose()?;
        let label = match &fwd.target {
            Target::Inet { host, port } => {
                let host = host.as_deref().unwrap_or("localhost");
                resolve(host, *port, family)?;
                if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }
            }
            Target::Unix(addr) => addr.to_string(),
        };
        Ok(Upstream {
            target: fwd.target.clone(),
            family,
            timeout: fwd.timeout,
            sock: SocketOpts {
                mark: None,
                bind_device: None,
                tos: None,
                ttl: None,
                reuseaddr: false,
                reuseport: false,
                ..sock.clone()
            },
            tls,
            splice: fwd.splice,
            label,
        })
    }

    /// A connection to the upstream within --to-timeout, the TLS handshake
    /// included.
    fn connect(&self) -> Result<(Conn, Duration), Error> {
        let started = Instant::now();
        let conn = match &self.target {
            Target::Inet { host, port } => {
                // Resolved again for each client: the name may move.
                let host = host.as_deref().unwrap_or("localhost");
                let addrs = resolve(host, *port, self.family)?;
                let opts = ConnectOpts {
                    timeout: Some(self.timeout),
                    ..ConnectOpts::default()
                };
                tcp::connect(&addrs, &opts, |_| {})?.0
            }
            Target::Unix(addr) => unix::connect(
                addr,
                Kind::Stream,
                Some(self.timeout),
                &crate::engine::diag::SocketTable,
            )?,
        };
        conn.configure(&self.sock)
            .map_err(|e| Error::io("set socket options", &e))?;
        let conn = match &self.tls {
            None => conn,
            Some(client) => {
                let left = self.timeout.saturating_sub(started.elapsed());
                let left = left.max(Duration::from_millis(1));
                let secured = client.connect(conn, Some(left)).map_err(|f| {
                    f.into_error(&format!("TLS with {}", self.label), Some(left), false)
                })?;
                if report::verbose() {
                    let session = secured.session();
                    let version = session
                        .protocol_version()
                        .map(tls::report::version_name)
                        .unwrap_or_else(|| "TLS".into());
                    let suite = session
                        .negotiated_cipher_suite()
                        .map(|s| format!(", {:?}", s.suite()))
                        .unwrap_or_default();
                    drop(session);
                    report::info(format!("TLS with {}: {version}{suite}", self.label));
                }
                let secured: Conn = secured;
                secured
            }
        };
        Ok((conn, started.elapsed()))
    }
}

/// One client through to the upstream and back. A failed upstream connect
/// resets the client; so does a session the upstream breaks.
pub fn serve(
    client: &Conn,
    up: &Upstream,
    idle: Option<Duration>,
    counters: &Counters,
) -> Result<(), Error> {
    let (upstream, took) = match up.connect() {
        Ok(ok) => ok,
        Err(e) => {
            client.reset_on_close();
            return Err(Error {
                what: format!("forward {} to {}: {}", client.peer(), up.label, e.what),
                ..e
            });
        }
    };
    if report::verbose() {
        // The address a name reached, when the label is a name.
        let peer = upstream.peer().to_string();
        let via = if peer == up.label {
            String::new()
        } else {
            format!(" ({peer})")
        };
        report::info(format!(
            "connection from {} forwarded to {}{via} from {} in {}",
            client.peer(),
            up.label,
            upstream.local().unwrap_or_else(|| "?".into()),
            report::duration(took)
        ));
    }
    let result = forward(client, &upstream, idle, counters, up.splice);
    if report::verbose() {
        let stats = counters.stats();
        report::info(format!(
            "connection from {} closed: {} to {}, {} back in {}",
            client.peer(),
            report::bytes(stats.sent),
            up.label,
            report::bytes(stats.received),
            report::duration(stats.elapsed)
        ));
    }
    result.map_err(|e| Error {
        what: format!("forward {} to {}: {}", client.peer(), up.label, e.what),
        ..e
    })
}
