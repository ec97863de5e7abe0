//! Shared pieces of the end-to-end suite: the ThreatFox-compatible mock
//! server and helpers that wire the host to it.

pub mod harness;
pub mod mock;
