//! [`LedgerStore`] for [`PgStore`].

use std::time::Duration;

use async_trait::async_trait;
use iga_directive::{
    AccessDirective, AttemptRecord, EntitlementRef, FulfillmentJob, JobState, JobStateName,
    Timestamp,
};
use iga_ledger::{
    AssignmentKey, AssignmentState, AuditRow, ChainHead, ClaimedJob, CoexistenceMode, CommitResult,
    ConfirmOutcome, Confirmation, Decision, Document, ImportOptions, ImportReport, ImportRule,
    LedgerChange, LedgerStore, ManualTask, OutcomeCommit, PersistReport, ReceiptRecord, Result,
    SourceState,
};

use crate::{PgStore, ledger, misc, pg, queue};

#[async_trait]
impl LedgerStore for PgStore {
    async fn apply_changes(&self, changes: &[LedgerChange]) -> Result<Vec<Decision>> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let mut out = Vec::with_capacity(changes.len());
        for ch in changes {
            out.push(ledger::apply_change(&tx, ch).await?);
        }
        tx.commit().await.map_err(pg)?;
        Ok(out)
    }
    async fn confirm(&self, cf: &Confirmation) -> Result<ConfirmOutcome> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let r = ledger::apply_confirm(&tx, cf).await?;
        tx.commit().await.map_err(pg)?;
        Ok(r)
    }
    async fn sources_of(&self, key: &AssignmentKey) -> Result<Vec<SourceState>> {
        ledger::sources_of(self, key).await
    }
    async fn assignments_of_identity(
        &self,
        tenant: &str,
        identity: &str,
    ) -> Result<Vec<AssignmentState>> {
        ledger::assignments_of_identity(self, tenant, identity).await
    }
    async fn holders_of(
        &self,
        tenant: &str,
        system: &str,
        entitlement: &EntitlementRef,
    ) -> Result<Vec<AssignmentState>> {
        ledger::holders_of(self, tenant, system, entitlement).await
    }
    async fn system_assignments(
        &self,
        tenant: &str,
        system: &str,
        only_drift: bool,
    ) -> Result<Vec<AssignmentState>> {
        ledger::system_assignments(self, tenant, system, only_drift).await
    }
    async fn persist_directives(
        &self,
        ds: &[AccessDirective],
        now: Timestamp,
    ) -> Result<PersistReport> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let r = queue::persist_tx(&tx, ds, now).await?;
        tx.commit().await.map_err(pg)?;
        Ok(r)
    }
    async fn persist_directives_with_cursor(
        &self,
        ds: &[AccessDirective],
        source: &str,
        cursor: &str,
        now: Timestamp,
    ) -> Result<PersistReport> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let r = queue::persist_tx(&tx, ds, now).await?;
        misc::set_cursor_tx(&tx, source, cursor, now).await?;
        tx.commit().await.map_err(pg)?;
        Ok(r)
    }
    async fn directive(&self, id: &str) -> Result<Option<AccessDirective>> {
        queue::directive(self, id).await
    }
    async fn job(&self, id: &str) -> Result<Option<FulfillmentJob>> {
        queue::job(self, id).await
    }
    async fn transition_job(
        &self,
        id: &str,
        to: JobState,
        attempt: Option<AttemptRecord>,
        now: Timestamp,
    ) -> Result<FulfillmentJob> {
        queue::transition(self, id, to, attempt, now).await
    }
    async fn claim_due(
        &self,
        limit: usize,
        now: Timestamp,
        worker: &str,
    ) -> Result<Vec<ClaimedJob>> {
        queue::claim_due(self, limit, now, worker).await
    }
    async fn requeue_in_flight(&self, worker: Option<&str>, now: Timestamp) -> Result<usize> {
        queue::requeue_in_flight(self, worker, now).await
    }
    async fn jobs_by_state(
        &self,
        state: JobStateName,
        limit: usize,
    ) -> Result<Vec<FulfillmentJob>> {
        queue::jobs_by_state(self, state, limit).await
    }
    async fn due_pending(&self, now: Timestamp, limit: usize) -> Result<Vec<FulfillmentJob>> {
        queue::due_pending(self, now, limit).await
    }
    async fn due_retries(&self, now: Timestamp, limit: usize) -> Result<Vec<FulfillmentJob>> {
        queue::due_retries(self, now, limit).await
    }
    async fn create_manual_task(&self, t: &ManualTask) -> Result<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(pg)?;
        queue::insert_task(&tx, t).await?;
        tx.commit().await.map_err(pg)?;
        Ok(())
    }
    async fn open_manual_tasks(
        &self,
        system: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ManualTask>> {
        queue::open_manual_tasks(self, system, limit).await
    }
    async fn close_manual_task(&self, id: &str, resolution: &str, now: Timestamp) -> Result<bool> {
        misc::close_manual_task(self, id, resolution, now).await
    }
    async fn commit_outcome(&self, o: &OutcomeCommit) -> Result<CommitResult> {
        queue::commit_outcome(self, o).await
    }
    async fn commit_outcomes(&self, os: &[OutcomeCommit]) -> Result<Vec<Result<CommitResult>>> {
        queue::commit_outcomes(self, os).await
    }
    async fn append_receipt(&self, r: &ReceiptRecord) -> Result<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(pg)?;
        misc::append_receipt_tx(&tx, r).await?;
        tx.commit().await.map_err(pg)?;
        Ok(())
    }
    async fn receipts(
        &self,
        chain_id: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<ReceiptRecord>> {
        misc::receipts(self, chain_id, from_seq, limit).await
    }
    async fn chain_head(&self, chain_id: &str) -> Result<Option<ChainHead>> {
        misc::chain_head(self, chain_id).await
    }
    async fn enqueue_audit(&self, event_json: &str, now: Timestamp) -> Result<i64> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let id = misc::enqueue_audit_tx(&tx, event_json, now).await?;
        tx.commit().await.map_err(pg)?;
        Ok(id)
    }
    async fn claim_audit(
        &self,
        limit: usize,
        worker: &str,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<AuditRow>> {
        misc::claim_audit(self, limit, worker, lease, now).await
    }
    async fn ack_audit(&self, ids: &[i64]) -> Result<usize> {
        misc::ack_audit(self, ids).await
    }
    async fn put_document(
        &self,
        namespace: &str,
        key: &str,
        body: &str,
        expected_version: Option<u64>,
        now: Timestamp,
    ) -> Result<u64> {
        misc::put_document(self, namespace, key, body, expected_version, now).await
    }
    async fn get_document(&self, namespace: &str, key: &str) -> Result<Option<Document>> {
        misc::get_document(self, namespace, key).await
    }
    async fn list_documents(
        &self,
        namespace: &str,
        after_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Document>> {
        misc::list_documents(self, namespace, after_key, limit).await
    }
    async fn delete_document(
        &self,
        namespace: &str,
        key: &str,
        expected_version: Option<u64>,
    ) -> Result<bool> {
        misc::delete_document(self, namespace, key, expected_version).await
    }
    async fn cursor(&self, source: &str) -> Result<Option<String>> {
        misc::cursor(self, source).await
    }
    async fn set_cursor(&self, source: &str, cursor: &str, now: Timestamp) -> Result<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(pg)?;
        misc::set_cursor_tx(&tx, source, cursor, now).await?;
        tx.commit().await.map_err(pg)?;
        Ok(())
    }
    async fn set_coexistence(
        &self,
        system: &str,
        mode: CoexistenceMode,
        now: Timestamp,
    ) -> Result<()> {
        misc::set_coexistence(self, system, mode, now).await
    }
    async fn coexistence(&self, system: &str) -> Result<CoexistenceMode> {
        misc::coexistence(self, system).await
    }
    async fn systems_in_mode(&self, mode: CoexistenceMode) -> Result<Vec<String>> {
        misc::systems_in_mode(self, mode).await
    }
    async fn import_rules(
        &self,
        rules: Box<dyn Iterator<Item = ImportRule> + Send>,
        opts: ImportOptions,
    ) -> Result<ImportReport> {
        misc::import_rules(self, rules, opts).await
    }
}
