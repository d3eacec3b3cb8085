//! `JiraTicketAdapter`: provisioning by ticket, for systems only a person can change.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use iga_adapter::{
    Account, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo, Error,
    ErrorKind, ObjectRef, Observed, Outcome, Page, PageRequest, ProvisioningAdapter, Result,
};
use iga_directive::Operation;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::KIND;
use crate::adf;
use crate::client::Client;
use crate::config::{JiraConnection, TicketConfig};

/// Provisions by creating a Jira issue per operation and following it to its
/// resolution.
///
/// `apply` is idempotent: it first searches for the operation's correlation label
/// (`iga-op-<hash of the operation id>`) and creates an issue only when none
/// exists. While the issue is open it answers `Pending { external_ref: <key> }`;
/// once resolved as done (`done_resolutions`) `Applied`; resolved any other way
/// (won't do, declined, ...) a permanent `PermissionDenied` naming the issue and
/// resolution. The orchestrator re-applies `AwaitingExternal` jobs periodically.
#[derive(Clone)]
pub struct JiraTicketAdapter {
    inner: Arc<TicketInner>,
}

struct TicketInner {
    conn: JiraConnection,
    cfg: TicketConfig,
    client: Client,
    caps: Capabilities,
}

impl fmt::Debug for JiraTicketAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JiraTicketAdapter")
            .field("system", &self.inner.cfg.system)
            .field("project", &self.inner.cfg.project_key)
            .field("client", &self.inner.client)
            .finish()
    }
}

impl fmt::Display for JiraTicketAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "jira-ticket({} -> {})",
            self.inner.cfg.system, self.inner.cfg.project_key
        )
    }
}

/// The correlation label of an operation: stable, no spaces, at most 255 chars.
pub fn correlation_label(op: &Operation) -> String {
    let h = Sha256::digest(op.id.0.as_bytes());
    format!("iga-op-{}", &hex::encode(h)[..32])
}

impl JiraTicketAdapter {
    /// An adapter creating tickets per `cfg` over `conn`.
    pub fn new(conn: JiraConnection, cfg: TicketConfig) -> Result<Self> {
        if cfg.project_key.trim().is_empty()
            || !cfg
                .project_key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!(
                    "ticket project key {:?} is not a Jira project key",
                    cfg.project_key
                ),
            )
            .with_connector(KIND));
        }
        let mut caps = Capabilities::none().with_operations(&cfg.operations);
        caps.entitlement_kinds = cfg.entitlement_kinds.clone();
        caps.asynchronous = true;
        caps.max_concurrency = Some(4);
        let client = Client::new(&conn)?;
        Ok(Self {
            inner: Arc::new(TicketInner {
                conn,
                cfg,
                client,
                caps,
            }),
        })
    }

    async fn find(&self, label: &str) -> Result<Option<Value>> {
        let jql = format!(
            "project = \"{}\" AND labels = \"{label}\" ORDER BY created ASC",
            self.inner.cfg.project_key
        );
        let body =
            json!({"jql": jql, "fields": ["status", "resolution", "labels"], "maxResults": 2});
        let page = self
            .inner
            .client
            .call_found(Method::POST, "/rest/api/3/search/jql", &[], Some(&body))
            .await?
            .unwrap_or_default();
        Ok(page
            .get("issues")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .cloned())
    }

    fn describe(&self, op: &Operation) -> (String, String) {
        let ent = op
            .entitlement
            .as_ref()
            .map(|e| format!(" {} {}", e.kind, e.id))
            .unwrap_or_default();
        let summary = format!(
            "[{}] {}{} for {}",
            op.system,
            op.kind,
            ent,
            op.identity.login()
        );
        let mut text = format!(
            "Please carry out this access change by hand, then resolve this issue as Done (or Won't Do if it must not happen).\nSystem: {}\nOperation: {}\nIdentity: {}",
            op.system, op.kind, op.identity.id
        );
        if let Some(e) = &op.entitlement {
            text.push_str(&format!("\nEntitlement: {} {}", e.kind, e.id));
        }
        if let Some(n) = &op.native_id {
            text.push_str(&format!("\nAccount: {n}"));
        }
        for (k, v) in &op.attributes {
            if !iga_adapter::redact::is_sensitive_key(k) {
                text.push_str(&format!("\n{k}: {v}"));
            }
        }
        text.push_str(&format!(
            "\nOperation id: {}\nDirective id: {}",
            op.id, op.directive_id
        ));
        (summary, text)
    }

    fn judge(&self, issue: &Value) -> Result<Outcome> {
        let key = issue
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let category = issue
            .pointer("/fields/status/statusCategory/key")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if category != "done" {
            return Ok(Outcome::Pending { external_ref: key });
        }
        let resolution = issue
            .pointer("/fields/resolution/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let is = |list: &[String]| list.iter().any(|r| r.eq_ignore_ascii_case(resolution));
        if is(&self.inner.cfg.done_resolutions) {
            return Ok(Outcome::Applied { native_id: None });
        }
        Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "ticket {key} was resolved as {:?}: the change will not be made",
                if resolution.is_empty() {
                    "(no resolution)"
                } else {
                    resolution
                }
            ),
        )
        .with_connector(KIND)
        .with_context("ticket", &key)
        .set_permanent())
    }
}

#[async_trait]
impl ProvisioningAdapter for JiraTicketAdapter {
    fn info(&self) -> AdapterInfo {
        AdapterInfo::new("jira-ticket", self.inner.cfg.system.clone())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.inner.caps
    }

    async fn check(&self) -> Result<()> {
        self.inner
            .client
            .call_found(Method::GET, "/rest/api/3/myself", &[], None)
            .await
            .map(|_| ())
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.inner.caps.check(op)?;
        let label = correlation_label(op);
        if let Some(issue) = self.find(&label).await? {
            return self.judge(&issue);
        }
        let (summary, text) = self.describe(op);
        let body = json!({"fields": {
            "project": {"key": self.inner.cfg.project_key},
            "issuetype": {"name": self.inner.cfg.issue_type},
            "summary": summary,
            "description": adf::doc(&text),
            "labels": [label],
        }});
        let created = self
            .inner
            .client
            .call_found(Method::POST, "/rest/api/3/issue", &[], Some(&body))
            .await?
            .unwrap_or_default();
        let key = created
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::new(ErrorKind::Unexpected, "issue created without a key")
                    .with_connector(KIND)
            })?
            .to_string();
        tracing::info!(connector = KIND, ticket = %key, url = %self.inner.conn.browse_url(&key), "provisioning ticket created");
        Ok(Outcome::Pending { external_ref: key })
    }

    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        iga_adapter::batch::sequential(self, ops).await
    }

    async fn read(&self, _object: &ObjectRef) -> Result<Option<Observed>> {
        self.inner.caps.check_call("read")?;
        Err(Error::unsupported("read"))
    }

    async fn list_accounts(&self, _page: PageRequest) -> Result<Page<Account>> {
        self.inner.caps.check_call("list_accounts")?;
        Err(Error::unsupported("list_accounts"))
    }

    async fn list_entitlements(&self, _page: PageRequest) -> Result<Page<EntitlementInfo>> {
        self.inner.caps.check_call("list_entitlements")?;
        Err(Error::unsupported("list_entitlements"))
    }

    async fn list_assignments(
        &self,
        _scope: &AssignmentScope,
        _page: PageRequest,
    ) -> Result<Page<Assignment>> {
        self.inner.caps.check_call("list_assignments")?;
        Err(Error::unsupported("list_assignments"))
    }
}
