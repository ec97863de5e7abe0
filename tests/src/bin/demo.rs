//! The README's first command: enrich sample indicators through the
//! sandboxed ThreatFox plugin, against a local ThreatFox-compatible server,
//! with no API key and no network.

use std::process::ExitCode;

use clap::Parser;
use enrichbox::cli::Cli;
use enrichbox_tests::mock::{MockThreatFox, dataset};

fn main() -> ExitCode {
    let mock = MockThreatFox::start("demo-key");
    let dir = tempfile::tempdir().expect("temporary folder");
    let config = dir.path().join("enrichbox.toml");
    std::fs::write(dir.path().join("demo.key"), "demo-key\n").expect("key file");
    let config_text = format!(
        "[[instance]]\nname = \"Demo_ThreatFox\"\nplugin = \"threatfox\"\nbase_url = \"{}\"\napi_key_file = \"demo.key\"\n",
        mock.base_url()
    );
    std::fs::write(&config, &config_text).expect("config file");

    let indicators = [
        dataset::C2_IP,
        dataset::SHORT_IP,
        dataset::C2_DOMAIN,
        dataset::PAYLOAD_URL,
        dataset::SAMPLE_SHA256,
        dataset::LOW_CONFIDENCE_DOMAIN,
        "203.0.113.7",
        "not_an_indicator!",
    ];
    println!(
        "A local ThreatFox-compatible server is running at {}.",
        mock.base_url()
    );
    println!("enrichbox.toml for this demo:\n\n{}", indent(&config_text));
    println!("$ enrichbox init");

    let mut args = vec![
        "enrichbox".to_string(),
        "--config".into(),
        config.display().to_string(),
        "lookup".into(),
    ];
    args.extend(indicators.iter().map(|s| s.to_string()));
    let db = dir.path().join("enrichbox.db").display().to_string();
    let runtime = tokio::runtime::Runtime::new().expect("async runtime");
    // The demo's own database, with the demo as its admin.
    let init = Cli::parse_from(["enrichbox", "--db", &db, "--as", "demo", "init"]);
    if let Err(e) = runtime.block_on(enrichbox::cli::run(init)) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    println!(
        "\n$ enrichbox --config enrichbox.toml lookup {}\n",
        indicators.join(" ")
    );
    args.splice(1..1, ["--db".to_string(), db, "--as".into(), "demo".into()]);
    let cli = Cli::parse_from(args);
    let code = runtime.block_on(enrichbox::cli::run(cli));
    println!(
        "\nThe last line fails on purpose: bad input is reported, never silently dropped.\n\
         To ask the real ThreatFox instead, get an Auth-Key at https://auth.abuse.ch/, then:\n\n\
         \x20 export THREATFOX_API_KEY=...\n\
         \x20 cargo run --bin enrichbox -- init\n\
         \x20 cargo run --bin enrichbox -- instance add Prod_ThreatFox --api-key-env THREATFOX_API_KEY --quota 1000/day\n\
         \x20 cargo run --bin enrichbox -- lookup 139.180.203.104\n"
    );
    match code {
        // Exit 1 means "some lookup failed", which the demo's last input does on purpose.
        Ok(code) if code == ExitCode::SUCCESS || code == ExitCode::from(1) => ExitCode::SUCCESS,
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}
