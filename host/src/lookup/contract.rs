//! Checking what a plugin returns against the contract: it is input from
//! untrusted code.

use enrichbox_indicator::Indicator;

/// The most raw JSON a plugin may hand back, and the most findings.
const MAX_RAW_JSON_BYTES: usize = 16 << 20;
const MAX_FINDINGS: usize = 10_000;

/// What a plugin returns is input from untrusted code: check it against the
/// contract and return the parsed raw JSON.
pub(super) fn check_enrichment(
    indicator: &Indicator,
    enrichment: &crate::bindings::Enrichment,
) -> Result<serde_json::Value, String> {
    if enrichment.raw_json.len() > MAX_RAW_JSON_BYTES {
        return Err(format!(
            "raw-json is {} bytes; at most {MAX_RAW_JSON_BYTES} are accepted",
            enrichment.raw_json.len()
        ));
    }
    let raw = serde_json::from_str(&enrichment.raw_json)
        .map_err(|e| format!("raw-json is not JSON ({e})"))?;
    if enrichment.findings.len() > MAX_FINDINGS {
        return Err(format!(
            "{} findings; at most {MAX_FINDINGS} are accepted",
            enrichment.findings.len()
        ));
    }
    let value = indicator.value().to_lowercase();
    for f in &enrichment.findings {
        if f.confidence > 100 {
            return Err(format!(
                "finding {} has confidence {}, above 100",
                f.record_id, f.confidence
            ));
        }
        let exact = matches!(f.relation, crate::bindings::Relation::Exact);
        if exact && !f.matched_ioc.to_lowercase().contains(&value) {
            return Err(format!(
                "finding {} claims `{}` is the indicator `{value}` itself",
                f.record_id, f.matched_ioc
            ));
        }
    }
    Ok(raw)
}
