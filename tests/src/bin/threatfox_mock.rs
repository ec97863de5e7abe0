//! Runs the ThreatFox-compatible mock until interrupted, for trying
//! enrichbox by hand: `cargo run --bin threatfox-mock -- --port 8099`.

use clap::Parser;
use enrichbox_tests::mock::MockThreatFox;

/// A local ThreatFox API v1 lookalike serving a small built-in data set.
#[derive(Parser)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8099)]
    port: u16,
    /// The API key the mock accepts in the Auth-Key header.
    #[arg(long, default_value = "demo-key")]
    key: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let mock = MockThreatFox::start_on(&args.key, args.port);
    println!(
        "ThreatFox mock listening at {} (Auth-Key: {})",
        mock.base_url(),
        args.key
    );
    println!("Press Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    drop(mock);
}
