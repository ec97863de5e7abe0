use std::path::Path;

use enrichbox_indicator::Kind;

use super::*;
use crate::batch::input::ItemContext;
use crate::config::Config;
use crate::outcome::{ErrorKind, FindingOut, LookupError, LookupOutcome};

const INSTANCE: &str = "[[instance]]\nname = \"A\"\napi_key_env = \"K\"\n";

fn load(text: &str) -> Result<Config, String> {
    Config::parse(Path::new("/etc/enrichbox/enrichbox.toml"), text).map_err(|e| e.to_string())
}

fn error(policies: &str) -> String {
    load(&format!("{INSTANCE}{policies}")).unwrap_err()
}

fn context(source: Option<&str>, tags: &[&str], confidence: Option<u8>) -> ItemContext {
    ItemContext {
        source: source.map(str::to_string),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        confidence,
    }
}

#[test]
fn a_policy_is_read_with_its_lists_conditions_and_defaults() {
    let config = load(&format!(
        "{INSTANCE}[[policy]]\nname = \"feeds\"\nip = [\"A\", \"B\"]\nhash = [\"A\"]\n\
         [policy.when]\nsources = [\"Feed-A\"]\nmin_confidence = 60\n\
         [[policy]]\nname = \"all\"\nmode = \"parallel\"\npriority = -5\ndomain = [\"A\"]\n"
    ))
    .unwrap();
    let feeds = &config.policies[0];
    assert_eq!(feeds.mode, Mode::Sequential, "sequential is the default");
    assert_eq!(feeds.priority, 0);
    assert_eq!(feeds.routes.ip, ["A", "B"]);
    assert!(feeds.routes.domain.is_empty());
    assert_eq!(feeds.when.sources, ["Feed-A"]);
    assert_eq!(feeds.when.min_confidence, Some(60));
    assert_eq!(config.policies[1].mode, Mode::Parallel);
    assert_eq!(config.policies[1].priority, -5);
}

#[test]
fn a_file_may_hold_only_policies_when_instances_live_in_the_database() {
    let config = load("[[policy]]\nname = \"p\"\nip = [\"Db_Instance\"]\n").unwrap();
    assert!(config.instances.is_empty());
    assert_eq!(config.policies.len(), 1);
    assert!(load("").unwrap_err().contains("no [[instance]]"));
}

#[test]
fn invalid_policies_are_named_with_file_policy_and_field() {
    let cases = [
        (
            "[[policy]]\nname = \"p\"\nip = [\"A\"]\ncolour = 1\n",
            "colour",
            "unknown field",
        ),
        (
            "[[policy]]\nname = \"p\"\nip = [\"A\", \"B\", \"C\", \"D\"]\n",
            "ip",
            "at most 3",
        ),
        (
            "[[policy]]\nname = \"p\"\nmode = \"random\"\nip = [\"A\"]\n",
            "mode",
            "`random`",
        ),
        (
            "[[policy]]\nname = \"p\"\nip = [\"A\"]\nwhen = { min_confidence = 101 }\n",
            "when.min_confidence",
            "101 is outside 0-100",
        ),
        (
            "[[policy]]\nname = \"p\"\nurl = [\"A\", \"a\"]\n",
            "url",
            "listed twice",
        ),
        ("[[policy]]\nname = \"p\"\nurl = []\n", "url", "empty"),
        ("[[policy]]\nname = \"p\"\n", "ip", "enriches nothing"),
        (
            "[[policy]]\nname = \"p\"\nip = [\"A\"]\nwhen = { source = [\"x\"] }\n",
            "source",
            "expected one of `sources`",
        ),
        (
            "[[policy]]\nname = \"bad name!\"\nip = [\"A\"]\n",
            "name",
            "not a valid name",
        ),
    ];
    for (text, field, message) in cases {
        let e = error(text);
        assert!(
            e.starts_with("/etc/enrichbox/enrichbox.toml: policy `"),
            "{e}"
        );
        assert!(e.contains(&format!("field `{field}`")), "{text}: {e}");
        assert!(e.contains(message), "{text}: {e}");
    }
    let twice =
        error("[[policy]]\nname = \"p\"\nip = [\"A\"]\n[[policy]]\nname = \"P\"\nip = [\"A\"]\n");
    assert!(
        twice.contains("policy `P`") && twice.contains("unique"),
        "{twice}"
    );
}

