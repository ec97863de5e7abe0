//! `instance add|list|show|update|enable-kind|disable-kind|remove|history`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;
use enrichbox_indicator::Kind;
use serde_json::json;

use super::Context;
use super::admin::TableOrJson;
use crate::config::{InstanceSpec, QuotaSpec};
use crate::lookup::Enricher;
use crate::registry::{Origin, ResolvedInstance, stored_config};
use crate::store::Permission;

#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// Add an instance; its connection is tested first (needs `create`).
    Add {
        name: String,
        #[command(flatten)]
        settings: Settings,
        /// Save even if the connection test fails.
        #[arg(long)]
        skip_test: bool,
    },
    /// List every instance and where it is defined (needs `view`).
    List {
        #[arg(long, short, value_enum, default_value = "table")]
        format: TableOrJson,
    },
    /// Show one instance, where it is defined and who changed it (needs `view`).
    Show {
        name: String,
        #[arg(long, short, value_enum, default_value = "table")]
        format: TableOrJson,
    },
    /// Change settings of a database instance (needs `update`).
    Update {
        name: String,
        #[command(flatten)]
        settings: Settings,
        /// Remove the quota (unlimited).
        #[arg(long, conflicts_with = "quota")]
        no_quota: bool,
        /// Save a new base URL, key or plugin without testing the connection.
        #[arg(long)]
        skip_test: bool,
    },
    /// Enable indicator kinds (needs `update`).
    EnableKind {
        name: String,
        #[arg(required = true, value_parser = parse_kind)]
        kinds: Vec<Kind>,
    },
    /// Disable indicator kinds (needs `update`).
    DisableKind {
        name: String,
        #[arg(required = true, value_parser = parse_kind)]
        kinds: Vec<Kind>,
    },
    /// Remove a database instance; its history is kept (needs `update`).
    Remove { name: String },
    /// Every recorded change: when, who, what (needs `view`).
    History { name: String },
}

/// Settings shared by `add` and `update`; unset ones are left as they are.
#[derive(Debug, clap::Args)]
pub struct Settings {
    /// Bundled plugin name or path to a .wasm component.
    #[arg(long)]
    plugin: Option<String>,
    /// Provider endpoint (default for ThreatFox: https://threatfox-api.abuse.ch/api/v1/).
    #[arg(long)]
    base_url: Option<String>,
    /// Environment variable holding the API key (the key is never stored).
    #[arg(long, conflicts_with = "api_key_file")]
    api_key_env: Option<String>,
    /// File holding the API key (the key is never stored, only this path).
    #[arg(long)]
    api_key_file: Option<PathBuf>,
    /// Check TLS certificates (default true).
    #[arg(long)]
    verify_ssl: Option<bool>,
    /// Comma-separated kinds to enable (default: all the plugin supports).
    #[arg(long, value_delimiter = ',', value_parser = parse_kind)]
    kinds: Option<Vec<Kind>>,
    /// Quota as UNITS/PERIOD, e.g. 1000/day (period: hour, day, week, month).
    #[arg(long, value_parser = parse_quota)]
    quota: Option<QuotaSpec>,
    /// Wall-clock limit of one lookup, in seconds.
    #[arg(long)]
    timeout_seconds: Option<f64>,
}

fn parse_kind(text: &str) -> Result<Kind, String> {
    text.parse()
}

fn parse_quota(text: &str) -> Result<QuotaSpec, String> {
    let (units, per) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not UNITS/PERIOD, e.g. 1000/day"))?;
    let units = units
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("`{units}` is not a whole number of units"))?;
    per.parse::<enrichbox_quota::Period>()
        .map_err(|e| e.to_string())?;
    Ok(QuotaSpec {
        units,
        per: per.trim().to_lowercase(),
    })
}

