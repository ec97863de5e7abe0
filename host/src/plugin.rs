//! Loading a plugin component and calling it inside a fresh sandbox.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use crate::bindings::{
    ConnectionStatus, EnrichError, Enrichment, Indicator, PluginInfo, ProviderPluginPre,
};
use crate::capabilities::{CappedOutput, Grant, LogLine};
use crate::compiled::CacheUse;
use crate::config::{Limits, PluginSource};
use crate::description::check_description;
pub use crate::description::{Description, KindCost};
use crate::outbound::{GatePolicy, OutboundGate, OutboundRecord};
use crate::runtime::Runtime;
use crate::state::{HostState, InstanceView};

/// A compiled, linked plugin, ready to be instantiated many times.
pub struct Plugin {
    /// `bundled:threatfox` or the file path, for messages.
    pub source: String,
    pub sha256: String,
    pub size: usize,
    /// How the compiled-component cache served this load; `None` when the
    /// runtime has no cache.
    pub cache: Option<CacheUse>,
    pub description: Description,
    pre: ProviderPluginPre<HostState>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the plugin {path}: {message}")]
    Read { path: String, message: String },
    #[error("no bundled plugin is named `{0}` (bundled: {list})", list = crate::bundled::NAMES.join(", "))]
    UnknownBundled(String),
    #[error("{plugin} is not a valid WebAssembly component: {message}")]
    Compile { plugin: String, message: String },
    #[error("{plugin} needs something this host does not grant: {message}")]
    Unlinkable { plugin: String, message: String },
    #[error("{plugin}: describe failed: {message}")]
    Describe { plugin: String, message: String },
}

/// What a fresh sandbox costs: a store plus instantiation, then one call.
#[derive(Debug, Clone, Copy)]
pub struct SandboxTiming {
    pub instantiate: Duration,
    pub describe: Duration,
}

/// How a call into the sandbox ended, when it did not return normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxFailure {
    Timeout(Duration),
    MemoryLimit(usize),
    /// The guest trapped (panic, stack overflow, out-of-bounds...).
    Trap(String),
}

impl std::fmt::Display for SandboxFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SandboxFailure::Timeout(t) => write!(
                f,
                "the plugin did not finish within {:.1}s",
                t.as_secs_f64()
            ),
            SandboxFailure::MemoryLimit(bytes) => {
                write!(
                    f,
                    "the plugin tried to use more than {} MiB of memory",
                    bytes >> 20
                )
            }
            SandboxFailure::Trap(why) => write!(f, "the plugin crashed: {why}"),
        }
    }
}

pub(crate) enum Call {
    Describe,
    Enrich(Indicator),
    TestConnection,
}

pub(crate) enum Returned {
    Describe(PluginInfo),
    Enrich(Result<Enrichment, EnrichError>),
    TestConnection(Result<ConnectionStatus, EnrichError>),
}

/// What one call produced, besides its return value: every outbound request
/// and everything the plugin logged or printed.
pub(crate) struct CallReport {
    pub result: Result<Returned, SandboxFailure>,
    pub requests: Vec<OutboundRecord>,
    pub log: Vec<LogLine>,
    pub output: String,
    /// Bytes of plugin output over the cap, thrown away.
    pub discarded_output: u64,
}

/// Everything a call's sandbox is given.
pub(crate) struct CallSpec {
    pub instance: Arc<InstanceView>,
    pub grant: Grant,
    pub policy: GatePolicy,
    pub limits: Limits,
    pub quota_remaining: Option<u64>,
    pub audit: Option<crate::audit::AuditScope>,
}

/// The most plugin stdout/stderr kept per call.
const MAX_OUTPUT_BYTES: usize = 64 * 1024;

impl Plugin {
    pub async fn load(runtime: &Runtime, source: &PluginSource) -> Result<Plugin, LoadError> {
        match source {
            PluginSource::Bundled(name) => {
                let bytes = crate::bundled::bytes(name)
                    .ok_or_else(|| LoadError::UnknownBundled(name.clone()))?;
                Plugin::from_bytes(runtime, &format!("bundled:{name}"), bytes).await
            }
            PluginSource::File(path) => Plugin::from_file(runtime, path).await,
        }
    }

