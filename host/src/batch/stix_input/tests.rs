use serde_json::{Value, json};

use super::pattern::comparisons;
use crate::batch::input::{InputFormat, Parsed, parse};

const MD5: &str = "3f2c9b1e8d7a6c5b4e3f2a1b0c9d8e7f";
const SHA1: &str = "0123456789abcdef0123456789abcdef01234567";
const SHA256: &str = "9a3c5e7b1d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c";

fn bundle(objects: Vec<Value>) -> String {
    serde_json::to_string_pretty(&json!({
        "type": "bundle", "id": "bundle--1", "objects": objects,
    }))
    .unwrap()
}

fn indicator(id: &str, pattern: &str) -> Value {
    json!({"type": "indicator", "spec_version": "2.1", "id": id, "pattern": pattern,
           "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z"})
}

fn read(objects: Vec<Value>) -> Parsed {
    parse(&bundle(objects), InputFormat::Stix, None).unwrap()
}

fn values(parsed: &Parsed) -> Vec<String> {
    parsed.items.iter().map(|i| i.indicator.value()).collect()
}

fn reasons(parsed: &Parsed) -> Vec<String> {
    parsed.rejected.iter().map(|r| r.reason.clone()).collect()
}

#[test]
fn each_pattern_form_yields_its_indicator() {
    let parsed = read(vec![
        indicator("indicator--a", "[ipv4-addr:value = '198.51.100.7']"),
        indicator("indicator--b", "[ipv6-addr:value = '2001:DB8::1']"),
        indicator("indicator--c", "[domain-name:value = 'Evil.Example']"),
        indicator("indicator--d", "[url:value = 'http://evil.example/a?b=1']"),
        indicator(
            "indicator--e",
            &format!("[file:hashes.'SHA-256' = '{SHA256}']"),
        ),
        indicator(
            "indicator--f",
            &format!("[file:hashes.MD5 = '{}']", MD5.to_uppercase()),
        ),
        indicator("indicator--g", &format!("[file:hashes.'sha-1'='{SHA1}']")),
        indicator(
            "indicator--h",
            &format!("[file:hashes.sha256 = '{}']", &SHA256[..63]),
        ),
    ]);
    assert_eq!(
        values(&parsed)[..7],
        [
            "198.51.100.7",
            "2001:db8::1",
            "evil.example",
            "http://evil.example/a?b=1",
            SHA256,
            MD5,
            SHA1
        ]
    );
    // A SHA-256 one digit short is reported, not guessed at.
    assert_eq!(parsed.items.len(), 7);
    assert!(
        reasons(&parsed)[0].starts_with("indicator--h: file:SHA-256:"),
        "{:?}",
        reasons(&parsed)
    );
}

#[test]
fn or_and_nesting_and_qualifiers_yield_every_value() {
    let parsed = read(vec![indicator(
        "indicator--x",
        "([ipv4-addr:value = '192.0.2.1' OR (ipv4-addr:value = '192.0.2.2' AND domain-name:value = 'a.example')] \
         AND [url:value = 'https://b.example/']) FOLLOWEDBY [domain-name:value = 'c.example'] WITHIN 1.5 SECONDS REPEATS 2 TIMES \
         OR [domain-name:value = 'd.example'] START t'2024-01-01T00:00:00Z' STOP t'2024-02-01T00:00:00Z'",
    )]);
    assert_eq!(
        values(&parsed),
        [
            "192.0.2.1",
            "192.0.2.2",
            "a.example",
            "https://b.example/",
            "c.example",
            "d.example"
        ]
    );
    assert!(parsed.rejected.is_empty(), "{:?}", reasons(&parsed));
}

#[test]
fn quotes_and_escapes_in_values_do_not_confuse_the_parser() {
    let found = comparisons(
        r"[url:value = 'http://x.example/it\'s]OR[' AND url:value = 'http://y.example/a\\b']",
    )
    .unwrap();
    let strings: Vec<_> = found.iter().map(|c| c.string.clone().unwrap()).collect();
    assert_eq!(
        strings,
        ["http://x.example/it's]OR[", r"http://y.example/a\b"]
    );
    assert_eq!(found[1].text, r"url:value = 'http://y.example/a\\b'");
    for broken in [
        "[url:value = 'open",
        "[url:value = 'a\\n']",
        "[ipv4-addr:value = '1.2.3.4'",
        "ipv4-addr:value = '1'",
        "[a:b = 'c'] junk",
        "",
    ] {
        assert!(comparisons(broken).is_err(), "{broken}");
    }
    let error = |pattern: &str| comparisons(pattern).unwrap_err();
    assert_eq!(
        error("[ipv4-addr:value = '1.2.3.4'"),
        "the pattern ends where `]` was expected"
    );
    assert_eq!(
        error("[a:b = 'c'] junk"),
        "unexpected `junk` at position 13"
    );
    assert_eq!(
        error("[a:b = 'c' OR = 'd']"),
        "expected an object type at position 15, found `=`"
    );
    assert_eq!(
        error("[a:b = 'c'] WITHIN x SECONDS"),
        "expected the value of WITHIN at position 20, found `x`"
    );
}

