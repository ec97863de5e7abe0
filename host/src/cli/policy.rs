//! `policy list|show|explain|add|remove`, and the routing of `enrich`
//! items through policies.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use enrichbox_indicator::detect;

use super::Context;
use super::admin::TableOrJson;
use crate::batch::input::ItemContext;
use crate::policy::explain::{Explanation, InstanceState, explain};
use crate::policy::registry::{all, check_instances, ensure_managed, stored_policy};
use crate::policy::{PolicySpec, Router, WhenSpec};
use crate::registry::{Origin, ResolvedInstance};
use crate::store::Permission;

pub const POLICY_HELP: &str = "\
A policy says which instances enrich which indicators. In enrichbox.toml:

  [[policy]]
  name = \"feeds-first\"             # unique, required
  mode = \"sequential\"              # or \"parallel\"; default sequential
  priority = 10                    # higher wins when several apply; ties by name
  ip = [\"TF_Primary\", \"TF_Backup\"] # 1-3 instances per kind, asked in this order
  domain = [\"TF_Primary\"]          # a kind not listed is not enriched by this policy
  when = { sources = [\"feed-a\"], tags = [\"c2\"], min_confidence = 60 }  # optional

or in the database: `enrichbox policy add NAME --ip A,B --mode parallel ...`.

sequential: ask the instances in order and stop at the first malicious verdict; a
failure, an exhausted quota or any other verdict moves on to the next instance.
parallel: ask all of them at once. Either way there is one result per indicator:
the strongest verdict (malicious > suspicious > unknown), every instance's findings,
and in `consulted` what each instance said; it is an error only if all failed.

Conditions: sources and tags match any of the listed values, case-insensitively;
min_confidence needs a confidence in the input (inputs without one do not match).
`enrich` reads them from the CSV columns / NDJSON fields source, tags, confidence.

`enrich --policy NAME` uses that policy only: indicators it does not take are
reported on stderr, counted as `not covered` and not looked up. Without --policy
each indicator goes to the highest-priority policy that takes it, else to the
default instance. `enrich --instance NAME` ignores policies.";

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List every policy, in the order they are tried (needs `view`).
    List {
        #[arg(long, short, value_enum, default_value = "table")]
        format: TableOrJson,
    },
    /// Show one policy (needs `view`).
    Show {
        name: String,
        #[arg(long, short, value_enum, default_value = "table")]
        format: TableOrJson,
    },
    /// Show which policy and instances an indicator would go to, each
    /// instance's remaining quota and pause; sends nothing, spends nothing
    /// (needs `view`). Exits 1 when nothing would enrich it.
    Explain(ExplainArgs),
    /// Add a policy to the database (needs `create`).
    Add {
        name: String,
        /// sequential (default) or parallel.
        #[arg(long)]
        mode: Option<String>,
        /// Higher wins when several policies apply (default 0).
        #[arg(long, allow_negative_numbers = true)]
        priority: Option<i64>,
        /// Instances for IP addresses, in order, comma-separated (1-3).
        #[arg(long, value_delimiter = ',')]
        ip: Option<Vec<String>>,
        /// Instances for domains, in order, comma-separated (1-3).
        #[arg(long, value_delimiter = ',')]
        domain: Option<Vec<String>>,
        /// Instances for URLs, in order, comma-separated (1-3).
        #[arg(long, value_delimiter = ',')]
        url: Option<Vec<String>>,
        /// Instances for hashes, in order, comma-separated (1-3).
        #[arg(long, value_delimiter = ',')]
        hash: Option<Vec<String>>,
        /// Only indicators from this source (repeat for any of several).
        #[arg(long = "source")]
        sources: Vec<String>,
        /// Only indicators with this tag (repeat for any of several).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Only indicators whose input confidence is at least this (0-100).
        #[arg(long)]
        min_confidence: Option<i64>,
    },
    /// Remove a database policy (needs `update`).
    Remove { name: String },
}

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// An IP address, domain, URL or hash.
    indicator: String,
    /// Explain this policy only, as `enrich --policy` would use it.
    #[arg(long)]
    policy: Option<String>,
    /// The source the input would carry.
    #[arg(long)]
    source: Option<String>,
    /// A tag the input would carry (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// The confidence the input would carry (0-100).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    confidence: Option<u8>,
    #[arg(long, short, value_enum, default_value = "table")]
    format: TableOrJson,
}

pub async fn run(context: &Context, command: PolicyCommand) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match command {
        PolicyCommand::List { format } => {
            let db = context.authorized(Permission::View, "list policies")?;
            let policies = all(context.config.as_ref(), Some(&db)).map_err(anyhow::Error::msg)?;
            if format == TableOrJson::Json {
                serde_json::to_writer_pretty(&mut out, &policies)?;
                writeln!(out)?;
                return Ok(ExitCode::SUCCESS);
            }
            writeln!(
                out,
                "{:20} {:>8} {:10} {:28} {:28} {:28} {:28} {:30} DEFINED IN",
                "NAME", "PRIORITY", "MODE", "IP", "DOMAIN", "URL", "HASH", "WHEN"
            )?;
            for p in &policies {
                let list = |kind: &[String]| {
                    if kind.is_empty() {
                        "-".to_string()
                    } else {
                        kind.join(" > ")
                    }
                };
                writeln!(
                    out,
                    "{:20} {:>8} {:10} {:28} {:28} {:28} {:28} {:30} {}",
                    p.name,
                    p.priority,
                    p.mode.as_str(),
                    list(&p.routes.ip),
                    list(&p.routes.domain),
                    list(&p.routes.url),
                    list(&p.routes.hash),
                    p.when.describe(),
                    origin_word(&p.origin)
                )?;
            }
        }
        PolicyCommand::Show { name, format } => {
            let db = context.authorized(Permission::View, "show policies")?;
            let policies = all(context.config.as_ref(), Some(&db)).map_err(anyhow::Error::msg)?;
            let policy = crate::policy::find(&policies, &name).map_err(anyhow::Error::msg)?;
            if format == TableOrJson::Json {
                serde_json::to_writer_pretty(&mut out, policy)?;
                writeln!(out)?;
                return Ok(ExitCode::SUCCESS);
            }
            writeln!(out, "name        {}", policy.name)?;
            writeln!(out, "defined in  {}", policy.origin)?;
            writeln!(out, "mode        {}", policy.mode)?;
            writeln!(out, "priority    {}", policy.priority)?;
            for kind in enrichbox_indicator::Kind::ALL {
                let list = policy.routes.for_kind(kind);
                writeln!(
                    out,
                    "{:11} {}",
                    kind.as_str(),
                    if list.is_empty() {
                        "not enriched by this policy".to_string()
                    } else {
                        list.join(" > ")
                    }
                )?;
            }
            writeln!(out, "when        {}", policy.when.describe())?;
            if let Some(stored) = db
                .policies()?
                .into_iter()
                .find(|s| s.spec.name.eq_ignore_ascii_case(&name))
            {
                writeln!(
                    out,
                    "created     {} by {}",
                    stored.created_at, stored.created_by
                )?;
            }
        }
        PolicyCommand::Explain(args) => return explain_command(context, args, &mut out),
        PolicyCommand::Add {
            name,
            mode,
            priority,
            ip,
            domain,
            url,
            hash,
            sources,
            tags,
            min_confidence,
        } => {
            let db = context.authorized(Permission::Create, "add a policy")?;
            ensure_managed(context.config.as_ref(), &name).map_err(anyhow::Error::msg)?;
            let spec = PolicySpec {
                name: name.clone(),
                mode,
                priority,
                ip,
                domain,
                url,
                hash,
                when: (!sources.is_empty() || !tags.is_empty() || min_confidence.is_some()).then(
                    || WhenSpec {
                        sources: (!sources.is_empty()).then_some(sources),
                        tags: (!tags.is_empty()).then_some(tags),
                        min_confidence,
                    },
                ),
            };
            let policy = stored_policy(db.path(), &spec).map_err(anyhow::Error::msg)?;
            let known = instance_names(&context.registry(&db).all().map_err(anyhow::Error::msg)?);
            check_instances(std::slice::from_ref(&policy), &known).map_err(anyhow::Error::msg)?;
            db.insert_policy(&context.operator, &spec)?;
            writeln!(out, "added policy `{name}` to {}", db.path().display())?;
        }
        PolicyCommand::Remove { name } => {
            let db = context.authorized(Permission::Update, "remove policies")?;
            ensure_managed(context.config.as_ref(), &name).map_err(anyhow::Error::msg)?;
            db.remove_policy(&name)?;
            writeln!(out, "removed policy `{name}`")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn explain_command(context: &Context, args: ExplainArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let db = context.authorized(Permission::View, "explain policies")?;
    let indicator = detect(&args.indicator)
        .map_err(|e| anyhow::anyhow!("`{}` is not an indicator: {e}", args.indicator))?;
    let registry = context.registry(&db);
    let instances = registry.all().map_err(anyhow::Error::msg)?;
    let policies = all(context.config.as_ref(), Some(&db)).map_err(anyhow::Error::msg)?;
    let router =
        Router::with_policies(policies, args.policy.as_deref()).map_err(anyhow::Error::msg)?;
    check_instances(router.policies(), &instance_names(&instances)).map_err(anyhow::Error::msg)?;
    let item_context = ItemContext {
        source: args.source,
        tags: args.tags,
        confidence: args.confidence,
    };
    // Reads only: the ledger's counts and the breaker's pauses.
    let ledger = context.ledger()?;
    let breaker = context.breaker()?;
    let kind = indicator.kind();
    let state = |name: &str| -> Result<InstanceState, String> {
        let resolved = instances
            .iter()
            .find(|i| i.config.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("no instance is named `{name}`"))?;
        let config = &resolved.config;
        // Only an open circuit turns lookups away; half-open lets a trial by.
        let pause = match breaker.circuit(&config.name) {
            crate::breaker::Circuit::Open(pause) => Some(pause),
            _ => None,
        };
        Ok(InstanceState {
            instance: config.name.clone(),
            quota: config.quota.map_or("unlimited".into(), |q| {
                format!("{}/{}", q.units, q.per.as_str())
            }),
            quota_remaining: ledger
                .remaining(&config.name, config.quota)
                .map_err(|e| format!("cannot read the quota of `{name}`: {e}"))?,
            paused_until: pause.as_ref().map(|p| enrichbox_quota::rfc3339(p.until)),
            pause_reason: pause.map(|p| p.reason),
            kind_enabled: config
                .enabled_kinds
                .as_ref()
                .is_none_or(|k| k.contains(&kind)),
        })
    };
    let default = registry.resolve(None).map(|r| r.config.name);
    let explanation =
        explain(&router, &indicator, &item_context, default, &state).map_err(anyhow::Error::msg)?;
    if args.format == TableOrJson::Json {
        serde_json::to_writer_pretty(&mut *out, &explanation)?;
        writeln!(out)?;
    } else {
        print_explanation(out, &explanation)?;
    }
    Ok(if explanation.route == "not-covered" {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_explanation(out: &mut dyn Write, e: &Explanation) -> std::io::Result<()> {
    writeln!(out, "indicator  {} ({})", e.indicator, e.kind)?;
    let mut input = Vec::new();
    if let Some(source) = &e.source {
        input.push(format!("source {source}"));
    }
    if !e.tags.is_empty() {
        input.push(format!("tags {}", e.tags.join(", ")));
    }
    if let Some(confidence) = e.confidence {
        input.push(format!("confidence {confidence}"));
    }
    writeln!(
        out,
        "input      {}",
        if input.is_empty() {
            "no source, tags or confidence".into()
        } else {
            input.join("; ")
        }
    )?;
    if e.policies.is_empty() {
        writeln!(out, "policies   none defined")?;
    } else {
        writeln!(out, "policies   (tried in this order)")?;
        for p in &e.policies {
            writeln!(
                out,
                "  {} {:20} priority {:<5} {:10} {}",
                if p.chosen { "*" } else { " " },
                p.name,
                p.priority,
                p.mode.as_str(),
                if p.chosen {
                    "takes it".to_string()
                } else {
                    format!("no: {}", p.reason.as_deref().unwrap_or(""))
                }
            )?;
        }
    }
    match (e.route, &e.policy, e.mode) {
        ("policy", Some(policy), Some(mode)) => {
            writeln!(out, "route      policy `{policy}`, {mode}")?
        }
        ("default", _, _) => writeln!(
            out,
            "route      default instance ({})",
            e.reason.as_deref().unwrap_or("")
        )?,
        _ => writeln!(
            out,
            "route      NOT COVERED: {}",
            e.reason.as_deref().unwrap_or("")
        )?,
    }
    if !e.instances.is_empty() {
        writeln!(out, "instances  (nothing was sent and no quota reserved)")?;
        for (n, i) in e.instances.iter().enumerate() {
            let quota = match i.quota_remaining {
                None => "quota unlimited".to_string(),
                Some(left) => format!("quota {left} of {} left", i.quota),
            };
            let circuit = match (&i.paused_until, &i.pause_reason) {
                (Some(until), reason) => {
                    format!("PAUSED until {until}: {}", reason.as_deref().unwrap_or(""))
                }
                _ => "not paused".to_string(),
            };
            let kind = if i.kind_enabled {
                ""
            } else {
                " | kind not enabled (would be skipped)"
            };
            writeln!(
                out,
                "  {}. {:20} {quota} | {circuit}{kind}",
                n + 1,
                i.instance
            )?;
        }
    }
    Ok(())
}

pub(super) fn instance_names(all: &[ResolvedInstance]) -> Vec<String> {
    all.iter().map(|i| i.config.name.clone()).collect()
}

fn origin_word(origin: &Origin) -> String {
    match origin {
        Origin::File(p) => format!("file {}", p.display()),
        Origin::Database(_) => "database".into(),
    }
}