fn policy(name: &str, priority: i64, ip: &[&str], when: Conditions) -> Policy {
    Policy {
        name: name.into(),
        mode: Mode::Sequential,
        priority,
        routes: Routes {
            ip: ip.iter().map(|s| s.to_string()).collect(),
            ..Routes::default()
        },
        when,
        origin: crate::registry::Origin::File("/x.toml".into()),
    }
}

#[test]
fn conditions_match_any_source_or_tag_case_insensitively_and_need_a_confidence() {
    let when = Conditions {
        sources: vec!["Feed-A".into(), "feed-b".into()],
        tags: vec!["C2".into()],
        min_confidence: Some(60),
    };
    assert!(
        when.check(&context(Some("FEED-B"), &["x", "c2"], Some(60)))
            .is_ok()
    );
    assert!(matches!(
        when.check(&context(Some("feed-c"), &["c2"], Some(90))),
        Err(Miss::Source { .. })
    ));
    assert!(matches!(
        when.check(&context(None, &["c2"], Some(90))),
        Err(Miss::Source { got: None, .. })
    ));
    assert!(matches!(
        when.check(&context(Some("feed-a"), &["phish"], Some(90))),
        Err(Miss::Tags { .. })
    ));
    assert_eq!(
        when.check(&context(Some("feed-a"), &["c2"], None)),
        Err(Miss::Confidence { min: 60, got: None }),
        "no confidence is not enough confidence"
    );
    assert!(
        when.check(&context(Some("feed-a"), &["c2"], Some(59)))
            .is_err()
    );
    let p = policy("p", 0, &["A"], Conditions::default());
    assert_eq!(
        p.check(Kind::Domain, &ItemContext::default()),
        Err(Miss::KindNotListed(Kind::Domain))
    );
    assert_eq!(p.check(Kind::Ip, &ItemContext::default()).unwrap(), ["A"]);
}

#[test]
fn the_highest_priority_applicable_policy_wins_and_ties_go_by_name() {
    let trusted = Conditions {
        sources: vec!["trusted".into()],
        ..Conditions::default()
    };
    let mut policies = vec![
        policy("zeta", 5, &["Z"], Conditions::default()),
        policy("alpha", 5, &["A"], Conditions::default()),
        policy("vip", 10, &["V"], trusted),
        policy("low", 1, &["L"], Conditions::default()),
    ];
    sort(&mut policies);
    let names: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["vip", "alpha", "zeta", "low"]);
    let chosen = |source: Option<&str>| {
        choose(&policies, Kind::Ip, &context(source, &[], None)).map(|p| p.name.clone())
    };
    assert_eq!(chosen(Some("trusted")).as_deref(), Some("vip"));
    assert_eq!(chosen(Some("other")).as_deref(), Some("alpha"));
    assert_eq!(
        choose(&policies, Kind::Url, &ItemContext::default()).map(|p| &p.name),
        None
    );
    assert!(
        find(&policies, "nope")
            .unwrap_err()
            .contains("known: vip, alpha, zeta, low")
    );
}

#[test]
fn a_forced_policy_reports_what_it_does_not_take() {
    let only_trusted = Conditions {
        sources: vec!["trusted".into()],
        ..Conditions::default()
    };
    let policies = vec![
        policy("vip", 10, &["V"], only_trusted),
        policy("any", 0, &["A"], Conditions::default()),
    ];
    let router = Router::with_policies(policies.clone(), Some("VIP")).unwrap();
    let why = router.plan(Kind::Ip, &ItemContext::default()).unwrap_err();
    assert!(
        why.contains("policy `vip`") && why.contains("source trusted"),
        "{why}"
    );
    assert!(
        router
            .plan(Kind::Domain, &context(Some("trusted"), &[], None))
            .is_err()
    );
    let auto = Router::with_policies(policies, None).unwrap();
    assert!(matches!(
        auto.plan(Kind::Ip, &ItemContext::default()),
        Ok(Plan::Policy { policy, .. }) if policy.name == "any"
    ));
    assert!(matches!(
        auto.plan(Kind::Url, &ItemContext::default()),
        Ok(Plan::Default)
    ));
}

