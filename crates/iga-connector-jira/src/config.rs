//! Configuration. `Debug` never shows a secret (`Secret` redacts itself).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::FixedOffset;
use iga_adapter::{Error, ErrorKind, Result, Secret};
use iga_directive::{Action, EntitlementKind, OperationKind};
use iga_http::OAuth2Config;
use url::Url;

use crate::KIND;

fn config_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::ConfigInvalid, msg).with_connector(KIND)
}

/// How the connector authenticates to Jira Cloud.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum JiraAuth {
    /// Basic `email:api_token` (API-token traffic stays on burst rate limits).
    Basic {
        /// Account e-mail.
        email: String,
        /// API token.
        api_token: Secret,
    },
    /// OAuth 2.0 bearer token (3LO apps call `api.atlassian.com/ex/jira/{cloudId}`).
    Bearer(Secret),
    /// OAuth2 client credentials; the token is cached and refreshed by `iga-http`.
    OAuth2(Box<OAuth2Config>),
}

/// Where Jira is and how to talk to it; shared by the source and the ticket adapter.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JiraConnection {
    /// Site base URL, e.g. `https://acme.atlassian.net` (no `/rest/...`).
    pub base_url: Url,
    /// Credentials.
    pub auth: JiraAuth,
    /// Per-request timeout. Default 30 s.
    pub request_timeout: Duration,
    /// How often a 429/503 is retried after waiting its `Retry-After`. Default 3.
    pub max_throttle_retries: u32,
    /// Longest `Retry-After` waited in place; a longer one is returned as a
    /// temporary `RateLimited` error carrying the wait. Default 60 s.
    pub max_throttle_wait: Duration,
}

impl JiraConnection {
    /// A connection to `base_url` with `auth`.
    pub fn new(base_url: &str, auth: JiraAuth) -> Result<Self> {
        let mut url =
            Url::parse(base_url).map_err(|e| config_err(format!("invalid Jira base URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(config_err("Jira base URL must be http or https"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(config_err(
                "put credentials in JiraAuth, not in the base URL",
            ));
        }
        let trimmed = url.path().trim_end_matches('/').to_string();
        url.set_path(&trimmed);
        Ok(Self {
            base_url: url,
            auth,
            request_timeout: Duration::from_secs(30),
            max_throttle_retries: 3,
            max_throttle_wait: Duration::from_secs(60),
        })
    }

    /// The browse URL of an issue.
    pub fn browse_url(&self, key: &str) -> String {
        format!(
            "{}/browse/{key}",
            self.base_url.as_str().trim_end_matches('/')
        )
    }
}

/// Which Jira field carries what. Field ids are Jira ids (`customfield_10010`,
/// `summary`, `reporter`).
///
/// Values are read as: a string; an object's first present key of
/// `emailAddress`, `accountId`, `value`, `name`, `key`, `id` (identity) or `value`,
/// `name`, `key`, `id` (others); or an array of those (several entitlements make
/// several directives). Anything else is rejected naming the issue and field.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FieldMapping {
    /// The field naming the person who gets access.
    pub identity: String,
    /// The field naming the entitlement(s).
    pub entitlement: String,
    /// The field naming the action (`None`: always [`FieldMapping::default_action`]).
    pub action: Option<String>,
    /// The field naming the target system (`None`: [`FieldMapping::default_system`]).
    pub system: Option<String>,
    /// The target system when no system field is mapped or it is empty.
    pub default_system: Option<String>,
    /// The action when no action field is mapped.
    pub default_action: Action,
    /// Action field values (compared case-insensitively) → action. Default:
    /// `grant`/`add`/`assign` → Grant, `revoke`/`remove` → Revoke.
    pub action_values: BTreeMap<String, Action>,
    /// Kind of the entitlements. Default `group`.
    pub entitlement_kind: EntitlementKind,
}

impl FieldMapping {
    /// A mapping with identity and entitlement fields, granting by default.
    pub fn new(identity: impl Into<String>, entitlement: impl Into<String>) -> Self {
        let mut action_values = BTreeMap::new();
        for v in ["grant", "add", "assign"] {
            action_values.insert(v.to_string(), Action::Grant);
        }
        for v in ["revoke", "remove"] {
            action_values.insert(v.to_string(), Action::Revoke);
        }
        Self {
            identity: identity.into(),
            entitlement: entitlement.into(),
            action: None,
            system: None,
            default_system: None,
            default_action: Action::Grant,
            action_values,
            entitlement_kind: EntitlementKind::Group,
        }
    }

    /// Read the action from `field`.
    pub fn action_field(mut self, field: impl Into<String>) -> Self {
        self.action = Some(field.into());
        self
    }

    /// Read the target system from `field`.
    pub fn system_field(mut self, field: impl Into<String>) -> Self {
        self.system = Some(field.into());
        self
    }

    /// The target system when none is mapped.
    pub fn default_system(mut self, system: impl Into<String>) -> Self {
        self.default_system = Some(system.into());
        self
    }

