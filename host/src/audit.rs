//! The audit trail: every capability a plugin uses, as one JSON object per
//! event, tied together by a lookup id. Secrets are redacted before a record
//! reaches any sink.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Value, json};

use crate::secret::Secret;

/// One event. `detail` holds the event's own fields.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct AuditRecord {
    pub ts: String,
    pub instance: String,
    pub plugin_sha256: String,
    pub lookup_id: String,
    /// Who ran the command (the operator), when the host knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    pub event: String,
    pub detail: Value,
}

/// Where records go.
pub trait AuditSink: Send + Sync {
    fn write(&self, record: &AuditRecord);
}

/// Appends JSON lines to a file.
pub struct FileSink {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl FileSink {
    pub fn open(path: &Path) -> std::io::Result<FileSink> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(FileSink {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }
}

impl AuditSink for FileSink {
    fn write(&self, record: &AuditRecord) {
        let mut line = serde_json::to_string(record).expect("a record serializes");
        line.push('\n');
        let mut file = self.file.lock().expect("audit file poisoned");
        if let Err(e) = file.write_all(line.as_bytes()) {
            crate::warn_once(&format!(
                "cannot write the audit file {}: {e}",
                self.path.display()
            ));
        }
    }
}

/// Keeps records in memory, for embedders and tests.
#[derive(Default, Clone)]
pub struct MemorySink(Arc<Mutex<Vec<AuditRecord>>>);

impl MemorySink {
    pub fn records(&self) -> Vec<AuditRecord> {
        self.0.lock().expect("audit memory poisoned").clone()
    }
}

impl AuditSink for MemorySink {
    fn write(&self, record: &AuditRecord) {
        self.0
            .lock()
            .expect("audit memory poisoned")
            .push(record.clone());
    }
}

/// The sinks of a host; cheap to clone. Without sinks nothing is recorded.
#[derive(Clone, Default)]
pub struct Audit {
    sinks: Vec<Arc<dyn AuditSink>>,
    operator: Option<String>,
}

impl Audit {
    pub fn with_sink(mut self, sink: Arc<dyn AuditSink>) -> Audit {
        self.sinks.push(sink);
        self
    }

    /// Every record names `operator` as the one who acted.
    pub fn acting_as(mut self, operator: &str) -> Audit {
        self.operator = Some(operator.to_string());
        self
    }

    pub fn is_enabled(&self) -> bool {
        !self.sinks.is_empty()
    }

    /// The recorder for one lookup (or one `describe` / `test-connection`).
    pub fn scope(&self, instance: &str, plugin_sha256: &str, secret: Option<Secret>) -> AuditScope {
        AuditScope {
            audit: self.clone(),
            instance: instance.to_string(),
            plugin_sha256: plugin_sha256.to_string(),
            lookup_id: new_lookup_id(),
            secret,
        }
    }
}

/// Records events of one lookup.
#[derive(Clone)]
pub struct AuditScope {
    audit: Audit,
    instance: String,
    plugin_sha256: String,
    lookup_id: String,
    secret: Option<Secret>,
}

impl AuditScope {
    pub fn lookup_id(&self) -> &str {
        &self.lookup_id
    }

    pub fn record(&self, event: &str, detail: Value) {
        if !self.audit.is_enabled() {
            return;
        }
        let detail = match &self.secret {
            // Redact on the serialized form so no field can carry the key.
            Some(secret) => {
                let text = secret.redact(&detail.to_string());
                serde_json::from_str(&text).unwrap_or(json!({"redacted": text}))
            }
            None => detail,
        };
        let record = AuditRecord {
            ts: crate::clock::now_rfc3339_millis(),
            instance: self.instance.clone(),
            plugin_sha256: self.plugin_sha256.clone(),
            lookup_id: self.lookup_id.clone(),
            operator: self.audit.operator.clone(),
            event: event.to_string(),
            detail,
        };
        for sink in &self.audit.sinks {
            sink.write(&record);
        }
    }
}

/// Unique within a host and sortable by time: microseconds and a counter.
fn new_lookup_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{micros:x}-{:x}-{n:x}", std::process::id())
}

/// Reads a JSON-lines audit file, keeping records that match.
pub fn read_file(
    path: &Path,
    instance: Option<&str>,
    lookup: Option<&str>,
    since: Option<&str>,
) -> std::io::Result<Vec<AuditRecord>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str::<AuditRecord>(line).ok())
        .filter(|r| instance.is_none_or(|i| r.instance.eq_ignore_ascii_case(i)))
        .filter(|r| lookup.is_none_or(|l| r.lookup_id == l))
        .filter(|r| since.is_none_or(|s| r.ts.as_str() >= s))
        .collect())
}

