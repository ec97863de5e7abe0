//! One instance's definition: as written (`InstanceSpec`) and as checked
//! (`InstanceConfig`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use enrichbox_indicator::Kind;
use enrichbox_quota::{Limit, Period};
use serde::{Deserialize, Serialize};
use url::Url;

use super::THREATFOX_BASE_URL;
use crate::secret::Secret;

/// Which component an instance runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// A plugin compiled into this binary, by name.
    Bundled(String),
    /// A `.wasm` component on disk.
    File(PathBuf),
}

/// Where an instance's API key comes from. The key itself is read only when
/// a lookup needs it, and never stored in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Env(String),
    File(PathBuf),
    /// Handed over by an embedding platform (from its own vault); never
    /// written in a configuration file.
    Value(Secret),
}

/// Per-lookup resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time for one whole lookup, guest code and HTTP included.
    pub timeout: Duration,
    /// Linear memory the plugin may grow to.
    pub max_memory_bytes: usize,
    /// Largest response body the host passes to the plugin.
    pub max_response_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(10),
            max_memory_bytes: 64 << 20,
            max_response_bytes: 8 << 20,
        }
    }
}

#[derive(Debug, Clone)]
pub struct InstanceConfig {
    pub name: String,
    pub plugin: PluginSource,
    pub base_url: Url,
    pub key_source: Option<KeySource>,
    pub verify_ssl: bool,
    /// `None`: every kind the plugin supports.
    pub enabled_kinds: Option<Vec<Kind>>,
    pub limits: Limits,
    /// `None`: unlimited.
    pub quota: Option<Limit>,
    /// When set, the plugin must have exactly this SHA-256 digest.
    pub plugin_sha256: Option<String>,
    /// How long a cached result stays valid; 0 disables the cache.
    pub cache_ttl_seconds: u64,
    pub breaker: crate::breaker::BreakerSettings,
}

impl InstanceConfig {
    /// An instance of the bundled ThreatFox plugin, for embedding and tests.
    pub fn threatfox(name: impl Into<String>, base_url: Url) -> Self {
        InstanceConfig {
            name: name.into(),
            plugin: PluginSource::Bundled("threatfox".into()),
            base_url,
            key_source: None,
            verify_ssl: true,
            enabled_kinds: None,
            limits: Limits::default(),
            quota: None,
            plugin_sha256: None,
            cache_ttl_seconds: crate::cache::DEFAULT_TTL_SECONDS,
            breaker: crate::breaker::BreakerSettings::default(),
        }
    }

    /// Reads the API key from its source. Errors name the instance and the
    /// source but never contain the key.
    pub fn resolve_secret(&self) -> Result<Option<Secret>, String> {
        let Some(source) = &self.key_source else {
            return Ok(None);
        };
        let value = match source {
            KeySource::Value(secret) => secret.expose().to_string(),
            KeySource::Env(var) => std::env::var(var).map_err(|_| {
                format!(
                    "instance `{}`: the environment variable {var} is not set (api_key_env)",
                    self.name
                )
            })?,
            KeySource::File(path) => std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "instance `{}`: cannot read the API key file {} (api_key_file): {e}",
                    self.name,
                    path.display()
                )
            })?,
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("instance `{}`: the API key is empty", self.name));
        }
        Ok(Some(Secret::new(value)))
    }
}

/// An instance as written by a person: in `enrichbox.toml`, or stored as
/// JSON in the database. Both go through [`validate_instance`].
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    pub name: String,
    #[serde(default = "default_plugin", skip_serializing_if = "is_default_plugin")]
    pub plugin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub verify_ssl: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_kinds: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mib: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_mib: Option<u32>,
    /// Failed lookups in a row that pause the instance (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_failures: Option<u32>,
    /// How long the pause lasts, in seconds (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_cooldown_seconds: Option<u64>,
    /// Seconds a cached result stays valid (default 86400; 0 disables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_ttl_seconds: Option<u64>,
    /// Pins the plugin: loading refuses any other digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_sha256: Option<String>,
    /// `{ units = 1000, per = "day" }`; absent means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaSpec>,
}

fn default_plugin() -> String {
    "threatfox".into()
}

fn default_true() -> bool {
    true
}

fn is_default_plugin(p: &str) -> bool {
    p == "threatfox"
}

