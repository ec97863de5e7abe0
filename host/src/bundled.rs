//! Plugins compiled into this binary by `build.rs`.

/// The ThreatFox component, built from `plugin/` for wasm32-wasip2.
pub const THREATFOX: &[u8] = include_bytes!(env!("ENRICHBOX_THREATFOX_WASM"));

pub const NAMES: &[&str] = &["threatfox"];

pub fn bytes(name: &str) -> Option<&'static [u8]> {
    match name {
        "threatfox" => Some(THREATFOX),
        _ => None,
    }
}
