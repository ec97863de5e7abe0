//! Benchmarks enrichbox against a native Rust client making the identical
//! request to the same local ThreatFox-compatible server, in one run, and
//! prints each figure with its ratio. `--quick` is a smoke run for CI.
//!
//!   cargo run --release --bin enrichbox-bench

mod native;
mod process;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use enrichbox::{Enricher, PluginSource, Runtime, RuntimeOptions};
use enrichbox_tests::harness::instance_for;
use enrichbox_tests::mock::MockThreatFox;
use enrichbox_tests::mock::dataset::C2_IP;
use native::Native;

#[derive(Parser)]
struct Args {
    /// Sequential lookups per side for the latency figures.
    #[arg(long, default_value_t = 1000)]
    iterations: usize,
    /// Lookups per side and concurrency level for the throughput figures.
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Process starts per cold-start figure.
    #[arg(long, default_value_t = 15)]
    starts: usize,
    /// Indicators in the peak-memory batch.
    #[arg(long, default_value_t = 10_000)]
    rss_indicators: usize,
    /// A few iterations only, to check the harness works.
    #[arg(long)]
    quick: bool,
}

const KEY: &str = "bench-key";

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    match argv.nth(1).as_deref().and_then(|a| a.to_str()) {
        // A child measured by the process figures.
        Some("--noop") => return ExitCode::SUCCESS,
        Some("--as-enrichbox") => {
            return enrichbox::cli::main_from(std::iter::once("enrichbox".into()).chain(argv));
        }
        _ => {}
    }
    let mut args = Args::parse();
    if args.quick {
        args.iterations = 10;
        args.batch = 16;
        args.starts = 2;
        args.rss_indicators = 200;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(args));
    ExitCode::SUCCESS
}

async fn run(args: Args) {
    let mock = MockThreatFox::start(KEY);
    let native = Arc::new(Native::new(
        format!("127.0.0.1:{}", mock.port()),
        KEY,
        C2_IP,
    ));
    let runtime = Arc::new(
        Runtime::with_options(RuntimeOptions {
            concurrency: 32,
            ..RuntimeOptions::default()
        })
        .unwrap(),
    );
    let enricher = Arc::new(
        Enricher::new(runtime.clone(), instance_for(&mock))
            .await
            .unwrap(),
    );
    println!(
        "machine: {} cores; server: local mock on 127.0.0.1; sandboxes: {}",
        cores(),
        runtime.allocator()
    );

    // Warm both sides up.
    for _ in 0..20 {
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
    header(
        &format!("1. sequential latency ({} lookups)", args.iterations),
        "enrichbox",
        "native",
    );
    for (label, q) in [("median", 0.5), ("p99", 0.99)] {
        let (a, b) = (quantile(&mut ours, q), quantile(&mut theirs, q));
        row(
            label,
            fmt(a),
            fmt(b),
            ratio(a.as_secs_f64(), b.as_secs_f64()),
        );
    }

    header(
        &format!("2. throughput, lookups/s ({} per level)", args.batch),
        "enrichbox",
        "native",
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
        row(
            &format!("concurrency {concurrency}"),
            format!("{ours:.0}"),
            format!("{theirs:.0}"),
            ratio(ours, theirs),
        );
    }
    let connections = runtime.connection_stats();
    println!(
        "   enrichbox connections: {} opened, {} requests on a reused one",
        connections.opened, connections.reused
    );

    let plugin = runtime
        .plugin(&PluginSource::Bundled("threatfox".into()))
        .await
        .unwrap();
    let (mut instantiate, mut describe, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.iterations {
        let timing = plugin.time_fresh_sandbox(&runtime).await.unwrap();
        instantiate.push(timing.instantiate);
        describe.push(timing.describe);
        total.push(timing.instantiate + timing.describe);
    }
    header("3. the sandbox's own cost (median)", "", "");
    row(
        "new store + instantiate",
        fmt(quantile(&mut instantiate, 0.5)),
        String::new(),
        String::new(),
    );
    row(
        "describe call",
        fmt(quantile(&mut describe, 0.5)),
        String::new(),
        String::new(),
    );
    row(
        "together",
        fmt(quantile(&mut total, 0.5)),
        String::new(),
        String::new(),
    );

    let setup = process::Setup::new(mock.port());
    let mut floor: Vec<Duration> = (0..args.starts).map(|_| process::process_start()).collect();
    let mut empty: Vec<Duration> = (0..args.starts)
        .map(|i| process::first_result(&setup, &setup.cache(&format!("empty-{i}")), C2_IP))
        .collect();
    let warm_cache = setup.cache("warm");
    process::first_result(&setup, &warm_cache, C2_IP);
    let mut warm: Vec<Duration> = (0..args.starts)
        .map(|_| process::first_result(&setup, &warm_cache, C2_IP))
        .collect();
    let floor = quantile(&mut floor, 0.5);
    header(
        &format!("4. cold start to first result (median of {})", args.starts),
        "total",
        "over start",
    );
    row(
        "process start (does nothing)",
        fmt(floor),
        String::new(),
        String::new(),
    );
    for (label, samples) in [
        ("empty compiled cache", &mut empty),
        ("warm compiled cache", &mut warm),
    ] {
        let median = quantile(samples, 0.5);
        row(
            label,
            fmt(median),
            fmt(median.saturating_sub(floor)),
            String::new(),
        );
    }

    let run = process::batch(&setup, &warm_cache, args.rss_indicators, 64);
    header(
        &format!("5. batch of {} at concurrency 64", args.rss_indicators),
        "",
        "",
    );
    row(
        "peak RSS",
        format!("{:.1} MiB", run.peak_rss_bytes as f64 / f64::from(1 << 20)),
        String::new(),
        String::new(),
    );
    row(
        "throughput",
        format!("{:.0}/s", args.rss_indicators as f64 / run.seconds),
        String::new(),
        String::new(),
    );
}

fn header(title: &str, a: &str, b: &str) {
    let ratio = if b == "native" { "ratio" } else { "" };
    println!("\n{title:44} {a:>12} {b:>12} {ratio:>8}");
}

fn row(label: &str, a: String, b: String, ratio: String) {
    println!("   {label:41} {a:>12} {b:>12} {ratio:>8}");
}

fn ratio(ours: f64, theirs: f64) -> String {
    format!("{:.2}", ours / theirs)
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
    if d >= Duration::from_millis(10) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
