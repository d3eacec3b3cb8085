//! The manual adapter.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use iga_adapter::{
    Account, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo, Error,
    ErrorKind, NoOpReason, ObjectRef, Observed, Outcome, Page, PageRequest, ProvisioningAdapter,
    Result, RetryStatus, bad_cursor,
};
use iga_directive::{
    EntitlementKind, EntitlementRef, Operation, OperationKind, SharedClock, SystemClock, Timestamp,
};

use crate::KIND;
use crate::task::{Resolution, Task, TaskState, TaskStore, task_id, unknown_task};

/// Configuration of one manual system.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ManualConfig {
    /// The system name (instance label, and the `system` of its tasks).
    pub system: String,
    /// Who handles tasks without a more specific owner.
    pub owner: Option<String>,
    /// The entitlement catalog with per-entitlement owners. When empty, any
    /// entitlement of an accepted kind is accepted (open catalog) and
    /// `list_entitlements` is not offered.
    pub entitlements: Vec<(EntitlementRef, Option<String>)>,
    /// Entitlement kinds grant/revoke accept.
    pub kinds: Vec<EntitlementKind>,
    /// Operation kinds offered (default: all).
    pub operations: Vec<OperationKind>,
}

impl ManualConfig {
    /// A system handled by `owner`, every operation, groups and roles, open catalog.
    pub fn new(system: impl Into<String>, owner: Option<&str>) -> Self {
        Self {
            system: system.into(),
            owner: owner.map(str::to_string),
            entitlements: Vec::new(),
            kinds: vec![EntitlementKind::Group, EntitlementKind::Role],
            operations: OperationKind::ALL.to_vec(),
        }
    }

    /// Add an entitlement to the (then closed) catalog, with its own owner.
    pub fn entitlement(mut self, e: EntitlementRef, owner: Option<&str>) -> Self {
        if !self.kinds.contains(&e.kind) {
            self.kinds.push(e.kind.clone());
        }
        self.entitlements.push((e, owner.map(str::to_string)));
        self
    }

    /// Offer only these operation kinds.
    pub fn operations(mut self, kinds: &[OperationKind]) -> Self {
        self.operations = kinds.to_vec();
        self
    }

    fn catalog_entry(&self, e: &EntitlementRef) -> Option<&(EntitlementRef, Option<String>)> {
        self.entitlements
            .iter()
            .find(|(c, _)| c.kind == e.kind && c.id.eq_ignore_ascii_case(&e.id))
    }

    /// The owner of a task for `op`: the entitlement's owner, else the system's.
    pub fn owner_for(&self, op: &Operation) -> Option<String> {
        op.entitlement
            .as_ref()
            .and_then(|e| self.catalog_entry(e))
            .and_then(|(_, o)| o.clone())
            .or_else(|| self.owner.clone())
    }
}

/// A target handled by people: every operation becomes a [`Task`] for its owner.
///
/// `apply` opens the task (idempotently: the task id derives from the operation id,
/// and an open task with the same effect is reused) and answers
/// `Pending { external_ref: <task id> }`; once the owner completes it, applying the
/// operation again answers `Applied`; a rejected task answers a permanent
/// `PermissionDenied` error carrying the owner's reason. The target's state — what
/// read/list report and what makes a repeated grant `AlreadyInState` — is derived from
/// the completed tasks, in completion order.
#[derive(Clone)]
pub struct ManualAdapter {
    config: Arc<ManualConfig>,
    caps: Capabilities,
    store: Arc<dyn TaskStore>,
    clock: SharedClock,
}

impl fmt::Debug for ManualAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualAdapter")
            .field("system", &self.config.system)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ManualAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "manual({})", self.config.system)
    }
}

/// The target's state as the completed tasks describe it.
#[derive(Debug, Default)]
struct State {
    accounts: BTreeMap<String, Account>,
    grants: BTreeSet<(String, String, String)>,
}

fn ekey(e: &EntitlementRef) -> (String, String) {
    (e.kind.as_str().to_string(), e.id.to_ascii_lowercase())
}

impl State {
    fn holds(&self, who: &str, e: &EntitlementRef) -> bool {
        let (k, i) = ekey(e);
        self.grants.contains(&(who.to_string(), k, i))
    }

