//! Reading indicators from a STIX 2.1 bundle: the `=` comparisons of
//! `indicator` patterns, and the observables (`ipv4-addr`, `domain-name`,
//! `url`, `file` hashes, ...) themselves. What cannot be looked up is
//! reported with the object's id and the line it starts on, never dropped.

mod pattern;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use enrichbox_indicator::{Indicator, Kind, parse_as, shorten};
use serde_json::{Map, Value};

use super::input::{ItemContext, Rejected};

/// A value to look up, before normalization and deduplication.
#[derive(Debug)]
pub struct Candidate {
    pub line: usize,
    pub value: String,
    pub context: ItemContext,
}

#[derive(Debug, Default)]
pub struct Extracted {
    pub candidates: Vec<Candidate>,
    pub rejected: Vec<Rejected>,
}

/// Whether `text` is a JSON object with `"type": "bundle"`.
pub fn is_bundle(text: &str) -> bool {
    text.trim_start().starts_with('{')
        && serde_json::from_str::<Value>(text).is_ok_and(|v| v["type"] == "bundle")
}

/// The indicators of the bundle in `text`; an error when `text` is not a
/// bundle at all.
pub fn read(text: &str) -> Result<Extracted, String> {
    let bundle: Value = serde_json::from_str(text)
        .map_err(|e| format!("not a STIX bundle: the input is not valid JSON ({e})"))?;
    let Some(top) = bundle.as_object() else {
        return Err("not a STIX bundle: the input is JSON but not an object".into());
    };
    match top.get("type").and_then(Value::as_str) {
        Some("bundle") => {}
        Some(other) => {
            return Err(format!(
                "not a STIX bundle: its `type` is `{other}`, expected `bundle` (for one JSON object per line use --input-format ndjson)"
            ));
        }
        None => {
            return Err("not a STIX bundle: the object has no `\"type\": \"bundle\"` (for one JSON object per line use --input-format ndjson)".into());
        }
    }
    let objects = top
        .get("objects")
        .ok_or("the STIX bundle has no `objects` list")?
        .as_array()
        .ok_or("the STIX bundle's `objects` is not a list")?;
    let lines = object_lines(text).filter(|l| l.len() == objects.len());
    // Who made what: `created_by_ref` names an identity, perhaps in the bundle.
    let identities: HashMap<&str, &str> = objects
        .iter()
        .filter(|o| o["type"] == "identity")
        .filter_map(|o| Some((o["id"].as_str()?, o["name"].as_str()?)))
        .collect();
    let mut out = Extracted::default();
    for (position, object) in objects.iter().enumerate() {
        // Without line positions (never expected), the object's place in
        // `objects` at least identifies it.
        let line = lines.as_ref().map_or(position + 1, |l| l[position]);
        let Some(object) = object.as_object() else {
            out.reject(
                line,
                format!("object {}", position + 1),
                "it is not a JSON object".into(),
            );
            continue;
        };
        let id = object
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| format!("object {}", position + 1), str::to_string);
        let mut found = Vec::new();
        let result = match object.get("type").and_then(Value::as_str) {
            Some("indicator") => indicator(object, &mut found),
            Some(kind @ ("ipv4-addr" | "ipv6-addr" | "domain-name" | "url")) => {
                match object.get("value").and_then(Value::as_str) {
                    Some(value) => {
                        found.push(Found::Value(kind.to_string(), value.to_string()));
                        Ok(())
                    }
                    None => Err(format!("the {kind} object has no string `value`")),
                }
            }
            Some("file") => file_hashes(object, &mut found),
            // Not an indicator: identities, reports, malware, relationships ...
            Some(_) => Ok(()),
            None => Err("the object has no `type`".into()),
        };
        if let Err(reason) = result {
            out.reject(line, id.clone(), reason);
        }
        let context = if object.get("type").and_then(Value::as_str) == Some("indicator") {
            context_of(object, &identities)
        } else {
            ItemContext::default()
        };
        for item in found {
            match item {
                Found::Value(object_type, value) => match checked(&object_type, &value) {
                    Ok(value) => out.candidates.push(Candidate {
                        line,
                        value,
                        context: context.clone(),
                    }),
                    Err(reason) => out.reject(line, id.clone(), reason),
                },
                Found::Unsupported(reason) => out.reject(line, id.clone(), reason),
            }
        }
    }
    Ok(out)
}

