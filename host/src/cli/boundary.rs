//! `inspect` and `audit`: what a security reviewer looks at.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::Context;
use super::admin::TableOrJson;
use crate::store::Permission;

pub async fn inspect(
    context: &super::Context,
    plugin: &str,
    format: TableOrJson,
) -> Result<ExitCode> {
    let (source, bytes) = match crate::bundled::bytes(plugin) {
        Some(bytes) if !plugin.ends_with(".wasm") => (format!("bundled:{plugin}"), bytes.to_vec()),
        _ => {
            let path = PathBuf::from(plugin);
            let bytes = std::fs::read(&path)
                .with_context(|| format!("cannot read the plugin {}", path.display()))?;
            (path.display().to_string(), bytes)
        }
    };
    let runtime = context.plugin_runtime()?;
    let report = crate::inspect::inspect(&runtime, &source, &bytes)
        .await
        .map_err(anyhow::Error::msg)?;
    let mut out = std::io::stdout().lock();
    if format == TableOrJson::Json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "plugin     {}", report.source)?;
        writeln!(out, "sha256     {}", report.sha256)?;
        writeln!(out, "size       {} bytes", report.size)?;
        writeln!(
            out,
            "contract   {}",
            report
                .contract
                .as_deref()
                .unwrap_or("none (not an enrichbox plugin)")
        )?;
        writeln!(out, "\nimports")?;
        for import in &report.imports {
            let verdict = import
                .capability
                .unwrap_or("NOT PROVIDED by this host: the plugin cannot load");
            writeln!(
                out,
                "  {} {:44} {verdict}",
                if import.granted { "+" } else { "!" },
                import.name
            )?;
        }
        writeln!(out, "\nexports")?;
        for export in &report.exports {
            writeln!(out, "  {export}")?;
        }
        match (&report.description, &report.load_error) {
            (Some(d), _) => {
                writeln!(out, "\ndescribe (run with no network)")?;
                crate::render::description(&mut out, d, &report.sha256, report.size)?;
            }
            (None, Some(error)) => writeln!(out, "\nwould not load: {error}")?,
            (None, None) => {}
        }
    }
    Ok(if report.load_error.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn audit(
    context: &Context,
    instance: Option<String>,
    lookup: Option<String>,
    since: Option<String>,
    format: TableOrJson,
) -> Result<ExitCode> {
    context.authorized(Permission::View, "read the audit trail")?;
    let records = if context.audit_target() == crate::audit::AuditTarget::File {
        let path = &context.audit_file;
        if !path.exists() {
            anyhow::bail!(
                "no audit trail at {} yet (it is written by lookups)",
                path.display()
            );
        }
        crate::audit::read_file(
            path,
            instance.as_deref(),
            lookup.as_deref(),
            since.as_deref(),
        )
        .with_context(|| format!("cannot read the audit trail {}", path.display()))?
    } else {
        crate::audit::DatabaseSink::open(&context.db_path)
            .and_then(|db| db.query(instance.as_deref(), lookup.as_deref(), since.as_deref()))
            .map_err(anyhow::Error::msg)?
    };
    let mut out = std::io::stdout().lock();
    for record in &records {
        if format == TableOrJson::Json {
            serde_json::to_writer(&mut out, record)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{}  {:16} {:24} {:16} {}",
                record.ts, record.instance, record.lookup_id, record.event, record.detail
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
