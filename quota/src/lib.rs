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
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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

/// The ledger row of a reservation; stable across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReservationId(pub i64);

impl std::fmt::Display for ReservationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

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
/// counted over the current UTC day (`window` is that day; `remaining` and
/// `resets_at` are `None`). Once every reservation of the window is settled,
/// `used + given_back` is everything reserved in it.
#[derive(Debug, Clone)]
pub struct QuotaStatus {
    pub instance: String,
    pub limit: Option<Limit>,
    pub window: Option<Window>,
    /// Units of lookups that sent a request (settled or not): these never
    /// come back.
    pub used: u64,
    /// Units reserved and returned because nothing was sent.
    pub given_back: u64,
    /// Units reserved by lookups that have not sent anything yet.
    pub in_flight: u64,
    /// `limit - used - in_flight`; `None` when unlimited.
    pub remaining: Option<u64>,
    pub resets_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error(
        "quota exhausted for instance `{instance}`: {} (window {} – {}); resets at {}",
        exhausted_counts(*used, *in_flight, *limit, *requested, *period),
        rfc3339(window.start), rfc3339(window.end), rfc3339(*resets_at)
    )]
    Exhausted {
        instance: String,
        requested: u32,
        /// Units spent (sent) in the window.
        used: u64,
        /// Units reserved by lookups that have not sent or settled yet.
        in_flight: u64,
        limit: u64,
        period: Period,
        window: Window,
        resets_at: i64,
    },
    /// `message` says what was being done and what SQLite answered.
    #[error("quota ledger {path}: {message}")]
    Database { path: String, message: String },
    #[error("quota reservation {0} does not exist")]
    UnknownReservation(i64),
    #[error("quota reservation {0} was already given back; nothing may be sent on it")]
    AlreadyGivenBack(i64),
}

/// "3 of 3 units used this day", plus what is in flight and what was asked
/// for when those explain the refusal.
fn exhausted_counts(
    used: u64,
    in_flight: u64,
    limit: u64,
    requested: u32,
    period: Period,
) -> String {
    let mut text = format!("{used} of {limit} units used this {period}");
    if in_flight > 0 {
        text += &format!(", {in_flight} more reserved by lookups in flight");
    }
    if requested > 1 || used + in_flight < limit {
        text += &format!("; this lookup needs {requested}");
    }
    text
}

