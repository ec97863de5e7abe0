//! The wasmtime engine, the linker that defines what a plugin can import,
//! and the epoch clock that lets the host interrupt guest code.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::bindings::ProviderPlugin;
use crate::compiled::CompiledCache;
use crate::config::PluginSource;
use crate::outbound::{ConnectionPool, PoolStats, TlsConfigs};
use crate::plugin::{LoadError, Plugin};
use crate::state::HostState;

/// How often the epoch advances; deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What a runtime is sized for. The defaults suit the command line.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Lookups expected in flight at once; sizes the instance pool.
    pub concurrency: usize,
    /// The most linear memory any instance lets its plugin grow to.
    pub max_memory_bytes: usize,
    /// Where compiled components are kept between processes; `None`
    /// compiles every time.
    pub compiled_cache: Option<PathBuf>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            concurrency: 8,
            max_memory_bytes: crate::config::Limits::default().max_memory_bytes,
            compiled_cache: None,
        }
    }
}

/// One per process (or per embedding host): compiling and linking are the
/// expensive parts, and both are shared by every instance and lookup.
pub struct Runtime {
    pub(crate) engine: Engine,
    allocator: Allocator,
    /// One permit per pooled sandbox, so a burst waits for a slot instead
    /// of failing to instantiate. `None` with on-demand allocation.
    slots: Option<Arc<Semaphore>>,
    max_memory_bytes: usize,
    pub(crate) compiled: Option<CompiledCache>,
    notices: Vec<String>,
    pub(crate) linker: Linker<HostState>,
    pub(crate) tls: TlsConfigs,
    /// Outbound connections kept alive between lookups, per origin.
    pub(crate) pool: ConnectionPool,
    ticker: Arc<AtomicBool>,
    /// Compiled plugins by source, so instances sharing one compile it once.
    plugins: tokio::sync::Mutex<HashMap<String, Arc<Plugin>>>,
}

/// How sandboxes get their memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allocator {
    /// Slots reserved up front and reused: instantiation maps nothing.
    Pooling { slots: u32 },
    /// Memory mapped per instantiation; `reason` says why not pooling.
    OnDemand { reason: String },
}

impl std::fmt::Display for Allocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Allocator::Pooling { slots } => write!(f, "pooling ({slots} sandboxes)"),
            Allocator::OnDemand { reason } => write!(f, "on demand ({reason})"),
        }
    }
}

/// Sandboxes beyond the expected concurrency: `describe` at load time,
/// connection tests and embedders' own calls.
const SPARE_SLOTS: usize = 4;
/// Core instances, memories and tables a provider component may have; a
/// Rust component uses a handful of each.
const CORE_INSTANCES_PER_SANDBOX: u32 = 32;
const MEMORIES_PER_SANDBOX: u32 = 4;
const TABLES_PER_SANDBOX: u32 = 16;
/// Memory a pooled sandbox keeps mapped between lookups: more than the
/// ThreatFox plugin dirties in one, so its slots never page-fault again.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;

impl Runtime {
    pub fn new() -> wasmtime::Result<Self> {
        Self::with_options(RuntimeOptions::default())
    }

