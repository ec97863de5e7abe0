//! The ThreatFox API v1 queries the mock answers, against the data set.

use serde_json::{Value, json};

use super::dataset::records;

/// Answers one request body, as ThreatFox does: always a JSON envelope.
pub fn answer(body: &[u8]) -> Value {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return status("no_json", "Your request did not contain a valid JSON");
    };
    match request.get("query").and_then(Value::as_str) {
        Some("search_ioc") => search_ioc(
            request
                .get("search_term")
                .and_then(Value::as_str)
                .unwrap_or(""),
        ),
        Some("search_hash") => {
            search_hash(request.get("hash").and_then(Value::as_str).unwrap_or(""))
        }
        Some("types") => types(),
        _ => status("unknown_operation", "Unknown operation"),
    }
}

fn status(query_status: &str, data: &str) -> Value {
    json!({"query_status": query_status, "data": data})
}

fn found(data: Vec<Value>) -> Value {
    if data.is_empty() {
        status("no_result", "Your search did not yield any results")
    } else {
        json!({"query_status": "ok", "data": data})
    }
}

/// Substring search over IOCs, like the real one.
fn search_ioc(term: &str) -> Value {
    let term = term.trim().to_lowercase();
    if term.len() < 3 {
        return status("illegal_search_term", "Your search term is too short");
    }
    found(
        records()
            .into_iter()
            .filter(|r| {
                r["ioc"]
                    .as_str()
                    .unwrap_or("")
                    .to_lowercase()
                    .contains(&term)
            })
            .collect(),
    )
}

/// IOCs linked to a sample by MD5 or SHA-256 (not SHA-1, as in the real API).
fn search_hash(hash: &str) -> Value {
    let hash = hash.trim().to_lowercase();
    if !(hash.len() == 32 || hash.len() == 64) || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return status(
            "illegal_hash",
            "The hash you provided is not a valid MD5 or SHA256 hash",
        );
    }
    found(
        records()
            .into_iter()
            .filter(|r| {
                r["malware_samples"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| {
                        s["md5_hash"].as_str() == Some(hash.as_str())
                            || s["sha256_hash"].as_str() == Some(hash.as_str())
                    })
            })
            .collect(),
    )
}

fn types() -> Value {
    json!({"query_status": "ok", "data": {
        "1": {"ioc_type": "url", "fk_threat_type": "payload_delivery", "description": "URL that delivers a payload"},
        "2": {"ioc_type": "domain", "fk_threat_type": "botnet_cc", "description": "Domain used for C&C"},
        "3": {"ioc_type": "ip:port", "fk_threat_type": "botnet_cc", "description": "ip:port used for C&C"},
        "4": {"ioc_type": "sha256_hash", "fk_threat_type": "payload", "description": "SHA256 of a payload"}
    }})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::dataset::*;

    #[test]
    fn search_ioc_is_a_substring_search() {
        let answer = search_ioc(SHORT_IP);
        assert_eq!(answer["data"].as_array().unwrap().len(), 2, "{answer}");
        let answer = search_ioc(C2_DOMAIN);
        assert!(
            answer["data"].as_array().unwrap().len() >= 3,
            "domain, subdomain and URL: {answer}"
        );
    }

    #[test]
    fn search_hash_finds_linked_iocs() {
        let answer = search_hash(SAMPLE_MD5);
        let ids: Vec<_> = answer["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].clone())
            .collect();
        assert_eq!(ids, [json!("1001"), json!("1004")]);
        assert_eq!(search_hash("abc")["query_status"], "illegal_hash");
        assert_eq!(search_hash(UNKNOWN_SHA256)["query_status"], "no_result");
    }

    #[test]
    fn bad_requests_get_their_statuses() {
        assert_eq!(answer(b"not json")["query_status"], "no_json");
        assert_eq!(
            answer(br#"{"query":"nope"}"#)["query_status"],
            "unknown_operation"
        );
    }
}