impl Settings {
    /// Applies the given settings to `spec`, returning what changed.
    fn apply(self, spec: &mut InstanceSpec) -> serde_json::Map<String, serde_json::Value> {
        let mut changed = serde_json::Map::new();
        if let Some(plugin) = self.plugin {
            changed.insert("plugin".into(), json!(plugin));
            spec.plugin = plugin;
        }
        if let Some(url) = self.base_url {
            changed.insert("base_url".into(), json!(url));
            spec.base_url = Some(url);
        }
        if let Some(var) = self.api_key_env {
            changed.insert("api_key_env".into(), json!(var));
            spec.api_key_env = Some(var);
            spec.api_key_file = None;
        }
        if let Some(file) = self.api_key_file {
            // Stored absolute: the command may run from another folder later.
            let file = std::path::absolute(&file).unwrap_or(file);
            changed.insert("api_key_file".into(), json!(file));
            spec.api_key_file = Some(file);
            spec.api_key_env = None;
        }
        if let Some(verify) = self.verify_ssl {
            changed.insert("verify_ssl".into(), json!(verify));
            spec.verify_ssl = verify;
        }
        if let Some(kinds) = self.kinds {
            let names: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
            changed.insert("enabled_kinds".into(), json!(names));
            spec.enabled_kinds = Some(names);
        }
        if let Some(quota) = self.quota {
            changed.insert(
                "quota".into(),
                json!({"units": quota.units, "per": quota.per}),
            );
            spec.quota = Some(quota);
        }
        if let Some(timeout) = self.timeout_seconds {
            changed.insert("timeout_seconds".into(), json!(timeout));
            spec.timeout_seconds = Some(timeout);
        }
        changed
    }
}

