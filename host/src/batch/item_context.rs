//! Reading what an input line says about its indicator (`source`, `tags`,
//! `confidence`), so policies can match on it. A value that is there but
//! wrong rejects the line with a reason, rather than quietly matching no
//! policy (or the wrong one).

use super::input::ItemContext;

/// Positions of the context columns in a CSV header (case-insensitive).
#[derive(Debug, Clone, Copy, Default)]
pub struct ContextColumns {
    source: Option<usize>,
    tags: Option<usize>,
    confidence: Option<usize>,
}

impl ContextColumns {
    pub fn find(headers: &csv::StringRecord) -> ContextColumns {
        let position = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
        };
        ContextColumns {
            source: position("source"),
            tags: position("tags"),
            confidence: position("confidence"),
        }
    }

    pub fn read(&self, record: &csv::StringRecord) -> Result<ItemContext, String> {
        let cell = |at: Option<usize>| {
            at.and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        Ok(ItemContext {
            source: cell(self.source).map(str::to_string),
            tags: cell(self.tags).map(split_tags).unwrap_or_default(),
            confidence: cell(self.confidence).map(confidence_text).transpose()?,
        })
    }
}

/// The context fields of an NDJSON object.
pub fn from_json(value: &serde_json::Value) -> Result<ItemContext, String> {
    use serde_json::Value;
    let source = match value.get("source") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(_) => return Err("field `source` must be a string".into()),
    };
    let tags = match value.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => split_tags(s),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| match t {
                Value::String(s) => Ok(s.trim().to_string()),
                _ => Err("field `tags` must hold strings".to_string()),
            })
            .filter(|t| t.as_ref().map_or(true, |t| !t.is_empty()))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("field `tags` must be an array of strings or a string".into()),
    };
    let confidence = match value.get("confidence") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(confidence_text(s)?),
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .filter(|c| *c <= 100)
                .map(|c| c as u8)
                .ok_or_else(|| format!("confidence {n} is not a whole number from 0 to 100"))?,
        ),
        Some(_) => return Err("field `confidence` must be a number from 0 to 100".into()),
    };
    Ok(ItemContext {
        source,
        tags,
        confidence,
    })
}

/// Tags separated by `;`, `|` or `,` (a CSV cell cannot hold a bare comma,
/// so feeds use the other two).
fn split_tags(text: &str) -> Vec<String> {
    text.split([';', '|', ','])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn confidence_text(text: &str) -> Result<u8, String> {
    text.trim()
        .parse::<u8>()
        .ok()
        .filter(|c| *c <= 100)
        .ok_or_else(|| {
            format!(
                "confidence `{}` is not a whole number from 0 to 100",
                text.trim()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::input::{InputFormat, parse};

    #[test]
    fn csv_fills_source_tags_and_confidence_and_rejects_bad_confidence() {
        let csv = "ioc,Source,tags,confidence\n1.2.3.4,feed-a,c2; apt|x,80\nexample.com,,,\n5.6.7.8,feed-b,,150\n";
        let parsed = parse(csv, InputFormat::Csv, None).unwrap();
        assert_eq!(parsed.items.len(), 2);
        assert_eq!(
            parsed.items[0].context,
            ItemContext {
                source: Some("feed-a".into()),
                tags: vec!["c2".into(), "apt".into(), "x".into()],
                confidence: Some(80),
            }
        );
        assert_eq!(parsed.items[1].context, ItemContext::default());
        assert_eq!(parsed.rejected.len(), 1);
        assert_eq!(parsed.rejected[0].line, 4);
        assert!(
            parsed.rejected[0].reason.contains("150"),
            "{:?}",
            parsed.rejected
        );
    }

    #[test]
    fn ndjson_accepts_tag_arrays_or_strings_and_rejects_wrong_types() {
        let text = concat!(
            "{\"ioc\":\"1.2.3.4\",\"source\":\"feed\",\"tags\":[\"a\",\"b\"],\"confidence\":70}\n",
            "{\"ioc\":\"5.6.7.8\",\"tags\":\"c;d\",\"confidence\":\"65\"}\n",
            "{\"ioc\":\"9.9.9.9\",\"confidence\":101}\n",
            "{\"ioc\":\"8.8.8.8\",\"source\":5}\n",
        );
        let parsed = parse(text, InputFormat::Ndjson, None).unwrap();
        assert_eq!(parsed.items.len(), 2);
        assert_eq!(parsed.items[0].context.source.as_deref(), Some("feed"));
        assert_eq!(parsed.items[0].context.tags, ["a", "b"]);
        assert_eq!(parsed.items[0].context.confidence, Some(70));
        assert_eq!(parsed.items[1].context.tags, ["c", "d"]);
        assert_eq!(parsed.items[1].context.confidence, Some(65));
        let lines: Vec<usize> = parsed.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 4]);
        assert!(parsed.rejected[1].reason.contains("source"));
    }
}
