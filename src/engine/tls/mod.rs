//! TLS settings: rustls client and server configurations from sonda's
//! options, the recording verifier, and the facts of a finished handshake.
//! The stream itself is `transport::tls`.

pub mod cert;
pub mod report;
pub mod starttls;
pub mod verify;
pub mod words;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

use super::transport::tls::{HandshakeError, TlsStream};
use super::transport::Conn;
use crate::error::{Error, Exit};
use verify::{Findings, Recording};

/// `connect --tls`: what to verify and what to offer.
#[derive(Clone, Debug, Default)]
pub struct ClientOpts {
    /// Trust anchors instead of the system's (`--ca`).
    pub ca: Option<PathBuf>,
    pub insecure: bool,
    /// The name sent as SNI and verified (`--servername`, else HOST).
    pub name: String,
    pub sni: bool,
    pub alpn: Vec<Vec<u8>>,
    /// Client certificate and key (`--cert`, `--key`).
    pub identity: Option<(PathBuf, PathBuf)>,
    pub pin: Option<[u8; 32]>,
    /// `--tls-min 1.3`.
    pub only_13: bool,
    /// The plaintext preamble before the handshake (`--starttls`).
    pub starttls: Option<starttls::Starttls>,
}

/// `listen --tls`.
#[derive(Clone, Debug, Default)]
pub struct ServerOpts {
    /// `--cert`, `--key`; none: an ephemeral certificate for `names`.
    pub identity: Option<(PathBuf, PathBuf)>,
    pub names: Vec<String>,
    pub client_ca: Option<PathBuf>,
    pub alpn: Vec<Vec<u8>>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A configuration refused by rustls (a key that does not fit its
/// certificate, a CA file's certificate it cannot use), in words.
fn config_error(what: &str, e: impl ConfigFailure) -> Error {
    Error::new(Exit::Failure, what, e.words())
}

trait ConfigFailure {
    fn words(&self) -> String;
}

impl ConfigFailure for rustls::Error {
    fn words(&self) -> String {
        words::error(self, false)
    }
}

impl ConfigFailure for rustls::client::VerifierBuilderError {
    fn words(&self) -> String {
        self.to_string()
    }
}

/// A client's configuration and the findings its verifier will fill.
pub struct Client {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    pub findings: Arc<Mutex<Findings>>,
}

impl Client {
    pub fn new(opts: &ClientOpts) -> Result<Client, Error> {
        let provider = provider();
        let mut roots = RootCertStore::empty();
        let anchors = match &opts.ca {
            Some(path) => {
                for c in cert::load_certs(path)? {
                    roots.add(c).map_err(|e| {
                        Error::new(
                            Exit::Failure,
                            format!("read certificates from {}", path.display()),
                            format!("not a usable CA certificate: {}", words::error(&e, false)),
                        )
                    })?;
                }
                "the chain leads to a --ca certificate"
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                "the chain leads to a system root"
            }
        };
        let anchor_subjects = roots
            .roots
            .iter()
            .map(|a| a.subject.as_ref().to_vec())
            .collect();
        let webpki = if roots.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| config_error("set up certificate verification", e))?,
            )
        };
        let verifier = Arc::new(Recording::new(
            webpki,
            anchors,
            provider.clone(),
            opts.pin,
            opts.insecure,
            anchor_subjects,
        ));
        let findings = verifier.findings.clone();
        let versions: &[&rustls::SupportedProtocolVersion] = if opts.only_13 {
            &[&rustls::version::TLS13]
        } else {
            rustls::ALL_VERSIONS
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| config_error("set up TLS", e))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &opts.identity {
            Some((cert_path, key_path)) => builder
                .with_client_auth_cert(cert::load_certs(cert_path)?, cert::load_key(key_path)?)
                .map_err(|e| {
                    config_error(
                        &format!("use {} as the client certificate", cert_path.display()),
                        e,
                    )
                })?,
            None => builder.with_no_client_auth(),
        };
        config.enable_sni = opts.sni;
        config.alpn_protocols = opts.alpn.clone();
        let name = ServerName::try_from(opts.name.clone()).map_err(|_| {
            Error::usage(
                format!("TLS name '{}'", opts.name),
                "not a name TLS can verify: a DNS name or an IP address (--servername NAME sets it)",
            )
        })?;
        Ok(Client {
            config: Arc::new(config),
            name,
            findings,
        })
    }

    /// The handshake over `inner`, within `timeout`.
    pub fn connect(
        &self,
        inner: Conn,
        timeout: Option<Duration>,
    ) -> Result<Arc<TlsStream>, Failure> {
        let conn = ClientConnection::new(self.config.clone(), self.name.clone())
            .map_err(|e| Failure::Tls(e, None))?;
        TlsStream::handshake(inner, conn.into(), timeout)
            .map_err(|(e, conn)| Failure::from_handshake(e, Some(conn)))
    }

    pub fn name(&self) -> &ServerName<'static> {
        &self.name
    }
}

