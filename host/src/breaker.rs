//! A circuit breaker per instance: after a run of upstream failures the
//! instance is paused for a cool-down and lookups fail fast, so a provider
//! in trouble is not hammered and users are not kept waiting. The state
//! lives in the database, so every process (and `instance show`) sees it.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

/// Consecutive failed lookups that open the circuit, and the pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    pub failures: u32,
    pub cooldown_seconds: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failures: 5,
            cooldown_seconds: 60,
        }
    }
}

/// Why an instance is paused, and until when (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pause {
    pub until: i64,
    pub reason: String,
}

#[derive(Clone)]
pub struct Breaker {
    conn: Arc<Mutex<Connection>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS circuit_breaker (
    instance TEXT PRIMARY KEY COLLATE NOCASE,
    consecutive_failures INTEGER NOT NULL,
    paused_until INTEGER,
    reason TEXT
);
";

impl Breaker {
    pub fn open(path: &Path) -> Result<Breaker, String> {
        Ok(Breaker {
            conn: crate::sqlite::connect(Some(path), "circuit breaker", SCHEMA)?,
        })
    }

    pub fn in_memory() -> Result<Breaker, String> {
        Ok(Breaker {
            conn: crate::sqlite::connect(None, "circuit breaker", SCHEMA)?,
        })
    }

    /// The pause in force for `instance`, if any. Once it has passed, the
    /// next lookup goes through as a trial.
    pub fn pause(&self, instance: &str) -> Option<Pause> {
        let conn = self.conn.lock().expect("breaker poisoned");
        let row: Option<(Option<i64>, Option<String>)> = conn
            .query_row(
                "SELECT paused_until, reason FROM circuit_breaker WHERE instance = ?1",
                [instance],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .ok()
            .flatten();
        match row {
            Some((Some(until), reason)) if until > crate::clock::now_unix() => Some(Pause {
                until,
                reason: reason.unwrap_or_default(),
            }),
            _ => None,
        }
    }

    /// Records a lookup's end. Returns the new pause when this failure
    /// opened the circuit.
    pub fn record(
        &self,
        instance: &str,
        failure: Option<&str>,
        settings: BreakerSettings,
    ) -> Option<Pause> {
        let conn = self.conn.lock().expect("breaker poisoned");
        let Some(reason) = failure else {
            let _ = conn.execute(
                "DELETE FROM circuit_breaker WHERE instance = ?1",
                [instance],
            );
            return None;
        };
        let _ = conn.execute(
            "INSERT INTO circuit_breaker (instance, consecutive_failures) VALUES (?1, 1)
             ON CONFLICT (instance) DO UPDATE SET consecutive_failures = consecutive_failures + 1",
            [instance],
        );
        let failures: i64 = conn
            .query_row(
                "SELECT consecutive_failures FROM circuit_breaker WHERE instance = ?1",
                [instance],
                |r| r.get(0),
            )
            .unwrap_or(0);
        if failures < i64::from(settings.failures) {
            return None;
        }
        let pause = Pause {
            until: crate::clock::now_unix() + settings.cooldown_seconds as i64,
            reason: format!("{failures} failed lookups in a row; last: {reason}"),
        };
        let _ = conn.execute(
            "UPDATE circuit_breaker SET paused_until = ?2, reason = ?3, consecutive_failures = 0 WHERE instance = ?1",
            params![instance, pause.until, pause.reason],
        );
        Some(pause)
    }
}
