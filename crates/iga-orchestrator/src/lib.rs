//! # iga-orchestrator — the fulfilment pipeline for embedding
//!
//! ```text
//! submit / sources ─► persist (Pending) ─► ledger decides ─► Planned | Skipped | Staged
//!                                                │
//!        claim (InFlight) ─► resolver waves ─► native batches per system ─► unit of work:
//!        job state + ledger confirmation + signed receipt + audit outbox, one transaction
//!                                                │
//!        Succeeded | AwaitingExternal | Retrying{attempt,next_at} ─► … ─► Escalated
//! ```
//!
//! Build one with [`Orchestrator::builder`]: a store (`iga_ledger::SqliteStore`),
//! adapters by system name, a receipt signer, optional sources, a clock. Then
//! [`Orchestrator::submit`] directives and [`Orchestrator::run_until_idle`] (or
//! [`Orchestrator::run`] for a long-running worker).
//!
//! **Crash safety.** Planning is level-triggered (execute when the ledger's intent and
//! confirmed target state disagree), so re-planning after a crash decides the same way;
//! jobs left `InFlight` are re-queued at build; operations are idempotent by outcome, so
//! a replay answers `AlreadyInState`. `IGA_CRASH_AT=<point>[:<n>]` aborts the process at
//! a step boundary for crash tests.
#![deny(missing_docs)]

mod audit;
mod config;
mod error;
mod exec;
mod orchestrator;
mod reconcile;
mod report;
mod sink;
mod tasks;

pub use audit::StoreOutbox;
pub use config::{Guardrail, RetryPolicy, SystemSettings};
pub use error::{OrchestratorError, Result};
pub use orchestrator::{Orchestrator, OrchestratorBuilder};
pub use reconcile::{DriftItem, DriftReport};
pub use report::{
    DryRunPlan, NoOpDirective, PassReport, PlannedOperation, StatusSummary, SubmitReport,
};
pub use tasks::{StoreTasks, TASK_NAMESPACE};