    /// A runtime with a pooling allocator sized from `options`, or, where
    /// the pool's address space cannot be reserved, on-demand allocation
    /// (said in [`Runtime::notices`]).
    pub fn with_options(options: RuntimeOptions) -> wasmtime::Result<Self> {
        let slots = options.concurrency.max(1).saturating_add(SPARE_SLOTS);
        let slots = u32::try_from(slots).unwrap_or(u32::MAX);
        let mut notices = Vec::new();
        let (engine, allocator) =
            match Engine::new(&engine_config(Some((slots, options.max_memory_bytes)))) {
                Ok(engine) => (engine, Allocator::Pooling { slots }),
                Err(e) => {
                    let reason =
                        format!("the pool for {slots} sandboxes could not be reserved: {e:#}");
                    notices.push(format!(
                        "falling back to on-demand sandbox allocation: {reason}"
                    ));
                    let engine = Engine::new(&engine_config(None))?;
                    (engine, Allocator::OnDemand { reason })
                }
            };
        let mut linker = Linker::new(&engine);
        link_granted_interfaces(&mut linker)?;
        ProviderPlugin::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |state| state)?;
        let compiled = match &options.compiled_cache {
            None => None,
            Some(dir) => match CompiledCache::open(dir) {
                Ok(cache) => Some(cache),
                Err(e) => {
                    notices.push(format!("compiling without a cache: {e}"));
                    None
                }
            },
        };
        let semaphore = match allocator {
            Allocator::Pooling { slots } => Some(Arc::new(Semaphore::new(slots as usize))),
            Allocator::OnDemand { .. } => None,
        };
        Ok(Runtime {
            ticker: start_epoch_ticker(&engine),
            allocator,
            slots: semaphore,
            max_memory_bytes: options.max_memory_bytes,
            compiled,
            notices,
            engine,
            linker,
            tls: TlsConfigs::new(),
            pool: ConnectionPool::new(),
            plugins: Default::default(),
        })
    }

    /// The plugin for `source`, compiled on first use.
    pub async fn plugin(&self, source: &PluginSource) -> Result<Arc<Plugin>, LoadError> {
        let key = match source {
            PluginSource::Bundled(name) => format!("bundled:{name}"),
            PluginSource::File(path) => format!("file:{}", path.display()),
        };
        let mut plugins = self.plugins.lock().await;
        if let Some(plugin) = plugins.get(&key) {
            return Ok(plugin.clone());
        }
        let plugin = Arc::new(Plugin::load(self, source).await?);
        plugins.insert(key, plugin.clone());
        Ok(plugin)
    }

    /// Connections opened and reused by every lookup of this runtime.
    pub fn connection_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn allocator(&self) -> &Allocator {
        &self.allocator
    }

    /// Things the operator should know about how this runtime was set up
    /// (a fallback taken, a cache not used). The command line prints them.
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// The most memory a sandbox of this runtime can be given.
    pub fn max_memory_bytes(&self) -> usize {
        self.max_memory_bytes
    }

    /// Waits for a free sandbox slot; the slot is held until the permit
    /// is dropped.
    pub(crate) async fn sandbox_slot(&self) -> Option<OwnedSemaphorePermit> {
        let slots = self.slots.as_ref()?;
        slots.clone().acquire_owned().await.ok()
    }

    /// A store for one call, interrupted after `timeout`.
    pub(crate) fn store(&self, state: HostState, timeout: Duration) -> Store<HostState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        let ticks = (timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        store
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.store(true, Ordering::Relaxed);
    }
}

/// The engine's settings; `pool` is (sandboxes, memory per sandbox).
fn engine_config(pool: Option<(u32, usize)>) -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    if let Some((slots, max_memory)) = pool {
        let mut pooling = wasmtime::PoolingAllocationConfig::new();
        pooling
            .total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_SANDBOX))
            .max_core_instances_per_component(CORE_INSTANCES_PER_SANDBOX)
            .total_memories(slots.saturating_mul(MEMORIES_PER_SANDBOX))
            .max_memories_per_component(MEMORIES_PER_SANDBOX)
            .total_tables(slots.saturating_mul(TABLES_PER_SANDBOX))
            .max_tables_per_component(TABLES_PER_SANDBOX)
            .total_stacks(slots)
            .max_memory_size(max_memory)
            // Reset a returned sandbox's memory by rewriting the pages it
            // dirtied (found with PAGEMAP_SCAN where the kernel has it)
            // instead of unmapping them: unmapping sent a TLB shootdown to
            // every core and made the next lookup fault the pages back in.
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES / 16)
            .async_stack_keep_resident(KEEP_RESIDENT_BYTES / 16)
            .pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
    }
    config
}

fn start_epoch_ticker(engine: &Engine) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let weak = engine.weak();
    let stopped = stop.clone();
    std::thread::Builder::new()
        .name("enrichbox-epoch".into())
        .spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .expect("cannot start the epoch thread");
    stop
}

/// The WASI a Rust plugin's standard library needs, and `wasi:http`. No
/// sockets and no name lookup are linked at all, so a component importing
/// them fails to load; the filesystem is linked with no preopened folder and
/// the environment is empty, so there is nothing to reach through them.
fn link_granted_interfaces(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::p2::bindings::{cli, filesystem, random};
    use wasmtime_wasi::random::{WasiRandom, WasiRandomView};

    wasmtime_wasi::p2::add_to_linker_proxy_interfaces_async(linker)?;
    let l = linker;
    cli::environment::add_to_linker::<HostState, HasSelf<HostState>>(l, |state| state)?;
    cli::exit::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    random::insecure::add_to_linker::<HostState, WasiRandom>(l, HostState::random)?;
    random::insecure_seed::add_to_linker::<HostState, WasiRandom>(l, HostState::random)?;
    filesystem::types::add_to_linker::<HostState, WasiFilesystem>(l, HostState::filesystem)?;
    filesystem::preopens::add_to_linker::<HostState, HasSelf<HostState>>(l, |state| state)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(l)?;
    Ok(())
}
