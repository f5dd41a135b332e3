//! The fallback tables: /proc/net/{tcp,tcp6,udp,udp6}, read whole and
//! filtered here (the cost grows with every socket on the host, which is why
//! sock_diag comes first), and /proc/net/unix.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::{SockEntry, State, UnixEntry, UnixType};
use crate::engine::socket::Proto;

/// USER_HZ: /proc/net timers are in clock ticks of 10 ms.
const TICK: Duration = Duration::from_millis(10);

pub fn read_port(proto: Proto, port: u16) -> io::Result<Vec<SockEntry>> {
    let files: [&str; 2] = match proto {
        Proto::Tcp => ["/proc/net/tcp", "/proc/net/tcp6"],
        Proto::Udp => ["/proc/net/udp", "/proc/net/udp6"],
    };
    let mut out = Vec::new();
    let mut read_any = false;
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            // No IPv6 on this host: tcp6 is absent.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        read_any = true;
        out.extend(
            text.lines()
                .skip(1)
                .filter_map(|l| parse_line(l, proto))
                .filter(|e| e.local.port() == port),
        );
    }
    if !read_any {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no /proc/net socket tables",
        ));
    }
    Ok(out)
}

/// `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...`
fn parse_line(line: &str, proto: Proto) -> Option<SockEntry> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 10 {
        return None;
    }
    let local = parse_addr(f[1])?;
    let remote = parse_addr(f[2])?;
    let state = State(u8::from_str_radix(f[3], 16).ok()?);
    let (timer, when) = f[5].split_once(':')?;
    let timer = u8::from_str_radix(timer, 16).ok()?;
    let when = u64::from_str_radix(when, 16).ok()?;
    Some(SockEntry {
        proto,
        state,
        local,
        remote,
        expires: (timer != 0).then(|| TICK * when as u32),
        uid: f[7].parse().ok()?,
        inode: f[9].parse().ok()?,
        v6only: None,
        device: 0,
    })
}

/// `0100007F:1F90` (IPv4: one host-order word) or 32 hex digits (IPv6: four
/// host-order words), then the port in hex.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(addr, 16).ok()?.to_ne_bytes(),
        )),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                let word = u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16).ok()?;
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// __SO_ACCEPTCON in /proc/net/unix's Flags column: the socket listens.
const SO_ACCEPTCON: u32 = 0x10000;
/// The St column (socket_state): SS_CONNECTING is what the kernel prints
/// for a connection queued on a listener and not yet accepted.
const SS_CONNECTING: u8 = 2;
const SS_CONNECTED: u8 = 3;

/// /proc/net/unix: `Num RefCount Protocol Flags Type St Inode [Path]`.
///
/// It tells a socket's type, whether it listens or is connected, its
/// inode (the socket's own, which /proc/PID/fd links name) and the name it
/// is bound to. It cannot tell the inode and device of the file a socket is
/// bound to (so a listener on an unlinked or replaced file looks the same
/// as a live one), the peer, the queue lengths, the backlog or the owner's
/// uid. Connections waiting in a listener's queue appear with inode 0 and
/// the listener's name; they are kept so their number can be counted.
/// Abstract names are printed with `@` for the leading NUL (and for any
/// NUL inside), so a relative path that begins with `@` reads the same.
pub fn read_unix() -> io::Result<Vec<UnixEntry>> {
    let text = std::fs::read("/proc/net/unix")?;
    Ok(text
        .split(|&b| b == b'\n')
        .skip(1)
        .filter_map(parse_unix_line)
        .collect())
}

