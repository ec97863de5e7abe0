//! `lookup`, `test-connection` and `describe`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use enrichbox_indicator::Kind;

use super::Context;
use crate::config::PluginSource;
use crate::lookup::Enricher;
use crate::outcome::LookupOutcome;
use crate::plugin::Plugin;
use crate::render::{self, Format};
use crate::store::Permission;

pub const LOOKUP_HELP: &str = "Examples:
  enrichbox lookup 139.180.203.104 evil.example.com
  enrichbox lookup --kind hash 44d88612fea8a8f36de82e1278abb02f --format json
  enrichbox lookup --instance Lab_ThreatFox 'hxxp://bad[.]example/x'

The kind of each indicator is detected (IPv4/IPv6, domain, http(s) URL, MD5/SHA-1/SHA-256);
defanged forms like example[.]com and hxxp:// are accepted. Each lookup reserves the quota
units the plugin declares before it runs; a lookup that sends no request gives them back.";

#[derive(Debug, clap::Args)]
pub struct LookupArgs {
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
    /// Ask the provider even when a cached result is fresh.
    #[arg(long)]
    refresh: bool,
    /// IP addresses, domains, URLs or hashes.
    #[arg(required = true, value_name = "INDICATOR")]
    indicators: Vec<String>,
}

fn parse_kind(text: &str) -> Result<Kind, String> {
    text.parse()
}

/// The instance's enricher, with the quota ledger attached.
pub(super) async fn enricher(
    context: &Context,
    instance: Option<&str>,
    doing: &str,
    refresh: bool,
    concurrency: usize,
) -> Result<Enricher> {
    let db = context.authorized(Permission::Enrich, doing)?;
    let resolved = context
        .registry(&db)
        .resolve(instance)
        .map_err(anyhow::Error::msg)?;
    let runtime = context.runtime(concurrency, resolved.config.limits.max_memory_bytes)?;
    let enricher = Enricher::new(runtime, resolved.config).await?;
    context.report_compile(enricher.plugin());
    Ok(enricher
        .with_ledger(context.ledger()?)
        .with_audit(context.audit()?)
        .with_cache(context.cache()?, refresh)
        .with_breaker(context.breaker()?))
}

pub async fn lookup(context: &Context, args: LookupArgs) -> Result<ExitCode> {
    let enricher = enricher(
        context,
        args.instance.as_deref(),
        "run lookups",
        args.refresh,
        1,
    )
    .await?;
    let mut outcomes = Vec::with_capacity(args.indicators.len());
    for indicator in &args.indicators {
        let mut outcome = enricher.lookup(indicator, args.kind).await;
        if context.verbose {
            report_activity(&outcome);
        }
        if !args.raw {
            outcome.raw = None;
        }
        outcomes.push(outcome);
    }
    let mut stdout = std::io::stdout().lock();
    render::outcomes(&mut stdout, args.format, &outcomes)?;
    if args.format == Format::Stix {
        render::stix_errors_to_stderr(&outcomes);
    }
    stdout.flush()?;
    Ok(if outcomes.iter().all(LookupOutcome::succeeded) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub async fn test_connection(
    context: &Context,
    instance: Option<String>,
    json: bool,
) -> Result<ExitCode> {
    let enricher = enricher(context, instance.as_deref(), "test connections", true, 1).await?;
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
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub async fn describe(context: &Context, plugin: &str, json: bool) -> Result<ExitCode> {
    let runtime = context.plugin_runtime()?;
    let source = if plugin.ends_with(".wasm") || plugin.contains('/') {
        PluginSource::File(PathBuf::from(plugin))
    } else {
        PluginSource::Bundled(plugin.to_string())
    };
    let loaded = Plugin::load(&runtime, &source).await?;
    context.report_compile(&loaded);
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
        render::description(
            &mut stdout,
            &loaded.description,
            &loaded.sha256,
            loaded.size,
        )?;
    }
    Ok(ExitCode::SUCCESS)
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
        eprintln!(
            "[{}] plugin {}: {}",
            outcome.instance, line.level, line.message
        );
    }
    if !outcome.output.is_empty() {
        eprintln!(
            "[{}] plugin output: {}",
            outcome.instance,
            outcome.output.trim_end()
        );
    }
}
