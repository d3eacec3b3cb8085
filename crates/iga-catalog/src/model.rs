//! The catalog's data model: entries, lifecycle, risk, actors, delegations, history.

use iga_directive::{EntitlementKind, EntitlementRef, Timestamp};
use iga_resolver::{Dependency, Endpoint};
use serde::{Deserialize, Serialize};

/// How risky holding an entitlement is (drives review frequency and approvals).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// Low risk.
    #[default]
    Low,
    /// Medium risk.
    Medium,
    /// High risk.
    High,
    /// Critical (privileged) access.
    Critical,
}

impl RiskLevel {
    /// Parse `low` / `medium` / `high` / `critical` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            "critical" => Some(Self::Critical),
            _ => None,
        }
    }
}

/// Lifecycle of a catalog entry: `draft → published → deprecated` (a draft may also be
/// deprecated directly, e.g. a discovered group nobody wants to offer).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Being described; not requestable yet.
    #[default]
    Draft,
    /// Offered (requestable if flagged), feeds the resolver and linked provisioning.
    Published,
    /// Retired; kept for history and existing holders' reviews.
    Deprecated,
}

impl Lifecycle {
    /// Parse `draft` / `published` / `deprecated` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "draft" => Some(Self::Draft),
            "published" => Some(Self::Published),
            "deprecated" => Some(Self::Deprecated),
            _ => None,
        }
    }

    /// Whether `self → to` is an allowed transition (staying put is allowed).
    pub fn can_move_to(self, to: Lifecycle) -> bool {
        use Lifecycle::*;
        matches!(
            (self, to),
            (Draft, Draft)
                | (Published, Published)
                | (Deprecated, Deprecated)
                | (Draft, Published)
                | (Published, Deprecated)
                | (Draft, Deprecated)
        )
    }
}

/// Which of the six methods last wrote an entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Manual curation through the API or the CLI.
    #[default]
    Manual,
    /// Bulk upload of a CSV/XLSX file.
    Upload,
    /// The Quick Populate API.
    QuickPopulate,
    /// Connector discovery (`list_entitlements`).
    Discovery,
    /// An adopted role-intelligence suggestion.
    Suggestion,
}

/// The IdP group that controls an app entitlement (linked-entitlement provisioning,
/// `iga_connector_methods::LinkedAdapter`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LinkedGroup {
    /// The IdP's system name (the adapter's `AdapterInfo::instance`).
    pub idp_system: String,
    /// The group in the IdP.
    pub group: EntitlementRef,
}

/// One entitlement in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// Target system name (as in `Operation::system`).
    pub system: String,
    /// Kind, id and display name of the entitlement.
    pub entitlement: EntitlementRef,
    /// What it grants, for requesters and reviewers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Identity ids of the data owners (who may manage the entry and delegate).
    #[serde(default)]
    pub owners: Vec<String>,
    /// Risk level.
    #[serde(default)]
    pub risk: RiskLevel,
    /// Whether it may be requested.
    #[serde(default)]
    pub requestable: bool,
    /// Whether it is included in access certifications.
    #[serde(default)]
    pub certifiable: bool,
    /// What must be provisioned before it (whole systems or entitlements), in the
    /// resolver's [`Endpoint`] shape; see [`CatalogEntry::dependencies`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prerequisites: Vec<Endpoint>,
    /// The IdP group controlling it, for linked-entitlement provisioning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_group: Option<LinkedGroup>,
    /// Lifecycle state.
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// Which method last wrote it.
    #[serde(default)]
    pub origin: Origin,
    /// When connector discovery last listed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<Timestamp>,
    /// Set when a discovery run of its system no longer listed it (cleared when it
    /// reappears).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vanished_at: Option<Timestamp>,
}

impl CatalogEntry {
    /// A draft entry with no owners, low risk, neither requestable nor certifiable.
    pub fn new(system: impl Into<String>, entitlement: EntitlementRef) -> Self {
        Self {
            system: system.into(),
            entitlement,
            description: None,
            owners: Vec::new(),
            risk: RiskLevel::Low,
            requestable: false,
            certifiable: false,
            prerequisites: Vec::new(),
            linked_group: None,
            lifecycle: Lifecycle::Draft,
            origin: Origin::Manual,
            last_seen_at: None,
            vanished_at: None,
        }
    }

