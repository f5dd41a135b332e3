//! HTTP CONNECT (RFC 9110 section 9.3.6), with Basic proxy credentials
//! when the URL has a user.

use std::time::Instant;

use super::wire::Wire;
use super::{Dest, ProxyUrl, Stage};
use crate::error::{Error, Exit};

/// A proxy's reply header larger than this is not an answer to CONNECT.
const MAX_HEADER: usize = 16 * 1024;

pub fn tunnel(
    wire: &Wire,
    proxy: &ProxyUrl,
    dest: &Dest,
    report: &mut dyn FnMut(Stage),
) -> Result<(), Error> {
    let started = Instant::now();
    let authority = dest.to_string();
    if authority.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(Error::usage(
            format!("'{authority}'"),
            "a host for HTTP CONNECT has no spaces or control characters",
        ));
    }
    let mut req = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: sonda/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(user) = &proxy.user {
        let pass = proxy.password.as_deref().unwrap_or_default();
        req.push_str(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            base64(format!("{user}:{pass}").as_bytes())
        ));
    }
    req.push_str("\r\n");
    wire.send(req.as_bytes(), "CONNECT request")?;
    let header = read_header(wire)?;
    let text = String::from_utf8_lossy(&header);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default().trim_end();
    let code = parse_status(status_line).ok_or_else(|| {
        wire.error(
            Exit::Failure,
            format!("the reply is not HTTP: '{}'", printable(status_line)),
        )
    })?;
    if (200..300).contains(&code) {
        let auth = match &proxy.user {
            Some(u) => format!(", authenticated as '{u}' (Basic)"),
            None => String::new(),
        };
        report(Stage {
            what: format!(
                "reply: '{}', tunnel to {dest} open{auth}",
                printable(status_line)
            ),
            took: started.elapsed(),
        });
        return Ok(());
    }
    let header_value = |name: &str| {
        text.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let shown = printable(status_line);
    let reason = status_line.splitn(3, ' ').nth(2).unwrap_or_default();
    let could_not_connect = matches!(code, 502 | 503)
        || (code / 100 == 5 && reason.to_ascii_lowercase().contains("connect"));
    let err = match code {
        // tinyproxy answers bad credentials with 401.
        401 | 407 if code == 407 || proxy.user.is_some() => {
            let scheme = header_value("Proxy-Authenticate")
                .and_then(|v| v.split_whitespace().next().map(str::to_string));
            let asks = match &scheme {
                Some(s) => format!(" (the proxy asks for {s})"),
                None => String::new(),
            };
            let why = match &proxy.user {
                Some(u) => format!("authentication rejected for user '{u}': '{shown}'{asks}"),
                None => format!("authentication required: '{shown}'{asks}"),
            };
            let err = wire.error(Exit::Failure, why);
            match scheme {
                _ if proxy.user.is_none() => err.with_hint(
                    "--proxy http://USER@HOST:PORT, the password in SONDA_PROXY_PASSWORD",
                ),
                Some(s) if !s.eq_ignore_ascii_case("basic") => {
                    err.with_hint("sonda sends Basic credentials only")
                }
                _ if proxy.password.is_none() => err.with_hint(
                    "an empty password was sent: the URL has none and SONDA_PROXY_PASSWORD is not set",
                ),
                _ => err,
            }
        }
        // A gateway timeout is the proxy's connect timing out.
        504 => wire.error(
            Exit::TimedOut,
            format!("connect to {dest} through the proxy: '{shown}'"),
        ),
        // The proxy could not connect to the target (Squid: 503, others
        // 502, tinyproxy "500 Unable to connect"). HTTP has no code for a
        // refusal as such: a name the proxy could not resolve reads the same.
        _ if could_not_connect => wire.error(
            Exit::Refused,
            format!(
                "connect to {dest} through the proxy: '{shown}' (refused, unreachable, \
                 or a name the proxy could not resolve: HTTP does not say which)"
            ),
        ),
        // The proxy's policy forbids this target: for a scan, filtered.
        403 => super::forbidden(wire.error(
            Exit::Failure,
            format!("connect to {dest} through the proxy: '{shown}'"),
        )),
        _ => wire.error(
            Exit::Failure,
            format!("connect to {dest} through the proxy: '{shown}'"),
        ),
    };
    Err(err)
}

/// The reply up to and including its empty line, a byte at a time so the
/// tunnel's first bytes stay on the socket.
fn read_header(wire: &Wire) -> Result<Vec<u8>, Error> {
    let mut header = Vec::with_capacity(256);
    while !header.ends_with(b"\r\n\r\n") {
        // A bare-LF proxy is tolerated.
        if header.ends_with(b"\n\n") {
            break;
        }
        if header.len() >= MAX_HEADER {
            return Err(wire.error(
                Exit::Failure,
                format!(
                    "the reply's header is longer than {} KiB",
                    MAX_HEADER / 1024
                ),
            ));
        }
        header.push(wire.byte("CONNECT request")?);
        // Said at once: waiting for an empty line that is not coming would
        // end as a timeout, which blames the wrong thing.
        // A SOCKS reply is two bytes: the first one tells.
        if (header.len() == 1 && matches!(header[0], 4 | 5))
            || (header.len() == 5 && !header.starts_with(b"HTTP/"))
        {
            return Err(not_http(wire, &header));
        }
    }
    Ok(header)
}

fn not_http(wire: &Wire, start: &[u8]) -> Error {
    let why = match start.first() {
        Some(4 | 5) => {
            "the proxy answered in SOCKS, not HTTP: try --proxy socks5:// (or socks4a://)"
                .to_string()
        }
        _ => format!(
            "the reply is not HTTP (it begins '{}'): is this an HTTP proxy?",
            printable(&String::from_utf8_lossy(start))
        ),
    };
    wire.error(Exit::Failure, why)
}

/// `HTTP/1.1 200 Connection established` to 200.
fn parse_status(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

/// A peer's text, its control characters escaped, at most 200 characters.
fn printable(s: &str) -> String {
    s.chars()
        .take(200)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc);
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status("HTTP/1.1 200 Connection established"),
            Some(200)
        );
        assert_eq!(parse_status("HTTP/1.0 407"), Some(407));
        assert_eq!(parse_status("SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status("HTTP/1.1 2000 x"), None);
    }
}
