//! Multi-step provisioning: an ordered sequence of other adapters.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use iga_adapter::{
    Account, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo, Error,
    ErrorKind, ObjectRef, Observed, Outcome, Page, PageRequest, ProvisioningAdapter, Result,
};
use iga_directive::{Operation, OperationId};
use serde::{Deserialize, Serialize};

use crate::MULTISTEP_KIND;

/// One step's outcome for one operation, as last observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepRecord {
    /// Step position (0-based).
    pub index: usize,
    /// Step name.
    pub name: String,
    /// The operation id sent to the step (`<operation id>~<step name>`).
    pub operation_id: String,
    /// `applied`, `already_in_state`, `pending`, `error`, or `not_started`.
    pub status: String,
    /// The step's external reference (task id, callback id) while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
    /// The error summary when the step failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

struct Step {
    name: String,
    adapter: Arc<dyn ProvisioningAdapter>,
}

/// An ordered sequence of adapters, e.g. "POST to the app's webhook, then a manual
/// verification task".
///
/// `apply` runs the steps in order with a per-step operation (`<operation
/// id>~<step name>`, the step's own system name) and stops at the first step that is
/// not done: a pending step makes the whole operation `Pending { external_ref:
/// "<step>:<ref>" }`, a failing step fails it (with `step` context). Re-applying walks
/// the sequence again: finished steps answer done (idempotent by outcome), so the
/// sequence resumes where it stopped. Done overall is `Applied` if any step changed
/// something, else the first step's `AlreadyInState`.
///
/// Per-step outcomes of the last walk are kept ([`MultiStepAdapter::steps`]) and
/// logged; the orchestrator signs one receipt for the operation when the whole
/// sequence is done (see the crate README for why not one per step).
///
/// Capabilities are the intersection of the steps' operation and entitlement
/// support; read and list go to the last step that offers them.
pub struct MultiStepAdapter {
    system: String,
    steps: Vec<Step>,
    caps: Capabilities,
    journal: Mutex<HashMap<OperationId, Vec<StepRecord>>>,
}

impl fmt::Debug for MultiStepAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|s| format!("{}={}", s.name, s.adapter))
            .collect();
        f.debug_struct("MultiStepAdapter")
            .field("system", &self.system)
            .field("steps", &steps)
            .finish()
    }
}

impl fmt::Display for MultiStepAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "multistep({})", self.system)
    }
}

impl MultiStepAdapter {
    /// An empty sequence (add steps with [`MultiStepAdapter::step`]).
    pub fn new(system: impl Into<String>) -> Self {
        Self {
            system: system.into(),
            steps: Vec::new(),
            caps: Capabilities::none(),
            journal: Mutex::new(HashMap::new()),
        }
    }

    /// Append a step. Names must be unique and non-blank (`ConfigInvalid`).
    pub fn step(mut self, name: &str, adapter: Arc<dyn ProvisioningAdapter>) -> Result<Self> {
        if name.trim().is_empty() || self.steps.iter().any(|s| s.name == name) {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!(
                    "multi-step system {}: step name `{name}` is blank or repeated",
                    self.system
                ),
            )
            .with_connector(MULTISTEP_KIND));
        }
        let c = adapter.capabilities();
        if self.steps.is_empty() {
            self.caps = c.clone();
            self.caps.batch_max = 1;
        } else {
            let ops: Vec<_> = self
                .caps
                .operations()
                .into_iter()
                .filter(|k| c.supports(*k))
                .collect();
            let mut next = self.caps.clone().with_operations(&ops);
            next.entitlement_kinds.retain(|k| c.supports_entitlement(k));
            next.create_links_existing &= c.create_links_existing;
            next.read |= c.read;
            next.list_accounts |= c.list_accounts;
            next.list_entitlements |= c.list_entitlements;
            next.list_assignments |= c.list_assignments;
            self.caps = next;
        }
        self.caps.asynchronous |= c.asynchronous;
        self.steps.push(Step {
            name: name.to_string(),
            adapter,
        });
        Ok(self)
    }

    /// Per-step outcomes of the last walk of `op` (empty if never applied).
    pub fn steps(&self, op: &OperationId) -> Vec<StepRecord> {
        self.journal
            .lock()
            .expect("journal")
            .get(op)
            .cloned()
            .unwrap_or_default()
    }

    /// The operation a step receives.
    pub fn step_operation(&self, index: usize, op: &Operation) -> Option<Operation> {
        let s = self.steps.get(index)?;
        let mut o = op.clone();
        o.id = OperationId(format!("{}~{}", op.id, s.name));
        o.system = s.adapter.info().instance;
        Some(o)
    }

    fn reader(&self, f: impl Fn(&Capabilities) -> bool) -> Option<&Arc<dyn ProvisioningAdapter>> {
        self.steps
            .iter()
            .rev()
            .find(|s| f(s.adapter.capabilities()))
            .map(|s| &s.adapter)
    }
}