fn is_true(b: &bool) -> bool {
    *b
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct QuotaSpec {
    pub units: u64,
    pub per: String,
}

/// Checks a spec and resolves its relative paths against `folder`. The
/// error names the offending field.
pub fn validate_instance(
    raw: InstanceSpec,
    folder: &Path,
) -> Result<InstanceConfig, (&'static str, String)> {
    let name = raw.name.trim().to_string();
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return Err((
            "name",
            format!(
                "`{}` is not a valid name: use 1-64 letters, digits, `_`, `-` or `.`",
                raw.name
            ),
        ));
    }
    let base_url = parse_base_url(raw.base_url.as_deref().unwrap_or(THREATFOX_BASE_URL))
        .map_err(|m| ("base_url", m))?;
    let key_source = match (raw.api_key_env, raw.api_key_file) {
        (Some(_), Some(_)) => {
            return Err((
                "api_key_env",
                "set api_key_env or api_key_file, not both".into(),
            ));
        }
        (Some(var), None) if var.trim().is_empty() => {
            return Err(("api_key_env", "the variable name is empty".into()));
        }
        (Some(var), None) => KeySource::Env(var.trim().to_string()),
        (None, Some(file)) => KeySource::File(folder.join(file)),
        (None, None) => {
            return Err((
                "api_key_env",
                "no API key source: set api_key_env = \"VARIABLE\" or api_key_file = \"path\""
                    .into(),
            ));
        }
    };
    let plugin = if raw.plugin.ends_with(".wasm") || raw.plugin.contains('/') {
        PluginSource::File(folder.join(&raw.plugin))
    } else {
        PluginSource::Bundled(raw.plugin)
    };
    let enabled_kinds = match raw.enabled_kinds {
        None => None,
        Some(list) if list.is_empty() => {
            return Err((
                "enabled_kinds",
                "the list is empty; omit it to enable every kind the plugin supports".into(),
            ));
        }
        Some(list) => Some(
            list.iter()
                .map(|k| k.parse::<Kind>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| ("enabled_kinds", m))?,
        ),
    };
    let quota = match raw.quota {
        None => None,
        Some(q) if q.units == 0 => {
            return Err((
                "quota",
                "units must be at least 1; omit quota for unlimited".into(),
            ));
        }
        Some(q) => Some(Limit {
            units: q.units,
            per: q
                .per
                .parse::<Period>()
                .map_err(|e| ("quota", e.to_string()))?,
        }),
    };
    let plugin_sha256 = match raw.plugin_sha256 {
        None => None,
        Some(digest) => {
            let digest = digest.trim().to_ascii_lowercase();
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err((
                    "plugin_sha256",
                    format!("`{digest}` is not a SHA-256 digest (64 hex digits)"),
                ));
            }
            Some(digest)
        }
    };
    let defaults = Limits::default();
    let timeout = match raw.timeout_seconds {
        None => defaults.timeout,
        Some(s) if s > 0.0 && s <= 3600.0 => Duration::from_secs_f64(s),
        Some(s) => return Err(("timeout_seconds", format!("{s} is outside 0-3600 seconds"))),
    };
    let mib = |value: Option<u32>, default: u64, field| match value {
        None => Ok(default),
        Some(m) if (1..=4096).contains(&m) => Ok(u64::from(m) << 20),
        Some(m) => Err((field, format!("{m} MiB is outside 1-4096"))),
    };
    Ok(InstanceConfig {
        name,
        plugin,
        base_url,
        key_source: Some(key_source),
        verify_ssl: raw.verify_ssl,
        enabled_kinds,
        limits: Limits {
            timeout,
            max_memory_bytes: mib(
                raw.max_memory_mib,
                defaults.max_memory_bytes as u64,
                "max_memory_mib",
            )? as usize,
            max_response_bytes: mib(
                raw.max_response_mib,
                defaults.max_response_bytes,
                "max_response_mib",
            )?,
        },
        quota,
        plugin_sha256,
        cache_ttl_seconds: raw
            .cache_ttl_seconds
            .unwrap_or(crate::cache::DEFAULT_TTL_SECONDS),
        breaker: crate::breaker::BreakerSettings {
            failures: raw.breaker_failures.unwrap_or(5).max(1),
            cooldown_seconds: raw.breaker_cooldown_seconds.unwrap_or(60),
        },
    })
}

/// An http(s) URL with a host and nothing that would confuse origin checks.
pub fn parse_base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(format!("`{text}`: the scheme must be https or http"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "`{}` carries credentials; use api_key_env or api_key_file instead",
            url.host_str().unwrap_or_default()
        ));
    }
    if url.fragment().is_some() {
        return Err(format!(
            "`{text}` has a #fragment, which a base URL cannot have"
        ));
    }
    Ok(url)
}
