//! Running policies: which instances an item goes to, and asking them.

use std::collections::HashMap;
use std::sync::Arc;

use enrichbox_indicator::Kind;
use tokio::task::JoinSet;

use super::merge::{failure, merge};
use super::{Mode, Policy, choose, find};
use crate::batch::ItemLookup;
use crate::batch::input::{Item, ItemContext};
use crate::lookup::Enricher;
use crate::outcome::LookupOutcome;

/// Where one item goes.
#[derive(Debug, Clone, Copy)]
pub enum Plan<'a> {
    /// To these instances of this policy, in this order.
    Policy {
        policy: &'a Policy,
        instances: &'a [String],
    },
    /// To the default instance, as without policies.
    Default,
}

/// Sends each item where the policies say: the `--policy` one, else the
/// first (by priority) that takes the item, else the default instance.
pub struct Router {
    /// Sorted by priority; just the chosen one when `forced`.
    policies: Vec<Policy>,
    forced: bool,
    /// By lowercase instance name.
    enrichers: HashMap<String, Arc<Enricher>>,
    default: Option<Arc<Enricher>>,
}

impl Router {
    /// Every item to one instance, policies aside (`--instance`, or no
    /// policy defined).
    pub fn single(enricher: Arc<Enricher>) -> Router {
        Router {
            policies: Vec::new(),
            forced: false,
            enrichers: HashMap::new(),
            default: Some(enricher),
        }
    }

    /// Routes by `policies` (sorted as [`super::sort`] does); with `forced`,
    /// by that policy only, and items it does not take go nowhere.
    pub fn with_policies(policies: Vec<Policy>, forced: Option<&str>) -> Result<Router, String> {
        let policies = match forced {
            Some(name) => vec![find(&policies, name)?.clone()],
            None => policies,
        };
        Ok(Router {
            policies,
            forced: forced.is_some(),
            enrichers: HashMap::new(),
            default: None,
        })
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// Where an item of `kind` with `context` goes, or why nowhere.
    pub fn plan(&self, kind: Kind, context: &ItemContext) -> Result<Plan<'_>, String> {
        if self.forced {
            let policy = &self.policies[0];
            return policy
                .check(kind, context)
                .map(|instances| Plan::Policy { policy, instances })
                .map_err(|miss| format!("policy `{}` does not take it: {miss}", policy.name));
        }
        Ok(match choose(&self.policies, kind, context) {
            Some(policy) => Plan::Policy {
                policy,
                instances: policy.routes.for_kind(kind),
            },
            None => Plan::Default,
        })
    }

    /// Makes an instance available to the policies.
    pub fn add_instance(&mut self, enricher: Arc<Enricher>) {
        self.enrichers
            .insert(enricher.instance().name.to_lowercase(), enricher);
    }

    /// The instance for items no policy takes.
    pub fn set_default(&mut self, enricher: Arc<Enricher>) {
        self.default = Some(enricher);
    }

    /// Units left over every metered instance in use; `None` when none is.
    pub fn quota_remaining(&self) -> Option<u64> {
        self.enrichers
            .values()
            .chain(self.default.iter())
            .filter_map(|e| e.quota_remaining())
            .reduce(|a, b| a + b)
    }
}

impl ItemLookup for Router {
    async fn lookup_item(&self, item: &Item) -> LookupOutcome {
        let kind = item.indicator.kind();
        let value = item.indicator.value();
        match self.plan(kind, &item.context) {
            Ok(Plan::Policy { policy, instances }) => {
                let mut enrichers = Vec::with_capacity(instances.len());
                for name in instances {
                    match self.enrichers.get(&name.to_lowercase()) {
                        Some(enricher) => enrichers.push(enricher.clone()),
                        None => {
                            return failure(
                                &value,
                                Some(kind.as_str()),
                                &format!(
                                    "policy `{}`: instance `{name}` was not started",
                                    policy.name
                                ),
                            );
                        }
                    }
                }
                run_policy(policy, &enrichers, &value, kind).await
            }
            Ok(Plan::Default) => match &self.default {
                Some(enricher) => enricher.lookup(&value, Some(kind)).await,
                None => failure(
                    &value,
                    Some(kind.as_str()),
                    "no policy takes it and there is no default instance",
                ),
            },
            Err(why) => failure(&value, Some(kind.as_str()), &why),
        }
    }
}

/// Asks `enrichers` (the policy's instances for this kind, in order) as the
/// policy's mode says, and merges their answers into one result.
///
/// Sequential stops at the first malicious verdict. Any other answer, a
/// failure or an exhausted quota moves on to the next instance: the point
/// of listing several is to find a malicious hit if any of them has one.
pub async fn run_policy(
    policy: &Policy,
    enrichers: &[Arc<Enricher>],
    value: &str,
    kind: Kind,
) -> LookupOutcome {
    let mut outcomes = Vec::with_capacity(enrichers.len());
    match policy.mode {
        Mode::Sequential => {
            for enricher in enrichers {
                let outcome = enricher.lookup(value, Some(kind)).await;
                let malicious =
                    outcome.error.is_none() && outcome.verdict.as_deref() == Some("malicious");
                outcomes.push(outcome);
                if malicious {
                    break;
                }
            }
        }
        Mode::Parallel => {
            let mut tasks = JoinSet::new();
            for (position, enricher) in enrichers.iter().enumerate() {
                let (enricher, value) = (enricher.clone(), value.to_string());
                tasks.spawn(async move { (position, enricher.lookup(&value, Some(kind)).await) });
            }
            let mut done = Vec::with_capacity(enrichers.len());
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok(answer) => done.push(answer),
                    Err(e) => done.push((
                        usize::MAX,
                        failure(
                            value,
                            Some(kind.as_str()),
                            &format!("a lookup task failed: {e}"),
                        ),
                    )),
                }
            }
            // Merged in the policy's order, not in the order they finished.
            done.sort_by_key(|(position, _)| *position);
            outcomes.extend(done.into_iter().map(|(_, outcome)| outcome));
        }
    }
    merge(&policy.name, outcomes)
}
