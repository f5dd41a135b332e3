//! Certificates: the facts a report shows (x509-parser), PEM files, the
//! ephemeral certificate `listen --tls` makes when given none.

use std::net::IpAddr;
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Serialize;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::error::{Error, Exit};

pub fn sha256(der: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A subject alternative name the way a name is checked against it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum San {
    Dns(String),
    Ip(IpAddr),
    /// Shown, never matched against a host name.
    Email(String),
    Uri(String),
}

impl std::fmt::Display for San {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            San::Dns(n) => write!(f, "DNS:{n}"),
            San::Ip(ip) => write!(f, "IP:{ip}"),
            San::Email(e) => write!(f, "email:{e}"),
            San::Uri(u) => write!(f, "URI:{u}"),
        }
    }
}

/// One certificate of a chain, as a report shows it.
#[derive(Clone, Debug, Serialize)]
pub struct CertFacts {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    /// Seconds since the epoch; `days_left` is computed from it.
    #[serde(skip)]
    pub not_before_secs: i64,
    #[serde(skip)]
    pub not_after_secs: i64,
    pub key: String,
    pub sha256: String,
    pub sans: Vec<San>,
    pub self_signed: bool,
    /// The issuer's and subject's names as DER (the Name's contents, as
    /// a trust anchor stores its subject), to look for the issuer among
    /// the roots without webpki.
    #[serde(skip)]
    pub issuer_der: Vec<u8>,
    #[serde(skip)]
    pub subject_der: Vec<u8>,
}

impl CertFacts {
    pub fn parse(der: &[u8]) -> Result<CertFacts, String> {
        let (_, x) =
            X509Certificate::from_der(der).map_err(|e| format!("malformed certificate: {e}"))?;
        let validity = x.validity();
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = x.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(n) => sans.push(San::Dns(n.to_string())),
                    GeneralName::IPAddress(b) => {
                        if let Ok(a) = <[u8; 4]>::try_from(*b) {
                            sans.push(San::Ip(IpAddr::from(a)));
                        } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                            sans.push(San::Ip(IpAddr::from(a)));
                        }
                    }
                    GeneralName::RFC822Name(e) => sans.push(San::Email(e.to_string())),
                    GeneralName::URI(u) => sans.push(San::Uri(u.to_string())),
                    _ => {}
                }
            }
        }
        Ok(CertFacts {
            issuer_der: der_contents(x.issuer().as_raw()).to_vec(),
            subject_der: der_contents(x.subject().as_raw()).to_vec(),
            subject: x.subject().to_string(),
            issuer: x.issuer().to_string(),
            not_before: utc(validity.not_before.timestamp()),
            not_after: utc(validity.not_after.timestamp()),
            not_before_secs: validity.not_before.timestamp(),
            not_after_secs: validity.not_after.timestamp(),
            key: key_text(&x),
            sha256: hex(&sha256(der)),
            sans,
            self_signed: x.subject() == x.issuer(),
        })
    }

    /// Whole days until notAfter (negative once expired).
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after_secs - now).div_euclid(86_400)
    }

    /// The SAN that `name` matches, if any.
    pub fn matching_san(&self, name: &ServerName<'_>) -> Option<&San> {
        self.sans.iter().find(|san| match (san, name) {
            (San::Dns(pattern), ServerName::DnsName(n)) => dns_matches(pattern, n.as_ref()),
            (San::Ip(ip), ServerName::IpAddress(want)) => *ip == IpAddr::from(*want),
            _ => false,
        })
    }
}

/// A DER value without its tag and length.
fn der_contents(tlv: &[u8]) -> &[u8] {
    let header = match tlv.get(1) {
        Some(&len) if len < 0x80 => 2,
        Some(&len) => 2 + usize::from(len & 0x7f),
        None => return tlv,
    };
    tlv.get(header..).unwrap_or(tlv)
}

/// RFC 6125 matching: case-insensitive, a `*` only as the whole leftmost
/// label, covering exactly one label.
fn dns_matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (
        pattern.to_ascii_lowercase(),
        name.trim_end_matches('.').to_ascii_lowercase(),
    );
    match p.strip_prefix("*.") {
        Some(rest) => n
            .split_once('.')
            .is_some_and(|(first, tail)| !first.is_empty() && tail == rest),
        None => p == n,
    }
}

