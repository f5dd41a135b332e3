//! `connect --tls`: the handshake, its report (stdout for -z, stderr with
//! -v in a relay) and what the verdict means for the exit status.

use std::fmt::Write as _;
use std::time::Duration;

use crate::config::connect::Connect;
use crate::engine::tls::report::Report;
use crate::engine::tls::{explain, starttls, Client, Failure};
use crate::engine::transport::{Conn, Stream};
use crate::error::{Error, Exit};
use crate::report;

/// A handshake with no `-w` still ends: a peer that accepts and says
/// nothing would hold the session for ever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The handshake over `stream` with `peer` (the target's name, which is
/// not the socket's peer through a proxy). In a relay, the secured stream; with
/// `report_only` (-z), the report goes to stdout and `None` comes back
/// when the peer is trusted (exit 0); not trusted is exit 7 either way.
pub fn handshake(
    client: &Client,
    stream: Conn,
    peer: &str,
    cfg: &Connect,
    report_only: bool,
) -> Result<Option<Conn>, Error> {
    let what = format!("TLS with {peer}");
    let timeout = cfg.connect.timeout.or(Some(HANDSHAKE_TIMEOUT));
    let opts = cfg.tls.as_ref();
    let sni = opts.is_some_and(|o| o.sni);
    let only_13 = opts.is_some_and(|o| o.only_13);
    let findings = || {
        client
            .findings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    };
    if let Some(proto) = opts.and_then(|o| o.starttls) {
        let transcript =
            starttls::negotiate(&*stream, proto, timeout.unwrap_or(HANDSHAKE_TIMEOUT))?;
        for line in transcript {
            report::info(format!("{}: {line}", starttls::name(proto)));
        }
    }
    match client.connect(stream, timeout) {
        Ok(secured) => {
            let facts = {
                let session = secured.session();
                Report::new(Some(&session), &findings(), client.name(), sni, None)
            };
            show(&facts, peer, cfg, report_only)?;
            if !facts.trusted {
                let why = format!("certificate not trusted: {}", facts.reasons.join("; "));
                if report_only || !opts.is_some_and(|o| o.insecure) {
                    return Err(Error::new(Exit::Tls, what, why));
                }
                report::warn(format!("{what}: {why} (going on: --insecure)"));
            }
            if report_only {
                let _ = secured.shutdown(std::net::Shutdown::Write);
                return Ok(None);
            }
            Ok(Some(secured))
        }
        Err(Failure::Tls(e, conn)) => {
            let facts = Report::new(
                conn.as_deref(),
                &findings(),
                client.name(),
                sni,
                Some(explain(&e, only_13)),
            );
            show(&facts, peer, cfg, report_only)?;
            Err(Failure::Tls(e, None).into_error(&what, timeout, only_13))
        }
        Err(other) => Err(other.into_error(&what, timeout, only_13)),
    }
}

/// The report: on stdout with -z (a write error is the command's, exit 1,
/// as for any stdout), else on stderr with -v.
fn show(facts: &Report, peer: &str, cfg: &Connect, report_only: bool) -> Result<(), Error> {
    if report_only {
        let text = if cfg.json {
            let mut j = serde_json::to_string(facts).unwrap_or_default();
            j.push('\n');
            j
        } else {
            render(facts, peer)
        };
        super::print_stdout(&text)?;
    } else if report::verbose() {
        for line in render(facts, peer).lines() {
            report::info(line);
        }
    }
    Ok(())
}

/// The report as text, one fact a line.
pub fn render(r: &Report, peer: &str) -> String {
    let none = || "none".to_string();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "TLS with {peer}: name verified {}, SNI {}",
        r.name_verified,
        r.sni.clone().unwrap_or_else(|| "not sent".into())
    );
    let rows = [
        ("version", r.version.clone().unwrap_or_else(none)),
        ("cipher suite", r.cipher_suite.clone().unwrap_or_else(none)),
        (
            "key exchange",
            r.key_exchange_group.clone().unwrap_or_else(none),
        ),
        ("ALPN", r.alpn.clone().unwrap_or_else(none)),
        (
            "handshake",
            r.handshake
                .clone()
                .unwrap_or_else(|| "not completed".into()),
        ),
        (
            "OCSP staple",
            if r.ocsp_stapled { "present" } else { "none" }.into(),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<13} {v}");
    }
    let _ = writeln!(out, "  chain as sent ({}):", r.chain.len());
    for (i, c) in r.chain.iter().enumerate() {
        let cert = &c.cert;
        let _ = writeln!(out, "    {i} subject  {}", cert.subject);
        let _ = writeln!(out, "      issuer   {}", cert.issuer);
        let _ = writeln!(
            out,
            "      valid    {} to {} ({})",
            cert.not_before,
            cert.not_after,
            if c.days_left < 0 {
                format!("expired {} days ago", -c.days_left)
            } else {
                format!("{} days left", c.days_left)
            }
        );
        let _ = writeln!(out, "      key      {}", cert.key);
        let _ = writeln!(out, "      sha256   {}", cert.sha256);
    }
    let sans: Vec<String> = r.leaf_sans.iter().map(|s| s.to_string()).collect();
    let _ = writeln!(
        out,
        "  {:<13} {} (matched: {})",
        "leaf SANs",
        if sans.is_empty() {
            "none".into()
        } else {
            sans.join(", ")
        },
        r.matched_san
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_else(none)
    );
    let _ = writeln!(
        out,
        "  {:<13} {}: {}",
        "verdict",
        if r.trusted { "trusted" } else { "NOT trusted" },
        r.reasons.join("; ")
    );
    if let Some(e) = &r.error {
        let _ = writeln!(out, "  {:<13} {e}", "failed");
    }
    out
}
