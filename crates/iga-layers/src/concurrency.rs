//! `ConcurrencyLimit`: at most N calls in flight.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use iga_adapter::{
    Account, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo, ObjectRef,
    Observed, Outcome, Page, PageRequest, ProvisioningAdapter, Result,
};
use iga_directive::Operation;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Configuration of [`ConcurrencyLimit`]. Cloning the layer shares the semaphore, so
/// every adapter it wraps counts against the same limit.
#[derive(Debug, Clone)]
pub struct ConcurrencyLimitLayer {
    max: usize,
    semaphore: Arc<Semaphore>,
}

impl ConcurrencyLimitLayer {
    /// At most `max` calls at once (at least 1).
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            max,
            semaphore: Arc::new(Semaphore::new(max)),
        }
    }
}

impl<A: iga_adapter::ProvisioningAdapter> tower_layer::Layer<A> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<A>;
    fn layer(&self, inner: A) -> ConcurrencyLimit<A> {
        ConcurrencyLimit::with_semaphore(inner, self.max, self.semaphore.clone())
    }
}

/// Holds a semaphore permit for the duration of every call. The capabilities it
/// reports have `max_concurrency` lowered to its limit.
#[derive(Debug)]
pub struct ConcurrencyLimit<A> {
    inner: A,
    semaphore: Arc<Semaphore>,
    caps: Capabilities,
}

impl<A: fmt::Display> fmt::Display for ConcurrencyLimit<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConcurrencyLimit({})", self.inner)
    }
}

impl<A: ProvisioningAdapter> ConcurrencyLimit<A> {
    /// Wrap `inner` with its own semaphore of `max` permits.
    pub fn new(inner: A, max: usize) -> Self {
        let max = max.max(1);
        Self::with_semaphore(inner, max, Arc::new(Semaphore::new(max)))
    }

    fn with_semaphore(inner: A, max: usize, semaphore: Arc<Semaphore>) -> Self {
        let mut caps = inner.capabilities().clone();
        caps.max_concurrency = Some(caps.max_concurrency.map_or(max, |m| m.min(max)));
        Self {
            inner,
            semaphore,
            caps,
        }
    }

    /// The wrapped adapter.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    async fn permit(&self) -> SemaphorePermit<'_> {
        self.semaphore
            .acquire()
            .await
            .expect("the layer never closes its semaphore")
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<A: ProvisioningAdapter> ProvisioningAdapter for ConcurrencyLimit<A> {
    fn info(&self) -> AdapterInfo {
        self.inner.info()
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    async fn check(&self) -> Result<()> {
        let _p = self.permit().await;
        self.inner.check().await
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        let _p = self.permit().await;
        self.inner.apply(op).await
    }

    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        let _p = self.permit().await;
        self.inner.apply_batch(ops).await
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        let _p = self.permit().await;
        self.inner.read(object).await
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        let _p = self.permit().await;
        self.inner.list_accounts(page).await
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        let _p = self.permit().await;
        self.inner.list_entitlements(page).await
    }

    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>> {
        let _p = self.permit().await;
        self.inner.list_assignments(scope, page).await
    }
}
