//! `sonda probe [HOST] PORT`: why a port will not bind, with proof; and
//! `sonda probe -U PATH`, the same for a Unix socket path ([`unix`]).
//!
//! This file orchestrates: it reads the socket table and the sysctls, makes
//! the trial binds, hands them to [`analysis`] (pure) and prints what
//! [`render`] makes of the result. [`model`] holds the data in between.

mod analysis;
mod model;
mod render;
mod unix;

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::config::probe::Probe;
use crate::engine::addr::{resolve, Family};
use crate::engine::diag::trial::{trial, BindOpts, BindTarget, Target};
use crate::engine::diag::{self, find_owners, Owner, SockEntry, State};
use crate::engine::socket::{display_addr, inet_socket, Proto, SocketOpts};
use crate::error::{Error, Exit};

use self::analysis::Sysctls;
use self::model::{proto_name, BindJson, Report, Row, Table};

pub use self::render::render_table;

pub fn run(cfg: &Probe) -> anyhow::Result<Exit> {
    let (host, port, family, proto, ip, json) = match cfg {
        Probe::Unix { addr, json } => return unix::run(addr, *json),
        Probe::Reproduce { port } => return super::reproduce::run(*port),
        Probe::Port {
            host,
            port,
            family,
            proto,
            ip,
            json,
        } => (host, *port, *family, *proto, ip, *json),
    };
    let targets = targets(host.as_deref(), port, family)?;
    let device = check_options(&targets[0], proto, ip)?;
    let mut binds = Vec::new();
    for t in &targets {
        for opts in [BindOpts::Plain, BindOpts::ReuseAddr, BindOpts::ReusePort] {
            binds.push(trial(&BindTarget::Inet(*t, proto, ip.clone()), opts));
        }
    }
    // Only the sockets a bind to `device` can meet explain its answer; the
    // others are shown after them.
    let mut table = gather(proto, port)?;
    let mut elsewhere = analysis::other_devices(&mut table, device);
    if analysis::unexplained(&table, proto, &binds) {
        add_bound_inactive(&mut table, port);
        elsewhere.extend(analysis::other_devices(&mut table, device));
    }
    let sysctls = read_sysctls();
    let mut findings = analysis::findings(&table, port, proto, &binds, &sysctls);
    findings.extend(analysis::device_findings(&table, &elsewhere, ip));
    let verdict = analysis::verdict(&table, port, proto, &binds);
    table.sockets.extend(elsewhere);

    if json {
        let report = Report {
            proto: proto_name(proto),
            port,
            source: table.source.name(),
            binds: binds.iter().map(BindJson::from).collect(),
            sockets: &table.sockets,
            findings: &findings,
            verdict: &verdict,
        };
        let text = serde_json::to_string_pretty(&report)?;
        super::print_stdout(&format!("{text}\n"))?;
    } else {
        super::print_stdout(&render::report_text(
            &binds, &table, port, proto, &findings, &verdict,
        ))?;
    }
    Ok(verdict.exit())
}

/// Sets the IP options on a throw-away socket first, so that a bad one
/// (an interface that does not exist, --mark without CAP_NET_ADMIN) is the
/// error it is for `listen`, not a failed bind; returns the index of the
/// --bind-device interface.
fn check_options(target: &Target, proto: Proto, ip: &SocketOpts) -> Result<Option<u32>, Error> {
    let what = || format!("probe {}", display_addr(&target.addr));
    let sock = inet_socket(&target.addr, proto, false).map_err(|e| Error::io(what(), &e))?;
    crate::engine::socket::apply(&sock, ip).map_err(|e| Error::io(what(), &e))?;
    ip.bind_device
        .as_deref()
        .map(|dev| {
            nix::net::if_::if_nametoindex(dev)
                .map_err(|e| Error::io(format!("interface {dev}"), &io::Error::from(e)))
        })
        .transpose()
}

/// Reads the socket table for `port` and finds the owners.
pub fn gather(proto: Proto, port: u16) -> Result<Table, Error> {
    let (entries, source) = diag::sockets_on_port(proto, port)
        .map_err(|e| Error::io(format!("read the socket table for port {port}"), &e))?;
    let mut table = Table {
        source,
        sockets: Vec::new(),
    };
    add_sockets(&mut table, entries, proto);
    Ok(table)
}

/// Adds the bound-inactive TCP sockets on `port` to the table.
fn add_bound_inactive(table: &mut Table, port: u16) {
    add_sockets(table, diag::bound_inactive_on_port(port), Proto::Tcp);
}

fn add_sockets(table: &mut Table, entries: Vec<SockEntry>, proto: Proto) {
    let inodes: HashSet<u64> = entries
        .iter()
        .map(|e| e.inode)
        .filter(|&i| i != 0)
        .collect();
    let owners = find_owners(&inodes);
    table.sockets.extend(entries.into_iter().map(|e| {
        let found: Vec<Owner> = owners.by_inode.get(&e.inode).cloned().unwrap_or_default();
        Row::new(e, proto, found)
    }));
    // Listeners first, then by state and address: the usual culprits on top.
    table.sockets.sort_unstable_by_key(|s| {
        (
            s.entry.state != State::LISTEN,
            s.entry.state.0,
            s.local,
            s.remote,
        )
    });
}

/// What `sonda listen PORT` (or HOST PORT) binds, first, then the IPv4
/// wildcard beside a dual-stack one.
fn targets(host: Option<&str>, port: u16, family: Family) -> Result<Vec<Target>, Error> {
    let v4 = Target {
        addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        v6only: None,
    };
    let v6 = |only| Target {
        addr: SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
        v6only: Some(only),
    };
    Ok(match (host, family) {
        (None, Family::V4) => vec![v4],
        (None, Family::V6) => vec![v6(true)],
        (None, Family::Any) => {
            // Where IPv6 is off, `listen PORT` binds 0.0.0.0 alone.
            let any6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0));
            if crate::engine::socket::udp_bound(any6).is_ok() {
                vec![v6(false), v4]
            } else {
                vec![v4]
            }
        }
        (Some(h), _) => {
            let addr = resolve(h, port, family)?[0];
            vec![Target {
                addr,
                v6only: (family == Family::V6).then_some(true),
            }]
        }
    })
}

fn read_sysctl(name: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The sysctls the findings quote.
fn read_sysctls() -> Sysctls {
    Sysctls {
        unprivileged_port_start: read_sysctl("ip_unprivileged_port_start"),
        local_port_range: read_sysctl("ip_local_port_range"),
        local_reserved_ports: read_sysctl("ip_local_reserved_ports"),
    }
}