/// Makes `conn` wait for a locked database in short steps, for up to 30 s.
/// SQLite's own busy timeout sleeps in steps of up to 100 ms, while the
/// connections of one process hold the write lock for microseconds at a
/// time: a batch spent most of its time asleep. Shared with the host's
/// other tables in the same file.
pub fn wait_briefly_when_busy(conn: &Connection) -> rusqlite::Result<()> {
    const STEP: Duration = Duration::from_micros(100);
    const PATIENCE: Duration = Duration::from_secs(30);
    thread_local! {
        // When this thread's current wait began; SQLite calls the handler
        // with attempt 0 at the start of each wait.
        static WAITING_SINCE: std::cell::Cell<Option<std::time::Instant>> =
            const { std::cell::Cell::new(None) };
    }
    fn retry(attempt: i32) -> bool {
        let now = std::time::Instant::now();
        let since = WAITING_SINCE.with(|cell| match cell.get() {
            Some(since) if attempt > 0 => since,
            _ => {
                cell.set(Some(now));
                now
            }
        });
        if now.duration_since(since) > PATIENCE {
            return false;
        }
        std::thread::sleep(STEP);
        true
    }
    conn.busy_handler(Some(retry))
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
-- Covers the window counts, asked on every lookup: read from the index
-- alone, without visiting each row.
CREATE INDEX IF NOT EXISTS quota_reservations_counts ON quota_reservations (instance, created_at, state, units);
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
    /// Opens (creating if needed) the ledger tables in the SQLite file at
    /// `path`. The folder must exist. The file may hold other tables too.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Ledger, QuotaError> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !folder.is_dir()
        {
            return Err(QuotaError::Database {
                path: path.display().to_string(),
                message: format!(
                    "cannot open it: the folder {} does not exist",
                    folder.display()
                ),
            });
        }
        let conn =
            Connection::open(path).map_err(|e| db_error(Some(path), "opening the file", e))?;
        Ledger::with_connection(conn, Some(path.to_path_buf()), clock)
    }

    /// A private in-memory ledger (one connection, shared by the clones).
    pub fn open_in_memory(clock: Arc<dyn Clock>) -> Result<Ledger, QuotaError> {
        let conn = Connection::open_in_memory().map_err(|e| db_error(None, "opening", e))?;
        Ledger::with_connection(conn, None, clock)
    }

    fn with_connection(
        conn: Connection,
        path: Option<PathBuf>,
        clock: Arc<dyn Clock>,
    ) -> Result<Ledger, QuotaError> {
        let fail = |what| on_error(path.as_deref(), what);
        // Racing writers wait for each other instead of failing.
        wait_briefly_when_busy(&conn).map_err(fail("setting the busy handler"))?;
        if path.is_some() {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(fail("switching to WAL mode"))?;
        }
        // Every commit reaches the disk: a `sent` mark must survive power loss.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(fail("setting synchronous=FULL"))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(fail("enabling foreign keys"))?;
        conn.execute_batch(SCHEMA)
            .map_err(fail("creating the quota tables"))?;
        Ok(Ledger {
            inner: Arc::new(Inner {
                path,
                conn: Mutex::new(conn),
                clock,
            }),
        })
    }

    /// The file, or `None` for an in-memory ledger.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic elsewhere cannot leave a transaction open (it rolls back on
        // drop), so the connection stays usable.
        self.inner
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn failed(&self, what: &'static str) -> impl Fn(rusqlite::Error) -> QuotaError + '_ {
        on_error(self.inner.path.as_deref(), what)
    }

    /// Takes `units` for `instance`, or refuses with the counts and the reset
    /// time. `expires_in` bounds how long the reservation may stay unsettled
    /// before `recover_expired` settles it; it must outlast the lookup.
    pub fn reserve(
        &self,
        instance: &str,
        limit: Option<Limit>,
        units: u32,
        expires_in: Duration,
    ) -> Result<Reservation, QuotaError> {
        let now = self.inner.clock.now_unix();
        let window = window_of(limit.map_or(Period::Day, |l| l.per), now);
        let fail = self.failed("reserving units");
        let mut conn = self.conn();
        // IMMEDIATE takes the write lock before the count, so no other
        // connection can reserve between our check and our insert.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;
        if let Some(limit) = limit {
            let counts = window_counts(&tx, instance, window).map_err(&fail)?;
            if counts.used + counts.in_flight + u64::from(units) > limit.units {
                return Err(QuotaError::Exhausted {
                    instance: instance.to_string(),
                    requested: units,
                    used: counts.used,
                    in_flight: counts.in_flight,
                    limit: limit.units,
                    period: limit.per,
                    window,
                    resets_at: window.end,
                });
            }
        }
        let expires_at = now.saturating_add(whole_seconds(expires_in));
        tx.execute(
            "INSERT INTO quota_reservations (instance, units, created_at, expires_at, state)
             VALUES (?1, ?2, ?3, ?4, 'reserved')",
            params![instance, units, now, expires_at],
        )
        .map_err(&fail)?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(&fail)?;
        Ok(Reservation {
            id: ReservationId(id),
            instance: instance.to_string(),
            units,
            window,
        })
    }

    /// Records, durably, that a request is about to leave on this
    /// reservation. Idempotent; refused once the reservation was given back
    /// (the request must then not leave).
    pub fn mark_sent(&self, id: ReservationId) -> Result<(), QuotaError> {
        let fail = self.failed("marking a reservation sent");
        let conn = self.conn();
        let changed = conn
            .execute(
                "UPDATE quota_reservations SET state = 'sent' WHERE id = ?1 AND state IN ('reserved', 'sent')",
                [id.0],
            )
            .map_err(&fail)?;
        if changed == 1 {
            return Ok(());
        }
        match state_of(&conn, id).map_err(&fail)?.as_deref() {
            Some("spent") => Ok(()),
            Some("given_back") => Err(QuotaError::AlreadyGivenBack(id.0)),
            _ => Err(QuotaError::UnknownReservation(id.0)),
        }
    }

    /// Ends a reservation: spent if anything was sent, given back otherwise.
    /// Settling twice gives the same answer and counts nothing twice.
    pub fn settle(&self, id: ReservationId) -> Result<Settlement, QuotaError> {
        let now = self.inner.clock.now_unix();
        let fail = self.failed("settling a reservation");
        let conn = self.conn();
        // One conditional UPDATE: only an open reservation changes, so a
        // second settle (or a racing recovery) finds nothing to do.
        conn.execute(
            "UPDATE quota_reservations
             SET state = CASE state WHEN 'sent' THEN 'spent' ELSE 'given_back' END, settled_at = ?2
             WHERE id = ?1 AND state IN ('reserved', 'sent')",
            params![id.0, now],
        )
        .map_err(&fail)?;
        match state_of(&conn, id).map_err(&fail)?.as_deref() {
            Some("spent") => Ok(Settlement::Spent),
            Some("given_back") => Ok(Settlement::GivenBack),
            _ => Err(QuotaError::UnknownReservation(id.0)),
        }
    }

    /// Settles what dead processes left behind: past their expiry, sent
    /// reservations are spent and the others given back. Returns how many.
    /// Reservations not yet expired are left alone (their lookup may live).
    pub fn recover_expired(&self) -> Result<usize, QuotaError> {
        let now = self.inner.clock.now_unix();
        let conn = self.conn();
        conn.execute(
            "UPDATE quota_reservations
             SET state = CASE state WHEN 'sent' THEN 'spent' ELSE 'given_back' END, settled_at = ?1
             WHERE state IN ('reserved', 'sent') AND expires_at <= ?1",
            [now],
        )
        .map_err(self.failed("recovering expired reservations"))
    }

    /// Counts in the current window of `limit`'s period; for an unlimited
    /// instance, in the current UTC day (`resets_at` and `remaining` are
    /// then `None`).
    pub fn status(&self, instance: &str, limit: Option<Limit>) -> Result<QuotaStatus, QuotaError> {
        let now = self.inner.clock.now_unix();
        let window = window_of(limit.map_or(Period::Day, |l| l.per), now);
        let counts = window_counts(&self.conn(), instance, window)
            .map_err(self.failed("reading quota status"))?;
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

    /// Units still to be had in the current window; `None` when unlimited.
    pub fn remaining(
        &self,
        instance: &str,
        limit: Option<Limit>,
    ) -> Result<Option<u64>, QuotaError> {
        // Unlimited needs no counting, and this is asked on every lookup.
        if limit.is_none() {
            return Ok(None);
        }
        Ok(self.status(instance, limit)?.remaining)
    }
}

/// Rounded up, so a sub-second expiry still lasts past `now`.
fn whole_seconds(d: Duration) -> i64 {
    let secs = d
        .as_secs()
        .saturating_add(u64::from(d.subsec_nanos() > 0))
        .max(1);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

struct Counts {
    used: u64,
    given_back: u64,
    in_flight: u64,
}

/// A reservation counts in the window its `created_at` falls in, whatever
/// the period was then: a changed limit applies to the current window.
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
    conn.query_row(
        "SELECT state FROM quota_reservations WHERE id = ?1",
        [id.0],
        |r| r.get(0),
    )
    .optional()
}

fn on_error<'a>(
    path: Option<&'a Path>,
    what: &'static str,
) -> impl Fn(rusqlite::Error) -> QuotaError + 'a {
    move |e| db_error(path, what, e)
}

fn db_error(path: Option<&Path>, what: &str, e: rusqlite::Error) -> QuotaError {
    QuotaError::Database {
        path: path.map_or(":memory:".into(), |p| p.display().to_string()),
        message: format!("{what} failed: {e}"),
    }
}

#[cfg(test)]
mod tests;
