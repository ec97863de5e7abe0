//! A hostile plugin tries each escape in turn. Each attempt must be
//! contained with a specific error (or come back empty-handed), and the same
//! host must serve a normal lookup right after.

use std::time::{Duration, Instant};

use std::sync::Arc;

use enrichbox::audit::{Audit, MemorySink};
use enrichbox::{Enricher, ErrorKind, LookupOutcome};
use enrichbox_tests::harness::{enricher, hostile_instance, instance_for};
use enrichbox_tests::mock::MockThreatFox;
use enrichbox_tests::mock::dataset::C2_DOMAIN;

const KEY: &str = "hostile-suite-key-31f9";

struct Arena {
    mock: MockThreatFox,
    hostile: Enricher,
    normal: Enricher,
    audit: MemorySink,
}

impl Arena {
    async fn new() -> Arena {
        let mock = MockThreatFox::start(KEY);
        let mut hostile = hostile_instance(&mock);
        hostile.limits.timeout = Duration::from_secs(2);
        hostile.limits.max_memory_bytes = 32 << 20;
        let audit = MemorySink::default();
        let hostile = enricher(hostile)
            .await
            .with_audit(Audit::default().with_sink(Arc::new(audit.clone())));
        let normal = enricher(instance_for(&mock)).await;
        Arena {
            mock,
            hostile,
            normal,
            audit,
        }
    }

    /// The events recorded for one lookup, as `event` or `event:limit`.
    fn events(&self, outcome: &LookupOutcome) -> Vec<String> {
        self.audit
            .records()
            .into_iter()
            .filter(|r| r.lookup_id == outcome.lookup_id)
            .map(|r| match r.detail.get("limit").and_then(|l| l.as_str()) {
                Some(limit) => format!("{}:{limit}", r.event),
                None => r.event,
            })
            .collect()
    }

    /// The attack was recorded from start to end, with this limit tripped.
    fn assert_audited(&self, outcome: &LookupOutcome, limit: Option<&str>) {
        let events = self.events(outcome);
        assert_eq!(
            events.first().map(String::as_str),
            Some("lookup-start"),
            "{events:?}"
        );
        assert_eq!(
            events.last().map(String::as_str),
            Some("lookup-end"),
            "{events:?}"
        );
        if let Some(limit) = limit {
            assert!(events.contains(&format!("limit:{limit}")), "{events:?}");
        }
        let text = format!("{:?}", self.audit.records());
        assert!(!text.contains(KEY), "the audit trail holds the key");
    }

    async fn attack(&self, attack: &str) -> LookupOutcome {
        let outcome = self
            .hostile
            .lookup(&format!("{attack}.hostile.test"), None)
            .await;
        // The host is unharmed: a real lookup works right after.
        let after = self.normal.lookup(C2_DOMAIN, None).await;
        assert!(after.error.is_none(), "after {attack}: {:?}", after.error);
        assert_eq!(after.verdict.as_deref(), Some("malicious"));
        let everything = format!(
            "{}{:?}{}",
            serde_json::to_string(&outcome).unwrap(),
            outcome.raw,
            outcome.output
        );
        assert!(!everything.contains(KEY), "{attack} saw the key");
        outcome
    }
}

fn seen(outcome: &LookupOutcome) -> String {
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    outcome.raw.as_ref().unwrap()["seen"]
        .as_str()
        .unwrap()
        .to_string()
}