impl Extracted {
    fn reject(&mut self, line: usize, id: String, reason: String) {
        // The id leads the reason: "skipped line N: <id>: <why>" tells the
        // user which object to look at.
        self.rejected.push(Rejected {
            line,
            reason: format!("{}: {reason}", shorten(&id)),
            text: id,
        });
    }
}

/// What one object holds: an observable value (named by its STIX object
/// type, or `file:<hash algorithm>`), or a part that cannot be looked up.
enum Found {
    Value(String, String),
    Unsupported(String),
}

fn indicator(object: &Map<String, Value>, found: &mut Vec<Found>) -> Result<(), String> {
    match object.get("pattern_type").map(|t| t.as_str()) {
        None | Some(Some("stix")) => {}
        Some(Some(other)) => {
            return Err(format!(
                "pattern_type `{other}` is not supported; only STIX patterns are read"
            ));
        }
        Some(None) => return Err("`pattern_type` is not a string".into()),
    }
    let pattern = object
        .get("pattern")
        .and_then(Value::as_str)
        .ok_or("the indicator has no string `pattern`")?;
    let comparisons = pattern::comparisons(pattern)
        .map_err(|why| format!("invalid STIX pattern `{}`: {why}", shorten(pattern)))?;
    for c in comparisons {
        let path: Vec<&str> = c.path.iter().map(String::as_str).collect();
        let observable = match (c.object.to_ascii_lowercase().as_str(), path.as_slice()) {
            (t @ ("ipv4-addr" | "ipv6-addr" | "domain-name" | "url"), ["value"]) => {
                Some(t.to_string())
            }
            ("file", ["hashes", algorithm]) => hash_name(algorithm).map(|a| format!("file:{a}")),
            _ => None,
        };
        match (observable, c.string) {
            (Some(observable), Some(value)) if c.operator == "=" && !c.negated => {
                found.push(Found::Value(observable, value))
            }
            _ => found.push(Found::Unsupported(format!(
                "unsupported pattern: `{}` (only `=` on ipv4-addr, ipv6-addr, domain-name or url values and MD5, SHA-1 or SHA-256 file hashes is looked up)",
                shorten(&c.text)
            ))),
        }
    }
    Ok(())
}

fn file_hashes(object: &Map<String, Value>, found: &mut Vec<Found>) -> Result<(), String> {
    let hashes = object
        .get("hashes")
        .and_then(Value::as_object)
        .ok_or("the file object has no `hashes` to look up")?;
    for (name, value) in hashes {
        match (hash_name(name), value.as_str()) {
            (Some(algorithm), Some(value)) => {
                found.push(Found::Value(format!("file:{algorithm}"), value.to_string()))
            }
            (None, _) => found.push(Found::Unsupported(format!(
                "the file hash `{name}` is not looked up (only MD5, SHA-1 and SHA-256 are)"
            ))),
            (_, None) => found.push(Found::Unsupported(format!(
                "the file hash `{name}` is not a string"
            ))),
        }
    }
    Ok(())
}

/// `MD5`, `SHA-1` and `SHA-256` in any case, with or without the dash.
fn hash_name(name: &str) -> Option<&'static str> {
    match name.to_ascii_uppercase().replace('-', "").as_str() {
        "MD5" => Some("MD5"),
        "SHA1" => Some("SHA-1"),
        "SHA256" => Some("SHA-256"),
        _ => None,
    }
}

