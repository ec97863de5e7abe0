//! `policy explain` and database policies.

use enrichbox_tests::mock::dataset::C2_IP;
use enrichbox_tests::mock::{Behavior, MockThreatFox};
use serde_json::Value;

use crate::env::*;

#[test]
fn explain_shows_the_route_quota_and_pause_without_spending_anything() {
    let (first, second) = (MockThreatFox::start(KEY), MockThreatFox::start(KEY));
    let flaky = MockThreatFox::start(KEY);
    flaky.set_behavior(Behavior::HttpStatus(500));
    let env = Env::new(&format!(
        "{}{}{}[[policy]]\nname = \"seq\"\nip = [\"First\", \"Second\"]\nwhen = {{ tags = [\"c2\"] }}\n\
         [[policy]]\nname = \"flaky\"\nip = [\"Flaky\"]\nwhen = {{ sources = [\"never\"] }}\n",
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
        instance(
            "Flaky",
            flaky.base_url().as_str(),
            "breaker_failures = 1\nbreaker_cooldown_seconds = 600\ntimeout_seconds = 1"
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
    assert_eq!(used, [0, 0, 0], "{quota}");
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

    // A paused instance is shown as paused, with the breaker's reason.
    let failed = env.run("root", &["lookup", "--instance", "Flaky", C2_IP], None);
    assert_eq!(failed.status.code(), Some(1));
    let sent = flaky.request_count();
    let output = env.run(
        "root",
        &[
            "policy", "explain", C2_IP, "--policy", "flaky", "--source", "never", "--format",
            "json",
        ],
        None,
    );
    assert!(output.status.success(), "{}", err(&output));
    let paused: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        paused["instances"][0]["paused_until"].is_string(),
        "{paused}"
    );
    assert!(
        paused["instances"][0]["pause_reason"]
            .as_str()
            .unwrap()
            .contains("500"),
        "{paused}"
    );
    assert_eq!(flaky.request_count(), sent, "explain sent a request");
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
    let again = env.run("root", &["policy", "add", "DB-Policy", "--ip", "A"], None);
    assert_eq!(again.status.code(), Some(2));
    assert!(err(&again).contains("exists already"), "{}", err(&again));

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

#[test]
fn an_instance_a_policy_routes_to_cannot_be_removed_until_the_policy_lets_go() {
    let mock = MockThreatFox::start(KEY);
    let base = mock.base_url().to_string();
    let env = Env::new(&instance("A", &base, ""));
    let added = env.run(
        "root",
        &[
            "instance",
            "add",
            "Spare",
            "--base-url",
            &base,
            "--api-key-env",
            "TF_KEY",
        ],
        None,
    );
    assert!(added.status.success(), "{}", err(&added));
    let policy = env.run(
        "root",
        &["policy", "add", "uses-spare", "--ip", "A,Spare"],
        None,
    );
    assert!(policy.status.success(), "{}", err(&policy));

    let refused = env.run("root", &["instance", "remove", "Spare"], None);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        err(&refused).contains("used by the policy `uses-spare`"),
        "{}",
        err(&refused)
    );
    let (still_works, results) = env.enrich(&["--policy", "uses-spare"], "139.180.203.104\n");
    assert!(still_works.status.success(), "{}", err(&still_works));
    assert_eq!(results.len(), 1);

    assert!(
        env.run("root", &["policy", "remove", "uses-spare"], None)
            .status
            .success()
    );
    let removed = env.run("root", &["instance", "remove", "Spare"], None);
    assert!(removed.status.success(), "{}", err(&removed));
}
