//! `enrichbox inspect`: what a component asks for and what this host would
//! grant it, without running a lookup.

use serde::Serialize;
use wasmtime::component::Component;

use crate::plugin::{Description, Plugin};
use crate::runtime::Runtime;

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub source: String,
    pub sha256: String,
    pub size: usize,
    /// The `enrichbox:enrichment` version it targets, if any.
    pub contract: Option<String>,
    pub imports: Vec<Import>,
    pub exports: Vec<String>,
    /// What `describe` declared, called in a sandbox with no network.
    pub description: Option<Description>,
    /// Why the host would refuse to load it, if it would.
    pub load_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Import {
    pub name: String,
    pub granted: bool,
    /// Which capability grants it, and on what terms.
    pub capability: Option<&'static str>,
}

/// Compiles `bytes`, lists its imports and exports, and asks it to describe
/// itself if this host can link it.
pub async fn inspect(runtime: &Runtime, source: &str, bytes: &[u8]) -> Result<Inspection, String> {
    if !bytes.starts_with(b"\0asm") {
        return Err(format!(
            "{source} is not a WebAssembly file (it does not start with \\0asm)"
        ));
    }
    let component = Component::new(runtime.engine(), bytes)
        .map_err(|e| format!("{source} is not a valid WebAssembly component: {e:#}"))?;
    let ty = component.component_type();
    let imports: Vec<Import> = ty
        .imports(runtime.engine())
        .map(|(name, _)| {
            let capability = capability_of(name);
            Import {
                name: name.to_string(),
                granted: capability.is_some(),
                capability,
            }
        })
        .collect();
    let exports: Vec<String> = ty
        .exports(runtime.engine())
        .map(|(name, _)| name.to_string())
        .collect();
    let contract = imports
        .iter()
        .map(|i| i.name.as_str())
        .chain(exports.iter().map(String::as_str))
        .find_map(|name| name.strip_prefix("enrichbox:enrichment/"))
        .and_then(|rest| rest.split_once('@'))
        .map(|(_, version)| format!("enrichbox:enrichment@{version}"));
    let (description, load_error, sha256) = match Plugin::from_bytes(runtime, source, bytes).await {
        Ok(plugin) => (Some(plugin.description), None, plugin.sha256),
        Err(e) => (None, Some(e.to_string()), crate::plugin::sha256_hex(bytes)),
    };
    Ok(Inspection {
        source: source.to_string(),
        sha256,
        size: bytes.len(),
        contract,
        imports,
        exports,
        description,
        load_error,
    })
}

/// The capability behind an import this host links, by interface name.
fn capability_of(import: &str) -> Option<&'static str> {
    let interface = import.split('@').next().unwrap_or(import);
    Some(match interface {
        "wasi:http/outgoing-handler" => {
            "outbound HTTP: the instance's base-URL origin only; the host adds the credentials"
        }
        "wasi:http/types" => "HTTP request and response types",
        "wasi:io/error" | "wasi:io/poll" | "wasi:io/streams" => "streams and polling",
        "wasi:clocks/wall-clock" | "wasi:clocks/monotonic-clock" => "clocks, read-only",
        "wasi:random/random" | "wasi:random/insecure" | "wasi:random/insecure-seed" => {
            "random numbers"
        }
        "wasi:cli/stdout" | "wasi:cli/stderr" => {
            "output: captured into the host log, 64 KiB per call"
        }
        "wasi:cli/stdin" => "stdin: always empty",
        "wasi:cli/environment" => "environment: no variables, no arguments",
        "wasi:cli/exit" => "exit: ends the call",
        "wasi:cli/terminal-input"
        | "wasi:cli/terminal-output"
        | "wasi:cli/terminal-stdin"
        | "wasi:cli/terminal-stdout"
        | "wasi:cli/terminal-stderr" => "terminal queries: never a terminal",
        "wasi:filesystem/types" | "wasi:filesystem/preopens" => {
            "filesystem: no directory is opened, so nothing to reach"
        }
        "enrichbox:enrichment/types" => "contract types",
        "enrichbox:enrichment/config" => "config: the instance's settings, without secrets",
        "enrichbox:enrichment/quota" => "quota: units left, read-only",
        "enrichbox:enrichment/permissions" => {
            "permissions: enabled kinds and the current action, read-only"
        }
        "enrichbox:enrichment/log" => "log: into the host log, 64 KiB per call",
        _ => return None,
    })
}
