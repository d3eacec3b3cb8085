//! Linked entitlements: an app entitlement granted through the IdP group that
//! controls it.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use iga_adapter::{
    Account, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo, Error,
    ErrorKind, ObjectRef, Observed, Outcome, Page, PageRequest, ProvisioningAdapter,
    ProvisioningAdapterExt, Result, bad_cursor,
};
use iga_directive::{EntitlementRef, Operation, OperationKind};

use crate::LINKED_KIND;

/// One mapping: `app_entitlement` of the app system is held exactly when the account
/// is a member of `idp_group` in the IdP system.
#[derive(Clone)]
#[non_exhaustive]
pub struct LinkedEntitlement {
    /// The app's entitlement (what directives name).
    pub app_entitlement: EntitlementRef,
    /// The IdP system's adapter.
    pub idp: Arc<dyn ProvisioningAdapter>,
    /// The IdP group that controls the app entitlement.
    pub idp_group: EntitlementRef,
}

impl fmt::Debug for LinkedEntitlement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {}@{}",
            self.app_entitlement,
            self.idp_group,
            self.idp.info().instance
        )
    }
}

fn same(a: &EntitlementRef, b: &EntitlementRef) -> bool {
    a.kind == b.kind && a.id.eq_ignore_ascii_case(&b.id)
}

/// An app whose entitlements are provisioned through IdP group membership.
///
/// Grant and revoke of a mapped app entitlement become grant and revoke of its IdP
/// group on the IdP adapter (same operation id, the IdP's system name); the outcome is
/// the IdP's. Reads and lists reflect the mapping: the app entitlement's holders are
/// the IdP group's members. Accounts are the IdP's business (SSO/SCIM provisioning of
/// the app), so account operations are not offered.
///
/// Each IdP group must control one app entitlement only ([`LinkedAdapter::link`]
/// refuses a second), because revoking the app entitlement removes the membership.
#[derive(Clone)]
pub struct LinkedAdapter {
    system: String,
    links: Vec<LinkedEntitlement>,
    caps: Capabilities,
}

impl fmt::Debug for LinkedAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkedAdapter")
            .field("system", &self.system)
            .field("links", &self.links)
            .finish()
    }
}

impl fmt::Display for LinkedAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "linked({})", self.system)
    }
}

impl LinkedAdapter {
    /// An app system with no mapping yet.
    pub fn new(system: impl Into<String>) -> Self {
        let mut caps =
            Capabilities::none().with_operations(&[OperationKind::Grant, OperationKind::Revoke]);
        caps.read = true;
        caps.list_entitlements = true;
        caps.list_assignments = true;
        caps.list_page_max = 500;
        Self {
            system: system.into(),
            links: Vec::new(),
            caps,
        }
    }