#[test]
fn other_operators_and_object_types_are_reported_not_dropped() {
    let parsed = read(vec![indicator(
        "indicator--m",
        "[domain-name:value = 'ok.example' OR domain-name:value MATCHES '^x' OR url:value LIKE '%y%' \
         OR process:name = 'evil.exe' OR email-addr:value = 'a@b.example' OR ipv4-addr:value != '192.0.2.9' \
         OR ipv4-addr:value NOT = '192.0.2.8' OR ipv4-addr:value IN ('192.0.2.3', '192.0.2.4') \
         OR file:hashes.'SHA-512' = 'ab' OR EXISTS file:name OR file:size > 10 \
         OR file:extensions.'windows-pebinary-ext'.sections[*].entropy > 7.5]",
    )]);
    assert_eq!(values(&parsed), ["ok.example"]);
    let reasons = reasons(&parsed);
    assert_eq!(reasons.len(), 11, "{reasons:#?}");
    assert!(
        reasons
            .iter()
            .all(|r| r.starts_with("indicator--m: unsupported pattern: `")),
        "{reasons:#?}"
    );
    assert!(
        reasons[0].contains("MATCHES '^x'") && reasons[2].contains("process:name"),
        "{reasons:#?}"
    );
    assert!(parsed.rejected.iter().all(|r| r.text == "indicator--m"));
}

