//! `enrich`: many indicators from a file or stdin.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};

use super::Context;
use crate::batch::input::{self, InputFormat};
use crate::batch::{self, BatchOptions, Summary};
use crate::outcome::LookupOutcome;
use crate::render::{self, Format};

pub const ENRICH_HELP: &str = "Examples:
  enrichbox enrich feed.txt
  enrichbox enrich iocs.csv --column ioc --format csv > enriched.csv
  cat events.ndjson | enrichbox enrich - --field src_ip --ordered
  enrichbox enrich bundle.json --format stix > enriched.json

Input is plain text, CSV, NDJSON or a STIX 2.1 bundle (the = comparisons of
indicator patterns, and ipv4/ipv6/domain/url/file observables).
Lines that are not indicators are reported on stderr with their line number,
skipped and counted; duplicates are looked up once (with the first one's source,
tags and confidence). For a bundle, the line is where the object starts, followed
by its id. A summary goes to stderr.

CSV columns / NDJSON fields named source, tags (separated by ; | or ,; in NDJSON
also an array) and confidence (0-100) are read for policy conditions; a bad
confidence rejects the line. With policies defined, each indicator goes to the
highest-priority policy that takes it, else to the default instance; --policy NAME
uses that policy only and reports what it does not take as `not covered` (see
`enrichbox policy --help`). --instance NAME ignores policies.";

#[derive(Debug, clap::Args)]
pub struct EnrichArgs {
    /// A file of indicators, or - for stdin.
    #[arg(default_value = "-")]
    input: String,
    /// Send every indicator to this instance, ignoring policies.
    #[arg(long, short, conflicts_with = "policy")]
    instance: Option<String>,
    /// Route indicators by this policy only; those it does not take are
    /// reported and not looked up.
    #[arg(long)]
    policy: Option<String>,
    /// The source of every indicator whose input names none (for policy
    /// conditions).
    #[arg(long)]
    source: Option<String>,
    /// Input format (default: from the file extension, else the content).
    #[arg(long, value_enum)]
    input_format: Option<InputFormat>,
    /// CSV column or NDJSON field holding the indicator (default: indicator, ioc or value).
    #[arg(long, visible_alias = "field")]
    column: Option<String>,
    /// Output format (default: table on a terminal, ndjson otherwise).
    #[arg(long, short, value_enum)]
    format: Option<Format>,
    /// Lookups in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Print results in input order rather than as they complete.
    #[arg(long)]
    ordered: bool,
    /// Include the provider's raw JSON answer.
    #[arg(long)]
    raw: bool,
    /// Ask the provider even when a cached result is fresh.
    #[arg(long)]
    refresh: bool,
}

