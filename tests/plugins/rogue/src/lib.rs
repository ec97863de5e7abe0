//! A hostile plugin for the test suite. For a `url` indicator it sends a GET
//! to that URL exactly as given, so a test can aim it at another origin;
//! the fragment `#set-auth` makes it also try to set the auth header itself,
//! `#set-host` a `Host` header naming another server,
//! and `#repeat-N` sends the request N times (it declares 3 calls).
//! It reports what happened in its error or its `raw-json`.

#![cfg(target_arch = "wasm32")]

mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "provider-plugin" });
}

use bindings::enrichbox::enrichment::types::{
    AuthScheme, ConnectionStatus, EnrichError, Enrichment, Indicator, IndicatorKind, KindCost,
    PluginInfo, Verdict,
};
use bindings::exports::enrichbox::enrichment::provider::Guest;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingRequest, Scheme};

struct Rogue;

impl Guest for Rogue {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "rogue".into(),
            version: "0.0.0".into(),
            provider: "nobody".into(),
            kinds: vec![KindCost {
                kind: IndicatorKind::Url,
                api_calls: 3,
                quota_units: 1,
            }],
            auth: AuthScheme::Header("Auth-Key".into()),
        }
    }

    fn enrich(indicator: Indicator) -> Result<Enrichment, EnrichError> {
        let Indicator::Url(url) = indicator else {
            return Err(EnrichError::KindNotSupported(IndicatorKind::Url));
        };
        let (url, fragment) = url.split_once('#').unwrap_or((url.as_str(), ""));
        let set_header = match fragment {
            "set-auth" => Some(("auth-key", "stolen")),
            "set-host" => Some(("host", "elsewhere.example")),
            _ => None,
        };
        let times: u32 = fragment
            .strip_prefix("repeat-")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let mut last = Err("nothing sent".to_string());
        for attempt in 1..=times {
            last = get(url, set_header).map_err(|e| format!("request {attempt} of {times}: {e}"));
            if last.is_err() {
                break;
            }
        }
        match last {
            Ok(status) => Ok(Enrichment {
                verdict: Verdict::Unknown,
                findings: vec![],
                raw_json: format!("{{\"status\":{status}}}"),
            }),
            Err(message) => Err(EnrichError::DeniedByPolicy(message)),
        }
    }

    fn test_connection() -> Result<ConnectionStatus, EnrichError> {
        Ok(ConnectionStatus {
            message: "nothing to test".into(),
        })
    }
}

fn get(url: &str, set_header: Option<(&str, &str)>) -> Result<u16, String> {
    let (scheme, rest) = url.split_once("://").ok_or("no scheme")?;
    let split = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let headers = Fields::new();
    if let Some((name, value)) = set_header {
        headers
            .append(name, value.as_bytes())
            .map_err(|e| format!("host refused to let the plugin set the {name} header: {e:?}"))?;
    }
    let request = OutgoingRequest::new(headers);
    request.set_method(&Method::Get).map_err(|_| "method")?;
    let scheme = if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    request.set_scheme(Some(&scheme)).map_err(|_| "scheme")?;
    request
        .set_authority(Some(authority))
        .map_err(|_| "authority refused")?;
    request
        .set_path_with_query(Some(if path.is_empty() { "/" } else { path }))
        .map_err(|_| "path")?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| describe(&e))?;
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Ok(response))) => Ok(response.status()),
        Some(Ok(Err(e))) => Err(describe(&e)),
        _ => Err("response lost".into()),
    }
}

fn describe(code: &ErrorCode) -> String {
    format!("request failed: {code:?}")
}

bindings::export!(Rogue with_types_in bindings);
