#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
// The reference-counting rules and helpers are only used by the SQLite store today.
#![cfg_attr(not(feature = "sqlite"), allow(dead_code))]

mod coexistence;
mod error;
mod import;
pub mod logic;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
mod types;

pub use coexistence::{CoexistenceMode, CoexistencePolicy, ConflictWinner};
pub use error::{FailPoint, ImportRejected, LedgerError, Result, RowError};
pub use import::{ImportOptions, ImportProgress, ImportReport, ImportRule, ProgressFn, RuleRow};
#[cfg(feature = "sqlite")]
pub use sqlite::{ImportSink, OpenOptions, SqliteLedger, Synchronous};
pub use store::LedgerStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use types::{
    AssignmentKey, AssignmentState, AuditRow, ChainHead, ChangeContext, ChangeKind, ClaimedJob,
    CommitResult, ConfirmKind, ConfirmOutcome, Confirmation, Decision, DecisionOutcome, Document,
    LedgerChange, LedgerSnapshot, ManualTask, OutcomeCommit, PersistReport, ReceiptRecord,
    SourceFlags, SourceState,
};
