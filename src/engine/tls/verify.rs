//! A server-certificate verifier that records what it found: webpki's
//! verdict (and, when that is a failure, every other problem the chain
//! has), the chain as sent and the OCSP staple, so the report can name
//! each problem even when `--insecure` or a pin lets the handshake go on.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::cert::{self, CertFacts};

/// Why a chain is trusted, or every reason it is not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Trusted(&'static str),
    NotTrusted(Vec<String>),
}

/// What the verifier saw, for the report.
#[derive(Clone, Debug, Default)]
pub struct Findings {
    /// The chain as the server sent it, leaf first (DER).
    pub chain: Vec<Vec<u8>>,
    pub ocsp_stapled: bool,
    pub verdict: Option<Verdict>,
}

#[derive(Debug)]
pub struct Recording {
    /// `None` when there are no trust anchors to verify against.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    /// Where the anchors came from, for the verdict ("system roots").
    anchors: &'static str,
    provider: Arc<CryptoProvider>,
    pin: Option<[u8; 32]>,
    insecure: bool,
    pub findings: Arc<Mutex<Findings>>,
}

impl Recording {
    pub fn new(
        webpki: Option<Arc<WebPkiServerVerifier>>,
        anchors: &'static str,
        provider: Arc<CryptoProvider>,
        pin: Option<[u8; 32]>,
        insecure: bool,
    ) -> Recording {
        Recording {
            webpki,
            anchors,
            provider,
            pin,
            insecure,
            findings: Arc::default(),
        }
    }
}

/// webpki's error in the words of DESIGN.md.
pub fn reason(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::Expired | C::ExpiredContext { .. } => "the certificate has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the certificate is not valid yet".into()
            }
            C::UnknownIssuer => "unknown issuer: the chain does not lead to a trusted root".into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "name mismatch: the certificate is not valid for the name verified".into()
            }
            C::BadSignature | C::UnsupportedSignatureAlgorithmContext { .. } => {
                "bad signature in the chain".into()
            }
            C::Revoked => "the certificate is revoked".into(),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "the certificate is not for TLS servers (extended key usage)".into()
            }
            C::BadEncoding => "the certificate is malformed".into(),
            other => format!("{other:?}").to_lowercase(),
        },
        other => other.to_string(),
    }
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut findings = self.findings.lock().unwrap_or_else(|p| p.into_inner());
        findings.chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.as_ref().to_vec())
            .collect();
        findings.ocsp_stapled = !ocsp_response.is_empty();
        let checked = match &self.webpki {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        };
        let pinned = self.pin.map(|pin| cert::sha256(end_entity.as_ref()) == pin);
        let (verdict, result) = match (checked, pinned) {
            (_, Some(true)) => (Verdict::Trusted("the leaf matches --pin-sha256"), Ok(())),
            (_, Some(false)) => {
                let why = "the leaf does not match --pin-sha256".to_string();
                (
                    Verdict::NotTrusted(vec![why.clone()]),
                    Err(rustls::Error::General(why)),
                )
            }
            (Ok(_), None) => (Verdict::Trusted(self.anchors), Ok(())),
            (Err(e), None) => {
                // webpki stops at the first problem; name the rest too.
                let mut problems = vec![reason(&e)];
                if let Ok(leaf) = CertFacts::parse(end_entity.as_ref()) {
                    for p in leaf.problems(server_name, now.as_secs() as i64) {
                        if !problems.contains(&p) {
                            problems.push(p);
                        }
                    }
                }
                (Verdict::NotTrusted(problems), Err(e))
            }
        };
        findings.verdict = Some(verdict);
        match result {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            Err(_) if self.insecure => Ok(ServerCertVerified::assertion()),
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
