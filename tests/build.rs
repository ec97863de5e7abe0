//! Builds the test-only plugin components the suite attacks the host with.

fn main() {
    let rogue = enrichbox_build_support::build_component("enrichbox-rogue-plugin", &["tests/plugins/rogue"]);
    println!("cargo:rustc-env=ENRICHBOX_ROGUE_WASM={}", rogue.display());
}