    /// The no-op reason if `op` is already in effect.
    fn already(&self, op: &Operation) -> Option<NoOpReason> {
        let who = op.identity.id.as_str();
        let acc = self.accounts.get(who);
        match op.kind {
            OperationKind::CreateAccount => acc.map(|_| NoOpReason::LinkedExisting),
            OperationKind::DeleteAccount => acc.is_none().then_some(NoOpReason::AccountAbsent),
            OperationKind::DisableAccount => acc
                .is_some_and(|a| !a.enabled)
                .then_some(NoOpReason::AlreadyDisabled),
            OperationKind::EnableAccount => acc
                .is_some_and(|a| a.enabled)
                .then_some(NoOpReason::AlreadyEnabled),
            OperationKind::UpdateAccount => acc
                .is_some_and(|a| {
                    op.attributes
                        .iter()
                        .all(|(k, v)| attribute_of(a, k).as_ref() == Some(v))
                })
                .then_some(NoOpReason::NoChange),
            OperationKind::Grant => op
                .entitlement
                .as_ref()
                .is_some_and(|e| self.holds(who, e))
                .then_some(NoOpReason::AlreadyGranted),
            OperationKind::Revoke => op
                .entitlement
                .as_ref()
                .is_some_and(|e| !self.holds(who, e))
                .then_some(NoOpReason::AlreadyAbsent),
            _ => None,
        }
    }

    fn apply(&mut self, op: &Operation) {
        let who = op.identity.id.clone();
        match op.kind {
            OperationKind::CreateAccount => {
                let mut a = Account::new(who.clone());
                a.identity_id = Some(who.clone());
                a.login = Some(op.identity.login().to_string());
                a.display_name = op.identity.display_name.clone();
                a.email = op.identity.email.clone();
                for (k, v) in &op.attributes {
                    set_attribute(&mut a, k, v);
                }
                self.accounts.entry(who).or_insert(a);
            }
            OperationKind::UpdateAccount => {
                if let Some(a) = self.accounts.get_mut(&who) {
                    for (k, v) in &op.attributes {
                        set_attribute(a, k, v);
                    }
                }
            }
            OperationKind::DisableAccount | OperationKind::EnableAccount => {
                if let Some(a) = self.accounts.get_mut(&who) {
                    a.enabled = op.kind == OperationKind::EnableAccount;
                }
            }
            OperationKind::DeleteAccount => {
                self.accounts.remove(&who);
                self.grants.retain(|(w, _, _)| *w != who);
            }
            OperationKind::Grant | OperationKind::Revoke => {
                if let Some(e) = &op.entitlement {
                    let (k, i) = ekey(e);
                    if op.kind == OperationKind::Grant {
                        self.grants.insert((who, k, i));
                    } else {
                        self.grants.remove(&(who, k, i));
                    }
                }
            }
            _ => {}
        }
    }
}

fn attribute_of(a: &Account, k: &str) -> Option<serde_json::Value> {
    match k {
        "display_name" => a.display_name.clone().map(Into::into),
        "email" => a.email.clone().map(Into::into),
        other => a.attributes.get(other).cloned(),
    }
}

fn set_attribute(a: &mut Account, k: &str, v: &serde_json::Value) {
    match (k, v.as_str()) {
        ("display_name", Some(s)) => a.display_name = Some(s.to_string()),
        ("email", Some(s)) => a.email = Some(s.to_string()),
        _ => {
            a.attributes.insert(k.to_string(), v.clone());
        }
    }
}

/// Whether two operations have the same effect (so one open task serves both).
fn same_effect(a: &Operation, b: &Operation) -> bool {
    a.kind == b.kind
        && a.system == b.system
        && a.tenant == b.tenant
        && a.identity.id == b.identity.id
        && a.entitlement.as_ref().map(ekey) == b.entitlement.as_ref().map(ekey)
        && a.attributes == b.attributes
}

