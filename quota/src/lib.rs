//! The quota ledger: how many units each instance may spend per UTC calendar
//! window, and what it has spent, kept in SQLite so that restarts, races and
//! crashes neither lose nor double a unit.
//!
//! A lookup's life in the ledger:
//! 1. `reserve` before the plugin runs: refused when the units are not there;
//!    checked and recorded in one `BEGIN IMMEDIATE` transaction, so racing
//!    reservations (threads or processes) are exact.
//! 2. `mark_sent`, committed before each request leaves.
//! 3. `settle` when the lookup ends: sent means spent, otherwise given back.
//!
//! A process that dies between 1 and 3 leaves `reserved` or `sent` rows;
//! `recover_expired` settles them once their expiry passes (nothing can be
//! sent after a lookup's deadline, which the expiry exceeds).

mod calendar;
mod clock;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

pub use calendar::{Period, Window, civil_from_days, days_from_civil, rfc3339, window_of};
pub use clock::{Clock, ManualClock, SystemClock};

/// `units` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub units: u64,
    pub per: Period,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReservationId(pub i64);

#[derive(Debug, Clone)]
pub struct Reservation {
    pub id: ReservationId,
    pub instance: String,
    pub units: u32,
    pub window: Window,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    Spent,
    GivenBack,
}

/// An instance's counts in its current window. Unlimited instances are
/// counted over the current UTC day.
#[derive(Debug, Clone)]
pub struct QuotaStatus {
    pub instance: String,
    pub limit: Option<Limit>,
    pub window: Option<Window>,
    /// Units of lookups that sent a request (settled or not).
    pub used: u64,
    /// Units reserved and returned because nothing was sent.
    pub given_back: u64,
    /// Units reserved by lookups that have not sent anything yet.
    pub in_flight: u64,
    /// `None` when unlimited.
    pub remaining: Option<u64>,
    pub resets_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error(
        "quota exhausted for instance `{instance}`: {taken} of {limit} units used this {period} \
         ({requested} needed; window {} – {}); resets at {}",
        rfc3339(window.start), rfc3339(window.end), rfc3339(*resets_at)
    )]
    Exhausted {
        instance: String,
        requested: u32,
        /// Spent and in-flight units together.
        taken: u64,
        limit: u64,
        period: Period,
        window: Window,
        resets_at: i64,
    },
    #[error("quota ledger {path}: {message}")]
    Database { path: String, message: String },
    #[error("quota reservation {0} does not exist")]
    UnknownReservation(i64),
    #[error("quota reservation {0} was already given back; nothing may be sent on it")]
    AlreadyGivenBack(i64),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS quota_reservations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance TEXT NOT NULL COLLATE NOCASE,
    units INTEGER NOT NULL CHECK (units >= 0),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('reserved', 'sent', 'spent', 'given_back')),
    settled_at INTEGER
);
CREATE INDEX IF NOT EXISTS quota_reservations_by_time ON quota_reservations (instance, created_at);
";

/// Cheap to clone; every clone shares one connection. Separate `open`s of
/// the same file are separate connections, exact against each other too.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    path: Option<PathBuf>,
    conn: Mutex<Connection>,
    clock: Arc<dyn Clock>,
}

