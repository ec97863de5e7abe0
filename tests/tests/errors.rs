//! Every way ThreatFox, the network, or the input can fail maps to its own
//! error kind, never to an empty "ok", and the next lookup still works.

use std::time::Duration;

use enrichbox::{ErrorKind, LookupOutcome};
use enrichbox_tests::harness::{enricher, instance_for};
use enrichbox_tests::mock::dataset::{C2_DOMAIN, C2_IP, SAMPLE_MD5};
use enrichbox_tests::mock::{Behavior, MockThreatFox};

async fn look_up_while(behavior: Behavior, input: &str) -> (LookupOutcome, MockThreatFox) {
    let mock = MockThreatFox::start("k1");
    mock.set_behavior(behavior);
    let mut instance = instance_for(&mock);
    instance.limits.timeout = Duration::from_secs(2);
    instance.limits.max_response_bytes = 1 << 20;
    let outcome = enricher(instance).await.lookup(input, None).await;
    (outcome, mock)
}

fn error_of(outcome: &LookupOutcome) -> (ErrorKind, String) {
    let error = outcome
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("expected an error, got verdict {:?}", outcome.verdict));
    assert_eq!(
        outcome.verdict.as_deref(),
        None,
        "a failed lookup has no verdict"
    );
    (error.kind, error.message.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_failures_map_to_their_error_kinds() {
    let cases = [
        (
            Behavior::HttpStatus(401),
            ErrorKind::CredentialsRejected,
            Some(401),
        ),
        (
            Behavior::HttpStatus(403),
            ErrorKind::CredentialsRejected,
            Some(403),
        ),
        (
            Behavior::HttpStatus(500),
            ErrorKind::UpstreamUnavailable,
            Some(500),
        ),
        (
            Behavior::HttpStatus(503),
            ErrorKind::UpstreamUnavailable,
            Some(503),
        ),
        (
            Behavior::HttpStatus(502),
            ErrorKind::UpstreamUnavailable,
            Some(502),
        ),
    ];
    for (behavior, kind, status) in cases {
        let (outcome, _mock) = look_up_while(behavior.clone(), C2_IP).await;
        let (got, message) = error_of(&outcome);
        assert_eq!(got, kind, "{behavior:?}: {message}");
        if kind == ErrorKind::UpstreamUnavailable {
            assert_eq!(
                outcome.error.as_ref().unwrap().http_status.map(i32::from),
                status.map(i32::from)
            );
        }
        assert!(
            message.contains(&status.unwrap().to_string()),
            "{behavior:?}: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_key_is_credentials_rejected() {
    let mock = MockThreatFox::start("right-key");
    let mut instance = instance_for(&mock);
    instance.key_source = Some(enrichbox::config::KeySource::Value(
        enrichbox::secret::Secret::new("wrong-key"),
    ));
    let enricher = enricher(instance).await;
    let outcome = enricher.lookup(C2_IP, None).await;
    assert_eq!(error_of(&outcome).0, ErrorKind::CredentialsRejected);

    // After three rejections in a row the key will not be better on the
    // next lookup: a batch stops spending requests and quota on it.
    for _ in 0..5 {
        let next = enricher.lookup(C2_DOMAIN, None).await;
        assert_eq!(error_of(&next).0, ErrorKind::CredentialsRejected);
    }
    assert_eq!(mock.request_count(), 3);
    let (_, message) = error_of(&enricher.lookup(C2_DOMAIN, None).await);
    assert!(message.contains("3 times in a row"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limiting_carries_retry_after_when_given() {
    let (outcome, _m) = look_up_while(Behavior::RateLimited(Some("30".into())), C2_IP).await;
    assert_eq!(error_of(&outcome).0, ErrorKind::RateLimited);
    assert_eq!(outcome.error.unwrap().retry_after_seconds, Some(30));

    let (outcome, _m) = look_up_while(Behavior::RateLimited(None), C2_IP).await;
    assert_eq!(error_of(&outcome).0, ErrorKind::RateLimited);
    assert_eq!(outcome.error.unwrap().retry_after_seconds, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_status_maps_to_its_error_kind() {
    let cases = [
        ("illegal_search_term", ErrorKind::InvalidIndicator),
        ("illegal_hash", ErrorKind::InvalidIndicator),
        ("illegl_hash", ErrorKind::InvalidIndicator),
        ("unknown_auth_key", ErrorKind::CredentialsRejected),
        ("no_json", ErrorKind::MalformedResponse),
        ("unknown_operation", ErrorKind::MalformedResponse),
        ("brand_new_status", ErrorKind::MalformedResponse),
    ];
    for (status, kind) in cases {
        let (outcome, _m) = look_up_while(Behavior::QueryStatus(status.into()), C2_DOMAIN).await;
        let (got, message) = error_of(&outcome);
        assert_eq!(got, kind, "{status}: {message}");
        assert!(message.contains(status), "{status}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_answers_are_errors_not_empty_results() {
    let (outcome, _m) = look_up_while(Behavior::MalformedJson, C2_DOMAIN).await;
    let (kind, message) = error_of(&outcome);
    assert_eq!(kind, ErrorKind::MalformedResponse);
    assert!(message.contains("not JSON"), "{message}");

    let (outcome, _m) = look_up_while(Behavior::BrokenRecord, C2_DOMAIN).await;
    let (kind, message) = error_of(&outcome);
    assert_eq!(kind, ErrorKind::MalformedResponse);
    assert!(message.contains("`ioc`"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_answer_is_cut_off_with_a_clear_error() {
    // Announced by Content-Length, and streamed without one.
    for behavior in [
        Behavior::Oversized(3 << 20),
        Behavior::OversizedChunked(3 << 20),
    ] {
        let (outcome, _m) = look_up_while(behavior.clone(), C2_DOMAIN).await;
        let (kind, message) = error_of(&outcome);
        assert_eq!(kind, ErrorKind::ResponseTooLarge, "{behavior:?}: {message}");
        assert!(
            message.contains("limit") && message.contains(&(1u64 << 20).to_string()),
            "{behavior:?}: {message}"
        );
        assert_eq!(outcome.requests[0].limit.as_deref(), Some("response-size"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_provider_times_out_within_the_lookup_deadline() {
    let started = std::time::Instant::now();
    let (outcome, _m) = look_up_while(Behavior::Slow(Duration::from_secs(8)), C2_DOMAIN).await;
    assert_eq!(error_of(&outcome).0, ErrorKind::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_provider_is_upstream_unavailable() {
    // Port 1 (tcpmux) is outside the ephemeral range, so no concurrently
    // started mock can take it; nothing listens there.
    let port = 1;
    let mock = MockThreatFox::start("k1");
    let mut instance = instance_for(&mock);
    instance.base_url = url::Url::parse(&format!("http://127.0.0.1:{port}/api/v1/")).unwrap();
    let outcome = enricher(instance).await.lookup(C2_DOMAIN, None).await;
    let (kind, message) = error_of(&outcome);
    assert_eq!(kind, ErrorKind::UpstreamUnavailable);
    assert!(message.contains("refused"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_is_rejected_before_any_request() {
    let mock = MockThreatFox::start("k1");
    let enricher = enricher(instance_for(&mock)).await;
    for input in [
        "",
        "not an indicator",
        "1.2.3.4:80",
        "ftp://x.example/",
        "zz",
        &"g".repeat(64),
    ] {
        let outcome = enricher.lookup(input, None).await;
        let (kind, message) = error_of(&outcome);
        assert_eq!(kind, ErrorKind::InvalidIndicator, "{input:?}");
        assert!(!message.is_empty());
    }
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_not_enabled_is_refused_before_the_plugin_runs() {
    let mock = MockThreatFox::start("k1");
    let mut instance = instance_for(&mock);
    instance.enabled_kinds = Some(vec![enrichbox_indicator::Kind::Ip]);
    let enricher = enricher(instance).await;
    let outcome = enricher.lookup(C2_DOMAIN, None).await;
    let (kind, message) = error_of(&outcome);
    assert_eq!(kind, ErrorKind::KindNotPermitted);
    assert!(
        message.contains("domain") && message.contains("enabled_kinds"),
        "{message}"
    );
    assert_eq!(mock.request_count(), 0);
    assert!(enricher.lookup(C2_IP, None).await.error.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabling_a_kind_the_plugin_lacks_is_a_configuration_error() {
    // Every kind is supported by ThreatFox; the rogue plugin supports URLs only.
    let mock = MockThreatFox::start("k1");
    let mut instance = enrichbox_tests::harness::rogue_instance(&mock);
    instance.enabled_kinds = Some(vec![enrichbox_indicator::Kind::Hash]);
    let error = enrichbox::Enricher::new(enrichbox_tests::harness::runtime(), instance)
        .await
        .err()
        .expect("refused");
    let message = error.to_string();
    assert!(
        message.contains("`hash`") && message.contains("does not support"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_host_serves_normally_after_every_failure() {
    let mock = MockThreatFox::start("k1");
    let mut instance = instance_for(&mock);
    instance.limits.timeout = Duration::from_secs(1);
    let enricher = enricher(instance).await;
    for behavior in [
        Behavior::HttpStatus(500),
        Behavior::MalformedJson,
        Behavior::Slow(Duration::from_secs(3)),
        Behavior::QueryStatus("no_json".into()),
    ] {
        mock.set_behavior(behavior.clone());
        assert!(
            enricher.lookup(SAMPLE_MD5, None).await.error.is_some(),
            "{behavior:?}"
        );
        mock.set_behavior(Behavior::Normal);
        let outcome = enricher.lookup(SAMPLE_MD5, None).await;
        assert!(
            outcome.error.is_none(),
            "after {behavior:?}: {:?}",
            outcome.error
        );
        assert_eq!(outcome.findings.len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_echoed_by_the_provider_is_redacted() {
    let mock = MockThreatFox::start("super-secret-key-123");
    mock.set_behavior(Behavior::EchoKey);
    let outcome = enricher(instance_for(&mock))
        .await
        .lookup(C2_IP, None)
        .await;
    let (kind, message) = error_of(&outcome);
    assert_eq!(kind, ErrorKind::CredentialsRejected);
    assert!(message.contains("[REDACTED]"), "{message}");
    let everything = format!(
        "{}{:?}{:?}{}",
        serde_json::to_string(&outcome).unwrap(),
        outcome.requests,
        outcome.log,
        outcome.output
    );
    assert!(!everything.contains("super-secret-key-123"), "{everything}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_within_the_deadline() {
    let mock = MockThreatFox::start("k1");
    let mut instance = instance_for(&mock);
    instance.limits.timeout = Duration::from_secs(6);
    let enricher = enricher(instance).await;

    // Told to come back in 1 s, twice: the third try succeeds.
    mock.fail_next(vec![
        Behavior::RateLimited(Some("1".into())),
        Behavior::RateLimited(Some("1".into())),
    ]);
    let started = std::time::Instant::now();
    let outcome = enricher.lookup(C2_IP, None).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.verdict.as_deref(), Some("malicious"));
    assert_eq!(mock.request_count(), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited as told: {:?}",
        started.elapsed()
    );

    // A 503 without Retry-After backs off and tries again.
    mock.fail_next(vec![Behavior::HttpStatus(503)]);
    assert!(enricher.lookup(C2_DOMAIN, None).await.error.is_none());
    assert_eq!(mock.request_count(), 5);

    // Not worth retrying: credentials, and a wait longer than the deadline.
    mock.fail_next(vec![Behavior::HttpStatus(403)]);
    assert_eq!(
        enricher.lookup(C2_IP, None).await.error.unwrap().kind,
        ErrorKind::CredentialsRejected
    );
    assert_eq!(mock.request_count(), 6);
    mock.fail_next(vec![Behavior::RateLimited(Some("60".into()))]);
    let started = std::time::Instant::now();
    let outcome = enricher.lookup(C2_IP, None).await;
    assert_eq!(outcome.error.unwrap().retry_after_seconds, Some(60));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(mock.request_count(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_provider_is_paused_then_tried_once_while_half_open() {
    use enrichbox::audit::{Audit, MemorySink};
    use enrichbox::breaker::{Breaker, BreakerSettings, Circuit};

    let mock = MockThreatFox::start("k1");
    let mut instance = instance_for(&mock);
    instance.limits.timeout = Duration::from_millis(600);
    instance.breaker = BreakerSettings {
        failures: 2,
        cooldown_seconds: 1,
    };
    let breaker = Breaker::in_memory().unwrap();
    let sink = MemorySink::default();
    let enricher = std::sync::Arc::new(
        enricher(instance)
            .await
            .with_breaker(breaker.clone())
            .with_audit(Audit::default().with_sink(std::sync::Arc::new(sink.clone()))),
    );
    let state = || breaker.circuit("Test_ThreatFox");
    // Pauses are kept in whole seconds: wait until this one has passed.
    let half_open = || async {
        let started = std::time::Instant::now();
        while !matches!(state(), Circuit::HalfOpen { .. }) {
            assert!(started.elapsed() < Duration::from_secs(3), "{:?}", state());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let events = |name: &str| sink.records().iter().filter(|r| r.event == name).count();

    mock.set_behavior(Behavior::HttpStatus(503));
    for _ in 0..2 {
        assert_eq!(
            enricher.lookup(C2_IP, None).await.error.unwrap().kind,
            ErrorKind::UpstreamUnavailable
        );
    }
    assert!(
        matches!(state(), Circuit::Open(_)),
        "{state:?}",
        state = state()
    );
    assert_eq!(events("circuit-open"), 1);
    let sent = mock.request_count();
    // Open: fails fast, sends nothing, says until when and why.
    let fast = enricher.lookup(C2_IP, None).await.error.unwrap();
    assert_eq!(fast.kind, ErrorKind::UpstreamUnavailable);
    assert!(
        fast.message.contains("paused until") && fast.message.contains("503"),
        "{}",
        fast.message
    );
    assert_eq!(mock.request_count(), sent);

    // Half-open, provider still failing: the one trial fails and the
    // instance is paused again at once, not after two more failures.
    half_open().await;
    let trial = enricher.lookup(C2_IP, None).await.error.unwrap();
    assert_eq!(trial.kind, ErrorKind::UpstreamUnavailable);
    assert!(mock.request_count() > sent, "the trial was sent");
    let Circuit::Open(pause) = state() else {
        panic!("a failed trial reopens: {:?}", state())
    };
    assert!(
        pause.reason.contains("trial lookup after the pause failed"),
        "{}",
        pause.reason
    );
    let sent = mock.request_count();
    assert!(enricher.lookup(C2_DOMAIN, None).await.error.is_some());
    assert_eq!(mock.request_count(), sent, "reopened: nothing is sent");

    // Half-open, provider healthy but slow: of many concurrent lookups
    // exactly one reaches it; the others fail fast while it runs.
    half_open().await;
    mock.set_behavior(Behavior::Slow(Duration::from_millis(300)));
    let lookups: Vec<_> = (0..8)
        .map(|_| {
            let enricher = enricher.clone();
            tokio::spawn(async move { enricher.lookup(C2_IP, None).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for lookup in lookups {
        outcomes.push(lookup.await.unwrap());
    }
    assert_eq!(mock.request_count(), sent + 1, "exactly one trial request");
    assert_eq!(outcomes.iter().filter(|o| o.error.is_none()).count(), 1);
    for refused in outcomes.iter().filter_map(|o| o.error.as_ref()) {
        assert_eq!(refused.kind, ErrorKind::UpstreamUnavailable);
        assert!(
            refused.message.contains("trial lookup in progress"),
            "{}",
            refused.message
        );
    }
    assert_eq!(state(), Circuit::Closed, "the trial succeeded");
    assert_eq!(events("circuit-trial"), 2);
    assert_eq!(events("circuit-open"), 2);
    assert_eq!(events("circuit-close"), 1);

    // Closed: lookups go through, and one failure does not pause.
    mock.set_behavior(Behavior::Normal);
    assert!(enricher.lookup(C2_DOMAIN, None).await.error.is_none());
    mock.set_behavior(Behavior::HttpStatus(503));
    enricher.lookup(C2_DOMAIN, None).await;
    assert_eq!(state(), Circuit::Closed);
}
