//! Cached results per (instance, configuration digest, indicator), so a
//! repeated lookup costs no quota. Only successful lookups are cached: an
//! error is never remembered as "not found".

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::outcome::LookupOutcome;

/// Default time a cached result stays valid.
pub const DEFAULT_TTL_SECONDS: u64 = 24 * 3600;

#[derive(Clone)]
pub struct ResultCache {
    conn: Arc<Mutex<Connection>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS result_cache (
    instance TEXT NOT NULL COLLATE NOCASE,
    config_digest TEXT NOT NULL,
    indicator TEXT NOT NULL,
    stored_at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (instance, config_digest, indicator)
);
";

impl ResultCache {
    pub fn open(path: &Path) -> Result<ResultCache, String> {
        Ok(ResultCache {
            conn: crate::sqlite::connect(Some(path), "result cache", SCHEMA)?,
        })
    }

    pub fn in_memory() -> Result<ResultCache, String> {
        Ok(ResultCache {
            conn: crate::sqlite::connect(None, "result cache", SCHEMA)?,
        })
    }

    /// A fresh-enough result, marked as cached with its age.
    pub fn get(
        &self,
        instance: &str,
        digest: &str,
        indicator: &str,
        ttl_seconds: u64,
    ) -> Option<LookupOutcome> {
        let conn = self.conn.lock().expect("cache poisoned");
        let row: Option<(i64, String)> = conn
            .query_row(
                "SELECT stored_at, outcome FROM result_cache WHERE instance = ?1 AND config_digest = ?2 AND indicator = ?3",
                params![instance, digest, indicator],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .ok()
            .flatten();
        let (stored_at, json) = row?;
        let age = (crate::clock::now_unix() - stored_at).max(0) as u64;
        if age >= ttl_seconds {
            return None;
        }
        let mut outcome: LookupOutcome = serde_json::from_str(&json).ok()?;
        outcome.cached = true;
        outcome.cache_age_seconds = Some(age);
        Some(outcome)
    }

    /// Remembers a successful outcome; failures are never stored.
    pub fn put(&self, digest: &str, outcome: &LookupOutcome) {
        if outcome.error.is_some() || outcome.verdict.is_none() {
            return;
        }
        let json = serde_json::to_string(outcome).expect("an outcome serializes");
        let conn = self.conn.lock().expect("cache poisoned");
        // Older entries of this instance under another configuration are dead.
        let _ = conn.execute(
            "DELETE FROM result_cache WHERE instance = ?1 AND config_digest <> ?2",
            params![outcome.instance, digest],
        );
        let _ = conn.execute(
            "INSERT OR REPLACE INTO result_cache (instance, config_digest, indicator, stored_at, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![outcome.instance, digest, outcome.indicator, crate::clock::now_unix(), json],
        );
    }
}

/// What a cached result depends on: the plugin, where it asks, and with
/// which key (hashed; the key itself is never stored).
pub fn config_digest(plugin_sha256: &str, base_url: &str, secret: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(plugin_sha256.as_bytes());
    hasher.update([0]);
    hasher.update(base_url.as_bytes());
    hasher.update([0]);
    hasher.update(Sha256::digest(secret.unwrap_or("").as_bytes()));
    hex::encode(hasher.finalize())
}
