//! A policy as written (`PolicySpec`, in `enrichbox.toml` or stored as JSON
//! in the database) and its validation. Errors name the field, and for the
//! file also the file and the policy, because that is what the reader edits.

use std::collections::HashSet;
use std::path::Path;

use enrichbox_indicator::Kind;
use serde::{Deserialize, Serialize};

use super::{Conditions, MAX_INSTANCES, Mode, Policy, Routes};
use crate::config::ConfigError;
use crate::registry::Origin;

/// `[[policy]]` as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    pub name: String,
    /// `sequential` (the default) or `parallel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Higher wins when several policies apply (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<WhenSpec>,
}

/// `[policy.when]` as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WhenSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Read wide so that 150 or -1 get a clear message, not a type error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<i64>,
}

/// Checks a spec. The error is `(field, message)`.
pub fn validate_policy(spec: PolicySpec, origin: Origin) -> Result<Policy, (String, String)> {
    let fail = |field: &str, message: String| Err((field.to_string(), message));
    let name = spec.name.trim().to_string();
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return fail(
            "name",
            format!(
                "`{}` is not a valid name: use 1-64 letters, digits, `_`, `-` or `.`",
                spec.name
            ),
        );
    }
    let mode = match spec.mode.as_deref().map(|m| m.trim().to_ascii_lowercase()) {
        None => Mode::Sequential,
        Some(m) if m == "sequential" => Mode::Sequential,
        Some(m) if m == "parallel" => Mode::Parallel,
        Some(_) => {
            return fail(
                "mode",
                format!(
                    "`{}` is not a mode: use \"sequential\" or \"parallel\"",
                    spec.mode.unwrap_or_default()
                ),
            );
        }
    };
    let routes = Routes {
        ip: instance_list(Kind::Ip, spec.ip)?,
        domain: instance_list(Kind::Domain, spec.domain)?,
        url: instance_list(Kind::Url, spec.url)?,
        hash: instance_list(Kind::Hash, spec.hash)?,
    };
    if Kind::ALL.iter().all(|k| routes.for_kind(*k).is_empty()) {
        return fail(
            "ip",
            "the policy enriches nothing: list instances for at least one of ip, domain, url, hash"
                .into(),
        );
    }
    let when = spec.when.unwrap_or_default();
    let words = |field: &str, list: Option<Vec<String>>| -> Result<Vec<String>, (String, String)> {
        let list = list.unwrap_or_default();
        if list.iter().any(|w| w.trim().is_empty()) {
            return Err((field.to_string(), "an entry is empty".into()));
        }
        Ok(list.into_iter().map(|w| w.trim().to_string()).collect())
    };
    let min_confidence = match when.min_confidence {
        None => None,
        Some(c) if (0..=100).contains(&c) => Some(c as u8),
        Some(c) => return fail("when.min_confidence", format!("{c} is outside 0-100")),
    };
    Ok(Policy {
        name,
        mode,
        priority: spec.priority.unwrap_or(0),
        routes,
        when: Conditions {
            sources: words("when.sources", when.sources)?,
            tags: words("when.tags", when.tags)?,
            min_confidence,
        },
        origin,
    })
}

/// One kind's list: 1 to 3 distinct instance names.
fn instance_list(kind: Kind, list: Option<Vec<String>>) -> Result<Vec<String>, (String, String)> {
    let field = kind.as_str().to_string();
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    if list.is_empty() {
        return Err((
            field,
            "the list is empty; omit it if the policy does not enrich this kind".into(),
        ));
    }
    if list.len() > MAX_INSTANCES {
        return Err((
            field,
            format!(
                "{} instances are listed; a policy may list at most {MAX_INSTANCES} per kind",
                list.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    let mut names = Vec::new();
    for name in list {
        let name = name.trim().to_string();
        if name.is_empty() {
            return Err((field, "an instance name is empty".into()));
        }
        if !seen.insert(name.to_lowercase()) {
            return Err((field, format!("instance `{name}` is listed twice")));
        }
        names.push(name);
    }
    Ok(names)
}

/// The `[[policy]]` tables of the configuration file at `path`.
pub fn parse_file(path: &Path, tables: Vec<toml::Table>) -> Result<Vec<Policy>, ConfigError> {
    let error = |policy: &str, field: Option<String>, message: String| ConfigError {
        path: path.to_path_buf(),
        instance: None,
        policy: Some(policy.to_string()),
        field,
        message,
    };
    let mut seen = HashSet::new();
    let mut policies = Vec::new();
    for (index, table) in tables.into_iter().enumerate() {
        let label = table
            .get("name")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| format!("#{}", index + 1));
        let spec: PolicySpec = table.try_into().map_err(|e: toml::de::Error| {
            let message = e.message().trim().to_string();
            error(&label, backticked(&message), message)
        })?;
        let policy = validate_policy(spec, Origin::File(path.to_path_buf()))
            .map_err(|(field, message)| error(&label, Some(field), message))?;
        if !seen.insert(policy.name.to_lowercase()) {
            return Err(error(
                &label,
                Some("name".into()),
                "this name is used by another policy; names must be unique (case-insensitively)"
                    .into(),
            ));
        }
        policies.push(policy);
    }
    Ok(policies)
}

/// The field a serde message is about (its first `quoted` word).
fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}