#[async_trait]
impl ProvisioningAdapter for MultiStepAdapter {
    fn info(&self) -> AdapterInfo {
        AdapterInfo::new(MULTISTEP_KIND, self.system.clone())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    async fn check(&self) -> Result<()> {
        for s in &self.steps {
            s.adapter.check().await?;
        }
        Ok(())
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.caps.check(op)?;
        if self.steps.is_empty() {
            return Err(
                Error::new(ErrorKind::ConfigInvalid, "multi-step system without steps")
                    .with_connector(MULTISTEP_KIND),
            );
        }
        let mut records: Vec<StepRecord> = Vec::with_capacity(self.steps.len());
        let mut result: Option<Result<Outcome>> = None;
        let mut changed = false;
        let mut first_noop = None;
        for (i, s) in self.steps.iter().enumerate() {
            let step_op = self.step_operation(i, op).expect("step exists");
            let mut rec = StepRecord {
                index: i,
                name: s.name.clone(),
                operation_id: step_op.id.0.clone(),
                status: "not_started".into(),
                external_ref: None,
                error: None,
            };
            if result.is_some() {
                records.push(rec);
                continue;
            }
            let r = s.adapter.apply(&step_op).await;
            match &r {
                Ok(o) => {
                    rec.status = o.name().to_string();
                    match o {
                        Outcome::Pending { external_ref } => {
                            rec.external_ref = Some(external_ref.clone());
                            result = Some(Ok(Outcome::Pending {
                                external_ref: format!("{}:{external_ref}", s.name),
                            }));
                        }
                        Outcome::Applied { .. } => changed = true,
                        other => {
                            if first_noop.is_none() {
                                first_noop = Some(other.clone());
                            }
                        }
                    }
                }
                Err(e) => {
                    rec.status = "error".into();
                    rec.error = Some(e.summary());
                    result = Some(Err(e
                        .clone()
                        .with_context("step", &s.name)
                        .with_context("step_index", i)));
                }
            }
            tracing::info!(
                connector = MULTISTEP_KIND,
                system = %self.system,
                operation_id = %op.id,
                step = %s.name,
                status = %rec.status,
                "step"
            );
            records.push(rec);
        }
        self.journal
            .lock()
            .expect("journal")
            .insert(op.id.clone(), records);
        match result {
            Some(r) => r,
            None if changed => Ok(Outcome::applied()),
            None => Ok(first_noop.unwrap_or_else(Outcome::applied)),
        }
    }

    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        iga_adapter::batch::sequential(self, ops).await
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        match self.reader(|c| c.read) {
            Some(a) => a.read(object).await,
            None => Err(Error::unsupported("read is not supported")),
        }
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        match self.reader(|c| c.list_accounts) {
            Some(a) => a.list_accounts(page).await,
            None => Err(Error::unsupported("list_accounts is not supported")),
        }
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        match self.reader(|c| c.list_entitlements) {
            Some(a) => a.list_entitlements(page).await,
            None => Err(Error::unsupported("list_entitlements is not supported")),
        }
    }

    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>> {
        match self.reader(|c| c.list_assignments) {
            Some(a) => a.list_assignments(scope, page).await,
            None => Err(Error::unsupported("list_assignments is not supported")),
        }
    }
}
