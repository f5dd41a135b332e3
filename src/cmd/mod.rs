//! One module per subcommand: each turns its parsed arguments into engine
//! configuration, runs it, and reports with `-v`.

mod bench;
mod connect;
mod generate;
mod listen;
mod probe;
mod progress;
mod reproduce;
mod scan;
mod udp_recv;
mod udp_send;

use clap::error::ErrorKind;

use crate::cli::{Cli, Command, RelayArgs, SocketArgs};
use crate::engine::addr::{parse_host, parse_port, split_port_text, Family};
use crate::engine::relay::{Direction, RelayOpts};
use crate::engine::socket::SocketOpts;
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
        Command::Listen(args) => listen::run(&global, args),
        Command::Connect(args) => connect::run(&global, args),
        Command::UdpSend(args) => udp_send::run(&global, args),
        Command::UdpRecv(args) => udp_recv::run(&global, args),
        Command::Bench(args) => bench::run(&global, args),
        Command::Probe(args) if args.reproduce => reproduce::run(&global, args),
        Command::Probe(args) => probe::run(&global, args),
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
            let line = match line.split_once(" is not in ") {
                Some((head, range)) => format!("{head} is not in {}", range.replace("..=", " to ")),
                None => line,
            };
            crate::report::error(format!("{line} (see 'sonda --help')"), None);
            Exit::Usage
        }
    }
}

impl SocketArgs {
    pub fn to_opts(&self) -> SocketOpts {
        SocketOpts {
            nodelay: self.nodelay,
            sndbuf: self.sndbuf,
            rcvbuf: self.rcvbuf,
            keepalive: self.keepalive,
            ..SocketOpts::default()
        }
    }
}

impl RelayArgs {
    pub fn to_opts(&self) -> RelayOpts {
        RelayOpts {
            idle_timeout: self.idle_timeout.filter(|d| !d.is_zero()),
            half_close: !self.no_shutdown,
            direction: if self.send_only {
                Direction::SendOnly
            } else if self.recv_only {
                Direction::RecvOnly
            } else {
                Direction::Both
            },
            end_on_socket_eof: self.exit_on_eof || self.ends_at_peer_eof_for_terminal(),
            fast: !self.no_splice,
        }
    }

    /// An interactive user has nothing scripted left to send once the peer
    /// has closed, so a terminal session ends there (unless --stay-open); a
    /// pipe or a file may still be wanted by a peer that only half-closed.
    pub fn ends_at_peer_eof_for_terminal(&self) -> bool {
        !self.exit_on_eof && !self.stay_open && stdio::stdin_is_terminal()
    }
}

/// The line a terminal user sees (even without -v) when the peer's EOF ended
/// the session: without it the next typed line would silently go nowhere.
pub fn notice_peer_eof() {
    crate::report::warn(
        "the peer closed the connection; session ended (stdin is a terminal; --stay-open keeps sending)",
    );
}

/// `[HOST] PORT` as typed into its parts (listen, udp-recv, probe): a lone
/// number is the port; HOST may carry it instead (`HOST:PORT`,
/// `[V6]:PORT`). A bad value is a usage error naming it.
pub fn split_addr(addr: &[String]) -> Result<(Option<String>, u16), Error> {
    let (host, port) = match addr {
        [port] if port.bytes().all(|b| b.is_ascii_digit()) => (None, port.clone()),
        [one] => {
            let (host, port) = host_and_port(one, None)?;
            (Some(host), port)
        }
        [host, port] => {
            let (host, port) = host_and_port(host, Some(port))?;
            (Some(host), port)
        }
        _ => return Err(Error::usage("arguments", "expected [HOST] PORT")),
    };
    let port =
        parse_port(&port).map_err(|why| Error::usage(format!("invalid port '{port}'"), why))?;
    Ok((host, port))
}

/// `HOST PORT`, or one `HOST:PORT` (`[V6]:PORT`; a bare IPv6 literal such
/// as `::1` is a host): the checked host, and the port as typed (connect -z
/// takes a list there).
pub fn host_and_port(host: &str, port: Option<&str>) -> Result<(String, String), Error> {
    let bad = |why: String| Error::usage(format!("invalid host '{host}'"), why);
    let (h, embedded) = split_port_text(host).map_err(bad)?;
    let h = parse_host(h).map_err(bad)?;
    match (embedded, port) {
        (Some(p), None) | (None, Some(p)) => Ok((h, p.to_string())),
        (Some(_), Some(p)) => Err(bad(format!("the port is given twice (and again as '{p}')"))),
        (None, None) => Err(Error::usage(
            format!("'{host}'"),
            "a port is needed: HOST PORT or HOST:PORT",
        )),
    }
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
