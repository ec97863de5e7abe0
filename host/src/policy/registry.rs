//! Where policies come from: `enrichbox.toml` (read-only here) and the
//! database (managed with `enrichbox policy add|remove`). As for instances,
//! a name lives in one place only.

use std::path::Path;

use super::{Policy, PolicySpec, sort, validate_policy};
use crate::config::Config;
use crate::registry::Origin;
use crate::store::Database;

/// Every policy, in the order they are tried (priority, then name).
pub fn all(file: Option<&Config>, db: Option<&Database>) -> Result<Vec<Policy>, String> {
    let mut all: Vec<Policy> = file.map(|c| c.policies.clone()).unwrap_or_default();
    if let Some(db) = db {
        for stored in db.policies().map_err(|e| e.to_string())? {
            let name = stored.spec.name.clone();
            if let Some(existing) = all.iter().find(|p| p.name.eq_ignore_ascii_case(&name)) {
                return Err(format!(
                    "policy `{name}` is defined both in {} and in the database {}; remove one of them",
                    match &existing.origin {
                        Origin::File(p) | Origin::Database(p) => p.display().to_string(),
                    },
                    db.path().display()
                ));
            }
            all.push(stored_policy(db.path(), &stored.spec)?);
        }
    }
    sort(&mut all);
    Ok(all)
}

/// A stored spec, checked with the same rules as the file.
pub fn stored_policy(db_path: &Path, spec: &PolicySpec) -> Result<Policy, String> {
    validate_policy(spec.clone(), Origin::Database(db_path.to_path_buf())).map_err(
        |(field, message)| {
            format!(
                "{}: policy `{}`: field `{field}`: {message}",
                db_path.display(),
                spec.name
            )
        },
    )
}

/// Refuses to manage a name that the configuration file owns.
pub fn ensure_managed(file: Option<&Config>, name: &str) -> Result<(), String> {
    if let Some(config) = file
        && config
            .policies
            .iter()
            .any(|p| p.name.eq_ignore_ascii_case(name))
    {
        return Err(format!(
            "policy `{name}` is defined in {}; change it by editing that file",
            config.path.display()
        ));
    }
    Ok(())
}

/// The policies that route indicators to `instance`, for refusing to
/// remove an instance that is still in use.
pub fn users_of<'a>(policies: &'a [Policy], instance: &str) -> Vec<&'a str> {
    policies
        .iter()
        .filter(|p| {
            p.routes
                .instances()
                .iter()
                .any(|n| n.eq_ignore_ascii_case(instance))
        })
        .map(|p| p.name.as_str())
        .collect()
}

/// Checks that every instance the policies name exists; the error names
/// the policy and lists the known instances.
pub fn check_instances(policies: &[Policy], known: &[String]) -> Result<(), String> {
    for policy in policies {
        for name in policy.routes.instances() {
            if !known.iter().any(|k| k.eq_ignore_ascii_case(name)) {
                return Err(format!(
                    "policy `{}` ({}) names instance `{name}`, which does not exist (known: {})",
                    policy.name,
                    match &policy.origin {
                        Origin::File(p) => format!("in {}", p.display()),
                        Origin::Database(p) => format!("in the database {}", p.display()),
                    },
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            }
        }
    }
    Ok(())
}
