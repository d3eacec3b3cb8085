//! The async [`LedgerStore`] trait and its SQLite implementation [`SqliteStore`].

use std::time::Duration;

use async_trait::async_trait;
use iga_directive::{
    AccessDirective, AttemptRecord, EntitlementRef, FulfillmentJob, GrantSource, JobState,
    JobStateName, Timestamp,
};

use crate::import::{ImportOptions, ImportReport, ImportRule};
use crate::types::{
    AssignmentKey, AssignmentState, AuditRow, ChainHead, ChangeContext, ClaimedJob, CommitResult,
    ConfirmOutcome, Confirmation, Decision, Document, LedgerChange, ManualTask, OutcomeCommit,
    PersistReport, ReceiptRecord, SourceState,
};
use crate::{CoexistenceMode, Result};

/// The durable store of iga-connectors: ledger, job queue, receipts, source cursors,
/// coexistence modes and audit outbox, with one atomic unit of work
/// ([`LedgerStore::commit_outcome`]).
///
/// Implemented by [`SqliteStore`] (embedded) and, later, by a PostgreSQL store. Every
/// method is one transaction. Methods are `async` so a store can do I/O without
/// blocking the executor; the SQLite store runs its synchronous core on tokio's
/// blocking pool, so it must be called from within a tokio runtime.
///
/// Contract shared by implementations:
/// - grant/revoke follow the per-source reference counting of the crate README; a
///   count never goes negative and revoking one source never removes another.
/// - confirmed state changes only through [`LedgerStore::confirm`] or a committed
///   outcome carrying a [`Confirmation`] with a `Succeeded` job.
/// - job state changes follow the iga-directive transition table.
/// - [`LedgerStore::claim_due`] never hands the same job to two workers.
/// - receipts are append-only and chained.
#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// Apply grants/revokes in order, in one transaction (all or nothing).
    async fn apply_changes(&self, changes: &[LedgerChange]) -> Result<Vec<Decision>>;

    /// Add one grant source ([`crate::DecisionOutcome::GrantTarget`]: target must change).
    async fn grant(
        &self,
        key: &AssignmentKey,
        source: &GrantSource,
        ctx: &ChangeContext,
    ) -> Result<Decision> {
        let ch = LedgerChange::grant(key.clone(), source.clone(), ctx.clone());
        Ok(self.apply_changes(&[ch]).await?.remove(0))
    }

    /// Remove one grant source ([`crate::DecisionOutcome::RevokeTarget`]: deprovision).
    async fn revoke(
        &self,
        key: &AssignmentKey,
        source: &GrantSource,
        ctx: &ChangeContext,
    ) -> Result<Decision> {
        let ch = LedgerChange::revoke(key.clone(), source.clone(), ctx.clone());
        Ok(self.apply_changes(&[ch]).await?.remove(0))
    }

    /// Record a terminal success on the target.
    async fn confirm(&self, c: &Confirmation) -> Result<ConfirmOutcome>;
    /// Sources of one assignment.
    async fn sources_of(&self, key: &AssignmentKey) -> Result<Vec<SourceState>>;
    /// Every assignment of an identity (leavers).
    async fn assignments_of_identity(
        &self,
        tenant: &str,
        identity: &str,
    ) -> Result<Vec<AssignmentState>>;
    /// Every holder of an entitlement (access reviews).
    async fn holders_of(
        &self,
        tenant: &str,
        system: &str,
        entitlement: &EntitlementRef,
    ) -> Result<Vec<AssignmentState>>;
    /// Intended vs confirmed per assignment of one system (reconciliation).
    async fn system_assignments(
        &self,
        tenant: &str,
        system: &str,
        only_drift: bool,
    ) -> Result<Vec<AssignmentState>>;

    /// Persist directives with `Pending` jobs (idempotent by directive id).
    async fn persist_directives(
        &self,
        ds: &[AccessDirective],
        now: Timestamp,
    ) -> Result<PersistReport>;
    /// Persist directives and set the source cursor in the same transaction.
    async fn persist_directives_with_cursor(
        &self,
        ds: &[AccessDirective],
        source: &str,
        cursor: &str,
        now: Timestamp,
    ) -> Result<PersistReport>;
    /// A stored directive.
    async fn directive(&self, id: &str) -> Result<Option<AccessDirective>>;
    /// A stored job.
    async fn job(&self, id: &str) -> Result<Option<FulfillmentJob>>;
    /// Move a job through the transition table.
    async fn transition_job(
        &self,
        id: &str,
        to: JobState,
        attempt: Option<AttemptRecord>,
        now: Timestamp,
    ) -> Result<FulfillmentJob>;
    /// Claim runnable jobs (`Planned`, due `Retrying`) for a worker; they become `InFlight`.
    async fn claim_due(
        &self,
        limit: usize,
        now: Timestamp,
        worker: &str,
    ) -> Result<Vec<ClaimedJob>>;
    /// Crash recovery: `InFlight` → `Planned` (all, or one worker's).
    async fn requeue_in_flight(&self, worker: Option<&str>, now: Timestamp) -> Result<usize>;
    /// Jobs in one state.
    async fn jobs_by_state(&self, state: JobStateName, limit: usize)
    -> Result<Vec<FulfillmentJob>>;
    /// Pending jobs that may be planned at `now` (future-dated directives wait for
    /// their `not_before`).
    async fn due_pending(&self, now: Timestamp, limit: usize) -> Result<Vec<FulfillmentJob>>;
    /// Retrying jobs due at `now`.
    async fn due_retries(&self, now: Timestamp, limit: usize) -> Result<Vec<FulfillmentJob>>;
    /// Open a manual task.
    async fn create_manual_task(&self, t: &ManualTask) -> Result<()>;
    /// Open manual tasks.
    async fn open_manual_tasks(
        &self,
        system: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ManualTask>>;
    /// Close a manual task.
    async fn close_manual_task(&self, id: &str, resolution: &str, now: Timestamp) -> Result<bool>;

    /// The unit of work: one outcome, all or nothing.
    async fn commit_outcome(&self, o: &OutcomeCommit) -> Result<CommitResult>;
    /// Many outcomes in one transaction (each atomic on its own).
    async fn commit_outcomes(&self, os: &[OutcomeCommit]) -> Result<Vec<Result<CommitResult>>>;

    /// Append a receipt.
    async fn append_receipt(&self, r: &ReceiptRecord) -> Result<()>;
    /// Receipts of a chain from `from_seq`.
    async fn receipts(
        &self,
        chain_id: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<ReceiptRecord>>;
    /// The head of a chain.
    async fn chain_head(&self, chain_id: &str) -> Result<Option<ChainHead>>;

    /// Write an audit event to the outbox.
    async fn enqueue_audit(&self, event_json: &str, now: Timestamp) -> Result<i64>;
    /// Claim outbox rows for delivery.
    async fn claim_audit(
        &self,
        limit: usize,
        worker: &str,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<AuditRow>>;
    /// Acknowledge delivered outbox rows.
    async fn ack_audit(&self, ids: &[i64]) -> Result<usize>;

    /// Write a versioned document (see [`SqliteLedger::put_document`] for the
    /// `expected_version` rules: `None` unconditional, `Some(0)` create-only,
    /// `Some(v)` compare-and-set). Returns the new version.
    ///
    /// [`SqliteLedger::put_document`]: crate::SqliteLedger::put_document
    async fn put_document(
        &self,
        namespace: &str,
        key: &str,
        body: &str,
        expected_version: Option<u64>,
        now: Timestamp,
    ) -> Result<u64>;
    /// A document, if present.
    async fn get_document(&self, namespace: &str, key: &str) -> Result<Option<Document>>;
    /// Documents of a namespace in key order after `after_key`, at most `limit`.
    async fn list_documents(
        &self,
        namespace: &str,
        after_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Document>>;
    /// Delete a document (conditional on `expected_version` when given); whether it
    /// existed.
    async fn delete_document(
        &self,
        namespace: &str,
        key: &str,
        expected_version: Option<u64>,
    ) -> Result<bool>;
    /// A source's cursor.
    async fn cursor(&self, source: &str) -> Result<Option<String>>;
    /// Set a source's cursor.
    async fn set_cursor(&self, source: &str, cursor: &str, now: Timestamp) -> Result<()>;

    /// Set a system's coexistence mode.
    async fn set_coexistence(
        &self,
        system: &str,
        mode: CoexistenceMode,
        now: Timestamp,
    ) -> Result<()>;
    /// A system's coexistence mode (`NATIVE` when unset).
    async fn coexistence(&self, system: &str) -> Result<CoexistenceMode>;
    /// Systems set to a mode.
    async fn systems_in_mode(&self, mode: CoexistenceMode) -> Result<Vec<String>>;

    /// Bulk import (all or nothing; see [`crate::SqliteLedger::import`]).
    async fn import_rules(
        &self,
        rules: Box<dyn Iterator<Item = ImportRule> + Send>,
        opts: ImportOptions,
    ) -> Result<ImportReport>;
}

#[cfg(feature = "sqlite")]
pub use sqlite_impl::SqliteStore;

#[cfg(feature = "sqlite")]
mod sqlite_impl {
    use super::*;
    use crate::{LedgerError, SqliteLedger};

    /// Async handle on a [`SqliteLedger`]: every call runs the synchronous core on
    /// tokio's blocking pool (`spawn_blocking`), never on the async executor. Needs a
    /// tokio runtime. Cheap to clone.
    #[derive(Debug, Clone)]
    pub struct SqliteStore {
        ledger: SqliteLedger,
    }

    impl SqliteStore {
        /// Wrap a ledger.
        pub fn new(ledger: SqliteLedger) -> Self {
            Self { ledger }
        }

        /// Open a database file (see [`SqliteLedger::open`]) on the blocking pool.
        pub async fn open(path: impl Into<std::path::PathBuf>) -> Result<Self> {
            let path = path.into();
            let ledger = tokio::task::spawn_blocking(move || SqliteLedger::open(path))
                .await
                .map_err(|e| LedgerError::Internal(format!("store worker failed: {e}")))??;
            Ok(Self::new(ledger))
        }

        /// The synchronous core (for blocking contexts, CLIs and benchmarks).
        pub fn blocking(&self) -> &SqliteLedger {
            &self.ledger
        }

        async fn run<T: Send + 'static>(
            &self,
            f: impl FnOnce(&SqliteLedger) -> Result<T> + Send + 'static,
        ) -> Result<T> {
            let l = self.ledger.clone();
            tokio::task::spawn_blocking(move || f(&l))
                .await
                .map_err(|e| LedgerError::Internal(format!("store worker failed: {e}")))?
        }
    }

    #[async_trait]
    impl LedgerStore for SqliteStore {
        async fn apply_changes(&self, changes: &[LedgerChange]) -> Result<Vec<Decision>> {
            let c = changes.to_vec();
            self.run(move |l| l.apply_changes(&c)).await
        }
        async fn confirm(&self, c: &Confirmation) -> Result<ConfirmOutcome> {
            let c = c.clone();
            self.run(move |l| l.confirm(&c)).await
        }
        async fn sources_of(&self, key: &AssignmentKey) -> Result<Vec<SourceState>> {
            let k = key.clone();
            self.run(move |l| l.sources_of(&k)).await
        }
        async fn assignments_of_identity(
            &self,
            tenant: &str,
            identity: &str,
        ) -> Result<Vec<AssignmentState>> {
            let (t, i) = (tenant.to_string(), identity.to_string());
            self.run(move |l| l.assignments_of_identity(&t, &i)).await
        }
        async fn holders_of(
            &self,
            tenant: &str,
            system: &str,
            entitlement: &EntitlementRef,
        ) -> Result<Vec<AssignmentState>> {
            let (t, s, e) = (tenant.to_string(), system.to_string(), entitlement.clone());
            self.run(move |l| l.holders_of(&t, &s, &e)).await
        }
        async fn system_assignments(
            &self,
            tenant: &str,
            system: &str,
            only_drift: bool,
        ) -> Result<Vec<AssignmentState>> {
            let (t, s) = (tenant.to_string(), system.to_string());
            self.run(move |l| l.system_assignments(&t, &s, only_drift))
                .await
        }
        async fn persist_directives(
            &self,
            ds: &[AccessDirective],
            now: Timestamp,
        ) -> Result<PersistReport> {
            let ds = ds.to_vec();
            self.run(move |l| l.persist_directives(&ds, now)).await
        }
        async fn persist_directives_with_cursor(
            &self,
            ds: &[AccessDirective],
            source: &str,
            cursor: &str,
            now: Timestamp,
        ) -> Result<PersistReport> {
            let (ds, s, c) = (ds.to_vec(), source.to_string(), cursor.to_string());
            self.run(move |l| l.persist_directives_with_cursor(&ds, &s, &c, now))
                .await
        }
        async fn directive(&self, id: &str) -> Result<Option<AccessDirective>> {
            let id = id.to_string();
            self.run(move |l| l.directive(&id)).await
        }
        async fn job(&self, id: &str) -> Result<Option<FulfillmentJob>> {
            let id = id.to_string();
            self.run(move |l| l.job(&id)).await
        }
        async fn transition_job(
            &self,
            id: &str,
            to: JobState,
            attempt: Option<AttemptRecord>,
            now: Timestamp,
        ) -> Result<FulfillmentJob> {
            let id = id.to_string();
            self.run(move |l| l.transition_job(&id, to, attempt, now))
                .await
        }
        async fn claim_due(
            &self,
            limit: usize,
            now: Timestamp,
            worker: &str,
        ) -> Result<Vec<ClaimedJob>> {
            let w = worker.to_string();
            self.run(move |l| l.claim_due(limit, now, &w)).await
        }
        async fn requeue_in_flight(&self, worker: Option<&str>, now: Timestamp) -> Result<usize> {
            let w = worker.map(str::to_string);
            self.run(move |l| l.requeue_in_flight(w.as_deref(), now))
                .await
        }
        async fn jobs_by_state(
            &self,
            state: JobStateName,
            limit: usize,
        ) -> Result<Vec<FulfillmentJob>> {
            self.run(move |l| l.jobs_by_state(state, limit)).await
        }
        async fn due_pending(&self, now: Timestamp, limit: usize) -> Result<Vec<FulfillmentJob>> {
            self.run(move |l| l.due_pending(now, limit)).await
        }
        async fn due_retries(&self, now: Timestamp, limit: usize) -> Result<Vec<FulfillmentJob>> {
            self.run(move |l| l.due_retries(now, limit)).await
        }
        async fn create_manual_task(&self, t: &ManualTask) -> Result<()> {
            let t = t.clone();
            self.run(move |l| l.create_manual_task(&t)).await
        }
        async fn open_manual_tasks(
            &self,
            system: Option<&str>,
            limit: usize,
        ) -> Result<Vec<ManualTask>> {
            let s = system.map(str::to_string);
            self.run(move |l| l.open_manual_tasks(s.as_deref(), limit))
                .await
        }
        async fn close_manual_task(
            &self,
            id: &str,
            resolution: &str,
            now: Timestamp,
        ) -> Result<bool> {
            let (id, r) = (id.to_string(), resolution.to_string());
            self.run(move |l| l.close_manual_task(&id, &r, now)).await
        }
        async fn commit_outcome(&self, o: &OutcomeCommit) -> Result<CommitResult> {
            let o = o.clone();
            self.run(move |l| l.commit_outcome(&o)).await
        }
        async fn commit_outcomes(&self, os: &[OutcomeCommit]) -> Result<Vec<Result<CommitResult>>> {
            let os = os.to_vec();
            self.run(move |l| l.commit_outcomes(&os)).await
        }
        async fn append_receipt(&self, r: &ReceiptRecord) -> Result<()> {
            let r = r.clone();
            self.run(move |l| l.append_receipt(&r)).await
        }
        async fn receipts(
            &self,
            chain_id: &str,
            from_seq: u64,
            limit: usize,
        ) -> Result<Vec<ReceiptRecord>> {
            let c = chain_id.to_string();
            self.run(move |l| l.receipts(&c, from_seq, limit)).await
        }
        async fn chain_head(&self, chain_id: &str) -> Result<Option<ChainHead>> {
            let c = chain_id.to_string();
            self.run(move |l| l.chain_head(&c)).await
        }
        async fn enqueue_audit(&self, event_json: &str, now: Timestamp) -> Result<i64> {
            let e = event_json.to_string();
            self.run(move |l| l.enqueue_audit(&e, now)).await
        }
        async fn claim_audit(
            &self,
            limit: usize,
            worker: &str,
            lease: Duration,
            now: Timestamp,
        ) -> Result<Vec<AuditRow>> {
            let w = worker.to_string();
            self.run(move |l| l.claim_audit(limit, &w, lease, now))
                .await
        }
        async fn ack_audit(&self, ids: &[i64]) -> Result<usize> {
            let ids = ids.to_vec();
            self.run(move |l| l.ack_audit(&ids)).await
        }
        async fn put_document(
            &self,
            namespace: &str,
            key: &str,
            body: &str,
            expected_version: Option<u64>,
            now: Timestamp,
        ) -> Result<u64> {
            let (n, k, b) = (namespace.to_string(), key.to_string(), body.to_string());
            self.run(move |l| l.put_document(&n, &k, &b, expected_version, now))
                .await
        }
        async fn get_document(&self, namespace: &str, key: &str) -> Result<Option<Document>> {
            let (n, k) = (namespace.to_string(), key.to_string());
            self.run(move |l| l.get_document(&n, &k)).await
        }
        async fn list_documents(
            &self,
            namespace: &str,
            after_key: Option<&str>,
            limit: usize,
        ) -> Result<Vec<Document>> {
            let (n, a) = (namespace.to_string(), after_key.map(str::to_string));
            self.run(move |l| l.list_documents(&n, a.as_deref(), limit))
                .await
        }
        async fn delete_document(
            &self,
            namespace: &str,
            key: &str,
            expected_version: Option<u64>,
        ) -> Result<bool> {
            let (n, k) = (namespace.to_string(), key.to_string());
            self.run(move |l| l.delete_document(&n, &k, expected_version))
                .await
        }
        async fn cursor(&self, source: &str) -> Result<Option<String>> {
            let s = source.to_string();
            self.run(move |l| l.cursor(&s)).await
        }
        async fn set_cursor(&self, source: &str, cursor: &str, now: Timestamp) -> Result<()> {
            let (s, c) = (source.to_string(), cursor.to_string());
            self.run(move |l| l.set_cursor(&s, &c, now)).await
        }
        async fn set_coexistence(
            &self,
            system: &str,
            mode: CoexistenceMode,
            now: Timestamp,
        ) -> Result<()> {
            let s = system.to_string();
            self.run(move |l| l.set_coexistence(&s, mode, now)).await
        }
        async fn coexistence(&self, system: &str) -> Result<CoexistenceMode> {
            let s = system.to_string();
            self.run(move |l| l.coexistence(&s)).await
        }
        async fn systems_in_mode(&self, mode: CoexistenceMode) -> Result<Vec<String>> {
            self.run(move |l| l.systems_in_mode(mode)).await
        }
        async fn import_rules(
            &self,
            rules: Box<dyn Iterator<Item = ImportRule> + Send>,
            opts: ImportOptions,
        ) -> Result<ImportReport> {
            self.run(move |l| l.import_rules(rules, opts)).await
        }
    }
}