    pub async fn from_file(runtime: &Runtime, path: &Path) -> Result<Plugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| LoadError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Plugin::from_bytes(runtime, &path.display().to_string(), &bytes).await
    }

    /// Compiles, links and asks the plugin to describe itself, in a sandbox
    /// with no network.
    pub async fn from_bytes(
        runtime: &Runtime,
        source: &str,
        bytes: &[u8],
    ) -> Result<Plugin, LoadError> {
        if !bytes.starts_with(b"\0asm") {
            return Err(LoadError::Compile {
                plugin: source.to_string(),
                message: "it does not start with \\0asm, so it is not WebAssembly at all".into(),
            });
        }
        let sha256 = sha256_hex(bytes);
        let compile_failed = |e: wasmtime::Error| LoadError::Compile {
            plugin: source.to_string(),
            message: format!("{e:#}"),
        };
        let (component, cache) = match &runtime.compiled {
            Some(cache) => {
                let (component, used) = cache
                    .load_or_compile(&runtime.engine, bytes, &sha256)
                    .map_err(compile_failed)?;
                (component, Some(used))
            }
            None => (
                Component::new(&runtime.engine, bytes).map_err(compile_failed)?,
                None,
            ),
        };
        let instance_pre =
            runtime
                .linker
                .instantiate_pre(&component)
                .map_err(|e| LoadError::Unlinkable {
                    plugin: source.to_string(),
                    message: format!("{e:#}"),
                })?;
        let pre = ProviderPluginPre::new(instance_pre).map_err(|e| LoadError::Unlinkable {
            plugin: source.to_string(),
            message: format!("it does not export the enrichbox provider interface: {e:#}"),
        })?;
        let mut plugin = Plugin {
            source: source.to_string(),
            sha256,
            size: bytes.len(),
            cache,
            description: Description {
                name: String::new(),
                version: String::new(),
                provider: String::new(),
                kinds: Vec::new(),
                auth_header: None,
            },
            pre,
        };
        let describe_failed = |message: String| LoadError::Describe {
            plugin: source.to_string(),
            message,
        };
        let spec = no_network_spec(Duration::from_secs(5));
        let report = plugin.call(runtime, spec, Call::Describe).await;
        let info = match report.result {
            Ok(Returned::Describe(info)) => info,
            Ok(_) => unreachable!("describe returns a description"),
            Err(failure) => return Err(describe_failed(failure.to_string())),
        };
        plugin.description = check_description(info).map_err(describe_failed)?;
        Ok(plugin)
    }

    /// Instantiates the plugin in a fresh store with no network and calls
    /// `describe`, timing each step: the sandbox's fixed cost per call,
    /// for benchmarks.
    pub async fn time_fresh_sandbox(
        &self,
        runtime: &Runtime,
    ) -> Result<SandboxTiming, SandboxFailure> {
        let spec = no_network_spec(Limits::default().timeout);
        let limits = spec.limits;
        let _slot = runtime.sandbox_slot().await;
        let output = CappedOutput::new(MAX_OUTPUT_BYTES);
        let (state, _) = sandbox_state(runtime, spec, &output);
        let trap = |e: wasmtime::Error| classify_trap(&e, limits.timeout, limits.max_memory_bytes);
        let started = std::time::Instant::now();
        let mut store = runtime.store(state, limits.timeout);
        let bindings = self.pre.instantiate_async(&mut store).await.map_err(trap)?;
        let instantiated = started.elapsed();
        bindings
            .enrichbox_enrichment_provider()
            .call_describe(&mut store)
            .await
            .map_err(trap)?;
        Ok(SandboxTiming {
            instantiate: instantiated,
            describe: started.elapsed() - instantiated,
        })
    }

    /// Runs `call` in a fresh store built from `spec`.
    pub(crate) async fn call(&self, runtime: &Runtime, spec: CallSpec, call: Call) -> CallReport {
        let _slot = runtime.sandbox_slot().await;
        let output = CappedOutput::new(MAX_OUTPUT_BYTES);
        let limits = spec.limits;
        let (state, requests) = sandbox_state(runtime, spec, &output);
        let timeout = limits.timeout;
        let mut store = runtime.store(state, timeout);
        let run = async {
            let bindings = self.pre.instantiate_async(&mut store).await?;
            let provider = bindings.enrichbox_enrichment_provider();
            Ok::<_, wasmtime::Error>(match &call {
                Call::Describe => Returned::Describe(provider.call_describe(&mut store).await?),
                Call::Enrich(indicator) => {
                    Returned::Enrich(provider.call_enrich(&mut store, indicator).await?)
                }
                Call::TestConnection => {
                    Returned::TestConnection(provider.call_test_connection(&mut store).await?)
                }
            })
        };
        // Epochs stop guest code; this stops a call parked in the host.
        let result = match tokio::time::timeout(timeout, run).await {
            Err(_) => Err(SandboxFailure::Timeout(timeout)),
            Ok(Ok(returned)) => Ok(returned),
            Ok(Err(error)) => Err(classify_trap(&error, timeout, limits.max_memory_bytes)),
        };
        let log = std::mem::take(&mut store.data_mut().log.lines);
        drop(store);
        let (kept, discarded) = output.take();
        let discarded_output = discarded;
        let mut printed = String::from_utf8_lossy(&kept).into_owned();
        if discarded > 0 {
            printed.push_str(&format!(
                "\n[{discarded} more bytes of plugin output discarded]"
            ));
        }
        let requests = std::mem::take(&mut *requests.lock().expect("outbound log poisoned"));
        CallReport {
            result,
            requests,
            log,
            output: printed,
            discarded_output,
        }
    }
}

