//! The contract's exports, implemented for ThreatFox.

use enrichbox_indicator::{HashAlgorithm as ParsedAlgorithm, Indicator as Parsed, Kind, parse_as};
use serde_json::{Map, Value};

use crate::bindings::enrichbox::enrichment::config;
use crate::bindings::enrichbox::enrichment::log::{self, Level};
use crate::bindings::enrichbox::enrichment::permissions::{self, Action};
use crate::bindings::enrichbox::enrichment::types::{
    AuthScheme, ConnectionStatus, EnrichError, Enrichment, Finding, HashAlgorithm, Indicator,
    IndicatorKind, KindCost, PluginInfo, Relation, UpstreamFailure, Verdict,
};
use crate::bindings::exports::enrichbox::enrichment::provider::Guest;
use crate::matching::is_same_indicator;
use crate::protocol::{Envelope, Query, ResponseError, classify_http_status, parse_envelope};
use crate::record::parse_record;
use crate::transport::{TransportError, post_json};

/// Findings at or above this confidence make the verdict malicious; below it,
/// suspicious. ThreatFox lists only reported-malicious IOCs, but a reporter's
/// own low confidence should not page anybody on its own.
const MALICIOUS_CONFIDENCE: u8 = 50;

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct ThreatFox;

impl Guest for ThreatFox {
    fn describe() -> PluginInfo {
        let cost = |kind, calls| KindCost {
            kind,
            api_calls: calls,
            quota_units: calls,
        };
        PluginInfo {
            name: "threatfox".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            provider: "abuse.ch ThreatFox".into(),
            kinds: vec![
                cost(IndicatorKind::Ip, 1),
                cost(IndicatorKind::Domain, 1),
                cost(IndicatorKind::Url, 1),
                // search_ioc finds a hash listed as a payload; search_hash
                // finds the C2s ThreatFox links to the sample. Neither call
                // returns what the other does.
                cost(IndicatorKind::Hash, 2),
            ],
            auth: AuthScheme::Header("Auth-Key".into()),
        }
    }

    fn enrich(indicator: Indicator) -> Result<Enrichment, EnrichError> {
        let parsed = validate(&indicator)?;
        let kind = wit_kind(parsed.kind());
        if !permissions::kind_permitted(kind) {
            return Err(EnrichError::KindNotPermitted(kind));
        }
        if !permissions::action_permitted(Action::Enrich) {
            return Err(EnrichError::DeniedByPolicy(
                "this instance may not run lookups".into(),
            ));
        }
        let base_url = config::get().base_url;
        let value = parsed.value();

        let direct = call(&base_url, &Query::SearchIoc(value.clone()))?;
        let mut findings = exact_findings(&parsed, &direct)?;
        let mut raw = Map::new();
        raw.insert("search_ioc".into(), direct.raw);

        if let Parsed::Hash {
            algorithm: ParsedAlgorithm::Md5 | ParsedAlgorithm::Sha256,
            ..
        } = parsed
        {
            let linked = call(&base_url, &Query::SearchHash(value))?;
            for (position, record) in linked.records.iter().enumerate() {
                let finding =
                    parse_record(position, record, Relation::Linked).map_err(malformed)?;
                if !findings.iter().any(|f| f.record_id == finding.record_id) {
                    findings.push(finding);
                }
            }
            raw.insert("search_hash".into(), linked.raw);
        }

        Ok(Enrichment {
            verdict: verdict_of(&findings),
            findings,
            raw_json: Value::Object(raw).to_string(),
        })
    }

    fn test_connection() -> Result<ConnectionStatus, EnrichError> {
        if !permissions::action_permitted(Action::TestConnection) {
            return Err(EnrichError::DeniedByPolicy(
                "this instance may not test its connection".into(),
            ));
        }
        let settings = config::get();
        let answer = call(&settings.base_url, &Query::Types)?;
        Ok(ConnectionStatus {
            message: format!(
                "ThreatFox at {} accepted the API key ({} threat types listed)",
                settings.base_url,
                answer
                    .raw
                    .get("data")
                    .and_then(Value::as_object)
                    .map_or(0, Map::len)
            ),
        })
    }
}

