//! The `enrichbox` binary as a user runs it, against the local ThreatFox
//! mock: configuration file, output formats, exit codes, and messages for
//! bad input. These live in the host package so that cargo builds the very
//! binary they run.

use std::path::PathBuf;
use std::process::{Command, Output};

use enrichbox_tests::mock::dataset::{C2_DOMAIN, C2_IP, SAMPLE_MD5};
use enrichbox_tests::mock::{Behavior, MockThreatFox};
use serde_json::Value;

struct Setup {
    _dir: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
}

/// A config file with one instance aimed at `mock`, its key in the
/// environment variable TEST_TF_KEY.
fn setup(mock: &MockThreatFox, extra: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("enrichbox.toml");
    std::fs::write(
        &config,
        format!(
            "[[instance]]\nname = \"Local_TF\"\nbase_url = \"{}\"\napi_key_env = \"TEST_TF_KEY\"\n{extra}",
            mock.base_url()
        ),
    )
    .unwrap();
    let db = dir.path().join("enrichbox.db");
    let init = Command::new(enrichbox_binary())
        .args(["--db", db.to_str().unwrap(), "init", "--admin", "tester"])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    Setup {
        _dir: dir,
        config,
        db,
    }
}

fn run(s: &Setup, key: &str, args: &[&str]) -> Output {
    Command::new(enrichbox_binary())
        .arg("--config")
        .arg(&s.config)
        .args(args)
        .env("TEST_TF_KEY", key)
        .env("ENRICHBOX_DB", &s.db)
        .env("ENRICHBOX_OPERATOR", "tester")
        .env_remove("ENRICHBOX_CONFIG")
        .output()
        .expect("enrichbox runs")
}

fn enrichbox_binary() -> &'static str {
    env!("CARGO_BIN_EXE_enrichbox")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn lookup_json_has_one_object_per_indicator_and_exit_zero() {
    let mock = MockThreatFox::start("cli-key");
    let s = setup(&mock, "");
    let output = run(
        &s,
        "cli-key",
        &[
            "lookup",
            "--format",
            "json",
            C2_IP,
            "203.0.113.9",
            SAMPLE_MD5,
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let results: Value = serde_json::from_str(&stdout(&output)).expect("JSON array");
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 3);
    let first = &results[0];
    for field in [
        "indicator",
        "kind",
        "instance",
        "provider",
        "verdict",
        "findings",
        "error",
    ] {
        assert!(first.get(field).is_some(), "missing {field} in {first}");
    }
    assert_eq!(first["indicator"], C2_IP);
    assert_eq!(first["kind"], "ip");
    assert_eq!(first["instance"], "Local_TF");
    assert_eq!(first["verdict"], "malicious");
    assert_eq!(first["error"], Value::Null);
    assert_eq!(first["findings"][0]["matched_ioc"], format!("{C2_IP}:443"));
    assert_eq!(results[1]["verdict"], "unknown");
    assert_eq!(results[2]["findings"].as_array().unwrap().len(), 2);
    assert!(first.get("raw").is_none(), "raw only with --raw");
}

#[test]
fn any_failed_lookup_makes_the_exit_code_nonzero() {
    let mock = MockThreatFox::start("cli-key");
    let s = setup(&mock, "");
    let output = run(
        &s,
        "cli-key",
        &["lookup", "--format", "ndjson", C2_DOMAIN, "not!valid"],
    );
    assert_eq!(output.status.code(), Some(1));
    let lines: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "the good result is still printed");
    assert_eq!(lines[0]["verdict"], "malicious");
    assert_eq!(lines[1]["error"]["kind"], "invalid-indicator");
    assert_eq!(lines[1]["verdict"], Value::Null);
}

#[test]
fn the_table_shows_verdicts_and_errors_readably() {
    let mock = MockThreatFox::start("cli-key");
    let s = setup(&mock, "");
    mock.set_behavior(Behavior::RateLimited(Some("60".into())));
    let output = run(&s, "cli-key", &["lookup", C2_IP]);
    assert_eq!(output.status.code(), Some(1));
    let table = stdout(&output);
    assert!(table.starts_with("INDICATOR"), "{table}");
    assert!(
        table.contains("rate-limited") && table.contains("retry after 60"),
        "{table}"
    );

    mock.set_behavior(Behavior::Normal);
    let output = run(&s, "cli-key", &["lookup", C2_IP]);
    assert!(output.status.success());
    assert!(stdout(&output).contains("malicious") && stdout(&output).contains("Cobalt Strike"));
}

#[test]
fn a_bad_config_names_the_file_the_instance_and_the_field() {
    let mock = MockThreatFox::start("cli-key");
    let s = setup(&mock, "verify_sll = false\n");
    let output = run(&s, "cli-key", &["lookup", C2_IP]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains(&s.config.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains("instance `Local_TF`") && message.contains("verify_sll"),
        "{message}"
    );
    assert_eq!(mock.request_count(), 0);
}

#[test]
fn a_missing_key_variable_is_reported_without_running_anything() {
    let mock = MockThreatFox::start("cli-key");
    let s = setup(&mock, "");
    let output = Command::new(enrichbox_binary())
        .args([
            "--config",
            s.config.to_str().unwrap(),
            "--db",
            s.db.to_str().unwrap(),
            "--as",
            "tester",
            "lookup",
            C2_IP,
        ])
        .env_remove("TEST_TF_KEY")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("TEST_TF_KEY is not set"),
        "{}",
        stderr(&output)
    );
    assert_eq!(mock.request_count(), 0);
}

