//! Policies managed in the database. Each is stored as the spec a person
//! wrote, checked with the same rules as `[[policy]]` in the file, with
//! who added it and when.

use rusqlite::params;
use serde::Serialize;

use super::{Database, StoreError};
use crate::clock::now_rfc3339 as now;
use crate::policy::PolicySpec;

#[derive(Debug, Clone, Serialize)]
pub struct StoredPolicy {
    pub spec: PolicySpec,
    pub created_at: String,
    pub created_by: String,
}

impl Database {
    pub fn insert_policy(&self, actor: &str, spec: &PolicySpec) -> Result<(), StoreError> {
        let json = serde_json::to_string(spec).expect("a policy spec serializes");
        self.transaction(|tx| {
            let inserted = tx
                .execute(
                    "INSERT OR IGNORE INTO policies (name, spec, created_at, created_by) VALUES (?1, ?2, ?3, ?4)",
                    params![spec.name, json, now(), actor],
                )
                .map_err(|e| self.sqlite(e))?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!(
                    "a policy named `{}` exists already (names are unique, case-insensitively); remove it first",
                    spec.name
                )));
            }
            Ok(())
        })
    }

    pub fn remove_policy(&self, name: &str) -> Result<(), StoreError> {
        self.transaction(|tx| {
            let removed = tx
                .execute("DELETE FROM policies WHERE name = ?1", [name])
                .map_err(|e| self.sqlite(e))?;
            if removed == 0 {
                return Err(StoreError::NotFound(format!(
                    "no policy named `{name}` in the database"
                )));
            }
            Ok(())
        })
    }

    pub fn policies(&self) -> Result<Vec<StoredPolicy>, StoreError> {
        let conn = self.conn.lock().expect("database mutex poisoned");
        let mut statement = conn
            .prepare("SELECT spec, created_at, created_by FROM policies ORDER BY name")
            .map_err(|e| self.sqlite(e))?;
        let rows = statement
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (spec, created_at, created_by) = row.map_err(|e| self.sqlite(e))?;
            let spec = serde_json::from_str::<PolicySpec>(&spec).map_err(|e| {
                StoreError::Invalid(format!(
                    "a stored policy cannot be read ({e}); was the database written by a newer enrichbox?"
                ))
            })?;
            out.push(StoredPolicy {
                spec,
                created_at,
                created_by,
            });
        }
        Ok(out)
    }
}
