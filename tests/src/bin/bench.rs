//! Benchmarks enrichbox against a native Rust client making the identical
//! request to the same local ThreatFox-compatible server, in one run, and
//! prints each figure with its ratio. `--quick` is a smoke run for CI.
//!
//!   cargo run --release --bin enrichbox-bench

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use enrichbox_tests::harness::{enricher, instance_for, runtime};
use enrichbox_tests::mock::MockThreatFox;
use enrichbox_tests::mock::dataset::C2_IP;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

#[derive(Parser)]
struct Args {
    /// Sequential lookups per side for the latency figures.
    #[arg(long, default_value_t = 400)]
    iterations: usize,
    /// Lookups per side and concurrency level for the throughput figures.
    #[arg(long, default_value_t = 800)]
    batch: usize,
    /// A few iterations only, to check the harness works.
    #[arg(long)]
    quick: bool,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = Args::parse();
    if args.quick {
        args.iterations = 10;
        args.batch = 16;
    }
    let mock = MockThreatFox::start("bench-key");
    let native = Arc::new(Native {
        addr: format!("127.0.0.1:{}", mock.port()),
        key: "bench-key".into(),
    });
    let enricher = Arc::new(enricher(instance_for(&mock)).await);
    println!(
        "machine: {} cores; server: local mock on 127.0.0.1; {} iterations",
        cores(),
        args.iterations
    );

    // Warm both sides up.
    for _ in 0..5 {
        native.lookup().await;
        assert!(enricher.lookup(C2_IP, None).await.error.is_none());
    }

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..args.iterations {
        let t = Instant::now();
        native.lookup().await;
        theirs.push(t.elapsed());
        let t = Instant::now();
        let outcome = enricher.lookup(C2_IP, None).await;
        ours.push(t.elapsed());
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
    }
    println!(
        "\n{:34} {:>12} {:>12} {:>8}",
        "sequential latency", "enrichbox", "native", "ratio"
    );
    for (label, q) in [("median", 0.5), ("p99", 0.99)] {
        let (a, b) = (quantile(&mut ours, q), quantile(&mut theirs, q));
        println!(
            "{label:34} {:>12} {:>12} {:>8.2}",
            fmt(a),
            fmt(b),
            a.as_secs_f64() / b.as_secs_f64()
        );
    }

    println!(
        "\n{:34} {:>12} {:>12} {:>8}",
        "throughput (lookups/s)", "enrichbox", "native", "ratio"
    );
    for concurrency in [1usize, 8, 32] {
        let ours = throughput(args.batch, concurrency, {
            let enricher = enricher.clone();
            move || {
                let enricher = enricher.clone();
                async move {
                    assert!(enricher.lookup(C2_IP, None).await.error.is_none());
                }
            }
        })
        .await;
        let theirs = throughput(args.batch, concurrency, {
            let native = native.clone();
            move || {
                let native = native.clone();
                async move { native.lookup().await }
            }
        })
        .await;
        println!(
            "{:34} {ours:>12.0} {theirs:>12.0} {:>8.2}",
            format!("concurrency {concurrency}"),
            ours / theirs
        );
    }

    let runtime = runtime();
    let plugin = runtime
        .plugin(&enrichbox::PluginSource::Bundled("threatfox".into()))
        .await
        .unwrap();
    let mut costs = Vec::new();
    for _ in 0..args.iterations {
        let t = Instant::now();
        plugin.describe_in_fresh_sandbox(&runtime).await.unwrap();
        costs.push(t.elapsed());
    }
    println!(
        "\n{:34} {:>12}",
        "sandbox: new store + instantiate + describe (median)",
        fmt(quantile(&mut costs, 0.5))
    );
}

/// The same request the plugin sends, with the same HTTP stack (hyper over
/// tokio, one connection per request, as the host's client does today).
struct Native {
    addr: String,
    key: String,
}

impl Native {
    async fn lookup(&self) {
        let stream = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let body = serde_json::json!({"query": "search_ioc", "search_term": C2_IP}).to_string();
        let request = hyper::Request::post("/api/v1/")
            .header("host", &self.addr)
            .header("content-type", "application/json")
            .header("auth-key", &self.key)
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let parsed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(parsed["query_status"], "ok");
    }
}

async fn throughput<F, Fut>(total: usize, concurrency: usize, make: F) -> f64
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut launched = 0;
    while launched < total || !tasks.is_empty() {
        while launched < total && tasks.len() < concurrency {
            tasks.spawn(make());
            launched += 1;
        }
        if let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * q).round() as usize]
}

fn fmt(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
