//! Configuration: instance, credentials, catalog mapping, write-back and ticket
//! settings. Deserializable (unknown keys are rejected, so a typo is an error that
//! names the key) or built in code.

use std::collections::BTreeMap;
use std::time::Duration;

use iga_adapter::{Error, ErrorKind, Secret};
use iga_directive::Action;
use serde::Deserialize;

/// How to authenticate to the instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServiceNowAuth {
    /// Basic auth of an integration user.
    Basic {
        /// User name.
        username: String,
        /// Password (never printed).
        password: Secret,
    },
    /// OAuth 2.0 client credentials against `/oauth_token.do` (enabled on the
    /// instance by property).
    #[serde(rename = "oauth")]
    OAuth {
        /// Client id.
        client_id: String,
        /// Client secret (never printed).
        client_secret: Secret,
    },
}

/// How one catalog item becomes a directive.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogMapping {
    /// The catalog item: its name (`cat_item.name`) or sys_id.
    pub cat_item: String,
    /// Target system name, as registered with the orchestrator.
    pub system: String,
    /// What to do (default: grant).
    #[serde(default = "default_action")]
    pub action: Action,
    /// Entitlement kind (`group`, `role`, ...; default `group`).
    #[serde(default = "default_kind")]
    pub entitlement_kind: String,
    /// A fixed entitlement id for every request of this item...
    #[serde(default)]
    pub entitlement: Option<String>,
    /// ...or the catalog variable holding it.
    #[serde(default)]
    pub entitlement_variable: Option<String>,
    /// The catalog variable naming the identity (default: the RITM's
    /// `requested_for.user_name`).
    #[serde(default)]
    pub identity_variable: Option<String>,
    /// Account attributes from catalog variables: attribute name -> variable name.
    /// Every listed variable is required.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

fn default_action() -> Action {
    Action::Grant
}

fn default_kind() -> String {
    "group".into()
}

impl CatalogMapping {
    /// A grant of a fixed group for catalog item `cat_item` on `system`.
    pub fn group(
        cat_item: impl Into<String>,
        system: impl Into<String>,
        group: impl Into<String>,
    ) -> Self {
        Self {
            cat_item: cat_item.into(),
            system: system.into(),
            action: Action::Grant,
            entitlement_kind: default_kind(),
            entitlement: Some(group.into()),
            entitlement_variable: None,
            identity_variable: None,
            attributes: BTreeMap::new(),
        }
    }

    /// A grant whose group comes from catalog variable `variable`.
    pub fn group_from_variable(
        cat_item: impl Into<String>,
        system: impl Into<String>,
        variable: impl Into<String>,
    ) -> Self {
        let mut m = Self::group(cat_item, system, "");
        m.entitlement = None;
        m.entitlement_variable = Some(variable.into());
        m
    }
}

/// What write-back does on the requested item.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteBackConfig {
    /// RITM `state` on fulfilment (default `3`, Closed Complete); `None` leaves it.
    #[serde(default = "default_fulfilled_state")]
    pub fulfilled_state: Option<String>,
    /// RITM `state` on escalation (default none: only a work note).
    #[serde(default)]
    pub escalated_state: Option<String>,
}

fn default_fulfilled_state() -> Option<String> {
    Some("3".into())
}

impl Default for WriteBackConfig {
    fn default() -> Self {
        Self {
            fulfilled_state: default_fulfilled_state(),
            escalated_state: None,
        }
    }
}

/// Ticket provisioning (`sc_task` for human-fulfilled systems).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketConfig {
    /// Assignment group sys_id or name for new tasks.
    #[serde(default)]
    pub assignment_group: Option<String>,
    /// The field carrying the operation id, searched before creating (default
    /// `correlation_id`).
    #[serde(default = "default_correlation_field")]
    pub correlation_field: String,
}

fn default_correlation_field() -> String {
    "correlation_id".into()
}

