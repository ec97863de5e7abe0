//! ThreatFox API v1 requests and response envelopes.
//!
//! One endpoint takes a JSON body naming the `query`; every answer, even a
//! refusal, comes back as HTTP 200 with `{"query_status": ..., "data": ...}`.

use serde_json::{Value, json};

/// The queries this plugin sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Substring search over stored IOCs (IPs with ports, domains, URLs, hashes).
    SearchIoc(String),
    /// IOCs linked to a malware sample by its MD5 or SHA-256.
    SearchHash(String),
    /// The list of threat types: tiny, authenticated, used to test a connection.
    Types,
}

impl Query {
    pub fn body(&self) -> String {
        match self {
            Query::SearchIoc(term) => json!({"query": "search_ioc", "search_term": term}),
            Query::SearchHash(hash) => json!({"query": "search_hash", "hash": hash}),
            Query::Types => json!({"query": "types"}),
        }
        .to_string()
    }

    pub fn name(&self) -> &'static str {
        match self {
            Query::SearchIoc(_) => "search_ioc",
            Query::SearchHash(_) => "search_hash",
            Query::Types => "types",
        }
    }
}

/// Why a ThreatFox answer is not a usable result. Mapped one to one onto the
/// contract's error variants in `component`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseError {
    InvalidIndicator(String),
    CredentialsRejected(String),
    RateLimited(Option<u32>),
    UpstreamUnavailable {
        status: Option<u16>,
        message: String,
    },
    Malformed(String),
}

/// Maps a non-200 HTTP status onto an error; `None` for 200.
pub fn classify_http_status(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
) -> Option<ResponseError> {
    let excerpt = body_excerpt(body);
    match status {
        200 => None,
        401 => Some(ResponseError::CredentialsRejected(format!(
            "ThreatFox answered HTTP 401: no API key was accepted for this request{excerpt}"
        ))),
        403 => Some(ResponseError::CredentialsRejected(format!(
            "ThreatFox answered HTTP 403: the API key was refused{excerpt}"
        ))),
        429 => Some(ResponseError::RateLimited(
            retry_after.and_then(|v| v.trim().parse::<u32>().ok()),
        )),
        _ => Some(ResponseError::UpstreamUnavailable {
            status: Some(status),
            message: format!("ThreatFox answered HTTP {status}{excerpt}"),
        }),
    }
}

fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let short: String = text.chars().take(160).collect();
    format!(": {short}")
}

/// A parsed `ok` or `no_result` answer.
#[derive(Debug)]
pub struct Envelope {
    /// The records (empty for `no_result`).
    pub records: Vec<Value>,
    /// The whole answer, for analysts.
    pub raw: Value,
}

