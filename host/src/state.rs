//! The data of one store: everything a single call into a plugin can reach.
//! A fresh one is built for every call, so nothing leaks between lookups.

use std::sync::Arc;

use enrichbox_indicator::Kind;
use url::Url;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::{CappedOutput, Grant, PluginLog};
use crate::outbound::OutboundGate;

/// What the plugin is told about its instance (`config` and `permissions`).
#[derive(Debug, Clone)]
pub struct InstanceView {
    pub name: String,
    pub base_url: Url,
    pub verify_ssl: bool,
    pub enabled_kinds: Vec<Kind>,
}

pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    pub(crate) gate: OutboundGate,
    pub(crate) instance: Arc<InstanceView>,
    pub(crate) grant: Grant,
    pub(crate) log: PluginLog,
    pub(crate) limits: StoreLimits,
    /// Units left for the instance; `None` is unlimited.
    pub(crate) quota_remaining: Option<u64>,
    /// Where capability uses are recorded, when auditing is on.
    pub(crate) audit: Option<crate::audit::AuditScope>,
}

impl HostState {
    pub(crate) fn audit(&self, event: &str, detail: serde_json::Value) {
        if let Some(scope) = &self.audit {
            scope.record(event, detail);
        }
    }
}

impl HostState {
    /// A store with no filesystem, no environment, no arguments, no stdin and
    /// no sockets: stdout and stderr go to capped buffers, the network only
    /// through `gate`.
    pub fn new(
        instance: Arc<InstanceView>,
        grant: Grant,
        gate: OutboundGate,
        output: &CappedOutput,
        max_memory_bytes: usize,
    ) -> Self {
        let wasi = WasiCtxBuilder::new()
            .stdout(output.clone())
            .stderr(output.clone())
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            gate,
            instance,
            grant,
            log: PluginLog::default(),
            limits: StoreLimitsBuilder::new()
                .memory_size(max_memory_bytes)
                .instances(4)
                .tables(16)
                .memories(4)
                .trap_on_grow_failure(true)
                .build(),
            quota_remaining: None,
            audit: None,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.gate,
        }
    }
}
