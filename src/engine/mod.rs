//! The socket engine every subcommand shares. Nothing here prints; failures
//! come back as [`crate::error::Error`] values naming the operation and the
//! address.

pub mod addr;
pub mod buf;
pub mod connect;
pub mod diag;
pub mod dump;
pub mod forward;
pub mod hub;
pub mod icmp;
pub mod multicast;
pub mod poll;
pub mod proxy;
pub mod race;
pub mod relay;
pub mod scan;
pub mod socket;
pub mod splice;
pub mod stdio;
// The one module allowed raw libc calls: those no maintained crate wraps.
#[allow(unsafe_code)]
pub mod sys;
pub mod tls;
pub mod transport;
pub mod udp;
