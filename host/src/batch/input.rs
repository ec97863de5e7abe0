//! Reading indicators from a file: plain text, CSV, NDJSON or a STIX 2.1
//! bundle (see `stix_input`). Every line
//! that is not an indicator is reported with its line number and counted;
//! nothing is dropped silently.

use std::collections::HashSet;

use enrichbox_indicator::{Indicator, detect};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// One indicator per line; `#` starts a comment.
    Text,
    /// Comma-separated with a header row; see --column.
    Csv,
    /// One JSON object per line; see --field.
    Ndjson,
    /// A STIX 2.1 bundle: indicator patterns and observables.
    Stix,
}

/// An indicator to look up, with where it came from.
#[derive(Debug, Clone)]
pub struct Item {
    /// Position among the valid, distinct indicators (for --ordered).
    pub index: usize,
    pub line: usize,
    pub indicator: Indicator,
    /// What the input said about the indicator, for policy conditions.
    pub context: ItemContext,
}

/// Facts about an indicator carried in the input (a CSV column, an NDJSON
/// field, a STIX object's properties), which policies can match on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemContext {
    /// The feed or system the indicator came from.
    pub source: Option<String>,
    pub tags: Vec<String>,
    /// 0 to 100.
    pub confidence: Option<u8>,
}

/// A line that was skipped, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejected {
    pub line: usize,
    pub text: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub items: Vec<Item>,
    pub rejected: Vec<Rejected>,
    pub duplicates: usize,
}

/// Picks the format from the file name, then from the content.
pub fn detect_format(name: Option<&str>, text: &str) -> InputFormat {
    let lower = name.unwrap_or("").to_ascii_lowercase();
    if lower.ends_with(".stix") || lower.ends_with(".stix.json") {
        return InputFormat::Stix;
    }
    if lower.ends_with(".csv") {
        return InputFormat::Csv;
    }
    if lower.ends_with(".ndjson") || lower.ends_with(".jsonl") {
        return InputFormat::Ndjson;
    }
    if lower.ends_with(".txt") {
        return InputFormat::Text;
    }
    // Before NDJSON: a bundle on one line is also "an object per line".
    if super::stix_input::is_bundle(text) {
        return InputFormat::Stix;
    }
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lower.ends_with(".json") {
        // Objects line by line are NDJSON; any other JSON goes to the STIX
        // reader, whose error says what the file is not.
        let ndjson = lines
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v.is_object()));
        return if ndjson {
            InputFormat::Ndjson
        } else {
            InputFormat::Stix
        };
    }
    match lines.find(|l| !l.starts_with('#')) {
        // A lone `{` starts a pretty-printed document, which NDJSON is not.
        Some("{") => InputFormat::Stix,
        Some(l) if l.starts_with('{') => InputFormat::Ndjson,
        Some(l) if looks_like_csv_header(l) => InputFormat::Csv,
        _ => InputFormat::Text,
    }
}

/// A first line of several comma-separated fields, none of them an
/// indicator, is a CSV header. (A URL may hold commas, but then the line
/// as a whole, or one of its fields, is an indicator.)
fn looks_like_csv_header(line: &str) -> bool {
    let fields: Vec<&str> = line
        .split(',')
        .map(|f| f.trim().trim_matches('"'))
        .collect();
    fields.len() >= 2
        && detect(line).is_err()
        && fields.iter().all(|f| f.is_empty() || detect(f).is_err())
}

