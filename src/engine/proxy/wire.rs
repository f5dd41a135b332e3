//! The proxy's side of the conversation: requests out, replies read to
//! their exact length within the deadline, each failure naming the stage.

use std::io;
use std::time::Instant;

use super::ProxyUrl;
use crate::engine::poll::Events;
use crate::engine::transport::Stream;
use crate::error::{Error, Exit};

pub struct Wire<'a> {
    conn: &'a dyn Stream,
    deadline: Option<Instant>,
    /// "SOCKS5 proxy 127.0.0.1:1080", the subject of every error.
    label: String,
}

impl<'a> Wire<'a> {
    pub fn new(conn: &'a dyn Stream, proxy: &ProxyUrl, deadline: Option<Instant>) -> Wire<'a> {
        Wire {
            conn,
            deadline,
            label: format!("{} proxy {}", proxy.scheme.name(), conn.peer()),
        }
    }

    pub fn error(&self, exit: Exit, why: impl Into<String>) -> Error {
        Error::new(exit, &self.label, why)
    }

    /// A request, whole. Requests are a few hundred bytes at most, which
    /// a fresh socket's send buffer takes at once.
    pub fn send(&self, bytes: &[u8], stage: &str) -> Result<(), Error> {
        self.conn
            .send_all(bytes)
            .map_err(|e| self.io(&format!("send the {stage}"), &e))
    }

    /// Exactly `buf.len()` bytes of the reply to `stage`.
    pub fn recv_exact(&self, buf: &mut [u8], stage: &str) -> Result<(), Error> {
        let mut got = 0;
        while got < buf.len() {
            let timeout = match self.deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Err(self.timed_out(stage)),
                },
            };
            match self.conn.ready(Events::POLLIN, timeout) {
                Ok(true) => {}
                Ok(false) => return Err(self.timed_out(stage)),
                Err(e) => return Err(self.io(&format!("wait for the {stage} reply"), &e)),
            }
            match self.conn.try_recv(&mut buf[got..]) {
                Ok(0) => {
                    return Err(self.error(
                        Exit::Failure,
                        format!(
                            "the proxy closed the connection before its reply to the {stage} \
                             ({got} of {} bytes came)",
                            buf.len()
                        ),
                    ))
                }
                Ok(n) => got += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(self.io(&format!("read the {stage} reply"), &e)),
            }
        }
        Ok(())
    }

    pub fn byte(&self, stage: &str) -> Result<u8, Error> {
        let mut b = [0u8];
        self.recv_exact(&mut b, stage)?;
        Ok(b[0])
    }

    fn timed_out(&self, stage: &str) -> Error {
        self.error(
            Exit::TimedOut,
            format!(
                "no reply to the {stage} in time (-w bounds the connect and the proxy's answer)"
            ),
        )
    }

    fn io(&self, what: &str, e: &io::Error) -> Error {
        let err = Error::io(format!("{}: {what}", self.label), e);
        // A reset here is the proxy's doing, not the target's refusal.
        if err.exit == Exit::Refused {
            return Error {
                exit: Exit::Failure,
                ..err
            };
        }
        err
    }
}
