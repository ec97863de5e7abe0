//! Quota through the real component: units are reserved before the plugin
//! runs, refused when missing (nothing is sent), given back when nothing was
//! sent, and exact when lookups race.

use std::sync::Arc;
use std::time::Duration;

use enrichbox::ErrorKind;
use enrichbox_quota::{Ledger, Limit, ManualClock, Period};
use enrichbox_tests::harness::{enricher, instance_for, rogue_instance};
use enrichbox_tests::mock::dataset::{C2_IP, SAMPLE_MD5};
use enrichbox_tests::mock::{Behavior, MockThreatFox};

/// 2026-12-04T12:00:00Z
const NOON: i64 = 1_796_385_600;

fn ledger(clock: &ManualClock) -> Ledger {
    Ledger::open_in_memory(Arc::new(clock.clone())).unwrap()
}

fn per_day(units: u64) -> Option<Limit> {
    Some(Limit {
        units,
        per: Period::Day,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_quota_refuses_the_lookup_before_any_request() {
    let mock = MockThreatFox::start("k1");
    let clock = ManualClock::new(NOON);
    let ledger = ledger(&clock);
    let mut instance = instance_for(&mock);
    instance.quota = per_day(3);
    let enricher = enricher(instance).await.with_ledger(ledger.clone());

    // A hash costs 2 units, so the second one does not fit in 3.
    let first = enricher.lookup(SAMPLE_MD5, None).await;
    assert!(first.error.is_none(), "{:?}", first.error);
    assert_eq!(first.units_charged, 2);
    let second = enricher.lookup(SAMPLE_MD5, None).await;
    let error = second.error.expect("refused");
    assert_eq!(error.kind, ErrorKind::QuotaExhausted);
    assert!(error.message.contains("2 of 3"), "{}", error.message);
    assert!(
        error.message.contains("2026-12-05T00:00:00Z"),
        "reset time: {}",
        error.message
    );
    assert_eq!(mock.request_count(), 2, "the refused lookup sent nothing");

    // One unit is still there for a 1-unit kind.
    assert!(enricher.lookup(C2_IP, None).await.error.is_none());
    let status = ledger.status("Test_ThreatFox", per_day(3)).unwrap();
    assert_eq!((status.used, status.remaining), (3, Some(0)));

    // The next UTC day is a new window.
    clock.set(NOON + 86_400);
    assert!(enricher.lookup(SAMPLE_MD5, None).await.error.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_come_back_when_nothing_was_sent_and_stay_spent_when_something_was() {
    let mock = MockThreatFox::start("k1");
    let clock = ManualClock::new(NOON);
    let ledger = ledger(&clock);

    // The rogue plugin aims at another origin: denied, nothing sent.
    let mut rogue = rogue_instance(&mock);
    rogue.quota = per_day(10);
    let rogue = enricher(rogue).await.with_ledger(ledger.clone());
    let denied = rogue.lookup("http://127.0.0.2:9/x", None).await;
    assert_eq!(denied.error.unwrap().kind, ErrorKind::DeniedByPolicy);
    assert_eq!(denied.units_charged, 0);
    let status = ledger.status("Rogue", per_day(10)).unwrap();
    assert_eq!(
        (status.used, status.given_back, status.in_flight),
        (0, 1, 0)
    );

    // ThreatFox fails with HTTP 500: the request left, so the units are spent.
    let mut instance = instance_for(&mock);
    instance.quota = per_day(10);
    let threatfox = enricher(instance).await.with_ledger(ledger.clone());
    // It is retried (3 tries in all), and every try that was sent is charged.
    mock.set_behavior(Behavior::HttpStatus(500));
    let failed = threatfox.lookup(C2_IP, None).await;
    assert_eq!(failed.error.unwrap().kind, ErrorKind::UpstreamUnavailable);
    assert_eq!(failed.units_charged, 3);
    assert_eq!(mock.request_count(), 3);

    // Invalid input never reserves anything.
    assert!(threatfox.lookup("nonsense!", None).await.error.is_some());
    let status = ledger.status("Test_ThreatFox", per_day(10)).unwrap();
    assert_eq!(
        (status.used, status.given_back, status.remaining),
        (3, 0, Some(7))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_cannot_be_reached_costs_nothing() {
    let mock = MockThreatFox::start("k1");
    let clock = ManualClock::new(NOON);
    let ledger = ledger(&clock);
    let mut instance = instance_for(&mock);
    // Nothing listens on port 1: every try is refused before a byte leaves.
    instance.base_url = url::Url::parse("http://127.0.0.1:1/api/v1/").unwrap();
    instance.quota = per_day(10);
    let unreachable = enricher(instance).await.with_ledger(ledger.clone());
    let outcome = unreachable.lookup(C2_IP, None).await;
    assert_eq!(outcome.error.unwrap().kind, ErrorKind::UpstreamUnavailable);
    assert_eq!(outcome.units_charged, 0);
    let status = ledger.status("Test_ThreatFox", per_day(10)).unwrap();
    assert_eq!((status.used, status.remaining), (0, Some(10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_sending_more_than_declared_is_charged_what_it_declared() {
    let mock = MockThreatFox::start("k1");
    let clock = ManualClock::new(NOON);
    let ledger = ledger(&clock);
    let mut rogue = rogue_instance(&mock);
    rogue.quota = per_day(10);
    let rogue = enricher(rogue).await.with_ledger(ledger.clone());
    // Declares 3 calls and 1 unit for a URL, tries 4 requests.
    let outcome = rogue
        .lookup(
            &format!("http://127.0.0.1:{}/api/v1/#repeat-4", mock.port()),
            None,
        )
        .await;
    assert_eq!(outcome.error.unwrap().kind, ErrorKind::DeniedByPolicy);
    assert_eq!(mock.request_count(), 3);
    assert_eq!(outcome.units_charged, 1);
    assert_eq!(ledger.status("Rogue", per_day(10)).unwrap().used, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_lookups_spend_exactly_what_is_left() {
    let mock = MockThreatFox::start("k1");
    mock.set_behavior(Behavior::Slow(Duration::from_millis(50)));
    let clock = ManualClock::new(NOON);
    let ledger = ledger(&clock);
    let mut instance = instance_for(&mock);
    instance.quota = per_day(7);
    let enricher = Arc::new(enricher(instance).await.with_ledger(ledger.clone()));

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let enricher = enricher.clone();
        tasks.spawn(async move { enricher.lookup(&format!("198.51.100.{i}"), None).await });
    }
    let (mut ok, mut exhausted) = (0, 0);
    while let Some(outcome) = tasks.join_next().await {
        match outcome.unwrap().error {
            None => ok += 1,
            Some(e) if e.kind == ErrorKind::QuotaExhausted => exhausted += 1,
            Some(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((ok, exhausted), (7, 17));
    assert_eq!(mock.request_count(), 7, "never more requests than units");
    let status = ledger.status("Test_ThreatFox", per_day(7)).unwrap();
    assert_eq!(
        (status.used, status.in_flight, status.remaining),
        (7, 0, Some(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_sees_what_is_left_and_an_unlimited_instance_says_so() {
    let mock = MockThreatFox::start("k1");
    let clock = ManualClock::new(NOON);
    let ledger = ledger(&clock);
    let enricher = enricher(instance_for(&mock))
        .await
        .with_ledger(ledger.clone());
    for _ in 0..3 {
        assert!(enricher.lookup(C2_IP, None).await.error.is_none());
    }
    let status = ledger.status("Test_ThreatFox", None).unwrap();
    assert_eq!(status.remaining, None);
    assert_eq!(status.used, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_count_survives_a_restart() {
    let mock = MockThreatFox::start("k1");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let clock = ManualClock::new(NOON);
    {
        let ledger = Ledger::open(&path, Arc::new(clock.clone())).unwrap();
        let mut instance = instance_for(&mock);
        instance.quota = per_day(5);
        let enricher = enricher(instance).await.with_ledger(ledger);
        assert!(enricher.lookup(SAMPLE_MD5, None).await.error.is_none());
    }
    let reopened = Ledger::open(&path, Arc::new(clock)).unwrap();
    let status = reopened.status("Test_ThreatFox", per_day(5)).unwrap();
    assert_eq!((status.used, status.remaining), (2, Some(3)));
}
