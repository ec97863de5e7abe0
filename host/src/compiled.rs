//! Compiled components kept on disk, so a process starts in milliseconds
//! instead of compiling its plugins again.
//!
//! Loading compiled code is trusting it: wasmtime runs whatever machine code
//! the file holds. So an entry is only loaded if it carries a MAC made with
//! a key that lives in the cache folder and never leaves it, and the folder
//! must be ours and closed to everyone else. A file that is corrupt, was
//! written by another key (copied from elsewhere) or for another wasmtime is
//! recompiled and replaced, never deserialized.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"EBXCWSM1";
const MAC_LEN: usize = 32;
const KEY_FILE: &str = "cache.key";
const EXTENSION: &str = "cwasm";

/// A cache folder that passed the ownership checks, with its key.
#[derive(Clone)]
pub struct CompiledCache {
    dir: PathBuf,
    key: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot use the compiled-component cache {dir}: {message}")]
    Unusable { dir: String, message: String },
    #[error("cannot clear the compiled-component cache {dir}: {message}")]
    Clear { dir: String, message: String },
}

/// What happened when a component was looked up in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheUse {
    /// Loaded from a verified entry; nothing was compiled.
    Hit,
    /// Compiled and stored.
    Miss,
    /// An entry was there but not trusted; it was compiled and replaced.
    Replaced(String),
}

/// One entry, for `enrichbox cache show`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CacheEntry {
    pub file: String,
    pub bytes: u64,
}

