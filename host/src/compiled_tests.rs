use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::bundled::THREATFOX;
use crate::plugin::sha256_hex;

fn engine() -> Engine {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    Engine::new(&config).unwrap()
}

/// A cache folder inside a fresh temporary one (which is 0755 itself).
struct Folder(tempfile::TempDir);

impl Folder {
    fn new() -> Folder {
        Folder(tempfile::tempdir().unwrap())
    }
    fn path(&self) -> PathBuf {
        self.0.path().join("components")
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn only_entry(cache: &CompiledCache) -> PathBuf {
    let entries = cache.entries().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    cache.dir().join(&entries[0].file)
}

#[test]
fn a_new_cache_folder_and_its_key_are_private() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a").join("components");
    CompiledCache::open(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
}

#[test]
fn the_second_load_is_a_hit_and_compiles_nothing() {
    let dir = Folder::new();
    let cache = CompiledCache::open(&dir.path()).unwrap();
    let engine = engine();
    let sha = sha256_hex(THREATFOX);
    let (_, first) = cache.load_or_compile(&engine, THREATFOX, &sha).unwrap();
    assert_eq!(first, CacheUse::Miss);
    let entry = only_entry(&cache);
    assert!(
        entry
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(&sha)
    );
    assert_eq!(mode(&entry), 0o600);

    // Another process (another handle on the folder) gets the same entry.
    let again = CompiledCache::open(&dir.path()).unwrap();
    let (_, second) = again.load_or_compile(&engine, THREATFOX, &sha).unwrap();
    assert_eq!(second, CacheUse::Hit);
}

#[test]
fn a_corrupt_entry_is_recompiled_and_replaced_not_loaded() {
    let dir = Folder::new();
    let cache = CompiledCache::open(&dir.path()).unwrap();
    let engine = engine();
    let sha = sha256_hex(THREATFOX);
    cache.load_or_compile(&engine, THREATFOX, &sha).unwrap();
    let entry = only_entry(&cache);
    let mut bytes = fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    fs::write(&entry, &bytes).unwrap();

    let (_, used) = cache.load_or_compile(&engine, THREATFOX, &sha).unwrap();
    assert!(
        matches!(&used, CacheUse::Replaced(why) if why.contains("MAC")),
        "{used:?}"
    );
    let (_, repaired) = cache.load_or_compile(&engine, THREATFOX, &sha).unwrap();
    assert_eq!(repaired, CacheUse::Hit);
}

#[test]
fn an_entry_from_another_cache_is_not_trusted() {
    let engine = engine();
    let sha = sha256_hex(THREATFOX);
    let theirs_dir = Folder::new();
    let theirs = CompiledCache::open(&theirs_dir.path()).unwrap();
    theirs.load_or_compile(&engine, THREATFOX, &sha).unwrap();
    let foreign = only_entry(&theirs);

    let ours_dir = Folder::new();
    let ours = CompiledCache::open(&ours_dir.path()).unwrap();
    fs::copy(&foreign, ours.dir().join(foreign.file_name().unwrap())).unwrap();
    let (_, used) = ours.load_or_compile(&engine, THREATFOX, &sha).unwrap();
    assert!(matches!(used, CacheUse::Replaced(_)), "{used:?}");
}

#[test]
fn a_file_that_is_not_an_entry_is_never_deserialized() {
    let dir = Folder::new();
    let cache = CompiledCache::open(&dir.path()).unwrap();
    let engine = engine();
    let sha = sha256_hex(THREATFOX);
    let path = cache.entry_path(&engine, &sha);
    fs::write(&path, b"\x7fELF planted machine code").unwrap();
    let (_, used) = cache.load_or_compile(&engine, THREATFOX, &sha).unwrap();
    assert_eq!(
        used,
        CacheUse::Replaced("not an enrichbox cache entry".into())
    );
}

#[test]
fn a_folder_open_to_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o775)).unwrap();
    let error = CompiledCache::open(&dir.path()).err().expect("refused");
    assert!(error.to_string().contains("chmod 700"), "{error}");
}

#[test]
fn clear_removes_the_entries_and_the_next_load_compiles() {
    let dir = Folder::new();
    let cache = CompiledCache::open(&dir.path()).unwrap();
    let engine = engine();
    let sha = sha256_hex(THREATFOX);
    cache.load_or_compile(&engine, THREATFOX, &sha).unwrap();
    let (files, bytes) = cache.clear().unwrap();
    assert_eq!(files, 1);
    assert!(bytes > 0);
    assert!(cache.entries().unwrap().is_empty());
    assert!(dir.path().join(KEY_FILE).exists(), "the key stays");
    let (_, used) = cache.load_or_compile(&engine, THREATFOX, &sha).unwrap();
    assert_eq!(used, CacheUse::Miss);
}
