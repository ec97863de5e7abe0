//! Where instances come from: `enrichbox.toml` (read-only here) and the
//! database (managed with `enrichbox instance ...`). A name lives in one
//! place only, so a user never wonders which definition is in force.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Config, InstanceConfig, InstanceSpec, validate_instance};
use crate::store::{Database, StoredInstance};

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "lowercase")]
pub enum Origin {
    /// Defined in this configuration file; change it by editing the file.
    File(PathBuf),
    /// Managed in this database with `enrichbox instance ...`.
    Database(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(p) => write!(f, "file {} (read-only here; edit the file)", p.display()),
            Origin::Database(p) => write!(f, "database {}", p.display()),
        }
    }
}

pub struct ResolvedInstance {
    pub config: InstanceConfig,
    pub origin: Origin,
    /// For database instances: the stored spec and who changed it when.
    pub stored: Option<StoredInstance>,
}

pub struct Registry<'a> {
    pub file: Option<&'a Config>,
    pub db: Option<&'a Database>,
}

impl Registry<'_> {
    /// Every instance, file ones first. A name defined in both places is an
    /// error naming both, never a silent preference.
    pub fn all(&self) -> Result<Vec<ResolvedInstance>, String> {
        let mut all: Vec<ResolvedInstance> = Vec::new();
        if let Some(config) = self.file {
            for instance in &config.instances {
                all.push(ResolvedInstance {
                    config: instance.clone(),
                    origin: Origin::File(config.path.clone()),
                    stored: None,
                });
            }
        }
        if let Some(db) = self.db {
            for stored in db.instances().map_err(|e| e.to_string())? {
                let name = stored.spec.name.clone();
                if let Some(existing) = all
                    .iter()
                    .find(|i| i.config.name.eq_ignore_ascii_case(&name))
                {
                    return Err(format!(
                        "instance `{name}` is defined both in {} and in the database {}; remove one of them",
                        match &existing.origin {
                            Origin::File(p) | Origin::Database(p) => p.display().to_string(),
                        },
                        db.path().display()
                    ));
                }
                let config = stored_config(db.path(), &stored.spec)?;
                all.push(ResolvedInstance {
                    config,
                    origin: Origin::Database(db.path().to_path_buf()),
                    stored: Some(stored),
                });
            }
        }
        Ok(all)
    }

    /// The instance called `name`, or the default one.
    pub fn resolve(&self, name: Option<&str>) -> Result<ResolvedInstance, String> {
        let mut all = self.all()?;
        let names = all
            .iter()
            .map(|i| i.config.name.clone())
            .collect::<Vec<_>>()
            .join(", ");
        let from_file = self
            .file
            .and_then(|c| c.default_instance.as_ref().map(|d| (d, &c.path)));
        let wanted = name
            .map(str::to_string)
            .or_else(|| from_file.map(|(d, _)| d.clone()));
        match wanted {
            Some(wanted) => {
                let index = all
                    .iter()
                    .position(|i| i.config.name.eq_ignore_ascii_case(&wanted))
                    .ok_or_else(|| match (name, from_file) {
                        (None, Some((_, path))) => format!(
                            "default_instance in {} names `{wanted}`, but no instance is named so (known: {})",
                            path.display(),
                            or_none(&names)
                        ),
                        _ => format!("no instance is named `{wanted}` (known: {})", or_none(&names)),
                    })?;
                Ok(all.swap_remove(index))
            }
            None if all.len() == 1 => Ok(all.remove(0)),
            None if all.is_empty() => Err(
                "no instance is configured: add one with `enrichbox instance add` or in enrichbox.toml (see --help)".into(),
            ),
            None => Err(format!(
                "several instances exist and none is the default; choose one with --instance NAME, or set default_instance = \"NAME\" in enrichbox.toml (known: {names})"
            )),
        }
    }

    /// Refuses to change a name that the configuration file owns.
    pub fn ensure_managed(&self, name: &str) -> Result<(), String> {
        if let Some(config) = self.file
            && config
                .instances
                .iter()
                .any(|i| i.name.eq_ignore_ascii_case(name))
        {
            return Err(format!(
                "instance `{name}` is defined in {}; change it by editing that file",
                config.path.display()
            ));
        }
        Ok(())
    }
}

fn or_none(names: &str) -> &str {
    if names.is_empty() { "none" } else { names }
}

/// A stored spec, checked with the same rules as the file.
pub fn stored_config(db_path: &Path, spec: &InstanceSpec) -> Result<InstanceConfig, String> {
    validate_instance(spec.clone(), Path::new("/")).map_err(|(field, message)| {
        format!(
            "{}: instance `{}`: field `{field}`: {message}",
            db_path.display(),
            spec.name
        )
    })
}
