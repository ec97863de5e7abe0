//! Enrichment policies through the `enrichbox` binary: routing, sequential
//! fall-through, parallel merge, conditions and priority, `policy explain`
//! and database policies, against local ThreatFox mocks (one per instance,
//! so each instance's requests can be counted).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use enrichbox_tests::mock::dataset::{C2_DOMAIN, C2_IP};
use enrichbox_tests::mock::{Behavior, MockThreatFox};
use serde_json::Value;

const KEY: &str = "policy-key-7d1e";

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
}

impl Env {
    /// `config` is the whole enrichbox.toml; the database gets admin `root`.
    fn new(config: &str) -> Env {
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

    fn run(&self, operator: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_enrichbox"))
            .current_dir(self.dir.path())
            .arg("--config")
            .arg(&self.config)
            .args(["--db", self.db.to_str().unwrap(), "--as", operator])
            .args(args)
            .env("TF_KEY", KEY)
            .env_remove("ENRICHBOX_CONFIG")
            .env_remove("ENRICHBOX_DB")
            .env_remove("ENRICHBOX_OPERATOR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn enrich(&self, args: &[&str], stdin: &str) -> (Output, Vec<Value>) {
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

fn instance(name: &str, base_url: &str, extra: &str) -> String {
    format!(
        "[[instance]]\nname = \"{name}\"\nbase_url = \"{base_url}\"\napi_key_env = \"TF_KEY\"\n{extra}\n"
    )
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// (instance, verdict, error kind) of each consulted instance.
fn consulted(result: &Value) -> Vec<(String, String, String)> {
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

fn row(instance: &str, verdict: &str, error: &str) -> (String, String, String) {
    (instance.into(), verdict.into(), error.into())
}

/// Whether `mock` was asked about `indicator`.
fn asked(mock: &MockThreatFox, indicator: &str) -> bool {
    mock.received().iter().any(|r| r.body.contains(indicator))
}

#[test]
fn sequential_stops_at_the_first_malicious_verdict_and_falls_through_on_exhausted_quota() {
    let (first, second) = (MockThreatFox::start(KEY), MockThreatFox::start(KEY));
    let env = Env::new(&format!(
        "{}{}[[policy]]\nname = \"seq\"\nip = [\"First\", \"Second\"]\ndomain = [\"First\", \"Second\"]\n",
        instance(
            "First",
            first.base_url().as_str(),
            "quota = { units = 1, per = \"day\" }"
        ),
        instance("Second", second.base_url().as_str(), ""),
    ));
    let (output, results) = env.enrich(&["--policy", "seq"], &format!("{C2_IP}\n{C2_DOMAIN}\n"));
    assert!(output.status.success(), "{}", err(&output));
    assert_eq!(results.len(), 2, "one result per indicator");

    // The IP used First's only unit and was malicious there: Second never heard of it.
    assert_eq!(results[0]["verdict"], "malicious");
    assert_eq!(results[0]["policy"], "seq");
    assert_eq!(consulted(&results[0]), [row("First", "malicious", "-")]);
    assert!(!asked(&second, C2_IP), "Second was asked about the IP");

    // The domain found First's quota exhausted and went on to Second.
    assert_eq!(results[1]["verdict"], "malicious");
    assert_eq!(results[1]["instance"], "Second");
    assert!(results[1]["error"].is_null());
    assert_eq!(
        consulted(&results[1]),
        [
            row("First", "-", "quota-exhausted"),
            row("Second", "malicious", "-")
        ]
    );
    assert_eq!(first.request_count(), 1, "an exhausted quota sends nothing");
    assert!(asked(&second, C2_DOMAIN));
    assert!(err(&output).contains("quota units: 2"), "{}", err(&output));
}

#[test]
fn sequential_falls_through_when_instances_fail() {
    let (broken, good) = (MockThreatFox::start(KEY), MockThreatFox::start(KEY));
    broken.set_behavior(Behavior::HttpStatus(500));
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = Env::new(&format!(
        "{}{}{}[[policy]]\nname = \"failover\"\nip = [\"Dead\", \"Broken\", \"Good\"]\n",
        instance(
            "Dead",
            &format!("http://127.0.0.1:{closed}/api/v1/"),
            "timeout_seconds = 2"
        ),
        instance("Broken", broken.base_url().as_str(), "timeout_seconds = 2"),
        instance("Good", good.base_url().as_str(), ""),
    ));
    let (output, results) = env.enrich(&["--policy", "failover"], &format!("{C2_IP}\n"));
    assert!(
        output.status.success(),
        "a failure that a later instance makes up for is not a failed run: {}",
        err(&output)
    );
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["verdict"], "malicious");
    assert_eq!(results[0]["instance"], "Good");
    assert_eq!(
        consulted(&results[0]),
        [
            row("Dead", "-", "upstream-unavailable"),
            row("Broken", "-", "upstream-unavailable"),
            row("Good", "malicious", "-")
        ]
    );
    assert!(asked(&broken, C2_IP) && asked(&good, C2_IP));

    // When every instance fails, the result is the failure, listing each.
    good.set_behavior(Behavior::HttpStatus(503));
    let (output, results) = env.enrich(&["--policy", "failover"], "198.51.100.7\n");
    assert_eq!(output.status.code(), Some(1), "{}", err(&output));
    assert!(results[0]["verdict"].is_null());
    let message = results[0]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("every instance of policy `failover` failed")
            && message.contains("Dead:")
            && message.contains("Good:"),
        "{message}"
    );
}

#[test]
fn parallel_asks_every_instance_and_merges_their_answers() {
    let (quiet, knowing) = (MockThreatFox::start(KEY), MockThreatFox::start(KEY));
    quiet.set_behavior(Behavior::QueryStatus("no_result".into()));
    let env = Env::new(&format!(
        "{}{}[[policy]]\nname = \"both\"\nmode = \"parallel\"\nip = [\"Quiet\", \"Knowing\"]\n",
        instance("Quiet", quiet.base_url().as_str(), ""),
        instance("Knowing", knowing.base_url().as_str(), ""),
    ));
    let (output, results) = env.enrich(&["--policy", "both"], &format!("{C2_IP}\n"));
    assert!(output.status.success(), "{}", err(&output));
    assert_eq!(results.len(), 1, "one merged result, not one per instance");
    let merged = &results[0];
    assert_eq!(merged["verdict"], "malicious", "malicious beats unknown");
    assert_eq!(merged["instance"], "Knowing");
    assert_eq!(
        consulted(merged),
        [
            row("Quiet", "unknown", "-"),
            row("Knowing", "malicious", "-")
        ]
    );
    let families: Vec<&str> = merged["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["malware_family"].as_str())
        .collect();
    assert!(families.contains(&"Cobalt Strike"), "{merged}");
    assert_eq!((quiet.request_count(), knowing.request_count()), (1, 1));
    assert!(err(&output).contains("quota units: 2"), "{}", err(&output));

    // The table renderer shows the merged result like any other.
    let table = env.run(
        "root",
        &["enrich", "-", "--policy", "both", "--format", "table"],
        Some(C2_IP),
    );
    let text = out(&table);
    assert!(text.contains("malicious (cached)"), "{text}");
    assert!(
        text.contains("policy both: Quiet unknown > Knowing malicious"),
        "{text}"
    );
}

#[test]
fn conditions_and_priority_choose_the_policy_and_the_rest_goes_to_the_default() {
    let mock = MockThreatFox::start(KEY);
    let base = mock.base_url().to_string();
    let env = Env::new(&format!(
        "default_instance = \"Default\"\n{}{}{}{}\
         [[policy]]\nname = \"trusted\"\npriority = 10\nip = [\"Trusted\"]\nwhen = {{ sources = [\"Partner-Feed\"] }}\n\
         [[policy]]\nname = \"confident\"\npriority = 5\nip = [\"Confident\"]\nwhen = {{ min_confidence = 80, tags = [\"c2\"] }}\n\
         [[policy]]\nname = \"general\"\nip = [\"General\"]\n",
        instance("Default", &base, ""),
        instance("Trusted", &base, ""),
        instance("Confident", &base, ""),
        instance("General", &base, ""),
    ));
    let csv = "ioc,source,tags,confidence\n\
               198.51.100.1,partner-feed,c2,90\n\
               198.51.100.2,other,phish|C2,85\n\
               198.51.100.3,other,c2,50\n\
               example.org,partner-feed,,\n\
               198.51.100.4,other,c2,150\n";
    let path = env.dir.path().join("iocs.csv");
    std::fs::write(&path, csv).unwrap();
    let path = path.to_str().unwrap();
    let output = env.run("root", &["enrich", path, "--ordered"], None);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the bad line makes it 1: {}",
        err(&output)
    );
    assert!(
        err(&output).contains("skipped line 6: confidence `150`"),
        "{}",
        err(&output)
    );
    let results: Vec<Value> = out(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let routes: Vec<(&str, &str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["indicator"].as_str().unwrap(),
                r["policy"].as_str().unwrap_or("-"),
                r["instance"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        routes,
        [
            ("198.51.100.1", "trusted", "Trusted"),
            ("198.51.100.2", "confident", "Confident"),
            ("198.51.100.3", "general", "General"),
            ("example.org", "-", "Default"),
        ]
    );

    // --policy: what it does not take is reported and counted, never dropped silently.
    let output = env.run(
        "root",
        &["enrich", path, "--ordered", "--policy", "trusted"],
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = err(&output);
    assert!(
        stderr.contains("not covered line 3: 198.51.100.2: policy `trusted` does not take it: it needs source Partner-Feed, not `other`"),
        "{stderr}"
    );
    assert!(stderr.contains("not covered line 5: example.org: policy `trusted` does not take it: it lists no instance for domain"), "{stderr}");
    assert!(
        stderr.contains("not covered by the policy: 3 indicators"),
        "{stderr}"
    );
    assert_eq!(out(&output).lines().count(), 1);

    // --source fills in inputs that name none.
    let (output, results) = env.enrich(
        &["--policy", "trusted", "--source", "partner-feed"],
        "198.51.100.9\n",
    );
    assert!(output.status.success(), "{}", err(&output));
    assert_eq!(results[0]["instance"], "Trusted");

    // --instance bypasses policies; with --policy it is a usage error.
    let (output, results) = env.enrich(&["--instance", "General"], "198.51.100.1\n");
    assert!(output.status.success(), "{}", err(&output));
    assert!(results[0].get("policy").is_none() && results[0]["instance"] == "General");
    let both = env.run(
        "root",
        &[
            "enrich",
            "-",
            "--policy",
            "trusted",
            "--instance",
            "General",
        ],
        None,
    );
    assert_eq!(both.status.code(), Some(2));
    assert!(err(&both).contains("cannot be used with"), "{}", err(&both));
}

#[test]
fn explain_shows_the_route_quota_and_pause_without_spending_anything() {
    let (first, second) = (MockThreatFox::start(KEY), MockThreatFox::start(KEY));
    let env = Env::new(&format!(
        "{}{}[[policy]]\nname = \"seq\"\nip = [\"First\", \"Second\"]\nwhen = {{ tags = [\"c2\"] }}\n",
        instance(
            "First",
            first.base_url().as_str(),
            "quota = { units = 5, per = \"day\" }"
        ),
        instance(
            "Second",
            second.base_url().as_str(),
            "enabled_kinds = [\"domain\"]"
        ),
    ));
    let output = env.run(
        "root",
        &[
            "policy", "explain", C2_IP, "--tag", "C2", "--format", "json",
        ],
        None,
    );
    assert!(output.status.success(), "{}", err(&output));
    let explained: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(explained["kind"], "ip");
    assert_eq!(explained["route"], "policy");
    assert_eq!(explained["policy"], "seq");
    assert_eq!(explained["mode"], "sequential");
    let instances = explained["instances"].as_array().unwrap();
    assert_eq!(instances[0]["instance"], "First");
    assert_eq!(instances[0]["quota_remaining"], 5);
    assert!(instances[0]["paused_until"].is_null());
    assert_eq!(instances[1]["instance"], "Second");
    assert!(instances[1]["quota_remaining"].is_null(), "unlimited");
    assert_eq!(instances[1]["kind_enabled"], false);

    let table = env.run("root", &["policy", "explain", C2_IP, "--tag", "c2"], None);
    let text = out(&table);
    assert!(
        text.contains("route      policy `seq`, sequential")
            && text.contains("1. First")
            && text.contains("quota 5 of 5/day left")
            && text.contains("nothing was sent"),
        "{text}"
    );
    // Without the tag nothing takes it, and there is no default among two instances.
    let uncovered = env.run("root", &["policy", "explain", C2_IP], None);
    assert_eq!(uncovered.status.code(), Some(1));
    assert!(
        out(&uncovered).contains("NOT COVERED"),
        "{}",
        out(&uncovered)
    );
    assert!(
        out(&uncovered).contains("it needs a tag c2; the input has none"),
        "{}",
        out(&uncovered)
    );

    assert_eq!(
        first.request_count() + second.request_count(),
        0,
        "explain sent a request"
    );
    let quota = env.run("root", &["quota", "--format", "json"], None);
    let quota: Value = serde_json::from_slice(&quota.stdout).unwrap();
    let used: Vec<u64> = quota
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["used"].as_u64().unwrap())
        .collect();
    assert_eq!(used, [0, 0], "{quota}");
    let output = env.run(
        "root",
        &[
            "policy", "explain", C2_IP, "--tag", "c2", "--format", "json",
        ],
        None,
    );
    let again: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        again["instances"][0]["quota_remaining"], 5,
        "nothing was reserved"
    );
}

#[test]
fn database_policies_are_managed_with_permissions_and_names_stay_unique() {
    let mock = MockThreatFox::start(KEY);
    let base = mock.base_url().to_string();
    let env = Env::new(&format!(
        "{}{}[[policy]]\nname = \"from-file\"\nip = [\"A\"]\n",
        instance("A", &base, ""),
        instance("B", &base, ""),
    ));
    assert!(
        env.run(
            "root",
            &["operator", "add", "viewer", "--permissions", "view,enrich"],
            None
        )
        .status
        .success()
    );
    let add = [
        "policy",
        "add",
        "db-policy",
        "--mode",
        "parallel",
        "--ip",
        "A,B",
        "--domain",
        "B",
        "--priority",
        "20",
        "--tag",
        "c2",
    ];
    let denied = env.run("viewer", &add, None);
    assert_eq!(denied.status.code(), Some(2));
    assert!(
        err(&denied).contains("needs the `create` permission"),
        "{}",
        err(&denied)
    );
    let added = env.run("root", &add, None);
    assert!(added.status.success(), "{}", err(&added));

    let list = env.run("viewer", &["policy", "list", "--format", "json"], None);
    assert!(list.status.success(), "{}", err(&list));
    let listed: Value = serde_json::from_slice(&list.stdout).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["db-policy", "from-file"],
        "priority 20 is tried first"
    );
    assert_eq!(listed[0]["routes"]["ip"], serde_json::json!(["A", "B"]));
    assert_eq!(listed[0]["when"]["tags"], serde_json::json!(["c2"]));
    let show = env.run("viewer", &["policy", "show", "DB-POLICY"], None);
    assert!(
        out(&show).contains("ip          A > B") && out(&show).contains("by root"),
        "{}",
        out(&show)
    );

    // The database policy routes lookups like a file one.
    let (output, results) =
        env.enrich(&[], &format!("{{\"ioc\":\"{C2_IP}\",\"tags\":[\"C2\"]}}\n"));
    assert!(output.status.success(), "{}", err(&output));
    assert_eq!(results[0]["policy"], "db-policy");
    assert_eq!(results[0]["consulted"].as_array().unwrap().len(), 2);

    let clash = env.run("root", &["policy", "add", "From-File", "--ip", "A"], None);
    assert!(
        err(&clash).contains("is defined in") && err(&clash).contains("enrichbox.toml"),
        "{}",
        err(&clash)
    );
    let unknown = env.run("root", &["policy", "add", "p2", "--ip", "A,Nope"], None);
    assert!(
        err(&unknown).contains("names instance `Nope`, which does not exist (known: A, B)"),
        "{}",
        err(&unknown)
    );
    let too_many = env.run("root", &["policy", "add", "p3", "--ip", "A,B,A,B"], None);
    assert!(
        err(&too_many).contains("field `ip`") && err(&too_many).contains("at most 3"),
        "{}",
        err(&too_many)
    );

    let denied = env.run("viewer", &["policy", "remove", "db-policy"], None);
    assert!(
        err(&denied).contains("needs the `update` permission"),
        "{}",
        err(&denied)
    );
    assert!(
        env.run("root", &["policy", "remove", "db-policy"], None)
            .status
            .success()
    );
    let list = env.run("viewer", &["policy", "list"], None);
    assert!(!out(&list).contains("db-policy"), "{}", out(&list));
    // An unknown --policy lists the known ones.
    let output = env.run("root", &["enrich", "-", "--policy", "nope"], Some(C2_IP));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        err(&output).contains("no policy is named `nope` (known: from-file)"),
        "{}",
        err(&output)
    );
}
