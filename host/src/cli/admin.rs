//! `init`, `operator ...` and `quota`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use enrichbox_quota::rfc3339;

use super::Context;
use crate::store::{Database, Permission};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableOrJson {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Add an operator with the given permissions.
    Add {
        name: String,
        /// Comma-separated: view, create, update, enrich, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        permissions: Vec<Permission>,
    },
    /// List operators and their permissions.
    List,
    /// Remove an operator (the last admin cannot be removed).
    Remove { name: String },
}

pub fn init(context: &Context, admin: Option<String>) -> Result<ExitCode> {
    let db = Database::create(&context.db_path)?;
    let admin = admin.unwrap_or_else(|| context.operator.clone());
    let created = db.init_admin(&admin)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "database: {}", db.path().display())?;
    if created {
        writeln!(
            out,
            "created operator `{admin}` with every permission (view, create, update, enrich, admin)"
        )?;
    } else {
        writeln!(
            out,
            "the database already has operators; nothing was changed"
        )?;
    }
    writeln!(
        out,
        "\nAdd others as an admin, for example:\n  enrichbox --as {admin} operator add analyst --permissions view,enrich\n\
         Act as an operator with --as NAME or ENRICHBOX_OPERATOR=NAME (default: $USER)."
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn operator(context: &Context, command: OperatorCommand) -> Result<ExitCode> {
    let db = context.database()?;
    let mut out = std::io::stdout().lock();
    match command {
        OperatorCommand::Add { name, permissions } => {
            db.add_operator(&context.operator, &name, &permissions)?;
            writeln!(out, "added operator `{name}`")?;
        }
        OperatorCommand::List => {
            for op in db.operators(&context.operator)? {
                let perms: Vec<&str> = op.permissions.iter().map(|p| p.as_str()).collect();
                writeln!(
                    out,
                    "{:20} {:32} added {} by {}",
                    op.name,
                    perms.join(","),
                    op.created_at,
                    op.created_by
                )?;
            }
        }
        OperatorCommand::Remove { name } => {
            db.remove_operator(&context.operator, &name)?;
            writeln!(out, "removed operator `{name}`")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn quota(context: &Context, instance: Option<String>, format: TableOrJson) -> Result<ExitCode> {
    let db = context.authorized(Permission::View, "view quota")?;
    let registry = context.registry(&db);
    let instances = match instance {
        Some(name) => vec![registry.resolve(Some(&name)).map_err(anyhow::Error::msg)?],
        None => registry.all().map_err(anyhow::Error::msg)?,
    };
    let ledger = context.ledger()?;
    let mut statuses = Vec::new();
    for resolved in &instances {
        statuses.push(ledger.status(&resolved.config.name, resolved.config.quota)?);
    }
    let mut out = std::io::stdout().lock();
    if format == TableOrJson::Json {
        let json: Vec<serde_json::Value> = statuses
            .iter()
            .map(|s| {
                serde_json::json!({
                    "instance": s.instance,
                    "limit": s.limit.map(|l| l.units),
                    "period": s.limit.map(|l| l.per.as_str()),
                    "used": s.used,
                    "given_back": s.given_back,
                    "in_flight": s.in_flight,
                    "remaining": s.remaining,
                    "window_start": s.window.map(|w| rfc3339(w.start)),
                    "resets_at": s.resets_at.map(rfc3339),
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &json)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:20} {:>10} {:6} {:>8} {:>10} {:>9} {:>10}  {:20}  {}",
        "INSTANCE",
        "LIMIT",
        "PER",
        "USED",
        "GIVEN BACK",
        "IN FLIGHT",
        "REMAINING",
        "WINDOW START",
        "RESETS AT"
    )?;
    for s in &statuses {
        let (limit, per) = match s.limit {
            Some(l) => (l.units.to_string(), l.per.as_str().to_string()),
            None => ("unlimited".into(), "-".into()),
        };
        writeln!(
            out,
            "{:20} {:>10} {:6} {:>8} {:>10} {:>9} {:>10}  {:20}  {}",
            s.instance,
            limit,
            per,
            s.used,
            s.given_back,
            s.in_flight,
            s.remaining.map_or("unlimited".into(), |r| r.to_string()),
            s.window.map_or("-".into(), |w| rfc3339(w.start)),
            s.resets_at.map_or("-".into(), rfc3339)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
