//! Typed conveniences over the operation-centric trait.

use std::collections::BTreeMap;

use async_trait::async_trait;
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};

use crate::{
    Account, AccountRef, Assignment, AssignmentScope, EntitlementInfo, Error, ErrorKind, ObjectRef,
    Observed, Outcome, PageRequest, ProvisioningAdapter, Result,
};

/// The typed calls people know, built as operations on top of
/// [`ProvisioningAdapter`]. Blanket-implemented for every adapter (including
/// `dyn ProvisioningAdapter`); never implement it by hand.
///
/// Operations built here use tenant `default` and the adapter's instance label as the
/// system name, and a random operation id.
#[async_trait]
pub trait ProvisioningAdapterExt: ProvisioningAdapter {
    /// Create an account for `identity` with extra attributes (match-then-link).
    async fn create_user(
        &self,
        identity: &Identity,
        attributes: BTreeMap<String, serde_json::Value>,
    ) -> Result<Outcome> {
        let mut op = self.op(OperationKind::CreateAccount, identity);
        op.attributes = attributes;
        self.apply(&op).await
    }

    /// Set attributes of `identity`'s account.
    async fn update_user(
        &self,
        identity: &Identity,
        attributes: BTreeMap<String, serde_json::Value>,
    ) -> Result<Outcome> {
        let mut op = self.op(OperationKind::UpdateAccount, identity);
        op.attributes = attributes;
        self.apply(&op).await
    }

    /// Disable `identity`'s account.
    async fn deactivate_user(&self, identity: &Identity) -> Result<Outcome> {
        self.apply(&self.op(OperationKind::DisableAccount, identity))
            .await
    }

    /// Re-enable `identity`'s account.
    async fn reactivate_user(&self, identity: &Identity) -> Result<Outcome> {
        self.apply(&self.op(OperationKind::EnableAccount, identity))
            .await
    }

    /// Delete `identity`'s account.
    async fn delete_user(&self, identity: &Identity) -> Result<Outcome> {
        self.apply(&self.op(OperationKind::DeleteAccount, identity))
            .await
    }

    /// Grant any entitlement.
    async fn grant(&self, identity: &Identity, entitlement: &EntitlementRef) -> Result<Outcome> {
        let op = self
            .op(OperationKind::Grant, identity)
            .with_entitlement(entitlement.clone());
        self.apply(&op).await
    }

    /// Revoke any entitlement.
    async fn revoke(&self, identity: &Identity, entitlement: &EntitlementRef) -> Result<Outcome> {
        let op = self
            .op(OperationKind::Revoke, identity)
            .with_entitlement(entitlement.clone());
        self.apply(&op).await
    }

    /// Add `identity` to a group.
    async fn add_to_group(&self, identity: &Identity, group: &str) -> Result<Outcome> {
        self.grant(identity, &EntitlementRef::group(group)).await
    }

    /// Remove `identity` from a group.
    async fn remove_from_group(&self, identity: &Identity, group: &str) -> Result<Outcome> {
        self.revoke(identity, &EntitlementRef::group(group)).await
    }

    /// Read `identity`'s account, if any.
    async fn get_user(&self, identity: &Identity) -> Result<Option<Account>> {
        match self
            .read(&ObjectRef::Account(AccountRef::of(identity)))
            .await?
        {
            None => Ok(None),
            Some(Observed::Account(a)) => Ok(Some(a)),
            Some(other) => Err(Error::new(
                ErrorKind::Unexpected,
                format!("read of an account returned {other:?}"),
            )),
        }
    }

    /// The entitlements `identity`'s account holds (all pages).
    async fn get_user_groups(&self, identity: &Identity) -> Result<Vec<EntitlementRef>> {
        let scope = AssignmentScope::Account(AccountRef::of(identity));
        Ok(self
            .list_all_assignments(&scope)
            .await?
            .into_iter()
            .map(|a| a.entitlement)
            .collect())
    }

    /// Every account (follows pages to the end).
    async fn list_all_accounts(&self) -> Result<Vec<Account>> {
        let mut out = Vec::new();
        let mut page = PageRequest::first(self.capabilities().list_page_max.max(1));
        loop {
            let p = self.list_accounts(page.clone()).await?;
            out.extend(p.items);
            match p.next {
                Some(c) => page.cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// Every entitlement (follows pages to the end).
    async fn list_all_entitlements(&self) -> Result<Vec<EntitlementInfo>> {
        let mut out = Vec::new();
        let mut page = PageRequest::first(self.capabilities().list_page_max.max(1));
        loop {
            let p = self.list_entitlements(page.clone()).await?;
            out.extend(p.items);
            match p.next {
                Some(c) => page.cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// Every assignment in `scope` (follows pages to the end).
    async fn list_all_assignments(&self, scope: &AssignmentScope) -> Result<Vec<Assignment>> {
        let mut out = Vec::new();
        let mut page = PageRequest::first(self.capabilities().list_page_max.max(1));
        loop {
            let p = self.list_assignments(scope, page.clone()).await?;
            out.extend(p.items);
            match p.next {
                Some(c) => page.cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// Build an operation addressed to this adapter.
    fn op(&self, kind: OperationKind, identity: &Identity) -> Operation {
        Operation::new("default", self.info().instance, kind, identity.clone())
    }
}

impl<A: ProvisioningAdapter + ?Sized> ProvisioningAdapterExt for A {}
