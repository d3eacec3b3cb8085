//! Manual fallback after a connector's permanent failure.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use iga_adapter::{
    Account, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo, ObjectRef,
    Observed, Outcome, Page, PageRequest, ProvisioningAdapter, Result,
};
use iga_directive::Operation;

use crate::ManualAdapter;
use crate::adapter::{falls_back, outcome_of};

/// Wraps a connector: an operation it fails **permanently** (anything but a
/// capability mismatch) becomes a manual task instead of an escalation, and the
/// operation answers `Pending { external_ref: <task id> }` until the owner completes
/// (then `Applied`) or rejects it (then the permanent rejection error). Temporary
/// errors pass through untouched, so retries stay the engine's business. Once an
/// operation has fallen back it stays with its task (the connector is not asked
/// again). Reads and lists go to the connector.
#[derive(Clone)]
pub struct FallbackToManual {
    inner: Arc<dyn ProvisioningAdapter>,
    manual: ManualAdapter,
    caps: Capabilities,
}

impl fmt::Debug for FallbackToManual {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackToManual")
            .field("inner", &self.inner)
            .field("manual", &self.manual)
            .finish()
    }
}

impl fmt::Display for FallbackToManual {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (manual fallback)", self.inner)
    }
}

impl FallbackToManual {
    /// `inner`, falling back to tasks of `manual`.
    pub fn new(inner: Arc<dyn ProvisioningAdapter>, manual: ManualAdapter) -> Self {
        let mut caps = inner.capabilities().clone();
        caps.asynchronous = true;
        Self {
            inner,
            manual,
            caps,
        }
    }

    /// The manual side (to list, complete or reject fallback tasks).
    pub fn manual(&self) -> &ManualAdapter {
        &self.manual
    }

    async fn settle(&self, op: &Operation, r: Result<Outcome>) -> Result<Outcome> {
        match r {
            Err(e) if falls_back(&e) => {
                tracing::warn!(
                    connector = self.inner.info().kind,
                    operation_id = %op.id,
                    error = %e.summary(),
                    "permanent failure: falling back to a manual task"
                );
                let summary = format!(
                    "{} (fallback: {} failed: {})",
                    op.describe(),
                    self.inner,
                    e.summary()
                );
                self.manual.open_task(op, summary).await
            }
            other => other,
        }
    }
}

#[async_trait]
impl ProvisioningAdapter for FallbackToManual {
    fn info(&self) -> AdapterInfo {
        self.inner.info()
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    async fn check(&self) -> Result<()> {
        self.inner.check().await
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.caps.check(op)?;
        if let Some(t) = self.manual.task_of(op).await? {
            return outcome_of(&t);
        }
        let r = self.inner.apply(op).await;
        self.settle(op, r).await
    }

    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        let mut out: Vec<Option<Result<Outcome>>> = Vec::with_capacity(ops.len());
        let mut direct = Vec::new();
        let mut direct_ops = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let known = match self.caps.check(op) {
                Err(e) => Some(Err(e)),
                Ok(()) => match self.manual.task_of(op).await {
                    Err(e) => Some(Err(e)),
                    Ok(Some(t)) => Some(outcome_of(&t)),
                    Ok(None) => None,
                },
            };
            if known.is_none() {
                direct.push(i);
                direct_ops.push(op.clone());
            }
            out.push(known);
        }
        if !direct_ops.is_empty() {
            let results = self.inner.apply_batch(&direct_ops).await;
            for (i, r) in direct.into_iter().zip(results) {
                out[i] = Some(self.settle(&ops[i], r).await);
            }
        }
        out.into_iter()
            .map(|r| r.expect("one result per operation"))
            .collect()
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        self.inner.read(object).await
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        self.inner.list_accounts(page).await
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        self.inner.list_entitlements(page).await
    }

    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>> {
        self.inner.list_assignments(scope, page).await
    }
}
