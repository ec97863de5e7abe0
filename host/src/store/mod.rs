//! The embedded database: operators, managed instances and their history.
//! (The quota ledger lives in the same file, in its own `quota_` tables.)

mod instances;
mod operators;
mod policies;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;

pub use instances::{HistoryEntry, StoredInstance};
pub use operators::{Operator, Permission};
pub use policies::StoredPolicy;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no enrichbox database at {0}; create one with `enrichbox init` (or pass --db PATH)")]
    NotInitialized(PathBuf),
    #[error("database {path}: {message}")]
    Sqlite { path: String, message: String },
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
}

pub struct Database {
    path: PathBuf,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS operators (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    permissions TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS instances (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    spec TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS instance_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance TEXT NOT NULL COLLATE NOCASE,
    at TEXT NOT NULL,
    operator TEXT NOT NULL,
    action TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS policies (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    spec TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
";

impl Database {
    /// Opens an existing database; a missing file is an error that says how
    /// to create one, never a silently created empty database.
    pub fn open(path: &Path) -> Result<Database, StoreError> {
        if path != Path::new(":memory:") && !path.exists() {
            return Err(StoreError::NotInitialized(path.to_path_buf()));
        }
        Database::connect(path)
    }

    /// Creates the database (and its folder) if needed.
    pub fn create(path: &Path) -> Result<Database, StoreError> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|e| StoreError::Sqlite {
                path: path.display().to_string(),
                message: format!("cannot create the folder {}: {e}", folder.display()),
            })?;
        }
        Database::connect(path)
    }

    fn connect(path: &Path) -> Result<Database, StoreError> {
        let sql = |e: rusqlite::Error| StoreError::Sqlite {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let conn = Connection::open(path).map_err(sql)?;
        enrichbox_quota::wait_briefly_when_busy(&conn).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        Ok(Database {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one transaction: all of a change and its history, or none.
    fn transaction<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().expect("database mutex poisoned");
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.sqlite(e))?;
        let value = f(&tx)?;
        tx.commit().map_err(|e| self.sqlite(e))?;
        Ok(value)
    }

    fn sqlite(&self, e: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
