//! What a plugin says about itself in `describe`: untrusted input, checked
//! once when the plugin loads and kept in host types.

use serde::Serialize;

use crate::bindings::{AuthScheme, PluginInfo};
use crate::convert::kind_from_wit;
use enrichbox_indicator::Kind;

/// What `describe` declared, checked and in host types.
#[derive(Debug, Clone, Serialize)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub provider: String,
    pub kinds: Vec<KindCost>,
    /// The header the host fills with the instance's API key, if any.
    pub auth_header: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct KindCost {
    #[serde(serialize_with = "crate::convert::serialize_kind")]
    pub kind: Kind,
    pub api_calls: u32,
    pub quota_units: u32,
}

impl Description {
    pub fn cost(&self, kind: Kind) -> Option<KindCost> {
        self.kinds.iter().copied().find(|c| c.kind == kind)
    }

    pub fn supported_kinds(&self) -> Vec<Kind> {
        self.kinds.iter().map(|c| c.kind).collect()
    }
}

/// A plugin's description is input from untrusted code: check it.
pub(crate) fn check_description(info: PluginInfo) -> Result<Description, String> {
    let name = info.name.trim().to_string();
    if name.is_empty() || name.len() > 64 {
        return Err("the plugin name must be 1-64 characters".into());
    }
    if info.kinds.is_empty() {
        return Err("the plugin supports no indicator kind".into());
    }
    let mut kinds: Vec<KindCost> = Vec::new();
    for cost in &info.kinds {
        let kind = kind_from_wit(cost.kind);
        if kinds.iter().any(|k| k.kind == kind) {
            return Err(format!("the kind `{kind}` is declared twice"));
        }
        if cost.api_calls > 100 || cost.quota_units > 100 {
            return Err(format!(
                "the cost declared for `{kind}` is above 100 calls or units"
            ));
        }
        kinds.push(KindCost {
            kind,
            api_calls: cost.api_calls,
            quota_units: cost.quota_units,
        });
    }
    let auth_header = match info.auth {
        AuthScheme::None => None,
        AuthScheme::Header(name) => {
            http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a valid header name"))?;
            Some(name)
        }
    };
    Ok(Description {
        name,
        version: info.version,
        provider: info.provider,
        kinds,
        auth_header,
    })
}
