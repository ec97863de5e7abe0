//! Builds the bundled ThreatFox plugin for wasm32-wasip2 and hands its path
//! to the compiler, so the `enrichbox` binary carries its plugin inside.
//!
//! The nested cargo gets its own target directory: the outer build holds the
//! lock on the normal one until this script returns.

use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "plugin";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().expect("host/ sits in the workspace").to_path_buf();
    for watched in ["plugin/src", "plugin/Cargo.toml", "wit", "indicator/src", "indicator/Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=ENRICHBOX_PLUGIN_TARGET_DIR");

    let target_dir = std::env::var_os("ENRICHBOX_PLUGIN_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target").join("plugins"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .args(["build", "--locked", "--package", "enrichbox-threatfox", "--target", TARGET, "--profile", PROFILE])
        .arg("--target-dir")
        .arg(&target_dir)
        // Flags meant for the host build must not leak into the wasm build.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("cannot run cargo to build the ThreatFox plugin");
    if !status.success() {
        panic!(
            "building the ThreatFox plugin for {TARGET} failed (see above). \
             If the target is missing, install it with `rustup target add {TARGET}`."
        );
    }
    let wasm = target_dir.join(TARGET).join(PROFILE).join("enrichbox_threatfox.wasm");
    assert!(wasm.exists(), "the plugin build did not produce {}", wasm.display());
    println!("cargo:rustc-env=ENRICHBOX_THREATFOX_WASM={}", wasm.display());
}
