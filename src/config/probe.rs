//! `sonda probe`: which port or socket path to explain, or the TIME-WAIT
//! demonstration.

use crate::cli::ProbeArgs;
use crate::engine::addr::{parse_port, Family};
use crate::engine::socket::{Proto, SocketOpts};
use crate::engine::transport::UnixAddr;
use crate::error::Error;

use super::{split_addr, unix_only};

#[derive(Clone, Debug)]
pub enum Probe {
    /// Why `port` (on `host`, or what `listen PORT` binds) will not bind.
    Port {
        host: Option<String>,
        port: u16,
        family: Family,
        proto: Proto,
        /// --bind-device, --mark, --tos, --ttl for the trial binds.
        ip: SocketOpts,
        json: bool,
    },
    /// What holds a Unix socket path or abstract name.
    Unix { addr: UnixAddr, json: bool },
    /// `--reproduce [PORT]` (0: a free one).
    Reproduce { port: u16 },
}

impl TryFrom<(&ProbeArgs, Family)> for Probe {
    type Error = Error;

    fn try_from((args, family): (&ProbeArgs, Family)) -> Result<Probe, Error> {
        if args.reproduce {
            let port = match args.addr.as_slice() {
                [] => 0,
                [p] => {
                    parse_port(p).map_err(|why| Error::usage(format!("invalid port '{p}'"), why))?
                }
                _ => return Err(Error::usage("probe --reproduce", "takes at most one PORT")),
            };
            if let Some(flag) = args.ip.first_set() {
                return Err(Error::usage(
                    format!("'{flag}'"),
                    "does not apply to --reproduce (its loopback demonstration sets its own options)",
                ));
            }
            return Ok(Probe::Reproduce { port });
        }
        if let Some(addr) = &args.unix {
            unix_only(addr, family, None, Some(&args.ip))?;
            return Ok(Probe::Unix {
                addr: addr.clone(),
                json: args.json,
            });
        }
        if args.addr.is_empty() {
            return Err(Error::usage(
                "probe",
                "missing PORT (sonda probe [HOST] PORT)",
            ));
        }
        let (host, port) = split_addr(&args.addr)?;
        if port == 0 {
            return Err(Error::usage(
                "invalid port '0'",
                "probe a real port (1-65535)",
            ));
        }
        Ok(Probe::Port {
            host,
            port,
            family,
            proto: if args.udp { Proto::Udp } else { Proto::Tcp },
            ip: args.ip.to_opts(),
            json: args.json,
        })
    }
}
