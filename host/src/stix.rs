//! STIX 2.1 output: one bundle with the provider as the `identity` that
//! created everything, an `indicator` per malicious or suspicious result,
//! each malware family as a `malware` object, and `indicates` relationships.
//! Unknown results have no STIX form and are left out (and counted).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::outcome::LookupOutcome;

/// Builds the bundle for `outcomes`.
pub fn bundle(outcomes: &[LookupOutcome]) -> Value {
    let now = crate::clock::now_rfc3339_millis();
    let mut objects = Vec::new();
    let mut identities: BTreeMap<String, String> = BTreeMap::new();
    let mut malware: BTreeMap<String, String> = BTreeMap::new();
    for outcome in outcomes {
        let Some(verdict) = outcome.verdict.as_deref() else {
            continue;
        };
        if verdict == "unknown" || outcome.error.is_some() {
            continue;
        }
        let Some(pattern) = pattern(outcome) else {
            continue;
        };
        let identity = identities
            .entry(outcome.provider.clone())
            .or_insert_with(|| {
                let id = format!(
                    "identity--{}",
                    stable_uuid(&format!("identity {}", outcome.provider))
                );
                objects.push(json!({
                    "type": "identity", "spec_version": "2.1", "id": id,
                    "created": STABLE_TIME, "modified": STABLE_TIME,
                    "name": outcome.provider, "identity_class": "organization",
                }));
                id
            })
            .clone();
        let confidence = outcome
            .findings
            .iter()
            .map(|f| f.confidence)
            .max()
            .unwrap_or(0);
        let indicator_id = format!(
            "indicator--{}",
            uuid(&format!("indicator {}", outcome.indicator))
        );
        let first_seen = outcome
            .findings
            .iter()
            .filter_map(|f| f.first_seen.clone())
            .min();
        let mut labels: Vec<String> = outcome
            .findings
            .iter()
            .flat_map(|f| f.tags.clone())
            .collect();
        labels.sort();
        labels.dedup();
        let mut indicator = json!({
            "type": "indicator", "spec_version": "2.1", "id": indicator_id,
            "created": now, "modified": now, "created_by_ref": identity,
            "name": outcome.indicator,
            "description": format!("{} by {} ({} findings)", verdict, outcome.provider, outcome.findings.len()),
            "indicator_types": [if verdict == "malicious" { "malicious-activity" } else { "anomalous-activity" }],
            "pattern": pattern, "pattern_type": "stix", "pattern_version": "2.1",
            "valid_from": first_seen.map(|t| with_millis(&t)).unwrap_or_else(|| now.clone()),
            "confidence": confidence,
        });
        if !labels.is_empty() {
            indicator["labels"] = json!(labels);
        }
        let references: Vec<Value> = outcome
            .findings
            .iter()
            .filter_map(|f| {
                f.permalink.as_ref().map(|url| {
                    json!({"source_name": outcome.provider, "url": url, "external_id": f.record_id})
                })
            })
            .collect();
        if !references.is_empty() {
            indicator["external_references"] = json!(references);
        }
        objects.push(indicator);
        for finding in &outcome.findings {
            let Some(family) = &finding.malware_family else {
                continue;
            };
            let malware_id = malware
                .entry(family.clone())
                .or_insert_with(|| {
                    let id = format!(
                        "malware--{}",
                        stable_uuid(&format!("malware {family} by {identity}"))
                    );
                    let mut object = json!({
                        "type": "malware", "spec_version": "2.1", "id": id,
                        "created": STABLE_TIME, "modified": STABLE_TIME, "created_by_ref": identity,
                        "name": family, "is_family": true,
                    });
                    if !finding.malware_aliases.is_empty() {
                        object["aliases"] = json!(finding.malware_aliases);
                    }
                    objects.push(object);
                    id
                })
                .clone();
            // Derived from the (per-run) indicator id, so a second finding
            // of the same family is recognised below.
            let relationship_id = format!(
                "relationship--{}",
                stable_uuid(&format!("{indicator_id} indicates {malware_id}"))
            );
            if objects.iter().any(|o| o["id"] == relationship_id.as_str()) {
                continue;
            }
            objects.push(json!({
                "type": "relationship", "spec_version": "2.1", "id": relationship_id,
                "created": now, "modified": now, "created_by_ref": identity,
                "relationship_type": "indicates", "source_ref": indicator_id, "target_ref": malware_id,
            }));
        }
    }
    json!({"type": "bundle", "id": format!("bundle--{}", uuid(&format!("bundle {now}"))), "objects": objects})
}

/// The STIX pattern that matches this indicator.
fn pattern(outcome: &LookupOutcome) -> Option<String> {
    let value = outcome.indicator.replace('\\', "\\\\").replace('\'', "\\'");
    Some(match outcome.kind.as_deref()? {
        "ip" if outcome.indicator.contains(':') => format!("[ipv6-addr:value = '{value}']"),
        "ip" => format!("[ipv4-addr:value = '{value}']"),
        "domain" => format!("[domain-name:value = '{value}']"),
        "url" => format!("[url:value = '{value}']"),
        "hash" => {
            let algorithm = match value.len() {
                32 => "MD5",
                40 => "'SHA-1'",
                _ => "'SHA-256'",
            };
            format!("[file:hashes.{algorithm} = '{value}']")
        }
        _ => return None,
    })
}

/// When the provider's `identity` and the `malware` families were
/// "created": fixed, like their ids, so every run emits the same objects
/// and a platform importing several runs keeps one of each.
const STABLE_TIME: &str = "2024-01-01T00:00:00.000Z";

/// A version-4-shaped UUID, unique per run: by `seed`, a per-process
/// counter, the process and the time.
fn uuid(seed: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    stable_uuid(&format!(
        "{seed} {} {} {}",
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::process::id(),
        crate::clock::now_rfc3339_millis()
    ))
}

/// A version-4-shaped UUID that depends on `seed` alone.
fn stable_uuid(seed: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"enrichbox stix ");
    hasher.update(seed.as_bytes());
    let mut b: [u8; 16] = hasher.finalize()[..16].try_into().expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `2024-03-27T20:02:05Z` → `2024-03-27T20:02:05.000Z`.
fn with_millis(rfc3339: &str) -> String {
    match rfc3339.strip_suffix('Z') {
        Some(base) if !base.contains('.') => format!("{base}.000Z"),
        _ => rfc3339.to_string(),
    }
}
