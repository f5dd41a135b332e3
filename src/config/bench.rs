//! `sonda bench`: which side runs here, where it meets the other, and the
//! test's parameters, checked as the server will check them.

use std::time::Duration;

use crate::bench::{Direction, Mode, Params, Proto, Side};
use crate::cli::{BenchArgs, BenchMode, BenchProto};
use crate::engine::addr::{parse_port, split_host_port, Family};
use crate::engine::socket::SocketOpts;
use crate::engine::transport::unix::BindOpts;
use crate::error::Error;

use super::{unix_only, Target};

/// The default control port (iperf3 uses 5201; this one does not collide).
pub const DEFAULT_PORT: u16 = 5205;

/// What this process does.
#[derive(Clone, Debug)]
pub enum Plan {
    /// Serve tests at the target until interrupted; `once`: one test. The
    /// client chooses every parameter, so a server has none of its own.
    Server { once: bool },
    /// One test against the server at the target.
    Client(Params),
    /// Server and client in this process, meeting at the target.
    Local(Params),
}

#[derive(Clone, Debug)]
pub struct Bench {
    pub plan: Plan,
    /// Where the control connection goes: for a local run over TCP, the
    /// loopback address of the family and port 0; with -U, the Unix socket
    /// (the data connections then go to one the server names).
    pub target: Target,
    pub family: Family,
    /// What binding a Unix socket path may do about a stale file there.
    pub unix_bind: BindOpts,
    /// The bound on every control step.
    pub control_timeout: Duration,
    pub json: bool,
    /// --mark, --bind-device, --tos, --ttl on this side's sockets.
    pub sock: SocketOpts,
    /// A --client --multicast test's further receivers (--receiver), host
    /// and control port, beside the --client server.
    pub receivers: Vec<(String, u16)>,
}

impl From<BenchProto> for Proto {
    fn from(p: BenchProto) -> Proto {
        match p {
            BenchProto::Tcp => Proto::Tcp,
            BenchProto::Udp => Proto::Udp,
        }
    }
}

impl From<BenchMode> for Mode {
    fn from(m: BenchMode) -> Mode {
        match m {
            BenchMode::Stream => Mode::Stream,
            BenchMode::Rr => Mode::Rr,
        }
    }
}

impl TryFrom<(&BenchArgs, Family)> for Bench {
    type Error = Error;

    fn try_from((args, family): (&BenchArgs, Family)) -> Result<Bench, Error> {
        let unix = match &args.unix {
            Some(addr) => Some(unix_only(addr, family, None, Some(&args.ip))?),
            None => None,
        };
        // `--server -U PATH` and `--client -U PATH`: -U takes the place of
        // the address, so the two together are a contradiction.
        let twice = |flag: &str, addr: &[String]| {
            Error::usage(
                format!("{flag} {} with -U/--unix", addr.join(" ")),
                format!("give an address or -U PATH ({flag} -U PATH), not both"),
            )
        };
        let (plan, target) = match (&args.server, &args.client) {
            (Some(addr), _) => match unix {
                Some(_) if !addr.is_empty() => return Err(twice("--server", addr)),
                Some(target) => (Plan::Server { once: args.once }, target),
                None => {
                    let (host, port) = host_port(addr, false)?;
                    (
                        Plan::Server { once: args.once },
                        Target::Inet { host, port },
                    )
                }
            },
            (None, Some(addr)) => {
                let params = to_params(args, unix.is_some())?;
                params.validate(Side::Client)?;
                match unix {
                    Some(_) if !addr.is_empty() => return Err(twice("--client", addr)),
                    Some(target) => (Plan::Client(params), target),
                    None if addr.is_empty() => {
                        return Err(Error::usage(
                            "--client",
                            "expected HOST [PORT], or -U PATH for a server on a Unix socket",
                        ))
                    }
                    None => {
                        let (host, port) = host_port(addr, true)?;
                        (
                            Plan::Client(params),
                            Target::Inet {
                                host: Some(host.unwrap_or_default()),
                                port,
                            },
                        )
                    }
                }
            }
            (None, None) => {
                let params = to_params(args, unix.is_some())?;
                params.validate(Side::Local)?;
                let loopback = match family {
                    Family::V6 => "::1",
                    _ => "127.0.0.1",
                };
                let target = unix.unwrap_or_else(|| Target::Inet {
                    host: Some(loopback.to_string()),
                    port: 0,
                });
                (Plan::Local(params), target)
            }
        };
        let receivers = receivers(&args.receiver, &plan, &target)?;
        Ok(Bench {
            receivers,
            plan,
            target,
            family,
            unix_bind: BindOpts {
                unlink_stale: args.unlink_stale,
            },
            control_timeout: args.control_timeout,
            json: args.json,
            sock: args.ip.to_opts(),
        })
    }
}

/// `--receiver HOST[:PORT]`s: servers beside the --client one, each
/// reached at its PORT or the --client server's.
fn receivers(given: &[String], plan: &Plan, target: &Target) -> Result<Vec<(String, u16)>, Error> {
    if given.is_empty() {
        return Ok(Vec::new());
    }
    let port = match (plan, target) {
        (Plan::Client(_), Target::Inet { port, .. }) => *port,
        _ => {
            return Err(Error::usage(
                "--receiver",
                "applies to --client HOST with --multicast: each further receiver is a bench server of its own",
            ))
        }
    };
    given
        .iter()
        .map(|r| {
            let (host, p) = split_host_port(r).map_err(|why| {
                Error::usage(format!("invalid value '{r}' for '--receiver'"), why)
            })?;
            Ok((host, p.unwrap_or(port)))
        })
        .collect()
}

