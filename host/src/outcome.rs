//! The result of one lookup, as the CLI prints it and embedders receive it.

use serde::Serialize;

use crate::bindings::{EnrichError, Finding, Relation, Verdict};
use crate::capabilities::LogLine;
use crate::outbound::OutboundRecord;

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct LookupOutcome {
    /// Normalized when the input was valid, as given otherwise.
    pub indicator: String,
    /// `ip`, `domain`, `url` or `hash`; null when the input is not an indicator.
    pub kind: Option<String>,
    pub instance: String,
    pub provider: String,
    /// Null when the lookup failed: a failure is never "unknown".
    pub verdict: Option<String>,
    pub findings: Vec<FindingOut>,
    pub error: Option<LookupError>,
    /// The provider's own answer, when asked for (`--raw`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<serde_json::Value>,
    /// Ties this result to its audit records.
    pub lookup_id: String,
    /// Served from the result cache (no quota spent).
    #[serde(default)]
    pub cached: bool,
    /// How old the cached result is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_age_seconds: Option<u64>,
    /// Every request the plugin tried, allowed or not.
    #[serde(skip, default)]
    pub requests: Vec<OutboundRecord>,
    #[serde(skip, default)]
    pub log: Vec<LogLine>,
    /// What the plugin wrote to stdout/stderr.
    #[serde(skip, default)]
    pub output: String,
    /// Quota units this lookup spent (0 when none was sent or none is kept).
    #[serde(skip, default)]
    pub units_charged: u32,
    /// The policy that chose the instances (absent without a policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// What each instance of the policy answered, in the order asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consulted: Vec<crate::policy::Consulted>,
}

impl LookupOutcome {
    /// A result with nothing in it yet: no verdict, no error, nothing spent.
    pub fn empty(indicator: &str, kind: Option<String>, instance: &str, provider: &str) -> Self {
        LookupOutcome {
            indicator: indicator.to_string(),
            kind,
            instance: instance.to_string(),
            provider: provider.to_string(),
            verdict: None,
            findings: Vec::new(),
            error: None,
            raw: None,
            lookup_id: String::new(),
            cached: false,
            cache_age_seconds: None,
            requests: Vec::new(),
            log: Vec::new(),
            output: String::new(),
            units_charged: 0,
            policy: None,
            consulted: Vec::new(),
        }
    }

    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct FindingOut {
    /// `exact` or `linked`.
    pub relation: String,
    pub threat_type: String,
    pub threat_type_description: Option<String>,
    pub malware_family: Option<String>,
    pub malware_aliases: Vec<String>,
    pub confidence: u8,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub tags: Vec<String>,
    pub reference_urls: Vec<String>,
    pub reporter: Option<String>,
    pub record_id: String,
    pub permalink: Option<String>,
    pub matched_ioc: String,
    pub matched_ioc_type: String,
}

impl From<Finding> for FindingOut {
    fn from(f: Finding) -> Self {
        FindingOut {
            relation: match f.relation {
                Relation::Exact => "exact",
                Relation::Linked => "linked",
            }
            .to_string(),
            threat_type: f.threat_type,
            threat_type_description: f.threat_type_description,
            malware_family: f.malware_family,
            malware_aliases: f.malware_aliases,
            confidence: f.confidence,
            first_seen: f.first_seen,
            last_seen: f.last_seen,
            tags: f.tags,
            reference_urls: f.reference_urls,
            reporter: f.reporter,
            record_id: f.record_id,
            permalink: f.permalink,
            matched_ioc: f.matched_ioc,
            matched_ioc_type: f.matched_ioc_type,
        }
    }
}

pub fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Malicious => "malicious",
        Verdict::Suspicious => "suspicious",
        Verdict::Unknown => "unknown",
    }
}

/// The contract's error variants, plus the host's own ways to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    InvalidIndicator,
    KindNotSupported,
    KindNotPermitted,
    QuotaExhausted,
    CredentialsRejected,
    RateLimited,
    UpstreamUnavailable,
    MalformedResponse,
    Timeout,
    DeniedByPolicy,
    /// The plugin trapped (panic, stack overflow, invalid data at the boundary).
    PluginFailed,
    /// The plugin tried to grow its memory past the instance's cap.
    MemoryLimit,
    /// The provider's answer was larger than the instance's response cap.
    ResponseTooLarge,
    /// The plugin returned something the contract forbids.
    ContractViolation,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidIndicator => "invalid-indicator",
            ErrorKind::KindNotSupported => "kind-not-supported",
            ErrorKind::KindNotPermitted => "kind-not-permitted",
            ErrorKind::QuotaExhausted => "quota-exhausted",
            ErrorKind::CredentialsRejected => "credentials-rejected",
            ErrorKind::RateLimited => "rate-limited",
            ErrorKind::UpstreamUnavailable => "upstream-unavailable",
            ErrorKind::MalformedResponse => "malformed-response",
            ErrorKind::Timeout => "timeout",
            ErrorKind::DeniedByPolicy => "denied-by-policy",
            ErrorKind::PluginFailed => "plugin-failed",
            ErrorKind::MemoryLimit => "memory-limit",
            ErrorKind::ResponseTooLarge => "response-too-large",
            ErrorKind::ContractViolation => "contract-violation",
        }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct LookupError {
    pub kind: ErrorKind,
    pub message: String,
    /// For `rate-limited`, when the provider said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
    /// For `upstream-unavailable`, when a response arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
}

impl LookupError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        LookupError {
            kind,
            message: message.into(),
            retry_after_seconds: None,
            http_status: None,
        }
    }
}

impl From<EnrichError> for LookupError {
    fn from(e: EnrichError) -> Self {
        use EnrichError as E;
        match e {
            E::InvalidIndicator(m) => LookupError::new(ErrorKind::InvalidIndicator, m),
            E::KindNotSupported(k) => LookupError::new(
                ErrorKind::KindNotSupported,
                format!(
                    "the plugin does not support {} lookups",
                    crate::convert::kind_from_wit(k)
                ),
            ),
            E::KindNotPermitted(k) => LookupError::new(
                ErrorKind::KindNotPermitted,
                format!(
                    "{} lookups are not enabled for this instance",
                    crate::convert::kind_from_wit(k)
                ),
            ),
            E::QuotaExhausted(m) => LookupError::new(ErrorKind::QuotaExhausted, m),
            E::CredentialsRejected(m) => LookupError::new(ErrorKind::CredentialsRejected, m),
            E::RateLimited(after) => LookupError {
                retry_after_seconds: after,
                ..LookupError::new(
                    ErrorKind::RateLimited,
                    match after {
                        Some(s) => format!("the provider is rate limiting; retry after {s} s"),
                        None => "the provider is rate limiting; retry later".to_string(),
                    },
                )
            },
            E::UpstreamUnavailable(failure) => LookupError {
                http_status: failure.status,
                ..LookupError::new(ErrorKind::UpstreamUnavailable, failure.message)
            },
            E::MalformedResponse(m) => LookupError::new(ErrorKind::MalformedResponse, m),
            E::Timeout(m) => LookupError::new(ErrorKind::Timeout, m),
            E::DeniedByPolicy(m) => LookupError::new(ErrorKind::DeniedByPolicy, m),
        }
    }
}
