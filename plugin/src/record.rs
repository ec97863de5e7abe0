//! One ThreatFox IOC record turned into the contract's `finding`.
//!
//! Required fields that are missing or of the wrong type make the whole
//! answer malformed: a half-read record would mislead an analyst more than an
//! error does. Unknown extra fields are ignored.

use serde_json::{Map, Value};

use crate::PERMALINK_PREFIX;
use crate::bindings::enrichbox::enrichment::types::{Finding, Relation};

/// Reads a record. `position` is its index in the answer, for error messages.
pub fn parse_record(position: usize, value: &Value, relation: Relation) -> Result<Finding, String> {
    let record = value
        .as_object()
        .ok_or_else(|| format!("record {position} is not a JSON object"))?;
    let fields = Fields { record, position };
    let id = fields.id()?;
    let confidence = fields.confidence()?;
    let malware_family = fields
        .optional_string("malware_printable")?
        .or(fields.optional_string("malware")?)
        .filter(|m| !m.is_empty() && m != "Unknown malware");
    Ok(Finding {
        relation,
        threat_type: fields.required_string("threat_type")?,
        threat_type_description: fields.optional_string("threat_type_desc")?,
        malware_family,
        malware_aliases: split_aliases(fields.optional_string("malware_alias")?),
        confidence,
        first_seen: fields.timestamp("first_seen")?,
        last_seen: fields.timestamp("last_seen")?,
        tags: fields.tags()?,
        reference_urls: fields
            .optional_string("reference")?
            .filter(|r| !r.trim().is_empty())
            .into_iter()
            .collect(),
        reporter: fields.optional_string("reporter")?,
        permalink: Some(format!("{PERMALINK_PREFIX}{id}/")),
        record_id: id,
        matched_ioc: fields.required_string("ioc")?,
        matched_ioc_type: fields.required_string("ioc_type")?,
    })
}

struct Fields<'a> {
    record: &'a Map<String, Value>,
    position: usize,
}

