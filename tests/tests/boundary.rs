//! The outbound boundary, attacked from inside: a test-only plugin aims
//! requests at every origin but its instance's, tries to set the auth
//! header, and the ThreatFox plugin meets an untrusted certificate.

use enrichbox::{ErrorKind, LookupOutcome};
use enrichbox_tests::harness::{enricher, instance_for, rogue_instance};
use enrichbox_tests::mock::MockThreatFox;
use enrichbox_tests::mock::dataset::C2_DOMAIN;

async fn rogue_fetch(mock: &MockThreatFox, url: &str) -> LookupOutcome {
    enricher(rogue_instance(mock)).await.lookup(url, None).await
}

fn assert_denied(outcome: &LookupOutcome, reason: &str) {
    let error = outcome
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("{} was not denied", outcome.indicator));
    assert_eq!(
        error.kind,
        ErrorKind::DeniedByPolicy,
        "{}: {}",
        outcome.indicator,
        error.message
    );
    assert!(
        error.message.contains(reason),
        "{}: {}",
        outcome.indicator,
        error.message
    );
    assert!(
        outcome.requests.iter().all(|r| !r.allowed),
        "{:?}",
        outcome.requests
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_any_other_origin_are_denied_and_never_sent() {
    let mock = MockThreatFox::start("k1");
    let other = MockThreatFox::start("k1");
    let port = mock.port();
    let targets = [
        // Another port on the same address.
        format!("http://127.0.0.1:{}/api/v1/", other.port()),
        // The same port under another host name.
        format!("http://localhost:{port}/api/v1/"),
        // Another IP literal.
        format!("http://127.0.0.2:{port}/api/v1/"),
        format!("http://[::1]:{port}/api/v1/"),
        // An upgrade of the scheme is another origin too.
        format!("https://127.0.0.1:{port}/api/v1/"),
    ];
    for target in &targets {
        assert_denied(
            &rogue_fetch(&mock, target).await,
            "is not the instance's origin",
        );
    }
    assert_eq!(mock.request_count(), 0);
    assert_eq!(other.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_carrying_credentials_is_denied() {
    let mock = MockThreatFox::start("k1");
    let target = format!("http://user:pass@127.0.0.1:{}/api/v1/", mock.port());
    let outcome = rogue_fetch(&mock, &target).await;
    let error = outcome.error.expect("denied");
    assert_eq!(error.kind, ErrorKind::DeniedByPolicy, "{}", error.message);
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_cannot_set_the_auth_header_itself() {
    let mock = MockThreatFox::start("k1");
    let target = format!("http://127.0.0.1:{}/api/v1/#set-auth", mock.port());
    let outcome = rogue_fetch(&mock, &target).await;
    let error = outcome.error.expect("refused");
    assert!(
        error
            .message
            .contains("refused to let the plugin set the auth-key header"),
        "{}",
        error.message
    );
    assert_eq!(mock.request_count(), 0);

    // Nor can it point the request at another virtual host.
    let target = format!("http://127.0.0.1:{}/api/v1/#set-host", mock.port());
    let error = rogue_fetch(&mock, &target).await.error.expect("refused");
    assert!(
        error.message.contains("set the host header"),
        "{}",
        error.message
    );
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_origin_requests_leave_with_the_key_the_plugin_never_saw() {
    let mock = MockThreatFox::start("only-the-host-knows");
    let outcome = rogue_fetch(&mock, &format!("http://127.0.0.1:{}/api/v1/", mock.port())).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    // The rogue plugin sends GET; the mock answers 405, which proves it arrived.
    assert_eq!(outcome.raw, Some(serde_json::json!({"status": 405})));
    let received = mock.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].auth_key.as_deref(), Some("only-the-host-knows"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_downgrade_of_an_https_base_is_denied() {
    let tls_mock = MockThreatFox::start_tls("k1");
    let mut instance = rogue_instance(&tls_mock);
    instance.verify_ssl = false;
    let enricher = enricher(instance).await;
    let downgrade = format!("http://localhost:{}/api/v1/", tls_mock.port());
    assert_denied(
        &enricher.lookup(&downgrade, None).await,
        "is not the instance's origin",
    );
    let same = format!("https://localhost:{}/api/v1/", tls_mock.port());
    assert!(enricher.lookup(&same, None).await.error.is_none());
    assert_eq!(tls_mock.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificates_are_verified_unless_the_instance_opts_out() {
    let mock = MockThreatFox::start_tls("k1");

    let verified = enricher(instance_for(&mock))
        .await
        .lookup(C2_DOMAIN, None)
        .await;
    let error = verified
        .error
        .expect("a self-signed certificate must be rejected");
    assert_eq!(
        error.kind,
        ErrorKind::UpstreamUnavailable,
        "{}",
        error.message
    );
    assert!(
        error.message.to_lowercase().contains("certificate"),
        "{}",
        error.message
    );
    assert_eq!(
        mock.request_count(),
        0,
        "nothing may be sent over an untrusted connection"
    );

    let mut lax = instance_for(&mock);
    lax.verify_ssl = false;
    let outcome = enricher(lax).await.lookup(C2_DOMAIN, None).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.verdict.as_deref(), Some("malicious"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_runs_without_any_network() {
    let runtime = enrichbox_tests::harness::runtime();
    let plugin = runtime
        .plugin(&enrichbox::PluginSource::Bundled("threatfox".into()))
        .await
        .unwrap();
    let costs: Vec<(String, u32, u32)> = plugin
        .description
        .kinds
        .iter()
        .map(|k| (k.kind.to_string(), k.api_calls, k.quota_units))
        .collect();
    assert_eq!(
        costs,
        [
            ("ip".into(), 1, 1),
            ("domain".into(), 1, 1),
            ("url".into(), 1, 1),
            ("hash".into(), 2, 2)
        ]
    );
    assert_eq!(plugin.description.auth_header.as_deref(), Some("Auth-Key"));
    assert_eq!(plugin.sha256.len(), 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_cannot_send_more_requests_than_it_declared() {
    let mock = MockThreatFox::start("k1");
    // The rogue plugin declares 3 calls for a URL lookup and tries 4.
    let outcome = rogue_fetch(
        &mock,
        &format!("http://127.0.0.1:{}/api/v1/#repeat-4", mock.port()),
    )
    .await;
    let error = outcome.error.expect("the fourth request is denied");
    assert_eq!(error.kind, ErrorKind::DeniedByPolicy, "{}", error.message);
    assert!(
        error.message.contains("request 4 of 4") && error.message.contains("declared 3"),
        "{}",
        error.message
    );
    assert_eq!(mock.request_count(), 3);
    assert_eq!(outcome.requests.iter().filter(|r| r.allowed).count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_importing_sockets_fails_to_load_naming_the_import() {
    let runtime = enrichbox_tests::harness::runtime();
    let path = std::path::Path::new(enrichbox_tests::harness::SOCKET_IMPORTER_WASM);
    let error = enrichbox::Plugin::from_file(&runtime, path)
        .await
        .err()
        .expect("must not load");
    let message = error.to_string();
    assert!(
        message.contains("does not grant") && message.contains("wasi:sockets/"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_plugin_with_another_digest_refuses_to_load() {
    let mock = MockThreatFox::start("k1");
    let mut pinned = instance_for(&mock);
    pinned.plugin_sha256 = Some("0".repeat(64));
    let error = enrichbox::Enricher::new(enrichbox_tests::harness::runtime(), pinned)
        .await
        .err()
        .expect("refused");
    let message = error.to_string();
    let actual = enrichbox_tests::harness::runtime()
        .plugin(&enrichbox::PluginSource::Bundled("threatfox".into()))
        .await
        .unwrap()
        .sha256
        .clone();
    assert!(
        message.contains(&"0".repeat(64)) && message.contains(&actual),
        "{message}"
    );

    let mut right = instance_for(&mock);
    right.plugin_sha256 = Some(actual);
    assert!(
        enricher(right)
            .await
            .lookup(C2_DOMAIN, None)
            .await
            .error
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_ties_a_lookups_capability_uses_together() {
    use enrichbox::audit::{Audit, MemorySink};
    let mock = MockThreatFox::start("audited-key-77");
    let sink = MemorySink::default();
    let enricher = enricher(instance_for(&mock))
        .await
        .with_audit(Audit::default().with_sink(std::sync::Arc::new(sink.clone())));
    let outcome = enricher.lookup(C2_DOMAIN, None).await;
    let events: Vec<(String, serde_json::Value)> = sink
        .records()
        .into_iter()
        .filter(|r| r.lookup_id == outcome.lookup_id)
        .map(|r| (r.event, r.detail))
        .collect();
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        [
            "lookup-start",
            "permission-check",
            "quota-reserve",
            "permission-check",
            "permission-check",
            "config-read",
            "outbound-request",
            "lookup-end"
        ],
    );
    let request = &events[6].1;
    assert_eq!(request["allowed"], true);
    assert_eq!(request["status"], 200);
    assert!(request["bytes"].as_u64().unwrap() > 100, "{request}");
    assert!(
        request["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1")
    );
    let load = sink
        .records()
        .into_iter()
        .find(|r| r.event == "plugin-load")
        .expect("plugin load recorded");
    assert_eq!(load.detail["sha256"].as_str().unwrap().len(), 64);
    assert!(!format!("{:?}", sink.records()).contains("audited-key-77"));
}