fn key_text(x: &X509Certificate<'_>) -> String {
    let spki = x.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {} bits", rsa.key_size()),
        Ok(PublicKey::EC(ec)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| match oid.to_id_string().as_str() {
                    "1.2.840.10045.3.1.7" => "P-256".to_string(),
                    "1.3.132.0.34" => "P-384".to_string(),
                    "1.3.132.0.35" => "P-521".to_string(),
                    other => other.to_string(),
                })
                .unwrap_or_else(|| "?".into());
            format!("ECDSA {curve} ({} bits)", ec.key_size())
        }
        Ok(PublicKey::DSA(_)) => "DSA".into(),
        Ok(_) => match spki.algorithm.algorithm.to_id_string().as_str() {
            "1.3.101.112" => "Ed25519".into(),
            "1.3.101.113" => "Ed448".into(),
            other => other.to_string(),
        },
        Err(_) => "unknown".into(),
    }
}

/// `2026-12-01T23:41:00Z` from seconds since the epoch (proleptic
/// Gregorian, UTC), without a date crate.
pub fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Every certificate in a PEM file; a file that cannot be read or holds
/// none is exit 1 naming it.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let what = format!("read certificates from {}", path.display());
    let data = std::fs::read(path).map_err(|e| Error::io(&what, &e))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<_, _>>()
        .map_err(|e| Error::new(Exit::Failure, &what, pem_error(&e)))?;
    if certs.is_empty() {
        return Err(Error::new(
            Exit::Failure,
            what,
            "no CERTIFICATE in the file",
        ));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let what = format!("read the private key from {}", path.display());
    let data = std::fs::read(path).map_err(|e| Error::io(&what, &e))?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| {
        let why = if data.windows(b"ENCRYPTED".len()).any(|w| w == b"ENCRYPTED") {
            "the key is encrypted; sonda reads unencrypted keys only \
             (openssl pkey -in KEY -out PLAIN decrypts a copy)"
                .to_string()
        } else if matches!(e, rustls::pki_types::pem::Error::NoItemsFound) {
            "no private key in the file (PKCS#8, RSA or EC PEM)".to_string()
        } else {
            pem_error(&e)
        };
        Error::new(Exit::Failure, what, why)
    })
}

/// A PEM parse error in words (its Display quotes Debug of the base64
/// decoder's error).
fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as P;
    match e {
        P::MissingSectionEnd { end_marker } => format!(
            "malformed PEM: a section has no '{}' line",
            String::from_utf8_lossy(end_marker)
        ),
        P::IllegalSectionStart { .. } => "malformed PEM: a bad '-----BEGIN' line".into(),
        P::Base64Decode(_) => "malformed PEM: the body is not valid base64".into(),
        P::SectionTooLarge => "malformed PEM: a section is larger than 256 MiB".into(),
        P::NoItemsFound => "no PEM section of the expected type in the file".into(),
        P::Io(e) => crate::error::describe(e),
        _ => "malformed PEM".into(),
    }
}

/// A self-signed ECDSA P-256 certificate for `names` (DNS names and IP
/// addresses), valid from a day ago for 30 days.
pub fn ephemeral(
    names: &[String],
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), Error> {
    let fail = |e: rcgen::Error| Error::new(Exit::Failure, "make a certificate", e.to_string());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(fail)?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(fail)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sonda ephemeral");
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(86_400)).into();
    params.not_after = (now + std::time::Duration::from_secs(30 * 86_400)).into();
    let cert = params.self_signed(&key).map_err(fail)?;
    let key_der = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| Error::new(Exit::Failure, "make a certificate", e.to_string()))?;
    Ok((cert.der().clone(), key_der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_as_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_083_260), "2026-12-01T00:01:00Z");
    }

    #[test]
    fn wildcards_cover_one_label() {
        assert!(dns_matches("*.example.com", "a.example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(dns_matches("Example.COM", "example.com."));
    }

    #[test]
    fn an_ephemeral_certificate_names_its_hosts() {
        let (der, _) = ephemeral(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        let facts = CertFacts::parse(der.as_ref()).unwrap();
        assert!(facts.sans.contains(&San::Dns("localhost".into())));
        assert!(facts.sans.contains(&San::Ip("127.0.0.1".parse().unwrap())));
        assert!(facts.key.starts_with("ECDSA P-256"), "{}", facts.key);
        assert!(facts.self_signed);
    }
}