/// Parses a 200 answer's body and maps every non-`ok` status to its error.
pub fn parse_envelope(query: &Query, body: &[u8]) -> Result<Envelope, ResponseError> {
    let raw: Value = serde_json::from_slice(body).map_err(|e| {
        ResponseError::Malformed(format!(
            "ThreatFox's answer to {} is not JSON ({e}){}",
            query.name(),
            body_excerpt(body)
        ))
    })?;
    let status = raw
        .get("query_status")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ResponseError::Malformed(format!(
                "ThreatFox's answer to {} has no `query_status` string",
                query.name()
            ))
        })?
        .to_string();
    let said = raw
        .get("data")
        .and_then(Value::as_str)
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    match status.as_str() {
        "ok" => match raw.get("data") {
            Some(Value::Array(records)) => Ok(Envelope {
                records: records.clone(),
                raw,
            }),
            // `types` answers with a map of threat types, not records.
            Some(Value::Object(_)) if *query == Query::Types => Ok(Envelope {
                records: Vec::new(),
                raw,
            }),
            _ => Err(ResponseError::Malformed(format!(
                "ThreatFox said `ok` to {} but `data` is not a list of records",
                query.name()
            ))),
        },
        "no_result" => Ok(Envelope {
            records: Vec::new(),
            raw,
        }),
        "illegal_search_term" => Err(ResponseError::InvalidIndicator(format!(
            "ThreatFox rejected the search term (illegal_search_term){said}"
        ))),
        "illegal_hash" | "illegl_hash" => Err(ResponseError::InvalidIndicator(format!(
            "ThreatFox rejected the hash ({status}){said}"
        ))),
        "unknown_auth_key" => Err(ResponseError::CredentialsRejected(format!(
            "ThreatFox does not know this API key (unknown_auth_key){said}"
        ))),
        "no_json" | "unknown_operation" => Err(ResponseError::Malformed(format!(
            "ThreatFox did not understand the {} request ({status}){said}; the API may have changed",
            query.name()
        ))),
        other => Err(ResponseError::Malformed(format!(
            "ThreatFox answered {} with the unknown query_status `{other}`{said}",
            query.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Envelope, ResponseError> {
        parse_envelope(&Query::SearchIoc("x".into()), body.as_bytes())
    }

    #[test]
    fn query_bodies_are_the_documented_json() {
        let v: Value = serde_json::from_str(&Query::SearchIoc("1.2.3.4".into()).body()).unwrap();
        assert_eq!(v, json!({"query": "search_ioc", "search_term": "1.2.3.4"}));
        let v: Value = serde_json::from_str(&Query::SearchHash("ab".into()).body()).unwrap();
        assert_eq!(v, json!({"query": "search_hash", "hash": "ab"}));
    }

    #[test]
    fn every_status_maps_to_its_error() {
        assert_eq!(
            parse(r#"{"query_status":"ok","data":[{"id":"1"}]}"#)
                .unwrap()
                .records
                .len(),
            1
        );
        assert!(
            parse(r#"{"query_status":"no_result","data":"Your search did not yield any results"}"#)
                .unwrap()
                .records
                .is_empty()
        );
        let cases = [
            ("illegal_search_term", "invalid"),
            ("illegal_hash", "invalid"),
            ("illegl_hash", "invalid"),
            ("unknown_auth_key", "credentials"),
            ("no_json", "malformed"),
            ("unknown_operation", "malformed"),
            ("something_new", "malformed"),
        ];
        for (status, expected) in cases {
            let err = parse(&format!(r#"{{"query_status":"{status}","data":"x"}}"#)).unwrap_err();
            let got = match err {
                ResponseError::InvalidIndicator(_) => "invalid",
                ResponseError::CredentialsRejected(_) => "credentials",
                ResponseError::Malformed(_) => "malformed",
                _ => "other",
            };
            assert_eq!(got, expected, "{status}");
        }
    }

    #[test]
    fn types_answers_with_a_map() {
        let body = br#"{"query_status":"ok","data":{"1":{"ioc_type":"url"}}}"#;
        assert!(parse_envelope(&Query::Types, body).is_ok());
        assert!(parse_envelope(&Query::SearchIoc("x".into()), body).is_err());
    }

    #[test]
    fn broken_envelopes_are_malformed_not_empty() {
        for body in [
            "<html>",
            "{}",
            r#"{"query_status":"ok","data":"nope"}"#,
            r#"{"query_status":5}"#,
        ] {
            assert!(
                matches!(parse(body), Err(ResponseError::Malformed(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn http_statuses_map_to_errors() {
        assert!(classify_http_status(200, None, b"").is_none());
        assert!(matches!(
            classify_http_status(401, None, b""),
            Some(ResponseError::CredentialsRejected(_))
        ));
        assert!(matches!(
            classify_http_status(403, None, b""),
            Some(ResponseError::CredentialsRejected(_))
        ));
        assert_eq!(
            classify_http_status(429, Some("30"), b""),
            Some(ResponseError::RateLimited(Some(30)))
        );
        assert_eq!(
            classify_http_status(429, Some("Wed, 21 Oct 2026 07:28:00 GMT"), b""),
            Some(ResponseError::RateLimited(None))
        );
        assert!(matches!(
            classify_http_status(503, None, b"down"),
            Some(ResponseError::UpstreamUnavailable {
                status: Some(503),
                ..
            })
        ));
    }
}