impl CompiledCache {
    /// `$ENRICHBOX_CACHE_DIR`'s usual home: `$XDG_CACHE_HOME/enrichbox/components`,
    /// else `~/.cache/enrichbox/components`.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("enrichbox").join("components"))
    }

    /// Opens (creating, mode 0700) the folder and its key. Refuses a folder
    /// owned by someone else or open to others: anyone who can write there
    /// could make this process run their code.
    pub fn open(dir: &Path) -> Result<CompiledCache, CacheError> {
        let unusable = |message: String| CacheError::Unusable {
            dir: dir.display().to_string(),
            message,
        };
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| unusable(format!("cannot create it: {e}")))?;
        }
        let meta = fs::symlink_metadata(dir).map_err(|e| unusable(e.to_string()))?;
        if !meta.is_dir() {
            return Err(unusable("it is not a folder".into()));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(unusable(format!(
                "it belongs to user id {}, not to you ({me})",
                meta.uid()
            )));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(unusable(format!(
                "its permissions are {:o}; it must be closed to others (chmod 700)",
                meta.mode() & 0o777
            )));
        }
        let key = read_or_create_key(dir).map_err(unusable)?;
        Ok(CompiledCache {
            dir: dir.to_path_buf(),
            key,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The component for `bytes` (whose SHA-256 is `sha256`), from the cache
    /// when a trusted entry exists, else compiled and stored.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256: &str,
    ) -> wasmtime::Result<(Component, CacheUse)> {
        let path = self.entry_path(engine, sha256);
        let mut outcome = CacheUse::Miss;
        match fs::read(&path) {
            Ok(stored) => match self.verified_payload(&path, &stored) {
                Ok(payload) => {
                    // SAFETY: the payload carries a valid MAC under this
                    // cache's private key, so this host serialized it; and
                    // wasmtime checks it was made by a compatible engine.
                    match unsafe { Component::deserialize(engine, payload) } {
                        Ok(component) => return Ok((component, CacheUse::Hit)),
                        Err(e) => outcome = CacheUse::Replaced(format!("{e:#}")),
                    }
                }
                Err(why) => outcome = CacheUse::Replaced(why),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => outcome = CacheUse::Replaced(format!("unreadable: {e}")),
        }
        let component = Component::new(engine, bytes)?;
        // A cache that cannot be written only costs time; the component is good.
        let _ = component
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|payload| self.store(&path, &payload));
        Ok((component, outcome))
    }

    /// Deletes every entry (the key stays). Returns (files, bytes) removed.
    pub fn clear(&self) -> Result<(usize, u64), CacheError> {
        clear_dir(&self.dir)
    }

    pub fn entries(&self) -> Result<Vec<CacheEntry>, String> {
        entries_in(&self.dir)
    }

    /// `<component sha256>-<engine compatibility hash>.cwasm`: another
    /// wasmtime, another target or other engine settings get another file.
    fn entry_path(&self, engine: &Engine, sha256: &str) -> PathBuf {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        self.dir
            .join(format!("{sha256}-{:016x}.{EXTENSION}", hasher.finish()))
    }

    fn mac(&self, name: &Path, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        // Binding the file name stops a valid entry being renamed to
        // stand in for another component.
        let file = name
            .file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or(b"");
        mac.update(&(file.len() as u64).to_le_bytes());
        mac.update(file);
        mac.update(payload);
        mac
    }

    fn verified_payload<'a>(&self, path: &Path, stored: &'a [u8]) -> Result<&'a [u8], String> {
        let header = MAGIC.len() + MAC_LEN;
        if stored.len() < header || &stored[..MAGIC.len()] != MAGIC {
            return Err("not an enrichbox cache entry".into());
        }
        let (tag, payload) = stored[MAGIC.len()..].split_at(MAC_LEN);
        self.mac(path, payload).verify_slice(tag).map_err(|_| {
            "its MAC does not verify (corrupt, or written by another key)".to_string()
        })?;
        Ok(payload)
    }

    /// Writes a temporary file and renames it over the entry, so readers
    /// see the old entry or the new one, never half of one.
    fn store(&self, path: &Path, payload: &[u8]) -> Result<(), String> {
        let tag = self.mac(path, payload).finalize().into_bytes();
        let mut file = tempfile::Builder::new()
            .prefix(".tmp")
            .tempfile_in(&self.dir)
            .map_err(|e| e.to_string())?;
        file.write_all(MAGIC).map_err(|e| e.to_string())?;
        file.write_all(&tag).map_err(|e| e.to_string())?;
        file.write_all(payload).map_err(|e| e.to_string())?;
        file.as_file().sync_all().map_err(|e| e.to_string())?;
        file.persist(path).map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Deletes the entries in `dir` (and temporary files of interrupted
/// writes), keeping the key. Needs no trust in the folder: deleting is how
/// a folder that failed the checks is cleaned up.
pub fn clear_dir(dir: &Path) -> Result<(usize, u64), CacheError> {
    let failed = |message: String| CacheError::Clear {
        dir: dir.display().to_string(),
        message,
    };
    let mut removed = (0, 0);
    for entry in entries_in(dir).map_err(failed)? {
        let path = dir.join(&entry.file);
        fs::remove_file(&path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
        removed.0 += 1;
        removed.1 += entry.bytes;
    }
    Ok(removed)
}

/// The entries in `dir`, sorted by name.
pub fn entries_in(dir: &Path) -> Result<Vec<CacheEntry>, String> {
    let mut entries = Vec::new();
    let listing = fs::read_dir(dir).map_err(|e| e.to_string())?;
    for item in listing {
        let item = item.map_err(|e| e.to_string())?;
        let name = item.file_name().to_string_lossy().into_owned();
        let is_entry = Path::new(&name).extension().is_some_and(|e| e == EXTENSION);
        // Temporary files of an interrupted write count as entries too.
        if is_entry || (name.starts_with(".tmp") && !name.starts_with(".tmp-key")) {
            let bytes = item.metadata().map(|m| m.len()).unwrap_or(0);
            entries.push(CacheEntry { file: name, bytes });
        }
    }
    entries.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(entries)
}

/// The cache's secret: 32 random bytes in a 0600 file, created once.
fn read_or_create_key(dir: &Path) -> Result<[u8; 32], String> {
    let path = dir.join(KEY_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            let meta = fs::metadata(&path).map_err(|e| e.to_string())?;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(format!("{} is readable by others", path.display()));
            }
            bytes
                .try_into()
                .map_err(|_| format!("{} is not a 32-byte key; delete it", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::getrandom(&mut key).map_err(|e| format!("no randomness: {e}"))?;
            // Written whole under a temporary name (0600), then linked into
            // place only if no other process got there first.
            let mut file = tempfile::Builder::new()
                .prefix(".tmp-key")
                .tempfile_in(dir)
                .map_err(|e| e.to_string())?;
            file.write_all(&key).map_err(|e| e.to_string())?;
            file.as_file().sync_all().map_err(|e| e.to_string())?;
            match file.persist_noclobber(&path) {
                Ok(_) => Ok(key),
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                    read_or_create_key(dir)
                }
                Err(e) => Err(format!("cannot create {}: {}", path.display(), e.error)),
            }
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
#[path = "compiled_tests.rs"]
mod tests;
