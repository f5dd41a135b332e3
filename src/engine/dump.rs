//! `--hexdump`: both directions of a relay as `hexdump -C` lines, each
//! chunk headed by its direction, its time since the session began and
//! its offset in that direction's stream. The command picks where the
//! lines go (stderr or a file); the relay only hands over what it moved.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub struct Dump {
    out: Mutex<Box<dyn Write + Send>>,
    started: Instant,
    sent: AtomicU64,
    received: AtomicU64,
}

impl std::fmt::Debug for Dump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dump")
    }
}

#[derive(Clone, Copy)]
pub enum Way {
    /// `>`: to the peer.
    Sent,
    /// `<`: from the peer.
    Received,
}

impl Dump {
    pub fn new(out: Box<dyn Write + Send>) -> Dump {
        Dump {
            out: Mutex::new(out),
            started: Instant::now(),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
        }
    }

    /// One chunk, written whole so the two directions never interleave
    /// within a chunk. A failing dump does not stop the relay.
    pub fn chunk(&self, way: Way, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let (mark, counter, verb) = match way {
            Way::Sent => ('>', &self.sent, "sent"),
            Way::Received => ('<', &self.received, "received"),
        };
        let offset = counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let text = render(
            mark,
            verb,
            self.started.elapsed().as_secs_f64(),
            offset,
            bytes,
        );
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }
}

fn render(mark: char, verb: &str, secs: f64, offset: u64, bytes: &[u8]) -> String {
    let mut text = String::with_capacity(80 * (bytes.len() / 16 + 2));
    let plural = if bytes.len() == 1 { "" } else { "s" };
    let _ = writeln!(
        text,
        "{mark} {secs:.6} {verb} {} byte{plural} at offset {offset}",
        bytes.len()
    );
    for (i, row) in bytes.chunks(16).enumerate() {
        let _ = write!(text, "{mark} {:08x} ", offset + 16 * i as u64);
        for j in 0..16 {
            if j == 8 {
                text.push(' ');
            }
            match row.get(j) {
                Some(b) => {
                    let _ = write!(text, " {b:02x}");
                }
                None => text.push_str("   "),
            }
        }
        text.push_str("  |");
        text.extend(row.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        text.push_str("|\n");
    }
    text
}

/// `--crlf`: each LF not already after a CR becomes CRLF. `after_cr`
/// carries the last byte's state from one read to the next, so a CRLF cut
/// between two reads stays one CRLF.
pub fn crlf(input: &[u8], out: &mut Vec<u8>, after_cr: &mut bool) {
    out.clear();
    out.reserve(input.len() + input.len() / 8);
    for &b in input {
        if b == b'\n' && !*after_cr {
            out.push(b'\r');
        }
        out.push(b);
        *after_cr = b == b'\r';
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hexdump_lines() {
        let text = render('>', "sent", 0.5, 16, b"hello, world!\n\x00\xffmore");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "> 0.500000 sent 20 bytes at offset 16");
        assert_eq!(
            lines[1],
            "> 00000010  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 21 0a 00 ff  |hello, world!...|"
        );
        assert_eq!(
            lines[2],
            "> 00000020  6d 6f 72 65                                       |more|"
        );
    }

    #[test]
    fn crlf_once_per_line_even_across_reads() {
        let (mut out, mut cr) = (Vec::new(), false);
        crlf(b"a\nb\r\nc\r", &mut out, &mut cr);
        assert_eq!(out, b"a\r\nb\r\nc\r");
        crlf(b"\nd\n", &mut out, &mut cr);
        assert_eq!(out, b"\nd\r\n");
    }
}
