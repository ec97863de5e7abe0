//! The wasmtime engine, the linker that defines what a plugin can import,
//! and the epoch clock that lets the host interrupt guest code.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store};

use crate::bindings::ProviderPlugin;
use crate::config::PluginSource;
use crate::outbound::TlsConfigs;
use crate::plugin::{LoadError, Plugin};
use crate::state::HostState;

/// How often the epoch advances; deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// One per process (or per embedding host): compiling and linking are the
/// expensive parts, and both are shared by every instance and lookup.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) tls: TlsConfigs,
    ticker: Arc<AtomicBool>,
    /// Compiled plugins by source, so instances sharing one compile it once.
    plugins: tokio::sync::Mutex<HashMap<String, Arc<Plugin>>>,
}

impl Runtime {
    pub fn new() -> wasmtime::Result<Self> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        link_granted_interfaces(&mut linker)?;
        ProviderPlugin::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |state| state)?;
        Ok(Runtime {
            ticker: start_epoch_ticker(&engine),
            engine,
            linker,
            tls: TlsConfigs::new(),
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

    pub fn engine(&self) -> &Engine {
        &self.engine
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
