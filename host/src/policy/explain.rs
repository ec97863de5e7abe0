//! `policy explain`: where an indicator would go and why, and the state of
//! each instance it would reach, without sending or reserving anything.

use enrichbox_indicator::Indicator;
use serde::Serialize;

use super::{Mode, Plan, Policy, Router};
use crate::batch::input::ItemContext;

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub indicator: String,
    pub kind: String,
    pub source: Option<String>,
    pub tags: Vec<String>,
    pub confidence: Option<u8>,
    /// Every policy considered, in the order they are tried.
    pub policies: Vec<Considered>,
    /// `policy`, `default` (the default instance) or `not-covered`.
    pub route: &'static str,
    pub policy: Option<String>,
    pub mode: Option<Mode>,
    /// Why the indicator goes to the default instance, or nowhere.
    pub reason: Option<String>,
    /// The instances it would be sent to, in order.
    pub instances: Vec<InstanceState>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Considered {
    pub name: String,
    pub priority: i64,
    pub mode: Mode,
    pub applies: bool,
    pub chosen: bool,
    /// Why it does not apply.
    pub reason: Option<String>,
}

/// What a user wants to know about an instance before spending on it.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceState {
    pub instance: String,
    /// `unlimited` or `UNITS/PERIOD`.
    pub quota: String,
    /// Units left in the current window; null when unlimited.
    pub quota_remaining: Option<u64>,
    /// RFC 3339, when the circuit breaker has paused the instance.
    pub paused_until: Option<String>,
    pub pause_reason: Option<String>,
    /// False when the instance's enabled_kinds leave this kind out (it
    /// would answer kind-not-permitted and the next one would be asked).
    pub kind_enabled: bool,
}

/// Explains where `indicator` with `context` goes under `router`.
/// `default_instance` is the default instance's name or why there is none;
/// `state` reads an instance's quota and pause (and must not spend).
pub fn explain(
    router: &Router,
    indicator: &Indicator,
    context: &ItemContext,
    default_instance: Result<String, String>,
    state: &dyn Fn(&str) -> Result<InstanceState, String>,
) -> Result<Explanation, String> {
    let kind = indicator.kind();
    let plan = router.plan(kind, context);
    let chosen = match &plan {
        Ok(Plan::Policy { policy, .. }) => Some(policy.name.clone()),
        _ => None,
    };
    let policies = router
        .policies()
        .iter()
        .map(|p: &Policy| {
            let check = p.check(kind, context);
            Considered {
                name: p.name.clone(),
                priority: p.priority,
                mode: p.mode,
                applies: check.is_ok(),
                chosen: chosen.as_deref() == Some(p.name.as_str()),
                reason: match check {
                    Ok(_) if chosen.as_deref() != Some(p.name.as_str()) => {
                        Some("applies, but a policy tried earlier takes it".into())
                    }
                    Ok(_) => None,
                    Err(miss) => Some(miss.to_string()),
                },
            }
        })
        .collect();
    let mut explanation = Explanation {
        indicator: indicator.value(),
        kind: kind.to_string(),
        source: context.source.clone(),
        tags: context.tags.clone(),
        confidence: context.confidence,
        policies,
        route: "not-covered",
        policy: None,
        mode: None,
        reason: None,
        instances: Vec::new(),
    };
    match plan {
        Ok(Plan::Policy { policy, instances }) => {
            explanation.route = "policy";
            explanation.policy = Some(policy.name.clone());
            explanation.mode = Some(policy.mode);
            for name in instances {
                explanation.instances.push(state(name)?);
            }
        }
        Ok(Plan::Default) => match default_instance {
            Ok(name) => {
                explanation.route = "default";
                explanation.reason = Some(if router.policies().is_empty() {
                    "no policy is defined".into()
                } else {
                    "no policy takes it".into()
                });
                explanation.instances.push(state(&name)?);
            }
            Err(why) => {
                explanation.reason = Some(format!(
                    "no policy takes it, and there is no default instance: {why}"
                ));
            }
        },
        Err(why) => explanation.reason = Some(why),
    }
    Ok(explanation)
}
