//! Outbound HTTP: the policy gate, the TLS settings and the client.

mod client;
mod gate;
mod pool;
mod tls;

pub use gate::{BeforeSend, GatePolicy, OutboundGate, OutboundLog, OutboundRecord};
pub use pool::{ConnectionPool, PoolStats};
pub use tls::TlsConfigs;
