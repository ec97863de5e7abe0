//! Where `enrich` sends each item: one instance as before, or the
//! instances a policy picks, all started once and sharing one runtime.

use std::sync::Arc;

use anyhow::Result;

use super::Context;
use super::policy::instance_names;
use crate::batch::input::Item;
use crate::lookup::Enricher;
use crate::policy::registry::{all, check_instances};
use crate::policy::{Mode, Plan, Router};
use crate::registry::ResolvedInstance;
use crate::store::Permission;

/// What `enrich` sends its items to. Items that go nowhere (the `--policy`
/// does not take them, or no policy does and there is no default instance)
/// are reported on stderr and removed; their count is returned.
pub(super) async fn router(
    context: &Context,
    policy: Option<&str>,
    instance: Option<&str>,
    items: &mut Vec<Item>,
    refresh: bool,
    concurrency: usize,
) -> Result<(Router, usize)> {
    let db = context.authorized(Permission::Enrich, "run lookups")?;
    let registry = context.registry(&db);
    let policies = match instance {
        // --instance bypasses policies entirely.
        Some(_) => Vec::new(),
        None => all(context.config.as_ref(), Some(&db)).map_err(anyhow::Error::msg)?,
    };
    // Sandboxes must hold the hungriest instance this run may start, and a
    // parallel policy has up to three lookups in flight per item.
    let instances = registry.all().map_err(anyhow::Error::msg)?;
    let max_memory = instances
        .iter()
        .map(|i| i.config.limits.max_memory_bytes)
        .max()
        .unwrap_or(0);
    let in_flight = if policies.iter().any(|p| p.mode == Mode::Parallel) {
        concurrency.saturating_mul(3)
    } else {
        concurrency
    };
    let runtime = context.runtime(in_flight, max_memory)?;
    let start = Starter {
        runtime,
        ledger: context.ledger()?,
        audit: context.audit()?,
        cache: context.cache()?,
        breaker: context.breaker()?,
        refresh,
        verbose: context.verbose,
    };
    if policies.is_empty() && policy.is_none() {
        // As before policies existed: every item to one instance.
        let resolved = registry.resolve(instance).map_err(anyhow::Error::msg)?;
        return Ok((Router::single(start.enricher(resolved).await?), 0));
    }
    let mut router = Router::with_policies(policies, policy).map_err(anyhow::Error::msg)?;
    check_instances(router.policies(), &instance_names(&instances)).map_err(anyhow::Error::msg)?;

    let mut needed: Vec<String> = Vec::new();
    let mut to_default = Vec::new();
    let mut not_covered: Vec<(usize, String)> = Vec::new();
    for (position, item) in items.iter().enumerate() {
        match router.plan(item.indicator.kind(), &item.context) {
            Ok(Plan::Policy { instances, .. }) => {
                for name in instances {
                    if !needed.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                        needed.push(name.clone());
                    }
                }
            }
            Ok(Plan::Default) => to_default.push(position),
            Err(why) => not_covered.push((position, why)),
        }
    }
    let mut default = None;
    if !to_default.is_empty() {
        match registry.resolve(None) {
            Ok(resolved) => default = Some(resolved),
            Err(why) => not_covered.extend(to_default.into_iter().map(|p| {
                (
                    p,
                    format!("no policy takes it, and there is no default instance: {why}"),
                )
            })),
        }
    }
    not_covered.sort_by_key(|(position, _)| *position);
    for (position, why) in &not_covered {
        let item = &items[*position];
        eprintln!(
            "not covered line {}: {}: {why}",
            item.line,
            item.indicator.value()
        );
    }
    let dropped: std::collections::HashSet<usize> = not_covered.iter().map(|(p, _)| *p).collect();
    let mut position = 0;
    items.retain(|_| {
        let keep = !dropped.contains(&position);
        position += 1;
        keep
    });
    // Ordered output waits for index 0, 1, 2...: no gaps.
    for (index, item) in items.iter_mut().enumerate() {
        item.index = index;
    }
    let mut started: Vec<Arc<Enricher>> = Vec::new();
    for name in needed {
        let resolved = registry.resolve(Some(&name)).map_err(anyhow::Error::msg)?;
        let enricher = start.enricher(resolved).await?;
        router.add_instance(enricher.clone());
        started.push(enricher);
    }
    if let Some(resolved) = default {
        // One enricher per instance, whichever way items reach it.
        let same = started.iter().find(|e| {
            e.instance()
                .name
                .eq_ignore_ascii_case(&resolved.config.name)
        });
        router.set_default(match same {
            Some(enricher) => enricher.clone(),
            None => start.enricher(resolved).await?,
        });
    }
    Ok((router, not_covered.len()))
}

/// What every enricher of one run shares: one runtime (compiling is the
/// slow part), one ledger, audit trail, cache and breaker.
struct Starter {
    runtime: Arc<crate::Runtime>,
    ledger: enrichbox_quota::Ledger,
    audit: crate::audit::Audit,
    cache: crate::cache::ResultCache,
    breaker: crate::breaker::Breaker,
    refresh: bool,
    verbose: bool,
}

impl Starter {
    async fn enricher(&self, resolved: ResolvedInstance) -> Result<Arc<Enricher>> {
        let enricher = Enricher::new(self.runtime.clone(), resolved.config).await?;
        super::context::report_compile(self.verbose, enricher.plugin());
        Ok(Arc::new(
            enricher
                .with_ledger(self.ledger.clone())
                .with_audit(self.audit.clone())
                .with_cache(self.cache.clone(), self.refresh)
                .with_breaker(self.breaker.clone()),
        ))
    }
}
