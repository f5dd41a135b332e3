//! The probe report as text: the trial binds, the socket table, the notes
//! and the verdict; and the short phrases (who holds a socket, what a
//! connection is) that the analysis puts into its sentences.

use std::fmt::Write as _;

use crate::engine::diag::trial::BindAttempt;
use crate::engine::socket::{OnDevice, Proto, Shown};

use super::model::{proto_name, Finding, Row, Table, Verdict};

/// "pid 812 (python3)", or why no owner is shown.
pub fn owner_text(s: &Row) -> String {
    if s.inode == 0 {
        return "(kernel: no process holds it)".to_string();
    }
    if s.owners.is_empty() {
        return "not visible (another user's process; run as root to see it)".to_string();
    }
    s.owners
        .iter()
        .map(|o| format!("pid {} ({})", o.pid, o.command))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Who holds a socket, as the subject of a sentence.
pub fn who(s: &Row) -> String {
    match s.owners.first() {
        Some(o) if s.owners.len() == 1 => format!("pid {} ({})", o.pid, o.command),
        Some(_) => owner_text(s),
        None if s.inode == 0 => "the kernel".to_string(),
        None => format!("a process of uid {} (not visible; run as root)", s.uid),
    }
}

/// "pid 42 (sonda): 127.0.0.1:8096 -> 127.0.0.1:9000, ESTABLISHED", and how
/// many more there are.
pub fn connection_text(c: &Row, count: usize) -> String {
    let more = if count > 1 {
        format!("; and {} more", count - 1)
    } else {
        String::new()
    };
    format!("{}: {} -> {}, {}{more}", who(c), c.local, c.remote, c.state)
}

/// The table as text, a header and a line per socket, columns sized to fit.
/// Written straight into one String: a busy port has thousands of rows.
pub fn render_table(table: &Table, port: u16, proto: Proto) -> String {
    let p = proto_name(proto);
    let source = table.source.name();
    if table.sockets.is_empty() {
        return format!("sockets on port {port}/{p} (from {source}): none\n");
    }
    let cells = |s: &Row, col: usize, out: &mut String| {
        let _ = match col {
            0 => write!(out, "{}", s.state),
            1 => {
                let _ = match &s.device {
                    Some(dev) => write!(out, "{}", OnDevice(&s.local, dev)),
                    None => write!(out, "{}", Shown(&s.local)),
                };
                if s.v6only == Some(false) && s.local.ip().is_unspecified() {
                    out.push_str(" (v4+v6)");
                }
                Ok(())
            }
            2 if s.remote.port() == 0 && s.remote.ip().is_unspecified() => write!(out, "*"),
            2 => write!(out, "{}", Shown(&s.remote)),
            _ => match s.expires_ms {
                Some(ms) => write!(out, "{:.1}s", ms as f64 / 1000.0),
                None => write!(out, "-"),
            },
        };
    };
    let header = ["STATE", "LOCAL", "REMOTE", "TIMER"];
    let mut width = header.map(str::len);
    let mut scratch = String::new();
    for s in &table.sockets {
        for (col, w) in width.iter_mut().enumerate() {
            scratch.clear();
            cells(s, col, &mut scratch);
            *w = (*w).max(scratch.len());
        }
    }
    let mut out =
        String::with_capacity((table.sockets.len() + 2) * (width.iter().sum::<usize>() + 40));
    let _ = writeln!(out, "sockets on port {port}/{p} (from {source}):");
    out.push_str("  ");
    for (h, w) in header.iter().zip(width) {
        let _ = write!(out, "{h:<w$}  ");
    }
    out.push_str("OWNER\n");
    for s in &table.sockets {
        out.push_str("  ");
        for (col, w) in width.iter().enumerate() {
            let start = out.len();
            cells(s, col, &mut out);
            let pad = w.saturating_sub(out.len() - start) + 2;
            out.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(&owner_text(s));
        out.push('\n');
    }
    out
}

/// The whole text report: trial binds, table, notes, verdict.
pub fn report_text(
    binds: &[BindAttempt],
    table: &Table,
    port: u16,
    proto: Proto,
    findings: &[Finding],
    verdict: &Verdict,
) -> String {
    let mut out = String::new();
    out.push_str("bind attempts (throw-away sockets");
    out.push_str(if proto == Proto::Tcp {
        ", bind + listen):\n"
    } else {
        "):\n"
    });
    for b in binds {
        let result = match (&b.errno, &b.error) {
            (Some(n), Some(e)) => format!("{n} ({e})"),
            _ => "ok".to_string(),
        };
        let address = if b.dual_stack {
            format!("{} (v4+v6)", b.address)
        } else {
            b.address.clone()
        };
        let _ = writeln!(out, "  {address:<28} {:<13} {result}", b.options.label());
    }
    out.push_str(&render_table(table, port, proto));
    if !findings.is_empty() {
        out.push_str("notes:\n");
        for f in findings {
            let _ = writeln!(out, "  - {}", f.text);
        }
    }
    let _ = writeln!(out, "verdict: {}", verdict.text);
    out
}
