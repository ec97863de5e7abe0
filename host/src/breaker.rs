//! A circuit breaker per instance: after a run of upstream failures the
//! instance is paused for a cool-down and lookups fail fast, so a provider
//! in trouble is not hammered and users are not kept waiting. When the
//! pause has passed the circuit is half-open: exactly one lookup, across
//! every task and process, is let through as a trial; its success closes
//! the circuit, its failure pauses the instance again at once. The state
//! lives in the database, so every process (and `instance show`) sees it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use enrichbox_quota::{Clock, SystemClock};
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

/// Why an instance is paused, and until when: through the second `until`
/// (Unix seconds), so a pause never ends before its cool-down has passed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pause {
    pub until: i64,
    pub reason: String,
}

/// The state of one instance's circuit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Circuit {
    /// Lookups go through.
    Closed,
    /// Lookups fail fast until the pause ends.
    Open(Pause),
    /// The pause has ended. With `trial_until`, a trial lookup is in
    /// progress (its claim lapses then, should its process die); without,
    /// the next lookup is the trial.
    HalfOpen {
        pause: Pause,
        trial_until: Option<i64>,
    },
}

impl Circuit {
    /// For `instance show`.
    pub fn describe(&self) -> String {
        let at = enrichbox_quota::rfc3339;
        match self {
            Circuit::Closed => "closed (lookups go through)".into(),
            Circuit::Open(p) => format!("open: paused until {}: {}", at(p.until), p.reason),
            Circuit::HalfOpen {
                pause,
                trial_until: Some(t),
            } => format!(
                "half-open: a trial lookup is in progress (until {} at the latest), others fail fast; paused because {}",
                at(*t),
                pause.reason
            ),
            Circuit::HalfOpen {
                pause,
                trial_until: None,
            } => format!(
                "half-open: the pause ended at {}; the next lookup is a trial; paused because {}",
                at(pause.until),
                pause.reason
            ),
        }
    }
}

/// Whether a lookup may ask the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// The circuit is closed.
    Go,
    /// This lookup is the one trial; pass `trial: true` to `record`.
    Trial,
    /// Fail fast: open, or another lookup's trial is in progress.
    Refused(Circuit),
}

/// What a finished lookup says about the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health<'a> {
    /// It answered (found, not found, even refused the key).
    Up,
    /// Upstream trouble: unavailable, timed out, rate limited.
    Down(&'a str),
    /// Nothing reached the provider (quota, policy, plugin failure).
    Untested,
}

/// A change of state caused by `record`, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Opened(Pause),
    Closed,
}