/// A handshake that did not complete, with the connection's state for the
/// report when there is one.
pub enum Failure {
    Tls(rustls::Error, Option<Box<rustls::Connection>>),
    Io(std::io::Error),
    TimedOut,
}

impl Failure {
    fn from_handshake(e: HandshakeError, conn: Option<Box<rustls::Connection>>) -> Failure {
        match e {
            HandshakeError::Tls(e) => Failure::Tls(e, conn),
            HandshakeError::Io(e) => Failure::Io(e),
            HandshakeError::TimedOut => Failure::TimedOut,
        }
    }

    /// The failure as sonda's error: exit 7 for TLS itself, 4 for the
    /// timeout, the socket's own code otherwise.
    /// `only_13`: the client asked for TLS 1.3 alone (`--tls-min 1.3`).
    pub fn into_error(self, what: &str, timeout: Option<Duration>, only_13: bool) -> Error {
        match self {
            Failure::Tls(e, _) => Error::new(Exit::Tls, what, explain(&e, only_13)),
            // A peer that drops a ClientHello it does not like, without an
            // alert: a handshake failure all the same.
            Failure::Io(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                Error::new(
                    Exit::Tls,
                    what,
                    format!(
                        "{} during the handshake, without a TLS alert: it may not speak TLS, or require TLS 1.0/1.1 or legacy ciphers, which sonda (rustls) never speaks",
                        if e.kind() == std::io::ErrorKind::ConnectionReset { "the peer reset the connection" } else { "the peer closed the connection" }
                    ),
                )
            }
            Failure::Io(e) => Error::io(what, &e),
            Failure::TimedOut => Error::new(
                Exit::TimedOut,
                what,
                format!(
                    "TLS handshake timed out after {}",
                    humantime::format_duration(timeout.unwrap_or_default())
                ),
            ),
        }
    }
}

/// A rustls error for a person (see [`words::error`]).
pub fn explain(e: &rustls::Error, only_13: bool) -> String {
    words::error(e, only_13)
}

/// A server's configuration.
pub struct Server {
    config: Arc<ServerConfig>,
    /// The leaf's SHA-256 (hex), which a client can pin.
    pub fingerprint: String,
    pub ephemeral: bool,
}

impl Server {
    pub fn new(opts: &ServerOpts) -> Result<Server, Error> {
        let provider = provider();
        let (chain, key, ephemeral) = match &opts.identity {
            Some((c, k)) => (cert::load_certs(c)?, cert::load_key(k)?, false),
            None => {
                let (c, k) = cert::ephemeral(&opts.names)?;
                (vec![c], k, true)
            }
        };
        let fingerprint = cert::hex(&cert::sha256(chain[0].as_ref()));
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(|e| config_error("set up TLS", e))?;
        let builder = match &opts.client_ca {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for c in cert::load_certs(path)? {
                    roots.add(c).map_err(|e| {
                        config_error(&format!("use {} as --client-ca", path.display()), e)
                    })?;
                }
                let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| config_error("set up client verification", e))?;
                builder.with_client_cert_verifier(v)
            }
            None => builder.with_no_client_auth(),
        };
        let what = match &opts.identity {
            Some((c, _)) => format!("use {} with its key", c.display()),
            None => "use the ephemeral certificate".into(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| config_error(&what, e))?;
        config.alpn_protocols = opts.alpn.clone();
        // No TLS 1.3 session tickets: a client that only sends (ncat
        // --send-only) never reads them, and closing with them unread makes
        // its kernel reset the connection and drop what it had not yet
        // sent. sonda's clients are one-shot processes that never resume.
        config.send_tls13_tickets = 0;
        Ok(Server {
            config: Arc::new(config),
            fingerprint,
            ephemeral,
        })
    }

    /// The server side of the handshake over an accepted `inner`.
    pub fn accept(
        &self,
        inner: Conn,
        timeout: Option<Duration>,
    ) -> Result<Arc<TlsStream>, Failure> {
        let conn = ServerConnection::new(self.config.clone()).map_err(|e| Failure::Tls(e, None))?;
        TlsStream::handshake(inner, conn.into(), timeout)
            .map_err(|(e, conn)| Failure::from_handshake(e, Some(conn)))
    }
}

/// The subject of the certificate a client presented, for -v.
pub fn peer_subject(conn: &rustls::Connection) -> Option<String> {
    let leaf = conn.peer_certificates()?.first()?;
    cert::CertFacts::parse(leaf.as_ref())
        .ok()
        .map(|c| c.subject)
}
