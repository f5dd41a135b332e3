//! STARTTLS: the plaintext exchange that turns a connection into a TLS one
//! (SMTP, IMAP, POP3, FTP, PostgreSQL). Whatever the server sends after
//! its go-ahead and before the handshake is an error and is never passed
//! on: a man in the middle can inject there (the response-injection class,
//! CVE-2011-0411 and its kin), so it is checked both in what was read with
//! the go-ahead and on the socket just before the handshake starts.

use std::io;
use std::time::{Duration, Instant};

use crate::engine::poll::Events;
use crate::engine::transport::Stream;
use crate::error::{Error, Exit};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Starttls {
    Smtp,
    Imap,
    Pop3,
    Ftp,
    Postgres,
}

/// A line at most this long; a server that sends more is not one of these.
const MAX_LINE: usize = 4096;
/// Lines of a multi-line reply (EHLO's capabilities) at most.
const MAX_LINES: usize = 256;

/// The conversation so far, for -v ("S: 220 ...", "C: EHLO sonda").
pub type Transcript = Vec<String>;

struct Conversation<'a> {
    stream: &'a dyn Stream,
    deadline: Instant,
    /// Bytes read past the last line taken.
    pending: Vec<u8>,
    transcript: Transcript,
    what: String,
}

impl Conversation<'_> {
    fn fail(&self, why: impl Into<String>) -> Error {
        Error::new(Exit::Tls, &self.what, why.into())
    }

    fn io(&self, e: &io::Error) -> Error {
        Error::io(&self.what, e)
    }

    fn send(&mut self, line: &str) -> Result<(), Error> {
        self.transcript.push(format!("C: {line}"));
        self.stream
            .send_all(format!("{line}\r\n").as_bytes())
            .map_err(|e| self.io(&e))
    }

    fn send_bytes(&mut self, bytes: &[u8], shown: &str) -> Result<(), Error> {
        self.transcript.push(format!("C: {shown}"));
        self.stream.send_all(bytes).map_err(|e| self.io(&e))
    }

    /// Reads more, within the deadline; EOF is an error (the server
    /// hung up mid-conversation).
    fn fill(&mut self) -> Result<(), Error> {
        let mut buf = [0u8; 4096];
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::new(
                    Exit::TimedOut,
                    &self.what,
                    "the server did not answer in time",
                ));
            }
            if !self
                .stream
                .ready(Events::POLLIN, Some(left))
                .map_err(|e| self.io(&e))?
            {
                continue;
            }
            match self.stream.try_recv(&mut buf) {
                Ok(0) => return Err(self.fail("the server closed the connection")),
                Ok(n) => {
                    self.pending.extend_from_slice(&buf[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io(&e)),
            }
        }
    }

    fn line(&mut self) -> Result<String, Error> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.pending.drain(..=end).collect();
                let text = String::from_utf8_lossy(&raw).trim_end().to_string();
                self.transcript.push(format!("S: {text}"));
                return Ok(text);
            }
            if self.pending.len() > MAX_LINE {
                return Err(self.fail(format!(
                    "the server sent a line longer than {MAX_LINE} bytes"
                )));
            }
            self.fill()?;
        }
    }

    /// An SMTP/FTP reply: lines `CODE-text` then `CODE text`; its code.
    fn reply(&mut self) -> Result<(u16, String), Error> {
        for _ in 0..MAX_LINES {
            let line = self.line()?;
            let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
            let Some(code) = code else {
                return Err(self.fail(format!("not a reply line: {line:?}")));
            };
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, line));
            }
        }
        Err(self.fail(format!("a reply of more than {MAX_LINES} lines")))
    }

    fn expect_code(&mut self, want: u16, step: &str) -> Result<(), Error> {
        let (code, line) = self.reply()?;
        if code != want {
            return Err(self.fail(format!("the server refused {step}: {line}")));
        }
        Ok(())
    }

    /// Nothing may follow the go-ahead before the handshake.
    fn nothing_more(&mut self) -> Result<(), Error> {
        let mut probe = [0u8; 1];
        let extra: usize = self.stream.try_recv(&mut probe).unwrap_or_default();
        if !self.pending.is_empty() || extra > 0 {
            return Err(self.fail(format!(
                "the server sent {} bytes after its go-ahead, before the TLS handshake (possible response injection); nothing was passed on",
                self.pending.len() + extra
            )));
        }
        Ok(())
    }
}

/// The plaintext preamble of `proto` on `stream`, up to the server's
/// go-ahead; on success the handshake may start on the same socket.
pub fn negotiate(
    stream: &dyn Stream,
    proto: Starttls,
    timeout: Duration,
) -> Result<Transcript, Error> {
    let mut c = Conversation {
        stream,
        deadline: Instant::now() + timeout,
        pending: Vec::new(),
        transcript: Vec::new(),
        what: format!("STARTTLS ({}) with {}", name(proto), stream.peer()),
    };
    match proto {
        Starttls::Smtp => {
            c.expect_code(220, "the session (greeting)")?;
            c.send("EHLO sonda")?;
            c.expect_code(250, "EHLO")?;
            c.send("STARTTLS")?;
            c.expect_code(220, "STARTTLS")?;
        }
        Starttls::Ftp => {
            c.expect_code(220, "the session (greeting)")?;
            c.send("AUTH TLS")?;
            c.expect_code(234, "AUTH TLS")?;
        }
        Starttls::Pop3 => {
            let hello = c.line()?;
            if !hello.starts_with("+OK") {
                return Err(c.fail(format!("not a POP3 greeting: {hello}")));
            }
            c.send("STLS")?;
            let go = c.line()?;
            if !go.starts_with("+OK") {
                return Err(c.fail(format!("the server refused STLS: {go}")));
            }
        }
        Starttls::Imap => {
            let hello = c.line()?;
            if !hello.starts_with("* OK") {
                return Err(c.fail(format!("not an IMAP greeting: {hello}")));
            }
            c.send("a1 STARTTLS")?;
            // Untagged lines may come first; the tagged one decides.
            let mut go = c.line()?;
            for _ in 0..MAX_LINES {
                if !go.starts_with("* ") {
                    break;
                }
                go = c.line()?;
            }
            if !go.starts_with("a1 OK") {
                return Err(c.fail(format!("the server refused STARTTLS: {go}")));
            }
        }
        Starttls::Postgres => {
            // SSLRequest: length 8, code 80877103; the answer is one byte.
            let mut req = 8u32.to_be_bytes().to_vec();
            req.extend_from_slice(&80_877_103u32.to_be_bytes());
            c.send_bytes(&req, "SSLRequest")?;
            while c.pending.is_empty() {
                c.fill()?;
            }
            let answer = c.pending.remove(0);
            c.transcript.push(format!("S: {:?}", answer as char));
            if answer != b'S' {
                return Err(c.fail(format!(
                    "the server refused TLS (answered {:?} to SSLRequest)",
                    answer as char
                )));
            }
        }
    }
    c.nothing_more()?;
    Ok(c.transcript)
}

pub fn name(proto: Starttls) -> &'static str {
    match proto {
        Starttls::Smtp => "smtp",
        Starttls::Imap => "imap",
        Starttls::Pop3 => "pop3",
        Starttls::Ftp => "ftp",
        Starttls::Postgres => "postgres",
    }
}