/// The test's parameters from the flags, defaults filled in per transport
/// and mode; `unix`: over a Unix stream socket (-U), whatever --proto says
/// (clap refuses the two together).
fn to_params(a: &BenchArgs, unix: bool) -> Result<Params, Error> {
    let proto = if unix {
        Proto::Unix
    } else {
        Proto::from(a.proto)
    };
    let mode = Mode::from(a.mode);
    let size = a.size.unwrap_or(match (proto, mode) {
        (_, Mode::Rr) => 1,
        (Proto::Tcp | Proto::Unix, Mode::Stream) => 1 << 20,
        (Proto::Udp, Mode::Stream) => 1472,
    });
    Ok(Params {
        proto,
        mode,
        direction: if a.bidir {
            Direction::Both
        } else if a.reverse {
            Direction::Down
        } else {
            Direction::Up
        },
        size,
        rate_bps: a.rate,
        streams: a.streams,
        duration_ms: a.duration.as_millis().min(u64::MAX as u128) as u64,
        bytes: a.bytes,
        omit_ms: a.omit.as_millis().min(u64::MAX as u128) as u64,
        interval_ms: a
            .interval
            .filter(|d| !d.is_zero())
            .map(|d| d.as_millis().max(1) as u64),
        gso: !a.no_gso,
        sndbuf: a.sndbuf,
        rcvbuf: a.rcvbuf,
        rcvlowat: match (proto, mode, a.rcvlowat) {
            (Proto::Tcp, Mode::Stream, None) => Some(size),
            (_, _, Some(0)) | (_, _, None) => None,
            (_, _, Some(n)) => Some(n.min(i32::MAX as u64) as usize),
        },
        pin: a.pin,
        multicast: a.multicast,
        group_ports: Vec::new(),
    })
}

/// `[HOST] [PORT]` as --client and --server take it: HOST may carry its
/// port (`HOST:PORT`, `[V6]:PORT`; a bare `::1` is a host), and a lone
/// number is a port where a host is optional.
fn host_port(v: &[String], need_host: bool) -> Result<(Option<String>, u16), Error> {
    let host = |h: &String| {
        split_host_port(h).map_err(|why| Error::usage(format!("invalid address '{h}'"), why))
    };
    let port =
        |p: &String| parse_port(p).map_err(|why| Error::usage(format!("invalid port '{p}'"), why));
    match v {
        [] => Ok((None, DEFAULT_PORT)),
        [one] if !need_host && one.bytes().all(|b| b.is_ascii_digit()) => Ok((None, port(one)?)),
        [one] => {
            let (h, p) = host(one)?;
            Ok((Some(h), p.unwrap_or(DEFAULT_PORT)))
        }
        [h, p] => match host(h)? {
            (_, Some(_)) => Err(Error::usage(
                format!("invalid address '{h}'"),
                format!("the port is given twice (and again as '{p}')"),
            )),
            (h, None) => Ok((Some(h), port(p)?)),
        },
        _ => Err(Error::usage("bench", "expected HOST [PORT]")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn bench(args: &[&str]) -> Result<Bench, Error> {
        let mut argv = vec!["sonda", "bench"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).map(|c| c.command) {
            Ok(Command::Bench(a)) => Bench::try_from((&a, Family::Any)),
            other => panic!("not a bench command line: {other:?}"),
        }
    }

    fn unix(path: &str) -> Target {
        Target::Unix(crate::engine::transport::UnixAddr::parse(std::ffi::OsStr::new(path)).unwrap())
    }

    #[test]
    fn unix_socket_plans() {
        let b = bench(&["-U", "/tmp/b.sock"]).unwrap();
        assert!(matches!(&b.plan, Plan::Local(p) if p.proto == Proto::Unix));
        assert_eq!(b.target, unix("/tmp/b.sock"));
        let b = bench(&["--server", "-U", "@bench", "--once"]).unwrap();
        assert!(matches!(b.plan, Plan::Server { once: true }));
        assert_eq!(b.target, unix("@bench"));
        let b = bench(&["--client", "-U", "/tmp/b.sock", "--mode", "rr"]).unwrap();
        assert!(matches!(&b.plan, Plan::Client(p) if p.proto == Proto::Unix && p.mode == Mode::Rr));
        let b = bench(&["-U", "/tmp/b.sock", "--unlink-stale"]).unwrap();
        assert!(b.unix_bind.unlink_stale);
    }

    #[test]
    fn unix_stream_defaults_are_tcps() {
        let Plan::Local(p) = bench(&["-U", "/tmp/b.sock"]).unwrap().plan else {
            panic!("not local");
        };
        assert_eq!(p.size, 1 << 20);
    }

    #[test]
    fn inet_plans_are_unchanged() {
        let b = bench(&["--client", "10.0.0.2", "6000"]).unwrap();
        assert_eq!(
            b.target,
            Target::Inet {
                host: Some("10.0.0.2".into()),
                port: 6000
            }
        );
        let b = bench(&["--server"]).unwrap();
        assert_eq!(
            b.target,
            Target::Inet {
                host: None,
                port: DEFAULT_PORT
            }
        );
        let b = bench(&[]).unwrap();
        assert!(matches!(&b.plan, Plan::Local(p) if p.proto == Proto::Tcp));
    }

    #[test]
    fn an_address_and_a_unix_socket_together_are_usage_errors() {
        for args in [
            &["--server", "127.0.0.1", "-U", "/tmp/b.sock"][..],
            &["--client", "127.0.0.1", "-U", "/tmp/b.sock"],
            &["--client"],
        ] {
            let e = bench(args).unwrap_err();
            assert_eq!(e.exit, crate::error::Exit::Usage, "{args:?}: {e}");
        }
        // A path too long for sun_path is refused by clap itself (tests/bench.rs).
    }
}
