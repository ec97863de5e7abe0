//! The `enrichbox` command line. `main.rs` only calls [`main`].

mod admin;
mod boundary;
mod cache;
mod context;
mod enrich;
mod instance;
mod lookup;
mod policy;
mod routing;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

pub use context::Context;

const AFTER_HELP: &str = "\
Getting started:
  enrichbox init                      # create the database and you as its admin
  enrichbox instance add Prod_ThreatFox --api-key-env THREATFOX_API_KEY --quota 1000/day
  enrichbox lookup 139.180.203.104 example.com

Instances can also be defined in enrichbox.toml (read-only to `instance` commands):

  [[instance]]
  name = \"Prod_ThreatFox\"            # unique, required
  plugin = \"threatfox\"               # bundled plugin, or a path to a .wasm component
  base_url = \"https://threatfox-api.abuse.ch/api/v1/\"   # the default
  api_key_env = \"THREATFOX_API_KEY\"  # or api_key_file = \"path\"
  verify_ssl = true                  # the default
  enabled_kinds = [\"ip\", \"domain\", \"url\", \"hash\"]  # default: all the plugin supports
  quota = { units = 1000, per = \"day\" }  # hour, day, week or month; default unlimited

Policies ([[policy]] in the file, or `enrichbox policy add`) choose which instances
enrich which indicators; see `enrichbox policy --help`.

The file is --config, else $ENRICHBOX_CONFIG, else ./enrichbox.toml (optional).
The database is --db, else $ENRICHBOX_DB, else `database = \"...\"` in the file,
else ~/.local/share/enrichbox/enrichbox.db. You act as --as NAME, else
$ENRICHBOX_OPERATOR, else $USER.

Exit status: 0 when every lookup succeeded (found or not found), 1 when any
lookup or check failed or (enrich) any input line was skipped or not covered
by the policy, 2 when the command could not run (configuration, permission,
usage), 130 when enrich was interrupted.";

#[derive(Debug, Parser)]
#[command(
    name = "enrichbox",
    version,
    about = "Enrich indicators of compromise through sandboxed provider plugins",
    long_about = "Enrich indicators of compromise (IP addresses, domains, URLs, file hashes) through \
provider plugins that run as WebAssembly components. A plugin reaches nothing but what the host \
grants: its instance's settings, a log, and HTTP requests to its instance's base URL, to which the \
host adds the API key itself. Quota, operators and managed instances live in a local SQLite database.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Configuration file with [[instance]] and [[policy]] tables.
    #[arg(long, global = true, env = "ENRICHBOX_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,

    /// SQLite database for quota, operators, managed instances and policies.
    #[arg(long, global = true, env = "ENRICHBOX_DB", value_name = "PATH")]
    db: Option<PathBuf>,

    /// Audit trail file, JSON lines (default: audit.jsonl beside the database).
    #[arg(long, global = true, env = "ENRICHBOX_AUDIT_FILE", value_name = "PATH")]
    audit_file: Option<PathBuf>,

    /// The operator to act as (permissions are checked against this name).
    #[arg(
        long = "as",
        global = true,
        env = "ENRICHBOX_OPERATOR",
        value_name = "NAME"
    )]
    operator: Option<String>,

    /// Folder for compiled plugins (default: ~/.cache/enrichbox/components).
    #[arg(long, global = true, env = "ENRICHBOX_CACHE_DIR", value_name = "PATH")]
    cache_dir: Option<PathBuf>,

    /// Also print each outbound request and the plugin's log to stderr.
    #[arg(short, long, global = true)]
    verbose: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the database and its first operator, who holds every permission.
    Init {
        /// Name of the first operator (default: the operator you act as).
        #[arg(long)]
        admin: Option<String>,
    },
    /// Look indicators up through an instance's plugin (needs `enrich`).
    #[command(after_help = lookup::LOOKUP_HELP)]
    Lookup(lookup::LookupArgs),
    /// Enrich many indicators from a file or stdin (needs `enrich`).
    #[command(after_help = enrich::ENRICH_HELP)]
    Enrich(enrich::EnrichArgs),
    /// Show what a plugin declares: kinds, cost per lookup, authentication.
    Describe {
        /// A bundled plugin name or a path to a .wasm component.
        #[arg(default_value = "threatfox")]
        plugin: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check that an instance's base URL and API key work (needs `enrich`).
    TestConnection {
        /// The instance (default: the only one, or default_instance).
        #[arg(long, short)]
        instance: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Manage instances in the database (add needs `create`; list, show and
    /// history need `view`; everything else needs `update`).
    #[command(subcommand)]
    Instance(instance::InstanceCommand),
    /// Which instances enrich which indicators: list, show, explain (need
    /// `view`), add (needs `create`), remove (needs `update`).
    #[command(subcommand, after_help = policy::POLICY_HELP)]
    Policy(policy::PolicyCommand),
    /// Show each instance's quota: limit, used, given back, remaining, reset (needs `view`).
    Quota {
        /// The instance (default: the only one, or default_instance).
        #[arg(long, short)]
        instance: Option<String>,
        #[arg(long, short, value_enum, default_value = "table")]
        format: admin::TableOrJson,
    },
    /// Manage operators and their permissions (needs `admin`).
    #[command(subcommand)]
    Operator(admin::OperatorCommand),
    /// Show a plugin's digest, imports (each granted or not), exports and
    /// declarations, without running a lookup.
    Inspect {
        /// A bundled plugin name or a path to a .wasm component.
        plugin: String,
        #[arg(long, short, value_enum, default_value = "table")]
        format: admin::TableOrJson,
    },
    /// Show or clear the compiled-plugin cache.
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// Show the audit trail: every capability use, by lookup (needs `view`).
    Audit {
        /// The instance (default: the only one, or default_instance).
        #[arg(long, short)]
        instance: Option<String>,
        /// Only the records of this lookup id (shown in `lookup --format json`).
        #[arg(long)]
        lookup: Option<String>,
        /// Only records at or after this time: 2026-12-04T10:00:00Z (UTC), a day
        /// like 2026-12-04, or an age like 90m, 6h, 2d.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, short, value_enum, default_value = "table")]
        format: admin::TableOrJson,
    },
}

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    main_from(std::env::args_os())
}

/// [`main`] with the arguments given, for programs that embed the command
/// (the benchmark measures its cold start this way).
pub fn main_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let context = Context::new(
        cli.config,
        cli.db,
        cli.audit_file,
        cli.operator,
        cli.verbose,
        cli.cache_dir,
    )?;
    match cli.command {
        Command::Init { admin } => admin::init(&context, admin),
        Command::Lookup(args) => lookup::lookup(&context, args).await,
        Command::Enrich(args) => enrich::enrich(&context, args).await,
        Command::Describe { plugin, json } => lookup::describe(&context, &plugin, json).await,
        Command::TestConnection { instance, json } => {
            lookup::test_connection(&context, instance, json).await
        }
        Command::Instance(command) => instance::run(&context, command).await,
        Command::Policy(command) => policy::run(&context, command).await,
        Command::Quota { instance, format } => admin::quota(&context, instance, format),
        Command::Operator(command) => admin::operator(&context, command),
        Command::Inspect { plugin, format } => boundary::inspect(&context, &plugin, format).await,
        Command::Cache(command) => cache::run(&context, command),
        Command::Audit {
            instance,
            lookup,
            since,
            format,
        } => boundary::audit(&context, instance, lookup, since, format),
    }
}