pub async fn run(context: &Context, command: InstanceCommand) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match command {
        InstanceCommand::Add {
            name,
            settings,
            skip_test,
        } => {
            let db = context.authorized(Permission::Create, "add an instance")?;
            context
                .registry(&db)
                .ensure_managed(&name)
                .map_err(anyhow::Error::msg)?;
            let mut spec = InstanceSpec {
                name: name.clone(),
                plugin: "threatfox".into(),
                verify_ssl: true,
                ..InstanceSpec::default()
            };
            settings.apply(&mut spec);
            let config = stored_config(db.path(), &spec).map_err(anyhow::Error::msg)?;
            if db.instance(&name)?.is_some() {
                bail!(
                    "an instance named `{name}` exists already; change it with `enrichbox instance update`"
                );
            }
            let cleartext = config.base_url.scheme() == "http";
            if !skip_test {
                test_before_saving(context, config, &mut out).await?;
            }
            db.insert_instance(&context.operator, &spec)?;
            if cleartext {
                crate::warn_once(&format!(
                    "instance `{name}` uses plain http://: its API key crosses the network unencrypted"
                ));
            }
            if !spec.verify_ssl {
                crate::warn_once(&format!(
                    "instance `{name}` does not verify TLS certificates (verify_ssl = false)"
                ));
            }
            writeln!(out, "added instance `{name}` to {}", db.path().display())?;
        }
        InstanceCommand::List { format } => {
            let db = context.authorized(Permission::View, "list instances")?;
            let all = context.registry(&db).all().map_err(anyhow::Error::msg)?;
            if format == TableOrJson::Json {
                let list: Vec<_> = all.iter().map(summary).collect();
                serde_json::to_writer_pretty(&mut out, &list)?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "{:20} {:10} {:26} {:14} {:45} {}",
                    "NAME", "PLUGIN", "KINDS", "QUOTA", "BASE URL", "DEFINED IN"
                )?;
                for r in &all {
                    let s = summary(r);
                    writeln!(
                        out,
                        "{:20} {:10} {:26} {:14} {:45} {}",
                        s["name"].as_str().unwrap_or_default(),
                        s["plugin"].as_str().unwrap_or_default(),
                        s["enabled_kinds"].as_str().unwrap_or("all supported"),
                        s["quota"].as_str().unwrap_or_default(),
                        s["base_url"].as_str().unwrap_or_default(),
                        origin_word(&r.origin)
                    )?;
                }
            }
        }
        InstanceCommand::Show { name, format } => {
            let db = context.authorized(Permission::View, "show instances")?;
            let resolved = context
                .registry(&db)
                .resolve(Some(&name))
                .map_err(anyhow::Error::msg)?;
            let c = &resolved.config;
            let brief = summary(&resolved);
            let mut fields: Vec<(&str, serde_json::Value)> = vec![
                ("name", json!(c.name)),
                ("defined_in", json!(resolved.origin.to_string())),
                ("plugin", brief["plugin"].clone()),
                ("base_url", json!(c.base_url.as_str())),
                ("api_key_source", json!(key_source(&resolved))),
                ("verify_ssl", json!(c.verify_ssl)),
                (
                    "enabled_kinds",
                    json!(
                        c.enabled_kinds
                            .as_ref()
                            .map_or("all the plugin supports".into(), |k| join_kinds(k))
                    ),
                ),
                ("quota", brief["quota"].clone()),
                ("timeout_seconds", json!(c.limits.timeout.as_secs_f64())),
                (
                    "circuit",
                    json!(context.breaker()?.circuit(&c.name).describe()),
                ),
            ];
            if let Some(stored) = &resolved.stored {
                fields.push((
                    "created",
                    json!(format!("{} by {}", stored.created_at, stored.created_by)),
                ));
                fields.push((
                    "updated",
                    json!(format!("{} by {}", stored.updated_at, stored.updated_by)),
                ));
            }
            if format == TableOrJson::Json {
                let object: serde_json::Map<String, serde_json::Value> = fields
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                serde_json::to_writer_pretty(&mut out, &object)?;
                writeln!(out)?;
            } else {
                for (key, value) in fields {
                    let text = value.as_str().map_or(value.to_string(), str::to_string);
                    writeln!(out, "{:16} {text}", key.replace('_', " "))?;
                }
            }
        }
        InstanceCommand::Update {
            name,
            settings,
            no_quota,
            skip_test,
        } => {
            let db = context.authorized(Permission::Update, "change instances")?;
            let mut spec = managed_spec(context, &db, &name)?;
            let mut changed = settings.apply(&mut spec);
            if no_quota {
                spec.quota = None;
                changed.insert("quota".into(), serde_json::Value::Null);
            }
            if changed.is_empty() {
                bail!(
                    "nothing to change: give at least one setting (see `enrichbox instance update --help`)"
                );
            }
            // What reaches the provider changed: check it still answers, as `add` does.
            let reaches = [
                "base_url",
                "api_key_env",
                "api_key_file",
                "verify_ssl",
                "plugin",
            ];
            if !skip_test && reaches.iter().any(|k| changed.contains_key(*k)) {
                let config = stored_config(db.path(), &spec).map_err(anyhow::Error::msg)?;
                test_before_saving(context, config, &mut out).await?;
            }
            save(
                context,
                &db,
                &name,
                &spec,
                "update",
                serde_json::Value::Object(changed),
            )?;
            writeln!(out, "updated instance `{name}`")?;
        }
        InstanceCommand::EnableKind { name, kinds } => {
            change_kinds(context, &name, &kinds, true).await?;
            writeln!(out, "enabled {} for `{name}`", join_kinds(&kinds))?;
        }
        InstanceCommand::DisableKind { name, kinds } => {
            change_kinds(context, &name, &kinds, false).await?;
            writeln!(out, "disabled {} for `{name}`", join_kinds(&kinds))?;
        }
        InstanceCommand::Remove { name } => {
            let db = context.authorized(Permission::Update, "remove instances")?;
            managed_spec(context, &db, &name)?;
            // A policy naming a missing instance would stop every `enrich`.
            let policies = crate::policy::registry::all(context.config.as_ref(), Some(&db))
                .map_err(anyhow::Error::msg)?;
            let users = crate::policy::registry::users_of(&policies, &name);
            if !users.is_empty() {
                bail!(
                    "instance `{name}` is used by the polic{} {}; take it out of {} first (`enrichbox policy remove`, or edit the configuration file)",
                    if users.len() == 1 { "y" } else { "ies" },
                    users
                        .iter()
                        .map(|u| format!("`{u}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if users.len() == 1 { "it" } else { "them" }
                );
            }
            db.remove_instance(&context.operator, &name)?;
            writeln!(out, "removed instance `{name}` (its history is kept)")?;
        }
        InstanceCommand::History { name } => {
            let db = context.authorized(Permission::View, "view instance history")?;
            let history = db.history(&name)?;
            if history.is_empty() {
                bail!("no recorded change for `{name}` (file instances have no history here)");
            }
            for entry in history {
                writeln!(
                    out,
                    "{}  {:16} {:8} {}",
                    entry.at, entry.operator, entry.action, entry.details
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The stored spec of a database instance, or an error saying where the
/// instance really lives.
fn managed_spec(
    context: &Context,
    db: &crate::store::Database,
    name: &str,
) -> Result<InstanceSpec> {
    context
        .registry(db)
        .ensure_managed(name)
        .map_err(anyhow::Error::msg)?;
    match db.instance(name)? {
        Some(stored) => Ok(stored.spec),
        None => bail!(
            "no instance named `{name}` in the database {}",
            db.path().display()
        ),
    }
}

/// Validates and stores `spec`; an invalid result changes nothing.
fn save(
    context: &Context,
    db: &crate::store::Database,
    name: &str,
    spec: &InstanceSpec,
    action: &str,
    details: serde_json::Value,
) -> Result<()> {
    stored_config(db.path(), spec).map_err(anyhow::Error::msg)?;
    db.update_instance(&context.operator, name, spec, action, details)?;
    Ok(())
}

async fn change_kinds(context: &Context, name: &str, kinds: &[Kind], enable: bool) -> Result<()> {
    let db = context.authorized(Permission::Update, "enable or disable kinds")?;
    let mut spec = managed_spec(context, &db, name)?;
    let config = stored_config(db.path(), &spec).map_err(anyhow::Error::msg)?;
    let runtime = context.plugin_runtime()?;
    let supported = runtime
        .plugin(&config.plugin)
        .await?
        .description
        .supported_kinds();
    let mut current: Vec<Kind> = config
        .enabled_kinds
        .clone()
        .unwrap_or_else(|| supported.clone());
    for kind in kinds {
        if enable && !supported.contains(kind) {
            bail!("the plugin of `{name}` does not support {kind} lookups");
        }
        current.retain(|k| k != kind);
        if enable {
            current.push(*kind);
        }
    }
    if current.is_empty() {
        bail!("`{name}` would have no kind enabled; remove the instance instead");
    }
    current.sort();
    let names: Vec<String> = current.iter().map(|k| k.to_string()).collect();
    spec.enabled_kinds = Some(names.clone());
    let action = if enable {
        "enable-kind"
    } else {
        "disable-kind"
    };
    save(
        context,
        &db,
        name,
        &spec,
        action,
        json!({"kinds": join_kinds(kinds), "enabled_kinds": names}),
    )
}

fn join_kinds(kinds: &[Kind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn origin_word(origin: &Origin) -> String {
    match origin {
        Origin::File(p) => format!("file {}", p.display()),
        Origin::Database(_) => "database".into(),
    }
}

fn key_source(resolved: &ResolvedInstance) -> String {
    use crate::config::KeySource;
    match &resolved.config.key_source {
        Some(KeySource::Env(var)) => format!("environment variable {var}"),
        Some(KeySource::File(path)) => format!("file {}", path.display()),
        Some(KeySource::Value(_)) => "provided by the embedding platform".into(),
        None => "none".into(),
    }
}

fn summary(resolved: &ResolvedInstance) -> serde_json::Value {
    let c = &resolved.config;
    json!({
        "name": c.name,
        "plugin": match &c.plugin {
            crate::config::PluginSource::Bundled(n) => n.clone(),
            crate::config::PluginSource::File(p) => p.display().to_string(),
        },
        "base_url": c.base_url.as_str(),
        "enabled_kinds": c.enabled_kinds.as_ref().map(|k| join_kinds(k)),
        "quota": c.quota.map_or("unlimited".to_string(), |q| format!("{}/{}", q.units, q.per.as_str())),
        "origin": resolved.origin,
    })
}

/// Refuses to save settings the provider does not accept.
async fn test_before_saving(
    context: &Context,
    config: crate::config::InstanceConfig,
    out: &mut impl Write,
) -> Result<()> {
    let runtime = context.runtime(1, config.limits.max_memory_bytes)?;
    let report = Enricher::new(runtime, config)
        .await?
        .test_connection()
        .await;
    if !report.ok {
        let kind = report.error.as_ref().map_or("error", |e| e.kind.as_str());
        bail!(
            "not saved: the connection test failed ({kind}): {}\n(fix the settings, or pass --skip-test to save anyway)",
            report.message
        );
    }
    writeln!(out, "connection test: {}", report.message)?;
    Ok(())
}
