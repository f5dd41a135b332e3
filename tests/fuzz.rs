//! Property tests (proptest, bounded for CI) of everything a user or a peer
//! controls: HOST/PORT and port lists, durations, sizes, rates, CIDR blocks,
//! source addresses, and the bench control exchange. Nothing panics, every
//! accepted value is in range, valid spellings round-trip, and a hostile
//! control peer is an error within the timeout with bounded allocation.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use sonda::bench::control::{Control, MAGIC};
use sonda::engine::addr::{parse_cidr, parse_host, parse_port, parse_port_list, parse_source};
use sonda::parse::{parse_duration, parse_rate, parse_size};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(4000))]

    #[test]
    fn parsers_never_panic(s in "\\PC{0,40}") {
        let _ = parse_port(&s);
        let _ = parse_port_list(&s);
        let _ = parse_duration(&s);
        let _ = parse_size(&s);
        let _ = parse_rate(&s);
        let _ = parse_cidr(&s);
        let _ = parse_host(&s);
        let _ = parse_source(&s);
    }

    #[test]
    fn numeric_looking_input_never_panics(s in "[0-9kKmMgGsh.,:\\-\\[\\]/ ]{0,24}") {
        let _ = parse_port(&s);
        let _ = parse_port_list(&s);
        let _ = parse_duration(&s);
        let _ = parse_size(&s);
        let _ = parse_rate(&s);
        let _ = parse_cidr(&s);
        let _ = parse_source(&s);
    }

    #[test]
    fn ports_round_trip_and_never_wrap(n in 0u32..200_000) {
        match parse_port(&n.to_string()) {
            Ok(p) => prop_assert_eq!(u32::from(p), n),
            Err(_) => prop_assert!(n > 65535),
        }
    }

    #[test]
    fn port_ranges_expand_exactly(a in 1u16..=65535, b in 1u16..=65535) {
        let text = format!("{a}-{b}");
        let list = parse_port_list(&text);
        if a <= b {
            let ports = list.unwrap();
            prop_assert_eq!(ports.len(), usize::from(b - a) + 1);
            prop_assert_eq!(ports[0], a);
            prop_assert_eq!(*ports.last().unwrap(), b);
        } else {
            prop_assert!(list.is_err());
        }
    }

    #[test]
    fn port_lists_hold_only_valid_ports(s in "[0-9,\\-]{1,30}") {
        if let Ok(ports) = parse_port_list(&s) {
            prop_assert!(!ports.is_empty());
            prop_assert!(ports.iter().all(|&p| p >= 1));
            let mut sorted = ports.clone();
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), ports.len(), "duplicates in {:?}", s);
        }
    }

    #[test]
    fn durations_round_trip(ms in 0u64..10_000_000) {
        prop_assert_eq!(parse_duration(&format!("{ms}ms")), Ok(Duration::from_millis(ms)));
        prop_assert_eq!(parse_duration(&format!("{}", ms / 1000)), Ok(Duration::from_secs(ms / 1000)));
    }

    #[test]
    fn sizes_round_trip(n in 0u64..1_000_000, unit in 0usize..4) {
        let (suffix, shift) = [("", 0), ("K", 10), ("M", 20), ("G", 30)][unit];
        prop_assert_eq!(parse_size(&format!("{n}{suffix}")), Ok(n << shift));
    }

    #[test]
    fn cidr_blocks_contain_their_base(a in any::<[u8; 4]>(), len in 0u8..=32) {
        let net = parse_cidr(&format!("{}.{}.{}.{}/{len}", a[0], a[1], a[2], a[3])).unwrap();
        let base: std::net::IpAddr = std::net::Ipv4Addr::from(a).into();
        prop_assert!(net.contains(&base));
    }

    #[test]
    fn out_of_range_cidr_is_rejected(a in 256u32..100_000, len in 0u8..=40) {
        let text = format!("{a}.1.1.1/{len}");
        prop_assert!(parse_cidr(&text).is_err());
    }
}

/// A control connection whose peer sends `bytes` and then stays silent or
/// closes: the reader must fail within its timeout, never hang, never
/// allocate what a length prefix claims.
fn control_reads(bytes: &[u8], close: bool) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut peer = TcpStream::connect(addr).unwrap();
    let (ours, _) = listener.accept().unwrap();
    peer.write_all(bytes).unwrap();
    if close {
        drop(peer);
    } else {
        // Keep it open and silent for the reader's timeout.
        std::mem::forget(peer);
    }
    let mut ctrl = Control::new(ours, addr.to_string());
    ctrl.set_timeout(Duration::from_millis(200)).unwrap();
    let started = Instant::now();
    let greeted = ctrl.expect_magic();
    if greeted.is_ok() {
        loop {
            if ctrl.recv().is_err() {
                break;
            }
        }
    }
    started.elapsed()
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn garbage_control_peer_is_an_error_in_time(body in proptest::collection::vec(any::<u8>(), 0..64), close in any::<bool>()) {
        prop_assert!(control_reads(&body, close) < Duration::from_secs(5));
    }

    #[test]
    fn framed_garbage_after_the_greeting_is_an_error_in_time(
        len in any::<u32>(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        close in any::<bool>(),
    ) {
        // A valid greeting, then a length prefix that may claim up to 4 GiB.
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&body);
        prop_assert!(control_reads(&bytes, close) < Duration::from_secs(5));
    }
}