pub async fn enrich(context: &Context, args: EnrichArgs) -> Result<ExitCode> {
    let (name, text) = if args.input == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read stdin")?;
        (None, text)
    } else {
        let path = PathBuf::from(&args.input);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        (Some(args.input.clone()), text)
    };
    let format_in = args
        .input_format
        .unwrap_or_else(|| input::detect_format(name.as_deref(), &text));
    let mut parsed =
        input::parse(&text, format_in, args.column.as_deref()).map_err(anyhow::Error::msg)?;
    for rejected in &parsed.rejected {
        eprintln!("skipped line {}: {}", rejected.line, rejected.reason);
    }
    if let Some(source) = &args.source {
        for item in &mut parsed.items {
            item.context.source.get_or_insert_with(|| source.clone());
        }
    }
    let (router, not_covered) = super::routing::router(
        context,
        args.policy.as_deref(),
        args.instance.as_deref(),
        &mut parsed.items,
        args.refresh,
        usize::from(args.concurrency),
    )
    .await?;
    let enricher = Arc::new(router);
    let stdout_is_terminal = std::io::stdout().is_terminal();
    let format = args.format.unwrap_or(if stdout_is_terminal {
        Format::Table
    } else {
        Format::Ndjson
    });
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let on_interrupt = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "interrupted: finishing the lookups in flight; run the same command again to resume"
            );
            on_interrupt.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let options = BatchOptions {
        stop,
        concurrency: usize::from(args.concurrency),
        ordered: args.ordered,
    };
    let mut collected: Vec<LookupOutcome> = Vec::new();
    let mut out = std::io::stdout().lock();
    let mut write_error = None;
    if format == Format::Csv {
        write_error = render::csv_header(&mut out).err();
    }
    let raw = args.raw;
    let total = parsed.items.len();
    let mut progress = Progress::new(std::io::stderr().is_terminal(), total);
    let quota_source = enricher.clone();
    let mut summary = batch::run(enricher, parsed.items, options, |mut outcome| {
        progress.update(&outcome, || quota_source.quota_remaining());
        if !raw {
            outcome.raw = None;
        }
        let result = match format {
            Format::Ndjson => serde_json::to_writer(&mut out, &outcome)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out)),
            Format::Csv => render::csv_row(&mut out, &outcome),
            Format::Json | Format::Table | Format::Stix => {
                collected.push(outcome);
                Ok(())
            }
        };
        if let Err(e) = result {
            write_error.get_or_insert(e);
        }
    })
    .await;
    progress.finish();
    if matches!(format, Format::Json | Format::Table | Format::Stix) {
        render::outcomes(&mut out, format, &collected)?;
        if format == Format::Stix {
            render::stix_errors_to_stderr(&collected);
        }
    }
    out.flush()?;
    if let Some(e) = write_error {
        return Err(e).context("cannot write the results");
    }
    summary.skipped_lines = parsed.rejected.len();
    summary.duplicates = parsed.duplicates;
    summary.not_covered = not_covered;
    print_summary(&summary);
    if summary.not_started > 0 {
        eprintln!(
            "stopped early: {} indicators not looked up; finished results are cached, so running the same command again spends no quota on them",
            summary.not_started
        );
        return Ok(ExitCode::from(130));
    }
    let complete = summary.skipped_lines == 0 && summary.not_covered == 0;
    Ok(if summary.failed() == 0 && complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_summary(s: &Summary) {
    let verdicts: Vec<String> = s.verdicts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let errors: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
    eprintln!(
        "enriched {} indicators in {:.2} s ({:.0}/s): {}; errors: {}; cached: {}; skipped lines: {}; duplicates: {}; quota units: {}",
        s.looked_up,
        s.seconds,
        s.per_second,
        if verdicts.is_empty() {
            "none".into()
        } else {
            verdicts.join(", ")
        },
        if errors.is_empty() {
            "none".into()
        } else {
            errors.join(", ")
        },
        s.cached,
        s.skipped_lines,
        s.duplicates,
        s.quota_units
    );
    if s.not_covered > 0 {
        eprintln!(
            "not covered by the policy: {} indicators (listed above; not looked up)",
            s.not_covered
        );
    }
}

/// A one-line progress display on stderr, redrawn at most every 200 ms,
/// only when stderr is a terminal.
struct Progress {
    enabled: bool,
    total: usize,
    done: usize,
    verdicts: std::collections::BTreeMap<String, usize>,
    errors: usize,
    started: std::time::Instant,
    last_drawn: Option<std::time::Instant>,
}

impl Progress {
    fn new(enabled: bool, total: usize) -> Progress {
        Progress {
            enabled,
            total,
            done: 0,
            verdicts: Default::default(),
            errors: 0,
            started: std::time::Instant::now(),
            last_drawn: None,
        }
    }

    fn update(&mut self, outcome: &LookupOutcome, quota_left: impl FnOnce() -> Option<u64>) {
        self.done += 1;
        match &outcome.verdict {
            Some(v) => *self.verdicts.entry(v.clone()).or_default() += 1,
            None => self.errors += 1,
        }
        if !self.enabled
            || self
                .last_drawn
                .is_some_and(|t| t.elapsed().as_millis() < 200)
                && self.done < self.total
        {
            return;
        }
        self.last_drawn = Some(std::time::Instant::now());
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.done as f64 / seconds;
        let eta = (self.total - self.done) as f64 / rate.max(0.001);
        let verdicts: Vec<String> = self
            .verdicts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let quota = quota_left().map_or("unlimited".to_string(), |q| q.to_string());
        eprint!(
            "\r\x1b[2K{}/{} {:.0}/s ETA {:.0}s | {} | errors {} | quota left {quota}",
            self.done,
            self.total,
            rate,
            eta,
            verdicts.join(", "),
            self.errors
        );
    }

    fn finish(&self) {
        if self.enabled && self.last_drawn.is_some() {
            eprintln!();
        }
    }
}
