//! `Timeout`: a deadline per attempt.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use iga_adapter::{
    Account, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo, Error,
    ErrorKind, ObjectRef, Observed, Outcome, Page, PageRequest, ProvisioningAdapter, Result,
};
use iga_directive::Operation;

/// Configuration of [`Timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutLayer {
    per_attempt: Duration,
}

impl TimeoutLayer {
    /// Each call (each attempt, when below a retry layer) gets `per_attempt`.
    pub fn new(per_attempt: Duration) -> Self {
        Self { per_attempt }
    }
}

impl<A> tower_layer::Layer<A> for TimeoutLayer {
    type Service = Timeout<A>;
    fn layer(&self, inner: A) -> Timeout<A> {
        Timeout::new(inner, self.per_attempt)
    }
}

/// Fails a call that does not answer within the deadline with a temporary
/// `Timeout` error (the change may or may not have happened; re-sending is safe for
/// idempotent operations, see [`crate::safe_to_resend`]).
#[derive(Debug)]
pub struct Timeout<A> {
    inner: A,
    per_attempt: Duration,
}

impl<A: fmt::Display> fmt::Display for Timeout<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timeout({})", self.inner)
    }
}

impl<A> Timeout<A> {
    /// Wrap `inner`.
    pub fn new(inner: A, per_attempt: Duration) -> Self {
        Self { inner, per_attempt }
    }

    /// The wrapped adapter.
    pub fn inner(&self) -> &A {
        &self.inner
    }
}

impl<A: ProvisioningAdapter> Timeout<A> {
    fn elapsed(&self, call: &'static str) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "no answer within the per-attempt timeout of {} ms",
                self.per_attempt.as_millis()
            ),
        )
        .with_connector(self.inner.info().kind)
        .with_operation(call)
    }

    async fn run<T>(&self, call: &'static str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.per_attempt, fut).await {
            Ok(r) => r,
            Err(_) => Err(self.elapsed(call)),
        }
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<A: ProvisioningAdapter> ProvisioningAdapter for Timeout<A> {
    fn info(&self) -> AdapterInfo {
        self.inner.info()
    }

    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }

    async fn check(&self) -> Result<()> {
        self.run("check", self.inner.check()).await
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.run("apply", self.inner.apply(op)).await.map_err(|e| {
            if e.operation().is_some() {
                e
            } else {
                e.with_context("operation_id", &op.id)
            }
        })
    }

    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        match tokio::time::timeout(self.per_attempt, self.inner.apply_batch(ops)).await {
            Ok(r) => r,
            Err(_) => {
                let e = self.elapsed("apply_batch");
                ops.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        self.run("read", self.inner.read(object)).await
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        self.run("list_accounts", self.inner.list_accounts(page))
            .await
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        self.run("list_entitlements", self.inner.list_entitlements(page))
            .await
    }

    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>> {
        self.run("list_assignments", self.inner.list_assignments(scope, page))
            .await
    }
}
