//! Turning one sandbox call's report into errors and audit records.

use serde_json::json;

use crate::audit::AuditScope;
use crate::outcome::{ErrorKind, LookupError};
use crate::plugin::CallReport;

/// The reason the host gave itself for the last request it refused.
pub(super) fn last_denial(report: &CallReport) -> Option<String> {
    report
        .requests
        .iter()
        .rev()
        .find_map(|r| r.denied_because.clone())
}

/// A plugin only learns "denied"; the operator deserves the host's reason.
pub(super) fn with_denial(kind: ErrorKind, message: String, denial: Option<String>) -> String {
    match (kind, denial) {
        (ErrorKind::DeniedByPolicy, Some(why)) => format!("{message}: {why}"),
        _ => message,
    }
}

pub(super) fn sandbox_error(failure: &crate::plugin::SandboxFailure) -> LookupError {
    use crate::plugin::SandboxFailure;
    let kind = match failure {
        SandboxFailure::Timeout(_) => ErrorKind::Timeout,
        SandboxFailure::MemoryLimit(_) => ErrorKind::MemoryLimit,
        SandboxFailure::Trap(_) => ErrorKind::PluginFailed,
    };
    LookupError::new(kind, failure.to_string())
}

/// Outbound requests and tripped limits of one call, for the audit trail.
pub(super) fn record_call(scope: &AuditScope, report: &CallReport) {
    for request in &report.requests {
        scope.record(
            "outbound-request",
            serde_json::to_value(request).unwrap_or_default(),
        );
        if let Some(limit) = &request.limit {
            scope.record("limit", json!({"limit": limit, "url": request.url}));
        }
    }
    if report.discarded_output > 0 {
        scope.record(
            "limit",
            json!({"limit": "output", "discarded_bytes": report.discarded_output}),
        );
    }
    if let Err(failure) = &report.result {
        use crate::plugin::SandboxFailure;
        let limit = match failure {
            SandboxFailure::Timeout(_) => "timeout",
            SandboxFailure::MemoryLimit(_) => "memory",
            SandboxFailure::Trap(_) => "trap",
        };
        scope.record(
            "limit",
            json!({"limit": limit, "detail": failure.to_string()}),
        );
    }
}