impl Ledger {
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Ledger, QuotaError> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !folder.is_dir()
        {
            return Err(QuotaError::Database {
                path: path.display().to_string(),
                message: format!("the folder {} does not exist", folder.display()),
            });
        }
        let conn = Connection::open(path).map_err(|e| db_error(Some(path), e))?;
        Ledger::with_connection(conn, Some(path.to_path_buf()), clock)
    }

    pub fn open_in_memory(clock: Arc<dyn Clock>) -> Result<Ledger, QuotaError> {
        let conn = Connection::open_in_memory().map_err(|e| db_error(None, e))?;
        Ledger::with_connection(conn, None, clock)
    }

    fn with_connection(conn: Connection, path: Option<PathBuf>, clock: Arc<dyn Clock>) -> Result<Ledger, QuotaError> {
        let fail = |e| db_error(path.as_deref(), e);
        conn.busy_timeout(Duration::from_secs(30)).map_err(fail)?;
        if path.is_some() {
            conn.pragma_update(None, "journal_mode", "WAL").map_err(fail)?;
        }
        conn.execute_batch(SCHEMA).map_err(fail)?;
        Ok(Ledger {
            inner: Arc::new(Inner {
                path,
                conn: Mutex::new(conn),
                clock,
            }),
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    fn error(&self, e: rusqlite::Error) -> QuotaError {
        db_error(self.inner.path.as_deref(), e)
    }

    /// Takes `units` for `instance`, or refuses with the counts and the reset
    /// time. `expires_in` bounds how long the reservation may stay unsettled.
    pub fn reserve(
        &self,
        instance: &str,
        limit: Option<Limit>,
        units: u32,
        expires_in: Duration,
    ) -> Result<Reservation, QuotaError> {
        let now = self.inner.clock.now_unix();
        let window = window_of(limit.map_or(Period::Day, |l| l.per), now);
        let mut conn = self.inner.conn.lock().expect("ledger mutex poisoned");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.error(e))?;
        if let Some(limit) = limit {
            let counts = window_counts(&tx, instance, window).map_err(|e| self.error(e))?;
            let taken = counts.used + counts.in_flight;
            if taken + u64::from(units) > limit.units {
                return Err(QuotaError::Exhausted {
                    instance: instance.to_string(),
                    requested: units,
                    taken,
                    limit: limit.units,
                    period: limit.per,
                    window,
                    resets_at: window.end,
                });
            }
        }
        let expires_at = now + expires_in.as_secs().max(1) as i64;
        tx.execute(
            "INSERT INTO quota_reservations (instance, units, created_at, expires_at, state)
             VALUES (?1, ?2, ?3, ?4, 'reserved')",
            params![instance, units, now, expires_at],
        )
        .map_err(|e| self.error(e))?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(|e| self.error(e))?;
        Ok(Reservation {
            id: ReservationId(id),
            instance: instance.to_string(),
            units,
            window,
        })
    }

    /// Records, durably, that a request is about to leave on this reservation.
    pub fn mark_sent(&self, id: ReservationId) -> Result<(), QuotaError> {
        let conn = self.inner.conn.lock().expect("ledger mutex poisoned");
        let changed = conn
            .execute(
                "UPDATE quota_reservations SET state = 'sent' WHERE id = ?1 AND state IN ('reserved', 'sent')",
                [id.0],
            )
            .map_err(|e| self.error(e))?;
        if changed == 1 {
            return Ok(());
        }
        match state_of(&conn, id).map_err(|e| self.error(e))?.as_deref() {
            Some("spent") => Ok(()),
            Some("given_back") => Err(QuotaError::AlreadyGivenBack(id.0)),
            _ => Err(QuotaError::UnknownReservation(id.0)),
        }
    }

    /// Ends a reservation: spent if anything was sent, given back otherwise.
    /// Settling twice gives the same answer and counts nothing twice.
    pub fn settle(&self, id: ReservationId) -> Result<Settlement, QuotaError> {
        let now = self.inner.clock.now_unix();
        let conn = self.inner.conn.lock().expect("ledger mutex poisoned");
        conn.execute(
            "UPDATE quota_reservations
             SET state = CASE state WHEN 'sent' THEN 'spent' ELSE 'given_back' END, settled_at = ?2
             WHERE id = ?1 AND state IN ('reserved', 'sent')",
            params![id.0, now],
        )
        .map_err(|e| self.error(e))?;
        match state_of(&conn, id).map_err(|e| self.error(e))?.as_deref() {
            Some("spent") => Ok(Settlement::Spent),
            Some("given_back") => Ok(Settlement::GivenBack),
            _ => Err(QuotaError::UnknownReservation(id.0)),
        }
    }

    /// Settles what dead processes left behind: past their expiry, sent
    /// reservations are spent and the others given back. Returns how many.
    pub fn recover_expired(&self) -> Result<usize, QuotaError> {
        let now = self.inner.clock.now_unix();
        let conn = self.inner.conn.lock().expect("ledger mutex poisoned");
        conn.execute(
            "UPDATE quota_reservations
             SET state = CASE state WHEN 'sent' THEN 'spent' ELSE 'given_back' END, settled_at = ?1
             WHERE state IN ('reserved', 'sent') AND expires_at <= ?1",
            [now],
        )
        .map_err(|e| self.error(e))
    }

    pub fn status(&self, instance: &str, limit: Option<Limit>) -> Result<QuotaStatus, QuotaError> {
        let now = self.inner.clock.now_unix();
        let window = window_of(limit.map_or(Period::Day, |l| l.per), now);
        let conn = self.inner.conn.lock().expect("ledger mutex poisoned");
        let counts = window_counts(&conn, instance, window).map_err(|e| self.error(e))?;
        Ok(QuotaStatus {
            instance: instance.to_string(),
            limit,
            window: Some(window),
            used: counts.used,
            given_back: counts.given_back,
            in_flight: counts.in_flight,
            remaining: limit.map(|l| l.units.saturating_sub(counts.used + counts.in_flight)),
            resets_at: limit.map(|_| window.end),
        })
    }

    pub fn remaining(&self, instance: &str, limit: Option<Limit>) -> Result<Option<u64>, QuotaError> {
        Ok(self.status(instance, limit)?.remaining)
    }
}

struct Counts {
    used: u64,
    given_back: u64,
    in_flight: u64,
}

fn window_counts(conn: &Connection, instance: &str, window: Window) -> rusqlite::Result<Counts> {
    conn.query_row(
        "SELECT
            COALESCE(SUM(CASE WHEN state IN ('sent', 'spent') THEN units END), 0),
            COALESCE(SUM(CASE WHEN state = 'given_back' THEN units END), 0),
            COALESCE(SUM(CASE WHEN state = 'reserved' THEN units END), 0)
         FROM quota_reservations WHERE instance = ?1 AND created_at >= ?2 AND created_at < ?3",
        params![instance, window.start, window.end],
        |r| {
            Ok(Counts {
                used: r.get::<_, i64>(0)? as u64,
                given_back: r.get::<_, i64>(1)? as u64,
                in_flight: r.get::<_, i64>(2)? as u64,
            })
        },
    )
}

fn state_of(conn: &Connection, id: ReservationId) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT state FROM quota_reservations WHERE id = ?1", [id.0], |r| r.get(0))
        .optional()
}

fn db_error(path: Option<&Path>, e: rusqlite::Error) -> QuotaError {
    QuotaError::Database {
        path: path.map_or(":memory:".into(), |p| p.display().to_string()),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests;
