//! The facts of a handshake, for `connect --tls -z` (stdout) and `-v` in a
//! relay (stderr): what was negotiated, the chain as sent, the verdict.

use rustls::pki_types::ServerName;
use rustls::Connection;
use serde::Serialize;

use super::cert::{CertFacts, San};
use super::verify::{Findings, Verdict};

#[derive(Clone, Debug, Serialize)]
pub struct ChainEntry {
    #[serde(flatten)]
    pub cert: CertFacts,
    pub days_left: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// "TLS 1.3"; `None` when the handshake did not get that far.
    pub version: Option<String>,
    pub cipher_suite: Option<String>,
    pub key_exchange_group: Option<String>,
    pub alpn: Option<String>,
    /// The SNI sent: `None` for an IP literal or `--no-sni`.
    pub sni: Option<String>,
    pub name_verified: String,
    /// "full", "full (HelloRetryRequest)" or "resumed".
    pub handshake: Option<String>,
    pub chain: Vec<ChainEntry>,
    pub leaf_sans: Vec<San>,
    pub matched_san: Option<San>,
    pub trusted: bool,
    /// Why it is trusted, or every reason it is not.
    pub reasons: Vec<String>,
    pub ocsp_stapled: bool,
    /// The handshake's own failure, when it failed.
    pub error: Option<String>,
}

impl Report {
    pub fn new(
        conn: Option<&Connection>,
        findings: &Findings,
        name: &ServerName<'_>,
        sni_sent: bool,
        error: Option<String>,
    ) -> Report {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let chain: Vec<ChainEntry> = findings
            .chain
            .iter()
            .filter_map(|der| CertFacts::parse(der).ok())
            .map(|cert| ChainEntry {
                days_left: cert.days_left(now),
                cert,
            })
            .collect();
        let leaf = chain.first().map(|c| &c.cert);
        let (trusted, reasons) = match &findings.verdict {
            Some(Verdict::Trusted(why)) => (true, vec![why.to_string()]),
            Some(Verdict::NotTrusted(why)) => (false, why.clone()),
            None => (false, vec!["no certificate was verified".to_string()]),
        };
        let handshaken = conn.is_some_and(|c| !c.is_handshaking());
        let conn = conn.filter(|_| handshaken);
        let name_text = match name {
            ServerName::DnsName(n) => n.as_ref().to_string(),
            ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
            _ => String::new(),
        };
        Report {
            version: conn.and_then(|c| c.protocol_version()).map(version_name),
            cipher_suite: conn
                .and_then(|c| c.negotiated_cipher_suite())
                .map(|s| format!("{:?}", s.suite())),
            key_exchange_group: conn
                .and_then(|c| c.negotiated_key_exchange_group())
                .map(|g| format!("{:?}", g.name())),
            alpn: conn
                .and_then(|c| c.alpn_protocol())
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            sni: (sni_sent && matches!(name, ServerName::DnsName(_))).then(|| name_text.clone()),
            name_verified: name_text,
            handshake: conn.and_then(|c| c.handshake_kind()).map(|k| {
                match k {
                    rustls::HandshakeKind::Full => "full",
                    rustls::HandshakeKind::FullWithHelloRetryRequest => "full (HelloRetryRequest)",
                    rustls::HandshakeKind::Resumed => "resumed",
                }
                .to_string()
            }),
            leaf_sans: leaf.map(|l| l.sans.clone()).unwrap_or_default(),
            matched_san: leaf.and_then(|l| l.matching_san(name).cloned()),
            chain,
            trusted,
            reasons,
            ocsp_stapled: findings.ocsp_stapled,
            error,
        }
    }
}

pub fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".into(),
        other => format!("{other:?}"),
    }
}
