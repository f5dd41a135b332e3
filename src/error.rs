//! Exit statuses (DESIGN.md "Exit status") and the typed error that carries
//! one from the engine to `main`.
//!
//! Engine failures name the operation and the address they concern; `main`
//! renders them as `sonda: <what>: <why>` and exits with the error's code.

use std::fmt;
use std::io;

/// The process exit statuses of the user contract, in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Failure = 1,
    Usage = 2,
    Refused = 3,
    TimedOut = 4,
    AddrInUse = 5,
    Resolve = 6,
    /// A TLS handshake failed or the peer's certificate was not trusted.
    Tls = 7,
    Interrupted = 130,
    Terminated = 143,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// A failure with the operation attempted, the reason, the exit status it
/// maps to, and optionally a hint on what to try next.
#[derive(Debug)]
pub struct Error {
    pub exit: Exit,
    pub what: String,
    pub why: String,
    pub hint: Option<String>,
    /// The OS error behind it, when there is one, so a caller that knows
    /// what the user asked for can add a hint the engine cannot.
    pub errno: Option<i32>,
}

impl Error {
    pub fn new(exit: Exit, what: impl Into<String>, why: impl Into<String>) -> Self {
        Error {
            exit,
            what: what.into(),
            why: why.into(),
            hint: None,
            errno: None,
        }
    }

    /// A bad flag or value: exit 2. `what` names the bad value.
    pub fn usage(what: impl Into<String>, why: impl Into<String>) -> Self {
        Error::new(Exit::Usage, what, why)
    }

    /// An OS error during `what`, classified by its errno.
    pub fn io(what: impl Into<String>, err: &io::Error) -> Self {
        Error {
            errno: err.raw_os_error(),
            ..Error::new(classify(err), what, describe(err))
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.what.is_empty() {
            f.write_str(&self.why)
        } else {
            write!(f, "{}: {}", self.what, self.why)
        }
    }
}

impl std::error::Error for Error {}

/// The exit status an OS error maps to.
pub fn classify(err: &io::Error) -> Exit {
    if err
        .get_ref()
        .is_some_and(|e| e.is::<crate::engine::transport::tls::TlsFailure>())
    {
        return Exit::Tls;
    }
    match err.kind() {
        io::ErrorKind::ConnectionRefused => Exit::Refused,
        io::ErrorKind::TimedOut => Exit::TimedOut,
        io::ErrorKind::AddrInUse => Exit::AddrInUse,
        _ => Exit::Failure,
    }
}

/// The errno text in lower case ("connection refused"), without Rust's
/// "(os error 111)" suffix, which means nothing to a user.
pub fn describe(err: &io::Error) -> String {
    let text = match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => err.to_string(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// The exit status for any error that reaches `main`: the first typed
/// [`Error`] or `io::Error` in the chain decides; anything else is 1.
pub fn exit_of(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Error>() {
            return e.exit;
        }
        if let Some(e) = cause.downcast_ref::<io::Error>() {
            return classify(e);
        }
    }
    Exit::Failure
}

/// The hint of the first typed [`Error`] in the chain, if any.
pub fn hint_of(err: &anyhow::Error) -> Option<&str> {
    err.chain()
        .find_map(|c| c.downcast_ref::<Error>())
        .and_then(|e| e.hint.as_deref())
}
