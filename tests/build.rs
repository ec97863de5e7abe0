//! Builds the test-only plugin components the suite attacks the host with.

fn main() {
    let rogue = enrichbox_build_support::build_component(
        "enrichbox-rogue-plugin",
        &["tests/plugins/rogue"],
    );
    println!("cargo:rustc-env=ENRICHBOX_ROGUE_WASM={}", rogue.display());
    let sockets = enrichbox_build_support::build_component(
        "enrichbox-socket-importer-plugin",
        &["tests/plugins/socket-importer"],
    );
    println!(
        "cargo:rustc-env=ENRICHBOX_SOCKET_IMPORTER_WASM={}",
        sockets.display()
    );
    let hostile = enrichbox_build_support::build_component(
        "enrichbox-hostile-plugin",
        &["tests/plugins/hostile"],
    );
    println!(
        "cargo:rustc-env=ENRICHBOX_HOSTILE_WASM={}",
        hostile.display()
    );
}
