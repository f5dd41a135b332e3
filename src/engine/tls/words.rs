//! rustls's errors in the words of DESIGN.md. rustls renders many of its
//! errors through Debug (`CertificateRequired`, `MissingData("...")`),
//! which must never reach a user: every case a peer or a file can cause
//! is named here, and anything else is turned from its variant names
//! into words.

use rustls::{AlertDescription as A, CertificateError as C, Error as E, PeerIncompatible as P};

/// Why a certificate was refused.
pub fn certificate(c: &C) -> String {
    match c {
        C::Expired | C::ExpiredContext { .. } => "the certificate has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "the certificate is not valid yet".into(),
        C::UnknownIssuer => "unknown issuer: the chain does not lead to a trusted root".into(),
        // webpki tried an issuer with the right name but another key type
        // (a system root that happens to share the name): no path.
        C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "unknown issuer: no trusted root with the issuer's name and key type signed it".into()
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "name mismatch: the certificate is not valid for the name verified".into()
        }
        C::BadSignature => "bad signature in the chain".into(),
        C::UnsupportedSignatureAlgorithmContext { .. } => {
            "the chain is signed with an algorithm rustls does not accept (SHA-1, or an unusual curve)"
                .into()
        }
        C::Revoked => "the certificate is revoked".into(),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "the certificate is not for TLS (its extended key usage)".into()
        }
        C::BadEncoding => "the certificate is malformed".into(),
        C::UnhandledCriticalExtension => {
            "the certificate has a critical extension rustls does not know".into()
        }
        C::Other(other) => {
            let debug = format!("{other:?}");
            if debug.contains("CaUsedAsEndEntity") {
                "the certificate is a CA certificate (basicConstraints CA:TRUE), which cannot \
                 identify a peer; make the leaf with CA:FALSE"
                    .into()
            } else if debug.contains("UnsupportedCertVersion") {
                "the certificate is X.509 v1 or v2; only v3 is accepted".into()
            } else if debug.contains("EndEntityUsedAsCa") {
                "a certificate in the chain that signed another is not a CA (basicConstraints)"
                    .into()
            } else {
                format!("the certificate was refused: {}", humanize(&debug))
            }
        }
        other => format!("the certificate was refused: {}", humanize(&format!("{other:?}"))),
    }
}

/// A handshake's or session's failure. `only_13`: `--tls-min 1.3` was
/// asked, so a version refusal may be the peer's lack of TLS 1.3.
pub fn error(e: &E, only_13: bool) -> String {
    match e {
        E::InvalidCertificate(c) => format!("certificate not trusted: {}", certificate(c)),
        E::General(why) => format!("certificate not trusted: {why}"),
        E::AlertReceived(A::ProtocolVersion)
        | E::PeerIncompatible(P::SupportedVersionsExtensionRequired)
            if only_13 =>
        {
            "the peer does not speak TLS 1.3, which --tls-min 1.3 requires (it may speak TLS 1.2)"
                .into()
        }
        E::AlertReceived(A::ProtocolVersion)
        | E::PeerIncompatible(P::Tls12NotOffered)
        | E::PeerIncompatible(P::Tls12NotOfferedOrEnabled)
        | E::PeerIncompatible(P::ServerDoesNotSupportTls12Or13)
        | E::PeerIncompatible(P::SupportedVersionsExtensionRequired)
        | E::PeerIncompatible(P::SignatureAlgorithmsExtensionRequired) => {
            "the peer refused the protocol version: it may require TLS 1.0 or 1.1, which sonda \
             (rustls) never speaks"
                .into()
        }
        E::PeerIncompatible(P::ServerTlsVersionIsDisabledByOurConfig) => {
            "the server chose TLS 1.2, which --tls-min 1.3 refuses".into()
        }
        E::PeerIncompatible(P::NoCipherSuitesInCommon) => {
            "no cipher suite in common: the peer offers only legacy ciphers, which sonda (rustls) \
             never speaks"
                .into()
        }
        E::PeerIncompatible(P::NoKxGroupsInCommon) => {
            "no key-exchange group in common: the peer offers only legacy ciphers or groups, \
             which sonda (rustls) never speaks"
                .into()
        }
        E::PeerIncompatible(P::NoSignatureSchemesInCommon) => {
            "no signature scheme in common with the peer".into()
        }
        E::AlertReceived(A::HandshakeFailure) | E::AlertReceived(A::InsufficientSecurity) => {
            "the peer ended the handshake (handshake_failure): no cipher suite or group in \
             common, or it requires a client certificate or legacy ciphers that sonda (rustls) \
             never speaks"
                .into()
        }
        E::AlertReceived(A::CertificateRequired) => {
            "the peer requires a client certificate (--cert, --key)".into()
        }
        E::AlertReceived(a @ (A::BadCertificate | A::UnknownCA | A::CertificateUnknown)) => {
            format!(
                "the peer refused our client certificate (alert {})",
                alert_name(a)
            )
        }
        E::AlertReceived(A::CertificateExpired) => {
            "the peer refused our client certificate: it has expired (alert certificate_expired)"
                .into()
        }
        E::AlertReceived(A::NoApplicationProtocol) => {
            "no ALPN protocol in common with the peer (alert no_application_protocol)".into()
        }
        E::AlertReceived(a) => format!("the peer sent the alert {}", alert_name(a)),
        E::NoCertificatesPresented => "the peer sent no certificate".into(),
        E::PeerIncompatible(p) => {
            format!("the peer is incompatible: {}", humanize(&format!("{p:?}")))
        }
        E::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "the peer does not speak TLS here (what it sent is not a TLS record)".into()
        }
        E::InvalidMessage(m) => format!(
            "the peer does not speak TLS here (its message is malformed: {})",
            humanize(&format!("{m:?}"))
        ),
        E::PeerMisbehaved(m) => format!(
            "the peer broke the TLS protocol: {}",
            humanize(&format!("{m:?}"))
        ),
        E::DecryptError => "a record failed to decrypt (corrupted in transit, or not TLS)".into(),
        E::PeerSentOversizedRecord => "the peer sent a record larger than TLS allows".into(),
        E::NoApplicationProtocol => "no ALPN protocol in common with the peer (--alpn)".into(),
        E::InconsistentKeys(_) => "the private key does not belong to the certificate".into(),
        other => humanize(&format!("{other:?}")),
    }
}

