//! Builds a workspace package as a `wasm32-wasip2` component from inside a
//! build script, so that `cargo build` and `cargo test` need no extra step.
//!
//! The nested cargo gets its own target directory: the outer build holds the
//! lock on the normal one until the build script returns, and would wait for
//! itself forever.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";
/// The workspace profile for shipped and test components (small, optimized).
pub const PROFILE: &str = "plugin";

/// The workspace root, from a member's `CARGO_MANIFEST_DIR`.
pub fn workspace_root() -> PathBuf {
    let mut dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run from a build script"));
    while !dir.join("rust-toolchain.toml").exists() {
        assert!(dir.pop(), "no rust-toolchain.toml above CARGO_MANIFEST_DIR");
    }
    dir
}

/// Builds `package` and returns the path of its `.wasm` component. `watch`
/// lists workspace-relative paths whose changes must trigger a rebuild.
pub fn build_component(package: &str, watch: &[&str]) -> PathBuf {
    let workspace = workspace_root();
    for path in watch
        .iter()
        .chain(["wit", "indicator", "Cargo.lock"].iter())
    {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=ENRICHBOX_PLUGIN_TARGET_DIR");
    let target_dir = std::env::var_os("ENRICHBOX_PLUGIN_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target").join("plugins"));
    run_cargo(&workspace, &target_dir, package);
    let artifact = target_dir
        .join(TARGET)
        .join(PROFILE)
        .join(format!("{}.wasm", package.replace('-', "_")));
    assert!(
        artifact.exists(),
        "building {package} did not produce {}",
        artifact.display()
    );
    artifact
}

fn run_cargo(workspace: &Path, target_dir: &Path, package: &str) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--locked",
            "--package",
            package,
            "--target",
            TARGET,
            "--profile",
            PROFILE,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        // Flags meant for the host build must not leak into the wasm build.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {package}: {e}"));
    if !status.success() {
        panic!(
            "building {package} for {TARGET} failed (see above). \
             If the target is missing, install it with `rustup target add {TARGET}`."
        );
    }
}