/// The host state of one sandbox built from `spec`, and the log its
/// outbound gate fills.
fn sandbox_state(
    runtime: &Runtime,
    spec: CallSpec,
    output: &CappedOutput,
) -> (HostState, crate::outbound::OutboundLog) {
    let requests: crate::outbound::OutboundLog = Arc::new(Mutex::new(Vec::new()));
    let gate = OutboundGate::new(
        spec.policy,
        runtime.tls.clone(),
        runtime.pool.clone(),
        requests.clone(),
    );
    let mut state = HostState::new(
        spec.instance,
        spec.grant,
        gate,
        output,
        spec.limits.max_memory_bytes,
    );
    state.quota_remaining = spec.quota_remaining;
    state.audit = spec.audit;
    (state, requests)
}

impl Plugin {
    /// How this plugin's compiled code was obtained, for `-v`; and whether
    /// that is worth saying even without it (an untrusted entry replaced).
    pub fn compile_note(&self) -> (String, bool) {
        match &self.cache {
            Some(CacheUse::Hit) => (
                format!("{}: compiled code loaded from the cache", self.source),
                false,
            ),
            Some(CacheUse::Miss) => (format!("{}: compiled and cached", self.source), false),
            Some(CacheUse::Replaced(why)) => (
                format!(
                    "{}: compiled again; the cached copy was not trusted and is replaced ({why})",
                    self.source
                ),
                true,
            ),
            None => (format!("{}: compiled (no cache)", self.source), false),
        }
    }
}

/// A call that may do nothing but compute: no network, no grant.
fn no_network_spec(timeout: Duration) -> CallSpec {
    CallSpec {
        instance: Arc::new(InstanceView {
            name: "describe".into(),
            base_url: url::Url::parse("http://describe.invalid/").expect("static URL"),
            verify_ssl: true,
            enabled_kinds: Vec::new(),
        }),
        grant: Grant::Nothing,
        policy: GatePolicy::no_network(),
        limits: Limits {
            timeout,
            ..Limits::default()
        },
        quota_remaining: None,
        audit: None,
    }
}

fn classify_trap(error: &wasmtime::Error, timeout: Duration, max_memory: usize) -> SandboxFailure {
    use wasmtime::Trap;
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return match *trap {
            Trap::Interrupt => SandboxFailure::Timeout(timeout),
            Trap::StackOverflow => SandboxFailure::Trap("stack overflow".into()),
            Trap::UnreachableCodeReached => {
                SandboxFailure::Trap("the plugin panicked (unreachable instruction)".into())
            }
            other => SandboxFailure::Trap(other.to_string()),
        };
    }
    let text = format!("{error:#}");
    if text.contains("growing memory") || text.contains("memory minimum size") {
        return SandboxFailure::MemoryLimit(max_memory);
    }
    // The useful part is the first line that is not wasmtime's preamble.
    let reason = text
        .lines()
        .map(str::trim)
        .find(|l| {
            !l.is_empty()
                && !l.starts_with("error while executing")
                && !l.starts_with("wasm backtrace")
        })
        .unwrap_or("unknown trap");
    SandboxFailure::Trap(reason.to_string())
}

/// The hex SHA-256 of a component, as pinned by `plugin_sha256`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
