use thiserror::Error;

/// Errors of the orchestrator. Each names the place (directive, system, job).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OrchestratorError {
    /// A submitted directive is invalid; nothing of that submission was persisted.
    #[error("directive #{index} ({id}): {reason}")]
    InvalidDirective {
        /// Position in the submitted list (0-based).
        index: usize,
        /// Directive id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// A directive names a system no adapter is registered for.
    #[error("directive #{index} ({id}): unknown system `{system}` (registered: {known})")]
    UnknownSystem {
        /// Position in the submitted list (0-based).
        index: usize,
        /// Directive id.
        id: String,
        /// The unknown system.
        system: String,
        /// Registered systems, comma-separated.
        known: String,
    },
    /// The builder is missing something.
    #[error("orchestrator configuration: {0}")]
    Config(String),
    /// A job or staged item does not exist or is in the wrong state.
    #[error("job {job}: {reason}")]
    Job {
        /// Job id.
        job: String,
        /// What is wrong.
        reason: String,
    },
    /// The durable store failed.
    #[error(transparent)]
    Store(#[from] iga_ledger::LedgerError),
    /// Building or signing a receipt failed.
    #[error(transparent)]
    Receipt(#[from] iga_receipt::ReceiptError),
    /// An adapter call outside execution (reconciliation, check) failed.
    #[error(transparent)]
    Adapter(#[from] iga_adapter::Error),
    /// A dependency cycle among operations.
    #[error(transparent)]
    Resolve(#[from] iga_resolver::ResolveError),
}

/// Result with [`OrchestratorError`].
pub type Result<T, E = OrchestratorError> = std::result::Result<T, E>;
