use std::fmt;

use iga_directive::{ModelError, TransitionError};
use thiserror::Error;

/// A failure injected by a [`FailPoint`] (testing hook).
///
/// Failpoints let tests prove that a failure at a given point of a unit of work leaves
/// every table unchanged. Production code never arms one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailPoint {
    /// Fail after every statement of a write transaction ran, just before `COMMIT`.
    BeforeCommit,
    /// Fail inside a unit of work right after the ledger confirmation was written.
    AfterLedgerConfirm,
    /// Fail inside a unit of work right after the receipts were appended.
    AfterReceiptAppend,
}

impl fmt::Display for FailPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BeforeCommit => "before_commit",
            Self::AfterLedgerConfirm => "after_ledger_confirm",
            Self::AfterReceiptAppend => "after_receipt_append",
        })
    }
}

/// One rejected input row of a bulk import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based row number: the CSV line number (header = line 1) for CSV input, the
    /// position in the iterator (first rule = 1) otherwise.
    pub row: u64,
    /// The field at fault (`identity`, `source`, ...), or `row` for malformed rows.
    pub field: &'static str,
    /// Why the row was rejected.
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}: {}: {}", self.row, self.field, self.reason)
    }
}

/// A rejected bulk import: nothing of it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRejected {
    /// The first rejected rows (at most `ImportOptions::max_reported_errors`).
    pub errors: Vec<RowError>,
    /// How many rows were rejected in total.
    pub total_errors: u64,
    /// How many rows were read in total.
    pub rows_read: u64,
}

impl fmt::Display for ImportRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "import rejected, nothing written: {} of {} rows are invalid",
            self.total_errors, self.rows_read
        )?;
        for e in &self.errors {
            write!(f, "; {e}")?;
        }
        if self.total_errors > self.errors.len() as u64 {
            write!(
                f,
                "; ... and {} more",
                self.total_errors - self.errors.len() as u64
            )?;
        }
        Ok(())
    }
}

/// Every error of the ledger and the durable store.
///
/// Messages name the object at fault (job id, migration version, receipt chain, input
/// row) and never contain directive attributes or secrets.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The database is busy or locked by another connection; retry later
    /// ([`LedgerError::is_temporary`]).
    #[error("store busy or locked (temporary): {0}")]
    Busy(String),
    /// Any other storage failure (I/O, corruption, constraint).
    #[error("store error: {0}")]
    Storage(String),
    /// An applied migration's checksum differs from the one embedded in this build.
    #[error(
        "migration {version} ({name}) was altered after it was applied: checksum {applied} in the database, {embedded} in this build; restore the original migration file or the database"
    )]
    MigrationAltered {
        /// Migration version.
        version: i64,
        /// Migration name.
        name: String,
        /// Checksum recorded in `_iga_migrations`.
        applied: String,
        /// Checksum of the embedded migration.
        embedded: String,
    },
    /// The database was migrated by a newer build (or a different product).
    #[error(
        "database has migration {version} ({name}) which this build does not know; refusing to open it with an older build"
    )]
    MigrationUnknown {
        /// Migration version.
        version: i64,
        /// Migration name.
        name: String,
    },
    /// Migrations are pending but the store was opened with migrations disabled.
    #[error("database schema is behind: migration {version} ({name}) is not applied")]
    MigrationPending {
        /// First pending version.
        version: i64,
        /// Its name.
        name: String,
    },
    /// An illegal job state change (the iga-directive transition table).
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// A directive failed validation or could not be decoded.
    #[error("directive {id}: {source}")]
    Directive {
        /// Directive id (may be empty if it could not be read).
        id: String,
        /// The model error, naming the field.
        source: ModelError,
    },
    /// No job with this id.
    #[error("job {0} not found")]
    JobNotFound(String),
    /// A bad argument; names the field.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field (dotted path).
        field: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A conditional document write or delete lost: the stored version is not the
    /// expected one (another writer changed it, or it exists / does not exist).
    #[error("document {namespace}/{key}: expected version {expected}, found {found}")]
    VersionConflict {
        /// Namespace.
        namespace: String,
        /// Key.
        key: String,
        /// The version the caller expected (0 = absent).
        expected: u64,
        /// The stored version (0 = absent).
        found: u64,
    },
    /// A receipt would break its hash chain (gap, fork or wrong previous hash).
    #[error("receipt {receipt_id} in chain {chain_id}: {reason}")]
    ReceiptChain {
        /// Chain.
        chain_id: String,
        /// Receipt.
        receipt_id: String,
        /// What is wrong.
        reason: String,
    },
    /// A bulk import had invalid rows; nothing was written.
    #[error("{0}")]
    ImportRejected(ImportRejected),
    /// A failure injected by an armed [`FailPoint`]; the transaction was rolled back.
    #[error("injected failure at failpoint {0}; transaction rolled back")]
    Injected(FailPoint),
    /// An internal error (a worker thread panicked, a lock was poisoned).
    #[error("internal store error: {0}")]
    Internal(String),
}

impl LedgerError {
    /// Whether retrying the same call later may succeed (busy/locked database).
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Busy(_))
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for LedgerError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        if let rusqlite::Error::SqliteFailure(f, _) = &e
            && matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        {
            return Self::Busy(e.to_string());
        }
        Self::Storage(e.to_string())
    }
}

impl From<serde_json::Error> for LedgerError {
    fn from(e: serde_json::Error) -> Self {
        Self::Storage(format!("stored JSON could not be decoded: {e}"))
    }
}

/// Result alias of this crate.
pub type Result<T, E = LedgerError> = std::result::Result<T, E>;
