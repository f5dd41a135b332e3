//! The parameters a bench client and server agree on, their wire types, and
//! the one check both sides run on them: the client before it sends a
//! request, the server before it accepts one (a peer may send anything that
//! parses). The ranges here are the ones `cli.rs` gives its flags, so a
//! request the client would refuse at parse time is refused by the server
//! with the same words.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Largest --size: a call, datagram or request of at most 64 MiB.
pub const MAX_SIZE: u64 = 64 << 20;
/// Largest --streams.
pub const MAX_STREAMS: u16 = 128;
/// The largest UDP payload (IPv6; IPv4's 65507 is checked when sending).
pub const MAX_DATAGRAM: usize = 65527;
pub const MAX_DATAGRAM_V4: usize = 65507;
/// Sequence number at the front of every UDP stream datagram.
pub const UDP_HEADER: usize = 8;
/// Socket options are C ints: --sndbuf, --rcvbuf, --rcvlowat.
pub const MAX_SOCKET_INT: u64 = i32::MAX as u64;
/// Longest --duration, --omit, --interval (as `parse::parse_duration`).
pub const MAX_DURATION_MS: u64 = 100 * 365 * 24 * 3600 * 1000;
/// Intervals per test: a report of this many stays far under the control
/// message limit.
pub const MAX_INTERVALS: u64 = 20_000;
/// The buffers one side's workers may hold at once (streams times calls).
pub const MAX_BUFFERS: u64 = 256 << 20;
/// The lowest and highest --rate, bits per second (as `parse::parse_rate`).
pub const MIN_RATE: u64 = 1;
pub const MAX_RATE: u64 = 10_000_000_000_000;

/// The transport measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    /// A Unix stream socket (`-U`): the control connection and the data
    /// connections are all Unix sockets.
    Unix,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Unix => "unix",
        }
    }
}

/// Bulk throughput or request/response latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Stream,
    Rr,
}

/// Which way data flows, from the client's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Client to server.
    Up,
    /// Server to client (`--reverse`).
    Down,
    /// Both at once (`--bidir`).
    Both,
}

/// Everything the client and the server agree on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Params {
    pub proto: Proto,
    pub mode: Mode,
    pub direction: Direction,
    pub size: usize,
    pub rate_bps: Option<u64>,
    pub streams: u16,
    pub duration_ms: u64,
    pub bytes: Option<u64>,
    pub omit_ms: u64,
    pub interval_ms: Option<u64>,
    pub gso: bool,
    pub sndbuf: Option<usize>,
    pub rcvbuf: Option<usize>,
    /// SO_RCVLOWAT for TCP stream receivers.
    #[serde(default)]
    pub rcvlowat: Option<usize>,
    /// CPUs for the client's and the server's workers.
    pub pin: Option<(usize, usize)>,
    /// UDP stream to this group: the client sends to it, the server joins
    /// it and receives.
    #[serde(default)]
    pub multicast: Option<std::net::IpAddr>,
    /// A further receiver of a `--multicast` test binds the group on
    /// these ports, a port per stream: the ones the first receiver chose,
    /// so one datagram reaches them all. Empty for the first receiver.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_ports: Vec<u16>,
}

/// Whose CPUs a `--pin` names on this machine: a local run pins both sides
/// here; on two hosts each side can only check its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Local,
    Client,
    Server,
}

fn bad(flag: &str, value: impl std::fmt::Display, why: impl Into<String>) -> Error {
    Error::usage(format!("invalid value '{value}' for '{flag}'"), why)
}

fn ms(v: u64) -> String {
    humantime::format_duration(Duration::from_millis(v)).to_string()
}