    /// Map `app_entitlement` to `idp_group` on `idp`. A second mapping of the same app
    /// entitlement, or of the same IdP group, is `ConfigInvalid`.
    pub fn link(
        mut self,
        app_entitlement: EntitlementRef,
        idp: Arc<dyn ProvisioningAdapter>,
        idp_group: EntitlementRef,
    ) -> Result<Self> {
        let idp_name = idp.info().instance;
        if let Some(l) = self.links.iter().find(|l| {
            same(&l.app_entitlement, &app_entitlement)
                || (same(&l.idp_group, &idp_group) && l.idp.info().instance == idp_name)
        }) {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!(
                    "linked system {}: {app_entitlement} -> {idp_group}@{idp_name} clashes with {l:?}",
                    self.system
                ),
            )
            .with_connector(LINKED_KIND));
        }
        if !idp.capabilities().supports_entitlement(&idp_group.kind)
            || !idp.capabilities().grant
            || !idp.capabilities().revoke
        {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!("IdP {idp_name} cannot grant and revoke {}", idp_group.kind),
            )
            .with_connector(LINKED_KIND));
        }
        if !self.caps.entitlement_kinds.contains(&app_entitlement.kind) {
            self.caps
                .entitlement_kinds
                .push(app_entitlement.kind.clone());
        }
        self.caps.asynchronous |= idp.capabilities().asynchronous;
        self.links.push(LinkedEntitlement {
            app_entitlement,
            idp,
            idp_group,
        });
        Ok(self)
    }

    /// The mappings.
    pub fn links(&self) -> &[LinkedEntitlement] {
        &self.links
    }

    fn link_of(&self, e: &EntitlementRef) -> Option<&LinkedEntitlement> {
        self.links.iter().find(|l| same(&l.app_entitlement, e))
    }

    /// The IdP operation that carries out `op`.
    pub fn idp_operation(
        &self,
        op: &Operation,
    ) -> Result<(Arc<dyn ProvisioningAdapter>, Operation)> {
        let e = op
            .entitlement
            .as_ref()
            .ok_or_else(|| Error::invalid_input(format!("{} needs an entitlement", op.kind)))?;
        let l = self.link_of(e).ok_or_else(|| {
            Error::not_found(format!(
                "app entitlement {e} of {} is not linked to an IdP group",
                self.system
            ))
            .with_connector(LINKED_KIND)
            .with_context("operation_id", &op.id)
        })?;
        let mut idp_op = op.clone();
        idp_op.system = l.idp.info().instance;
        idp_op.entitlement = Some(l.idp_group.clone());
        idp_op.native_id = None;
        Ok((l.idp.clone(), idp_op))
    }

    async fn holders(
        &self,
        l: &LinkedEntitlement,
        account: Option<&AssignmentScope>,
    ) -> Result<Vec<Assignment>> {
        let scope = match account {
            Some(s) => s.clone(),
            None => AssignmentScope::Entitlement(l.idp_group.clone()),
        };
        Ok(l.idp
            .list_all_assignments(&scope)
            .await?
            .into_iter()
            .filter(|a| same(&a.entitlement, &l.idp_group))
            .map(|a| {
                Assignment::new(
                    a.account_native_id,
                    a.identity_id,
                    l.app_entitlement.clone(),
                )
            })
            .collect())
    }

    fn page<T: Clone>(items: Vec<T>, page: &PageRequest, max: usize) -> Result<Page<T>> {
        let start = match &page.cursor {
            None => 0,
            Some(c) => c.parse::<usize>().map_err(|_| bad_cursor(c))?,
        };
        let end = (start + page.limit.clamp(1, max)).min(items.len());
        let slice = items.get(start..end).unwrap_or_default().to_vec();
        Ok(Page {
            items: slice,
            next: (end < items.len()).then(|| end.to_string()),
        })
    }
}

#[async_trait]
impl ProvisioningAdapter for LinkedAdapter {
    fn info(&self) -> AdapterInfo {
        AdapterInfo::new(LINKED_KIND, self.system.clone())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    async fn check(&self) -> Result<()> {
        for l in &self.links {
            l.idp.check().await?;
        }
        Ok(())
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.caps.check(op)?;
        let (idp, idp_op) = self.idp_operation(op)?;
        idp.apply(&idp_op).await
    }

    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        iga_adapter::batch::sequential(self, ops).await
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        match object {
            ObjectRef::Entitlement(e) => Ok(self
                .link_of(e)
                .map(|l| Observed::Entitlement(EntitlementInfo::new(l.app_entitlement.clone())))),
            ObjectRef::Account(_) => Ok(None),
            _ => Err(Error::unsupported("unknown object kind")),
        }
    }

    async fn list_accounts(&self, _: PageRequest) -> Result<Page<Account>> {
        Err(self
            .caps
            .check_call("list_accounts")
            .expect_err("list_accounts undeclared"))
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        let items = self
            .links
            .iter()
            .map(|l| EntitlementInfo::new(l.app_entitlement.clone()))
            .collect();
        Self::page(items, &page, self.caps.list_page_max)
    }

    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>> {
        let mut items = Vec::new();
        match scope {
            AssignmentScope::Entitlement(e) => {
                if let Some(l) = self.link_of(e) {
                    items = self.holders(l, None).await?;
                }
            }
            AssignmentScope::Account(_) => {
                for l in &self.links {
                    items.extend(self.holders(l, Some(scope)).await?);
                }
            }
            _ => {
                for l in &self.links {
                    items.extend(self.holders(l, None).await?);
                }
            }
        }
        items.sort();
        Self::page(items, &page, self.caps.list_page_max)
    }
}
