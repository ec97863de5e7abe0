//! Opening the host's small SQLite tables (result cache, circuit breaker,
//! audit trail) the same way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use rusqlite::Connection;

/// A connection to `path` (or memory) with `schema` applied. Every table
/// of one database file in this process shares one connection: separate
/// connections to one file wait on each other's write locks (SQLite's busy
/// handler sleeps for milliseconds) and throw away each other's page cache
/// on every commit, which made a batch run mostly waiting.
pub fn connect(
    path: Option<&Path>,
    what: &str,
    schema: &str,
) -> Result<Arc<Mutex<Connection>>, String> {
    let label = path.map_or(":memory:".to_string(), |p| p.display().to_string());
    let fail = |e: rusqlite::Error| format!("{what} {label}: {e}");
    let Some(path) = path else {
        let conn = open(None).map_err(fail)?;
        conn.execute_batch(schema).map_err(fail)?;
        return Ok(Arc::new(Mutex::new(conn)));
    };
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    shared.retain(|_, conn| conn.strong_count() > 0);
    let conn = match shared.get(&key).and_then(Weak::upgrade) {
        Some(conn) => conn,
        None => {
            let conn = Arc::new(Mutex::new(open(Some(path)).map_err(fail)?));
            // The file exists now: key it by its canonical name.
            let key = std::fs::canonicalize(path).unwrap_or(key);
            shared.insert(key, Arc::downgrade(&conn));
            conn
        }
    };
    drop(shared);
    conn.lock()
        .unwrap_or_else(|e| e.into_inner())
        .execute_batch(schema)
        .map_err(fail)?;
    Ok(conn)
}

type Registry = HashMap<PathBuf, Weak<Mutex<Connection>>>;
static SHARED: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);

fn open(path: Option<&Path>) -> rusqlite::Result<Connection> {
    let conn = match path {
        Some(path) => Connection::open(path),
        None => Connection::open_in_memory(),
    }?;
    enrichbox_quota::wait_briefly_when_busy(&conn)?;
    if path.is_some() {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    // In WAL mode (set here and by the store), and these tables are
    // written several times per lookup; waiting for the disk on every
    // commit made a batch fsync-bound. With NORMAL a commit survives the
    // process being killed and only a power cut can lose the last ones.
    // The quota ledger keeps FULL: it is the one that must be exact.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}
