//! Running lookups for one instance: detect, check, sandbox, report.

use std::sync::Arc;

use enrichbox_indicator::{Indicator, Kind, detect, parse_as};
use http::HeaderName;
use tokio::time::Instant;

use enrichbox_quota::Ledger;
use serde_json::json;

mod accounting;
mod contract;
mod report;
mod retry;
mod sandbox;

use report::record_call;
use retry::{MAX_ATTEMPTS, MIN_ATTEMPT_TIME, retry_wait};

use crate::audit::{Audit, AuditScope};
use crate::breaker::Breaker;
use crate::cache::ResultCache;

use crate::capabilities::Grant;
use crate::config::InstanceConfig;
use crate::convert::wit_indicator;
use crate::outcome::{ErrorKind, LookupError, LookupOutcome};
use crate::plugin::{Call, Plugin};
use crate::runtime::Runtime;
use crate::secret::Secret;
use crate::state::InstanceView;

/// Why an instance cannot run at all (as opposed to one lookup failing).
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error(transparent)]
    Load(#[from] crate::plugin::LoadError),
    #[error("{0}")]
    Config(String),
}

/// A ready instance: plugin loaded, settings checked, secret in hand.
pub struct Enricher {
    runtime: Arc<Runtime>,
    plugin: Arc<Plugin>,
    config: InstanceConfig,
    view: Arc<InstanceView>,
    credential: Option<(HeaderName, Secret)>,
    /// Without a ledger nothing is counted (embedders that meter elsewhere).
    ledger: Option<Ledger>,
    audit: Audit,
    cache: Option<ResultCache>,
    /// Digest of what cached results depend on (plugin, base URL, key).
    cache_digest: String,
    /// Skip cached results (they are still refreshed).
    refresh: bool,
    breaker: Option<Breaker>,
    /// Lookups in a row whose key the provider rejected. After a few, the
    /// key will not be better on the next one either, so the rest of the
    /// run spends no request or quota on it (one 403 may be a passing
    /// firewall rule; three are not).
    key_rejections: std::sync::atomic::AtomicU32,
}

const KEY_REJECTIONS_TO_STOP: u32 = 3;

/// The result of `test-connection`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionReport {
    pub instance: String,
    pub ok: bool,
    pub message: String,
    pub error: Option<LookupError>,
}

