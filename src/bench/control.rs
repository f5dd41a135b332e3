//! The control exchange between a bench client and server: a magic line,
//! then length-prefixed JSON messages on one stream connection (TCP, or a
//! Unix stream socket with `-U`).
//!
//! Every read is bounded (a timeout and a size cap), so a garbage or stalled
//! peer is an error naming the problem, never a hang or an unbounded
//! allocation.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use socket2::Socket;

use super::{Params, SideReport};
use crate::error::{Error, Exit};

/// Sent first by both sides; the last byte is the protocol version.
pub const MAGIC: &[u8; 12] = b"SONDA-BENCH\x01";
pub const VERSION: u32 = 1;
/// The largest control message accepted (a report of the most intervals a
/// test may have is well under this).
const MAX_MESSAGE: usize = 4 << 20;
/// The largest hello a server reads: parameters are a few hundred bytes,
/// and a server should not hold megabytes for a peer it has not checked.
pub const MAX_HELLO: usize = 64 << 10;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    Hello {
        version: u32,
        params: Params,
    },
    Accept {
        /// TCP: the one data port; UDP: a port per socket; Unix: empty.
        data_ports: Vec<u16>,
        /// Unix: the abstract name (`@sonda-bench-PID-N`) the server's data
        /// listener is bound to. Absent for TCP and UDP, so the message is
        /// what it was before Unix tests existed and a peer of either age
        /// parses it; a client checks the name before connecting to it
        /// (`session::check_data_socket`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data_socket: Option<String>,
    },
    Reject {
        reason: String,
    },
    /// Data channels are ready: start the clock.
    Start,
    /// This side has finished sending (its senders' figures inside).
    SendDone {
        report: SideReport,
    },
    /// This side has finished receiving: everything it measured.
    Report {
        report: SideReport,
    },
    Error {
        reason: String,
    },
}

pub struct Control {
    /// Either transport's connected socket: nothing here depends on which.
    stream: Socket,
    peer: String,
    /// Whether errors name the peer: the server's log line names the
    /// client already, and saying it twice is noise.
    named: bool,
}

impl Control {
    /// `stream`: a `TcpStream`, a `UnixStream` or a socket2 `Socket`.
    pub fn new(stream: impl Into<Socket>, peer: String) -> Control {
        Control {
            stream: stream.into(),
            peer,
            named: true,
        }
    }

    /// The server's side of an exchange with the client `peer`: its errors
    /// say "bench control" and leave the peer to whoever reports them.
    pub fn server(stream: impl Into<Socket>, peer: String) -> Control {
        Control {
            named: false,
            ..Control::new(stream, peer)
        }
    }

    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// What a failure of this exchange is called in its message.
    pub fn what(&self) -> String {
        if self.named {
            format!("bench control with {}", self.peer)
        } else {
            "bench control".to_string()
        }
    }

    fn fail(&self, why: impl Into<String>) -> Error {
        Error::new(Exit::Failure, self.what(), why)
    }

    fn io_fail(&self, what: &str, e: &io::Error) -> Error {
        if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            return self.fail(format!(
                "{what}: no answer in time (is it a sonda bench server?)"
            ));
        }
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return self.fail(format!("{what}: the peer closed the connection"));
        }
        self.fail(format!("{what}: {}", crate::error::describe(e)))
    }

    /// Bounds the next reads.
    pub fn set_timeout(&self, t: Duration) -> Result<(), Error> {
        self.stream
            .set_read_timeout(Some(t.max(Duration::from_millis(1))))
            .map_err(|e| self.io_fail("set timeout", &e))?;
        self.stream
            .set_write_timeout(Some(t.max(Duration::from_millis(1))))
            .map_err(|e| self.io_fail("set timeout", &e))
    }

    /// True once the peer has closed the control connection (or it
    /// failed); data it sent and this side has not read yet is left alone.
    pub fn peer_closed(&self) -> bool {
        use nix::sys::socket::{recv, MsgFlags};
        let mut b = [0u8; 1];
        match recv(
            self.stream.as_raw_fd(),
            &mut b,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(n) => n == 0,
            Err(e) => !matches!(e, nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR),
        }
    }

    pub fn send_magic(&mut self) -> Result<(), Error> {
        let r = self.stream.write_all(MAGIC);
        r.map_err(|e| self.io_fail("send greeting", &e))
    }

    /// Reads the peer's magic; anything else is not a sonda bench peer.
    pub fn expect_magic(&mut self) -> Result<(), Error> {
        let mut got = [0u8; 12];
        let r = self.stream.read_exact(&mut got);
        r.map_err(|e| self.io_fail("read greeting", &e))?;
        if got[..11] != MAGIC[..11] {
            let shown = crate::report::escape_preview(&got, 12);
            return Err(self.fail(format!("not a sonda bench peer (it sent \"{shown}\")")));
        }
        if got[11] != MAGIC[11] {
            return Err(self.fail(format!(
                "protocol version {} on the peer, {} here: run the same sonda version on both hosts",
                got[11], MAGIC[11]
            )));
        }
        Ok(())
    }

    pub fn send(&mut self, msg: &Msg) -> Result<(), Error> {
        let body = serde_json::to_vec(msg).map_err(|e| self.fail(e.to_string()))?;
        let mut frame = Vec::with_capacity(body.len() + 4);
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(&body);
        let r = self.stream.write_all(&frame);
        r.map_err(|e| self.io_fail("send", &e))
    }

    pub fn recv(&mut self) -> Result<Msg, Error> {
        self.recv_within(MAX_MESSAGE)
    }

    /// Reads one message of at most `limit` bytes. The body grows with what
    /// arrives, so a length prefix alone never allocates.
    pub fn recv_within(&mut self, limit: usize) -> Result<Msg, Error> {
        let mut len = [0u8; 4];
        let r = self.stream.read_exact(&mut len);
        r.map_err(|e| self.io_fail("read", &e))?;
        let len = u32::from_be_bytes(len) as usize;
        if len > limit {
            return Err(self.fail(format!(
                "message of {len} bytes is over the {limit}-byte limit"
            )));
        }
        let mut body = Vec::with_capacity(len.min(64 << 10));
        let r = (&mut self.stream).take(len as u64).read_to_end(&mut body);
        r.map_err(|e| self.io_fail("read", &e))?;
        if body.len() < len {
            let e = io::Error::from(io::ErrorKind::UnexpectedEof);
            return Err(self.io_fail("read", &e));
        }
        let msg: Msg = serde_json::from_slice(&body)
            .map_err(|e| self.fail(format!("malformed message: {e}")))?;
        if let Msg::Error { reason } = &msg {
            return Err(self.fail(format!("the peer failed: {reason}")));
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_without_a_data_socket_is_what_it_was() {
        let tcp = Msg::Accept {
            data_ports: vec![5206],
            data_socket: None,
        };
        assert_eq!(
            serde_json::to_string(&tcp).unwrap(),
            r#"{"type":"accept","data_ports":[5206]}"#
        );
        // An older server's accept still parses.
        match serde_json::from_str(r#"{"type":"accept","data_ports":[5206]}"#).unwrap() {
            Msg::Accept {
                data_ports,
                data_socket: None,
            } => assert_eq!(data_ports, vec![5206]),
            other => panic!("{other:?}"),
        }
        let unix: Msg = serde_json::from_str(
            r#"{"type":"accept","data_ports":[],"data_socket":"@sonda-bench-1-0"}"#,
        )
        .unwrap();
        assert!(
            matches!(unix, Msg::Accept { data_socket: Some(s), .. } if s == "@sonda-bench-1-0")
        );
    }
}
