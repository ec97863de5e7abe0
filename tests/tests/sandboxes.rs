//! How sandboxes are allocated: a pool sized from the expected concurrency,
//! a fallback when the pool cannot be reserved, and bursts that wait for a
//! free sandbox instead of failing.

use std::sync::Arc;
use std::time::Duration;

use enrichbox::{Allocator, Enricher, Runtime, RuntimeOptions};
use enrichbox_tests::harness::instance_for;
use enrichbox_tests::mock::dataset::C2_DOMAIN;
use enrichbox_tests::mock::{Behavior, MockThreatFox};

fn runtime(concurrency: usize) -> Arc<Runtime> {
    Arc::new(
        Runtime::with_options(RuntimeOptions {
            concurrency,
            ..RuntimeOptions::default()
        })
        .expect("runtime"),
    )
}

#[test]
fn the_pool_is_sized_from_the_concurrency() {
    let runtime = runtime(32);
    match runtime.allocator() {
        Allocator::Pooling { slots } => assert!(*slots >= 32, "{slots} slots"),
        other => panic!("expected a pool on this machine, got {other}"),
    }
    assert!(runtime.notices().is_empty(), "{:?}", runtime.notices());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_too_large_to_reserve_falls_back_to_on_demand_and_says_so() {
    // Billions of sandboxes of 4 GiB address space each: more than any
    // machine can reserve.
    let runtime = runtime(2_000_000_000);
    assert!(
        matches!(runtime.allocator(), Allocator::OnDemand { .. }),
        "{}",
        runtime.allocator()
    );
    assert!(
        runtime
            .notices()
            .iter()
            .any(|n| n.contains("falling back to on-demand")),
        "{:?}",
        runtime.notices()
    );
    let mock = MockThreatFox::start("k1");
    let enricher = Enricher::new(runtime, instance_for(&mock)).await.unwrap();
    let outcome = enricher.lookup(C2_DOMAIN, None).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.verdict.as_deref(), Some("malicious"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_the_pool_waits_for_sandboxes_instead_of_failing() {
    let runtime = runtime(1);
    let Allocator::Pooling { slots } = runtime.allocator().clone() else {
        panic!("expected a pool, got {}", runtime.allocator());
    };
    let mock = MockThreatFox::start("k1");
    mock.set_behavior(Behavior::Slow(Duration::from_millis(50)));
    let enricher = Arc::new(Enricher::new(runtime, instance_for(&mock)).await.unwrap());
    let burst = slots as usize * 4;
    let mut lookups = tokio::task::JoinSet::new();
    for _ in 0..burst {
        let enricher = enricher.clone();
        lookups.spawn(async move { enricher.lookup(C2_DOMAIN, None).await });
    }
    let mut succeeded = 0;
    while let Some(done) = lookups.join_next().await {
        let outcome = done.unwrap();
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        succeeded += 1;
    }
    assert_eq!(succeeded, burst);
    assert_eq!(mock.request_count(), burst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_allowed_more_memory_than_the_sandboxes_hold_is_refused_clearly() {
    let mock = MockThreatFox::start("k1");
    let mut instance = instance_for(&mock);
    instance.limits.max_memory_bytes = 512 << 20;
    let error = Enricher::new(runtime(1), instance)
        .await
        .err()
        .expect("refused");
    let text = error.to_string();
    assert!(text.contains("512 MiB"), "{text}");
    assert!(text.contains("max_memory_bytes"), "{text}");
}
