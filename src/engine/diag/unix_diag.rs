//! NETLINK_SOCK_DIAG for AF_UNIX (unix_diag): every Unix socket of this
//! network namespace with its name, the inode and device of the file it is
//! bound to, its peer, queue lengths, owner uid and pending connections.
//!
//! unix_diag has no filter in the kernel request (only a lookup by socket
//! inode), so the whole table comes back and the caller picks the sockets
//! it wants; a Unix socket's entry is small, tens of thousands fit in a few
//! reads.

use std::io;

use super::netlink::{
    self, attributes, u32_at, NLMSG_HDR, NLM_F_DUMP, NLM_F_REQUEST, SOCK_DIAG_BY_FAMILY,
};
use super::{State, UnixEntry, UnixType, Vfs};

const UDIAG_SHOW_NAME: u32 = 0x01;
const UDIAG_SHOW_VFS: u32 = 0x02;
const UDIAG_SHOW_PEER: u32 = 0x04;
const UDIAG_SHOW_ICONS: u32 = 0x08;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UDIAG_SHOW_UID: u32 = 0x40;

// The reply's attribute types (enum in linux/unix_diag.h; NAME is 0).
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_VFS: u16 = 1;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_ICONS: u16 = 3;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_UID: u16 = 7;

/// sizeof(struct unix_diag_req) and sizeof(struct unix_diag_msg).
const REQ_LEN: usize = 24;
const MSG_LEN: usize = 16;

/// Every Unix socket the kernel lists, in every state.
///
/// With pending connections listed (UDIAG_SHOW_ICONS) a listener's entry
/// grows by four bytes per queued connection, and one that no longer fits
/// a dump datagram (about 8000 pending) fails the whole dump; the dump is
/// then made again without them, which loses only the pending clients'
/// inodes (their number still comes from UNIX_DIAG_RQLEN).
pub fn dump() -> io::Result<Vec<UnixEntry>> {
    let base =
        UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_UID;
    match dump_with(base | UDIAG_SHOW_ICONS) {
        Ok(v) => Ok(v),
        Err(_) => dump_with(base),
    }
}

fn dump_with(show: u32) -> io::Result<Vec<UnixEntry>> {
    let fd = netlink::open()?;
    netlink::send(&fd, &request(show))?;
    let mut out = Vec::new();
    netlink::receive_each(&fd, &[SOCK_DIAG_BY_FAMILY], |msg| {
        if let Some(e) = parse(msg) {
            out.push(e);
        }
    })?;
    Ok(out)
}

/// nlmsghdr + struct unix_diag_req for a dump of every state.
fn request(show: u32) -> Vec<u8> {
    let total = NLMSG_HDR + REQ_LEN;
    let mut msg = Vec::with_capacity(total);
    msg.extend_from_slice(&(total as u32).to_ne_bytes());
    msg.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
                                                // sdiag_family, sdiag_protocol (0 for AF_UNIX), pad
    msg.extend_from_slice(&[libc::AF_UNIX as u8, 0, 0, 0]);
    msg.extend_from_slice(&u32::MAX.to_ne_bytes()); // udiag_states: all
    msg.extend_from_slice(&0u32.to_ne_bytes()); // udiag_ino: unused in a dump
    msg.extend_from_slice(&show.to_ne_bytes());
    msg.extend_from_slice(&[0u8; 8]); // udiag_cookie
    msg
}

