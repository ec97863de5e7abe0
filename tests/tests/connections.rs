//! Outbound connections are kept alive by the host between lookups, and
//! reuse never weakens a boundary: a connection made without certificate
//! checks is never handed to an instance that checks them.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use enrichbox::{Enricher, ErrorKind, Runtime};
use enrichbox_tests::harness::instance_for;
use enrichbox_tests::mock::MockThreatFox;
use enrichbox_tests::mock::dataset::C2_DOMAIN;

/// A runtime of the test's own, so its connection counts are the test's.
fn own_runtime() -> Arc<Runtime> {
    Arc::new(Runtime::new().expect("wasmtime runtime"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_lookups_ride_one_connection() {
    let mock = MockThreatFox::start("k1");
    let runtime = own_runtime();
    let enricher = Enricher::new(runtime.clone(), instance_for(&mock))
        .await
        .unwrap();
    for _ in 0..10 {
        let outcome = enricher.lookup(C2_DOMAIN, None).await;
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        assert_eq!(outcome.verdict.as_deref(), Some("malicious"));
    }
    assert_eq!(mock.request_count(), 10);
    assert_eq!(mock.connection_count(), 1);
    let stats = runtime.connection_stats();
    assert_eq!((stats.opened, stats.reused), (1, 9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_open_no_more_connections_than_are_in_flight() {
    let mock = MockThreatFox::start("k1");
    let runtime = own_runtime();
    let enricher = Arc::new(
        Enricher::new(runtime.clone(), instance_for(&mock))
            .await
            .unwrap(),
    );
    let in_flight = 4;
    let mut rounds = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let enricher = enricher.clone();
        rounds.spawn(async move {
            for _ in 0..10 {
                let outcome = enricher.lookup(C2_DOMAIN, None).await;
                assert!(outcome.error.is_none(), "{:?}", outcome.error);
            }
        });
    }
    while let Some(done) = rounds.join_next().await {
        done.unwrap();
    }
    assert_eq!(mock.request_count(), 40);
    assert!(
        mock.connection_count() <= in_flight,
        "{} connections for {in_flight} lookups in flight",
        mock.connection_count()
    );
    assert_eq!(
        runtime.connection_stats().reused,
        40 - runtime.connection_stats().opened
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_certificate_checks_is_never_reused_by_a_checking_instance() {
    let mock = MockThreatFox::start_tls("k1");
    let runtime = own_runtime();
    let mut lax = instance_for(&mock);
    lax.name = "Lab".into();
    lax.verify_ssl = false;
    let lax = Enricher::new(runtime.clone(), lax).await.unwrap();
    for _ in 0..3 {
        assert!(lax.lookup(C2_DOMAIN, None).await.error.is_none());
    }
    assert_eq!(
        mock.connection_count(),
        1,
        "the lab instance reuses its connection"
    );

    let strict = Enricher::new(runtime.clone(), instance_for(&mock))
        .await
        .unwrap();
    let outcome = strict.lookup(C2_DOMAIN, None).await;
    let error = outcome
        .error
        .expect("the self-signed certificate must still be rejected");
    assert_eq!(
        error.kind,
        ErrorKind::UpstreamUnavailable,
        "{}",
        error.message
    );
    assert_eq!(
        mock.request_count(),
        3,
        "nothing reached the server unchecked"
    );
}

/// Answers each request with a ThreatFox "no result" and then hangs up
/// without saying `Connection: close`, as servers that reap idle
/// connections do.
fn start_hanging_up_server() -> (u16, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            // Read the headers and the (small) JSON body.
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..n]);
                // A JSON body, sent whole or chunked.
                if request.ends_with(b"}") || request.ends_with(b"\r\n0\r\n\r\n") {
                    break;
                }
            }
            let body =
                r#"{"query_status":"no_result","data":"Your search did not yield any results"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.flush();
            // Dropping the stream closes it.
        }
    });
    (port, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_hangs_up_after_each_answer_costs_no_lookup() {
    let (port, accepted) = start_hanging_up_server();
    let mock_for_shape = MockThreatFox::start("k1");
    let mut instance = instance_for(&mock_for_shape);
    instance.base_url = format!("http://127.0.0.1:{port}/api/v1/").parse().unwrap();
    let enricher = Enricher::new(own_runtime(), instance).await.unwrap();
    for _ in 0..5 {
        let outcome = enricher.lookup("unknown.example", None).await;
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        assert_eq!(outcome.verdict.as_deref(), Some("unknown"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_offering_http2_carries_concurrent_lookups_on_one_connection() {
    let mock = MockThreatFox::start_tls_h2("k1");
    let runtime = own_runtime();
    let mut lab = instance_for(&mock);
    lab.verify_ssl = false;
    let enricher = Arc::new(Enricher::new(runtime.clone(), lab).await.unwrap());
    assert!(enricher.lookup(C2_DOMAIN, None).await.error.is_none());
    let mut lookups = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let enricher = enricher.clone();
        lookups.spawn(async move { enricher.lookup(C2_DOMAIN, None).await });
    }
    while let Some(done) = lookups.join_next().await {
        let outcome = done.unwrap();
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        assert_eq!(outcome.verdict.as_deref(), Some("malicious"));
    }
    assert_eq!(mock.request_count(), 17);
    assert!(mock.received().iter().all(|r| r.version == "HTTP/2.0"));
    assert_eq!(mock.connection_count(), 1);
    let stats = runtime.connection_stats();
    assert_eq!((stats.opened, stats.http2, stats.reused), (1, 1, 16));
}