/// The permanent error of a rejected task.
pub(crate) fn rejected_error(task: &Task) -> Option<Error> {
    match &task.state {
        TaskState::Rejected { reason, by, .. } => Some(
            Error::new(
                ErrorKind::PermissionDenied,
                format!("manual task {} rejected: {reason}", task.id),
            )
            .with_connector(KIND)
            .with_context("task_id", &task.id)
            .with_context("rejected_by", by.as_deref().unwrap_or("unknown"))
            .set_permanent(),
        ),
        _ => None,
    }
}

/// The outcome a task's state answers for its operation.
pub(crate) fn outcome_of(task: &Task) -> Result<Outcome> {
    match &task.state {
        TaskState::Open => Ok(Outcome::Pending {
            external_ref: task.id.clone(),
        }),
        TaskState::Completed { .. } => Ok(Outcome::Applied {
            native_id: Some(task.operation.identity.id.clone()),
        }),
        TaskState::Rejected { .. } => Err(rejected_error(task).expect("rejected")),
    }
}

impl ManualAdapter {
    /// An adapter over `store` (wall clock).
    pub fn new(config: ManualConfig, store: Arc<dyn TaskStore>) -> Self {
        let closed = !config.entitlements.is_empty();
        let mut caps = Capabilities::full(config.kinds.clone()).with_operations(&config.operations);
        caps.list_entitlements = closed;
        caps.asynchronous = true;
        caps.list_page_max = 500;
        Self {
            config: Arc::new(config),
            caps,
            store,
            clock: SystemClock::shared(),
        }
    }

    /// Use this clock for task times.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ManualConfig {
        &self.config
    }

    /// The task store.
    pub fn store(&self) -> &Arc<dyn TaskStore> {
        &self.store
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Open tasks of this system, oldest first.
    pub async fn open_tasks(&self, limit: usize) -> Result<Vec<Task>> {
        self.store
            .open_tasks(Some(&self.config.system), limit)
            .await
    }

    /// Mark a task done. Applying its operation again then answers `Applied`.
    pub async fn complete(&self, task_id: &str, by: Option<&str>) -> Result<Task> {
        self.resolve(task_id, Resolution::complete(by)).await
    }

    /// Refuse a task. Applying its operation again then answers a permanent error.
    pub async fn reject(&self, task_id: &str, reason: &str, by: Option<&str>) -> Result<Task> {
        self.resolve(task_id, Resolution::reject(reason, by)).await
    }

    /// Complete or reject a task of this system.
    pub async fn resolve(&self, task_id: &str, r: Resolution) -> Result<Task> {
        match self.store.get(task_id).await? {
            Some(t) if t.operation.system == self.config.system => {}
            _ => return Err(unknown_task(task_id)),
        }
        self.store.resolve(task_id, r, self.now()).await
    }

    async fn state(&self) -> Result<State> {
        let mut s = State::default();
        for t in self.store.resolved(&self.config.system).await? {
            if matches!(t.state, TaskState::Completed { .. }) {
                s.apply(&t.operation);
            }
        }
        Ok(s)
    }

    fn summary(op: &Operation) -> String {
        let mut s = op.describe();
        if !op.attributes.is_empty() {
            let keys: Vec<&str> = op.attributes.keys().map(String::as_str).collect();
            s.push_str(&format!(" (set {})", keys.join(", ")));
        }
        s
    }

    /// Open (or find) the task of `op` with this summary; the outcome it answers now.
    pub(crate) async fn open_task(&self, op: &Operation, summary: String) -> Result<Outcome> {
        let task = Task::open(op, self.config.owner_for(op), summary, self.now());
        let stored = self.store.open(task).await?;
        tracing::info!(
            connector = KIND,
            system = %self.config.system,
            task_id = %stored.id,
            state = stored.state.name(),
            "manual task"
        );
        outcome_of(&stored)
    }

    /// The existing task of `op`, if any.
    pub(crate) async fn task_of(&self, op: &Operation) -> Result<Option<Task>> {
        self.store.get(&task_id(op)).await
    }

    fn check_catalog(&self, op: &Operation) -> Result<()> {
        if let Some(e) = &op.entitlement
            && !self.config.entitlements.is_empty()
            && self.config.catalog_entry(e).is_none()
        {
            return Err(Error::not_found(format!(
                "entitlement {e} is not in the catalog of manual system {}",
                self.config.system
            ))
            .with_connector(KIND)
            .with_context("operation_id", &op.id)
            .set_permanent());
        }
        Ok(())
    }

    fn page<T: Clone>(items: Vec<T>, page: &PageRequest, max: usize) -> Result<Page<T>> {
        let start = match &page.cursor {
            None => 0,
            Some(c) => c.parse::<usize>().map_err(|_| bad_cursor(c))?,
        };
        let limit = page.limit.clamp(1, max);
        let end = (start + limit).min(items.len());
        let slice = items.get(start..end).unwrap_or_default().to_vec();
        let next = (end < items.len()).then(|| end.to_string());
        Ok(Page { items: slice, next })
    }
}