/// Checks that `value` is what its STIX type says it is and normalizes it,
/// so that `ipv4-addr:value = 'evil.example'` is reported, not looked up as
/// a domain.
fn checked(observable: &str, value: &str) -> Result<String, String> {
    let (kind, digits) = match observable {
        "ipv4-addr" | "ipv6-addr" => (Kind::Ip, None),
        "domain-name" => (Kind::Domain, None),
        "url" => (Kind::Url, None),
        "file:MD5" => (Kind::Hash, Some(32)),
        "file:SHA-1" => (Kind::Hash, Some(40)),
        _ => (Kind::Hash, Some(64)),
    };
    let indicator = parse_as(kind, value).map_err(|e| format!("{observable}: {e}"))?;
    let wrong = match &indicator {
        Indicator::Ip(ip) => (ip.is_ipv4() && observable == "ipv6-addr")
            .then_some("an IPv4 address")
            .or((ip.is_ipv6() && observable == "ipv4-addr").then_some("an IPv6 address")),
        Indicator::Hash { value, .. } if Some(value.len()) != digits => {
            Some("a hash of another length")
        }
        _ => None,
    };
    match wrong {
        Some(what) => Err(format!(
            "{observable}: `{}` is {what}",
            shorten(value.trim())
        )),
        None => Ok(indicator.value()),
    }
}

/// What an indicator object says about itself, for policy conditions.
fn context_of(object: &Map<String, Value>, identities: &HashMap<&str, &str>) -> ItemContext {
    let mut tags: Vec<String> = Vec::new();
    for field in ["labels", "indicator_types"] {
        let values = object.get(field).and_then(Value::as_array);
        for tag in values.into_iter().flatten().filter_map(Value::as_str) {
            if !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_string());
            }
        }
    }
    ItemContext {
        source: object
            .get("created_by_ref")
            .and_then(Value::as_str)
            .and_then(|r| identities.get(r))
            .map(|name| name.to_string()),
        tags,
        // STIX confidence is 0-100; anything else is not a confidence.
        confidence: object
            .get("confidence")
            .and_then(Value::as_u64)
            .filter(|c| *c <= 100)
            .map(|c| c as u8),
    }
}

/// The 1-based line on which each element of the top-level `objects` list
/// starts, found by walking the JSON text (strings skipped, so braces and
/// quotes inside values do not count). `None` when the text holds no such
/// list; serde_json keeps the last of repeated keys, and so does this.
fn object_lines(text: &str) -> Option<Vec<usize>> {
    let mut depth = 0usize;
    let mut line = 1;
    let mut in_string = false;
    let mut escaped = false;
    let mut string_start = 0;
    let mut last_key: Option<String> = None;
    // Inside the `objects` list: its depth, and whether a value may start.
    let mut in_objects: Option<bool> = None;
    let mut starts: Option<Vec<usize>> = None;
    let mut current: Vec<usize> = Vec::new();
    for (at, c) in text.char_indices() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    in_string = false;
                    if depth == 1 {
                        last_key = serde_json::from_str(&text[string_start..=at]).ok();
                    }
                }
                _ => {}
            }
            continue;
        }
        if in_objects == Some(true) && depth == 2 && !c.is_whitespace() && c != ']' {
            current.push(line);
            in_objects = Some(false);
        }
        match c {
            '"' => {
                in_string = true;
                string_start = at;
            }
            '{' | '[' => {
                if depth == 1 && c == '[' && last_key.as_deref() == Some("objects") {
                    in_objects = Some(true);
                    current.clear();
                }
                depth += 1;
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                if depth == 1 && in_objects.is_some() {
                    starts = Some(std::mem::take(&mut current));
                    in_objects = None;
                }
            }
            ',' if depth == 2 && in_objects.is_some() => in_objects = Some(true),
            ',' if depth == 1 => last_key = None,
            _ => {}
        }
    }
    starts
}
