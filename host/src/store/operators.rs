//! Operators and what each may do with enrichment management.

use std::fmt;

use rusqlite::{OptionalExtension, params};

use super::{Database, StoreError};
use crate::clock::now_rfc3339 as now;

/// The permissions of the platform enrichbox replaces, plus `enrich` for
/// lookups and `admin` for managing operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// List and show instances, their history and quota.
    View,
    /// Add instances.
    Create,
    /// Edit, enable or disable kinds, change quota, remove instances.
    Update,
    /// Run lookups and connection tests.
    Enrich,
    /// Add and remove operators.
    Admin,
}

impl Permission {
    pub const ALL: [Permission; 5] = [
        Permission::View,
        Permission::Create,
        Permission::Update,
        Permission::Enrich,
        Permission::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::View => "view",
            Permission::Create => "create",
            Permission::Update => "update",
            Permission::Enrich => "enrich",
            Permission::Admin => "admin",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Permission {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown permission `{s}` (expected view, create, update, enrich or admin)")
            })
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Operator {
    pub name: String,
    #[serde(serialize_with = "permission_names")]
    pub permissions: Vec<Permission>,
    pub created_at: String,
    pub created_by: String,
}

fn permission_names<S: serde::Serializer>(p: &[Permission], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(p.iter().map(|p| p.as_str()))
}

fn parse_permissions(text: &str) -> Vec<Permission> {
    text.split(',').filter_map(|p| p.parse().ok()).collect()
}

fn join(permissions: &[Permission]) -> String {
    permissions
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

impl Database {
    /// Creates the first operator with every permission, unless operators
    /// exist already. Returns whether it was created.
    pub fn init_admin(&self, name: &str) -> Result<bool, StoreError> {
        check_name(name)?;
        self.transaction(|tx| {
            let count: i64 = tx
                .query_row("SELECT COUNT(*) FROM operators", [], |r| r.get(0))
                .map_err(|e| self.sqlite(e))?;
            if count > 0 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO operators (name, permissions, created_at, created_by) VALUES (?1, ?2, ?3, ?1)",
                params![name, join(&Permission::ALL), now()],
            )
            .map_err(|e| self.sqlite(e))?;
            Ok(true)
        })
    }

    pub fn operator(&self, name: &str) -> Result<Option<Operator>, StoreError> {
        let conn = self.conn.lock().expect("database mutex poisoned");
        conn.query_row(
            "SELECT name, permissions, created_at, created_by FROM operators WHERE name = ?1",
            [name],
            |r| {
                Ok(Operator {
                    name: r.get(0)?,
                    permissions: parse_permissions(&r.get::<_, String>(1)?),
                    created_at: r.get(2)?,
                    created_by: r.get(3)?,
                })
            },
        )
        .optional()
        .map_err(|e| self.sqlite(e))
    }

    /// Checks that `actor` holds `permission` for `doing` (a phrase such as
    /// "add an instance"); the error names the missing permission.
    pub fn authorize(
        &self,
        actor: &str,
        permission: Permission,
        doing: &str,
    ) -> Result<Operator, StoreError> {
        let operator = self.operator(actor)?.ok_or_else(|| {
            StoreError::Denied(format!(
                "no operator is named `{actor}` in {}; act as a known operator with --as NAME or ENRICHBOX_OPERATOR, \
                 or ask an admin to run `enrichbox operator add {actor} --permissions ...`",
                self.path.display()
            ))
        })?;
        if operator.permissions.contains(&permission) {
            Ok(operator)
        } else {
            Err(StoreError::Denied(format!(
                "operator `{}` may not {doing}: that needs the `{permission}` permission (they have: {})",
                operator.name,
                if operator.permissions.is_empty() {
                    "none".into()
                } else {
                    join(&operator.permissions).replace(',', ", ")
                }
            )))
        }
    }

    pub fn add_operator(
        &self,
        actor: &str,
        name: &str,
        permissions: &[Permission],
    ) -> Result<(), StoreError> {
        self.authorize(actor, Permission::Admin, "add operators")?;
        check_name(name)?;
        self.transaction(|tx| {
            let inserted = tx
                .execute(
                    "INSERT OR IGNORE INTO operators (name, permissions, created_at, created_by) VALUES (?1, ?2, ?3, ?4)",
                    params![name, join(permissions), now(), actor],
                )
                .map_err(|e| self.sqlite(e))?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("an operator named `{name}` exists already")));
            }
            Ok(())
        })
    }

    pub fn remove_operator(&self, actor: &str, name: &str) -> Result<(), StoreError> {
        self.authorize(actor, Permission::Admin, "remove operators")?;
        let target = self
            .operator(name)?
            .ok_or_else(|| StoreError::NotFound(format!("no operator is named `{name}`")))?;
        self.transaction(|tx| {
            if target.permissions.contains(&Permission::Admin) {
                let admins: i64 = tx
                    .query_row("SELECT COUNT(*) FROM operators WHERE ',' || permissions || ',' LIKE '%,admin,%'", [], |r| r.get(0))
                    .map_err(|e| self.sqlite(e))?;
                if admins <= 1 {
                    return Err(StoreError::Conflict(format!("`{name}` is the last admin and cannot be removed")));
                }
            }
            tx.execute("DELETE FROM operators WHERE name = ?1", [name])
                .map_err(|e| self.sqlite(e))?;
            Ok(())
        })
    }

    pub fn operators(&self, actor: &str) -> Result<Vec<Operator>, StoreError> {
        self.authorize(actor, Permission::Admin, "list operators")?;
        let conn = self.conn.lock().expect("database mutex poisoned");
        let mut statement = conn
            .prepare(
                "SELECT name, permissions, created_at, created_by FROM operators ORDER BY name",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = statement
            .query_map([], |r| {
                Ok(Operator {
                    name: r.get(0)?,
                    permissions: parse_permissions(&r.get::<_, String>(1)?),
                    created_at: r.get(2)?,
                    created_by: r.get(3)?,
                })
            })
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sqlite(e))
    }
}

fn check_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "`{name}` is not a valid operator name: use 1-64 letters, digits, `_`, `-`, `.` or `@`"
        )))
    }
}
