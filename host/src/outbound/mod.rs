//! Outbound HTTP: the policy gate, the TLS settings and the client.

mod client;
mod gate;
mod tls;

pub use gate::{BeforeSend, GatePolicy, OutboundGate, OutboundRecord};
pub use tls::TlsConfigs;