/// One line: six hex or decimal columns and the inode, each followed by
/// spaces, then one space and the name, which may itself contain spaces.
/// (A name with a newline in it breaks the line; the part after it fails to
/// parse and is skipped.)
fn parse_unix_line(line: &[u8]) -> Option<UnixEntry> {
    let mut rest = line;
    let mut cols: Vec<&str> = Vec::with_capacity(7);
    while cols.len() < 7 {
        let start = rest.iter().position(|&b| b != b' ')?;
        rest = &rest[start..];
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        cols.push(std::str::from_utf8(&rest[..end]).ok()?);
        rest = &rest[end..];
    }
    let flags = u32::from_str_radix(cols[3], 16).ok()?;
    let kind = UnixType::from_raw(u8::from_str_radix(cols[4], 16).ok()?);
    let st = u8::from_str_radix(cols[5], 16).ok()?;
    let inode: u64 = cols[6].parse().ok()?;
    let name = match rest {
        [] => None,
        [b' ', b'@', abstract_name @ ..] => {
            let mut n = vec![0u8];
            n.extend_from_slice(abstract_name);
            Some(n)
        }
        [b' ', path @ ..] if !path.is_empty() => Some(path.to_vec()),
        _ => return None,
    };
    let state = if flags & SO_ACCEPTCON != 0 {
        State::LISTEN
    } else if st == SS_CONNECTED || st == SS_CONNECTING {
        State::ESTABLISHED
    } else {
        State::CLOSE
    };
    Some(UnixEntry {
        kind,
        state,
        inode,
        name,
        vfs: None,
        peer: None,
        rqlen: None,
        uid: None,
        pending_peers: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_lines() {
        let v4 = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12345 1 0000000000000000 100 0 0 10 0";
        let e = parse_line(v4, Proto::Tcp).unwrap();
        assert_eq!(e.local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(e.state, State::LISTEN);
        assert_eq!((e.uid, e.inode), (1000, 12345));
        let v6 = "   1: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:A000 06 00000000:00000000 03:00000FA0 00000000     0        0 0 3 0000000000000000";
        let e = parse_line(v6, Proto::Tcp).unwrap();
        assert_eq!(e.local, "[::1]:8080".parse().unwrap());
        assert_eq!(e.state, State::TIME_WAIT);
        assert_eq!(e.expires, Some(Duration::from_millis(40_000)));
    }

    #[test]
    fn parses_proc_net_unix_lines() {
        let listener =
            b"000000000239809e: 00000002 00000000 00010000 0001 01 3962912 /tmp/a b.sock";
        let e = parse_unix_line(listener).unwrap();
        assert_eq!(
            (e.kind, e.state, e.inode),
            (UnixType::Stream, State::LISTEN, 3962912)
        );
        assert_eq!(e.name.as_deref(), Some(&b"/tmp/a b.sock"[..]));
        assert_eq!(e.vfs, None);
        let queued = b"00000000fb71c5b8: 00000003 00000000 00000000 0001 02     0 /tmp/a.sock";
        let e = parse_unix_line(queued).unwrap();
        assert_eq!((e.state, e.inode), (State::ESTABLISHED, 0));
        let unbound = b"00000000ae927e1e: 00000003 00000000 00000000 0002 01  1550";
        let e = parse_unix_line(unbound).unwrap();
        assert_eq!(
            (e.kind, e.state, e.name),
            (UnixType::Dgram, State::CLOSE, None)
        );
        let abstract_name = b"0000000000000000: 00000002 00000000 00010000 0005 01 77 @app@x";
        let e = parse_unix_line(abstract_name).unwrap();
        assert_eq!(e.kind, UnixType::SeqPacket);
        assert_eq!(e.name.as_deref(), Some(&b"\0app@x"[..]));
        // The header, short lines, and junk in a column are skipped.
        for bad in [
            &b"Num       RefCount Protocol Flags    Type St Inode Path"[..],
            b"",
            b"00000000ae927e1e: 00000003 00000000",
            b"00000000ae927e1e: 00000003 00000000 zz 0001 01 12 /x",
            b"00000000ae927e1e: 00000003 00000000 00000000 0001 01 12 ",
        ] {
            assert_eq!(
                parse_unix_line(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