impl Default for TicketConfig {
    fn default() -> Self {
        Self {
            assignment_group: None,
            correlation_field: default_correlation_field(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceNowConfig {
    /// Instance URL (`https://acme.service-now.com`).
    pub instance_url: String,
    /// Credentials.
    pub auth: ServiceNowAuth,
    /// Source name: the cursor key and `ApprovalRef::system` (default `servicenow`).
    #[serde(default = "default_name")]
    pub source_name: String,
    /// Tenant of the directives.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// `sysparm_limit` per page (default 100, at most 10000).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// At most this many new approvals per poll (the rest: `more = true`).
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Watermark overlap in seconds (default 120).
    #[serde(default = "default_overlap")]
    pub overlap_secs: u64,
    /// Poll interval in milliseconds (default 5000).
    #[serde(default = "default_interval")]
    pub poll_interval_ms: u64,
    /// Longest single wait honoured on 429/Retry-After, in seconds (default 60).
    #[serde(default = "default_max_wait")]
    pub max_throttle_wait_secs: u64,
    /// Catalog mappings.
    #[serde(default)]
    pub catalog: Vec<CatalogMapping>,
    /// Write-back.
    #[serde(default)]
    pub write_back: WriteBackConfig,
    /// Ticket provisioning.
    #[serde(default)]
    pub ticket: TicketConfig,
}

fn default_name() -> String {
    "servicenow".into()
}
fn default_tenant() -> String {
    "default".into()
}
fn default_page_size() -> u32 {
    100
}
fn default_max_batch() -> usize {
    1000
}
fn default_overlap() -> u64 {
    120
}
fn default_interval() -> u64 {
    5000
}
fn default_max_wait() -> u64 {
    60
}

/// The Table API ceiling for `sysparm_limit`.
pub const MAX_PAGE_SIZE: u32 = 10_000;

impl ServiceNowConfig {
    /// A configuration with defaults for `instance_url` and `auth`.
    pub fn new(instance_url: impl Into<String>, auth: ServiceNowAuth) -> Self {
        Self {
            instance_url: instance_url.into(),
            auth,
            source_name: default_name(),
            tenant: default_tenant(),
            page_size: default_page_size(),
            max_batch: default_max_batch(),
            overlap_secs: default_overlap(),
            poll_interval_ms: default_interval(),
            max_throttle_wait_secs: default_max_wait(),
            catalog: Vec::new(),
            write_back: WriteBackConfig::default(),
            ticket: TicketConfig::default(),
        }
    }

    /// Parse from JSON; errors name the line, column and key.
    pub fn from_json(s: &str) -> Result<Self, Error> {
        let c: Self = serde_json::from_str(s)
            .map_err(|e| Error::new(ErrorKind::ConfigInvalid, format!("servicenow config: {e}")))?;
        c.validate()?;
        Ok(c)
    }

    /// Check values; the error names the offending key.
    pub fn validate(&self) -> Result<(), Error> {
        let bad =
            |m: String| Error::new(ErrorKind::ConfigInvalid, format!("servicenow config: {m}"));
        let u =
            url::Url::parse(&self.instance_url).map_err(|e| bad(format!("instance_url: {e}")))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(bad("instance_url: scheme must be http or https".into()));
        }
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            return Err(bad(format!(
                "page_size: {} is outside 1..={MAX_PAGE_SIZE}",
                self.page_size
            )));
        }
        if self.source_name.trim().is_empty() {
            return Err(bad("source_name: empty".into()));
        }
        for (i, m) in self.catalog.iter().enumerate() {
            if m.system.trim().is_empty() {
                return Err(bad(format!("catalog[{i}].system: empty")));
            }
            if m.action.needs_entitlement()
                && m.entitlement.is_none()
                && m.entitlement_variable.is_none()
            {
                return Err(bad(format!(
                    "catalog[{i}] ({}): {} needs `entitlement` or `entitlement_variable`",
                    m.cat_item, m.action
                )));
            }
        }
        Ok(())
    }

    /// The poll interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    /// The mapping for a catalog item (by name or sys_id).
    pub fn mapping_for(&self, name: &str, sys_id: &str) -> Option<&CatalogMapping> {
        self.catalog
            .iter()
            .find(|m| m.cat_item == name || (!sys_id.is_empty() && m.cat_item == sys_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_typos() {
        let ok = r#"{"instance_url":"https://acme.service-now.com",
            "auth":{"type":"basic","username":"svc","password":"pw"},
            "catalog":[{"cat_item":"Finance access","system":"entra","entitlement":"Finance-Readers"}]}"#;
        let c = ServiceNowConfig::from_json(ok).unwrap();
        assert_eq!(c.catalog[0].action, Action::Grant);
        assert_eq!(c.page_size, 100);
        assert!(!format!("{c:?}").contains("\"pw\""));
        let typo = ok.replace("\"entitlement\"", "\"entitlment\"");
        let e = ServiceNowConfig::from_json(&typo).unwrap_err();
        assert!(e.message().contains("entitlment"), "{}", e.message());
        let big = ok.replace("\"catalog\"", "\"page_size\":20000,\"catalog\"");
        let e = ServiceNowConfig::from_json(&big).unwrap_err();
        assert!(e.message().contains("page_size"), "{}", e.message());
        let oauth = ok.replace(
            r#"{"type":"basic","username":"svc","password":"pw"}"#,
            r#"{"type":"oauth","client_id":"c","client_secret":"s3cr3t"}"#,
        );
        let c = ServiceNowConfig::from_json(&oauth).unwrap();
        assert!(matches!(c.auth, ServiceNowAuth::OAuth { .. }));
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let noent = ok.replace(",\"entitlement\":\"Finance-Readers\"", "");
        let e = ServiceNowConfig::from_json(&noent).unwrap_err();
        assert!(e.message().contains("catalog[0]"), "{}", e.message());
    }
}
