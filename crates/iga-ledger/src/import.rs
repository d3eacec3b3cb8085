//! Bulk import types (shared by every store implementation).

use std::fmt;

use iga_directive::{EntitlementRef, GrantSource, Timestamp};

/// One rule to import: `identity` holds `entitlement` on `system` in `tenant` because of
/// `source`. Imported rules are existing access: intended **and** confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRule {
    /// Tenant (empty: [`ImportOptions::default_tenant`]).
    pub tenant: String,
    /// Identity id.
    pub identity: String,
    /// Target system.
    pub system: String,
    /// The entitlement.
    pub entitlement: EntitlementRef,
    /// Why the access exists.
    pub source: GrantSource,
}

/// A borrowed, unvalidated rule row (what CSV and typed rules are turned into).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRow<'a> {
    /// Tenant (empty: the default tenant).
    pub tenant: &'a str,
    /// Identity id (required).
    pub identity: &'a str,
    /// Target system (required).
    pub system: &'a str,
    /// Entitlement kind (`group`, `role`, ...; empty: `group`; unknown names are
    /// generic kinds).
    pub entitlement_kind: &'a str,
    /// Entitlement id (required).
    pub entitlement_id: &'a str,
    /// Source kind: `birthright`, `request`, `delegation` or `import`.
    pub source_kind: &'a str,
    /// Source detail (rule, approval key, delegator, batch; required).
    pub source_detail: &'a str,
}

/// Progress of a running import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportProgress {
    /// Rows read so far.
    pub rows_read: u64,
    /// Rows that changed the ledger so far.
    pub rows_changed: u64,
    /// Rows rejected so far.
    pub rows_rejected: u64,
}

/// Progress callback.
pub type ProgressFn = Box<dyn FnMut(&ImportProgress) + Send>;

/// Options of a bulk import.
#[non_exhaustive]
pub struct ImportOptions {
    /// Batch name, recorded with the batch's digest in the history.
    pub batch: String,
    /// Who runs the import.
    pub actor: Option<String>,
    /// The import time recorded in the history.
    pub at: Timestamp,
    /// Tenant used for rows without one.
    pub default_tenant: String,
    /// How many rejected rows the error lists (all are counted).
    pub max_reported_errors: usize,
    /// Call the progress callback every this many rows (and once at the end).
    pub progress_every: u64,
    pub(crate) progress: Option<ProgressFn>,
}

impl fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportOptions")
            .field("batch", &self.batch)
            .field("actor", &self.actor)
            .field("at", &self.at)
            .field("default_tenant", &self.default_tenant)
            .field("max_reported_errors", &self.max_reported_errors)
            .field("progress_every", &self.progress_every)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl ImportOptions {
    /// Options for batch `batch` imported at `at`.
    pub fn new(batch: impl Into<String>, at: Timestamp) -> Self {
        Self {
            batch: batch.into(),
            actor: None,
            at,
            default_tenant: "default".into(),
            max_reported_errors: 100,
            progress_every: 100_000,
            progress: None,
        }
    }

    /// Set the actor.
    pub fn actor(mut self, a: impl Into<String>) -> Self {
        self.actor = Some(a.into());
        self
    }

    /// Set the default tenant.
    pub fn default_tenant(mut self, t: impl Into<String>) -> Self {
        self.default_tenant = t.into();
        self
    }

    /// Call `f` every `every` rows and at the end.
    pub fn progress(mut self, every: u64, f: impl FnMut(&ImportProgress) + Send + 'static) -> Self {
        self.progress_every = every.max(1);
        self.progress = Some(Box::new(f));
        self
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The history batch record, `None` when nothing changed (nothing was written).
    pub batch_id: Option<i64>,
    /// Rows read.
    pub rows_read: u64,
    /// Rows that added or re-activated a (assignment, source) pair.
    pub rows_changed: u64,
    /// Rows already in the ledger (or repeated in the input).
    pub rows_unchanged: u64,
    /// Hex SHA-256 of the batch's canonical rows, in input order.
    pub digest: String,
}
