//! Running lookups for one instance: detect, check, sandbox, report.

use std::sync::Arc;

use enrichbox_indicator::{Indicator, Kind, detect, parse_as};
use http::HeaderName;
use tokio::time::Instant;

use enrichbox_quota::{Ledger, QuotaError, Reservation, Settlement};

use crate::capabilities::Grant;
use crate::config::InstanceConfig;
use crate::convert::wit_indicator;
use crate::outbound::GatePolicy;
use crate::outcome::{ErrorKind, FindingOut, LookupError, LookupOutcome, verdict_name};
use crate::plugin::{Call, CallReport, CallSpec, Plugin, Returned};
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
}

/// The result of `test-connection`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionReport {
    pub instance: String,
    pub ok: bool,
    pub message: String,
    pub error: Option<LookupError>,
}

impl Enricher {
    pub async fn new(runtime: Arc<Runtime>, config: InstanceConfig) -> Result<Enricher, InstanceError> {
        let plugin = runtime.plugin(&config.plugin).await?;
        let supported = plugin.description.supported_kinds();
        let enabled_kinds = match &config.enabled_kinds {
            None => supported.clone(),
            Some(kinds) => {
                if let Some(unsupported) = kinds.iter().find(|k| !supported.contains(k)) {
                    return Err(InstanceError::Config(format!(
                        "instance `{}`: enabled_kinds lists `{unsupported}`, which the plugin {} does not support (it supports: {})",
                        config.name,
                        plugin.description.name,
                        supported.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
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
                let name = HeaderName::from_bytes(header.as_bytes()).expect("checked when the plugin loaded");
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
        })
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
        let parsed = match kind {
            Some(kind) => parse_as(kind, input),
            None => detect(input),
        };
        let mut outcome = LookupOutcome {
            indicator: input.trim().to_string(),
            kind: kind.map(|k| k.to_string()),
            instance: self.config.name.clone(),
            provider: self.plugin.description.provider.clone(),
            verdict: None,
            findings: Vec::new(),
            error: None,
            raw: None,
            requests: Vec::new(),
            log: Vec::new(),
            output: String::new(),
            units_charged: 0,
        };
        let indicator = match parsed {
            Ok(indicator) => indicator,
            Err(e) => {
                outcome.error = Some(LookupError::new(ErrorKind::InvalidIndicator, e.to_string()));
                return outcome;
            }
        };
        outcome.indicator = indicator.value();
        outcome.kind = Some(indicator.kind().to_string());
        if let Err(error) = self.admit(&indicator) {
            outcome.error = Some(error);
            return outcome;
        }
        let cost = self.plugin.description.cost(indicator.kind()).expect("admit checked support");
        let reservation = match self.reserve(cost.quota_units) {
            Ok(reservation) => reservation,
            Err(error) => {
                outcome.error = Some(error);
                return outcome;
            }
        };
        let report = self
            .call(Grant::Enrich, cost.api_calls, reservation.as_ref(), Call::Enrich(wit_indicator(&indicator)))
            .await;
        self.fill(&mut outcome, report);
        if let Some(reservation) = reservation {
            self.settle(&reservation, &mut outcome);
        }
        outcome
    }

    /// Takes the lookup's units before the plugin runs; refused when they
    /// are not there.
    fn reserve(&self, units: u32) -> Result<Option<Reservation>, LookupError> {
        let Some(ledger) = &self.ledger else {
            return Ok(None);
        };
        // Unsettled after this, the units return (nothing can be sent past the deadline).
        let expiry = self.config.limits.timeout + std::time::Duration::from_secs(30);
        match ledger.reserve(&self.config.name, self.config.quota, units, expiry) {
            Ok(reservation) => Ok(Some(reservation)),
            Err(e @ QuotaError::Exhausted { .. }) => Err(LookupError::new(ErrorKind::QuotaExhausted, e.to_string())),
            Err(e) => Err(LookupError::new(ErrorKind::QuotaExhausted, format!("the quota ledger failed: {e}"))),
        }
    }

    fn settle(&self, reservation: &Reservation, outcome: &mut LookupOutcome) {
        let ledger = self.ledger.as_ref().expect("a reservation comes from the ledger");
        match ledger.settle(reservation.id) {
            Ok(Settlement::Spent) => outcome.units_charged = reservation.units,
            Ok(Settlement::GivenBack) => outcome.units_charged = 0,
            // Left unsettled, recovery charges it if a request went out.
            Err(e) => crate::warn_once(&format!("could not settle a quota reservation: {e}")),
        }
    }

    /// Refusals that need no sandbox at all.
    fn admit(&self, indicator: &Indicator) -> Result<(), LookupError> {
        let kind = indicator.kind();
        if self.plugin.description.cost(kind).is_none() {
            return Err(LookupError::new(
                ErrorKind::KindNotSupported,
                format!("the {} plugin does not support {kind} lookups", self.plugin.description.name),
            ));
        }
        if !self.view.enabled_kinds.contains(&kind) {
            return Err(LookupError::new(
                ErrorKind::KindNotPermitted,
                format!("{kind} lookups are not enabled for instance `{}` (enabled_kinds)", self.config.name),
            ));
        }
        Ok(())
    }

    pub async fn test_connection(&self) -> ConnectionReport {
        let report = self.call(Grant::TestConnection, 1, None, Call::TestConnection).await;
        let secret = self.credential.as_ref().map(|(_, s)| s);
        let redact = |text: String| secret.map_or(text.clone(), |s| s.redact(&text));
        let denial = last_denial(&report);
        let (ok, message, error) = match report.result {
            Ok(Returned::TestConnection(Ok(status))) => (true, redact(status.message), None),
            Ok(Returned::TestConnection(Err(e))) => {
                let mut error = LookupError::from(e);
                error.message = redact(with_denial(error.kind, error.message, denial));
                (false, error.message.clone(), Some(error))
            }
            Ok(_) => unreachable!("test-connection returns a connection status"),
            Err(failure) => {
                let error = sandbox_error(&failure);
                (false, error.message.clone(), Some(error))
            }
        };
        ConnectionReport {
            instance: self.config.name.clone(),
            ok,
            message,
            error,
        }
    }

    async fn call(&self, grant: Grant, max_requests: u32, reservation: Option<&Reservation>, call: Call) -> CallReport {
        let limits = self.config.limits;
        let before_send: Option<crate::outbound::BeforeSend> = match (&self.ledger, reservation) {
            (Some(ledger), Some(reservation)) => {
                let (ledger, id) = (ledger.clone(), reservation.id);
                Some(Arc::new(move || ledger.mark_sent(id).map_err(|e| e.to_string())))
            }
            _ => None,
        };
        let quota_remaining = match &self.ledger {
            Some(ledger) => ledger.remaining(&self.config.name, self.config.quota).ok().flatten(),
            None => None,
        };
        let spec = CallSpec {
            instance: self.view.clone(),
            grant,
            policy: GatePolicy {
                base_url: Some(self.config.base_url.clone()),
                credential: self.credential.clone(),
                verify_ssl: self.config.verify_ssl,
                max_requests,
                deadline: Instant::now() + limits.timeout,
                max_response_bytes: limits.max_response_bytes,
                before_send,
            },
            limits,
            quota_remaining,
        };
        self.plugin.call(&self.runtime, spec, call).await
    }

    fn fill(&self, outcome: &mut LookupOutcome, report: CallReport) {
        let secret = self.credential.as_ref().map(|(_, s)| s);
        let redact = |text: &str| secret.map_or(text.to_string(), |s| s.redact(text));
        let denial = last_denial(&report);
        outcome.requests = report.requests;
        outcome.log = report.log;
        outcome.output = redact(&report.output);
        match report.result {
            Ok(Returned::Enrich(Ok(enrichment))) => match check_findings(&enrichment.findings) {
                Ok(()) => {
                    outcome.verdict = Some(verdict_name(enrichment.verdict));
                    outcome.raw = serde_json::from_str(&redact(&enrichment.raw_json)).ok();
                    outcome.findings = enrichment.findings.into_iter().map(FindingOut::from).collect();
                }
                Err(why) => {
                    outcome.error = Some(LookupError::new(
                        ErrorKind::PluginFailed,
                        format!("the plugin broke the contract: {why}"),
                    ));
                }
            },
            Ok(Returned::Enrich(Err(e))) => {
                let mut error = LookupError::from(e);
                error.message = redact(&with_denial(error.kind, error.message, denial));
                outcome.error = Some(error);
            }
            Ok(_) => unreachable!("enrich returns an enrichment"),
            Err(failure) => outcome.error = Some(sandbox_error(&failure)),
        }
    }
}

/// The reason the host gave itself for the last request it refused.
fn last_denial(report: &CallReport) -> Option<String> {
    report.requests.iter().rev().find_map(|r| r.denied_because.clone())
}

/// A plugin only learns "denied"; the operator deserves the host's reason.
fn with_denial(kind: ErrorKind, message: String, denial: Option<String>) -> String {
    match (kind, denial) {
        (ErrorKind::DeniedByPolicy, Some(why)) => format!("{message}: {why}"),
        _ => message,
    }
}

fn sandbox_error(failure: &crate::plugin::SandboxFailure) -> LookupError {
    use crate::plugin::SandboxFailure;
    let kind = match failure {
        SandboxFailure::Timeout(_) => ErrorKind::Timeout,
        SandboxFailure::MemoryLimit(_) | SandboxFailure::Trap(_) => ErrorKind::PluginFailed,
    };
    LookupError::new(kind, failure.to_string())
}

fn check_findings(findings: &[crate::bindings::Finding]) -> Result<(), String> {
    for f in findings {
        if f.confidence > 100 {
            return Err(format!("finding {} has confidence {}, above 100", f.record_id, f.confidence));
        }
    }
    Ok(())
}
