//! `CapabilityCheck`: reject undeclared operations and calls before any I/O.

use std::fmt;

use async_trait::async_trait;
use iga_adapter::{
    Account, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo, Error,
    ObjectRef, Observed, Outcome, Page, PageRequest, ProvisioningAdapter, Result,
};
use iga_directive::Operation;

/// Configuration of [`CapabilityCheck`] (none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapabilityCheckLayer;

impl<A> tower_layer::Layer<A> for CapabilityCheckLayer {
    type Service = CapabilityCheck<A>;
    fn layer(&self, inner: A) -> CapabilityCheck<A> {
        CapabilityCheck::new(inner)
    }
}

/// Checks every operation against `capabilities()` ([`Capabilities::check`]) and every
/// read/list call ([`Capabilities::check_call`]); what is undeclared fails with
/// `Unsupported` and never reaches the inner adapter. In `apply_batch` only the
/// declared items are forwarded; results keep input order.
#[derive(Debug)]
pub struct CapabilityCheck<A> {
    inner: A,
}

impl<A: fmt::Display> fmt::Display for CapabilityCheck<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CapabilityCheck({})", self.inner)
    }
}

impl<A> CapabilityCheck<A> {
    /// Wrap `inner`.
    pub fn new(inner: A) -> Self {
        Self { inner }
    }

    /// The wrapped adapter.
    pub fn inner(&self) -> &A {
        &self.inner
    }
}

impl<A: ProvisioningAdapter> CapabilityCheck<A> {
    fn reject(&self, e: Error, call: &'static str) -> Error {
        e.with_connector(self.inner.info().kind)
            .with_operation(call)
            .with_context("checked_by", "capability-check layer")
    }

    fn call(&self, call: &'static str) -> Result<()> {
        self.inner
            .capabilities()
            .check_call(call)
            .map_err(|e| self.reject(e, call))
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<A: ProvisioningAdapter> ProvisioningAdapter for CapabilityCheck<A> {
    fn info(&self) -> AdapterInfo {
        self.inner.info()
    }

    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }

    async fn check(&self) -> Result<()> {
        self.inner.check().await
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.inner
            .capabilities()
            .check(op)
            .map_err(|e| self.reject(e, "apply"))?;
        self.inner.apply(op).await
    }

    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        let caps = self.inner.capabilities();
        let mut results: Vec<Option<Result<Outcome>>> = Vec::with_capacity(ops.len());
        let mut forward = Vec::new();
        for op in ops {
            match caps.check(op) {
                Ok(()) => {
                    forward.push(op.clone());
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(self.reject(e, "apply_batch")))),
            }
        }
        let mut got = if forward.is_empty() {
            Vec::new()
        } else {
            self.inner.apply_batch(&forward).await
        }
        .into_iter();
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    got.next().unwrap_or_else(|| {
                        Err(Error::new(
                            iga_adapter::ErrorKind::Unexpected,
                            "inner adapter returned fewer results than operations",
                        )
                        .with_connector(self.inner.info().kind)
                        .with_operation("apply_batch"))
                    })
                })
            })
            .collect()
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        self.call("read")?;
        self.inner.read(object).await
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        self.call("list_accounts")?;
        self.inner.list_accounts(page).await
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        self.call("list_entitlements")?;
        self.inner.list_entitlements(page).await
    }

    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>> {
        self.call("list_assignments")?;
        self.inner.list_assignments(scope, page).await
    }
}
