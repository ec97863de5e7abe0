//! A plugin that wants a raw network socket. The host links no
//! `wasi:sockets`, so this component must fail to load, and the error must
//! name the import.

#![cfg(target_arch = "wasm32")]

mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "provider-plugin" });
}

use bindings::enrichbox::enrichment::types::{
    AuthScheme, ConnectionStatus, EnrichError, Enrichment, Indicator, IndicatorKind, KindCost,
    PluginInfo,
};
use bindings::exports::enrichbox::enrichment::provider::Guest;

struct SocketImporter;

impl Guest for SocketImporter {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "socket-importer".into(),
            version: "0.0.0".into(),
            provider: "nobody".into(),
            kinds: vec![KindCost {
                kind: IndicatorKind::Ip,
                api_calls: 1,
                quota_units: 1,
            }],
            auth: AuthScheme::None,
        }
    }

    fn enrich(_: Indicator) -> Result<Enrichment, EnrichError> {
        let network = wasip2::sockets::instance_network::instance_network();
        let socket = wasip2::sockets::tcp_create_socket::create_tcp_socket(
            wasip2::sockets::network::IpAddressFamily::Ipv4,
        );
        drop((network, socket));
        Err(EnrichError::DeniedByPolicy("a socket was created".into()))
    }

    fn test_connection() -> Result<ConnectionStatus, EnrichError> {
        Ok(ConnectionStatus {
            message: String::new(),
        })
    }
}

bindings::export!(SocketImporter with_types_in bindings);
