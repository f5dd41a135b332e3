//! Diagnostics on stderr: `sonda: ...` lines under one lock, filtered by
//! `-v` / `-q`. Payload never goes through here.

use std::fmt::Display;
use std::io::Write;
use std::sync::atomic::{AtomicI8, Ordering};
use std::time::Duration;

static LEVEL: AtomicI8 = AtomicI8::new(0);

/// -1 for `-q`, 0 by default, 1.. for each `-v`.
pub fn set_level(verbose: u8, quiet: bool) {
    let level = if quiet { -1 } else { verbose.min(100) as i8 };
    LEVEL.store(level, Ordering::Relaxed);
}

pub fn verbose() -> bool {
    LEVEL.load(Ordering::Relaxed) >= 1
}

/// One write(2) per line, so lines from threads and processes sharing the
/// terminal never split.
fn line(msg: impl Display) {
    let text = format!("sonda: {msg}\n");
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// A `-v` diagnostic.
pub fn info(msg: impl Display) {
    if verbose() {
        line(msg);
    }
}

/// A condition the user should see unless `-q`.
pub fn warn(msg: impl Display) {
    if LEVEL.load(Ordering::Relaxed) >= 0 {
        line(msg);
    }
}

/// A fatal error, always shown, with its hint on a second line.
pub fn error(msg: impl Display, hint: Option<&str>) {
    let mut text = format!("sonda: {msg}\n");
    if let Some(hint) = hint {
        text.push_str(&format!("hint: {hint}\n"));
    }
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `1 client`, `2 clients`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A byte count for people: `1048576 bytes (1.00 MiB)`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return count(n, "byte", "bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{n} bytes ({v:.2} {unit})")
}

/// A duration for people, to the millisecond: `1.234s`, `0.120ms`.
pub fn duration(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.3}ms", d.as_secs_f64() * 1e3)
    } else if d < Duration::from_secs(1) {
        format!("{:.2}ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// Up to `max` bytes of a payload as printable text: printable ASCII as is,
/// `\n`, `\r`, `\t`, `\\`, `\"` escaped, anything else as `\xNN`; `...` when
/// cut. Terminal control bytes never reach the terminal raw.
pub fn escape_preview(data: &[u8], max: usize) -> String {
    let mut out = String::with_capacity(max.min(data.len()) + 3);
    for &b in data.iter().take(max) {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if data.len() > max {
        out.push_str("...");
    }
    out
}

/// The current time as RFC 3339 UTC with microseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_escapes_control_bytes() {
        assert_eq!(
            escape_preview(b"a\"b\\\n\x1b[0m\x00", 64),
            "a\\\"b\\\\\\n\\x1b[0m\\x00"
        );
        assert_eq!(escape_preview(b"abcdef", 3), "abc...");
    }

    #[test]
    fn byte_counts() {
        assert_eq!(bytes(10), "10 bytes");
        assert_eq!(bytes(1 << 20), "1048576 bytes (1.00 MiB)");
    }
}
