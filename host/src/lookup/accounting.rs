//! The bookkeeping around a lookup: quota, the result cache and the circuit
//! breaker.

use enrichbox_quota::{QuotaError, Reservation, Settlement};
use serde_json::json;

use super::Enricher;
use crate::audit::AuditScope;
use crate::breaker::{Admission, Change, Circuit, Health};
use crate::outcome::{ErrorKind, LookupError, LookupOutcome};

impl Enricher {
    /// Units the instance has left now; `None` when unlimited or unmetered.
    pub fn quota_remaining(&self) -> Option<u64> {
        let ledger = self.ledger.as_ref()?;
        ledger
            .remaining(&self.config.name, self.config.quota)
            .ok()
            .flatten()
    }

    /// Takes the lookup's units before the plugin runs; refused when they
    /// are not there.
    pub(super) fn reserve(&self, units: u32) -> Result<Option<Reservation>, LookupError> {
        let Some(ledger) = &self.ledger else {
            return Ok(None);
        };
        // Unsettled after this, the units return (nothing can be sent past the deadline).
        let expiry = self.config.limits.timeout + std::time::Duration::from_secs(30);
        match ledger.reserve(&self.config.name, self.config.quota, units, expiry) {
            Ok(reservation) => Ok(Some(reservation)),
            Err(e @ QuotaError::Exhausted { .. }) => {
                Err(LookupError::new(ErrorKind::QuotaExhausted, e.to_string()))
            }
            Err(e) => Err(LookupError::new(
                ErrorKind::QuotaExhausted,
                format!("the quota ledger failed: {e}"),
            )),
        }
    }

    /// Ends a reservation; returns the units it cost.
    pub(super) fn settle(&self, reservation: &Reservation) -> u32 {
        let ledger = self
            .ledger
            .as_ref()
            .expect("a reservation comes from the ledger");
        match ledger.settle(reservation.id) {
            Ok(Settlement::Spent) => reservation.units,
            Ok(Settlement::GivenBack) => 0,
            // Left unsettled, recovery charges it if a request went out.
            Err(e) => {
                crate::warn_once(&format!("could not settle a quota reservation: {e}"));
                0
            }
        }
    }

    /// Asks the circuit breaker whether this lookup may reach the provider:
    /// `Ok(true)` when it is the one trial after a pause, an
    /// upstream-unavailable error when the instance is paused.
    pub(super) fn admit_by_breaker(&self, scope: &AuditScope) -> Result<bool, LookupError> {
        let Some(breaker) = &self.breaker else {
            return Ok(false);
        };
        // The claim on the trial outlives the lookup's own deadline.
        let claim_for = self.config.limits.timeout + std::time::Duration::from_secs(1);
        let at = enrichbox_quota::rfc3339;
        let (pause, trial_until) = match breaker.admit(&self.config.name, claim_for) {
            Admission::Go => return Ok(false),
            Admission::Trial => {
                scope.record("circuit-trial", json!({"state": "half-open"}));
                return Ok(true);
            }
            Admission::Refused(Circuit::Open(pause)) => (pause, None),
            Admission::Refused(Circuit::HalfOpen { pause, trial_until }) => (
                pause,
                Some(trial_until.unwrap_or_else(crate::clock::now_unix)),
            ),
            Admission::Refused(Circuit::Closed) => return Ok(false),
        };
        scope.record(
            "circuit-rejected",
            json!({"state": if trial_until.is_some() { "half-open" } else { "open" },
                   "paused_until": at(pause.until), "reason": pause.reason,
                   "trial_until": trial_until.map(at)}),
        );
        let name = &self.config.name;
        Err(LookupError::new(
            ErrorKind::UpstreamUnavailable,
            match trial_until {
                None => format!(
                    "instance `{name}` is paused until {}: {}",
                    at(pause.until),
                    pause.reason
                ),
                Some(t) => format!(
                    "instance `{name}` is paused until the trial lookup in progress ends (at the latest {}): {}",
                    at(t),
                    pause.reason
                ),
            },
        ))
    }

    /// Feeds the circuit breaker: provider trouble counts; an answer of any
    /// kind (found, not found, even a refused key) proves the provider is
    /// up; a lookup that never reached it (quota, policy, a failing plugin)
    /// proves nothing.
    pub(super) fn record_health(&self, scope: &AuditScope, outcome: &LookupOutcome, trial: bool) {
        let Some(breaker) = &self.breaker else { return };
        let failure = outcome
            .error
            .as_ref()
            .map(|e| format!("{}: {}", e.kind.as_str(), e.message));
        let health = match (outcome.error.as_ref().map(|e| e.kind), &failure) {
            (
                Some(ErrorKind::UpstreamUnavailable | ErrorKind::Timeout | ErrorKind::RateLimited),
                Some(failure),
            ) => Health::Down(failure),
            (
                Some(
                    ErrorKind::QuotaExhausted
                    | ErrorKind::DeniedByPolicy
                    | ErrorKind::PluginFailed
                    | ErrorKind::MemoryLimit,
                ),
                _,
            ) => Health::Untested,
            _ => Health::Up,
        };
        if trial && health == Health::Untested {
            scope.record(
                "circuit-trial-abandoned",
                json!({"because": failure, "state": "half-open"}),
            );
        }
        match breaker.record(&self.config.name, health, trial, self.config.breaker) {
            Some(Change::Opened(pause)) => scope.record(
                "circuit-open",
                json!({"paused_until": enrichbox_quota::rfc3339(pause.until), "reason": pause.reason,
                       "after_trial": trial}),
            ),
            Some(Change::Closed) => {
                scope.record("circuit-close", json!({"after_trial": trial}))
            }
            None => {}
        }
    }

    pub(super) fn cached(&self, indicator: &str) -> Option<LookupOutcome> {
        let cache = self.cache.as_ref()?;
        if self.refresh || self.config.cache_ttl_seconds == 0 {
            return None;
        }
        cache.get(
            &self.config.name,
            &self.cache_digest,
            indicator,
            self.config.cache_ttl_seconds,
        )
    }
}
