//! The benchmark harness runs (a quick pass; the real run is documented in
//! the README and not part of the test suite).

#[test]
fn the_bench_harness_runs_and_prints_its_ratios() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_enrichbox-bench"))
        .arg("--quick")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for needle in [
        "sequential latency",
        "median",
        "p99",
        "concurrency 32",
        "new store + instantiate",
        "describe call",
        "warm compiled cache",
        "peak RSS",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}
