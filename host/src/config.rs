//! `enrichbox.toml`: the instances a host runs and how each is configured.
//!
//! Every error names the file, the instance and the field, because the
//! person reading it is editing that file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use enrichbox_indicator::Kind;
use serde::Deserialize;
use url::Url;

use crate::secret::Secret;

/// The provider's production endpoint, used when an instance names none.
pub const THREATFOX_BASE_URL: &str = "https://threatfox-api.abuse.ch/api/v1/";
/// Where the configuration is looked for when neither `--config` nor
/// `ENRICHBOX_CONFIG` says.
pub const DEFAULT_CONFIG_FILE: &str = "enrichbox.toml";

/// A loaded, validated configuration file.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub default_instance: Option<String>,
    pub instances: Vec<InstanceConfig>,
}

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

/// A configuration problem, located as precisely as possible.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub path: PathBuf,
    pub instance: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(instance) = &self.instance {
            write!(f, ": instance `{instance}`")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTop {
    default_instance: Option<String>,
    #[serde(default)]
    instance: Vec<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileInstance {
    name: String,
    #[serde(default = "default_plugin")]
    plugin: String,
    base_url: Option<String>,
    api_key_env: Option<String>,
    api_key_file: Option<PathBuf>,
    #[serde(default = "default_true")]
    verify_ssl: bool,
    enabled_kinds: Option<Vec<String>>,
    timeout_seconds: Option<f64>,
    max_memory_mib: Option<u32>,
    max_response_mib: Option<u32>,
}

fn default_plugin() -> String {
    "threatfox".into()
}

fn default_true() -> bool {
    true
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            instance: None,
            field: None,
            message: format!("cannot read the configuration file: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// Validates `text` as if read from `path` (relative paths in it are
    /// taken relative to `path`'s folder).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let error = |instance: Option<&str>, field: Option<&str>, message: String| ConfigError {
            path: path.to_path_buf(),
            instance: instance.map(str::to_string),
            field: field.map(str::to_string),
            message,
        };
        let top: FileTop = toml::from_str(text).map_err(|e| error(None, None, toml_message(&e)))?;
        if top.instance.is_empty() {
            return Err(error(
                None,
                None,
                "no [[instance]] is defined; add one (see `enrichbox --help`)".into(),
            ));
        }
        let folder = path.parent().unwrap_or(Path::new("."));
        let mut seen = HashSet::new();
        let mut instances = Vec::new();
        for (index, table) in top.instance.into_iter().enumerate() {
            let label = table
                .get("name")
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| format!("#{}", index + 1));
            let raw: FileInstance = table
                .try_into()
                .map_err(|e: toml::de::Error| error(Some(&label), field_of(&e).as_deref(), toml_message(&e)))?;
            let instance = validate_instance(raw, folder)
                .map_err(|(field, message)| error(Some(&label), Some(field), message))?;
            if !seen.insert(instance.name.to_lowercase()) {
                return Err(error(
                    Some(&label),
                    Some("name"),
                    "this name is used by another instance; names must be unique (case-insensitively)".into(),
                ));
            }
            instances.push(instance);
        }
        if let Some(default) = &top.default_instance
            && !instances.iter().any(|i| &i.name == default)
        {
            return Err(error(
                None,
                Some("default_instance"),
                format!("no instance is named `{default}`"),
            ));
        }
        Ok(Config {
            path: path.to_path_buf(),
            default_instance: top.default_instance,
            instances,
        })
    }

    /// The instance called `name`, or the default one when `name` is `None`.
    pub fn instance(&self, name: Option<&str>) -> Result<&InstanceConfig, String> {
        let names = || {
            self.instances
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match name.or(self.default_instance.as_deref()) {
            Some(wanted) => self.instances.iter().find(|i| i.name == wanted).ok_or_else(|| {
                format!(
                    "{}: no instance is named `{wanted}` (known: {})",
                    self.path.display(),
                    names()
                )
            }),
            None if self.instances.len() == 1 => Ok(&self.instances[0]),
            None => Err(format!(
                "{} defines several instances; choose one with --instance NAME or set default_instance (known: {})",
                self.path.display(),
                names()
            )),
        }
    }
}

fn validate_instance(raw: FileInstance, folder: &Path) -> Result<InstanceConfig, (&'static str, String)> {
    let name = raw.name.trim().to_string();
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
        return Err((
            "name",
            format!("`{}` is not a valid name: use 1-64 letters, digits, `_`, `-` or `.`", raw.name),
        ));
    }
    let base_url = parse_base_url(raw.base_url.as_deref().unwrap_or(THREATFOX_BASE_URL))
        .map_err(|m| ("base_url", m))?;
    let key_source = match (raw.api_key_env, raw.api_key_file) {
        (Some(_), Some(_)) => {
            return Err(("api_key_env", "set api_key_env or api_key_file, not both".into()));
        }
        (Some(var), None) if var.trim().is_empty() => {
            return Err(("api_key_env", "the variable name is empty".into()));
        }
        (Some(var), None) => KeySource::Env(var.trim().to_string()),
        (None, Some(file)) => KeySource::File(folder.join(file)),
        (None, None) => {
            return Err((
                "api_key_env",
                "no API key source: set api_key_env = \"VARIABLE\" or api_key_file = \"path\"".into(),
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
            return Err(("enabled_kinds", "the list is empty; omit it to enable every kind the plugin supports".into()));
        }
        Some(list) => Some(
            list.iter()
                .map(|k| k.parse::<Kind>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| ("enabled_kinds", m))?,
        ),
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
            max_memory_bytes: mib(raw.max_memory_mib, defaults.max_memory_bytes as u64, "max_memory_mib")? as usize,
            max_response_bytes: mib(raw.max_response_mib, defaults.max_response_bytes, "max_response_mib")?,
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
        return Err(format!("`{text}` has a #fragment, which a base URL cannot have"));
    }
    Ok(url)
}

fn toml_message(e: &toml::de::Error) -> String {
    e.message().trim().to_string()
}

/// The field an error is about, when serde named it.
fn field_of(e: &toml::de::Error) -> Option<String> {
    let message = e.message();
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
