//! The `enrichbox` command line. `main.rs` only calls [`run`].

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use enrichbox_indicator::Kind;

use crate::config::{Config, DEFAULT_CONFIG_FILE, PluginSource};
use crate::lookup::Enricher;
use crate::outcome::LookupOutcome;
use crate::plugin::Plugin;
use crate::render::{self, Format};
use crate::runtime::Runtime;

const AFTER_HELP: &str = "\
Configuration (enrichbox.toml), one [[instance]] per provider account:

  [[instance]]
  name = \"Prod_ThreatFox\"            # unique, required
  plugin = \"threatfox\"               # bundled plugin, or a path to a .wasm component
  base_url = \"https://threatfox-api.abuse.ch/api/v1/\"   # the default
  api_key_env = \"THREATFOX_API_KEY\"  # or api_key_file = \"path\"
  verify_ssl = true                  # the default
  enabled_kinds = [\"ip\", \"domain\", \"url\", \"hash\"]  # default: all the plugin supports

The file is --config, else $ENRICHBOX_CONFIG, else ./enrichbox.toml.

Exit status: 0 when every lookup succeeded (found or not found), 1 when any
lookup failed, 2 when the command could not run (bad configuration, usage).";

#[derive(Debug, Parser)]
#[command(
    name = "enrichbox",
    version,
    about = "Enrich indicators of compromise through sandboxed provider plugins",
    long_about = "Enrich indicators of compromise (IP addresses, domains, URLs, file hashes) through \
provider plugins that run as WebAssembly components. A plugin reaches nothing but what the host \
grants: its instance's settings, a log, and HTTPS requests to its instance's base URL, to which the \
host adds the API key itself.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, env = "ENRICHBOX_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,

    /// Also print each outbound request and the plugin's log to stderr.
    #[arg(short, long, global = true)]
    verbose: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Look indicators up through an instance's plugin.
    #[command(after_help = "Examples:\n  enrichbox lookup 139.180.203.104 evil.example.com\n  \
enrichbox lookup --kind hash 44d88612fea8a8f36de82e1278abb02f --format json\n  \
enrichbox lookup --instance Lab_ThreatFox 'hxxp://bad[.]example/x'\n\n\
The kind of each indicator is detected (IPv4/IPv6, domain, http(s) URL, MD5/SHA-1/SHA-256);\n\
defanged forms like example[.]com and hxxp:// are accepted.")]
    Lookup {
        /// Instance to use (default: the only one, or default_instance).
        #[arg(long, short)]
        instance: Option<String>,
        /// Treat every indicator as this kind instead of detecting it.
        #[arg(long, value_parser = parse_kind)]
        kind: Option<Kind>,
        #[arg(long, short, value_enum, default_value = "table")]
        format: Format,
        /// Include the provider's raw JSON answer (json and ndjson formats).
        #[arg(long)]
        raw: bool,
        /// IP addresses, domains, URLs or hashes.
        #[arg(required = true, value_name = "INDICATOR")]
        indicators: Vec<String>,
    },
    /// Show what a plugin declares: kinds, cost per lookup, authentication.
    Describe {
        /// A bundled plugin name or a path to a .wasm component.
        #[arg(default_value = "threatfox")]
        plugin: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check that an instance's base URL and API key work.
    TestConnection {
        #[arg(long, short)]
        instance: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn parse_kind(text: &str) -> Result<Kind, String> {
    text.parse()
}

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let verbose = cli.verbose;
    match cli.command {
        Command::Lookup {
            instance,
            kind,
            format,
            raw,
            indicators,
        } => {
            let config = load_config(cli.config)?;
            let instance = config.instance(instance.as_deref()).map_err(anyhow::Error::msg)?.clone();
            let runtime = Arc::new(Runtime::new().map_err(|e| anyhow::anyhow!("{e:#}"))?);
            let enricher = Enricher::new(runtime, instance).await?;
            let mut outcomes = Vec::with_capacity(indicators.len());
            for indicator in &indicators {
                let mut outcome = enricher.lookup(indicator, kind).await;
                if verbose {
                    report_activity(&outcome);
                }
                if !raw {
                    outcome.raw = None;
                }
                outcomes.push(outcome);
            }
            let mut stdout = std::io::stdout().lock();
            render::outcomes(&mut stdout, format, &outcomes)?;
            stdout.flush()?;
            Ok(if outcomes.iter().all(LookupOutcome::succeeded) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Describe { plugin, json } => {
            let runtime = Runtime::new().map_err(|e| anyhow::anyhow!("{e:#}"))?;
            let source = if plugin.ends_with(".wasm") || plugin.contains('/') {
                PluginSource::File(PathBuf::from(&plugin))
            } else {
                PluginSource::Bundled(plugin.clone())
            };
            let loaded = Plugin::load(&runtime, &source).await?;
            let mut stdout = std::io::stdout().lock();
            if json {
                let value = serde_json::json!({
                    "source": loaded.source,
                    "sha256": loaded.sha256,
                    "size": loaded.size,
                    "contract": crate::CONTRACT,
                    "description": loaded.description,
                });
                serde_json::to_writer_pretty(&mut stdout, &value)?;
                writeln!(stdout)?;
            } else {
                render::description(&mut stdout, &loaded.description, &loaded.sha256, loaded.size)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::TestConnection { instance, json } => {
            let config = load_config(cli.config)?;
            let instance = config.instance(instance.as_deref()).map_err(anyhow::Error::msg)?.clone();
            let runtime = Arc::new(Runtime::new().map_err(|e| anyhow::anyhow!("{e:#}"))?);
            let enricher = Enricher::new(runtime, instance).await?;
            let report = enricher.test_connection().await;
            let mut stdout = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut stdout, &report)?;
                writeln!(stdout)?;
            } else if report.ok {
                writeln!(stdout, "ok: {}", report.message)?;
            } else {
                let kind = report.error.as_ref().map_or("error", |e| e.kind.as_str());
                writeln!(stdout, "failed ({kind}): {}", report.message)?;
            }
            Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}

fn load_config(explicit: Option<PathBuf>) -> Result<Config> {
    let path = explicit.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
    if !path.exists() {
        anyhow::bail!(
            "no configuration file at {} (pass --config PATH or set ENRICHBOX_CONFIG; `enrichbox --help` shows the format)",
            path.display()
        );
    }
    Config::load(&path).with_context(|| "invalid configuration".to_string())
}

fn report_activity(outcome: &LookupOutcome) {
    for request in &outcome.requests {
        let result = match (&request.denied_because, request.status, &request.error) {
            (Some(why), _, _) => format!("DENIED ({why})"),
            (None, Some(status), _) => format!("HTTP {status}"),
            (None, None, Some(error)) => format!("failed: {error}"),
            _ => "no answer".into(),
        };
        eprintln!(
            "[{}] {} {} -> {} in {} ms",
            outcome.instance, request.method, request.url, result, request.millis
        );
    }
    for line in &outcome.log {
        eprintln!("[{}] plugin {}: {}", outcome.instance, line.level, line.message);
    }
    if !outcome.output.is_empty() {
        eprintln!("[{}] plugin output: {}", outcome.instance, outcome.output.trim_end());
    }
}
