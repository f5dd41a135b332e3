//! Parsers for the values a user types: durations and sizes.
//!
//! They return a message naming what was expected; clap or the caller adds
//! the offending value, so every bad input becomes one line and exit 2.

use std::time::Duration;

/// The longest duration accepted, so arithmetic on deadlines cannot overflow.
const MAX_DURATION_SECS: f64 = 100.0 * 365.0 * 24.0 * 3600.0;

/// A duration: humantime (`500ms`, `2s`, `1m30s`) or a bare number of
/// seconds (`5`, `0.25`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let expected = "expected a duration such as 500ms, 2s or 1m (a bare number means seconds)";
    if t.is_empty() {
        return Err(expected.to_string());
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return match t.parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs <= MAX_DURATION_SECS => {
                Ok(Duration::from_secs_f64(secs))
            }
            _ => Err(expected.to_string()),
        };
    }
    match humantime::parse_duration(t) {
        Ok(d) if d.as_secs_f64() <= MAX_DURATION_SECS => Ok(d),
        Ok(_) => Err("duration too long (at most 100 years)".to_string()),
        Err(_) => Err(expected.to_string()),
    }
}

/// The range TCP_KEEPIDLE and TCP_KEEPINTVL accept, in whole seconds.
const KEEPALIVE_SECS: std::ops::RangeInclusive<u64> = 1..=32767;

/// `--keepalive`: a duration in whole seconds from 1 to 32767. The kernel
/// counts the keepalive idle time and interval in seconds within that
/// range, and anything else fails at setsockopt(2) with a bare EINVAL,
/// after the connection is already made; checked here it is a usage
/// error naming the flag instead.
pub fn parse_keepalive(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.subsec_nanos() != 0 || !KEEPALIVE_SECS.contains(&d.as_secs()) {
        return Err(format!(
            "keepalive takes whole seconds from {}s to {}s (the range of TCP_KEEPIDLE)",
            KEEPALIVE_SECS.start(),
            KEEPALIVE_SECS.end()
        ));
    }
    Ok(d)
}

/// A size in bytes with an optional binary suffix: `K`, `M`, `G`
/// (also `KiB`, `MiB`, `GiB`; case-insensitive).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let expected = "expected a size such as 4096, 64K, 1M or 2G";
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| expected.to_string())?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(expected.to_string()),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| "size too large".to_string())
}

/// A size that must fit a socket option (an `int` in the kernel).
pub fn parse_buffer_size(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    if n == 0 || n > i32::MAX as u64 {
        return Err("buffer size must be between 1 and 2G-1 bytes".to_string());
    }
    Ok(n as usize)
}

/// A rate in bits per second: `1G`, `500M`, `100k`, `2.5G` (powers of
/// 1000, as network rates are quoted) or a plain number.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let expected = "expected a rate in bits/s such as 100M, 2.5G or 1000000";
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| expected.to_string())?;
    let scale = match suffix
        .to_ascii_lowercase()
        .trim_end_matches("bps")
        .trim_end_matches("bit/s")
    {
        "" => 1e0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        _ => return Err(expected.to_string()),
    };
    let bits = n * scale;
    if !bits.is_finite() || !(1.0..=1e13).contains(&bits) {
        return Err("a rate from 1 bit/s to 10 Tbit/s".to_string());
    }
    Ok(bits as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        for bad in ["", "5x", "-1", "1e400", "1.2.3", "99999999999999"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn keepalives() {
        assert_eq!(parse_keepalive("1"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_keepalive("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_keepalive("32767s"), Ok(Duration::from_secs(32767)));
        for bad in ["0", "500ms", "1.5", "32768", "1000000s", "x"] {
            assert!(parse_keepalive(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("100M"), Ok(100_000_000));
        assert_eq!(parse_rate("2.5G"), Ok(2_500_000_000));
        assert_eq!(parse_rate("1000"), Ok(1000));
        for bad in ["", "x", "0", "-1M", "1T"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        for bad in ["", "K", "1T", "-5", "99999999999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }
}
