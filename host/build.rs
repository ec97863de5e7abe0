//! Builds the bundled ThreatFox plugin and hands its path to the compiler,
//! so the `enrichbox` binary carries its plugin inside.

fn main() {
    let wasm = enrichbox_build_support::build_component("enrichbox-threatfox", &["plugin"]);
    println!(
        "cargo:rustc-env=ENRICHBOX_THREATFOX_WASM={}",
        wasm.display()
    );
}