/// Sends one query and turns every failure into the contract's error.
fn call(base_url: &str, query: &Query) -> Result<Envelope, EnrichError> {
    log::write(Level::Debug, &format!("sending {}", query.name()));
    let reply = post_json(base_url, &query.body()).map_err(|e| match e {
        TransportError::Denied(m) => EnrichError::DeniedByPolicy(m),
        TransportError::Timeout(m) => EnrichError::Timeout(m),
        TransportError::TooLarge(m) => EnrichError::MalformedResponse(m),
        TransportError::Unavailable(message) => EnrichError::UpstreamUnavailable(UpstreamFailure {
            status: None,
            message,
        }),
    })?;
    if let Some(error) =
        classify_http_status(reply.status, reply.retry_after.as_deref(), &reply.body)
    {
        return Err(to_wit_error(error));
    }
    let envelope = parse_envelope(query, &reply.body).map_err(to_wit_error)?;
    log::write(
        Level::Debug,
        &format!(
            "{} returned {} records",
            query.name(),
            envelope.records.len()
        ),
    );
    Ok(envelope)
}

/// Reads every record (a malformed one fails the lookup) and keeps those
/// that are the indicator itself.
fn exact_findings(indicator: &Parsed, envelope: &Envelope) -> Result<Vec<Finding>, EnrichError> {
    let mut kept = Vec::new();
    for (position, record) in envelope.records.iter().enumerate() {
        let finding = parse_record(position, record, Relation::Exact).map_err(malformed)?;
        if is_same_indicator(indicator, &finding.matched_ioc, &finding.matched_ioc_type) {
            kept.push(finding);
        }
    }
    Ok(kept)
}

fn verdict_of(findings: &[Finding]) -> Verdict {
    match findings.iter().map(|f| f.confidence).max() {
        None => Verdict::Unknown,
        Some(c) if c >= MALICIOUS_CONFIDENCE => Verdict::Malicious,
        Some(_) => Verdict::Suspicious,
    }
}

/// Re-validates what the host passed in; a plugin trusts no caller.
fn validate(indicator: &Indicator) -> Result<Parsed, EnrichError> {
    let (kind, value) = match indicator {
        Indicator::Ip(v) => (Kind::Ip, v.as_str()),
        Indicator::Domain(v) => (Kind::Domain, v.as_str()),
        Indicator::Url(v) => (Kind::Url, v.as_str()),
        Indicator::Hash(h) => (Kind::Hash, h.value.as_str()),
    };
    let parsed = parse_as(kind, value).map_err(|e| EnrichError::InvalidIndicator(e.to_string()))?;
    if let (Indicator::Hash(declared), Parsed::Hash { algorithm, .. }) = (indicator, &parsed) {
        let matches = matches!(
            (declared.algorithm, algorithm),
            (HashAlgorithm::Md5, ParsedAlgorithm::Md5)
                | (HashAlgorithm::Sha1, ParsedAlgorithm::Sha1)
                | (HashAlgorithm::Sha256, ParsedAlgorithm::Sha256)
        );
        if !matches {
            return Err(EnrichError::InvalidIndicator(format!(
                "the hash was declared {:?} but has {} hex digits, which is {}",
                declared.algorithm,
                declared.value.len(),
                algorithm.as_str()
            )));
        }
    }
    Ok(parsed)
}

fn wit_kind(kind: Kind) -> IndicatorKind {
    match kind {
        Kind::Ip => IndicatorKind::Ip,
        Kind::Domain => IndicatorKind::Domain,
        Kind::Url => IndicatorKind::Url,
        Kind::Hash => IndicatorKind::Hash,
    }
}

fn malformed(message: String) -> EnrichError {
    EnrichError::MalformedResponse(format!("ThreatFox record is malformed: {message}"))
}

fn to_wit_error(error: ResponseError) -> EnrichError {
    match error {
        ResponseError::InvalidIndicator(m) => EnrichError::InvalidIndicator(m),
        ResponseError::CredentialsRejected(m) => EnrichError::CredentialsRejected(m),
        ResponseError::RateLimited(after) => EnrichError::RateLimited(after),
        ResponseError::UpstreamUnavailable { status, message } => {
            EnrichError::UpstreamUnavailable(UpstreamFailure { status, message })
        }
        ResponseError::Malformed(m) => EnrichError::MalformedResponse(m),
    }
}

// Natively (for unit tests) the exported symbols' names are not valid in a
// linker version script, and nothing would call them anyway.
#[cfg(target_arch = "wasm32")]
crate::bindings::export!(ThreatFox with_types_in crate::bindings);
