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
    let since = since
        .as_deref()
        .map(parse_since)
        .transpose()
        .map_err(anyhow::Error::msg)?;
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

/// `--since`: a UTC time (`2026-12-04T10:00:00Z`, seconds optional), a day
/// (`2026-12-04`) or an age (`90m`, `6h`, `2d`), as the millisecond form the
/// records carry, so that comparing the text compares the times.
fn parse_since(text: &str) -> Result<String, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "--since `{text}` is not a time: give a UTC time like 2026-12-04T10:00:00Z, a day like 2026-12-04, or an age like 90m, 6h or 2d"
        )
    };
    if let Some(unit) = text.chars().last().filter(|c| matches!(c, 'm' | 'h' | 'd')) {
        let amount: i64 = text[..text.len() - 1].parse().map_err(|_| bad())?;
        let seconds = amount
            * match unit {
                'm' => 60,
                'h' => 3_600,
                _ => 86_400,
            };
        let at = enrichbox_quota::rfc3339(crate::clock::now_unix() - seconds);
        return Ok(format!("{}.000Z", at.trim_end_matches('Z')));
    }
    let (day, time) = text.split_once('T').unwrap_or((text, "00:00:00Z"));
    let Some(time) = time.strip_suffix('Z').or_else(|| time.strip_suffix('z')) else {
        return Err(format!("{}; times must be in UTC, ending in Z", bad()));
    };
    let numbers = |part: &str, sep: char| -> Option<Vec<u32>> {
        part.split(sep).map(|n| n.parse().ok()).collect()
    };
    let date = numbers(day, '-').filter(|d| d.len() == 3).ok_or_else(bad)?;
    let (hms, millis) = time.split_once('.').unwrap_or((time, "000"));
    let mut clock = numbers(hms, ':')
        .filter(|t| (2..=3).contains(&t.len()))
        .ok_or_else(bad)?;
    clock.resize(3, 0);
    let valid = (1..=12).contains(&date[1])
        && (1..=31).contains(&date[2])
        && clock[0] < 24
        && clock[1] < 60
        && clock[2] < 61
        && millis.len() <= 3
        && millis.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return Err(bad());
    }
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:0<3}Z",
        date[0], date[1], date[2], clock[0], clock[1], clock[2], millis
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn since_takes_times_days_and_ages_and_refuses_the_rest() {
        assert_eq!(
            parse_since("2026-12-04T10:00:00Z").unwrap(),
            "2026-12-04T10:00:00.000Z"
        );
        assert_eq!(
            parse_since("2026-12-04").unwrap(),
            "2026-12-04T00:00:00.000Z"
        );
        assert_eq!(
            parse_since("2026-12-04T10:30Z").unwrap(),
            "2026-12-04T10:30:00.000Z"
        );
        assert!(parse_since("2h").unwrap() < crate::clock::now_rfc3339_millis());
        for bad in [
            "yesterday",
            "garbage",
            "2026-13-01",
            "2026-12-04T10:00:00+02:00",
            "5x",
        ] {
            let error = parse_since(bad).unwrap_err();
            assert!(error.contains(bad), "{error}");
        }
    }
}
