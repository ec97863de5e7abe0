//! `cache show|clear`: the compiled-plugin cache.

use std::process::ExitCode;

use anyhow::{Result, bail};

use super::Context;
use super::admin::TableOrJson;
use crate::compiled::CompiledCache;

#[derive(Debug, clap::Subcommand)]
pub enum CacheCommand {
    /// List the compiled plugins in the cache folder and their sizes.
    Show {
        #[arg(long, short, value_enum, default_value = "table")]
        format: TableOrJson,
    },
    /// Delete every compiled plugin; the next run compiles them again.
    Clear,
}

pub fn run(context: &Context, command: CacheCommand) -> Result<ExitCode> {
    let Some(dir) = &context.compiled_cache else {
        bail!("no cache folder: set --cache-dir or ENRICHBOX_CACHE_DIR (HOME is not set)");
    };
    let format = match command {
        CacheCommand::Show { format } => format,
        CacheCommand::Clear => return clear(dir),
    };
    let cache = CompiledCache::open(dir)?;
    show(&cache, format)
}

/// Clearing needs no trust in the folder, so it also cleans one that
/// failed the checks.
fn clear(dir: &std::path::Path) -> Result<ExitCode> {
    if !dir.exists() {
        println!("nothing to clear: {} does not exist", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let (files, bytes) = crate::compiled::clear_dir(dir)?;
    println!(
        "removed {files} compiled plugin(s), {} from {}",
        human_bytes(bytes),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn show(cache: &CompiledCache, format: TableOrJson) -> Result<ExitCode> {
    let entries = cache.entries().map_err(anyhow::Error::msg)?;
    if format == TableOrJson::Json {
        let report = serde_json::json!({
            "folder": cache.dir(),
            "entries": entries,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", cache.dir().display());
    if entries.is_empty() {
        println!("  (empty: plugins are compiled on first use and kept here)");
    }
    for entry in &entries {
        println!("  {:>9}  {}", human_bytes(entry.bytes), entry.file);
    }
    Ok(ExitCode::SUCCESS)
}

fn human_bytes(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}
