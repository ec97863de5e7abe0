//! `enrichbox.toml`: the instances a host runs and how each is configured.
//!
//! Every error names the file, the instance and the field, because the
//! person reading it is editing that file.

use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

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
    /// `database = "..."`, resolved against the file's folder.
    pub database: Option<PathBuf>,
    /// `audit_file = "..."`, resolved against the file's folder.
    pub audit_file: Option<PathBuf>,
    pub audit: Option<crate::audit::AuditTarget>,
    pub instances: Vec<InstanceConfig>,
    /// `[[policy]]` tables: which instances enrich which indicators.
    pub policies: Vec<crate::policy::Policy>,
}

/// A configuration problem, located as precisely as possible.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub path: PathBuf,
    pub instance: Option<String>,
    pub policy: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(instance) = &self.instance {
            write!(f, ": instance `{instance}`")?;
        }
        if let Some(policy) = &self.policy {
            write!(f, ": policy `{policy}`")?;
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
    /// The SQLite database for quota, operators and managed instances.
    database: Option<PathBuf>,
    /// The audit trail, JSON lines.
    audit_file: Option<PathBuf>,
    /// `file`, `database` or `both` (the default).
    audit: Option<crate::audit::AuditTarget>,
    #[serde(default)]
    instance: Vec<toml::Table>,
    #[serde(default)]
    policy: Vec<toml::Table>,
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            instance: None,
            policy: None,
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
            policy: None,
            field: field.map(str::to_string),
            message,
        };
        let top: FileTop =
            toml::from_str(text).map_err(|e| error(None, None, located(&e, text)))?;
        // Policies alone are fine: their instances may live in the database.
        if top.instance.is_empty() && top.policy.is_empty() {
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
            let raw: InstanceSpec = table.try_into().map_err(|e: toml::de::Error| {
                error(Some(&label), field_of(&e).as_deref(), toml_message(&e))
            })?;
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
        // `default_instance` may name an instance kept in the database,
        // which this file cannot see; the registry checks it when used.
        let policies = crate::policy::config::parse_file(path, top.policy)?;
        Ok(Config {
            path: path.to_path_buf(),
            default_instance: top.default_instance,
            database: top.database.map(|d| folder.join(d)),
            audit_file: top.audit_file.map(|d| folder.join(d)),
            audit: top.audit,
            instances,
            policies,
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
            Some(wanted) => self
                .instances
                .iter()
                .find(|i| i.name == wanted)
                .ok_or_else(|| {
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

fn toml_message(e: &toml::de::Error) -> String {
    e.message().trim().to_string()
}

/// The message with the line and column where `text` went wrong.
fn located(e: &toml::de::Error, text: &str) -> String {
    let Some(span) = e.span() else {
        return toml_message(e);
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("line {line}, column {column}: {}", toml_message(e))
}

/// The field an error is about, when serde named it.
fn field_of(e: &toml::de::Error) -> Option<String> {
    let message = e.message();
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

mod instance;

pub use instance::{
    InstanceConfig, InstanceSpec, KeySource, Limits, PluginSource, QuotaSpec, parse_base_url,
    validate_instance,
};

#[cfg(test)]
mod tests;
