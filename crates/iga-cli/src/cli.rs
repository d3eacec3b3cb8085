//! Command-line definitions (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// iga: approved access decisions become executed, provable access.
///
/// Every command but `demo` reads a YAML configuration (`--config`, default `iga.yaml`,
/// or `$IGA_CONFIG`); see `crates/iga-cli/examples/iga.yaml`. Exit codes: 0 success,
/// 1 failure (or a check that found problems), 2 bad input or configuration.
#[derive(Debug, Parser)]
#[command(name = "iga", version, propagate_version = true)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "IGA_CONFIG",
        default_value = "iga.yaml"
    )]
    pub config: PathBuf,
    /// Machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline on the embedded default (SQLite file, in-memory targets,
    /// a flat-file target), scenario by scenario, with no configuration and no service.
    Demo(DemoArgs),
    /// Work until idle: poll sources, plan, execute, retry what is due, deliver audit
    /// events; with `--watch`, keep going.
    Run(RunArgs),
    /// Submit directives from a JSON or YAML file (all or nothing).
    Submit(FileArgs),
    /// Dry run: what a directive file would execute now, what changes nothing and why,
    /// what a guardrail would stage. Nothing is stored.
    Plan(FileArgs),
    /// Job counts by state; filter by state, system or identity; escalations with
    /// their attempt history.
    Status(StatusArgs),
    /// Release staged jobs (held by a mass-revocation guardrail) for execution.
    Release(JobIds),
    /// Cancel staged jobs; their access stays as it is.
    Cancel(CancelArgs),
    /// Manual tasks: list, complete, reject.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// Compare the ledger's intended access of a system with the target's.
    Reconcile(ReconcileArgs),
    /// Receipt chains: verify, export.
    #[command(subcommand)]
    Receipts(ReceiptsCommand),
    /// Print the JWKS receipts verify with.
    Jwks,
    /// The ledger: show an identity's assignments, import existing access.
    #[command(subcommand)]
    Ledger(LedgerCommand),
}

/// `iga demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Work directory (emptied at start).
    #[arg(long, default_value = "iga-demo")]
    pub dir: PathBuf,
}

/// `iga run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Keep running: a pass every `--interval` until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// Pause between passes with `--watch` (e.g. 10s).
    #[arg(long, default_value = "10s")]
    pub interval: String,
}

/// A directive file argument.
#[derive(Debug, Args)]
pub struct FileArgs {
    /// JSON or YAML file with directives (see the README for the format).
    pub file: PathBuf,
}

/// `iga status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only jobs in this state (pending, planned, in_flight, succeeded, retrying,
    /// escalated, staged, skipped, cancelled, awaiting_external).
    #[arg(long)]
    pub state: Option<String>,
    /// Only jobs of this system.
    #[arg(long)]
    pub system: Option<String>,
    /// Only jobs of this identity (id).
    #[arg(long)]
    pub identity: Option<String>,
    /// Most jobs listed.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// Job ids.
#[derive(Debug, Args)]
pub struct JobIds {
    /// Job (= directive) ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// `iga cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// Job (= directive) ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Why (recorded with the job).
    #[arg(long, default_value = "cancelled after review")]
    pub reason: String,
}

/// `iga tasks ...`.
#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Open manual tasks.
    List {
        /// Only tasks of this system.
        #[arg(long)]
        system: Option<String>,
    },
    /// Mark a task done.
    Complete {
        /// Task id.
        id: String,
        /// What was done (kept on store rows that belong to no manual system).
        #[arg(long, default_value = "completed")]
        note: String,
        /// Who did it (recorded on the task).
        #[arg(long)]
        by: Option<String>,
    },
    /// Reject a task.
    Reject {
        /// Task id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Who refused it (recorded on the task).
        #[arg(long)]
        by: Option<String>,
    },
}

/// `iga reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// System name.
    pub system: String,
    /// Tenant.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Submit grants for what the ledger intends but the target lacks.
    #[arg(long)]
    pub remediate: bool,
}

/// `iga receipts ...`.
#[derive(Debug, Subcommand)]
pub enum ReceiptsCommand {
    /// Verify every receipt chain (signatures, hashes, order, gaps).
    Verify,
    /// Export every receipt chain as JSON lines (verifiable offline with the JWKS).
    Export {
        /// Output file (default: stdout).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

/// `iga ledger ...`.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Assignments of one identity with their sources.
    Show {
        /// Identity id.
        identity: String,
        /// Tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Import existing access from CSV (identity, system, entitlement, source
    /// [, tenant, entitlement_kind]); all or nothing.
    Import {
        /// CSV file.
        file: PathBuf,
        /// Batch name recorded in the history (default: the file name).
        #[arg(long)]
        batch: Option<String>,
        /// Tenant for rows without one.
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}
