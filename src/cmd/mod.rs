//! One module per subcommand: each turns its parsed arguments into engine
//! configuration, runs it, and reports with `-v`.

mod bench;
mod connect;
mod forward;
mod generate;
mod listen;
mod probe;
mod progress;
mod reproduce;
mod scan;
mod tls_report;
mod udp_recv;
mod udp_send;

use clap::error::ErrorKind;

use crate::cli::{Cli, Command};
use crate::config::connect::Plan;
use crate::config::listen::Listen;
use crate::config::probe::Probe;
use crate::config::udp::{UdpRecv, UdpSend};
pub use crate::config::{host_and_port, split_addr};
use crate::engine::addr::Family;
use crate::engine::stdio;
use crate::error::{Error, Exit};

/// Options every subcommand sees.
#[derive(Clone, Copy, Debug)]
pub struct Global {
    pub family: Family,
}

pub fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let global = Global {
        family: match (cli.ipv4, cli.ipv6) {
            (true, _) => Family::V4,
            (_, true) => Family::V6,
            _ => Family::Any,
        },
    };
    match cli.command {
        Command::Listen(args) => listen::run(Listen::try_from((&*args, global.family))?),
        Command::Connect(args) => connect::run(Plan::try_from((&*args, global.family))?),
        Command::UdpSend(args) => udp_send::run(&UdpSend::try_from((&args, global.family))?),
        Command::UdpRecv(args) => udp_recv::run(&UdpRecv::try_from((&args, global.family))?),
        Command::Bench(args) => bench::run(&global, args),
        Command::Probe(args) => probe::run(&Probe::try_from((&args, global.family))?),
        Command::Generate(args) => generate::run(args),
    }
}

/// Renders a clap error: help and version go to stdout with 0; a usage error
/// becomes one `sonda: ...` line on stderr and exit 2.
pub fn usage_error(err: clap::Error) -> Exit {
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                Exit::Usage
            } else {
                Exit::Success
            }
        }
        _ => {
            let text = err.render().to_string();
            let mut lines = text.lines();
            let first = lines.next().unwrap_or("invalid usage");
            let mut line = first.strip_prefix("error: ").unwrap_or(first).to_string();
            // "the following required arguments were not provided:" lists
            // them on the next lines; keep the message on one line.
            if line.ends_with(':') {
                let more: Vec<&str> = lines
                    .take_while(|l| !l.trim().is_empty())
                    .map(str::trim)
                    .collect();
                line = format!("{} {}", line, more.join(", "));
            }
            // clap states ranges in Rust's syntax ("0 is not in 1..=65536");
            // only that part is reworded, never the value the user typed.
            let mut line = match line.split_once(" is not in ") {
                Some((head, range)) => format!("{head} is not in {}", range.replace("..=", " to ")),
                None => line,
            };
            // clap lists the accepted values on a later line; keep them.
            // A flag without its value carries an empty list: nothing to add.
            if let Some(clap::error::ContextValue::Strings(valid)) = err
                .get(clap::error::ContextKind::ValidValue)
                .filter(|v| !matches!(v, clap::error::ContextValue::Strings(l) if l.is_empty()))
            {
                line = format!("{line}: one of {}", valid.join(", "));
            }
            crate::report::error(format!("{line}{}", usage_tail()), None);
            Exit::Usage
        }
    }
}

/// What ends every usage error's line: where help is, and why a word
/// went astray when `--hexdump FILE` was written as ncat's --hex-dump
/// takes it (the FILE then reads as HOST, and the error alone does not
/// say why).
pub fn usage_tail() -> &'static str {
    let args: Vec<String> = std::env::args().collect();
    // A word that reads as a file, not as the HOST it was taken for.
    let file_like = |w: &str| {
        w.contains('/')
            || [".hex", ".txt", ".log", ".dump", ".out"]
                .iter()
                .any(|ext| w.ends_with(ext))
    };
    if args
        .windows(2)
        .any(|w| w[0] == "--hexdump" && file_like(&w[1]))
    {
        " (--hexdump takes its FILE as --hexdump=FILE; see 'sonda --help')"
    } else {
        " (see 'sonda --help')"
    }
}

/// The line a terminal user sees (even without -v) when the peer's EOF ended
/// the session: without it the next typed line would silently go nowhere.
pub fn notice_peer_eof() {
    crate::report::warn(
        "the peer closed the connection; session ended (stdin is a terminal; --stay-open keeps sending)",
    );
}

/// Command output to stdout in one write; a closed stdout is not an error
/// worth reporting (the caller exits 0 as DESIGN.md asks).
pub fn print_stdout(text: &str) -> Result<(), Error> {
    match stdio::write_stdout(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io("write to stdout", &e))
        }
        _ => Ok(()),
    }
}
