//! `sonda bench`: which side runs here, where it meets the other, and the
//! test's parameters, checked as the server will check them.

use std::time::Duration;

use crate::bench::{Direction, Mode, Params, Proto, Side};
use crate::cli::{BenchArgs, BenchMode, BenchProto};
use crate::engine::addr::{parse_port, split_host_port, Family};
use crate::error::Error;

use super::Target;

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
    /// loopback address of the family and port 0.
    pub target: Target,
    pub family: Family,
    /// The bound on every control step.
    pub control_timeout: Duration,
    pub json: bool,
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
        let (plan, target) = match (&args.server, &args.client) {
            (Some(addr), _) => {
                let (host, port) = host_port(addr, false)?;
                (
                    Plan::Server { once: args.once },
                    Target::Inet { host, port },
                )
            }
            (None, Some(addr)) => {
                let params = to_params(args)?;
                params.validate(Side::Client)?;
                let (host, port) = host_port(addr, true)?;
                (
                    Plan::Client(params),
                    Target::Inet {
                        host: Some(host.unwrap_or_default()),
                        port,
                    },
                )
            }
            (None, None) => {
                let params = to_params(args)?;
                params.validate(Side::Local)?;
                let loopback = match family {
                    Family::V6 => "::1",
                    _ => "127.0.0.1",
                };
                (
                    Plan::Local(params),
                    Target::Inet {
                        host: Some(loopback.to_string()),
                        port: 0,
                    },
                )
            }
        };
        Ok(Bench {
            plan,
            target,
            family,
            control_timeout: args.control_timeout,
            json: args.json,
        })
    }
}

/// The test's parameters from the flags, defaults filled in per transport
/// and mode.
fn to_params(a: &BenchArgs) -> Result<Params, Error> {
    let (proto, mode) = (Proto::from(a.proto), Mode::from(a.mode));
    let size = a.size.unwrap_or(match (proto, mode) {
        (_, Mode::Rr) => 1,
        (Proto::Tcp, Mode::Stream) => 1 << 20,
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
