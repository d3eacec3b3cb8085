use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Where an access decision was taken: the approving system and its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApprovalRef {
    /// The deciding system (`servicenow`, `jira`, `sapgrc`, `hr`, ...).
    pub system: String,
    /// The record in that system (RITM number, issue key, request number).
    pub ticket_id: String,
    /// Who approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    /// When the decision was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Timestamp>,
    /// A link to the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl ApprovalRef {
    /// An approval reference with system and ticket id.
    pub fn new(system: impl Into<String>, ticket_id: impl Into<String>) -> Self {
        Self {
            system: system.into(),
            ticket_id: ticket_id.into(),
            approver: None,
            decided_at: None,
            url: None,
        }
    }

    /// Set the approver.
    pub fn approver(mut self, a: impl Into<String>) -> Self {
        self.approver = Some(a.into());
        self
    }

    /// Set the decision time.
    pub fn decided_at(mut self, t: Timestamp) -> Self {
        self.decided_at = Some(t);
        self
    }

    /// Set the record URL.
    pub fn url(mut self, u: impl Into<String>) -> Self {
        self.url = Some(u.into());
        self
    }

    /// `system:ticket_id`, the key a `Request` grant source uses.
    pub fn key(&self) -> String {
        format!("{}:{}", self.system, self.ticket_id)
    }
}

/// Why access exists. The ledger counts one reference per distinct source, so an
/// entitlement granted for two reasons survives the withdrawal of one of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum GrantSource {
    /// A birthright rule matched the identity's attributes.
    Birthright {
        /// Rule name.
        rule: String,
    },
    /// An approved request; `approval` is the [`ApprovalRef::key`] (`system:ticket`).
    Request {
        /// Approval key.
        approval: String,
    },
    /// Delegated by another identity (data owner, manager).
    Delegation {
        /// Identity id of the delegator.
        by: String,
    },
    /// Imported as existing access (migration, "quick populate").
    Import {
        /// Import batch id.
        batch: String,
    },
}

/// The kind of a [`GrantSource`], without its detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantSourceKind {
    /// [`GrantSource::Birthright`]
    Birthright,
    /// [`GrantSource::Request`]
    Request,
    /// [`GrantSource::Delegation`]
    Delegation,
    /// [`GrantSource::Import`]
    Import,
}

impl GrantSourceKind {
    /// Canonical lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Birthright => "birthright",
            Self::Request => "request",
            Self::Delegation => "delegation",
            Self::Import => "import",
        }
    }

    /// Parse the canonical name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "birthright" => Self::Birthright,
            "request" => Self::Request,
            "delegation" => Self::Delegation,
            "import" => Self::Import,
            _ => return None,
        })
    }
}

impl GrantSource {
    /// A birthright source.
    pub fn birthright(rule: impl Into<String>) -> Self {
        Self::Birthright { rule: rule.into() }
    }

    /// A request source from the approving system and ticket.
    pub fn request(system: &str, ticket_id: &str) -> Self {
        Self::Request {
            approval: format!("{system}:{ticket_id}"),
        }
    }

    /// A delegation source.
    pub fn delegation(by: impl Into<String>) -> Self {
        Self::Delegation { by: by.into() }
    }

    /// An import source.
    pub fn import(batch: impl Into<String>) -> Self {
        Self::Import {
            batch: batch.into(),
        }
    }

    /// The kind without detail.
    pub fn kind(&self) -> GrantSourceKind {
        match self {
            Self::Birthright { .. } => GrantSourceKind::Birthright,
            Self::Request { .. } => GrantSourceKind::Request,
            Self::Delegation { .. } => GrantSourceKind::Delegation,
            Self::Import { .. } => GrantSourceKind::Import,
        }
    }

    /// The detail (rule, approval key, delegator, batch).
    pub fn detail(&self) -> &str {
        match self {
            Self::Birthright { rule } => rule,
            Self::Request { approval } => approval,
            Self::Delegation { by } => by,
            Self::Import { batch } => batch,
        }
    }

    /// Canonical key `kind:detail`, e.g. `request:servicenow:RITM0010001`. Two sources
    /// are the same reference in the ledger exactly when their keys are equal.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind().as_str(), self.detail())
    }

    /// Parse a key produced by [`GrantSource::key`].
    pub fn parse_key(key: &str) -> Result<Self, crate::ModelError> {
        let (kind, detail) = key
            .split_once(':')
            .ok_or_else(|| crate::ModelError::Invalid {
                field: "source".into(),
                reason: format!("`{key}` is not of the form kind:detail"),
            })?;
        let kind = GrantSourceKind::parse(kind).ok_or_else(|| crate::ModelError::Invalid {
            field: "source".into(),
            reason: format!(
                "unknown source kind `{kind}` (expected birthright, request, delegation or import)"
            ),
        })?;
        if detail.is_empty() {
            return Err(crate::ModelError::Invalid {
                field: "source".into(),
                reason: format!("`{key}` has an empty detail"),
            });
        }
        let detail = detail.to_string();
        Ok(match kind {
            GrantSourceKind::Birthright => Self::Birthright { rule: detail },
            GrantSourceKind::Request => Self::Request { approval: detail },
            GrantSourceKind::Delegation => Self::Delegation { by: detail },
            GrantSourceKind::Import => Self::Import { batch: detail },
        })
    }
}

impl fmt::Display for GrantSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_keys_round_trip() {
        for s in [
            GrantSource::birthright("finance-default"),
            GrantSource::request("servicenow", "RITM0010001"),
            GrantSource::delegation("bob"),
            GrantSource::import("2026-q1"),
        ] {
            assert_eq!(GrantSource::parse_key(&s.key()).unwrap(), s);
        }
        assert_eq!(
            GrantSource::request("jira", "ACC-12").key(),
            "request:jira:ACC-12"
        );
        let e = GrantSource::parse_key("gift:x").unwrap_err().to_string();
        assert!(e.contains("unknown source kind `gift`"), "{e}");
        assert!(GrantSource::parse_key("birthright:").is_err());
        assert!(GrantSource::parse_key("nocolon").is_err());
    }

    #[test]
    fn source_json_is_tagged() {
        let j = serde_json::to_value(GrantSource::birthright("r1")).unwrap();
        assert_eq!(j, serde_json::json!({"kind": "birthright", "rule": "r1"}));
    }
}
