use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{DirectiveId, EntitlementRef, Identity};

/// Identifier of one operation: `<directive id>.<index>`. Adapters that support
/// idempotency keys use it as the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OperationId(pub String);

impl fmt::Display for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an adapter executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OperationKind {
    /// Create an account; on conflict, match the existing account and link to it.
    CreateAccount,
    /// Set account attributes.
    UpdateAccount,
    /// Disable the account.
    DisableAccount,
    /// Enable the account.
    EnableAccount,
    /// Delete the account.
    DeleteAccount,
    /// Grant the entitlement to the account.
    Grant,
    /// Revoke the entitlement from the account.
    Revoke,
}

impl OperationKind {
    /// Every kind.
    pub const ALL: [OperationKind; 7] = [
        Self::CreateAccount,
        Self::UpdateAccount,
        Self::DisableAccount,
        Self::EnableAccount,
        Self::DeleteAccount,
        Self::Grant,
        Self::Revoke,
    ];

    /// Canonical snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateAccount => "create_account",
            Self::UpdateAccount => "update_account",
            Self::DisableAccount => "disable_account",
            Self::EnableAccount => "enable_account",
            Self::DeleteAccount => "delete_account",
            Self::Grant => "grant",
            Self::Revoke => "revoke",
        }
    }

    /// Parse the canonical name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the kind refers to an entitlement.
    pub fn needs_entitlement(self) -> bool {
        matches!(self, Self::Grant | Self::Revoke)
    }

    /// Whether the kind removes access (revoke, disable, delete): the kinds that
    /// guardrails count and that dependency ordering puts first on the way out.
    pub fn removes_access(self) -> bool {
        matches!(
            self,
            Self::Revoke | Self::DisableAccount | Self::DeleteAccount
        )
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One unit of work for an adapter. A directive expands into one or more operations
/// ([`crate::AccessDirective::operations`]).
///
/// Every kind is safe to send again: grant/revoke/enable/disable/update converge on a
/// state, delete of an absent account and create of an existing one (match-then-link)
/// answer "already in state". That is what makes retries and crash replays safe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Operation {
    /// Stable id (`<directive id>.<index>`).
    pub id: OperationId,
    /// The directive this operation belongs to.
    pub directive_id: DirectiveId,
    /// Tenant.
    pub tenant: String,
    /// Target system name.
    pub system: String,
    /// What to do.
    pub kind: OperationKind,
    /// The identity the account belongs to (attributes used for create and matching).
    pub identity: Identity,
    /// The target's id for the account, when already known (after a create or a link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_id: Option<String>,
    /// The entitlement, for grant and revoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitlement: Option<EntitlementRef>,
    /// Attributes to set (create/update).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

impl Operation {
    /// A bare operation; mostly for tests and typed conveniences. The id is random
    /// unless set with [`Operation::with_id`].
    pub fn new(
        tenant: impl Into<String>,
        system: impl Into<String>,
        kind: OperationKind,
        identity: Identity,
    ) -> Self {
        let directive_id = DirectiveId::random();
        Self {
            id: OperationId(format!("{directive_id}.0")),
            directive_id,
            tenant: tenant.into(),
            system: system.into(),
            kind,
            identity,
            native_id: None,
            entitlement: None,
            attributes: BTreeMap::new(),
        }
    }

    /// Set the entitlement.
    pub fn with_entitlement(mut self, e: EntitlementRef) -> Self {
        self.entitlement = Some(e);
        self
    }

    /// Set one attribute.
    pub fn with_attribute(mut self, k: impl Into<String>, v: impl Into<serde_json::Value>) -> Self {
        self.attributes.insert(k.into(), v.into());
        self
    }

    /// Set the id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = OperationId(id.into());
        self
    }

    /// Set the target's account id.
    pub fn with_native_id(mut self, id: impl Into<String>) -> Self {
        self.native_id = Some(id.into());
        self
    }

    /// A short human description: `grant group:G to alice on entra@acme`.
    pub fn describe(&self) -> String {
        match &self.entitlement {
            Some(e) => format!(
                "{} {} {} {} on {}@{}",
                self.kind,
                e,
                if self.kind == OperationKind::Revoke {
                    "from"
                } else {
                    "to"
                },
                self.identity.id,
                self.system,
                self.tenant
            ),
            None => {
                format!(
                    "{} {} on {}@{}",
                    self.kind, self.identity.id, self.system, self.tenant
                )
            }
        }
    }
}
