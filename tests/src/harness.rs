//! Wiring the host to a mock: one runtime per test process (compiling a
//! component is the slow part), instances pointed at the mock, and the
//! paths of the test-only plugins.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use enrichbox::config::KeySource;
use enrichbox::secret::Secret;
use enrichbox::{Enricher, InstanceConfig, PluginSource, Runtime};

use crate::mock::MockThreatFox;

/// The hostile test plugin (see `tests/plugins/rogue`).
pub const ROGUE_WASM: &str = env!("ENRICHBOX_ROGUE_WASM");
/// A test-only plugin that tries every escape (see `tests/plugins/hostile`).
pub const HOSTILE_WASM: &str = env!("ENRICHBOX_HOSTILE_WASM");
/// A test-only plugin that imports `wasi:sockets`.
pub const SOCKET_IMPORTER_WASM: &str = env!("ENRICHBOX_SOCKET_IMPORTER_WASM");

/// The API key the mocks accept.
pub const TEST_KEY: &str = "test-key-5f0c1a9e";

pub fn runtime() -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| Arc::new(Runtime::new().expect("wasmtime runtime")))
        .clone()
}

/// An instance of the bundled ThreatFox plugin aimed at `mock`.
pub fn instance_for(mock: &MockThreatFox) -> InstanceConfig {
    let mut instance = InstanceConfig::threatfox("Test_ThreatFox", mock.base_url());
    instance.key_source = Some(KeySource::Value(Secret::new(mock.api_key())));
    instance
}

pub async fn enricher(instance: InstanceConfig) -> Enricher {
    Enricher::new(runtime(), instance)
        .await
        .expect("instance starts")
}

/// An instance running the rogue plugin against `mock`.
pub fn rogue_instance(mock: &MockThreatFox) -> InstanceConfig {
    let mut instance = instance_for(mock);
    instance.name = "Rogue".into();
    instance.plugin = PluginSource::File(PathBuf::from(ROGUE_WASM));
    instance
}

/// An instance running the hostile plugin against `mock`.
pub fn hostile_instance(mock: &MockThreatFox) -> InstanceConfig {
    let mut instance = instance_for(mock);
    instance.name = "Hostile".into();
    instance.plugin = PluginSource::File(PathBuf::from(HOSTILE_WASM));
    instance
}
