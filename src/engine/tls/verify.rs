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
    /// The trust anchors' subject names (DER contents).
    anchor_subjects: Vec<Vec<u8>>,
    pub findings: Arc<Mutex<Findings>>,
}

impl Recording {
    pub fn new(
        webpki: Option<Arc<WebPkiServerVerifier>>,
        anchors: &'static str,
        provider: Arc<CryptoProvider>,
        pin: Option<[u8; 32]>,
        insecure: bool,
        anchor_subjects: Vec<Vec<u8>>,
    ) -> Recording {
        Recording {
            webpki,
            anchors,
            provider,
            pin,
            insecure,
            anchor_subjects,
            findings: Arc::default(),
        }
    }
}

/// webpki's error in the words of DESIGN.md.
pub fn reason(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => super::words::certificate(c),
        other => super::words::error(other, false),
    }
}

impl Recording {
    /// webpki stops at the first problem, and checks validity times
    /// before it looks for an issuer: an expired leaf from an unknown CA
    /// reads as expired only. So the chain is asked again at a moment when
    /// every certificate in it is valid, which brings out the issuer and
    /// signature problems behind the dates, and the leaf's name is checked
    /// here. Each date problem names its certificate.
    fn every_problem(
        &self,
        first: &rustls::Error,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Vec<String> {
        let facts: Vec<CertFacts> = std::iter::once(end_entity)
            .chain(intermediates)
            .filter_map(|c| CertFacts::parse(c.as_ref()).ok())
            .collect();
        let now_s = now.as_secs() as i64;
        let mut problems = Vec::new();
        if !is_time(first) {
            add(&mut problems, reason(first));
        }
        for (i, f) in facts.iter().enumerate() {
            // A server that sends its leaf twice has one problem, not two.
            if facts[..i].iter().any(|e| e.sha256 == f.sha256) {
                continue;
            }
            let which = if i == 0 {
                format!("the leaf ({})", f.subject)
            } else {
                format!("certificate {i} of the chain ({})", f.subject)
            };
            if now_s > f.not_after_secs {
                add(&mut problems, format!("{which} has expired"));
            } else if now_s < f.not_before_secs {
                add(&mut problems, format!("{which} is not valid yet"));
            }
        }
        if is_time(first) {
            let start = facts.iter().map(|f| f.not_before_secs).max();
            let end = facts.iter().map(|f| f.not_after_secs).min();
            if let (Some(v), Some(start), Some(end)) = (&self.webpki, start, end) {
                if start < end && start >= 0 {
                    let then = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                        start as u64 + 1,
                    ));
                    match v.verify_server_cert(end_entity, intermediates, server_name, &[], then) {
                        Err(e) if !is_time(&e) => add(&mut problems, reason(&e)),
                        _ => {}
                    }
                }
            }
        }
        // Dates that never overlap leave no moment to ask webpki again:
        // look for the top certificate's issuer among the roots by name.
        if is_time(first) && !problems.iter().any(|p| p.starts_with("unknown issuer")) {
            if let Some(top) = facts.last() {
                let known = self
                    .anchor_subjects
                    .iter()
                    .any(|s| *s == top.issuer_der || *s == top.subject_der);
                if !known {
                    add(
                        &mut problems,
                        reason(&rustls::Error::InvalidCertificate(
                            rustls::CertificateError::UnknownIssuer,
                        )),
                    );
                }
            }
        }
        if let Some(leaf) = facts.first() {
            if leaf.matching_san(server_name).is_none() {
                add(
                    &mut problems,
                    "name mismatch: the certificate is not valid for the name verified".into(),
                );
            }
        }
        if problems.is_empty() {
            problems.push(reason(first));
        }
        problems
    }
}

fn add(problems: &mut Vec<String>, p: String) {
    if !problems.contains(&p) {
        problems.push(p);
    }
}

fn is_time(e: &rustls::Error) -> bool {
    use rustls::CertificateError as C;
    matches!(
        e,
        rustls::Error::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. }
        )
    )
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
                let problems = self.every_problem(&e, end_entity, intermediates, server_name, now);
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
