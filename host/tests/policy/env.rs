//! A temporary configuration and database, and the enrichbox binary run
//! against them.

use std::path::PathBuf;
use std::process::{Command, Output};

use enrichbox_tests::mock::MockThreatFox;
use serde_json::Value;

pub const KEY: &str = "policy-key-7d1e";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub db: PathBuf,
}

impl Env {
    /// `config` is the whole enrichbox.toml; the database gets admin `root`.
    pub fn new(config: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let env = Env {
            config: dir.path().join("enrichbox.toml"),
            db: dir.path().join("enrichbox.db"),
            dir,
        };
        std::fs::write(&env.config, config).unwrap();
        let init = env.run("root", &["init"], None);
        assert!(init.status.success(), "{}", err(&init));
        env
    }

    pub fn run(&self, operator: &str, args: &[&str], stdin: Option<&str>) -> Output {
        super::common::output_with_stdin(
            Command::new(env!("CARGO_BIN_EXE_enrichbox"))
                .current_dir(self.dir.path())
                .arg("--config")
                .arg(&self.config)
                .args(["--db", self.db.to_str().unwrap(), "--as", operator])
                .args(args)
                .env("TF_KEY", KEY)
                .env_remove("ENRICHBOX_CONFIG")
                .env_remove("ENRICHBOX_DB")
                .env_remove("ENRICHBOX_OPERATOR"),
            stdin.unwrap_or(""),
        )
    }

    pub fn enrich(&self, args: &[&str], stdin: &str) -> (Output, Vec<Value>) {
        let mut all = vec!["enrich", "-", "--ordered", "--concurrency", "1"];
        all.extend_from_slice(args);
        let output = self.run("root", &all, Some(stdin));
        let results = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("an NDJSON result"))
            .collect();
        (output, results)
    }
}

pub fn instance(name: &str, base_url: &str, extra: &str) -> String {
    format!(
        "[[instance]]\nname = \"{name}\"\nbase_url = \"{base_url}\"\napi_key_env = \"TF_KEY\"\n{extra}\n"
    )
}

pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// (instance, verdict, error kind) of each consulted instance.
pub fn consulted(result: &Value) -> Vec<(String, String, String)> {
    result["consulted"]
        .as_array()
        .unwrap_or_else(|| panic!("no consulted list: {result}"))
        .iter()
        .map(|c| {
            (
                c["instance"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap_or("-").to_string(),
                c["error"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

pub fn row(instance: &str, verdict: &str, error: &str) -> (String, String, String) {
    (instance.into(), verdict.into(), error.into())
}

/// Whether `mock` was asked about `indicator`.
pub fn asked(mock: &MockThreatFox, indicator: &str) -> bool {
    mock.received().iter().any(|r| r.body.contains(indicator))
}
