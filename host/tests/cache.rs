//! `enrichbox cache`: compiled plugins are kept in a private folder,
//! listed, cleared, and a folder others could write to is not used.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn enrichbox(cache: &Path, args: &[&str]) -> Output {
    let home = cache.parent().unwrap();
    Command::new(env!("CARGO_BIN_EXE_enrichbox"))
        .args(args)
        .env("ENRICHBOX_CACHE_DIR", cache)
        .env("ENRICHBOX_DB", home.join("enrichbox.db"))
        .env_remove("ENRICHBOX_CONFIG")
        .current_dir(home)
        .output()
        .expect("enrichbox runs")
}

fn entries(cache: &Path) -> Vec<serde_json::Value> {
    let shown = enrichbox(cache, &["cache", "show", "--format", "json"]);
    assert!(shown.status.success(), "{shown:?}");
    let report: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    report["entries"].as_array().unwrap().clone()
}

#[test]
fn the_first_run_fills_a_private_cache_that_clear_empties() {
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("components");
    assert!(enrichbox(&cache, &["describe"]).status.success());
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let listed = entries(&cache);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0]["file"].as_str().unwrap().ends_with(".cwasm"));

    // A second run reuses the entry rather than writing another.
    assert!(enrichbox(&cache, &["describe"]).status.success());
    assert_eq!(entries(&cache).len(), 1);

    // A damaged entry is said to be replaced, not loaded.
    let entry = cache.join(listed[0]["file"].as_str().unwrap());
    let mut bytes = std::fs::read(&entry).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&entry, bytes).unwrap();
    let repaired = enrichbox(&cache, &["describe"]);
    assert!(repaired.status.success(), "{repaired:?}");
    let note = String::from_utf8_lossy(&repaired.stderr);
    assert!(note.contains("not trusted and is replaced"), "{note}");

    let cleared = enrichbox(&cache, &["cache", "clear"]);
    assert!(cleared.status.success(), "{cleared:?}");
    assert!(String::from_utf8_lossy(&cleared.stdout).contains("removed 1 compiled plugin"));
    assert!(entries(&cache).is_empty());
}

#[test]
fn a_cache_folder_others_can_write_is_not_used_and_the_command_says_why() {
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("shared");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let described = enrichbox(&cache, &["describe"]);
    assert!(described.status.success(), "{described:?}");
    let stderr = String::from_utf8_lossy(&described.stderr);
    assert!(stderr.contains("compiling without a cache"), "{stderr}");
    assert!(stderr.contains("chmod 700"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        0,
        "nothing written there"
    );

    let shown = enrichbox(&cache, &["cache", "show"]);
    assert_eq!(shown.status.code(), Some(2));

    // Clearing needs no trust in the folder: it is how one cleans it up.
    std::fs::write(cache.join("planted.cwasm"), b"not ours").unwrap();
    let cleared = enrichbox(&cache, &["cache", "clear"]);
    assert!(cleared.status.success(), "{cleared:?}");
    assert!(!cache.join("planted.cwasm").exists());
}