/// Reads `text` in `format`. `column` names the CSV column or NDJSON field;
/// by default the first of `indicator`, `ioc`, `value` that exists.
pub fn parse(text: &str, format: InputFormat, column: Option<&str>) -> Result<Parsed, String> {
    let mut parsed = Parsed::default();
    let mut seen = HashSet::new();
    let mut add_with =
        |parsed: &mut Parsed, line: usize, raw: &str, context: ItemContext| match detect(raw) {
            Ok(indicator) => {
                if seen.insert(indicator.clone()) {
                    let index = parsed.items.len();
                    parsed.items.push(Item {
                        index,
                        line,
                        indicator,
                        context,
                    });
                } else {
                    parsed.duplicates += 1;
                }
            }
            Err(e) => parsed.rejected.push(Rejected {
                line,
                text: enrichbox_indicator::shorten(raw.trim()),
                reason: e.to_string(),
            }),
        };
    let mut add = |parsed: &mut Parsed, line: usize, raw: &str| {
        add_with(parsed, line, raw, ItemContext::default())
    };
    match format {
        InputFormat::Text => {
            for (n, line) in text.lines().enumerate() {
                let content = line
                    .split_once('#')
                    .map_or(line, |(before, _)| before)
                    .trim();
                if !content.is_empty() {
                    add(&mut parsed, n + 1, content);
                }
            }
        }
        InputFormat::Ndjson => {
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let reject = |reason: String| Rejected {
                    line: n + 1,
                    text: enrichbox_indicator::shorten(line.trim()),
                    reason,
                };
                let value: serde_json::Value = match serde_json::from_str(line) {
                    Ok(v) => v,
                    Err(e) => {
                        parsed.rejected.push(reject(format!("not JSON: {e}")));
                        continue;
                    }
                };
                let field = match column {
                    Some(c) => value.get(c),
                    None => ["indicator", "ioc", "value"]
                        .iter()
                        .find_map(|c| value.get(*c)),
                };
                let context = match super::item_context::from_json(&value) {
                    Ok(context) => context,
                    Err(why) => {
                        parsed.rejected.push(reject(why));
                        continue;
                    }
                };
                match field.and_then(|f| f.as_str()) {
                    Some(raw) => add_with(&mut parsed, n + 1, raw, context),
                    None => parsed.rejected.push(reject(match column {
                        Some(c) => format!("no string field `{c}`"),
                        None => "no string field `indicator`, `ioc` or `value` (choose one with --field)"
                            .to_string(),
                    })),
                }
            }
        }
        InputFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(text.as_bytes());
            let headers = reader
                .headers()
                .map_err(|e| format!("cannot read the CSV header: {e}"))?
                .clone();
            let wanted: Vec<&str> = match column {
                Some(c) => vec![c],
                None => vec!["indicator", "ioc", "value"],
            };
            let position = headers
                .iter()
                .position(|h| wanted.iter().any(|w| h.trim().eq_ignore_ascii_case(w)))
                .ok_or_else(|| {
                    format!(
                        "no column named {} in the CSV header ({}); choose one with --column",
                        wanted.join(" or "),
                        headers.iter().collect::<Vec<_>>().join(", ")
                    )
                })?;
            let context_columns = super::item_context::ContextColumns::find(&headers);
            for record in reader.records() {
                match record {
                    Ok(record) => {
                        let line = record.position().map_or(0, |p| p.line() as usize);
                        let context = match context_columns.read(&record) {
                            Ok(context) => context,
                            Err(reason) => {
                                parsed.rejected.push(Rejected {
                                    line,
                                    text: enrichbox_indicator::shorten(
                                        record.get(position).unwrap_or("").trim(),
                                    ),
                                    reason,
                                });
                                continue;
                            }
                        };
                        match record.get(position) {
                            Some(raw) if !raw.trim().is_empty() => {
                                add_with(&mut parsed, line, raw, context)
                            }
                            _ => parsed.rejected.push(Rejected {
                                line,
                                text: String::new(),
                                reason: "the indicator column is empty".into(),
                            }),
                        }
                    }
                    Err(e) => parsed.rejected.push(Rejected {
                        line: e.position().map_or(0, |p| p.line() as usize),
                        text: String::new(),
                        reason: format!("not valid CSV: {e}"),
                    }),
                }
            }
        }
        InputFormat::Stix => {
            let extracted = super::stix_input::read(text)?;
            parsed.rejected.extend(extracted.rejected);
            for found in extracted.candidates {
                add_with(&mut parsed, found.line, &found.value, found.context);
            }
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_skips_comments_and_reports_bad_lines_with_numbers() {
        let parsed = parse(
            "# feed\n1.2.3.4\n\nexample.com # c2\nnot valid!\n1.2.3.4\n",
            InputFormat::Text,
            None,
        )
        .unwrap();
        let values: Vec<String> = parsed.items.iter().map(|i| i.indicator.value()).collect();
        assert_eq!(values, ["1.2.3.4", "example.com"]);
        assert_eq!(parsed.duplicates, 1);
        assert_eq!(parsed.rejected.len(), 1);
        assert_eq!(parsed.rejected[0].line, 5);
    }

    #[test]
    fn csv_uses_the_named_or_default_column() {
        let csv = "source,ioc\nfeed,evil.example\nfeed,\"bad value\"\n";
        let parsed = parse(csv, InputFormat::Csv, None).unwrap();
        assert_eq!(parsed.items[0].indicator.value(), "evil.example");
        assert_eq!(parsed.rejected[0].line, 3);
        assert!(
            parse(csv, InputFormat::Csv, Some("nope"))
                .unwrap_err()
                .contains("--column")
        );
    }

    #[test]
    fn ndjson_reads_a_field_and_reports_broken_lines() {
        let text = "{\"indicator\":\"1.2.3.4\"}\n{broken\n{\"other\":1}\n";
        let parsed = parse(text, InputFormat::Ndjson, None).unwrap();
        assert_eq!(parsed.items.len(), 1);
        let lines: Vec<usize> = parsed.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3]);
    }

    #[test]
    fn the_format_is_detected() {
        assert_eq!(detect_format(Some("a.csv"), ""), InputFormat::Csv);
        // Piped CSV is known by its header.
        let csv = "ioc,source,tags,confidence\n1.2.3.4,feed,c2,90\n";
        assert_eq!(detect_format(None, csv), InputFormat::Csv);
        assert_eq!(detect_format(Some("-"), csv), InputFormat::Csv);
        // Indicators with commas are still text.
        assert_eq!(
            detect_format(None, "http://bad.example/a,b\n1.2.3.4\n"),
            InputFormat::Text
        );
        assert_eq!(detect_format(None, "1.2.3.4,5.6.7.8\n"), InputFormat::Text);
        assert_eq!(detect_format(None, "{\"a\":1}"), InputFormat::Ndjson);
        assert_eq!(detect_format(Some("-"), "1.2.3.4"), InputFormat::Text);
        let bundle = "{\n  \"type\": \"bundle\",\n  \"objects\": []\n}\n";
        for name in [None, Some("feed.json"), Some("x.stix"), Some("x.STIX.json")] {
            assert_eq!(detect_format(name, bundle), InputFormat::Stix, "{name:?}");
        }
        assert_eq!(
            detect_format(None, "{\"type\":\"bundle\",\"objects\":[]}"),
            InputFormat::Stix
        );
        assert_eq!(
            detect_format(Some("a.json"), "{\"ioc\":\"x\"}\n{\"ioc\":\"y\"}\n"),
            InputFormat::Ndjson
        );
        // Neither: the STIX reader says why it is not a bundle.
        assert_eq!(detect_format(Some("a.json"), "[1, 2]"), InputFormat::Stix);
        assert_eq!(
            detect_format(None, "{\n  \"type\": \"report\"\n}"),
            InputFormat::Stix
        );
        assert!(
            parse("[1, 2]", InputFormat::Stix, None)
                .unwrap_err()
                .contains("not a STIX bundle")
        );
    }
}