impl Enricher {
    pub async fn new(
        runtime: Arc<Runtime>,
        config: InstanceConfig,
    ) -> Result<Enricher, InstanceError> {
        if config.limits.max_memory_bytes > runtime.max_memory_bytes() {
            return Err(InstanceError::Config(format!(
                "instance `{}` lets its plugin use {} MiB of memory, but this runtime's sandboxes hold at most {} MiB; create the runtime with RuntimeOptions::max_memory_bytes at least as large",
                config.name,
                config.limits.max_memory_bytes >> 20,
                runtime.max_memory_bytes() >> 20
            )));
        }
        let plugin = runtime.plugin(&config.plugin).await?;
        if let Some(pinned) = &config.plugin_sha256
            && *pinned != plugin.sha256
        {
            return Err(InstanceError::Config(format!(
                "instance `{}`: the plugin {} has SHA-256 {}, but plugin_sha256 pins {pinned}; refusing to load it",
                config.name, plugin.source, plugin.sha256
            )));
        }
        let supported = plugin.description.supported_kinds();
        let enabled_kinds = match &config.enabled_kinds {
            None => supported.clone(),
            Some(kinds) => {
                if let Some(unsupported) = kinds.iter().find(|k| !supported.contains(k)) {
                    return Err(InstanceError::Config(format!(
                        "instance `{}`: enabled_kinds lists `{unsupported}`, which the plugin {} does not support (it supports: {})",
                        config.name,
                        plugin.description.name,
                        supported
                            .iter()
                            .map(|k| k.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                kinds.clone()
            }
        };
        let credential = match &plugin.description.auth_header {
            None => None,
            Some(header) => {
                let secret = config.resolve_secret().map_err(InstanceError::Config)?.ok_or_else(|| {
                    InstanceError::Config(format!(
                        "instance `{}`: the plugin authenticates with the `{header}` header but no API key source is set",
                        config.name
                    ))
                })?;
                let name = HeaderName::from_bytes(header.as_bytes())
                    .expect("checked when the plugin loaded");
                Some((name, secret))
            }
        };
        if !config.verify_ssl {
            crate::warn_once(&format!(
                "instance `{}` has verify_ssl = false: TLS certificates of {} are NOT checked",
                config.name,
                config.base_url.host_str().unwrap_or_default()
            ));
        }
        let view = Arc::new(InstanceView {
            name: config.name.clone(),
            base_url: config.base_url.clone(),
            verify_ssl: config.verify_ssl,
            enabled_kinds,
        });
        Ok(Enricher {
            runtime,
            plugin,
            config,
            view,
            credential,
            ledger: None,
            audit: Audit::default(),
            cache: None,
            cache_digest: String::new(),
            refresh: false,
            breaker: None,
            key_rejections: Default::default(),
        })
    }

    /// Pause the instance after a run of upstream failures (see `breaker`).
    pub fn with_breaker(mut self, breaker: Breaker) -> Enricher {
        self.breaker = Some(breaker);
        self
    }

    /// Serve repeated lookups from `cache` within the instance's TTL; with
    /// `refresh`, always ask the provider (and update the cache).
    pub fn with_cache(mut self, cache: ResultCache, refresh: bool) -> Enricher {
        self.cache_digest = crate::cache::config_digest(
            &self.plugin.sha256,
            self.config.base_url.as_str(),
            self.credential.as_ref().map(|(_, s)| s.expose()),
        );
        self.cache = Some(cache);
        self.refresh = refresh;
        self
    }

    /// Record every capability use of this instance's lookups in `audit`,
    /// starting with the plugin load.
    pub fn with_audit(mut self, audit: Audit) -> Enricher {
        self.audit = audit;
        self.scope().record(
            "plugin-load",
            json!({"source": self.plugin.source, "sha256": self.plugin.sha256, "size": self.plugin.size,
                   "plugin": self.plugin.description.name, "version": self.plugin.description.version}),
        );
        self
    }

    /// Reserve, count and settle quota in `ledger` for every lookup.
    pub fn with_ledger(mut self, ledger: Ledger) -> Enricher {
        self.ledger = Some(ledger);
        self
    }

    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    pub fn instance(&self) -> &InstanceConfig {
        &self.config
    }

    /// Looks one input up. Never panics and never returns an empty success
    /// for a failure: every problem is in `error`.
    pub async fn lookup(&self, input: &str, kind: Option<Kind>) -> LookupOutcome {
        let scope = self.scope();
        scope.record(
            "lookup-start",
            json!({"input": input, "kind": kind.map(|k| k.as_str())}),
        );
        let mut outcome = LookupOutcome::empty(
            input.trim(),
            kind.map(|k| k.to_string()),
            &self.config.name,
            &self.plugin.description.provider,
        );
        outcome.lookup_id = scope.lookup_id().to_string();
        self.run_lookup(input, kind, &scope, &mut outcome).await;
        scope.record(
            "lookup-end",
            json!({
                "indicator": outcome.indicator,
                "verdict": outcome.verdict,
                "findings": outcome.findings.len(),
                "error": outcome.error.as_ref().map(|e| e.kind.as_str()),
                "message": outcome.error.as_ref().map(|e| e.message.as_str()),
                "units_charged": outcome.units_charged,
            }),
        );
        outcome
    }

    async fn run_lookup(
        &self,
        input: &str,
        kind: Option<Kind>,
        scope: &AuditScope,
        outcome: &mut LookupOutcome,
    ) {
        let parsed = match kind {
            Some(kind) => parse_as(kind, input),
            None => detect(input),
        };
        let indicator = match parsed {
            Ok(indicator) => indicator,
            Err(e) => {
                outcome.error = Some(LookupError::new(ErrorKind::InvalidIndicator, e.to_string()));
                return;
            }
        };
        outcome.indicator = indicator.value();
        outcome.kind = Some(indicator.kind().to_string());
        let admitted = self.admit(&indicator);
        scope.record(
            "permission-check",
            json!({"kind": indicator.kind().as_str(), "granted": admitted.is_ok(), "by": "host"}),
        );
        if let Err(error) = admitted {
            outcome.error = Some(error);
            return;
        }
        if let Some(cached) = self.cached(&outcome.indicator) {
            scope.record(
                "cache-hit",
                json!({"age_seconds": cached.cache_age_seconds}),
            );
            let lookup_id = std::mem::take(&mut outcome.lookup_id);
            *outcome = cached;
            outcome.lookup_id = lookup_id;
            return;
        }
        if self
            .key_rejections
            .load(std::sync::atomic::Ordering::Relaxed)
            >= KEY_REJECTIONS_TO_STOP
        {
            outcome.error = Some(LookupError::new(
                ErrorKind::CredentialsRejected,
                format!(
                    "not sent: the provider rejected the API key of `{}` {KEY_REJECTIONS_TO_STOP} times in a row in this run; fix the key and run again",
                    self.config.name
                ),
            ));
            return;
        }
        let trial = match self.admit_by_breaker(scope) {
            Ok(trial) => trial,
            Err(error) => {
                outcome.error = Some(error);
                return;
            }
        };
        let cost = self
            .plugin
            .description
            .cost(indicator.kind())
            .expect("admit checked support");
        let started = Instant::now();
        let budget = self.config.limits.timeout;
        for attempt in 1..=MAX_ATTEMPTS {
            let remaining = budget.saturating_sub(started.elapsed());
            self.attempt(&indicator, cost, scope, outcome, remaining)
                .await;
            let Some(wait) = retry_wait(outcome.error.as_ref(), attempt) else {
                break;
            };
            let remaining = budget.saturating_sub(started.elapsed());
            if attempt == MAX_ATTEMPTS || wait + MIN_ATTEMPT_TIME > remaining {
                break;
            }
            scope.record(
                "retry",
                json!({"attempt": attempt, "wait_ms": wait.as_millis() as u64,
                       "because": outcome.error.as_ref().map(|e| e.kind.as_str())}),
            );
            tokio::time::sleep(wait).await;
            outcome.error = None;
        }
        match &outcome.error {
            Some(e) if e.kind == ErrorKind::CredentialsRejected => {
                self.key_rejections
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            None => self
                .key_rejections
                .store(0, std::sync::atomic::Ordering::Relaxed),
            Some(_) => {}
        }
        self.record_health(scope, outcome, trial);
    }

    /// One try: reserve, run the plugin, settle. A retry is another try with
    /// its own reservation, because the provider counts every request.
    async fn attempt(
        &self,
        indicator: &Indicator,
        cost: crate::plugin::KindCost,
        scope: &AuditScope,
        outcome: &mut LookupOutcome,
        time_left: std::time::Duration,
    ) {
        let reservation = self.reserve(cost.quota_units);
        scope.record(
            "quota-reserve",
            json!({
                "units": cost.quota_units,
                "granted": reservation.is_ok(),
                "reservation": reservation.as_ref().ok().and_then(|r| r.as_ref()).map(|r| r.id.0),
                "refused_because": reservation.as_ref().err().map(|e| e.message.clone()),
            }),
        );
        let reservation = match reservation {
            Ok(reservation) => reservation,
            Err(error) => {
                outcome.error = Some(error);
                return;
            }
        };
        let call = Call::Enrich(wit_indicator(indicator));
        let report = self
            .call(
                Grant::Enrich,
                cost.api_calls,
                reservation.as_ref(),
                Some(scope.clone()),
                time_left,
                call,
            )
            .await;
        record_call(scope, &report);
        self.fill(indicator, outcome, report);
        if let Some(cache) = &self.cache
            && self.config.cache_ttl_seconds > 0
        {
            cache.put(&self.cache_digest, outcome);
        }
        if let Some(reservation) = reservation {
            let charged = self.settle(&reservation);
            outcome.units_charged += charged;
            scope.record(
                "quota-settle",
                json!({"reservation": reservation.id.0, "units_charged": charged,
                       "given_back": reservation.units - charged}),
            );
        }
    }

    fn scope(&self) -> AuditScope {
        self.audit.scope(
            &self.config.name,
            &self.plugin.sha256,
            self.credential.as_ref().map(|(_, s)| s.clone()),
        )
    }

    /// Refusals that need no sandbox at all.
    fn admit(&self, indicator: &Indicator) -> Result<(), LookupError> {
        let kind = indicator.kind();
        if self.plugin.description.cost(kind).is_none() {
            return Err(LookupError::new(
                ErrorKind::KindNotSupported,
                format!(
                    "the {} plugin does not support {kind} lookups",
                    self.plugin.description.name
                ),
            ));
        }
        if !self.view.enabled_kinds.contains(&kind) {
            return Err(LookupError::new(
                ErrorKind::KindNotPermitted,
                format!(
                    "{kind} lookups are not enabled for instance `{}` (enabled_kinds)",
                    self.config.name
                ),
            ));
        }
        Ok(())
    }
}
