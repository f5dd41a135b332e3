//! sonda: network diagnostics in the tradition of netcat.
//!
//! `cli` is what the user typed; `cmd` turns it into engine calls; `engine`
//! does the socket work; `report` and `error` are how results reach the user.

// Hand-written FFI calls live in engine/sys.rs alone (DESIGN,
// Architecture); the compiler holds every other module to that.
#![deny(unsafe_code)]

pub mod bench;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod docs;
pub mod engine;
pub mod error;
pub mod parse;
pub mod report;
pub mod signals;
