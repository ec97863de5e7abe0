//! Operators, permissions, managed instances and quota through the
//! `enrichbox` binary and its database.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use enrichbox_tests::mock::dataset::C2_IP;
use enrichbox_tests::mock::{Behavior, MockThreatFox};
use serde_json::Value;

const KEY: &str = "mgmt-secret-9c41f2";

struct Env {
    dir: tempfile::TempDir,
    db: PathBuf,
}

impl Env {
    /// A fresh database whose admin is `root`.
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state/enrichbox.db");
        let env = Env { dir, db };
        let init = env.run("root", &["init"]);
        assert!(init.status.success(), "{}", err(&init));
        assert!(
            out(&init).contains("operator add"),
            "init says how to add others: {}",
            out(&init)
        );
        env
    }

    fn run(&self, operator: &str, args: &[&str]) -> Output {
        self.command(operator, args)
            .output()
            .expect("enrichbox runs")
    }

    fn command(&self, operator: &str, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_enrichbox"));
        command
            .current_dir(self.dir.path())
            .args(["--db", self.db.to_str().unwrap(), "--as", operator])
            .args(args)
            .env("TF_KEY", KEY)
            .env_remove("ENRICHBOX_CONFIG")
            .env_remove("ENRICHBOX_DB")
            .env_remove("ENRICHBOX_OPERATOR");
        command
    }

    fn ok(&self, operator: &str, args: &[&str]) -> String {
        let output = self.run(operator, args);
        assert!(
            output.status.success(),
            "{args:?} failed: {}{}",
            out(&output),
            err(&output)
        );
        out(&output)
    }

    fn denied(&self, operator: &str, args: &[&str], permission: &str) {
        let output = self.run(operator, args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?} as {operator}: {}",
            out(&output)
        );
        let message = err(&output);
        assert!(
            message.contains(&format!("needs the `{permission}` permission")),
            "{args:?}: {message}"
        );
    }

    fn add_instance(&self, name: &str, mock: &MockThreatFox, extra: &[&str]) -> Output {
        let base = mock.base_url().to_string();
        let mut args = vec![
            "instance",
            "add",
            name,
            "--base-url",
            base.as_str(),
            "--api-key-env",
            "TF_KEY",
        ];
        args.extend_from_slice(extra);
        self.run("root", &args)
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn instance_names(env: &Env) -> Vec<String> {
    let list: Value =
        serde_json::from_str(&env.ok("root", &["instance", "list", "--format", "json"])).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn each_action_needs_its_permission_and_a_denial_changes_nothing() {
    let mock = MockThreatFox::start(KEY);
    let env = Env::new();
    assert!(env.add_instance("TF", &mock, &[]).status.success());
    for (name, perms) in [
        ("viewer", "view"),
        ("creator", "create"),
        ("updater", "update"),
        ("analyst", "enrich"),
    ] {
        env.ok("root", &["operator", "add", name, "--permissions", perms]);
    }
    let base = mock.base_url().to_string();
    let add = [
        "instance",
        "add",
        "TF2",
        "--base-url",
        base.as_str(),
        "--api-key-env",
        "TF_KEY",
    ];

    // view
    env.ok("viewer", &["instance", "list"]);
    env.ok("viewer", &["instance", "show", "TF"]);
    env.ok("viewer", &["instance", "history", "TF"]);
    env.ok("viewer", &["quota"]);
    env.denied("analyst", &["instance", "list"], "view");
    env.denied("creator", &["instance", "show", "TF"], "view");
    // create
    env.denied("viewer", &add, "create");
    env.denied("updater", &add, "create");
    assert_eq!(instance_names(&env), ["TF"], "a denied add saved nothing");
    env.ok("creator", &add);
    // update
    for args in [
        vec!["instance", "update", "TF2", "--quota", "5/day"],
        vec!["instance", "disable-kind", "TF2", "url"],
        vec!["instance", "enable-kind", "TF2", "url"],
        vec!["instance", "remove", "TF2"],
    ] {
        env.denied("viewer", &args, "update");
        env.denied("creator", &args, "update");
    }
    env.ok(
        "updater",
        &["instance", "update", "TF2", "--quota", "5/day"],
    );
    env.ok("updater", &["instance", "disable-kind", "TF2", "url"]);
    // enrich
    env.denied("viewer", &["lookup", "--instance", "TF", C2_IP], "enrich");
    env.ok("analyst", &["lookup", "--instance", "TF", C2_IP]);
    // admin
    env.denied(
        "updater",
        &["operator", "add", "x", "--permissions", "view"],
        "admin",
    );
    env.denied("analyst", &["operator", "list"], "admin");
    // An unknown operator is told how to become one.
    let ghost = env.run("ghost", &["instance", "list"]);
    assert!(
        err(&ghost).contains("no operator is named `ghost`"),
        "{}",
        err(&ghost)
    );

    let history = env.ok("viewer", &["instance", "history", "TF2"]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 3, "{history}");
    assert!(
        lines[0].contains("creator") && lines[0].contains("add"),
        "{history}"
    );
    assert!(
        lines[1].contains("updater") && lines[1].contains("update") && lines[1].contains("5"),
        "{history}"
    );
    assert!(
        lines[2].contains("updater") && lines[2].contains("disable-kind"),
        "{history}"
    );
}

#[test]
fn adding_refuses_duplicates_bad_urls_and_failing_connections() {
    let mock = MockThreatFox::start(KEY);
    let env = Env::new();
    assert!(env.add_instance("TF", &mock, &[]).status.success());

    let dup = env.add_instance("tf", &mock, &[]);
    assert_eq!(dup.status.code(), Some(2));
    assert!(err(&dup).contains("exists already"), "{}", err(&dup));

    let bad = env.run(
        "root",
        &[
            "instance",
            "add",
            "Bad",
            "--base-url",
            "ftp://x.example/",
            "--api-key-env",
            "TF_KEY",
        ],
    );
    assert!(
        err(&bad).contains("field `base_url`") && err(&bad).contains("https or http"),
        "{}",
        err(&bad)
    );

    let wrong_key = MockThreatFox::start("another-key");
    let refused = env.add_instance("WrongKey", &wrong_key, &[]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        err(&refused).contains("credentials-rejected") && err(&refused).contains("not saved"),
        "{}",
        err(&refused)
    );

    let dead = env.run(
        "root",
        &[
            "instance",
            "add",
            "Dead",
            "--base-url",
            "http://127.0.0.1:1/api/v1/",
            "--api-key-env",
            "TF_KEY",
        ],
    );
    assert!(
        err(&dead).contains("upstream-unavailable") && err(&dead).contains("refused"),
        "{}",
        err(&dead)
    );

    let tls = MockThreatFox::start_tls(KEY);
    let untrusted = env.add_instance("SelfSigned", &tls, &[]);
    assert!(
        err(&untrusted).to_lowercase().contains("certificate"),
        "{}",
        err(&untrusted)
    );

    assert_eq!(instance_names(&env), ["TF"]);
    assert!(
        env.add_instance("WrongKey", &wrong_key, &["--skip-test"])
            .status
            .success()
    );
    assert_eq!(instance_names(&env), ["TF", "WrongKey"]);
}

#[test]
fn the_api_key_is_never_written_to_the_database() {
    let mock = MockThreatFox::start(KEY);
    let env = Env::new();
    assert!(
        env.add_instance("TF", &mock, &["--quota", "100/day"])
            .status
            .success()
    );
    env.ok("root", &["lookup", C2_IP, "203.0.113.1"]);
    mock.set_behavior(Behavior::EchoKey);
    let _ = env.run("root", &["lookup", C2_IP]);
    env.ok(
        "root",
        &["instance", "update", "TF", "--timeout-seconds", "5"],
    );
    for entry in std::fs::read_dir(env.db.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let found = bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes());
        assert!(!found, "the key is in {}", path.display());
    }
}

#[test]
fn show_says_where_an_instance_is_defined_and_file_instances_are_read_only() {
    let mock = MockThreatFox::start(KEY);
    let env = Env::new();
    let config = env.dir.path().join("enrichbox.toml");
    std::fs::write(
        &config,
        format!(
            "[[instance]]\nname = \"FromFile\"\nbase_url = \"{}\"\napi_key_env = \"TF_KEY\"\n",
            mock.base_url()
        ),
    )
    .unwrap();
    assert!(env.add_instance("FromDb", &mock, &[]).status.success());

    let file: Value = serde_json::from_str(&env.ok(
        "root",
        &["instance", "show", "FromFile", "--format", "json"],
    ))
    .unwrap();
    assert!(
        file["defined_in"]
            .as_str()
            .unwrap()
            .contains("enrichbox.toml"),
        "{file}"
    );
    let db: Value =
        serde_json::from_str(&env.ok("root", &["instance", "show", "FromDb", "--format", "json"]))
            .unwrap();
    assert!(
        db["defined_in"].as_str().unwrap().starts_with("database"),
        "{db}"
    );
    assert!(db["created"].as_str().unwrap().contains("by root"), "{db}");
    assert_eq!(db["api_key_source"], "environment variable TF_KEY");

    let edit = env.run(
        "root",
        &["instance", "update", "FromFile", "--quota", "1/day"],
    );
    assert!(
        err(&edit).contains("defined in") && err(&edit).contains("editing that file"),
        "{}",
        err(&edit)
    );
    let clash = env.add_instance("fromfile", &mock, &["--skip-test"]);
    assert!(err(&clash).contains("editing that file"), "{}", err(&clash));
}

#[test]
fn quota_shows_limit_use_and_reset_and_refuses_when_spent() {
    let mock = MockThreatFox::start(KEY);
    let env = Env::new();
    assert!(
        env.add_instance("TF", &mock, &["--quota", "2/day"])
            .status
            .success()
    );
    let baseline = mock.request_count();
    env.ok("root", &["lookup", C2_IP, "203.0.113.5"]);
    // A cached result costs nothing; asking the provider again needs quota.
    let cached = env.run("root", &["lookup", "--format", "json", C2_IP]);
    assert!(cached.status.success(), "{}", err(&cached));
    let refused = env.run("root", &["lookup", "--refresh", "--format", "json", C2_IP]);
    assert_eq!(refused.status.code(), Some(1));
    let results: Value = serde_json::from_str(&out(&refused)).unwrap();
    assert_eq!(results[0]["error"]["kind"], "quota-exhausted");
    assert_eq!(
        mock.request_count() - baseline,
        2,
        "the refused lookup sent nothing"
    );

    let status: Value =
        serde_json::from_str(&env.ok("root", &["quota", "--format", "json"])).unwrap();
    let tf = &status[0];
    assert_eq!(
        (
            tf["limit"].as_u64(),
            tf["used"].as_u64(),
            tf["remaining"].as_u64()
        ),
        (Some(2), Some(2), Some(0))
    );
    assert_eq!(tf["period"], "day");
    assert!(
        tf["resets_at"].as_str().unwrap().ends_with("T00:00:00Z"),
        "{tf}"
    );

    env.ok("root", &["instance", "update", "TF", "--no-quota"]);
    let table = env.ok("root", &["quota"]);
    assert!(table.contains("unlimited"), "{table}");
}

#[test]
fn a_killed_batch_leaves_every_sent_request_charged_exactly_once() {
    let mock = MockThreatFox::start(KEY);
    mock.set_behavior(Behavior::Slow(Duration::from_millis(150)));
    let env = Env::new();
    assert!(
        env.add_instance("TF", &mock, &["--quota", "1000/day", "--skip-test"])
            .status
            .success()
    );
    let indicators: Vec<String> = (1..=60).map(|i| format!("198.51.100.{i}")).collect();
    let mut args = vec!["lookup"];
    args.extend(indicators.iter().map(String::as_str));
    let mut child = env
        .command("root", &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while mock.request_count() < 5 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let sent = mock.request_count() as u64;
    assert!(
        (5..60).contains(&sent),
        "killed mid-batch after {sent} requests"
    );

    let status: Value =
        serde_json::from_str(&env.ok("root", &["quota", "--format", "json"])).unwrap();
    let used = status[0]["used"].as_u64().unwrap();
    let in_flight = status[0]["in_flight"].as_u64().unwrap();
    // Every request that arrived is counted against the quota (spent, or
    // still held by the killed process's reservation until it expires), and
    // at most the one lookup in flight at the kill is counted without having
    // arrived.
    let charged = used + in_flight;
    assert!(
        sent <= charged && charged <= sent + 1,
        "sent {sent}, used {used}, in flight {in_flight}"
    );
    assert!(in_flight <= 1, "{status}");
}

#[test]
fn a_new_base_url_is_tested_before_it_is_saved() {
    let env = Env::new();
    let mock = MockThreatFox::start(KEY);
    let added = env.add_instance("TF", &mock, &[]);
    assert!(added.status.success());
    assert!(
        err(&added).contains("uses plain http://"),
        "a key sent in clear text is worth a warning: {}",
        err(&added)
    );
    let nowhere = "http://127.0.0.1:1/api/v1/";
    let refused = env.run("root", &["instance", "update", "TF", "--base-url", nowhere]);
    assert_eq!(refused.status.code(), Some(2));
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(
        text.contains("not saved: the connection test failed"),
        "{text}"
    );
    assert!(
        !env.ok("root", &["instance", "show", "TF"])
            .contains("127.0.0.1:1/")
    );

    env.ok(
        "root",
        &[
            "instance",
            "update",
            "TF",
            "--base-url",
            nowhere,
            "--skip-test",
        ],
    );
    assert!(
        env.ok("root", &["instance", "show", "TF"])
            .contains("127.0.0.1:1/")
    );
}
