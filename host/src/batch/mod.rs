//! Enriching many indicators: bounded concurrency, results streamed as they
//! complete (or in input order), and a summary at the end.

pub mod input;
mod item_context;
pub mod stix_input;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use crate::lookup::Enricher;
use crate::outcome::LookupOutcome;
use input::Item;

#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Set (e.g. on Ctrl-C) to start no new lookup; those in flight finish.
    pub stop: Arc<AtomicBool>,
    /// Lookups in flight at once (each in its own sandbox).
    pub concurrency: usize,
    /// Emit results in input order instead of as they complete.
    pub ordered: bool,
}

/// What looks one item up: an instance's [`Enricher`], or a policy
/// [`Router`](crate::policy::Router) that picks instances per item.
pub trait ItemLookup: Send + Sync + 'static {
    fn lookup_item(&self, item: &Item) -> impl Future<Output = LookupOutcome> + Send;
}

impl ItemLookup for Enricher {
    async fn lookup_item(&self, item: &Item) -> LookupOutcome {
        self.lookup(&item.indicator.value(), Some(item.indicator.kind()))
            .await
    }
}

/// Counts of one run, printed at the end.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub looked_up: usize,
    pub verdicts: BTreeMap<String, usize>,
    pub errors: BTreeMap<String, usize>,
    pub cached: usize,
    pub skipped_lines: usize,
    pub duplicates: usize,
    pub quota_units: u64,
    /// Indicators no policy covered (reported, not looked up).
    pub not_covered: usize,
    /// Indicators not looked up because the run was stopped.
    pub not_started: usize,
    pub seconds: f64,
    pub per_second: f64,
}

impl Summary {
    pub fn failed(&self) -> usize {
        self.errors.values().sum()
    }
}

/// Looks every item up, handing each result to `emit` as soon as the order
/// allows.
pub async fn run<L: ItemLookup>(
    enricher: Arc<L>,
    items: Vec<Item>,
    options: BatchOptions,
    mut emit: impl FnMut(LookupOutcome),
) -> Summary {
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut pending = items.into_iter();
    let mut tasks = JoinSet::new();
    let mut waiting: HashMap<usize, LookupOutcome> = HashMap::new();
    let mut next_to_emit = 0;
    let concurrency = options.concurrency.max(1);
    loop {
        while tasks.len() < concurrency && !options.stop.load(Ordering::SeqCst) {
            let Some(item) = pending.next() else { break };
            let enricher = enricher.clone();
            tasks.spawn(async move {
                let outcome = enricher.lookup_item(&item).await;
                (item.index, outcome)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (index, outcome) = match joined {
            Ok(done) => done,
            // A lookup never panics by design; if one did, say so loudly.
            Err(e) => panic!("a lookup task failed: {e}"),
        };
        count(&mut summary, &outcome);
        if options.ordered {
            waiting.insert(index, outcome);
            while let Some(outcome) = waiting.remove(&next_to_emit) {
                emit(outcome);
                next_to_emit += 1;
            }
        } else {
            emit(outcome);
        }
    }
    summary.not_started = pending.count();
    if options.ordered {
        // Stopped early: what finished beyond a gap still gets written.
        let mut rest: Vec<_> = waiting.into_iter().collect();
        rest.sort_by_key(|(index, _)| *index);
        rest.into_iter().for_each(|(_, outcome)| emit(outcome));
    }
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    summary.seconds = elapsed.as_secs_f64();
    summary.per_second = summary.looked_up as f64 / summary.seconds;
    summary
}

fn count(summary: &mut Summary, outcome: &LookupOutcome) {
    summary.looked_up += 1;
    summary.quota_units += u64::from(outcome.units_charged);
    summary.cached += usize::from(outcome.cached);
    match (&outcome.error, &outcome.verdict) {
        (Some(error), _) => {
            *summary
                .errors
                .entry(error.kind.as_str().to_string())
                .or_default() += 1
        }
        (None, Some(verdict)) => *summary.verdicts.entry(verdict.to_string()).or_default() += 1,
        (None, None) => *summary.errors.entry("no-verdict".to_string()).or_default() += 1,
    }
}
