//! Host-side bindings for the `enrichbox:enrichment` contract.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "provider-plugin",
    // Exports run guest code that may wait on outbound HTTP: async.
    // Imports only read host state: plain functions.
    exports: { default: async },
});

pub use self::enrichbox::enrichment::types::{
    AuthScheme, ConnectionStatus, EnrichError, Enrichment, FileHash, Finding, HashAlgorithm,
    Indicator, IndicatorKind, KindCost, PluginInfo, Relation, UpstreamFailure, Verdict,
};
