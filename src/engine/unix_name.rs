//! Unix domain socket addresses as a user types them (`-U PATH`): a
//! filesystem path, or `@NAME` for a name in Linux's abstract namespace,
//! which has no file and vanishes with the last socket bound to it.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// sizeof(sun_path) in struct sockaddr_un on Linux.
pub const SUN_PATH_LEN: usize = 108;

/// A Unix socket address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnixName {
    /// A filesystem path, as typed (relative paths stay relative: bind(2)
    /// and connect(2) resolve them against the working directory).
    Path(PathBuf),
    /// An abstract name: the bytes after the `@`.
    Abstract(Vec<u8>),
}

impl UnixName {
    /// The bytes of sun_path as the kernel stores and reports them: the
    /// path, or a NUL followed by the abstract name.
    pub fn sun_path(&self) -> Vec<u8> {
        match self {
            UnixName::Path(p) => p.as_os_str().as_bytes().to_vec(),
            UnixName::Abstract(name) => {
                let mut v = Vec::with_capacity(name.len() + 1);
                v.push(0);
                v.extend_from_slice(name);
                v
            }
        }
    }

    pub fn path(&self) -> Option<&Path> {
        match self {
            UnixName::Path(p) => Some(p),
            UnixName::Abstract(_) => None,
        }
    }
}

/// The path lossily as text; an abstract name as `@NAME`, with any NUL in
/// it shown as `@` the way /proc/net/unix and ss show it.
impl fmt::Display for UnixName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixName::Path(p) => write!(f, "{}", p.display()),
            UnixName::Abstract(name) => {
                let shown: Vec<u8> = name
                    .iter()
                    .map(|&b| if b == 0 { b'@' } else { b })
                    .collect();
                write!(f, "@{}", String::from_utf8_lossy(&shown))
            }
        }
    }
}

/// `-U PATH` or `-U @NAME`. Either must fit sun_path: 107 bytes at most
/// (a path needs its terminating NUL there; an abstract name takes the `@`
/// position as its leading NUL). A relative path that begins with `@` is
/// written `./@NAME`.
pub fn parse_unix_name(s: &OsStr) -> Result<UnixName, String> {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return Err("a Unix socket path cannot be empty".to_string());
    }
    if bytes.len() >= SUN_PATH_LEN {
        return Err(format!(
            "{} bytes is too long for a Unix socket address (sun_path holds {}, so at most {} bytes)",
            bytes.len(),
            SUN_PATH_LEN,
            SUN_PATH_LEN - 1
        ));
    }
    if bytes.contains(&0) {
        return Err("a Unix socket path cannot contain a NUL byte".to_string());
    }
    match bytes.strip_prefix(b"@") {
        Some([]) => Err("an abstract name needs at least one byte after '@'".to_string()),
        Some(name) => Ok(UnixName::Abstract(name.to_vec())),
        None => Ok(UnixName::Path(PathBuf::from(s))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<UnixName, String> {
        parse_unix_name(OsStr::new(s))
    }

    #[test]
    fn paths_and_abstract_names() {
        assert_eq!(
            parse("/tmp/a.sock"),
            Ok(UnixName::Path("/tmp/a.sock".into()))
        );
        assert_eq!(parse("rel.sock"), Ok(UnixName::Path("rel.sock".into())));
        assert_eq!(parse("./@x"), Ok(UnixName::Path("./@x".into())));
        assert_eq!(parse("@app"), Ok(UnixName::Abstract(b"app".to_vec())));
        assert_eq!(parse("@app").map(|n| n.sun_path()), Ok(b"\0app".to_vec()));
        assert_eq!(parse("@a b").map(|n| n.to_string()), Ok("@a b".to_string()));
    }

    #[test]
    fn the_sun_path_limit() {
        let at_limit = format!("/{}", "a".repeat(SUN_PATH_LEN - 2));
        assert_eq!(at_limit.len(), 107);
        assert!(parse(&at_limit).is_ok());
        let over = format!("/{}", "a".repeat(SUN_PATH_LEN - 1));
        let err = parse(&over).unwrap_err();
        assert!(err.starts_with("108 bytes is too long"), "{err}");
        assert!(parse(&format!("@{}", "n".repeat(107))).is_err());
        assert!(parse("").is_err());
        assert!(parse("@").is_err());
    }
}
