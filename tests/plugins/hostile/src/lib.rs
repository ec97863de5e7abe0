//! A hostile plugin for the test suite. The domain looked up picks the
//! attack: `read-file.hostile.test`, `loop-forever.hostile.test`, ... (see
//! `attack`). Whatever it manages to see is reported back in `raw-json` or
//! in the error, so the tests can check that nothing leaked.

#![cfg(target_arch = "wasm32")]

mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "provider-plugin" });
}

use bindings::enrichbox::enrichment::config;
use bindings::enrichbox::enrichment::types::{
    AuthScheme, ConnectionStatus, EnrichError, Enrichment, Finding, Indicator, IndicatorKind,
    KindCost, PluginInfo, Relation, Verdict,
};
use bindings::exports::enrichbox::enrichment::provider::Guest;

struct Hostile;

impl Guest for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile".into(),
            version: "0.0.0".into(),
            provider: "nobody".into(),
            kinds: vec![KindCost {
                kind: IndicatorKind::Domain,
                api_calls: 1,
                quota_units: 1,
            }],
            auth: AuthScheme::Header("Auth-Key".into()),
        }
    }

    fn enrich(indicator: Indicator) -> Result<Enrichment, EnrichError> {
        let Indicator::Domain(domain) = indicator else {
            return Err(EnrichError::KindNotSupported(IndicatorKind::Domain));
        };
        let attack = domain.split('.').next().unwrap_or_default().to_string();
        attack_with(&attack, &domain)
    }

    fn test_connection() -> Result<ConnectionStatus, EnrichError> {
        Ok(ConnectionStatus {
            message: "hostile".into(),
        })
    }
}

fn report(what: String) -> Result<Enrichment, EnrichError> {
    Ok(Enrichment {
        verdict: Verdict::Unknown,
        findings: vec![],
        raw_json: serde_json_string(&what),
    })
}

/// A JSON string literal, without pulling in serde.
fn serde_json_string(text: &str) -> String {
    let escaped: String = text
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c if c.is_control() => format!("\\u{:04x}", c as u32).chars().collect(),
            c => vec![c],
        })
        .collect();
    format!("{{\"seen\":\"{escaped}\"}}")
}

fn finding(matched: &str, confidence: u8) -> Finding {
    Finding {
        relation: Relation::Exact,
        threat_type: "botnet_cc".into(),
        threat_type_description: None,
        malware_family: None,
        malware_aliases: vec![],
        confidence,
        first_seen: None,
        last_seen: None,
        tags: vec![],
        reference_urls: vec![],
        reporter: None,
        record_id: "1".into(),
        permalink: None,
        matched_ioc: matched.into(),
        matched_ioc_type: "domain".into(),
    }
}

#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    // black_box keeps LLVM from turning the recursion into a loop.
    let padding = std::hint::black_box([depth; 64]);
    std::hint::black_box(recurse(depth + 1)).wrapping_add(padding[(depth % 64) as usize])
}

/// Written by `leftovers`, so the next sandbox in the same pool slot can
/// look for it.
static mut TRACE: [u8; 32] = [0; 32];

/// Reads what an earlier lookup in this (pooled) sandbox slot may have left:
/// a static and a freshly grown page must both be as new. Then leaves
/// traces for the next one.
fn leftovers() -> Result<Enrichment, EnrichError> {
    use core::arch::wasm32;
    const PAGE: usize = 65536;
    // SAFETY: the guest is single-threaded; TRACE is only touched here.
    let previous = unsafe { (&raw const TRACE).read() };
    let grown = wasm32::memory_grow(0, 1);
    if grown == usize::MAX {
        return report("memory.grow failed".into());
    }
    // SAFETY: page `grown` was just added to linear memory and nothing else
    // (the allocator included) knows about it.
    let page = unsafe { core::slice::from_raw_parts_mut((grown * PAGE) as *mut u8, PAGE) };
    let dirty = page.iter().filter(|b| **b != 0).count();
    page.fill(0xAB);
    unsafe { (&raw mut TRACE).write(*b"trace-left-by-an-earlier-lookup!") };
    let static_text = String::from_utf8_lossy(&previous)
        .trim_matches('\0')
        .to_string();
    report(format!("static={static_text:?} dirty_bytes={dirty}"))
}

fn attack_with(attack: &str, domain: &str) -> Result<Enrichment, EnrichError> {
    match attack {
        "leftovers" => leftovers(),
        "read-file" => report(format!("{:?}", std::fs::read_to_string("/etc/passwd"))),
        "list-dir" => report(format!("{:?}", std::fs::read_dir("/").map(|d| d.count()))),
        "env-var" => {
            let vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
            let args: Vec<String> = std::env::args().collect();
            report(format!("vars={vars:?} args={args:?}"))
        }
        "config-dump" => report(format!("{:?}", config::get())),
        "loop-forever" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "allocate" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "recurse" => report(recurse(0).to_string()),
        "stdout-flood" => {
            let line = "x".repeat(1023);
            for _ in 0..10_000 {
                println!("{line}");
            }
            report("flooded".into())
        }
        "panic" => panic!("the hostile plugin panics on purpose"),
        "bad-confidence" => Ok(Enrichment {
            verdict: Verdict::Malicious,
            findings: vec![finding(domain, 200)],
            raw_json: "{}".into(),
        }),
        "wrong-indicator" => Ok(Enrichment {
            verdict: Verdict::Malicious,
            findings: vec![finding("somebody-else.example", 90)],
            raw_json: "{}".into(),
        }),
        "huge-string" => Ok(Enrichment {
            verdict: Verdict::Unknown,
            findings: vec![],
            raw_json: "7".repeat(20 << 20),
        }),
        "not-json" => Ok(Enrichment {
            verdict: Verdict::Unknown,
            findings: vec![],
            raw_json: "not json at all".into(),
        }),
        "non-utf8" => {
            let bytes = vec![b'{', 0xff, 0xfe, b'}'];
            // Deliberately breaks the String invariant to hand the host bad bytes.
            let raw_json = unsafe { String::from_utf8_unchecked(bytes) };
            Ok(Enrichment {
                verdict: Verdict::Unknown,
                findings: vec![],
                raw_json,
            })
        }
        other => Err(EnrichError::InvalidIndicator(format!(
            "unknown attack `{other}`"
        ))),
    }
}

bindings::export!(Hostile with_types_in bindings);
