//! Errors of the catalog.

use crate::upload::UploadReport;

/// Result alias of the catalog.
pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// Why a catalog operation failed. Messages name the entry, field or file position.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The input is malformed (`place` names the entry or row, `field` the field).
    #[error("{place}: {field}: {reason}")]
    Invalid {
        /// Entry key, delegation or input position.
        place: String,
        /// Field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The actor may not perform this write.
    #[error("{actor} may not {action} {target}: {reason}")]
    Forbidden {
        /// The actor's id.
        actor: String,
        /// The attempted action.
        action: String,
        /// Entry key or delegation id.
        target: String,
        /// Why not (no ownership, delegation expired / revoked / out of scope ...).
        reason: String,
    },
    /// No such entry or delegation.
    #[error("{0} is not in the catalog")]
    NotFound(String),
    /// Another writer changed the document since it was read (compare-and-set).
    #[error("{target}: changed concurrently (expected version {expected}, found {found})")]
    Conflict {
        /// Entry key or delegation id.
        target: String,
        /// Version the caller expected.
        expected: u64,
        /// Version found.
        found: u64,
    },
    /// A bulk upload was rejected as a whole; nothing was written.
    #[error("upload rejected, nothing written: {} issue(s); first: {}", .0.issues.len(), .0.issues.first().map(|i| i.to_string()).unwrap_or_default())]
    UploadRejected(Box<UploadReport>),
    /// The store failed.
    #[error("catalog store: {0}")]
    Store(iga_ledger::LedgerError),
    /// A connector failed during discovery.
    #[error("discovery of {system}: {source}")]
    Adapter {
        /// The system being discovered.
        system: String,
        /// The connector error.
        #[source]
        source: iga_adapter::Error,
    },
}

impl From<iga_ledger::LedgerError> for CatalogError {
    fn from(e: iga_ledger::LedgerError) -> Self {
        match e {
            iga_ledger::LedgerError::VersionConflict {
                namespace,
                key,
                expected,
                found,
            } => Self::Conflict {
                target: format!("{namespace}/{key}"),
                expected,
                found,
            },
            other => Self::Store(other),
        }
    }
}