fn outcome(instance: &str, verdict: Option<&str>, error: Option<ErrorKind>) -> LookupOutcome {
    let mut outcome = LookupOutcome::empty("1.2.3.4", Some("ip".into()), instance, "ThreatFox");
    outcome.verdict = verdict.map(str::to_string);
    outcome.error = error.map(|k| LookupError::new(k, format!("{instance} broke")));
    outcome.lookup_id = format!("id-{instance}");
    outcome.units_charged = 1;
    outcome
}

fn finding(record: &str, family: &str) -> FindingOut {
    serde_json::from_value(serde_json::json!({
        "relation": "exact", "threat_type": "botnet_cc", "threat_type_description": null,
        "malware_family": family, "malware_aliases": [], "confidence": 90,
        "first_seen": null, "last_seen": null, "tags": ["t"], "reference_urls": [],
        "reporter": null, "record_id": record, "permalink": null,
        "matched_ioc": "1.2.3.4", "matched_ioc_type": "ip"
    }))
    .unwrap()
}

#[test]
fn merging_keeps_the_strongest_verdict_all_findings_and_every_answer() {
    let mut a = outcome("A", Some("suspicious"), None);
    a.findings = vec![finding("1", "QakBot")];
    let b = outcome("B", None, Some(ErrorKind::UpstreamUnavailable));
    let mut c = outcome("C", Some("malicious"), None);
    c.findings = vec![finding("1", "QakBot"), finding("2", "Emotet")];
    let merged = merge("p", vec![a, b, c]);
    assert_eq!(merged.verdict.as_deref(), Some("malicious"));
    assert!(
        merged.error.is_none(),
        "one failure does not fail the merge"
    );
    assert_eq!(merged.instance, "C", "the instance that gave the verdict");
    assert_eq!(merged.lookup_id, "id-C");
    let records: Vec<&str> = merged
        .findings
        .iter()
        .map(|f| f.record_id.as_str())
        .collect();
    assert_eq!(
        records,
        ["1", "2"],
        "a record two instances return is kept once"
    );
    assert_eq!(merged.units_charged, 3);
    assert_eq!(merged.policy.as_deref(), Some("p"));
    let consulted: Vec<(&str, Option<&str>, Option<ErrorKind>)> = merged
        .consulted
        .iter()
        .map(|c| (c.instance.as_str(), c.verdict.as_deref(), c.error))
        .collect();
    assert_eq!(
        consulted,
        [
            ("A", Some("suspicious"), None),
            ("B", None, Some(ErrorKind::UpstreamUnavailable)),
            ("C", Some("malicious"), None)
        ]
    );
    let json = serde_json::to_value(&merged).unwrap();
    assert_eq!(json["consulted"][1]["error"], "upstream-unavailable");
}

#[test]
fn merging_is_an_error_only_when_every_instance_failed() {
    let merged = merge(
        "p",
        vec![
            outcome("A", None, Some(ErrorKind::QuotaExhausted)),
            outcome("B", None, Some(ErrorKind::Timeout)),
        ],
    );
    assert_eq!(merged.verdict, None);
    let error = merged.error.unwrap();
    assert_eq!(error.kind, ErrorKind::Timeout);
    assert!(
        error.message.contains("A: quota-exhausted") && error.message.contains("B: timeout"),
        "{}",
        error.message
    );
    let unknown = merge(
        "p",
        vec![
            outcome("A", None, Some(ErrorKind::QuotaExhausted)),
            outcome("B", Some("unknown"), None),
        ],
    );
    assert_eq!(unknown.verdict.as_deref(), Some("unknown"));
    assert!(unknown.error.is_none());
    assert_eq!(unknown.instance, "B");
}

#[test]
fn results_without_a_policy_serialize_as_before() {
    let json = serde_json::to_value(outcome("A", Some("unknown"), None)).unwrap();
    assert!(
        json.get("policy").is_none() && json.get("consulted").is_none(),
        "{json}"
    );
}