impl Params {
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.duration_ms)
    }
    pub fn omit(&self) -> Duration {
        Duration::from_millis(self.omit_ms)
    }
    /// The whole test: warm-up then measurement.
    pub fn total(&self) -> Duration {
        self.omit() + self.duration()
    }
    pub fn sends_up(&self) -> bool {
        self.mode == Mode::Stream && self.direction != Direction::Down
    }
    pub fn sends_down(&self) -> bool {
        self.mode == Mode::Stream && self.direction != Direction::Up
    }

    /// Checks every field against the flags' ranges and the combinations
    /// that make sense, and `--pin` against the CPUs of this machine. The
    /// error names the flag and its range (exit 2 on the client; the
    /// server sends its text back in a Reject).
    pub fn validate(&self, side: Side) -> Result<(), Error> {
        self.check_mode()?;
        self.check_size()?;
        self.check_times()?;
        self.check_buffers()?;
        self.check_pin(side)
    }

    /// The transport agrees with the control connection the request came
    /// on: a Unix test is asked for over a Unix socket, and a TCP or UDP
    /// one over TCP (a peer may send any proto that parses).
    pub fn check_transport(&self, over_unix: bool) -> Result<(), Error> {
        match (self.proto, over_unix) {
            (Proto::Unix, false) => Err(Error::usage(
                "proto 'unix'",
                "a Unix socket test is asked for over a Unix control socket (-U), not over TCP",
            )),
            (Proto::Tcp | Proto::Udp, true) => Err(Error::usage(
                format!("proto '{}'", self.proto.name()),
                "a server on a Unix socket measures Unix streams only",
            )),
            _ => Ok(()),
        }
    }

    /// The part of the checks that needs the address the data will use:
    /// an IPv4 UDP datagram holds at most 65507 bytes.
    pub fn check_family(&self, ip: std::net::IpAddr) -> Result<(), Error> {
        // A dual-stack server sees an IPv4 client as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        if let Some(g) = self.multicast {
            if g.is_ipv4() != ip.is_ipv4() {
                let why = if g.is_ipv6() && ip.is_loopback() {
                    "IPv6 multicast does not pass over loopback (lo has no multicast route): measure between two hosts, --server and --client".to_string()
                } else {
                    format!("is not of the family of the server's address {ip}")
                };
                return Err(Error::usage(format!("'--multicast {g}'"), why));
            }
        }
        if self.proto == Proto::Udp && ip.is_ipv4() && self.size > MAX_DATAGRAM_V4 {
            return Err(bad(
                "--size",
                self.size,
                format!("a UDP datagram over IPv4 holds at most {MAX_DATAGRAM_V4} bytes"),
            ));
        }
        Ok(())
    }

    fn check_mode(&self) -> Result<(), Error> {
        if self.mode == Mode::Rr && self.direction != Direction::Up {
            return Err(Error::usage(
                "--reverse/--bidir",
                "apply to --mode stream; rr always measures the client's round trips",
            ));
        }
        if !(1..=MAX_STREAMS).contains(&self.streams) {
            return Err(bad(
                "--streams",
                self.streams,
                format!("from 1 to {MAX_STREAMS}"),
            ));
        }
        match self.bytes {
            Some(_) if self.mode == Mode::Rr => {
                return Err(Error::usage("--bytes", "applies to --mode stream"))
            }
            Some(0) => return Err(bad("--bytes", 0, "--bytes must be at least 1")),
            _ => {}
        }
        if let Some(g) = self.multicast {
            if !g.is_multicast() {
                return Err(bad(
                    "--multicast",
                    g,
                    "a multicast group (IPv4 224.0.0.0/4, IPv6 ff00::/8)",
                ));
            }
            if !(self.proto == Proto::Udp
                && self.mode == Mode::Stream
                && self.direction == Direction::Up)
            {
                return Err(Error::usage(
                    "--multicast",
                    "applies to --proto udp --mode stream from the client (not --reverse or --bidir): the server is the group's receiver",
                ));
            }
        }
        if !self.group_ports.is_empty() {
            if self.multicast.is_none() {
                return Err(Error::usage(
                    "group ports",
                    "apply to a --multicast test only",
                ));
            }
            if self.group_ports.len() != self.streams as usize || self.group_ports.contains(&0) {
                return Err(Error::usage(
                    "group ports",
                    format!("a port from 1 to 65535 per stream ({})", self.streams),
                ));
            }
        }
        if let Some(r) = self.rate_bps {
            if !(self.proto == Proto::Udp && self.mode == Mode::Stream) {
                return Err(Error::usage(
                    "--rate",
                    "applies to --proto udp --mode stream",
                ));
            }
            if !(MIN_RATE..=MAX_RATE).contains(&r) {
                return Err(bad("--rate", r, "a rate from 1 bit/s to 10 Tbit/s"));
            }
        }
        Ok(())
    }

    fn check_size(&self) -> Result<(), Error> {
        let size = self.size;
        if size == 0 || size as u64 > MAX_SIZE {
            return Err(bad("--size", size, "a size from 1 byte to 64M"));
        }
        if self.proto == Proto::Udp {
            let (low, kind) = match self.mode {
                Mode::Stream => (UDP_HEADER, "stream"),
                Mode::Rr => (1, "rr"),
            };
            if !(low..=MAX_DATAGRAM).contains(&size) {
                return Err(bad(
                    "--size",
                    size,
                    format!("a UDP {kind} datagram holds {low} to {MAX_DATAGRAM} bytes"),
                ));
            }
        }
        Ok(())
    }

    fn check_times(&self) -> Result<(), Error> {
        let most = "at most 100 years";
        if self.duration_ms == 0 {
            return Err(bad("--duration", 0, "--duration must be longer than 0"));
        }
        if self.duration_ms > MAX_DURATION_MS {
            return Err(bad("--duration", ms(self.duration_ms), most));
        }
        if self.omit_ms > MAX_DURATION_MS {
            return Err(bad("--omit", ms(self.omit_ms), most));
        }
        if let Some(i) = self.interval_ms {
            if i == 0 || i > MAX_DURATION_MS {
                return Err(bad("--interval", ms(i), "from 1ms to 100 years"));
            }
            if self.bytes.is_none() && self.duration_ms.div_ceil(i) > MAX_INTERVALS {
                return Err(bad(
                    "--interval",
                    ms(i),
                    format!(
                        "at most {MAX_INTERVALS} intervals per test: at least {} for --duration {}",
                        ms(self.duration_ms.div_ceil(MAX_INTERVALS)),
                        ms(self.duration_ms)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_buffers(&self) -> Result<(), Error> {
        let range = "from 1 byte to 2G-1";
        for (flag, v) in [("--sndbuf", self.sndbuf), ("--rcvbuf", self.rcvbuf)] {
            if let Some(n) = v {
                if n == 0 || n as u64 > MAX_SOCKET_INT {
                    return Err(bad(flag, n, format!("buffer size must be {range} bytes")));
                }
            }
        }
        if let Some(n) = self.rcvlowat {
            if n == 0 || n as u64 > MAX_SOCKET_INT {
                return Err(bad("--rcvlowat", n, format!("{range} (0 turns it off)")));
            }
        }
        let held = self.buffers_per_side();
        if held > MAX_BUFFERS {
            return Err(bad(
                "--size",
                self.size,
                format!(
                    "with --streams {} a side would hold {} of buffers; at most {} (--streams x --size, x 2 both ways)",
                    self.streams,
                    crate::report::bytes(held),
                    crate::report::bytes(MAX_BUFFERS)
                ),
            ));
        }
        Ok(())
    }

    /// Worst case of what one side's workers allocate: a call-sized buffer
    /// per sender and per receiver (receivers read at least 64 KiB), both
    /// for an rr stream. UDP stream senders batch at most one datagram
    /// limit's worth, receivers hold 128 KiB.
    pub fn buffers_per_side(&self) -> u64 {
        let n = u64::from(self.streams);
        let size = self.size as u64;
        let ways = u64::from(self.sends_up()) + u64::from(self.sends_down());
        match (self.proto, self.mode) {
            (Proto::Tcp | Proto::Unix, Mode::Stream) => n * ways * size.max(64 << 10),
            (Proto::Udp, Mode::Stream) => n * ways * (MAX_DATAGRAM as u64 + (128 << 10)),
            (_, Mode::Rr) => n * 2 * size.max(64 << 10),
        }
    }

    fn check_pin(&self, side: Side) -> Result<(), Error> {
        let Some((client, server)) = self.pin else {
            return Ok(());
        };
        let mine: &[usize] = match side {
            Side::Local => &[client, server],
            Side::Client => &[client],
            Side::Server => &[server],
        };
        let here = super::cpus::available();
        for &cpu in mine {
            if !here.contains(&cpu) {
                let whose = match side {
                    Side::Local => "",
                    Side::Client => " on the client",
                    Side::Server => " on the server",
                };
                return Err(bad(
                    "--pin",
                    format!("{client},{server}"),
                    format!(
                        "CPU {cpu} is not available{whose}; CPUs available: {}",
                        super::cpus::list(&here)
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
impl Params {
    /// A valid 1 s, one-stream TCP test of 1 MiB calls, for unit tests to
    /// change one field of.
    pub(crate) fn example() -> Params {
        Params {
            proto: Proto::Tcp,
            mode: Mode::Stream,
            direction: Direction::Up,
            size: 1 << 20,
            rate_bps: None,
            streams: 1,
            duration_ms: 1000,
            bytes: None,
            omit_ms: 0,
            interval_ms: None,
            gso: true,
            sndbuf: None,
            rcvbuf: None,
            rcvlowat: None,
            pin: None,
            multicast: None,
            group_ports: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multicast_is_a_udp_stream_to_a_group_from_the_client() {
        let udp = Params {
            proto: Proto::Udp,
            size: 1472,
            multicast: Some("239.1.2.3".parse().unwrap()),
            ..Params::example()
        };
        assert!(udp.validate(Side::Local).is_ok());
        assert!(udp.check_family("10.0.0.1".parse().unwrap()).is_ok());
        assert!(udp.check_family("::1".parse().unwrap()).is_err());
        for bad in [
            Params {
                multicast: Some("10.1.1.1".parse().unwrap()),
                ..udp.clone()
            },
            Params {
                proto: Proto::Tcp,
                ..udp.clone()
            },
            Params {
                direction: Direction::Down,
                ..udp.clone()
            },
            Params {
                direction: Direction::Both,
                ..udp.clone()
            },
            Params {
                mode: Mode::Rr,
                size: 1,
                ..udp.clone()
            },
        ] {
            assert!(bad.validate(Side::Server).is_err(), "{bad:?}");
        }
    }

    fn base() -> Params {
        Params::example()
    }

    fn refused(p: Params, flag: &str) {
        let e = p.validate(Side::Local).unwrap_err();
        assert!(e.to_string().contains(flag), "{e} does not name {flag}");
    }

    #[test]
    fn defaults_pass() {
        base().validate(Side::Local).unwrap();
    }

    #[test]
    fn out_of_range_fields_are_refused() {
        refused(Params { size: 0, ..base() }, "--size");
        refused(
            Params {
                size: 1 << 40,
                ..base()
            },
            "--size",
        );
        refused(
            Params {
                proto: Proto::Udp,
                size: 4,
                ..base()
            },
            "--size",
        );
        refused(
            Params {
                streams: 0,
                ..base()
            },
            "--streams",
        );
        refused(
            Params {
                streams: 999,
                ..base()
            },
            "--streams",
        );
        refused(
            Params {
                duration_ms: 0,
                ..base()
            },
            "--duration",
        );
        refused(
            Params {
                duration_ms: u64::MAX,
                ..base()
            },
            "--duration",
        );
        refused(
            Params {
                omit_ms: u64::MAX,
                ..base()
            },
            "--omit",
        );
        refused(
            Params {
                interval_ms: Some(0),
                ..base()
            },
            "--interval",
        );
        refused(
            Params {
                duration_ms: 3_600_000,
                interval_ms: Some(1),
                ..base()
            },
            "--interval",
        );
        refused(
            Params {
                sndbuf: Some(0),
                ..base()
            },
            "--sndbuf",
        );
        refused(
            Params {
                rcvbuf: Some(usize::MAX),
                ..base()
            },
            "--rcvbuf",
        );
        refused(
            Params {
                rcvlowat: Some(1 << 40),
                ..base()
            },
            "--rcvlowat",
        );
        refused(
            Params {
                pin: Some((99_999, 99_999)),
                ..base()
            },
            "--pin",
        );
        refused(
            Params {
                streams: 128,
                size: 64 << 20,
                ..base()
            },
            "--size",
        );
        refused(
            Params {
                proto: Proto::Udp,
                size: 1472,
                rate_bps: Some(0),
                ..base()
            },
            "--rate",
        );
    }

    #[test]
    fn each_side_checks_only_its_own_cpu() {
        let p = Params {
            pin: Some((0, 99_999)),
            ..base()
        };
        p.validate(Side::Client).unwrap();
        assert!(p.validate(Side::Server).is_err());
        assert!(p.validate(Side::Local).is_err());
    }

    #[test]
    fn the_transport_must_be_the_control_connections() {
        let unix = Params {
            proto: Proto::Unix,
            ..base()
        };
        unix.validate(Side::Server).unwrap();
        unix.check_transport(true).unwrap();
        assert!(unix.check_transport(false).is_err());
        base().check_transport(false).unwrap();
        assert!(base().check_transport(true).is_err());
        assert_eq!(serde_json::to_value(unix).unwrap()["proto"], "unix");
    }

    #[test]
    fn wire_names_are_stable() {
        let v = serde_json::to_value(base()).unwrap();
        assert_eq!(v["proto"], "tcp");
        assert_eq!(v["mode"], "stream");
        assert_eq!(v["direction"], "up");
        let rr = serde_json::to_value(Params {
            proto: Proto::Udp,
            mode: Mode::Rr,
            ..base()
        })
        .unwrap();
        assert_eq!(rr["proto"], "udp");
        assert_eq!(rr["mode"], "rr");
    }
}
