//! The fallback table: /proc/net/{tcp,tcp6,udp,udp6}, read whole and
//! filtered here (the cost grows with every socket on the host, which is why
//! sock_diag comes first).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::{SockEntry, State};
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
}
