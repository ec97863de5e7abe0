//! The contract's host interfaces, one module each. Every one only reads
//! what the host decided for the instance; none lets the plugin change it.

mod config;
mod log;
mod output;
mod permissions;
mod probes;
mod quota;

// The shared types interface has no functions, only a marker trait.
impl crate::bindings::enrichbox::enrichment::types::Host for crate::state::HostState {}

pub use log::{LogLine, PluginLog};
pub use output::CappedOutput;
pub use permissions::Grant;
