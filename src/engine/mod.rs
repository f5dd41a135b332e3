//! The socket engine every subcommand shares. Nothing here prints; failures
//! come back as [`crate::error::Error`] values naming the operation and the
//! address.

pub mod addr;
pub mod connect;
pub mod diag;
pub mod hub;
pub mod icmp;
pub mod poll;
pub mod relay;
pub mod scan;
pub mod socket;
pub mod splice;
pub mod stdio;
pub mod sys;
pub mod udp;
pub mod unix_name;
