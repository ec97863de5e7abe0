//! Printing outcomes: an aligned table for people, JSON for programs.

use std::io::{self, Write};

use crate::outcome::LookupOutcome;
use crate::plugin::Description;

/// Output formats of `lookup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns, one row per finding.
    Table,
    /// One JSON array with an object per indicator.
    Json,
    /// One JSON object per line, per indicator.
    Ndjson,
    /// One row per indicator.
    Csv,
    /// A STIX 2.1 bundle (malicious and suspicious results only).
    Stix,
}

pub fn outcomes(out: &mut dyn Write, format: Format, outcomes: &[LookupOutcome]) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, outcomes)?;
            writeln!(out)
        }
        Format::Ndjson => {
            for outcome in outcomes {
                serde_json::to_writer(&mut *out, outcome)?;
                writeln!(out)?;
            }
            Ok(())
        }
        Format::Table => table(out, outcomes),
        Format::Csv => {
            csv_header(out)?;
            outcomes.iter().try_for_each(|o| csv_row(out, o))
        }
        Format::Stix => {
            serde_json::to_writer_pretty(&mut *out, &crate::stix::bundle(outcomes))?;
            writeln!(out)
        }
    }
}

fn table(out: &mut dyn Write, outcomes: &[LookupOutcome]) -> io::Result<()> {
    let mut rows: Vec<[String; 4]> = vec![[
        "INDICATOR".into(),
        "KIND".into(),
        "VERDICT".into(),
        "DETAILS".into(),
    ]];
    for o in outcomes {
        let kind = o.kind.clone().unwrap_or_else(|| "-".into());
        if let Some(error) = &o.error {
            rows.push([
                o.indicator.clone(),
                kind,
                "error".into(),
                format!("{}: {}", error.kind.as_str(), error.message),
            ]);
            rows.extend(policy_row(o));
            continue;
        }
        let mut verdict = o.verdict.clone().unwrap_or_else(|| "unknown".into());
        if o.cached {
            verdict.push_str(" (cached)");
        }
        if o.findings.is_empty() {
            rows.push([
                o.indicator.clone(),
                kind,
                verdict,
                format!("no record at {}", o.provider),
            ]);
            rows.extend(policy_row(o));
            continue;
        }
        for (i, f) in o.findings.iter().enumerate() {
            let mut details = vec![
                f.malware_family
                    .clone()
                    .unwrap_or_else(|| "unknown family".into()),
                f.threat_type.clone(),
                format!("confidence {}", f.confidence),
                format!(
                    "{} {}",
                    if f.relation == "linked" {
                        "linked"
                    } else {
                        "as"
                    },
                    f.matched_ioc
                ),
            ];
            if let Some(seen) = &f.first_seen {
                details.push(format!("first seen {}", seen.get(..10).unwrap_or(seen)));
            }
            if let Some(link) = &f.permalink {
                details.push(link.clone());
            }
            let (indicator, kind, verdict) = if i == 0 {
                (o.indicator.clone(), kind.clone(), verdict.clone())
            } else {
                (String::new(), String::new(), String::new())
            };
            rows.push([indicator, kind, verdict, details.join(" | ")]);
        }
        rows.extend(policy_row(o));
    }
    let widths: Vec<usize> = (0..3)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        writeln!(
            out,
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )?;
    }
    Ok(())
}

/// A row `policy P: A quota-exhausted > B malicious` under a policy's
/// result: who was asked, in order, and what each said.
fn policy_row(o: &LookupOutcome) -> Option<[String; 4]> {
    let policy = o.policy.as_ref()?;
    let answers: Vec<String> = o
        .consulted
        .iter()
        .map(|c| {
            let answer = c
                .error
                .map(|e| e.as_str().to_string())
                .or_else(|| c.verdict.clone())
                .unwrap_or_default();
            format!("{} {answer}", c.instance)
        })
        .collect();
    let line = format!("policy {policy}: {}", answers.join(" > "));
    Some([String::new(), String::new(), String::new(), line])
}

pub fn description(
    out: &mut dyn Write,
    d: &Description,
    sha256: &str,
    size: usize,
) -> io::Result<()> {
    writeln!(out, "plugin     {} {}", d.name, d.version)?;
    writeln!(out, "provider   {}", d.provider)?;
    writeln!(
        out,
        "auth       {}",
        d.auth_header
            .as_ref()
            .map_or("none".to_string(), |h| format!(
                "`{h}` header, added by the host"
            ))
    )?;
    writeln!(out, "sha256     {sha256}")?;
    writeln!(out, "size       {size} bytes")?;
    writeln!(out, "kinds      KIND    API CALLS  QUOTA UNITS")?;
    for k in &d.kinds {
        writeln!(
            out,
            "           {:6}  {:9}  {}",
            k.kind.as_str(),
            k.api_calls,
            k.quota_units
        )?;
    }
    Ok(())
}

pub fn csv_header(out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "indicator,kind,verdict,malware_families,threat_types,max_confidence,findings,error_kind,error_message,lookup_id"
    )
}

/// One outcome as a CSV row; findings are summarized, not listed.
pub fn csv_row(out: &mut dyn Write, o: &LookupOutcome) -> io::Result<()> {
    let mut families: Vec<&str> = o
        .findings
        .iter()
        .filter_map(|f| f.malware_family.as_deref())
        .collect();
    families.dedup();
    let mut threats: Vec<&str> = o.findings.iter().map(|f| f.threat_type.as_str()).collect();
    threats.dedup();
    let fields = [
        o.indicator.clone(),
        o.kind.clone().unwrap_or_default(),
        o.verdict.clone().unwrap_or_default(),
        families.join("|"),
        threats.join("|"),
        o.findings
            .iter()
            .map(|f| f.confidence)
            .max()
            .map_or(String::new(), |c| c.to_string()),
        o.findings.len().to_string(),
        o.error
            .as_ref()
            .map_or(String::new(), |e| e.kind.as_str().to_string()),
        o.error
            .as_ref()
            .map_or(String::new(), |e| e.message.clone()),
        o.lookup_id.clone(),
    ];
    let escaped: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    writeln!(out, "{}", escaped.join(","))
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// STIX has no place for a failed lookup; say each one on stderr so none
/// is lost silently.
pub fn stix_errors_to_stderr(outcomes: &[LookupOutcome]) {
    for outcome in outcomes {
        if let Some(error) = &outcome.error {
            eprintln!(
                "not in the bundle: {}: {}: {}",
                outcome.indicator,
                error.kind.as_str(),
                error.message
            );
        }
    }
}
