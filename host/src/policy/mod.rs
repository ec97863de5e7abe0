//! Enrichment policies: which instances enrich which indicators.
//!
//! A policy lists, per indicator kind, an ordered list of up to three
//! instances and how to use them (`sequential`: one after the other until a
//! malicious verdict; `parallel`: all at once, results merged). Optional
//! conditions on what the input says about an indicator (its source, tags,
//! confidence) decide whether the policy applies; when several apply, the
//! highest priority wins, then the name, so the choice never depends on the
//! order policies were written or stored in.

pub mod config;
pub mod explain;
pub mod merge;
pub mod registry;
pub mod run;

use std::fmt;

use enrichbox_indicator::Kind;
use serde::{Deserialize, Serialize};

use crate::batch::input::ItemContext;
use crate::registry::Origin;

pub use config::{PolicySpec, WhenSpec, validate_policy};
pub use merge::{Consulted, merge};
pub use run::{Plan, Router};

/// Most instances one kind of a policy may list: each one can cost quota
/// and time, and the platform this replaces allowed three.
pub const MAX_INSTANCES: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One instance after the other; stop at the first malicious verdict.
    Sequential,
    /// Every instance at once; one merged result.
    Parallel,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sequential => "sequential",
            Mode::Parallel => "parallel",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The instances of each kind, in the order they are asked. An empty list
/// means the policy does not enrich that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Routes {
    pub ip: Vec<String>,
    pub domain: Vec<String>,
    pub url: Vec<String>,
    pub hash: Vec<String>,
}

impl Routes {
    pub fn for_kind(&self, kind: Kind) -> &[String] {
        match kind {
            Kind::Ip => &self.ip,
            Kind::Domain => &self.domain,
            Kind::Url => &self.url,
            Kind::Hash => &self.hash,
        }
    }

    /// Every instance named, once each, in first-mention order.
    pub fn instances(&self) -> Vec<&str> {
        let mut all: Vec<&str> = Vec::new();
        for kind in Kind::ALL {
            for name in self.for_kind(kind) {
                if !all.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                    all.push(name);
                }
            }
        }
        all
    }
}

/// When a policy applies. Every condition set must hold; an empty one
/// always holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Conditions {
    /// Any of these sources (case-insensitive).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Any of these tags (case-insensitive).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// At least this confidence; an input without one does not qualify,
    /// because "unknown" is not "high enough".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<u8>,
}

impl Conditions {
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.tags.is_empty() && self.min_confidence.is_none()
    }

    pub fn check(&self, context: &ItemContext) -> Result<(), Miss> {
        if !self.sources.is_empty()
            && !context.source.as_deref().is_some_and(|s| {
                self.sources
                    .iter()
                    .any(|w| w.eq_ignore_ascii_case(s.trim()))
            })
        {
            return Err(Miss::Source {
                wanted: self.sources.clone(),
                got: context.source.clone(),
            });
        }
        if !self.tags.is_empty()
            && !context
                .tags
                .iter()
                .any(|t| self.tags.iter().any(|w| w.eq_ignore_ascii_case(t.trim())))
        {
            return Err(Miss::Tags {
                wanted: self.tags.clone(),
                got: context.tags.clone(),
            });
        }
        if let Some(min) = self.min_confidence
            && context.confidence.is_none_or(|c| c < min)
        {
            return Err(Miss::Confidence {
                min,
                got: context.confidence,
            });
        }
        Ok(())
    }

    /// `source in [a, b]; tags any of [x]; confidence >= 60`, for lists.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.sources.is_empty() {
            parts.push(format!("source in [{}]", self.sources.join(", ")));
        }
        if !self.tags.is_empty() {
            parts.push(format!("tags any of [{}]", self.tags.join(", ")));
        }
        if let Some(min) = self.min_confidence {
            parts.push(format!("confidence >= {min}"));
        }
        if parts.is_empty() {
            "always".into()
        } else {
            parts.join("; ")
        }
    }
}

/// A checked policy and where it is defined.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub name: String,
    pub mode: Mode,
    /// Higher wins when several policies apply.
    pub priority: i64,
    pub routes: Routes,
    pub when: Conditions,
    pub origin: Origin,
}

/// Why a policy does not take an indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    KindNotListed(Kind),
    Source {
        wanted: Vec<String>,
        got: Option<String>,
    },
    Tags {
        wanted: Vec<String>,
        got: Vec<String>,
    },
    Confidence {
        min: u8,
        got: Option<u8>,
    },
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Miss::KindNotListed(kind) => write!(f, "it lists no instance for {kind}"),
            Miss::Source { wanted, got: None } => {
                write!(
                    f,
                    "it needs source {}; the input has none",
                    wanted.join(" or ")
                )
            }
            Miss::Source {
                wanted,
                got: Some(got),
            } => write!(f, "it needs source {}, not `{got}`", wanted.join(" or ")),
            Miss::Tags { wanted, got } if got.is_empty() => {
                write!(
                    f,
                    "it needs a tag {}; the input has none",
                    wanted.join(" or ")
                )
            }
            Miss::Tags { wanted, got } => write!(
                f,
                "it needs a tag {}; the input has {}",
                wanted.join(" or "),
                got.join(", ")
            ),
            Miss::Confidence { min, got: None } => {
                write!(f, "it needs confidence >= {min}; the input has none")
            }
            Miss::Confidence {
                min,
                got: Some(got),
            } => write!(f, "it needs confidence >= {min}; the input has {got}"),
        }
    }
}

impl Policy {
    /// The instances this policy sends a `kind` indicator with `context`
    /// to, or why it does not take it.
    pub fn check(&self, kind: Kind, context: &ItemContext) -> Result<&[String], Miss> {
        let instances = self.routes.for_kind(kind);
        if instances.is_empty() {
            return Err(Miss::KindNotListed(kind));
        }
        self.when.check(context)?;
        Ok(instances)
    }
}

/// Highest priority first, then by name: the order policies are tried in.
pub fn sort(policies: &mut [Policy]) {
    policies.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
    });
}

/// The policy that takes an indicator: the first of `sorted` that does.
pub fn choose<'a>(sorted: &'a [Policy], kind: Kind, context: &ItemContext) -> Option<&'a Policy> {
    sorted.iter().find(|p| p.check(kind, context).is_ok())
}

/// The policy called `name` (case-insensitively), or an error listing the
/// known ones.
pub fn find<'a>(policies: &'a [Policy], name: &str) -> Result<&'a Policy, String> {
    policies
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let known: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
            format!(
                "no policy is named `{name}` (known: {})",
                if known.is_empty() {
                    "none; define [[policy]] in enrichbox.toml or use `enrichbox policy add`"
                        .to_string()
                } else {
                    known.join(", ")
                }
            )
        })
}

#[cfg(test)]
mod tests;
