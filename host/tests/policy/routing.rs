//! Which instances an indicator goes to, and how their answers merge.

use enrichbox_tests::mock::dataset::{C2_DOMAIN, C2_IP};
use enrichbox_tests::mock::{Behavior, MockThreatFox};
use serde_json::Value;

use crate::env::*;

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