    /// Map one more action field value.
    pub fn action_value(mut self, value: &str, action: Action) -> Self {
        self.action_values
            .insert(value.to_ascii_lowercase(), action);
        self
    }

    /// The entitlement kind.
    pub fn entitlement_kind(mut self, kind: EntitlementKind) -> Self {
        self.entitlement_kind = kind;
        self
    }

    /// The field ids the search must return.
    pub(crate) fn fields(&self) -> Vec<String> {
        let mut f = vec![
            "status".to_string(),
            "updated".to_string(),
            "summary".to_string(),
            self.identity.clone(),
            self.entitlement.clone(),
        ];
        f.extend(self.action.iter().cloned());
        f.extend(self.system.iter().cloned());
        f.sort();
        f.dedup();
        f
    }
}

/// The approval source's configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JiraSourceConfig {
    /// Source name and cursor key; also the `ApprovalRef::system`. Default `jira`.
    pub name: String,
    /// Tenant of the directives.
    pub tenant: String,
    /// The JQL filter selecting candidate requests, without `updated` bounds or
    /// ordering, e.g. `project = ACC AND status = Approved`. The source adds
    /// `AND updated >= "<watermark - overlap>" ORDER BY updated ASC, key ASC`.
    pub jql: String,
    /// Field mapping.
    pub mapping: FieldMapping,
    /// Issues per search page (Jira caps it; default 100).
    pub page_size: u32,
    /// Safety overlap below the watermark (covers JQL minute precision, clock skew
    /// and indexing lag). Default 5 minutes.
    pub overlap: Duration,
    /// The API user's time zone, in which Jira reads JQL date literals. Default UTC.
    pub jql_timezone: FixedOffset,
    /// Poll interval suggested to the orchestrator. Default 60 s.
    pub poll_interval: Duration,
    /// Transition (by name) run when every directive of an issue was fulfilled.
    /// Default `Done`; `None` = comment only.
    pub done_transition: Option<String>,
    /// Transition (by name) run when a directive needs attention (escalation).
    /// Default none (comment only).
    pub attention_transition: Option<String>,
}

impl JiraSourceConfig {
    /// A source for `tenant` reading issues matching `jql` with `mapping`.
    pub fn new(tenant: impl Into<String>, jql: impl Into<String>, mapping: FieldMapping) -> Self {
        Self {
            name: "jira".into(),
            tenant: tenant.into(),
            jql: jql.into(),
            mapping,
            page_size: 100,
            overlap: Duration::from_secs(300),
            jql_timezone: FixedOffset::east_opt(0).expect("UTC"),
            poll_interval: Duration::from_secs(60),
            done_transition: Some("Done".into()),
            attention_transition: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.tenant.trim().is_empty() {
            return Err(config_err("jira source: tenant is empty"));
        }
        if self.jql.trim().is_empty() {
            return Err(config_err("jira source: jql is empty"));
        }
        let upper = self.jql.to_ascii_uppercase();
        if upper.contains("ORDER BY") {
            return Err(config_err(
                "jira source: jql must not contain ORDER BY (the source orders by updated, key)",
            ));
        }
        if self.page_size == 0 || self.page_size > 5000 {
            return Err(config_err("jira source: page_size must be 1..=5000"));
        }
        if self.mapping.system.is_none() && self.mapping.default_system.is_none() {
            return Err(config_err(
                "jira source: mapping needs a system field or a default system",
            ));
        }
        Ok(())
    }
}

/// Ticket provisioning: which project and issue type tickets go to, and what
/// their resolutions mean.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TicketConfig {
    /// The system this adapter stands for (instance label).
    pub system: String,
    /// Project key of created tickets.
    pub project_key: String,
    /// Issue type name. Default `Task`.
    pub issue_type: String,
    /// Operation kinds a person will carry out. Default grant and revoke.
    pub operations: Vec<OperationKind>,
    /// Entitlement kinds accepted. Default group and role.
    pub entitlement_kinds: Vec<EntitlementKind>,
    /// Resolutions meaning "done" (case-insensitive). Default `Done`, `Fixed`.
    pub done_resolutions: Vec<String>,
    /// Resolutions meaning "will not be done". Default `Won't Do`, `Won't Fix`,
    /// `Declined`, `Rejected`. A done-category status with any other resolution is
    /// treated as rejected too (never as applied).
    pub rejected_resolutions: Vec<String>,
}

impl TicketConfig {
    /// Tickets for `system` in project `project_key`.
    pub fn new(system: impl Into<String>, project_key: impl Into<String>) -> Self {
        Self {
            system: system.into(),
            project_key: project_key.into(),
            issue_type: "Task".into(),
            operations: vec![OperationKind::Grant, OperationKind::Revoke],
            entitlement_kinds: vec![EntitlementKind::Group, EntitlementKind::Role],
            done_resolutions: vec!["Done".into(), "Fixed".into()],
            rejected_resolutions: vec![
                "Won't Do".into(),
                "Won't Fix".into(),
                "Declined".into(),
                "Rejected".into(),
            ],
        }
    }
}