/// struct unix_diag_msg and its attributes. Every length comes from the
/// kernel and is checked before use: a short message is skipped, a short
/// attribute ignored, never read past.
fn parse(msg: &[u8]) -> Option<UnixEntry> {
    if msg.len() < MSG_LEN || msg[0] != libc::AF_UNIX as u8 {
        return None;
    }
    let mut e = UnixEntry {
        kind: UnixType::from_raw(msg[1]),
        state: State(msg[2]),
        inode: u64::from(u32_at(msg, 4)?),
        name: None,
        vfs: None,
        peer: None,
        rqlen: None,
        uid: None,
        pending_peers: None,
    };
    for (kind, payload) in attributes(&msg[MSG_LEN..]) {
        match kind {
            // sun_path as bound, without the family and without a NUL
            // terminator for a path (addr_len - sizeof(sa_family_t)).
            UNIX_DIAG_NAME => {
                let name = match payload.iter().position(|&b| b == 0) {
                    // A path may arrive with its terminating NUL.
                    Some(end) if end > 0 => &payload[..end],
                    _ => payload,
                };
                e.name = Some(name.to_vec());
            }
            UNIX_DIAG_VFS => {
                if let (Some(ino), Some(dev)) = (u32_at(payload, 0), u32_at(payload, 4)) {
                    e.vfs = Some(Vfs {
                        ino,
                        dev: user_dev(dev),
                    });
                }
            }
            UNIX_DIAG_PEER => e.peer = u32_at(payload, 0).map(u64::from),
            UNIX_DIAG_RQLEN => {
                if let (Some(r), Some(w)) = (u32_at(payload, 0), u32_at(payload, 4)) {
                    e.rqlen = Some((r, w));
                }
            }
            UNIX_DIAG_UID => e.uid = u32_at(payload, 0),
            UNIX_DIAG_ICONS => {
                e.pending_peers = Some(
                    payload
                        .chunks_exact(4)
                        .map(|c| u64::from(u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
                        .collect(),
                );
            }
            _ => {}
        }
    }
    Some(e)
}

/// The kernel reports the file's device as the superblock's `s_dev`, a
/// kernel-internal dev_t: major in the top 12 bits, minor in the low 20
/// (MKDEV in include/linux/kdev_t.h). stat(2) gives st_dev in the
/// userspace encoding instead (the kernel's new_encode_dev, glibc's
/// makedev: minor's low 8 bits, then 12 bits of major, then the rest of
/// minor). The two agree only for major 0 and a minor below 256 — true of
/// tmpfs and other anonymous devices with few mounts, false of a disk
/// (8:1 is 0x0080_0001 inside the kernel, 0x0801 in st_dev) — so the
/// value is converted before any comparison.
pub fn user_dev(kernel_dev: u32) -> u64 {
    let major = kernel_dev >> 20;
    let minor = kernel_dev & 0xf_ffff;
    libc::makedev(major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unix_diag_msg for a listener with the given attributes appended.
    fn message(attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = vec![libc::AF_UNIX as u8, 1, 10, 0];
        m.extend_from_slice(&4242u32.to_ne_bytes());
        m.extend_from_slice(&[0u8; 8]);
        for (kind, payload) in attrs {
            let len = 4 + payload.len();
            m.extend_from_slice(&(len as u16).to_ne_bytes());
            m.extend_from_slice(&kind.to_ne_bytes());
            m.extend_from_slice(payload);
            m.resize((m.len() + 3) & !3, 0);
        }
        m
    }

    fn pair(a: u32, b: u32) -> Vec<u8> {
        let mut v = a.to_ne_bytes().to_vec();
        v.extend_from_slice(&b.to_ne_bytes());
        v
    }

    #[test]
    fn kernel_dev_t_becomes_st_dev() {
        // 254:0 (a virtio disk): MKDEV is 254 << 20, st_dev is 0xfe00.
        assert_eq!(user_dev(254 << 20), 0xfe00);
        // 8:1 (sda1).
        assert_eq!(user_dev((8 << 20) | 1), 0x0801);
        // 0:26 (tmpfs and other anonymous devices): both encodings agree.
        assert_eq!(user_dev(26), 26);
        // A minor above 255 splits around the major in st_dev.
        assert_eq!(
            user_dev((8 << 20) | 300),
            (300 & 0xff) | (8 << 8) | ((300 & !0xff) << 12)
        );
        // A major above 4095 goes to the top half of the 64-bit st_dev.
        assert_eq!(
            user_dev(4095 << 20 | 0xf_ffff),
            libc::makedev(4095, 0xf_ffff)
        );
        for (major, minor) in [(0u32, 0u32), (7, 3), (259, 65536), (511, 1 << 19)] {
            assert_eq!(user_dev(major << 20 | minor), libc::makedev(major, minor));
        }
    }

    #[test]
    fn parses_a_listener() {
        let m = message(&[
            (UNIX_DIAG_NAME, b"/tmp/a.sock"),
            (UNIX_DIAG_VFS, &pair(99, 254 << 20)),
            (UNIX_DIAG_RQLEN, &pair(2, 128)),
            (UNIX_DIAG_UID, &1000u32.to_ne_bytes()),
            (UNIX_DIAG_ICONS, &pair(7, 8)),
            (UNIX_DIAG_PEER, &0u32.to_ne_bytes()),
        ]);
        let e = parse(&m).expect("a listener");
        assert_eq!(e.kind, UnixType::Stream);
        assert_eq!(e.state, State::LISTEN);
        assert_eq!(e.inode, 4242);
        assert_eq!(e.name.as_deref(), Some(&b"/tmp/a.sock"[..]));
        assert_eq!(
            e.vfs,
            Some(Vfs {
                ino: 99,
                dev: 0xfe00
            })
        );
        assert_eq!(e.rqlen, Some((2, 128)));
        assert_eq!(e.uid, Some(1000));
        assert_eq!(e.pending_peers, Some(vec![7, 8]));
        assert_eq!(e.peer, Some(0));
    }

    #[test]
    fn abstract_names_keep_their_leading_nul() {
        let e = parse(&message(&[(UNIX_DIAG_NAME, b"\0app\0x")])).expect("an entry");
        assert_eq!(e.name.as_deref(), Some(&b"\0app\0x"[..]));
        let e = parse(&message(&[(UNIX_DIAG_NAME, b"/p\0")])).expect("an entry");
        assert_eq!(e.name.as_deref(), Some(&b"/p"[..]));
    }

    #[test]
    fn truncated_messages_never_panic() {
        let full = message(&[
            (UNIX_DIAG_NAME, b"/tmp/a.sock"),
            (UNIX_DIAG_VFS, &pair(99, 26)),
            (UNIX_DIAG_RQLEN, &pair(2, 128)),
            (UNIX_DIAG_ICONS, &[1, 2, 3, 4, 5, 6]),
        ]);
        for cut in 0..full.len() {
            let e = parse(&full[..cut]);
            if cut < MSG_LEN {
                assert!(e.is_none(), "cut at {cut}");
            }
        }
        // Short attribute payloads are ignored, not read past.
        let e = parse(&message(&[
            (UNIX_DIAG_VFS, &[1, 2, 3]),
            (UNIX_DIAG_RQLEN, &[9]),
            (UNIX_DIAG_UID, &[1, 2]),
            (UNIX_DIAG_PEER, &[]),
        ]))
        .expect("the fixed header is whole");
        assert_eq!((e.vfs, e.rqlen, e.uid, e.peer), (None, None, None, None));
        // An attribute claiming more than the message holds ends the walk.
        let mut m = message(&[(UNIX_DIAG_UID, &5u32.to_ne_bytes())]);
        m.extend_from_slice(&200u16.to_ne_bytes());
        m.extend_from_slice(&UNIX_DIAG_NAME.to_ne_bytes());
        m.extend_from_slice(b"/x");
        let e = parse(&m).expect("an entry");
        assert_eq!((e.uid, e.name), (Some(5), None));
        // An attribute length below its own header.
        let mut m = message(&[]);
        m.extend_from_slice(&[2, 0, 0, 0, 1, 1, 1, 1]);
        assert!(parse(&m).is_some());
        // Another family's message is not ours.
        let mut m = message(&[]);
        m[0] = libc::AF_INET as u8;
        assert!(parse(&m).is_none());
    }

    #[test]
    fn the_request_is_a_unix_diag_req() {
        let r = request(UDIAG_SHOW_NAME | UDIAG_SHOW_VFS);
        assert_eq!(r.len(), 40);
        assert_eq!(u32_at(&r, 0), Some(40));
        assert_eq!(r[16], libc::AF_UNIX as u8);
        assert_eq!(u32_at(&r, 20), Some(u32::MAX));
        assert_eq!(u32_at(&r, 28), Some(3));
    }
}
