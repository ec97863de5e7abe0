//! The abuse.ch ThreatFox provider, as an enrichbox plugin component.
//!
//! Everything that touches the host lives in `component` and `transport`;
//! the ThreatFox protocol itself (requests, envelopes, records, matching) is
//! plain Rust so it is unit-tested natively.

pub(crate) mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "provider-plugin",
    });
}

mod component;
mod matching;
mod protocol;
mod record;
mod transport;

pub use protocol::{Query, ResponseError, classify_http_status, parse_envelope};

/// The permalink ThreatFox gives every IOC.
pub const PERMALINK_PREFIX: &str = "https://threatfox.abuse.ch/ioc/";