#[derive(Clone)]
pub struct Breaker {
    conn: Arc<Mutex<Connection>>,
    clock: Arc<dyn Clock>,
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
        Breaker::with(crate::sqlite::connect(
            Some(path),
            "circuit breaker",
            SCHEMA,
        )?)
    }

    pub fn in_memory() -> Result<Breaker, String> {
        Breaker::with(crate::sqlite::connect(None, "circuit breaker", SCHEMA)?)
    }

    fn with(conn: Arc<Mutex<Connection>>) -> Result<Breaker, String> {
        add_trial_column(&conn.lock().expect("breaker poisoned"))
            .map_err(|e| format!("circuit breaker: cannot add the trial column: {e}"))?;
        Ok(Breaker {
            conn,
            clock: Arc::new(SystemClock),
        })
    }

    /// The same breaker on another clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Breaker {
        self.clock = clock;
        self
    }

    /// The state of `instance`'s circuit.
    pub fn circuit(&self, instance: &str) -> Circuit {
        let conn = self.conn.lock().expect("breaker poisoned");
        self.read(&conn, instance)
    }

    fn read(&self, conn: &Connection, instance: &str) -> Circuit {
        let row: Option<(Option<i64>, Option<String>, Option<i64>)> = conn
            .query_row(
                "SELECT paused_until, reason, trial_until FROM circuit_breaker WHERE instance = ?1",
                [instance],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .ok()
            .flatten();
        let now = self.clock.now_unix();
        match row {
            Some((Some(until), reason, trial_until)) => {
                let pause = Pause {
                    until,
                    reason: reason.unwrap_or_default(),
                };
                if until >= now {
                    Circuit::Open(pause)
                } else {
                    Circuit::HalfOpen {
                        pause,
                        // A lapsed claim is as good as none.
                        trial_until: trial_until.filter(|t| *t >= now),
                    }
                }
            }
            _ => Circuit::Closed,
        }
    }

    /// Decides whether a lookup may go ahead. In the half-open state one
    /// caller claims the trial with a single conditional UPDATE, which the
    /// database runs atomically for every process sharing it; the claim
    /// lapses after `claim_for` (the lookup's deadline), so a process that
    /// dies mid-trial cannot keep the instance paused.
    pub fn admit(&self, instance: &str, claim_for: Duration) -> Admission {
        let conn = self.conn.lock().expect("breaker poisoned");
        let now = self.clock.now_unix();
        let claim_until = now + claim_for.as_secs_f64().ceil() as i64;
        let claimed = conn
            .execute(
                "UPDATE circuit_breaker SET trial_until = ?3
                 WHERE instance = ?1 AND paused_until IS NOT NULL AND paused_until < ?2
                   AND (trial_until IS NULL OR trial_until < ?2)",
                params![instance, now, claim_until],
            )
            .unwrap_or(0);
        if claimed == 1 {
            return Admission::Trial;
        }
        match self.read(&conn, instance) {
            Circuit::Closed => Admission::Go,
            circuit => Admission::Refused(circuit),
        }
    }

    /// Records a lookup's end; `trial` when `admit` made it the trial.
    pub fn record(
        &self,
        instance: &str,
        health: Health<'_>,
        trial: bool,
        settings: BreakerSettings,
    ) -> Option<Change> {
        let conn = self.conn.lock().expect("breaker poisoned");
        let now = self.clock.now_unix();
        let cooldown = settings.cooldown_seconds as i64;
        match health {
            Health::Up => {
                let was_paused = conn
                    .execute(
                        "DELETE FROM circuit_breaker WHERE instance = ?1 AND paused_until IS NOT NULL",
                        [instance],
                    )
                    .unwrap_or(0);
                let _ = conn.execute(
                    "DELETE FROM circuit_breaker WHERE instance = ?1",
                    [instance],
                );
                (was_paused > 0).then_some(Change::Closed)
            }
            // The trial did not test the provider: let another lookup try.
            Health::Untested if trial => {
                let _ = conn.execute(
                    "UPDATE circuit_breaker SET trial_until = NULL WHERE instance = ?1",
                    [instance],
                );
                None
            }
            Health::Untested => None,
            // One failed trial is enough: the provider is still in trouble.
            Health::Down(reason) if trial => {
                let pause = Pause {
                    until: now + cooldown,
                    reason: format!("the trial lookup after the pause failed: {reason}"),
                };
                let _ = conn.execute(
                    "INSERT INTO circuit_breaker (instance, consecutive_failures, paused_until, reason)
                     VALUES (?1, 0, ?2, ?3)
                     ON CONFLICT (instance) DO UPDATE SET consecutive_failures = 0,
                         paused_until = ?2, reason = ?3, trial_until = NULL",
                    params![instance, pause.until, pause.reason],
                );
                Some(Change::Opened(pause))
            }
            Health::Down(reason) => {
                // Only a closed circuit counts: lookups that were already in
                // flight when it opened must not extend the pause.
                let _ = conn.execute(
                    "INSERT INTO circuit_breaker (instance, consecutive_failures) VALUES (?1, 1)
                     ON CONFLICT (instance) DO UPDATE SET consecutive_failures = consecutive_failures + 1
                     WHERE paused_until IS NULL",
                    [instance],
                );
                let failures: i64 = conn
                    .query_row(
                        "SELECT consecutive_failures FROM circuit_breaker WHERE instance = ?1",
                        [instance],
                        |r| r.get(0),
                    )
                    .unwrap_or(0);
                let pause = Pause {
                    until: now + cooldown,
                    reason: format!("{failures} failed lookups in a row; last: {reason}"),
                };
                // Conditional, so that of two processes only one opens it.
                let opened = conn
                    .execute(
                        "UPDATE circuit_breaker SET paused_until = ?2, reason = ?3,
                             consecutive_failures = 0, trial_until = NULL
                         WHERE instance = ?1 AND paused_until IS NULL AND consecutive_failures >= ?4",
                        params![instance, pause.until, pause.reason, settings.failures],
                    )
                    .unwrap_or(0);
                (opened == 1).then_some(Change::Opened(pause))
            }
        }
    }
}

/// Databases made before the half-open state lack `trial_until`.
fn add_trial_column(conn: &Connection) -> rusqlite::Result<()> {
    let has = |conn: &Connection| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('circuit_breaker') WHERE name = 'trial_until'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    if has(conn)? {
        return Ok(());
    }
    match conn.execute_batch("ALTER TABLE circuit_breaker ADD COLUMN trial_until INTEGER") {
        // Another process may have added it in the meantime.
        Err(_) if has(conn)? => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests;
