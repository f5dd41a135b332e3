//! What `probe` knows about a port: the socket table as rows, the findings
//! and the verdict, and the JSON report built from them. Plain data: the
//! analysis fills it, the renderers read it.

use std::net::SocketAddr;

use serde::Serialize;

use crate::engine::diag::trial::{BindAttempt, BindOpts};
use crate::engine::diag::{Owner, SockEntry, TableSource};
use crate::engine::socket::{interface_name, Proto, Shown};
use crate::error::Exit;

/// "tcp" or "udp", as the report spells it.
pub fn proto_name(proto: Proto) -> &'static str {
    match proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    }
}

/// A socket on the port, with its owners.
#[derive(Debug, Serialize)]
pub struct Row {
    pub proto: &'static str,
    pub state: &'static str,
    #[serde(serialize_with = "shown")]
    pub local: SocketAddr,
    #[serde(serialize_with = "shown")]
    pub remote: SocketAddr,
    pub expires_ms: Option<u64>,
    pub uid: u32,
    pub inode: u64,
    pub v6only: Option<bool>,
    /// The interface SO_BINDTODEVICE bound it to (null: none, or a table
    /// from /proc/net, which does not tell).
    pub device: Option<String>,
    pub owners: Vec<OwnerJson>,
    pub owner_visible: bool,
    #[serde(skip)]
    pub entry: SockEntry,
}

impl Row {
    /// The row for `e`, held by `found` (empty: no process, or one this
    /// user cannot see; `owner_visible` tells which).
    pub fn new(e: SockEntry, proto: Proto, found: Vec<Owner>) -> Row {
        Row {
            proto: proto_name(proto),
            state: e.state.name(proto),
            local: e.local,
            remote: e.remote,
            expires_ms: e.expires.map(|d| d.as_millis() as u64),
            uid: e.uid,
            inode: e.inode,
            v6only: e.v6only,
            device: (e.device != 0).then(|| interface_name(e.device)),
            owner_visible: e.inode == 0 || !found.is_empty(),
            owners: found
                .into_iter()
                .map(|o| OwnerJson {
                    pid: o.pid,
                    command: o.command,
                })
                .collect(),
            entry: e,
        }
    }
}

fn shown<S: serde::Serializer>(addr: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&Shown(addr))
}

#[derive(Debug, Serialize)]
pub struct OwnerJson {
    pub pid: u32,
    pub command: String,
}

/// Every socket on the port, and where the list came from.
pub struct Table {
    pub source: TableSource,
    pub sockets: Vec<Row>,
}

#[derive(Debug, Serialize)]
pub struct Finding {
    pub kind: &'static str,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub bind_ok: bool,
    pub text: String,
}

impl Verdict {
    /// The exit status of the user contract: 5 when a bind would fail.
    pub fn exit(&self) -> Exit {
        if self.bind_ok {
            Exit::Success
        } else {
            Exit::AddrInUse
        }
    }
}

/// A trial bind as the report shows it.
#[derive(Serialize)]
pub struct BindJson<'a> {
    pub address: &'a str,
    /// An IPv6 wildcard with IPV6_V6ONLY off (takes IPv4 too).
    pub dual_stack: bool,
    #[serde(serialize_with = "option_label")]
    pub options: BindOpts,
    pub ok: bool,
    pub errno: Option<&'static str>,
    pub error: Option<&'a str>,
}

impl<'a> From<&'a BindAttempt> for BindJson<'a> {
    fn from(b: &'a BindAttempt) -> Self {
        BindJson {
            address: &b.address,
            dual_stack: b.dual_stack,
            options: b.options,
            ok: b.ok,
            errno: b.errno,
            error: b.error.as_deref(),
        }
    }
}

fn option_label<S: serde::Serializer>(opts: &BindOpts, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(opts.label())
}

/// The `--json` object (schema in the probe page's DESCRIPTION).
#[derive(Serialize)]
pub struct Report<'a> {
    pub proto: &'static str,
    pub port: u16,
    pub source: &'static str,
    pub binds: Vec<BindJson<'a>>,
    pub sockets: &'a [Row],
    pub findings: &'a [Finding],
    pub verdict: &'a Verdict,
}