    /// Set the display name.
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.entitlement.display_name = Some(name.into());
        self
    }

    /// Set the description.
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }

    /// Add an owner.
    pub fn owner(mut self, id: impl Into<String>) -> Self {
        self.owners.push(id.into());
        self
    }

    /// Set the risk level.
    pub fn risk(mut self, r: RiskLevel) -> Self {
        self.risk = r;
        self
    }

    /// Set the requestable and certifiable flags.
    pub fn flags(mut self, requestable: bool, certifiable: bool) -> Self {
        self.requestable = requestable;
        self.certifiable = certifiable;
        self
    }

    /// Add a prerequisite.
    pub fn prerequisite(mut self, e: Endpoint) -> Self {
        self.prerequisites.push(e);
        self
    }

    /// Set the controlling IdP group.
    pub fn linked_to(mut self, idp_system: impl Into<String>, group: EntitlementRef) -> Self {
        self.linked_group = Some(LinkedGroup {
            idp_system: idp_system.into(),
            group,
        });
        self
    }

    /// The entry's key (see [`EntryKey`]).
    pub fn key(&self) -> EntryKey {
        EntryKey::new(&self.system, &self.entitlement.kind, &self.entitlement.id)
    }

    /// The resolver dependencies of this entry: each prerequisite before this
    /// entitlement (strict), ready for `iga_resolver::ResolverConfig::depends`.
    pub fn dependencies(&self) -> Vec<Dependency> {
        let me = Endpoint::entitlement(
            self.system.clone(),
            EntitlementRef::new(self.entitlement.kind.clone(), self.entitlement.id.clone()),
        );
        self.prerequisites
            .iter()
            .map(|p| Dependency::new(p.clone(), me.clone()))
            .collect()
    }

    /// The same entry with the bookkeeping fields (lifecycle, origin, discovery
    /// times) cleared, for "did the content change" comparisons.
    pub(crate) fn content(&self) -> CatalogEntry {
        CatalogEntry {
            lifecycle: Lifecycle::Draft,
            origin: Origin::Manual,
            last_seen_at: None,
            vanished_at: None,
            ..self.clone()
        }
    }
}

/// The storage key of an entry: `system/kind/id`, each part with `%`, `/` and `|`
/// percent-encoded, so keys sort by system and a system's entries are one key range.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntryKey(String);

pub(crate) fn esc(s: &str) -> String {
    s.replace('%', "%25")
        .replace('/', "%2F")
        .replace('|', "%7C")
}

impl EntryKey {
    /// The key of `id` of `kind` in `system`.
    pub fn new(system: &str, kind: &EntitlementKind, id: &str) -> Self {
        Self(format!(
            "{}/{}/{}",
            esc(system),
            esc(&kind.to_string()),
            esc(id)
        ))
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first key of `system`'s range is strictly after this prefix.
    pub(crate) fn system_prefix(system: &str) -> String {
        format!("{}/", esc(system))
    }
}

impl std::fmt::Display for EntryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who performs a catalog write.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// Identity id.
    pub id: String,
    /// A catalog administrator may write any entry, run discovery and delegate on
    /// anybody's behalf.
    #[serde(default)]
    pub admin: bool,
}

impl Actor {
    /// A regular user (owner or delegate).
    pub fn user(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            admin: false,
        }
    }

    /// A catalog administrator.
    pub fn admin(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            admin: true,
        }
    }
}

/// What a delegation covers; every set field must match the entry (unset = any).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DelegationScope {
    /// Only entries of this system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Only entries of this kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<EntitlementKind>,
    /// Only the entry with this entitlement id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitlement: Option<String>,
}

impl DelegationScope {
    /// Everything the delegating owner owns.
    pub fn all() -> Self {
        Self::default()
    }

    /// Entries of one system.
    pub fn system(system: impl Into<String>) -> Self {
        Self {
            system: Some(system.into()),
            ..Self::default()
        }
    }

    /// Restrict to a kind.
    pub fn kind(mut self, k: EntitlementKind) -> Self {
        self.kind = Some(k);
        self
    }

    /// Restrict to one entitlement id.
    pub fn entitlement(mut self, id: impl Into<String>) -> Self {
        self.entitlement = Some(id.into());
        self
    }

    /// Whether `e` is inside the scope.
    pub fn covers(&self, e: &CatalogEntry) -> bool {
        self.system.as_ref().is_none_or(|s| *s == e.system)
            && self.kind.as_ref().is_none_or(|k| *k == e.entitlement.kind)
            && self
                .entitlement
                .as_ref()
                .is_none_or(|id| *id == e.entitlement.id)
    }
}

/// An owner's delegation of the management of (some of) their entries to another
/// identity, valid in `[not_before, not_after)` unless revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    /// Id (assigned on creation; `delegate|uuid`).
    #[serde(default)]
    pub id: String,
    /// The owner whose authority is delegated.
    pub owner: String,
    /// Who receives it.
    pub delegate: String,
    /// What it covers.
    #[serde(default)]
    pub scope: DelegationScope,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity (exclusive); delegations are always time-bound.
    pub not_after: Timestamp,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

impl Delegation {
    /// A delegation from `owner` to `delegate` over `scope`, valid in
    /// `[not_before, not_after)`.
    pub fn new(
        owner: impl Into<String>,
        delegate: impl Into<String>,
        scope: DelegationScope,
        not_before: Timestamp,
        not_after: Timestamp,
    ) -> Self {
        Self {
            id: String::new(),
            owner: owner.into(),
            delegate: delegate.into(),
            scope,
            not_before,
            not_after,
            revoked_at: None,
        }
    }

    /// Whether it is in force at `now`.
    pub fn active_at(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.not_before <= now && now < self.not_after
    }
}

/// One history record (append-only): who did what to which entry or delegation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: String,
    /// What: `create`, `update`, `publish`, `deprecate`, `discover`, `vanish`,
    /// `reappear`, `delegate`, `revoke_delegation`.
    pub action: String,
    /// The entry key or delegation id.
    pub target: String,
    /// The method, or the authority used (`owner`, `admin`, `delegation <id>`).
    pub via: String,
    /// Version of the target document after the write.
    pub version: u64,
    /// The written body (entry or delegation JSON).
    pub after: serde_json::Value,
}
