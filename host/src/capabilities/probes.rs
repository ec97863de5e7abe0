//! The WASI interfaces Rust's standard library imports but a plugin is never
//! granted: preopened directories and the environment. The host answers
//! "none" itself, so the answer cannot depend on a `WasiCtx` setting, and
//! records every attempt in the audit trail.

use wasmtime::component::Resource;
use wasmtime_wasi::filesystem::Descriptor;
use wasmtime_wasi::p2::bindings::cli::environment;
use wasmtime_wasi::p2::bindings::filesystem::preopens;

use crate::state::HostState;

impl preopens::Host for HostState {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        self.audit(
            "filesystem-probe",
            serde_json::json!({"granted": false, "directories": 0}),
        );
        Ok(Vec::new())
    }
}

impl environment::Host for HostState {
    fn get_environment(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        self.audit(
            "environment-probe",
            serde_json::json!({"granted": false, "variables": 0}),
        );
        Ok(Vec::new())
    }

    fn get_arguments(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn initial_cwd(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(None)
    }
}
