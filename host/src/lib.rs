//! enrichbox: run threat-intelligence enrichment plugins as sandboxed
//! WebAssembly components.
//!
//! An embedding platform builds one [`Runtime`], an [`Enricher`] per
//! configured instance, and calls [`Enricher::lookup`]. The plugin can reach
//! nothing but what the host grants: the instance's settings, a log, and
//! HTTP requests to the instance's own origin, to which the host adds the
//! API key itself.

pub mod audit;
pub mod batch;
pub mod bindings;
pub mod breaker;
mod bundled;
pub mod cache;
mod capabilities;
pub mod cli;
mod clock;
pub mod compiled;
pub mod config;
mod convert;
mod description;
pub mod inspect;
mod lookup;
mod outbound;
pub mod outcome;
mod plugin;
pub mod policy;
pub mod registry;
pub mod render;
mod runtime;
pub mod secret;
mod sqlite;
mod state;
pub mod stix;
pub mod store;

pub use config::{Config, InstanceConfig, Limits, PluginSource};
pub use lookup::{ConnectionReport, Enricher, InstanceError};
pub use outbound::OutboundRecord;
pub use outcome::{ErrorKind, FindingOut, LookupError, LookupOutcome};
pub use plugin::{Description, KindCost, LoadError, Plugin, SandboxTiming};
pub use runtime::{Allocator, Runtime, RuntimeOptions};

/// The contract version this host implements.
pub const CONTRACT: &str = "enrichbox:enrichment@0.1.0";

/// Prints a warning to stderr once per process, however often it is raised.
pub fn warn_once(message: &str) {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if seen
        .lock()
        .expect("warnings poisoned")
        .insert(message.to_string())
    {
        eprintln!("warning: {message}");
    }
}
