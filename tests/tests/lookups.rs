//! Lookups of every kind through the real ThreatFox component, against the
//! local mock: what is found, what is not, and what must not be reported.

use enrichbox::LookupOutcome;
use enrichbox_indicator::Kind;
use enrichbox_tests::harness::{enricher, instance_for};
use enrichbox_tests::mock::MockThreatFox;
use enrichbox_tests::mock::dataset::*;
use serde_json::Value;

async fn look_up(mock: &MockThreatFox, input: &str) -> LookupOutcome {
    enricher(instance_for(mock)).await.lookup(input, None).await
}

fn record_ids(outcome: &LookupOutcome) -> Vec<&str> {
    outcome
        .findings
        .iter()
        .map(|f| f.record_id.as_str())
        .collect()
}

fn assert_ok(outcome: &LookupOutcome) {
    assert!(
        outcome.error.is_none(),
        "{}: unexpected error {:?}",
        outcome.indicator,
        outcome.error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_ip_finds_its_ip_port_record_and_nothing_else() {
    let mock = MockThreatFox::start("k1");
    let outcome = look_up(&mock, C2_IP).await;
    assert_ok(&outcome);
    assert_eq!(outcome.kind.as_deref(), Some("ip"));
    assert_eq!(outcome.verdict.as_deref(), Some("malicious"));
    assert_eq!(record_ids(&outcome), ["1001"]);
    let finding = &outcome.findings[0];
    assert_eq!(finding.matched_ioc, format!("{C2_IP}:443"));
    assert_eq!(finding.matched_ioc_type, "ip:port");
    assert_eq!(finding.malware_family.as_deref(), Some("Cobalt Strike"));
    assert_eq!(
        finding.malware_aliases,
        ["Agentemis", "BEACON", "CobaltStrike"]
    );
    assert_eq!(finding.confidence, 100);
    assert_eq!(finding.first_seen.as_deref(), Some("2024-03-27T20:02:05Z"));
    assert_eq!(
        finding.permalink.as_deref(),
        Some("https://threatfox.abuse.ch/ioc/1001/")
    );
    assert_eq!(finding.relation, "exact");
    assert_eq!(outcome.provider, "abuse.ch ThreatFox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ip_that_is_a_prefix_of_another_gets_only_its_own_record() {
    let mock = MockThreatFox::start("k1");
    // ThreatFox's substring search returns both 139.180.203.10:8080 and
    // 139.180.203.104:443 for this term.
    let outcome = look_up(&mock, SHORT_IP).await;
    assert_ok(&outcome);
    assert_eq!(record_ids(&outcome), ["1002"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_address_matches_its_bracketed_ip_port_record() {
    let mock = MockThreatFox::start("k1");
    let outcome = look_up(&mock, "2001:DB8:DEAD:0::1").await;
    assert_ok(&outcome);
    assert_eq!(outcome.indicator, C2_IPV6);
    assert_eq!(record_ids(&outcome), ["1003"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_lookup_never_reports_a_subdomain_or_url_record() {
    let mock = MockThreatFox::start("k1");
    let outcome = look_up(&mock, "Telemetry-CDN.example.").await;
    assert_ok(&outcome);
    assert_eq!(outcome.indicator, C2_DOMAIN);
    assert_eq!(
        record_ids(&outcome),
        ["1004"],
        "not {C2_SUBDOMAIN} (1005) nor the URL (1006)"
    );

    let sub = look_up(&mock, C2_SUBDOMAIN).await;
    assert_eq!(record_ids(&sub), ["1005"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_is_found_by_exact_match() {
    let mock = MockThreatFox::start("k1");
    let outcome = look_up(&mock, PAYLOAD_URL).await;
    assert_ok(&outcome);
    assert_eq!(outcome.kind.as_deref(), Some("url"));
    assert_eq!(record_ids(&outcome), ["1006"]);
    assert_eq!(outcome.findings[0].threat_type, "payload_delivery");

    let longer = look_up(&mock, "http://files.telemetry-cdn.example/invoice.exe.bak").await;
    assert_ok(&longer);
    assert_eq!(longer.verdict.as_deref(), Some("unknown"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_lookup_reports_the_sample_and_what_threatfox_links_to_it() {
    let mock = MockThreatFox::start("k1");
    let outcome = look_up(&mock, &SAMPLE_SHA256.to_uppercase()).await;
    assert_ok(&outcome);
    assert_eq!(outcome.kind.as_deref(), Some("hash"));
    assert_eq!(outcome.verdict.as_deref(), Some("malicious"));
    let relations: Vec<(&str, &str)> = outcome
        .findings
        .iter()
        .map(|f| (f.record_id.as_str(), f.relation.as_str()))
        .collect();
    assert_eq!(
        relations,
        [("1007", "exact"), ("1001", "linked"), ("1004", "linked")]
    );
    // Two calls, as describe declares for hashes: search_ioc, then search_hash.
    let queries: Vec<Value> = mock
        .received()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(queries[0]["query"], "search_ioc");
    assert_eq!(queries[1]["query"], "search_hash");
    assert_eq!(queries[1]["hash"], SAMPLE_SHA256);

    // The MD5 of the same sample is not listed itself, but its C2s are.
    let md5 = look_up(&mock, SAMPLE_MD5).await;
    assert_eq!(record_ids(&md5), ["1001", "1004"]);
    assert!(md5.findings.iter().all(|f| f.relation == "linked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sha1_hash_costs_one_call_because_search_hash_cannot_take_it() {
    let mock = MockThreatFox::start("k1");
    let outcome = look_up(&mock, &"ab".repeat(20)).await;
    assert_ok(&outcome);
    assert_eq!(outcome.verdict.as_deref(), Some("unknown"));
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_is_unknown_never_clean() {
    let mock = MockThreatFox::start("k1");
    for input in [
        "203.0.113.7",
        "nothing-here.example",
        "https://nothing-here.example/x",
        UNKNOWN_SHA256,
    ] {
        let outcome = look_up(&mock, input).await;
        assert_ok(&outcome);
        assert_eq!(outcome.verdict.as_deref(), Some("unknown"), "{input}");
        assert!(outcome.findings.is_empty(), "{input}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_confidence_records_make_the_verdict_suspicious() {
    let mock = MockThreatFox::start("k1");
    let outcome = look_up(&mock, LOW_CONFIDENCE_DOMAIN).await;
    assert_ok(&outcome);
    assert_eq!(outcome.verdict.as_deref(), Some("suspicious"));
    // "Unknown malware" is ThreatFox's way of saying no family.
    assert_eq!(outcome.findings[0].malware_family, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_json_posts_carrying_the_key_the_host_added() {
    let mock = MockThreatFox::start("the-instance-key");
    let outcome = look_up(&mock, C2_DOMAIN).await;
    assert_ok(&outcome);
    let received = mock.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/v1/");
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    assert_eq!(request.auth_key.as_deref(), Some("the-instance-key"));
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"query": "search_ioc", "search_term": C2_DOMAIN})
    );
    // The host saw and recorded the request, without the key.
    assert_eq!(outcome.requests.len(), 1);
    assert_eq!(outcome.requests[0].status, Some(200));
    assert!(!format!("{:?}", outcome.requests).contains("the-instance-key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raw_provider_answer_is_kept_for_analysts() {
    let mock = MockThreatFox::start("k1");
    let outcome = look_up(&mock, C2_DOMAIN).await;
    let raw = outcome.raw.expect("raw JSON");
    // Unfiltered: the subdomain and URL records ThreatFox returned are there.
    assert_eq!(raw["search_ioc"]["data"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forcing_a_kind_validates_against_it() {
    let mock = MockThreatFox::start("k1");
    let enricher = enricher(instance_for(&mock)).await;
    let outcome = enricher.lookup(C2_DOMAIN, Some(Kind::Ip)).await;
    let error = outcome.error.expect("a domain is not an IP");
    assert_eq!(error.kind.as_str(), "invalid-indicator");
    assert!(
        error.message.contains("not an IPv4 or IPv6 address"),
        "{}",
        error.message
    );
    assert_eq!(mock.request_count(), 0);
}