/// Keeps records in the database's `audit_events` table, for queries by
/// instance, lookup and time.
pub struct DatabaseSink {
    conn: Arc<Mutex<rusqlite::Connection>>,
    /// Records waiting for the connection. Whoever gets it next writes all
    /// of them in one transaction: concurrent lookups share commits.
    pending: Mutex<Vec<Pending>>,
}

struct Pending {
    ts: String,
    instance: String,
    lookup_id: String,
    record: String,
}

const AUDIT_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    instance TEXT NOT NULL COLLATE NOCASE,
    lookup_id TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_by_lookup ON audit_events (lookup_id);
CREATE INDEX IF NOT EXISTS audit_events_by_time ON audit_events (instance, ts);
";

impl DatabaseSink {
    pub fn open(path: &Path) -> Result<DatabaseSink, String> {
        Ok(DatabaseSink {
            conn: crate::sqlite::connect(Some(path), "audit trail", AUDIT_SCHEMA)?,
            pending: Mutex::new(Vec::new()),
        })
    }

    /// Records that match, oldest first.
    pub fn query(
        &self,
        instance: Option<&str>,
        lookup: Option<&str>,
        since: Option<&str>,
    ) -> Result<Vec<AuditRecord>, String> {
        let conn = self.conn.lock().expect("audit database poisoned");
        let mut statement = conn
            .prepare(
                "SELECT record FROM audit_events
                 WHERE (?1 IS NULL OR instance = ?1) AND (?2 IS NULL OR lookup_id = ?2) AND (?3 IS NULL OR ts >= ?3)
                 ORDER BY id",
            )
            .map_err(|e| e.to_string())?;
        let rows = statement
            .query_map(rusqlite::params![instance, lookup, since], |r| {
                r.get::<_, String>(0)
            })
            .map_err(|e| e.to_string())?;
        let mut records = Vec::new();
        for row in rows {
            let text = row.map_err(|e| e.to_string())?;
            if let Ok(record) = serde_json::from_str(&text) {
                records.push(record);
            }
        }
        Ok(records)
    }
}

impl AuditSink for DatabaseSink {
    /// Returns once the record is committed, by this call or by another
    /// that took it along.
    fn write(&self, record: &AuditRecord) {
        let text = serde_json::to_string(record).expect("a record serializes");
        self.pending
            .lock()
            .expect("audit queue poisoned")
            .push(Pending {
                ts: record.ts.clone(),
                instance: record.instance.clone(),
                lookup_id: record.lookup_id.clone(),
                record: text,
            });
        let mut conn = self.conn.lock().expect("audit database poisoned");
        let batch = std::mem::take(&mut *self.pending.lock().expect("audit queue poisoned"));
        if batch.is_empty() {
            return;
        }
        if let Err(e) = insert_all(&mut conn, &batch) {
            crate::warn_once(&format!(
                "cannot write the audit trail to the database: {e}"
            ));
        }
    }
}

fn insert_all(conn: &mut rusqlite::Connection, batch: &[Pending]) -> rusqlite::Result<()> {
    let transaction = conn.transaction()?;
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO audit_events (ts, instance, lookup_id, record) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for p in batch {
            insert.execute(rusqlite::params![p.ts, p.instance, p.lookup_id, p.record])?;
        }
    }
    transaction.commit()
}

/// Where the audit trail goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuditTarget {
    File,
    Database,
    #[default]
    Both,
}
