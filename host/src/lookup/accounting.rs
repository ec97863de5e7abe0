//! The bookkeeping around a lookup: quota, the result cache and the circuit
//! breaker.

use enrichbox_quota::{QuotaError, Reservation, Settlement};
use serde_json::json;

use super::Enricher;
use crate::audit::AuditScope;
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

    /// Feeds the circuit breaker: provider trouble counts, everything else
    /// (found, not found, bad input, quota) proves the provider is fine.
    pub(super) fn record_health(&self, scope: &AuditScope, outcome: &LookupOutcome) {
        let Some(breaker) = &self.breaker else { return };
        let trouble = outcome.error.as_ref().filter(|e| {
            matches!(
                e.kind,
                ErrorKind::UpstreamUnavailable | ErrorKind::Timeout | ErrorKind::RateLimited
            )
        });
        let failure = trouble.map(|e| format!("{}: {}", e.kind.as_str(), e.message));
        if let Some(pause) =
            breaker.record(&self.config.name, failure.as_deref(), self.config.breaker)
        {
            scope.record(
                "circuit-open",
                json!({"paused_until": enrichbox_quota::rfc3339(pause.until), "reason": pause.reason}),
            );
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