#[async_trait]
impl ProvisioningAdapter for ManualAdapter {
    fn info(&self) -> AdapterInfo {
        AdapterInfo::new(KIND, self.config.system.clone())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    async fn check(&self) -> Result<()> {
        self.store.open_tasks(Some(&self.config.system), 1).await?;
        Ok(())
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.caps.check(op)?;
        self.check_catalog(op)?;
        if let Some(t) = self.task_of(op).await? {
            return outcome_of(&t);
        }
        let state = self.state().await?;
        if let Some(reason) = state.already(op) {
            return Ok(Outcome::AlreadyInState {
                reason,
                native_id: state
                    .accounts
                    .contains_key(&op.identity.id)
                    .then(|| op.identity.id.clone()),
            });
        }
        // An open task with the same effect (another directive asking the same thing)
        // serves this operation too.
        let open = self
            .store
            .open_tasks(Some(&self.config.system), 10_000)
            .await?;
        if let Some(t) = open.iter().find(|t| same_effect(&t.operation, op)) {
            return Ok(Outcome::Pending {
                external_ref: t.id.clone(),
            });
        }
        self.open_task(op, Self::summary(op)).await
    }

    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        iga_adapter::batch::sequential(self, ops).await
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        self.caps.check_call("read")?;
        match object {
            ObjectRef::Account(a) => Ok(self
                .state()
                .await?
                .accounts
                .get(&a.identity_id)
                .cloned()
                .map(Observed::Account)),
            ObjectRef::Entitlement(e) => Ok(if self.config.entitlements.is_empty() {
                Some(Observed::Entitlement(EntitlementInfo::new(e.clone())))
            } else {
                self.config
                    .catalog_entry(e)
                    .map(|(c, _)| Observed::Entitlement(EntitlementInfo::new(c.clone())))
            }),
            _ => Err(Error::unsupported("unknown object kind")),
        }
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        self.caps.check_call("list_accounts")?;
        let items: Vec<Account> = self.state().await?.accounts.into_values().collect();
        Self::page(items, &page, self.caps.list_page_max)
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        self.caps.check_call("list_entitlements")?;
        let items: Vec<EntitlementInfo> = self
            .config
            .entitlements
            .iter()
            .map(|(e, _)| EntitlementInfo::new(e.clone()))
            .collect();
        Self::page(items, &page, self.caps.list_page_max)
    }

    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>> {
        self.caps.check_call("list_assignments")?;
        let state = self.state().await?;
        let items: Vec<Assignment> = state
            .grants
            .iter()
            .filter(|(who, k, i)| match scope {
                AssignmentScope::All => true,
                AssignmentScope::Account(a) => *who == a.identity_id,
                AssignmentScope::Entitlement(e) => (k.clone(), i.clone()) == ekey(e),
                _ => false,
            })
            .map(|(who, k, i)| {
                let e = self
                    .config
                    .entitlements
                    .iter()
                    .map(|(c, _)| c)
                    .find(|c| ekey(c) == (k.clone(), i.clone()))
                    .cloned()
                    .unwrap_or_else(|| EntitlementRef::new(EntitlementKind::parse(k), i.clone()));
                Assignment::new(who.clone(), Some(who.clone()), e)
            })
            .collect();
        Self::page(items, &page, self.caps.list_page_max)
    }
}

/// Whether an error is one the manual fallback takes over (permanent, and not a
/// capability mismatch).
pub(crate) fn falls_back(e: &Error) -> bool {
    matches!(e.retry(), RetryStatus::Permanent) && e.kind() != ErrorKind::Unsupported
}
