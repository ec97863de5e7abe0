//! Opening the host's small SQLite tables (result cache, circuit breaker,
//! audit trail) the same way.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

/// A shared connection to `path` (or memory) with `schema` applied.
pub fn connect(
    path: Option<&Path>,
    what: &str,
    schema: &str,
) -> Result<Arc<Mutex<Connection>>, String> {
    let label = path.map_or(":memory:".to_string(), |p| p.display().to_string());
    let fail = |e: rusqlite::Error| format!("{what} {label}: {e}");
    let conn = match path {
        Some(path) => Connection::open(path),
        None => Connection::open_in_memory(),
    }
    .map_err(fail)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(fail)?;
    if path.is_some() {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
    }
    // In WAL mode (set here and by the store), and these tables are
    // written several times per lookup; waiting for the disk on every
    // commit made a batch fsync-bound. With NORMAL a commit survives the
    // process being killed and only a power cut can lose the last ones.
    // The quota ledger keeps FULL: it is the one that must be exact.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(fail)?;
    conn.execute_batch(schema).map_err(fail)?;
    Ok(Arc::new(Mutex::new(conn)))
}