#[test]
fn a_missing_config_file_says_where_it_looked() {
    let output = Command::new(enrichbox_binary())
        .args(["--config", "/nonexistent/enrichbox.toml", "lookup", C2_IP])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("/nonexistent/enrichbox.toml"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn test_connection_reports_success_and_rejected_credentials() {
    let mock = MockThreatFox::start("cli-key");
    let s = setup(&mock, "");
    let ok = run(&s, "cli-key", &["test-connection"]);
    assert!(ok.status.success(), "{}{}", stdout(&ok), stderr(&ok));
    assert!(stdout(&ok).starts_with("ok:"), "{}", stdout(&ok));

    let bad = run(&s, "wrong-key", &["test-connection", "--json"]);
    assert_eq!(bad.status.code(), Some(1));
    let report: Value = serde_json::from_str(&stdout(&bad)).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["error"]["kind"], "credentials-rejected");
}

#[test]
fn describe_prints_kinds_costs_and_auth() {
    let output = Command::new(enrichbox_binary())
        .args(["describe", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let description: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(description["contract"], "enrichbox:enrichment@0.1.0");
    assert_eq!(description["description"]["provider"], "abuse.ch ThreatFox");
    assert_eq!(
        description["description"]["kinds"][3],
        serde_json::json!({"kind": "hash", "api_calls": 2, "quota_units": 2})
    );
    let unknown = Command::new(enrichbox_binary())
        .args(["describe", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("no bundled plugin is named `nosuch`"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn the_key_never_appears_in_any_output_even_when_echoed() {
    let key = "cli-secret-7d3e9a";
    let mock = MockThreatFox::start(key);
    mock.set_behavior(Behavior::EchoKey);
    let s = setup(&mock, "");
    for args in [
        vec!["-v", "lookup", "--format", "json", "--raw", C2_IP],
        vec!["-v", "lookup", C2_IP],
        vec!["-v", "test-connection", "--json"],
    ] {
        let output = run(&s, key, &args);
        let all = format!("{}{}", stdout(&output), stderr(&output));
        assert!(!all.contains(key), "{args:?} leaked the key: {all}");
        assert!(all.contains("[REDACTED]"), "{args:?}: {all}");
    }
}

#[test]
fn inspect_shows_digest_imports_and_declarations_without_running_a_lookup() {
    let output = Command::new(enrichbox_binary())
        .args(["inspect", "threatfox", "--format", "json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["contract"], "enrichbox:enrichment@0.1.0");
    assert_eq!(report["sha256"].as_str().unwrap().len(), 64);
    let imports = report["imports"].as_array().unwrap();
    assert!(imports.iter().all(|i| i["granted"] == true), "{imports:?}");
    let http = imports
        .iter()
        .find(|i| {
            i["name"]
                .as_str()
                .unwrap()
                .starts_with("wasi:http/outgoing-handler")
        })
        .unwrap();
    assert!(http["capability"].as_str().unwrap().contains("origin only"));
    assert!(
        report["exports"][0]
            .as_str()
            .unwrap()
            .starts_with("enrichbox:enrichment/provider")
    );
    assert_eq!(report["description"]["kinds"].as_array().unwrap().len(), 4);

    let sockets = enrichbox_tests::harness::SOCKET_IMPORTER_WASM;
    let refused = Command::new(enrichbox_binary())
        .args(["inspect", sockets])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let text = stdout(&refused);
    assert!(
        text.contains("! wasi:sockets/") && text.contains("NOT PROVIDED"),
        "{text}"
    );
    assert!(
        text.contains("would not load") && text.contains("wasi:sockets/"),
        "{text}"
    );
}

#[test]
fn the_audit_trail_shows_one_lookup_and_never_the_key() {
    let key = "audit-cli-secret-5e1";
    let mock = MockThreatFox::start(key);
    let s = setup(&mock, "");
    let output = run(&s, key, &["lookup", "--format", "json", C2_IP]);
    let results: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let id = results[0]["lookup_id"].as_str().unwrap().to_string();
    mock.set_behavior(Behavior::EchoKey);
    let _ = run(&s, key, &["lookup", "--refresh", C2_IP]);

    let audit = run(&s, key, &["audit", "--lookup", &id, "--format", "json"]);
    assert!(audit.status.success(), "{}", stderr(&audit));
    let events: Vec<Value> = stdout(&audit)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.iter().all(|e| e["lookup_id"] == id.as_str()));
    assert!(
        events.iter().all(|e| e["operator"] == "tester"),
        "every record names who acted: {events:?}"
    );
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"outbound-request") && names.contains(&"quota-settle"),
        "{names:?}"
    );
    assert_eq!(names.last(), Some(&"lookup-end"));

    let trail = std::fs::read_to_string(s.db.with_file_name("audit.jsonl")).unwrap();
    assert!(
        trail.contains("[REDACTED]"),
        "the echoed key was recorded, redacted"
    );
    assert!(!trail.contains(key));
}

#[test]
fn instance_show_tells_when_an_instance_is_paused() {
    let mock = MockThreatFox::start("cli-key");
    let s = setup(
        &mock,
        "breaker_failures = 1\nbreaker_cooldown_seconds = 600\ntimeout_seconds = 1\n",
    );
    mock.set_behavior(Behavior::HttpStatus(500));
    let _ = run(&s, "cli-key", &["lookup", C2_IP]);
    let show = run(&s, "cli-key", &["instance", "show", "Local_TF"]);
    let text = stdout(&show);
    assert!(
        text.contains("paused until") && text.contains("500"),
        "{text}{}",
        stderr(&show)
    );
    let audit = std::fs::read_to_string(s.db.with_file_name("audit.jsonl")).unwrap();
    assert!(audit.contains("\"event\":\"circuit-open\""), "{audit}");

    // The provider is back and a connection test shows it: no need to wait
    // out the ten-minute pause.
    mock.set_behavior(Behavior::Normal);
    let test = run(&s, "cli-key", &["test-connection"]);
    assert!(test.status.success(), "{}", stderr(&test));
    let text = stdout(&run(&s, "cli-key", &["instance", "show", "Local_TF"]));
    assert!(text.contains("closed (lookups go through)"), "{text}");
    assert!(run(&s, "cli-key", &["lookup", C2_IP]).status.success());
}

#[test]
fn instance_show_follows_the_circuit_through_half_open_to_closed() {
    let mock = MockThreatFox::start("cli-key");
    let s = setup(
        &mock,
        "breaker_failures = 1\nbreaker_cooldown_seconds = 1\ntimeout_seconds = 1\n",
    );
    let show = || stdout(&run(&s, "cli-key", &["instance", "show", "Local_TF"]));
    mock.set_behavior(Behavior::HttpStatus(500));
    let _ = run(&s, "cli-key", &["lookup", C2_IP]);
    assert!(show().contains("open: paused until"), "{}", show());
    // Pauses are kept in whole seconds: wait until this one has passed.
    let started = std::time::Instant::now();
    let mut text = show();
    while !text.contains("half-open") && started.elapsed().as_secs() < 3 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        text = show();
    }
    assert!(
        text.contains("half-open: the pause ended") && text.contains("the next lookup is a trial"),
        "{text}"
    );
    mock.set_behavior(Behavior::Normal);
    let trial = run(&s, "cli-key", &["lookup", C2_IP]);
    assert!(trial.status.success(), "{}", stderr(&trial));
    assert!(show().contains("closed (lookups go through)"), "{}", show());
    let audit = std::fs::read_to_string(s.db.with_file_name("audit.jsonl")).unwrap();
    let events: Vec<&str> = ["circuit-open", "circuit-trial", "circuit-close"]
        .into_iter()
        .filter(|e| audit.contains(&format!("\"event\":\"{e}\"")))
        .collect();
    assert_eq!(events.len(), 3, "{audit}");
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let mock = MockThreatFox::start("k-pipe");
    let s = setup(&mock, "");
    let mut child = Command::new(enrichbox_binary())
        .arg("--config")
        .arg(&s.config)
        .args(["lookup", C2_IP, C2_DOMAIN, "--format", "json"])
        .env("TEST_TF_KEY", "k-pipe")
        .env("ENRICHBOX_DB", &s.db)
        .env("ENRICHBOX_OPERATOR", "tester")
        .env_remove("ENRICHBOX_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Like `enrichbox lookup ... | head -0`: nobody will read the output.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(!errors.contains("panicked"), "{errors}");
    assert!(!errors.contains("Broken pipe"), "{errors}");
    assert_eq!(output.status.signal(), Some(13), "{:?}", output.status);
}

#[test]
fn stix_runs_share_the_provider_and_malware_objects() {
    let mock = MockThreatFox::start("k-stix");
    let s = setup(&mock, "");
    let ids = |kind: &str| -> Vec<String> {
        let output = run(
            &s,
            "k-stix",
            &["lookup", "--refresh", "--format", "stix", C2_IP],
        );
        assert!(output.status.success(), "{}", stderr(&output));
        let bundle: Value = serde_json::from_str(&stdout(&output)).unwrap();
        bundle["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["type"] == kind)
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect()
    };
    // Importing two runs into a platform must not duplicate the provider
    // or the families; the indicators are each run's own.
    assert_eq!(ids("identity"), ids("identity"));
    let malware = ids("malware");
    assert!(!malware.is_empty());
    assert_eq!(malware, ids("malware"));
    assert_ne!(ids("indicator"), ids("indicator"));

    let failed = run(&s, "k-stix", &["lookup", "--format", "stix", "bad!", C2_IP]);
    assert!(
        stderr(&failed).contains("not in the bundle: bad!: invalid-indicator"),
        "{}",
        stderr(&failed)
    );
}
