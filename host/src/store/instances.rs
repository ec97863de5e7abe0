//! Instances managed in the database, each change recorded with who made
//! it and when. Specs hold only where the API key comes from, never the key.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Database, StoreError};
use crate::clock::now_rfc3339 as now;
use crate::config::InstanceSpec;

#[derive(Debug, Clone, Serialize)]
pub struct StoredInstance {
    pub spec: InstanceSpec,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub at: String,
    pub operator: String,
    pub action: String,
    /// What changed, as JSON.
    pub details: serde_json::Value,
}

impl Database {
    pub fn insert_instance(&self, actor: &str, spec: &InstanceSpec) -> Result<(), StoreError> {
        let json = serde_json::to_string(spec).expect("a spec serializes");
        self.transaction(|tx| {
            let at = now();
            let inserted = tx
                .execute(
                    "INSERT OR IGNORE INTO instances (name, spec, created_at, created_by, updated_at, updated_by)
                     VALUES (?1, ?2, ?3, ?4, ?3, ?4)",
                    params![spec.name, json, at, actor],
                )
                .map_err(|e| self.sqlite(e))?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!(
                    "an instance named `{}` exists already (names are unique, case-insensitively)",
                    spec.name
                )));
            }
            record(self, tx, &spec.name, &at, actor, "add", serde_json::to_value(spec).expect("serializes"))
        })
    }

    /// Replaces the stored spec of `name`; `action` and `details` describe
    /// the change for the history.
    pub fn update_instance(
        &self,
        actor: &str,
        name: &str,
        spec: &InstanceSpec,
        action: &str,
        details: serde_json::Value,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(spec).expect("a spec serializes");
        self.transaction(|tx| {
            let at = now();
            let changed = tx
                .execute(
                    "UPDATE instances SET spec = ?2, updated_at = ?3, updated_by = ?4 WHERE name = ?1",
                    params![name, json, at, actor],
                )
                .map_err(|e| self.sqlite(e))?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("no instance named `{name}` in the database")));
            }
            record(self, tx, name, &at, actor, action, details)
        })
    }

    pub fn remove_instance(&self, actor: &str, name: &str) -> Result<(), StoreError> {
        self.transaction(|tx| {
            let removed = tx
                .execute("DELETE FROM instances WHERE name = ?1", [name])
                .map_err(|e| self.sqlite(e))?;
            if removed == 0 {
                return Err(StoreError::NotFound(format!(
                    "no instance named `{name}` in the database"
                )));
            }
            record(
                self,
                tx,
                name,
                &now(),
                actor,
                "remove",
                serde_json::Value::Null,
            )
        })
    }

    pub fn instance(&self, name: &str) -> Result<Option<StoredInstance>, StoreError> {
        let conn = self.conn.lock().expect("database mutex poisoned");
        conn.query_row(
            "SELECT spec, created_at, created_by, updated_at, updated_by FROM instances WHERE name = ?1",
            [name],
            row_to_instance,
        )
        .optional()
        .map_err(|e| self.sqlite(e))?
        .transpose()
    }

    pub fn instances(&self) -> Result<Vec<StoredInstance>, StoreError> {
        let conn = self.conn.lock().expect("database mutex poisoned");
        let mut statement = conn
            .prepare("SELECT spec, created_at, created_by, updated_at, updated_by FROM instances ORDER BY name")
            .map_err(|e| self.sqlite(e))?;
        let rows = statement
            .query_map([], row_to_instance)
            .map_err(|e| self.sqlite(e))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(|e| self.sqlite(e))??);
        }
        Ok(out)
    }

    /// Every recorded change of `name`, oldest first (kept after removal).
    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let conn = self.conn.lock().expect("database mutex poisoned");
        let mut statement = conn
            .prepare("SELECT at, operator, action, details FROM instance_history WHERE instance = ?1 ORDER BY id")
            .map_err(|e| self.sqlite(e))?;
        let rows = statement
            .query_map([name], |r| {
                Ok(HistoryEntry {
                    at: r.get(0)?,
                    operator: r.get(1)?,
                    action: r.get(2)?,
                    details: serde_json::from_str(&r.get::<_, String>(3)?)
                        .unwrap_or(serde_json::Value::Null),
                })
            })
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sqlite(e))
    }
}

type Row = Result<StoredInstance, StoreError>;

fn row_to_instance(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let spec: String = r.get(0)?;
    let parsed = serde_json::from_str::<InstanceSpec>(&spec).map_err(|e| {
        StoreError::Invalid(format!(
            "a stored instance cannot be read ({e}); was the database written by a newer enrichbox?"
        ))
    });
    Ok(parsed.map(|spec| StoredInstance {
        spec,
        created_at: r.get(1).unwrap_or_default(),
        created_by: r.get(2).unwrap_or_default(),
        updated_at: r.get(3).unwrap_or_default(),
        updated_by: r.get(4).unwrap_or_default(),
    }))
}

fn record(
    db: &Database,
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    at: &str,
    actor: &str,
    action: &str,
    details: serde_json::Value,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO instance_history (instance, at, operator, action, details) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![name, at, actor, action, details.to_string()],
    )
    .map_err(|e| db.sqlite(e))?;
    Ok(())
}
