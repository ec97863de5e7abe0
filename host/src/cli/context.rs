//! What every command needs to know: which files, and who is asking.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use enrichbox_quota::{Ledger, SystemClock};

use crate::config::{Config, DEFAULT_CONFIG_FILE};
use crate::registry::Registry;
use crate::runtime::{Runtime, RuntimeOptions};
use crate::store::{Database, Permission};

pub struct Context {
    pub config: Option<Config>,
    pub db_path: PathBuf,
    pub audit_file: PathBuf,
    pub operator: String,
    pub verbose: bool,
    /// The compiled-component cache folder; `None` when no home is known.
    pub compiled_cache: Option<PathBuf>,
}

impl Context {
    /// Loads the configuration file: an explicit path must exist; the
    /// default `./enrichbox.toml` is optional.
    pub fn new(
        config: Option<PathBuf>,
        db: Option<PathBuf>,
        audit_file: Option<PathBuf>,
        operator: Option<String>,
        verbose: bool,
        cache_dir: Option<PathBuf>,
    ) -> Result<Context> {
        let config = match config {
            Some(path) => {
                if !path.exists() {
                    anyhow::bail!(
                        "no configuration file at {} (from --config or ENRICHBOX_CONFIG)",
                        path.display()
                    );
                }
                Some(Config::load(&path).context("invalid configuration")?)
            }
            None => {
                let default = PathBuf::from(DEFAULT_CONFIG_FILE);
                if default.exists() {
                    Some(Config::load(&default).context("invalid configuration")?)
                } else {
                    None
                }
            }
        };
        let db_path = db
            .or_else(|| config.as_ref().and_then(|c| c.database.clone()))
            .unwrap_or_else(default_database);
        let audit_file = audit_file
            .or_else(|| config.as_ref().and_then(|c| c.audit_file.clone()))
            .unwrap_or_else(|| db_path.with_file_name("audit.jsonl"));
        let operator = operator
            .filter(|o| !o.trim().is_empty())
            .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "admin".into());
        Ok(Context {
            config,
            db_path,
            audit_file,
            operator,
            verbose,
            compiled_cache: cache_dir.or_else(crate::compiled::CompiledCache::default_dir),
        })
    }

    /// A runtime sized for `concurrency` lookups at once by instances that
    /// allow up to `max_memory_bytes` of plugin memory. How it was set up,
    /// when that is worth knowing (a fallback), goes to stderr.
    pub fn runtime(&self, concurrency: usize, max_memory_bytes: usize) -> Result<Arc<Runtime>> {
        let options = RuntimeOptions {
            concurrency,
            max_memory_bytes: max_memory_bytes.max(RuntimeOptions::default().max_memory_bytes),
            compiled_cache: self.compiled_cache.clone(),
        };
        let runtime = Runtime::with_options(options).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        for notice in runtime.notices() {
            eprintln!("note: {notice}");
        }
        if self.verbose {
            eprintln!("sandboxes: {}", runtime.allocator());
        }
        Ok(Arc::new(runtime))
    }

    pub fn report_compile(&self, plugin: &crate::plugin::Plugin) {
        report_compile(self.verbose, plugin);
    }

    /// A runtime for commands that load a plugin without running lookups.
    pub fn plugin_runtime(&self) -> Result<Arc<Runtime>> {
        self.runtime(1, 0)
    }

    pub fn database(&self) -> Result<Database> {
        Ok(Database::open(&self.db_path)?)
    }

    /// The database, after checking that the operator may do `doing`.
    pub fn authorized(&self, permission: Permission, doing: &str) -> Result<Database> {
        let db = self.database()?;
        db.authorize(&self.operator, permission, doing)?;
        Ok(db)
    }

    pub fn registry<'a>(&'a self, db: &'a Database) -> Registry<'a> {
        Registry {
            file: self.config.as_ref(),
            db: Some(db),
        }
    }

    /// The quota ledger, in the same database file. Reservations left by a
    /// process that died are settled first.
    pub fn ledger(&self) -> Result<Ledger> {
        let ledger = Ledger::open(&self.db_path, Arc::new(SystemClock)).with_context(|| {
            format!("cannot open the quota ledger in {}", self.db_path.display())
        })?;
        ledger
            .recover_expired()
            .context("cannot recover unfinished quota reservations")?;
        Ok(ledger)
    }
}

/// `$XDG_DATA_HOME/enrichbox/enrichbox.db`, else `~/.local/share/...`.
fn default_database() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("enrichbox").join("enrichbox.db")
}

impl Context {
    /// The result cache, in the same database file.
    pub fn cache(&self) -> Result<crate::cache::ResultCache> {
        crate::cache::ResultCache::open(&self.db_path).map_err(anyhow::Error::msg)
    }

    /// The circuit breakers, in the same database file.
    pub fn breaker(&self) -> Result<crate::breaker::Breaker> {
        crate::breaker::Breaker::open(&self.db_path).map_err(anyhow::Error::msg)
    }

    /// The audit trail the commands append to.
    pub fn audit(&self) -> Result<crate::audit::Audit> {
        use crate::audit::{Audit, AuditTarget, DatabaseSink, FileSink};
        let target = self.audit_target();
        let mut audit = Audit::default().acting_as(&self.operator);
        if matches!(target, AuditTarget::File | AuditTarget::Both) {
            let sink = FileSink::open(&self.audit_file).with_context(|| {
                format!("cannot open the audit trail {}", self.audit_file.display())
            })?;
            audit = audit.with_sink(std::sync::Arc::new(sink));
        }
        if matches!(target, AuditTarget::Database | AuditTarget::Both) {
            let sink = DatabaseSink::open(&self.db_path).map_err(anyhow::Error::msg)?;
            audit = audit.with_sink(std::sync::Arc::new(sink));
        }
        Ok(audit)
    }

    /// `audit = ...` in the configuration file, else both.
    pub fn audit_target(&self) -> crate::audit::AuditTarget {
        self.config
            .as_ref()
            .and_then(|c| c.audit)
            .unwrap_or_default()
    }
}

/// Says how a plugin's code was obtained: always when a cached copy was not
/// trusted, else with `-v`.
pub(super) fn report_compile(verbose: bool, plugin: &crate::plugin::Plugin) {
    let (note, always) = plugin.compile_note();
    if always || verbose {
        eprintln!("note: {note}");
    }
}
