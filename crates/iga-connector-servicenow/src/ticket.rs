//! Ticket provisioning: a target that only a human can provision gets a catalog
//! task (`sc_task`) per operation; the job waits (`Pending`) until the task closes.

use std::fmt;

use async_trait::async_trait;
use iga_adapter::{
    Account, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo, Error,
    ErrorKind, ObjectRef, Observed, Outcome, Page, PageRequest, ProvisioningAdapter, Result,
};
use iga_directive::{EntitlementKind, Operation};
use serde_json::{Value, json};

use crate::client::{CONNECTOR, TableClient, field, query_safe};
use crate::config::ServiceNowConfig;

/// ServiceNow as a [`ProvisioningAdapter`] for human-fulfilled systems
/// ("ticket" provisioning).
///
/// `apply` searches `sc_task` by the correlation field (the operation id) first
/// and creates a task only when none exists, so the same operation never opens two
/// tasks. It answers `Pending{external_ref: <task number>}` while the task is open,
/// `Applied` once it is Closed Complete (`3`), and a permanent `Conflict` error when
/// it is Closed Incomplete (`4`) or Closed Skipped (`7`). The orchestrator's
/// external poll re-applies waiting jobs, which is how completion is observed.
#[derive(Debug, Clone)]
pub struct ServiceNowTicketAdapter {
    client: TableClient,
    instance: String,
    assignment_group: Option<String>,
    correlation_field: String,
    caps: Capabilities,
}

impl fmt::Display for ServiceNowTicketAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "servicenow-ticket({})", self.instance)
    }
}

impl ServiceNowTicketAdapter {
    /// A ticket adapter for the instance of `cfg` (its `ticket` section), opening
    /// tasks for grants/revokes of `kinds` and every account operation.
    pub fn new(cfg: &ServiceNowConfig, kinds: Vec<EntitlementKind>) -> Result<Self> {
        let client = TableClient::new(cfg)?;
        if !query_safe(&cfg.ticket.correlation_field)
            || !cfg
                .ticket
                .correlation_field
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
        {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!(
                    "servicenow config: ticket.correlation_field `{}` is not a field name",
                    cfg.ticket.correlation_field
                ),
            ));
        }
        let mut caps = Capabilities::full(kinds);
        caps.create_links_existing = false;
        caps.read = false;
        caps.list_accounts = false;
        caps.list_entitlements = false;
        caps.list_assignments = false;
        caps.asynchronous = true;
        let instance = url::Url::parse(&cfg.instance_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        Ok(Self {
            client,
            instance,
            assignment_group: cfg.ticket.assignment_group.clone(),
            correlation_field: cfg.ticket.correlation_field.clone(),
            caps,
        })
    }

    /// The Table API client (request counter).
    pub fn client(&self) -> &TableClient {
        &self.client
    }

    fn task_body(&self, op: &Operation) -> Value {
        let what = match &op.entitlement {
            Some(e) => format!("{} {} `{}`", op.kind, e.kind.as_str(), e.id),
            None => op.kind.to_string(),
        };
        let short = format!("{what} for {} on {}", op.identity.login(), op.system);
        let details = json!({
            "operation_id": op.id.0,
            "directive_id": op.directive_id.0,
            "tenant": op.tenant,
            "system": op.system,
            "kind": op.kind.as_str(),
            "identity": op.identity.id,
            "login": op.identity.login(),
            "entitlement": op.entitlement.as_ref().map(|e| json!({"kind": e.kind.as_str(), "id": e.id})),
            "attributes": op.attributes,
        });
        let mut body = json!({
            "short_description": short,
            "description": format!(
                "Please carry out this access change, then close the task as Closed Complete \
                 (or Closed Incomplete if it cannot be done).\n\n{}",
                serde_json::to_string_pretty(&details).unwrap_or_default()
            ),
            "correlation_display": "iga-connectors",
        });
        body[self.correlation_field.as_str()] = op.id.0.clone().into();
        if let Some(g) = &self.assignment_group {
            body["assignment_group"] = g.clone().into();
        }
        body
    }
}

#[async_trait]
impl ProvisioningAdapter for ServiceNowTicketAdapter {
    fn info(&self) -> AdapterInfo {
        AdapterInfo::new("servicenow-ticket", self.instance.clone())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    async fn check(&self) -> Result<()> {
        self.client
            .page("sc_task", "", "sys_id", 1, 0)
            .await
            .map(|_| ())
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.caps.check(op)?;
        if !query_safe(&op.id.0) {
            return Err(Error::invalid_input(format!(
                "operation id `{}` cannot be used as a correlation id",
                op.id
            ))
            .with_connector(CONNECTOR));
        }
        let existing = self
            .client
            .page(
                "sc_task",
                &format!(
                    "{}={}^ORDERBYsys_created_on",
                    self.correlation_field, op.id.0
                ),
                "sys_id,number,state",
                1,
                0,
            )
            .await?;
        let Some(task) = existing.first() else {
            let created = self.client.create("sc_task", &self.task_body(op)).await?;
            let number = field(&created, "number").to_string();
            tracing::info!(operation = %op.id, task = %number, "servicenow: task opened");
            return Ok(Outcome::Pending {
                external_ref: number,
            });
        };
        let number = field(task, "number").to_string();
        match field(task, "state") {
            "3" => Ok(Outcome::Applied { native_id: None }),
            s @ ("4" | "7") => Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "task {number} was closed {} by the fulfiller",
                    if s == "4" { "incomplete" } else { "skipped" }
                ),
            )
            .with_connector(CONNECTOR)
            .with_context("task", number)),
            _ => Ok(Outcome::Pending {
                external_ref: number,
            }),
        }
    }

    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        iga_adapter::batch::sequential(self, ops).await
    }

    async fn read(&self, _object: &ObjectRef) -> Result<Option<Observed>> {
        Err(Error::unsupported(
            "ticket provisioning cannot read the target",
        ))
    }

    async fn list_accounts(&self, _page: PageRequest) -> Result<Page<Account>> {
        Err(Error::unsupported(
            "ticket provisioning cannot list accounts",
        ))
    }

    async fn list_entitlements(&self, _page: PageRequest) -> Result<Page<EntitlementInfo>> {
        Err(Error::unsupported(
            "ticket provisioning cannot list entitlements",
        ))
    }

    async fn list_assignments(
        &self,
        _scope: &AssignmentScope,
        _page: PageRequest,
    ) -> Result<Page<Assignment>> {
        Err(Error::unsupported(
            "ticket provisioning cannot list assignments",
        ))
    }
}