fn failed_with(outcome: &LookupOutcome, kind: ErrorKind) -> String {
    let error = outcome
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("{} was not stopped", outcome.indicator));
    assert_eq!(error.kind, kind, "{}: {}", outcome.indicator, error.message);
    assert_eq!(outcome.verdict.as_deref(), None);
    error.message.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filesystem_environment_and_key_are_out_of_reach() {
    let arena = Arena::new().await;
    // Each probe gets "nothing there" from the host, which records it.
    let file = arena.attack("read-file").await;
    assert!(
        arena
            .events(&file)
            .contains(&"filesystem-probe".to_string()),
        "{:?}",
        arena.events(&file)
    );
    let file = seen(&file);
    assert!(
        file.starts_with("Err(") && !file.contains("root:"),
        "{file}"
    );
    let dir = arena.attack("list-dir").await;
    assert!(arena.events(&dir).contains(&"filesystem-probe".to_string()));
    assert!(seen(&dir).starts_with("Err("), "{}", seen(&dir));
    let env = arena.attack("env-var").await;
    assert!(
        arena
            .events(&env)
            .contains(&"environment-probe".to_string()),
        "{:?}",
        arena.events(&env)
    );
    assert_eq!(seen(&env), "vars=[] args=[]");
    let dump = arena.attack("config-dump").await;
    arena.assert_audited(&dump, None);
    assert!(arena.events(&dump).contains(&"config-read".to_string()));
    let config = seen(&dump);
    assert!(
        config.contains("account-name: \"Hostile\"") && !config.contains(KEY),
        "{config}"
    );
    assert_eq!(
        arena.mock.request_count(),
        4,
        "only the normal lookups reached the provider"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_never_returns_is_stopped_at_the_deadline() {
    let arena = Arena::new().await;
    let started = Instant::now();
    let outcome = arena.attack("loop-forever").await;
    arena.assert_audited(&outcome, Some("timeout"));
    let message = failed_with(&outcome, ErrorKind::Timeout);
    assert!(message.contains("2.0s"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_allocation_hits_the_memory_cap() {
    let arena = Arena::new().await;
    let outcome = arena.attack("allocate").await;
    arena.assert_audited(&outcome, Some("memory"));
    let message = failed_with(&outcome, ErrorKind::MemoryLimit);
    assert!(message.contains("32 MiB"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_overflow_and_panic_are_traps_not_host_crashes() {
    let arena = Arena::new().await;
    // Rust keeps its stack in linear memory: running off it is an
    // out-of-bounds access (or a native stack overflow), a trap either way.
    let outcome = arena.attack("recurse").await;
    arena.assert_audited(&outcome, Some("trap"));
    let message = failed_with(&outcome, ErrorKind::PluginFailed);
    assert!(
        message.contains("stack overflow") || message.contains("out of bounds"),
        "{message}"
    );
    let message = failed_with(&arena.attack("panic").await, ErrorKind::PluginFailed);
    assert!(
        message.contains("crashed") && message.contains("panicked"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_stdout_is_capped_not_fatal() {
    let arena = Arena::new().await;
    let outcome = arena.attack("stdout-flood").await;
    arena.assert_audited(&outcome, Some("output"));
    assert_eq!(seen(&outcome), "flooded");
    assert!(
        outcome.output.len() < 70 * 1024,
        "{} bytes kept",
        outcome.output.len()
    );
    assert!(
        outcome
            .output
            .contains("more bytes of plugin output discarded")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_that_break_the_contract_are_rejected() {
    let arena = Arena::new().await;
    for (attack, needle) in [
        ("bad-confidence", "confidence 200"),
        ("wrong-indicator", "somebody-else.example"),
        ("huge-string", "at most"),
        ("not-json", "not JSON"),
    ] {
        let outcome = arena.attack(attack).await;
        arena.assert_audited(&outcome, None);
        let message = failed_with(&outcome, ErrorKind::ContractViolation);
        assert!(message.contains(needle), "{attack}: {message}");
    }
    // Invalid UTF-8 cannot even cross the boundary: the canonical ABI refuses it.
    failed_with(&arena.attack("non-utf8").await, ErrorKind::PluginFailed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_sandbox_slot_shows_nothing_of_the_lookup_before() {
    let arena = Arena::new().await;
    // Sequential lookups reuse the same pooled slot; each must find the
    // memory as new, although the one before left traces everywhere.
    for _ in 0..3 {
        let outcome = arena.attack("leftovers").await;
        arena.assert_audited(&outcome, None);
        assert_eq!(seen(&outcome), "static=\"\" dirty_bytes=0");
    }
}
