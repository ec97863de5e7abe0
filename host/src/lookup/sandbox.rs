//! Running the plugin for a lookup or a connection test: what its sandbox
//! is given, and what its report means.

use std::sync::Arc;

use enrichbox_indicator::Indicator;
use serde_json::json;
use tokio::time::Instant;

use super::contract::check_enrichment;
use super::report::{last_denial, record_call, sandbox_error, with_denial};
use super::{ConnectionReport, Enricher};
use crate::audit::AuditScope;
use crate::capabilities::Grant;
use crate::outbound::GatePolicy;
use crate::outcome::{ErrorKind, FindingOut, LookupError, LookupOutcome, verdict_name};
use crate::plugin::{Call, CallReport, CallSpec, Returned};
use enrichbox_quota::Reservation;

impl Enricher {
    pub async fn test_connection(&self) -> ConnectionReport {
        let scope = self.scope();
        let report = self
            .call(
                Grant::TestConnection,
                1,
                None,
                Some(scope.clone()),
                self.config.limits.timeout,
                Call::TestConnection,
            )
            .await;
        record_call(&scope, &report);
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
        // The operator has just seen the provider answer: an open circuit
        // need not wait out its cool-down.
        if ok && let Some(breaker) = &self.breaker {
            let change = breaker.record(
                &self.config.name,
                crate::breaker::Health::Up,
                false,
                self.config.breaker,
            );
            if change == Some(crate::breaker::Change::Closed) {
                scope.record("circuit-close", json!({"by": "test-connection"}));
            }
        }
        ConnectionReport {
            instance: self.config.name.clone(),
            ok,
            message,
            error,
        }
    }

    pub(super) async fn call(
        &self,
        grant: Grant,
        max_requests: u32,
        reservation: Option<&Reservation>,
        audit: Option<AuditScope>,
        time_left: std::time::Duration,
        call: Call,
    ) -> CallReport {
        let mut limits = self.config.limits;
        limits.timeout = time_left.max(std::time::Duration::from_millis(1));
        let before_send: Option<crate::outbound::BeforeSend> = match (&self.ledger, reservation) {
            (Some(ledger), Some(reservation)) => {
                let (ledger, id) = (ledger.clone(), reservation.id);
                Some(Arc::new(move || {
                    ledger.mark_sent(id).map_err(|e| e.to_string())
                }))
            }
            _ => None,
        };
        let quota_remaining = self.quota_remaining();
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
            audit,
        };
        self.plugin.call(&self.runtime, spec, call).await
    }

    pub(super) fn fill(
        &self,
        indicator: &Indicator,
        outcome: &mut LookupOutcome,
        report: CallReport,
    ) {
        let secret = self.credential.as_ref().map(|(_, s)| s);
        let redact = |text: &str| secret.map_or(text.to_string(), |s| s.redact(text));
        let denial = last_denial(&report);
        let tripped_response_cap = report.requests.iter().any(|r| r.limit.is_some());
        outcome.requests = report.requests;
        outcome.log = report.log;
        outcome.output = redact(&report.output);
        match report.result {
            Ok(Returned::Enrich(Ok(enrichment))) => {
                match check_enrichment(indicator, &enrichment) {
                    Ok(raw) => {
                        outcome.verdict = Some(verdict_name(enrichment.verdict).to_string());
                        outcome.raw = Some(match secret {
                            Some(secret) => redact_json(secret, raw),
                            None => raw,
                        });
                        outcome.findings = enrichment
                            .findings
                            .into_iter()
                            .map(FindingOut::from)
                            .collect();
                    }
                    Err(why) => {
                        outcome.error = Some(LookupError::new(
                            ErrorKind::ContractViolation,
                            format!("the plugin broke the contract: {why}"),
                        ));
                    }
                }
            }
            Ok(Returned::Enrich(Err(e))) => {
                let mut error = LookupError::from(e);
                error.message = redact(&with_denial(error.kind, error.message, denial));
                if tripped_response_cap {
                    error.kind = ErrorKind::ResponseTooLarge;
                }
                outcome.error = Some(error);
            }
            Ok(_) => unreachable!("enrich returns an enrichment"),
            Err(failure) => outcome.error = Some(sandbox_error(&failure)),
        }
    }
}

/// `raw` with every occurrence of the secret replaced; parsed again only
/// when the secret is actually there, which it almost never is.
fn redact_json(secret: &crate::secret::Secret, raw: serde_json::Value) -> serde_json::Value {
    let text = serde_json::to_string(&raw).unwrap_or_default();
    if !secret.appears_in(&text) {
        return raw;
    }
    let redacted = secret.redact(&text);
    serde_json::from_str(&redacted).unwrap_or(serde_json::Value::String(redacted))
}
