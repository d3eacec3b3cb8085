//! The implementor contract.

use std::fmt;

use async_trait::async_trait;
use iga_directive::Operation;

use crate::{
    Account, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo, ObjectRef,
    Observed, Outcome, Page, PageRequest, Result,
};

/// One target system, seen through operations.
///
/// This is the implementor contract: it is minimal, object-safe and used as
/// `Arc<dyn ProvisioningAdapter>`. Typed calls (`create_user`, `add_to_group`, ...)
/// live in [`crate::ProvisioningAdapterExt`], which every adapter gets for free.
/// Wrappers (retry, rate limit, timeout, capability check, ...) implement this same
/// trait around an inner adapter; every method is required so a wrapper can never
/// silently inherit a default.
///
/// # What this abstraction is not
/// It is not a generic SCIM/LDAP client and does not expose the target's object
/// model: it speaks accounts, entitlements and assignments. Reference counting,
/// ordering, long retries and receipts live above it, in the engine crates.
///
/// # Contract shared by every method
/// - Errors are [`crate::Error`] with a kind and a retry status classified by the
///   connector in one place. No secret may appear in an error, an outcome, `Debug`,
///   `Display` or a log line.
/// - An operation the adapter did not declare in [`ProvisioningAdapter::capabilities`]
///   returns [`crate::ErrorKind::Unsupported`] **without I/O**.
#[async_trait]
pub trait ProvisioningAdapter: fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// Connector kind and instance label.
    ///
    /// # Contract
    /// No I/O; constant for the adapter's lifetime; the instance label carries no
    /// secret.
    fn info(&self) -> AdapterInfo;

    /// What the adapter supports.
    ///
    /// # Contract
    /// No I/O; constant for the adapter's lifetime (read once from the target at build
    /// time if needed, e.g. SCIM `ServiceProviderConfig`). Honest: every declared
    /// operation works, every undeclared one fails with `Unsupported` before I/O.
    fn capabilities(&self) -> &Capabilities;

    /// Check credentials and reachability.
    ///
    /// # Contract
    /// No side effects on the target. `Unauthenticated` / `PermissionDenied` for
    /// credential problems, `Unavailable` / `Timeout` for reachability.
    async fn check(&self) -> Result<()>;

    /// Execute one operation.
    ///
    /// # Contract
    /// - Idempotent by outcome: applying an operation whose effect is already present
    ///   returns `Ok(Outcome::AlreadyInState { .. })`, never an error — grant of a held
    ///   entitlement, revoke of an absent one, disable of a disabled account, delete of
    ///   an absent account, update with unchanged values.
    /// - Create is match-then-link: when a matching account exists (same identity or
    ///   login), return `AlreadyInState { reason: LinkedExisting, native_id }`.
    ///   Targets that cannot match declare `create_links_existing = false`.
    /// - Because of the two rules above, sending the same operation again after a
    ///   timeout ("applied but response lost") causes no second effective change.
    /// - A target that completes later returns `Ok(Outcome::Pending { external_ref })`.
    async fn apply(&self, op: &Operation) -> Result<Outcome>;

    /// Execute several operations, using the target's native batch where it has one.
    ///
    /// # Contract
    /// - Returns exactly one result per input, in input order, whatever order the
    ///   target answered in.
    /// - A failure of one item does not fail the others; a failure of the whole call
    ///   (e.g. the batch request itself was throttled) is reported on every item.
    /// - Callers never send more than `capabilities().batch_max` operations; an
    ///   adapter may reject a larger slice with `InvalidInput` or split it.
    /// - Adapters without a native batch call [`crate::batch::sequential`].
    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>>;

    /// Read one account or entitlement.
    ///
    /// # Contract
    /// `Ok(None)` when it does not exist (not an error). `Unsupported` without I/O if
    /// `capabilities().read` is false.
    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>>;

    /// One page of accounts.
    ///
    /// # Contract
    /// Stable order across pages; following `next` to the end yields every account
    /// exactly once when nothing changes meanwhile; an empty target yields one empty
    /// last page. A malformed cursor is `InvalidInput`.
    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>>;

    /// One page of entitlements. Same paging contract as `list_accounts`.
    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>>;

    /// One page of assignments in `scope`. Same paging contract as `list_accounts`;
    /// an account or entitlement that does not exist yields an empty page.
    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>>;
}

macro_rules! forward_adapter {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<A: ProvisioningAdapter + ?Sized> ProvisioningAdapter for $ty {
            fn info(&self) -> AdapterInfo {
                (**self).info()
            }
            fn capabilities(&self) -> &Capabilities {
                (**self).capabilities()
            }
            async fn check(&self) -> Result<()> {
                (**self).check().await
            }
            async fn apply(&self, op: &Operation) -> Result<Outcome> {
                (**self).apply(op).await
            }
            async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
                (**self).apply_batch(ops).await
            }
            async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
                (**self).read(object).await
            }
            async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
                (**self).list_accounts(page).await
            }
            async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
                (**self).list_entitlements(page).await
            }
            async fn list_assignments(
                &self,
                scope: &AssignmentScope,
                page: PageRequest,
            ) -> Result<Page<Assignment>> {
                (**self).list_assignments(scope, page).await
            }
        }
    )*};
}

forward_adapter!(std::sync::Arc<A>, Box<A>);
