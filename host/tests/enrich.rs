//! `enrichbox enrich`: many indicators from a file, against the local mock.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use enrichbox_tests::mock::MockThreatFox;
use enrichbox_tests::mock::dataset::{C2_DOMAIN, C2_IP, SAMPLE_MD5};
use serde_json::Value;

const KEY: &str = "enrich-key";

struct Env {
    dir: tempfile::TempDir,
    db: PathBuf,
    _mock: MockThreatFox,
}

impl Env {
    fn new() -> Env {
        let mock = MockThreatFox::start(KEY);
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("enrichbox.db");
        let env = Env {
            dir,
            db,
            _mock: mock,
        };
        assert!(env.run(&["init"], None).status.success());
        let base = env._mock.base_url().to_string();
        let add = env.run(
            &[
                "instance",
                "add",
                "TF",
                "--base-url",
                &base,
                "--api-key-env",
                "TF_KEY",
            ],
            None,
        );
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
        env
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        common::output_with_stdin(
            Command::new(env!("CARGO_BIN_EXE_enrichbox"))
                .current_dir(self.dir.path())
                .args(["--db", self.db.to_str().unwrap(), "--as", "admin"])
                .args(args)
                .env("TF_KEY", KEY)
                .env_remove("ENRICHBOX_CONFIG"),
            stdin.unwrap_or(""),
        )
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

fn results(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn text_input_reports_bad_lines_dedupes_and_summarizes() {
    let env = Env::new();
    let feed = env.file(
        "feed.txt",
        &format!(
            "# today's feed\n{C2_IP}\n{C2_DOMAIN} # c2\nnot an ioc!\n\n{C2_IP}\n203.0.113.8\n"
        ),
    );
    let output = env.run(&["enrich", &feed, "--ordered"], None);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a skipped line makes the run not fully successful"
    );
    let indicators: Vec<String> = results(&output)
        .iter()
        .map(|r| r["indicator"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(indicators, [C2_IP, C2_DOMAIN, "203.0.113.8"]);
    let err = stderr(&output);
    assert!(err.contains("skipped line 4:"), "{err}");
    assert!(
        err.contains("enriched 3 indicators")
            && err.contains("malicious 2")
            && err.contains("unknown 1"),
        "{err}"
    );
    assert!(
        err.contains("skipped lines: 1")
            && err.contains("duplicates: 1")
            && err.contains("quota units: 3"),
        "{err}"
    );
}

#[test]
fn csv_and_ndjson_inputs_read_the_named_column() {
    let env = Env::new();
    let csv = env.file(
        "iocs.csv",
        &format!("source,value,note\nfeed-a,{C2_IP},x\nfeed-b,{SAMPLE_MD5},\"quoted, note\"\n"),
    );
    let output = env.run(&["enrich", &csv, "--ordered"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let kinds: Vec<String> = results(&output)
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["ip", "hash"]);

    let ndjson = format!("{{\"src\":\"{C2_DOMAIN}\"}}\n{{\"src\":\"{C2_IP}\"}}\n");
    let output = env.run(
        &[
            "enrich",
            "-",
            "--field",
            "src",
            "--ordered",
            "--format",
            "csv",
        ],
        Some(&ndjson),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let csv_out = String::from_utf8_lossy(&output.stdout).to_string();
    let lines: Vec<&str> = csv_out.lines().collect();
    assert!(lines[0].starts_with("indicator,kind,verdict"), "{csv_out}");
    assert!(
        lines[1].starts_with(&format!("{C2_DOMAIN},domain,malicious,AsyncRAT")),
        "{csv_out}"
    );
    assert!(
        lines[2].starts_with(&format!("{C2_IP},ip,malicious,Cobalt Strike")),
        "{csv_out}"
    );
}

#[test]
fn a_stix_bundle_is_read_reported_and_round_trips() {
    let env = Env::new();
    // One object per line, so the expected line numbers are plain to see.
    let bundle = format!(
        r#"{{
  "type": "bundle",
  "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
  "objects": [
    {{"type": "identity", "spec_version": "2.1", "id": "identity--1", "name": "Partner Feed"}},
    {{"type": "indicator", "id": "indicator--c2", "created_by_ref": "identity--1", "pattern_type": "stix", "pattern": "[ipv4-addr:value = '{C2_IP}'] OR [domain-name:value = '{C2_DOMAIN}']"}},
    {{"type": "file", "id": "file--1", "hashes": {{"MD5": "{SAMPLE_MD5}"}}}},
    {{"type": "indicator", "id": "indicator--proc", "pattern": "[process:name = 'evil.exe']"}},
    {{"type": "indicator", "id": "indicator--snort", "pattern_type": "snort", "pattern": "alert tcp any any -> any 80"}},
    {{"type": "ipv4-addr", "id": "ipv4-addr--1", "value": "{C2_IP}"}}
  ]
}}
"#
    );
    // `.json` with a pretty-printed bundle: detected by its content.
    let path = env.file("feed.json", &bundle);
    let output = env.run(&["enrich", &path, "--ordered"], None);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let got: Vec<(String, String, String)> = results(&output)
        .iter()
        .map(|r| {
            let field = |f: &str| r[f].as_str().unwrap_or_default().to_string();
            (field("indicator"), field("kind"), field("verdict"))
        })
        .collect();
    let expected = [(C2_IP, "ip"), (C2_DOMAIN, "domain"), (SAMPLE_MD5, "hash")]
        .map(|(i, k)| (i.to_string(), k.to_string(), "malicious".to_string()));
    assert_eq!(got, expected);
    let err = stderr(&output);
    assert!(
        err.contains(
            "skipped line 8: indicator--proc: unsupported pattern: `process:name = 'evil.exe'`"
        ),
        "{err}"
    );
    assert!(
        err.contains("skipped line 9: indicator--snort: pattern_type `snort` is not supported"),
        "{err}"
    );
    assert!(
        err.contains("enriched 3 indicators")
            && err.contains("skipped lines: 2")
            && err.contains("duplicates: 1"),
        "{err}"
    );

    // What `--format stix` writes reads back as the same indicators.
    let output = env.run(&["enrich", &path, "--ordered", "--format", "stix"], None);
    let written = env.file("enriched.stix", &String::from_utf8_lossy(&output.stdout));
    let again = env.run(
        &["enrich", &written, "--ordered", "--input-format", "stix"],
        None,
    );
    assert!(again.status.success(), "{}", stderr(&again));
    let indicators: Vec<String> = results(&again)
        .iter()
        .map(|r| r["indicator"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(indicators, [C2_IP, C2_DOMAIN, SAMPLE_MD5]);

    // Not a bundle: a clear error, nothing looked up.
    let report = env.file("report.json", "{\n  \"type\": \"report\"\n}\n");
    let refused = env.run(&["enrich", &report], None);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("not a STIX bundle: its `type` is `report`"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn ordered_output_follows_the_input_under_concurrency() {
    let env = Env::new();
    let feed: Vec<String> = (1..=60).map(|i| format!("198.51.100.{i}")).collect();
    let path = env.file("many.txt", &feed.join("\n"));
    let output = env.run(&["enrich", &path, "--ordered", "--concurrency", "16"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let got: Vec<String> = results(&output)
        .iter()
        .map(|r| r["indicator"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, feed);
}

#[test]
fn a_ten_thousand_indicator_batch_finishes() {
    let env = Env::new();
    let feed: String = (0..10_000)
        .map(|i| format!("10.{}.{}.{}\n", i / 65_536, (i / 256) % 256, i % 256))
        .collect();
    let path = env.file("big.txt", &feed);
    let started = std::time::Instant::now();
    let output = env.run(&["enrich", &path, "--concurrency", "16"], None);
    let elapsed = started.elapsed();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(results(&output).len(), 10_000);
    assert!(
        stderr(&output).contains("enriched 10000 indicators"),
        "{}",
        stderr(&output)
    );
    eprintln!("10,000 indicators in {elapsed:?} (debug build)");
}

#[test]
fn repeated_lookups_come_from_the_cache_until_refreshed_or_reconfigured() {
    let env = Env::new();
    let lookup = |extra: &[&str]| {
        let mut args = vec!["lookup", "--format", "json", C2_IP];
        args.extend_from_slice(extra);
        let output = env.run(&args, None);
        assert!(output.status.success(), "{}", stderr(&output));
        let parsed: Value = serde_json::from_slice(&output.stdout).unwrap();
        parsed[0].clone()
    };
    let sent = || env._mock.request_count();
    let before = sent();
    let first = lookup(&[]);
    assert_eq!(first["cached"], false);
    assert_eq!(sent(), before + 1);

    let second = lookup(&[]);
    assert_eq!(second["cached"], true);
    assert!(second["cache_age_seconds"].as_u64().is_some());
    assert_eq!(second["findings"], first["findings"]);
    assert_ne!(second["lookup_id"], first["lookup_id"]);
    assert_eq!(sent(), before + 1, "a cached result sends nothing");

    assert_eq!(lookup(&["--refresh"])["cached"], false);
    assert_eq!(sent(), before + 2);

    // Another base URL (same server, other spelling) invalidates the entries.
    let other = format!("http://localhost:{}/api/v1/", env._mock.port());
    assert!(
        env.run(
            &[
                "instance",
                "update",
                "TF",
                "--base-url",
                &other,
                "--skip-test"
            ],
            None
        )
        .status
        .success()
    );
    assert_eq!(lookup(&[])["cached"], false);
    assert_eq!(sent(), before + 3);
}

#[test]
fn failures_are_never_cached() {
    let env = Env::new();
    env._mock
        .set_behavior(enrichbox_tests::mock::Behavior::HttpStatus(503));
    let failed = env.run(&["lookup", "--format", "json", C2_DOMAIN], None);
    assert_eq!(failed.status.code(), Some(1));
    env._mock
        .set_behavior(enrichbox_tests::mock::Behavior::Normal);
    let output = env.run(&["lookup", "--format", "json", C2_DOMAIN], None);
    let parsed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(parsed[0]["cached"], false);
    assert_eq!(parsed[0]["verdict"], "malicious");
}

#[test]
fn an_interrupted_run_keeps_what_finished_and_resumes_without_double_charge() {
    let env = Env::new();
    env._mock
        .set_behavior(enrichbox_tests::mock::Behavior::Slow(
            std::time::Duration::from_millis(40),
        ));
    let feed: String = (1..=200)
        .map(|i| format!("192.0.2.{}\n", i % 250 + 1))
        .collect();
    let path = env.file("feed.txt", &feed);
    let baseline = env._mock.request_count();
    let child = Command::new(env!("CARGO_BIN_EXE_enrichbox"))
        .current_dir(env.dir.path())
        .args([
            "--db",
            env.db.to_str().unwrap(),
            "--as",
            "admin",
            "enrich",
            &path,
            "--concurrency",
            "4",
        ])
        .env("TF_KEY", KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while env._mock.request_count() - baseline < 20
        && started.elapsed() < std::time::Duration::from_secs(60)
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let interrupt = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let first = child.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(130), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("interrupted") && stderr(&first).contains("not looked up"),
        "{}",
        stderr(&first)
    );
    let done = results(&first).len();
    assert!((20..200).contains(&done), "{done} finished before the stop");
    // Every lookup that started was finished and written.
    assert_eq!(env._mock.request_count() - baseline, done);

    let second = env.run(&["enrich", &path, "--concurrency", "4"], None);
    assert!(second.status.success(), "{}", stderr(&second));
    let all = results(&second);
    assert_eq!(all.len(), 200);
    assert_eq!(all.iter().filter(|r| r["cached"] == true).count(), done);
    assert_eq!(
        env._mock.request_count() - baseline,
        200,
        "nothing was asked twice"
    );
}

#[test]
fn stix_output_is_a_bundle_the_oasis_validator_accepts() {
    let env = Env::new();
    let feed = env.file(
        "feed.txt",
        &format!("{C2_IP}\n{C2_DOMAIN}\n{SAMPLE_MD5}\n2001:db8:dead::1\nmaybe-phish.example\n203.0.113.50\n"),
    );
    let output = env.run(&["enrich", &feed, "--format", "stix"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let bundle: Value = serde_json::from_slice(&output.stdout).unwrap();
    let objects = bundle["objects"].as_array().unwrap();
    let count = |t: &str| objects.iter().filter(|o| o["type"] == t).count();
    assert_eq!(count("identity"), 1);
    assert_eq!(count("indicator"), 5, "the unknown result has no STIX form");
    assert!(
        count("malware") >= 3 && count("relationship") >= 4,
        "{bundle}"
    );
    let patterns: Vec<&str> = objects
        .iter()
        .filter_map(|o| o["pattern"].as_str())
        .collect();
    assert!(
        patterns.contains(&"[ipv6-addr:value = '2001:db8:dead::1']"),
        "{patterns:?}"
    );
    assert!(
        patterns.contains(&format!("[file:hashes.MD5 = '{SAMPLE_MD5}']").as_str()),
        "{patterns:?}"
    );

    let path = env.dir.path().join("bundle.json");
    std::fs::write(&path, &output.stdout).unwrap();
    let validator = Command::new("stix2_validator").arg(&path).output().unwrap_or_else(|e| {
        panic!("the OASIS validator is needed (pip install stix2-validator; .ci/run installs it): {e}")
    });
    let report = String::from_utf8_lossy(&validator.stdout);
    assert!(
        validator.status.success() && report.contains("STIX JSON: Valid"),
        "{report}"
    );
}