/// "BadCertificate" as the RFC spells it: "bad_certificate".
pub fn alert_name(a: &A) -> String {
    snake(&format!("{a:?}"), '_')
}

/// A Debug rendering's variant names as words: `PeerMisbehaved(
/// IllegalMiddleboxChangeCipherSpec)` is "peer misbehaved: illegal
/// middlebox change cipher spec". Field values (`{ .. }`, strings,
/// numbers) are dropped.
pub fn humanize(debug: &str) -> String {
    let mut parts = Vec::new();
    let mut word = String::new();
    for c in debug.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() && word.starts_with(|c: char| c.is_ascii_uppercase()) {
            let w = snake(&word, ' ');
            if !matches!(w.as_str(), "other" | "other error" | "some") {
                parts.push(w);
            }
        }
        word.clear();
        // Field lists and string payloads are details, not names.
        if c == '{' || c == '"' || c == '[' {
            break;
        }
    }
    if !word.is_empty() && word.starts_with(|c: char| c.is_ascii_uppercase()) {
        parts.push(snake(&word, ' '));
    }
    if parts.is_empty() {
        "an unexpected TLS error".into()
    } else {
        parts.join(": ")
    }
}

fn snake(camel: &str, sep: char) -> String {
    let mut out = String::new();
    let chars: Vec<char> = camel.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
        let prev_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
        if c.is_ascii_uppercase() && i > 0 && (prev_lower || next_lower) {
            out.push(sep);
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_become_words() {
        assert_eq!(
            humanize("PeerMisbehaved(IllegalMiddleboxChangeCipherSpec)"),
            "peer misbehaved: illegal middlebox change cipher spec"
        );
        assert_eq!(humanize("MissingData(\"ProtocolVersion\")"), "missing data");
        assert_eq!(
            humanize("Other(OtherError(CaUsedAsEndEntity))"),
            "ca used as end entity"
        );
        assert_eq!(
            humanize("UnsupportedSignatureAlgorithmForPublicKeyContext { signature_algorithm_id: [6, 8] }"),
            "unsupported signature algorithm for public key context"
        );
        assert_eq!(alert_name(&A::BadCertificate), "bad_certificate");
        assert_eq!(alert_name(&A::UnknownCA), "unknown_ca");
    }

    #[test]
    fn no_debug_text_in_the_common_failures() {
        for e in [
            E::AlertReceived(A::CertificateRequired),
            E::AlertReceived(A::CertificateUnknown),
            E::InvalidMessage(rustls::InvalidMessage::MissingData("ProtocolVersion")),
            E::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
            E::PeerIncompatible(P::SignatureAlgorithmsExtensionRequired),
            E::PeerIncompatible(P::NoKxGroupsInCommon),
            E::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch),
        ] {
            let text = error(&e, false);
            let camel = text.split(|c: char| !c.is_alphanumeric()).any(|w| {
                w.chars().skip(1).any(|c| c.is_ascii_uppercase())
                    && w.chars().any(|c| c.is_ascii_lowercase())
            });
            assert!(!camel && !text.contains(['{', '"']), "{text}");
        }
    }
}
