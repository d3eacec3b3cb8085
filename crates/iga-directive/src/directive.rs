use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    ApprovalRef, EntitlementRef, GrantSource, Identity, ModelError, Operation, OperationId,
    OperationKind, Timestamp,
};

/// The directive schema version this build writes. [`AccessDirective::from_json`]
/// decodes this version and every older one (see `docs/directive-schema.md`).
pub const SCHEMA_VERSION: u32 = 3;

/// Namespace for derived (content-addressed) directive ids.
const DIRECTIVE_NS: Uuid = Uuid::from_bytes([
    0x6b, 0x1f, 0x5e, 0x3a, 0x0c, 0x8d, 0x4e, 0x2b, 0x9a, 0x41, 0x17, 0x5c, 0xd2, 0x03, 0x88, 0xe6,
]);

/// Stable identifier of a directive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DirectiveId(pub String);

impl DirectiveId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(Uuid::new_v4().to_string())
    }

    /// A content-derived id (UUIDv5): the same decision detected twice gets the same id,
    /// so a source that re-reads an approval cannot create a duplicate directive.
    pub fn derived(parts: &[&str]) -> Self {
        let joined = parts.join("\u{1f}");
        Self(Uuid::new_v5(&DIRECTIVE_NS, joined.as_bytes()).to_string())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DirectiveId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for DirectiveId {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

/// The intended change of one directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Create the account (match-then-link if it exists).
    CreateAccount,
    /// Update account attributes.
    UpdateAccount,
    /// Disable the account.
    DisableAccount,
    /// Re-enable the account.
    EnableAccount,
    /// Delete the account.
    DeleteAccount,
    /// Grant an entitlement.
    Grant,
    /// Revoke an entitlement.
    Revoke,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 7] = [
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
        self.operation_kind().as_str()
    }

    /// Whether the action needs an entitlement.
    pub fn needs_entitlement(self) -> bool {
        matches!(self, Self::Grant | Self::Revoke)
    }

    /// The operation kind that carries out this action.
    pub fn operation_kind(self) -> OperationKind {
        match self {
            Self::CreateAccount => OperationKind::CreateAccount,
            Self::UpdateAccount => OperationKind::UpdateAccount,
            Self::DisableAccount => OperationKind::DisableAccount,
            Self::EnableAccount => OperationKind::EnableAccount,
            Self::DeleteAccount => OperationKind::DeleteAccount,
            Self::Grant => OperationKind::Grant,
            Self::Revoke => OperationKind::Revoke,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One intended access change: *who*, *where*, *what*, *why* and *on whose approval*.
///
/// Directives are persisted before anything is executed and travel between products,
/// so the JSON form is versioned (`schema_version`); see `docs/directive-schema.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccessDirective {
    /// Schema version of this document ([`SCHEMA_VERSION`] when written by this build).
    pub schema_version: u32,
    /// Stable id.
    pub id: DirectiveId,
    /// Tenant (customer, Entra tenant, environment) the target system belongs to.
    pub tenant: String,
    /// Target system name, as registered with the orchestrator (`entra`, `ldap-corp`).
    pub system: String,
    /// The identity concerned, with the attributes a create/update needs.
    pub identity: Identity,
    /// The change.
    pub action: Action,
    /// The entitlement, for grant and revoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitlement: Option<EntitlementRef>,
    /// Account attributes to set (create/update); keys are canonical attribute names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// Why (the ledger's reference-count key).
    pub source: GrantSource,
    /// The decision record, when the source is a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRef>,
    /// When the change was requested.
    pub requested_at: Timestamp,
    /// Not to be executed before this instant (a future-dated hire or termination, a
    /// validity end date, a grace period). The orchestrator persists the directive at
    /// once and holds its job until the clock reaches this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Timestamp>,
}

/// Options for [`AccessDirective::operations`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExpandOptions {
    /// Precede a grant with a create-account operation (match-then-link makes it a no-op
    /// when the account exists). Used for targets where accounts are created on demand.
    pub ensure_account: bool,
}

impl ExpandOptions {
    /// Expand grants into create-account + grant.
    pub fn ensure_account() -> Self {
        Self {
            ensure_account: true,
        }
    }
}

impl AccessDirective {
    /// Start building a directive.
    pub fn builder(
        tenant: impl Into<String>,
        system: impl Into<String>,
        identity: Identity,
        action: Action,
    ) -> DirectiveBuilder {
        DirectiveBuilder {
            tenant: tenant.into(),
            system: system.into(),
            identity,
            action,
            id: None,
            entitlement: None,
            attributes: BTreeMap::new(),
            source: None,
            approval: None,
            requested_at: None,
            not_before: None,
            occurrence: None,
        }
    }

    /// Check the directive's invariants; the error names the field.
    pub fn validate(&self) -> Result<(), ModelError> {
        let ctx = || format!("directive {} ({})", self.id, self.action);
        if self.id.0.trim().is_empty() {
            return Err(ModelError::Missing {
                field: "id",
                context: ctx(),
            });
        }
        if self.schema_version == 0 || self.schema_version > SCHEMA_VERSION {
            return Err(ModelError::Invalid {
                field: "schema_version".into(),
                reason: format!(
                    "{} is not a supported version (1..={SCHEMA_VERSION})",
                    self.schema_version
                ),
            });
        }
        if self.tenant.trim().is_empty() {
            return Err(ModelError::Missing {
                field: "tenant",
                context: ctx(),
            });
        }
        if self.system.trim().is_empty() {
            return Err(ModelError::Missing {
                field: "system",
                context: ctx(),
            });
        }
        if self.identity.id.trim().is_empty() {
            return Err(ModelError::Missing {
                field: "identity.id",
                context: ctx(),
            });
        }
        match (&self.entitlement, self.action.needs_entitlement()) {
            (None, true) => {
                return Err(ModelError::Missing {
                    field: "entitlement",
                    context: ctx(),
                });
            }
            (Some(e), true) if e.id.trim().is_empty() => {
                return Err(ModelError::Missing {
                    field: "entitlement.id",
                    context: ctx(),
                });
            }
            (Some(_), false) => {
                return Err(ModelError::Invalid {
                    field: "entitlement".into(),
                    reason: format!("not allowed for action {}", self.action),
                });
            }
            _ => {}
        }
        if self.source.detail().trim().is_empty() {
            return Err(ModelError::Missing {
                field: "source",
                context: ctx(),
            });
        }
        if let GrantSource::Request { approval } = &self.source {
            match &self.approval {
                None => {
                    return Err(ModelError::Missing {
                        field: "approval",
                        context: ctx(),
                    });
                }
                Some(a) if a.key() != *approval => {
                    return Err(ModelError::Invalid {
                        field: "approval".into(),
                        reason: format!(
                            "approval `{}` does not match source request `{approval}`",
                            a.key()
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Expand into the operations an adapter executes, in execution order.
    pub fn operations(&self, opts: ExpandOptions) -> Vec<Operation> {
        let mut kinds = Vec::with_capacity(2);
        if opts.ensure_account && self.action == Action::Grant {
            kinds.push(OperationKind::CreateAccount);
        }
        kinds.push(self.action.operation_kind());
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| Operation {
                id: OperationId(format!("{}.{i}", self.id)),
                directive_id: self.id.clone(),
                tenant: self.tenant.clone(),
                system: self.system.clone(),
                kind,
                identity: self.identity.clone(),
                native_id: None,
                entitlement: if kind.needs_entitlement() {
                    self.entitlement.clone()
                } else {
                    None
                },
                attributes: if matches!(
                    kind,
                    OperationKind::CreateAccount | OperationKind::UpdateAccount
                ) {
                    self.attributes.clone()
                } else {
                    BTreeMap::new()
                },
            })
            .collect()
    }

    /// Encode as JSON (current schema version).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("directive serializes")
    }

    /// Decode from JSON, upgrading any older `schema_version`, then validate.
    ///
    /// Version history:
    /// - **1**: the target system was called `target`; there was no `tenant` (implied
    ///   `default`) and no `attributes`.
    /// - **2**: `tenant` and `attributes`.
    /// - **3**: current; adds the optional `not_before` (absent in older documents,
    ///   which therefore upgrade unchanged).
    pub fn from_json(s: &str) -> Result<Self, ModelError> {
        let mut v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| ModelError::Json(e.to_string()))?;
        let obj = v
            .as_object_mut()
            .ok_or_else(|| ModelError::Json("a directive must be a JSON object".into()))?;
        let version = match obj.get("schema_version") {
            None => {
                return Err(ModelError::Missing {
                    field: "schema_version",
                    context: "a directive document".into(),
                });
            }
            Some(n) => n.as_u64().ok_or_else(|| ModelError::Invalid {
                field: "schema_version".into(),
                reason: format!("expected a positive integer, got {n}"),
            })?,
        };
        if version > u64::from(SCHEMA_VERSION) {
            return Err(ModelError::UnsupportedSchema {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version == 0 {
            return Err(ModelError::Invalid {
                field: "schema_version".into(),
                reason: "0 is not a version".into(),
            });
        }
        if version == 1 {
            if let Some(t) = obj.remove("target") {
                obj.insert("system".into(), t);
            }
            obj.entry("tenant").or_insert_with(|| "default".into());
        }
        if version < u64::from(SCHEMA_VERSION) {
            obj.insert("schema_version".into(), SCHEMA_VERSION.into());
        }
        let d: AccessDirective =
            serde_json::from_value(v).map_err(|e| ModelError::Json(e.to_string()))?;
        d.validate()?;
        Ok(d)
    }
}

/// Builder for [`AccessDirective`]; `build` validates.
#[derive(Debug, Clone)]
pub struct DirectiveBuilder {
    tenant: String,
    system: String,
    identity: Identity,
    action: Action,
    id: Option<DirectiveId>,
    entitlement: Option<EntitlementRef>,
    attributes: BTreeMap<String, serde_json::Value>,
    source: Option<GrantSource>,
    approval: Option<ApprovalRef>,
    requested_at: Option<Timestamp>,
    not_before: Option<Timestamp>,
    occurrence: Option<String>,
}

impl DirectiveBuilder {
    /// Use this id instead of a derived one.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(DirectiveId(id.into()));
        self
    }

    /// The entitlement (grant/revoke).
    pub fn entitlement(mut self, e: EntitlementRef) -> Self {
        self.entitlement = Some(e);
        self
    }

    /// One account attribute (create/update).
    pub fn attribute(mut self, k: impl Into<String>, v: impl Into<serde_json::Value>) -> Self {
        self.attributes.insert(k.into(), v.into());
        self
    }

    /// The grant source.
    pub fn source(mut self, s: GrantSource) -> Self {
        self.source = Some(s);
        self
    }

    /// The approval record. If no source was set, the source becomes the matching
    /// `Request` source.
    pub fn approval(mut self, a: ApprovalRef) -> Self {
        self.approval = Some(a);
        self
    }

    /// When it was requested (default: the approval's decision time, else now).
    pub fn requested_at(mut self, t: Timestamp) -> Self {
        self.requested_at = Some(t);
        self
    }

    /// Hold execution until `t` (see [`AccessDirective::not_before`]).
    pub fn not_before(mut self, t: Timestamp) -> Self {
        self.not_before = Some(t);
        self
    }

    /// A discriminator for decisions that legitimately recur with the same tenant,
    /// system, identity, action, entitlement and source — an HR event id, a rule
    /// evaluation generation — so the second occurrence gets its own derived id
    /// instead of being taken for a re-detection of the first. Not stored.
    pub fn occurrence(mut self, key: impl Into<String>) -> Self {
        self.occurrence = Some(key.into());
        self
    }

    /// Validate and build. Without an explicit id, the id is derived from tenant,
    /// system, identity, action, entitlement and source (plus `not_before` and the
    /// [`occurrence`](Self::occurrence) key when set), so re-detecting the same
    /// decision yields the same directive id.
    pub fn build(self) -> Result<AccessDirective, ModelError> {
        let source = match (self.source, &self.approval) {
            (Some(s), _) => s,
            (None, Some(a)) => GrantSource::Request { approval: a.key() },
            (None, None) => {
                return Err(ModelError::Missing {
                    field: "source",
                    context: format!("{} directive for {}", self.action, self.identity.id),
                });
            }
        };
        let ent_key = self
            .entitlement
            .as_ref()
            .map(|e| e.key())
            .unwrap_or_default();
        let not_before = self.not_before;
        let id = self.id.unwrap_or_else(|| {
            let mut parts: Vec<String> = vec![
                self.tenant.clone(),
                self.system.clone(),
                self.identity.id.clone(),
                self.action.as_str().to_string(),
                ent_key.clone(),
                source.key(),
            ];
            // Only present parts are appended, so ids of directives without them are
            // unchanged from schema version 2.
            if let Some(t) = not_before {
                parts.push(format!("not_before={}", t.to_rfc3339()));
            }
            if let Some(o) = &self.occurrence {
                parts.push(format!("occurrence={o}"));
            }
            let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
            DirectiveId::derived(&refs)
        });
        let requested_at = self
            .requested_at
            .or(self.approval.as_ref().and_then(|a| a.decided_at))
            .unwrap_or_else(chrono::Utc::now);
        let d = AccessDirective {
            schema_version: SCHEMA_VERSION,
            id,
            tenant: self.tenant,
            system: self.system,
            identity: self.identity,
            action: self.action,
            entitlement: self.entitlement,
            attributes: self.attributes,
            source,
            approval: self.approval,
            requested_at,
            not_before,
        };
        d.validate()?;
        Ok(d)
    }
}
