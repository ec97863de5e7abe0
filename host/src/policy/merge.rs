//! One result per indicator from the results of a policy's instances, so
//! every renderer (table, CSV, STIX...) works unchanged and a reader sees
//! one verdict, with what each instance said in `consulted`.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::outcome::{ErrorKind, LookupError, LookupOutcome};

/// What one instance of a policy answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consulted {
    pub instance: String,
    /// Null when this instance failed.
    pub verdict: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub cached: bool,
    pub units_charged: u32,
    /// Ties this answer to its audit records.
    pub lookup_id: String,
}

/// How strongly a verdict speaks: malicious beats suspicious beats the rest.
fn rank(verdict: Option<&str>) -> u8 {
    match verdict {
        Some("malicious") => 3,
        Some("suspicious") => 2,
        Some(_) => 1,
        None => 0,
    }
}

/// Merges the outcomes of `policy`'s instances, in the order they were
/// asked, into one.
///
/// The verdict is the strongest one any instance gave, and `instance`,
/// `provider`, `lookup_id` and `raw` come from the first instance that gave
/// it. Findings of every instance that answered are kept (a record two
/// instances of one provider both return is kept once). The result is an
/// error only when every instance failed. Units are summed; `cached` means
/// no instance had to be asked.
pub fn merge(policy: &str, outcomes: Vec<LookupOutcome>) -> LookupOutcome {
    let consulted: Vec<Consulted> = outcomes
        .iter()
        .map(|o| Consulted {
            instance: o.instance.clone(),
            verdict: o.verdict.clone().filter(|_| o.error.is_none()),
            error: o.error.as_ref().map(|e| e.kind),
            error_message: o.error.as_ref().map(|e| e.message.clone()),
            cached: o.cached,
            units_charged: o.units_charged,
            lookup_id: o.lookup_id.clone(),
        })
        .collect();
    let answered = |o: &&LookupOutcome| o.error.is_none() && o.verdict.is_some();
    let best = outcomes
        .iter()
        .filter(answered)
        .map(|o| rank(o.verdict.as_deref()))
        .max();
    let decider = match best {
        Some(best) => outcomes
            .iter()
            .position(|o| answered(&o) && rank(o.verdict.as_deref()) == best),
        None => outcomes.len().checked_sub(1),
    };
    let Some(decider) = decider else {
        // A policy never runs with no instance; say so rather than invent.
        let mut outcome = failure(
            "",
            None,
            &format!("policy `{policy}` consulted no instance"),
        );
        outcome.policy = Some(policy.to_string());
        return outcome;
    };
    let mut merged = outcomes[decider].clone();
    merged.findings.clear();
    merged.requests.clear();
    merged.log.clear();
    merged.output.clear();
    merged.units_charged = 0;
    let mut seen = HashSet::new();
    for outcome in &outcomes {
        merged.units_charged += outcome.units_charged;
        merged.requests.extend(outcome.requests.iter().cloned());
        merged.log.extend(outcome.log.iter().cloned());
        merged.output.push_str(&outcome.output);
        if answered(&outcome) {
            for finding in &outcome.findings {
                let key = (
                    outcome.provider.clone(),
                    finding.record_id.clone(),
                    finding.matched_ioc.clone(),
                );
                if seen.insert(key) {
                    merged.findings.push(finding.clone());
                }
            }
        }
    }
    merged.cached = outcomes.iter().all(|o| o.cached);
    if !merged.cached {
        merged.cache_age_seconds = None;
    }
    if best.is_none() && outcomes.len() > 1 {
        // Every instance failed: keep the last error's kind, but tell all.
        let all: Vec<String> = outcomes
            .iter()
            .filter_map(|o| {
                o.error
                    .as_ref()
                    .map(|e| format!("{}: {}: {}", o.instance, e.kind.as_str(), e.message))
            })
            .collect();
        if let Some(error) = merged.error.as_mut() {
            error.message = format!(
                "every instance of policy `{policy}` failed: {}",
                all.join("; ")
            );
        }
    }
    merged.policy = Some(policy.to_string());
    merged.consulted = consulted;
    merged
}

/// A result for an indicator that could not be run at all (a lookup task
/// that died, an instance that was not prepared): never a silent gap.
pub(crate) fn failure(indicator: &str, kind: Option<&str>, message: &str) -> LookupOutcome {
    let mut outcome = LookupOutcome::empty(indicator, kind.map(str::to_string), "", "");
    outcome.error = Some(LookupError::new(ErrorKind::PluginFailed, message));
    outcome
}