#[test]
fn non_stix_and_broken_patterns_are_reported() {
    let mut snort = indicator("indicator--s", "alert tcp any any -> any any");
    snort["pattern_type"] = json!("snort");
    let mut absent = indicator("indicator--n", "[ipv4-addr:value = '192.0.2.5']");
    absent.as_object_mut().unwrap().remove("pattern_type");
    let parsed = read(vec![
        snort,
        absent,
        indicator("indicator--b", "[ipv4-addr:value = '192.0.2.6'"),
        indicator("indicator--w", "[ipv4-addr:value = 'evil.example']"),
        json!({"type": "indicator", "id": "indicator--p"}),
    ]);
    assert_eq!(values(&parsed), ["192.0.2.5"]);
    let reasons = reasons(&parsed);
    assert!(
        reasons[0].contains("pattern_type `snort` is not supported"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].starts_with("indicator--b: invalid STIX pattern"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("not an IPv4 or IPv6 address"),
        "{reasons:?}"
    );
    assert!(reasons[3].contains("no string `pattern`"), "{reasons:?}");
}

#[test]
fn observables_are_read_and_deduplicated_with_patterns() {
    let parsed = read(vec![
        indicator("indicator--1", "[ipv4-addr:value = '192.0.2.1']"),
        json!({"type": "ipv4-addr", "id": "ipv4-addr--1", "value": "192.0.2.1"}),
        json!({"type": "ipv6-addr", "id": "ipv6-addr--1", "value": "2001:db8::2"}),
        json!({"type": "domain-name", "id": "domain-name--1", "value": "obs.example"}),
        json!({"type": "url", "id": "url--1", "value": "https://obs.example/x"}),
        json!({"type": "file", "id": "file--1", "hashes": {"MD5": MD5, "SHA-256": SHA256, "SSDEEP": "3:a:b"}}),
        json!({"type": "ipv4-addr", "id": "ipv4-addr--2", "value": "2001:db8::3"}),
        json!({"type": "domain-name", "id": "domain-name--2"}),
        json!({"type": "malware", "id": "malware--1", "name": "x", "is_family": true}),
        json!({"type": "relationship", "id": "relationship--1"}),
        json!("not an object"),
    ]);
    assert_eq!(
        values(&parsed),
        [
            "192.0.2.1",
            "2001:db8::2",
            "obs.example",
            "https://obs.example/x",
            MD5,
            SHA256
        ]
    );
    assert_eq!(parsed.duplicates, 1);
    assert!(
        parsed.items[1..]
            .iter()
            .all(|i| i.context == Default::default())
    );
    let reasons = reasons(&parsed);
    assert_eq!(reasons.len(), 4, "{reasons:#?}");
    assert!(
        reasons[0].starts_with("file--1: the file hash `SSDEEP` is not looked up"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("is an IPv6 address"), "{reasons:?}");
    assert!(reasons[2].contains("no string `value`"), "{reasons:?}");
    assert!(
        reasons[3].starts_with("object 11: it is not a JSON object"),
        "{reasons:?}"
    );
}

#[test]
fn indicator_context_comes_from_labels_confidence_and_the_creator() {
    let mut with = indicator("indicator--c", "[domain-name:value = 'ctx.example']");
    with["labels"] = json!(["c2", "apt"]);
    with["indicator_types"] = json!(["malicious-activity", "c2"]);
    with["confidence"] = json!(85);
    with["created_by_ref"] = json!("identity--feed");
    let mut odd = indicator("indicator--d", "[domain-name:value = 'other.example']");
    odd["confidence"] = json!(400);
    odd["created_by_ref"] = json!("identity--elsewhere");
    let parsed = read(vec![
        with,
        odd,
        json!({"type": "identity", "id": "identity--feed", "name": "Partner Feed"}),
    ]);
    let context = &parsed.items[0].context;
    assert_eq!(context.source.as_deref(), Some("Partner Feed"));
    assert_eq!(context.tags, ["c2", "apt", "malicious-activity"]);
    assert_eq!(context.confidence, Some(85));
    assert_eq!(parsed.items[1].context, Default::default());
}

#[test]
fn lines_are_where_each_object_starts() {
    let text = "{\"type\": \"bundle\", \"id\": \"bundle--1\", \"note\": \"objects [ { \\\" \",\n\
                \"objects\": [\n\
                {\"type\": \"identity\", \"id\": \"identity--1\", \"name\": \"}]\"},\n\
                {\"type\": \"indicator\", \"id\": \"indicator--1\",\n\
                 \"pattern\": \"[domain-name:value = 'line-five.example']\"},\n\
                \n\
                {\"type\": \"indicator\", \"id\": \"indicator--2\", \"pattern\": \"[process:name = 'x']\"}\n\
                ]}\n";
    let parsed = parse(text, InputFormat::Stix, None).unwrap();
    assert_eq!(parsed.items[0].line, 4);
    assert_eq!(parsed.rejected[0].line, 7);
    assert_eq!(parsed.rejected[0].text, "indicator--2");
}

#[test]
fn what_is_not_a_bundle_is_an_error() {
    let cases = [
        ("{\"type\": \"bundle\", \"objects\": [", "not valid JSON"),
        ("[]", "not an object"),
        ("{\"type\": \"report\"}", "`report`, expected `bundle`"),
        ("{\"objects\": []}", "no `\"type\": \"bundle\"`"),
        ("{\"type\": \"bundle\"}", "no `objects` list"),
        (
            "{\"type\": \"bundle\", \"objects\": {}}",
            "`objects` is not a list",
        ),
    ];
    for (text, expected) in cases {
        let error = parse(text, InputFormat::Stix, None).unwrap_err();
        assert!(error.contains(expected), "{text}: {error}");
    }
}

#[test]
fn the_stix_output_reads_back_as_the_same_indicators() {
    let outcome = |indicator: &str, kind: &str| {
        serde_json::from_value::<crate::LookupOutcome>(json!({
            "indicator": indicator, "kind": kind, "instance": "TF", "provider": "ThreatFox",
            "verdict": "malicious", "findings": [], "error": null, "lookup_id": "l",
        }))
        .unwrap()
    };
    let outcomes = [
        outcome("192.0.2.1", "ip"),
        outcome("2001:db8::1", "ip"),
        outcome("evil.example", "domain"),
        outcome("http://x.example/it's", "url"),
        outcome(MD5, "hash"),
        outcome(SHA1, "hash"),
        outcome(SHA256, "hash"),
    ];
    let text = serde_json::to_string(&crate::stix::bundle(&outcomes)).unwrap();
    let parsed = parse(&text, InputFormat::Stix, None).unwrap();
    let expected: Vec<&str> = outcomes.iter().map(|o| o.indicator.as_str()).collect();
    assert_eq!(values(&parsed), expected);
    assert!(parsed.rejected.is_empty(), "{:?}", reasons(&parsed));
    assert!(
        parsed
            .items
            .iter()
            .all(|i| i.context.source.as_deref() == Some("ThreatFox"))
    );
}