impl Fields<'_> {
    fn wrong(&self, name: &str, expected: &str) -> String {
        match self.record.get(name) {
            None => format!("record {} has no `{name}` field", self.position),
            Some(v) => format!(
                "record {}: `{name}` should be {expected}, found {}",
                self.position,
                crate::record::kind_of(v)
            ),
        }
    }

    fn required_string(&self, name: &str) -> Result<String, String> {
        match self.record.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(self.wrong(name, "a non-empty string")),
        }
    }

    fn optional_string(&self, name: &str) -> Result<Option<String>, String> {
        match self.record.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong(name, "a string or null")),
        }
    }

    /// ThreatFox sends ids as strings; numbers are accepted too.
    fn id(&self) -> Result<String, String> {
        match self.record.get("id") {
            Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(s.clone())
            }
            Some(Value::Number(n)) if n.is_u64() => Ok(n.to_string()),
            _ => Err(self.wrong("id", "a numeric id")),
        }
    }

    fn confidence(&self) -> Result<u8, String> {
        match self.record.get("confidence_level") {
            Some(Value::Number(n)) => match n.as_u64() {
                Some(c) if c <= 100 => Ok(c as u8),
                _ => Err(format!(
                    "record {}: `confidence_level` is {n}, outside 0-100",
                    self.position
                )),
            },
            _ => Err(self.wrong("confidence_level", "a number from 0 to 100")),
        }
    }

    fn timestamp(&self, name: &str) -> Result<Option<String>, String> {
        match self.optional_string(name)? {
            None => Ok(None),
            Some(s) => to_rfc3339(&s).map(Some).ok_or_else(|| {
                format!(
                    "record {}: `{name}` is `{s}`, not `YYYY-MM-DD HH:MM:SS UTC`",
                    self.position
                )
            }),
        }
    }

    fn tags(&self) -> Result<Vec<String>, String> {
        match self.record.get("tags") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|t| {
                    t.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| self.wrong("tags", "a list of strings"))
                })
                .collect(),
            Some(_) => Err(self.wrong("tags", "a list of strings or null")),
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn split_aliases(aliases: Option<String>) -> Vec<String> {
    aliases
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

/// `2021-03-31 13:37:19 UTC` → `2021-03-31T13:37:19Z`, checking every digit.
pub fn to_rfc3339(text: &str) -> Option<String> {
    let body = text.strip_suffix(" UTC")?;
    let (date, time) = body.split_once(' ')?;
    let date_ok = date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let time_ok = time.len() == 8
        && time.bytes().enumerate().all(|(i, b)| {
            if i == 2 || i == 5 {
                b == b':'
            } else {
                b.is_ascii_digit()
            }
        });
    (date_ok && time_ok).then(|| format!("{date}T{time}Z"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "id": "41", "ioc": "139.180.203.104:443", "threat_type": "botnet_cc",
            "threat_type_desc": "Indicator that identifies a botnet command&control server (C&C)",
            "ioc_type": "ip:port", "ioc_type_desc": "ip:port combination",
            "malware": "win.cobalt_strike", "malware_printable": "Cobalt Strike",
            "malware_alias": "Agentemis,BEACON,CobaltStrike", "malware_malpedia": "https://malpedia",
            "confidence_level": 75, "first_seen": "2021-03-27 20:02:05 UTC", "last_seen": null,
            "reference": "https://example.org/report", "reporter": "abuse_ch",
            "tags": ["c2", "cobaltstrike"], "malware_samples": [], "something_new": 1
        })
    }

    #[test]
    fn reads_every_field() {
        let f = parse_record(0, &sample(), Relation::Exact).unwrap();
        assert_eq!(f.record_id, "41");
        assert_eq!(
            f.permalink.as_deref(),
            Some("https://threatfox.abuse.ch/ioc/41/")
        );
        assert_eq!(f.matched_ioc, "139.180.203.104:443");
        assert_eq!(f.malware_family.as_deref(), Some("Cobalt Strike"));
        assert_eq!(f.malware_aliases, ["Agentemis", "BEACON", "CobaltStrike"]);
        assert_eq!(f.confidence, 75);
        assert_eq!(f.first_seen.as_deref(), Some("2021-03-27T20:02:05Z"));
        assert_eq!(f.last_seen, None);
        assert_eq!(f.tags, ["c2", "cobaltstrike"]);
        assert_eq!(f.reference_urls, ["https://example.org/report"]);
    }

    #[test]
    fn missing_or_mistyped_required_fields_are_errors() {
        for (field, value, needle) in [
            ("id", Value::Null, "`id`"),
            ("ioc", json!(5), "`ioc` should be"),
            ("confidence_level", json!(300), "outside 0-100"),
            ("confidence_level", json!("high"), "`confidence_level`"),
            ("first_seen", json!("yesterday"), "not `YYYY-MM-DD"),
            ("tags", json!("c2"), "`tags`"),
        ] {
            let mut record = sample();
            record[field] = value;
            let err = parse_record(3, &record, Relation::Exact).unwrap_err();
            assert!(
                err.contains(needle) && err.contains("record 3"),
                "{field}: {err}"
            );
        }
        let mut record = sample();
        record.as_object_mut().unwrap().remove("threat_type");
        assert!(
            parse_record(0, &record, Relation::Exact)
                .unwrap_err()
                .contains("no `threat_type`")
        );
    }

    #[test]
    fn timestamps_are_strictly_converted() {
        assert_eq!(
            to_rfc3339("2024-01-02 03:04:05 UTC").as_deref(),
            Some("2024-01-02T03:04:05Z")
        );
        assert_eq!(to_rfc3339("2024-01-02T03:04:05Z"), None);
        assert_eq!(to_rfc3339("2024-1-02 03:04:05 UTC"), None);
    }
}
