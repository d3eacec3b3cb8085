//! Execution glue: results of the batch engine in the orchestrator's terms, and the
//! `mid_batch` crash hook.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use iga_adapter::{
    Account, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo, Error,
    ErrorKind, ObjectRef, Observed, Outcome, Page, PageRequest, ProvisioningAdapter,
};
use iga_directive::Operation;

/// The final result of one operation in a pass, with every error seen.
#[derive(Debug, Clone)]
pub(crate) struct ItemResult {
    pub(crate) result: Result<Outcome, Error>,
    pub(crate) errors: Vec<Error>,
    pub(crate) attempts: u32,
}

impl ItemResult {
    pub(crate) fn from_report(r: iga_batch::ItemReport, describe: impl Fn(&str) -> String) -> Self {
        let result = match r.result {
            iga_batch::ItemResult::Succeeded(o) => Ok(o),
            iga_batch::ItemResult::Failed(e) => Err(e),
            iga_batch::ItemResult::DependencyFailed { dependency }
            | iga_batch::ItemResult::Skipped { dependency } => Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "not attempted: dependency `{}` did not succeed",
                    describe(&dependency.0)
                ),
            )),
            other => Err(Error::new(
                ErrorKind::Unexpected,
                format!("unknown batch result {other:?}"),
            )),
        };
        Self {
            result,
            errors: r.errors,
            attempts: r.attempts,
        }
    }

    pub(crate) fn failed(e: Error) -> Self {
        Self {
            result: Err(e),
            errors: Vec::new(),
            attempts: 0,
        }
    }
}

/// Wraps an adapter so that the process aborts right after the `n`-th call that
/// changes the target has returned: some batches of a pass applied, the rest not, and
/// nothing committed. Installed only when `IGA_CRASH_AT=mid_batch[:n]` is set.
pub(crate) struct MidBatchCrash {
    inner: Arc<dyn ProvisioningAdapter>,
    calls: Arc<AtomicU64>,
    at: u64,
}

impl MidBatchCrash {
    pub(crate) fn wrap(
        inner: Arc<dyn ProvisioningAdapter>,
        calls: Arc<AtomicU64>,
        at: u64,
    ) -> Arc<dyn ProvisioningAdapter> {
        Arc::new(Self { inner, calls, at })
    }

    fn tick(&self) {
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.at {
            eprintln!("failpoint mid_batch reached: aborting");
            std::process::abort();
        }
    }
}

impl fmt::Debug for MidBatchCrash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MidBatchCrash({:?})", self.inner)
    }
}

impl fmt::Display for MidBatchCrash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MidBatchCrash({})", self.inner)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl ProvisioningAdapter for MidBatchCrash {
    fn info(&self) -> AdapterInfo {
        self.inner.info()
    }
    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }
    async fn check(&self) -> iga_adapter::Result<()> {
        self.inner.check().await
    }
    async fn apply(&self, op: &Operation) -> iga_adapter::Result<Outcome> {
        let r = self.inner.apply(op).await;
        self.tick();
        r
    }
    async fn apply_batch(&self, ops: &[Operation]) -> Vec<iga_adapter::Result<Outcome>> {
        let r = self.inner.apply_batch(ops).await;
        self.tick();
        r
    }
    async fn read(&self, o: &ObjectRef) -> iga_adapter::Result<Option<Observed>> {
        self.inner.read(o).await
    }
    async fn list_accounts(&self, p: PageRequest) -> iga_adapter::Result<Page<Account>> {
        self.inner.list_accounts(p).await
    }
    async fn list_entitlements(
        &self,
        p: PageRequest,
    ) -> iga_adapter::Result<Page<EntitlementInfo>> {
        self.inner.list_entitlements(p).await
    }
    async fn list_assignments(
        &self,
        s: &AssignmentScope,
        p: PageRequest,
    ) -> iga_adapter::Result<Page<Assignment>> {
        self.inner.list_assignments(s, p).await
    }
}
