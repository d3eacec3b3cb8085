use std::collections::BTreeMap;
use std::fmt;

use iga_directive::{
    AccessDirective, ApprovalRef, AttemptRecord, EntitlementRef, FulfillmentJob, GrantSource,
    JobState, Timestamp,
};
use serde::{Deserialize, Serialize};

/// One assignment: an entitlement of one target system held by one identity of one
/// tenant. The ledger counts grant sources per assignment.
///
/// The entitlement is identified by kind and id; `display_name` is ignored by the store
/// (and returned as `None`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AssignmentKey {
    /// Tenant.
    pub tenant: String,
    /// Identity id.
    pub identity: String,
    /// Target system name.
    pub system: String,
    /// The entitlement in that system.
    pub entitlement: EntitlementRef,
}

impl AssignmentKey {
    /// A key; the entitlement's display name is dropped.
    pub fn new(
        tenant: impl Into<String>,
        identity: impl Into<String>,
        system: impl Into<String>,
        entitlement: EntitlementRef,
    ) -> Self {
        Self {
            tenant: tenant.into(),
            identity: identity.into(),
            system: system.into(),
            entitlement: EntitlementRef::new(entitlement.kind, entitlement.id),
        }
    }

    /// The assignment a grant/revoke directive is about (`None` without entitlement).
    pub fn from_directive(d: &AccessDirective) -> Option<Self> {
        d.entitlement
            .as_ref()
            .map(|e| Self::new(&d.tenant, &d.identity.id, &d.system, e.clone()))
    }

    pub(crate) fn validate(&self) -> Result<(), crate::LedgerError> {
        for (field, v) in [
            ("tenant", &self.tenant),
            ("identity", &self.identity),
            ("system", &self.system),
            ("entitlement.id", &self.entitlement.id),
        ] {
            if v.trim().is_empty() {
                return Err(crate::LedgerError::invalid(
                    field,
                    "must not be empty in an assignment key",
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for AssignmentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {}@{} for {}",
            self.entitlement, self.system, self.tenant, self.identity
        )
    }
}

/// Who/why/when of a ledger change, written to the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChangeContext {
    /// When the change happened.
    pub at: Timestamp,
    /// Who (or what component) made it.
    pub actor: Option<String>,
    /// The approval behind it, if any.
    pub approval: Option<ApprovalRef>,
    /// The directive that caused it, if any.
    pub directive_id: Option<String>,
}

impl ChangeContext {
    /// A context with only a time.
    pub fn at(at: Timestamp) -> Self {
        Self {
            at,
            actor: None,
            approval: None,
            directive_id: None,
        }
    }

    /// The context of a directive: its approval and id.
    pub fn from_directive(d: &AccessDirective, at: Timestamp) -> Self {
        Self {
            at,
            actor: None,
            approval: d.approval.clone(),
            directive_id: Some(d.id.0.clone()),
        }
    }

    /// Set the actor.
    pub fn actor(mut self, a: impl Into<String>) -> Self {
        self.actor = Some(a.into());
        self
    }

    /// Set the approval.
    pub fn approval(mut self, a: ApprovalRef) -> Self {
        self.approval = Some(a);
        self
    }

    /// Set the directive id.
    pub fn directive(mut self, id: impl Into<String>) -> Self {
        self.directive_id = Some(id.into());
        self
    }
}

/// Grant or revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Add a grant source.
    Grant,
    /// Remove a grant source.
    Revoke,
}

/// One intended ledger change (for [`crate::LedgerStore::apply_changes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerChange {
    /// Grant or revoke.
    pub kind: ChangeKind,
    /// The assignment.
    pub key: AssignmentKey,
    /// The source added or removed.
    pub source: GrantSource,
    /// History context.
    pub ctx: ChangeContext,
}

impl LedgerChange {
    /// A grant.
    pub fn grant(key: AssignmentKey, source: GrantSource, ctx: ChangeContext) -> Self {
        Self {
            kind: ChangeKind::Grant,
            key,
            source,
            ctx,
        }
    }

    /// A revoke.
    pub fn revoke(key: AssignmentKey, source: GrantSource, ctx: ChangeContext) -> Self {
        Self {
            kind: ChangeKind::Revoke,
            key,
            source,
            ctx,
        }
    }
}

/// What a grant or revoke decision means for the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionOutcome {
    /// First intended source (0→1): the target must be granted.
    GrantTarget,
    /// Another source already intends this access: counted, no target change.
    GrantCounted,
    /// This source already holds the assignment: reported no-op.
    GrantAlreadyHeld,
    /// Last intended source removed (1→0): real deprovisioning is due.
    RevokeTarget,
    /// Other sources still hold the assignment: counted, no target change.
    RevokeCounted,
    /// This source does not hold the assignment: reported no-op; nothing else changed.
    RevokeNotHeld,
}

impl DecisionOutcome {
    /// Whether the target system must change (grant 0→1 or revoke 1→0).
    pub fn target_change(self) -> bool {
        matches!(self, Self::GrantTarget | Self::RevokeTarget)
    }

    /// Whether the call changed nothing.
    pub fn is_noop(self) -> bool {
        matches!(self, Self::GrantAlreadyHeld | Self::RevokeNotHeld)
    }
}

/// The result of a grant or revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// What it means for the target.
    pub outcome: DecisionOutcome,
    /// Intended sources of the assignment after the change.
    pub intended_sources: u32,
    /// Confirmed sources after the change (> 0 ⇔ the target has the access).
    pub confirmed_sources: u32,
}

/// Which terminal success is being confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmKind {
    /// The target now has the access.
    Grant,
    /// The target no longer has the access.
    Revoke,
}

/// A confirmation of a terminal success on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// Grant or revoke confirmed.
    pub kind: ConfirmKind,
    /// The assignment.
    pub key: AssignmentKey,
    /// The source of the directive that was executed.
    pub source: GrantSource,
    /// History context.
    pub ctx: ChangeContext,
}

impl Confirmation {
    /// A confirmed grant.
    pub fn grant(key: AssignmentKey, source: GrantSource, ctx: ChangeContext) -> Self {
        Self {
            kind: ConfirmKind::Grant,
            key,
            source,
            ctx,
        }
    }

    /// A confirmed revoke.
    pub fn revoke(key: AssignmentKey, source: GrantSource, ctx: ChangeContext) -> Self {
        Self {
            kind: ConfirmKind::Revoke,
            key,
            source,
            ctx,
        }
    }
}

/// What a confirmation left to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmOutcome {
    /// A grant was confirmed but no source intends the access any more (it was revoked
    /// while the grant was in flight): the target must be revoked again.
    pub revoke_needed: bool,
    /// A revoke was confirmed but a source intends the access (granted while the revoke
    /// was in flight): the target must be granted again.
    pub regrant_needed: bool,
    /// Intended sources after the confirmation.
    pub intended_sources: u32,
    /// Confirmed sources after the confirmation.
    pub confirmed_sources: u32,
}

/// One source of one assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    /// The source.
    pub source: GrantSource,
    /// The source intends the access (granted and not revoked).
    pub intended: bool,
    /// The target confirmed the access while this source backed it. A source that is
    /// confirmed but no longer intended is a revoke awaiting confirmation.
    pub confirmed: bool,
}

/// Intended vs confirmed counts of one assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentState {
    /// The assignment.
    pub key: AssignmentKey,
    /// Number of sources that intend the access.
    pub intended_sources: u32,
    /// Number of confirmed sources; the target has the access exactly when > 0.
    pub confirmed_sources: u32,
}

impl AssignmentState {
    /// Whether the target (as last confirmed) has the access.
    pub fn target_visible(&self) -> bool {
        self.confirmed_sources > 0
    }

    /// Whether any source intends the access.
    pub fn intended(&self) -> bool {
        self.intended_sources > 0
    }

    /// Whether intent and confirmed target state agree.
    pub fn in_sync(&self) -> bool {
        self.intended() == self.target_visible()
    }
}

/// Flags of one (assignment, source) row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SourceFlags {
    /// See [`SourceState::intended`].
    pub intended: bool,
    /// See [`SourceState::confirmed`].
    pub confirmed: bool,
}

/// The whole ledger as (assignment, source key) → flags: what
/// [`crate::SqliteLedger::snapshot`] reads and [`crate::SqliteLedger::replay_history`]
/// rebuilds from the history.
pub type LedgerSnapshot = BTreeMap<(AssignmentKey, String), SourceFlags>;

/// A stored execution receipt: opaque to this crate except for its chain position.
///
/// The store is append-only (no update or delete API; SQLite triggers reject both) and
/// keeps one head per chain. Appending checks the chain: after the first receipt of a
/// chain, `seq` must be the head's `seq + 1` and `prev_sha256` must equal the head's
/// `payload_sha256`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRecord {
    /// Unique receipt id.
    pub receipt_id: String,
    /// The hash chain it belongs to.
    pub chain_id: String,
    /// Position in the chain.
    pub seq: u64,
    /// The directive executed.
    pub directive_id: String,
    /// The operation executed.
    pub operation_id: String,
    /// The compact JWS.
    pub jws: String,
    /// Hex SHA-256 that the next receipt's `prev_sha256` must carry.
    pub payload_sha256: String,
    /// Hex SHA-256 of the previous receipt (`None` for a chain's first receipt).
    pub prev_sha256: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
}

/// The last receipt of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// Chain.
    pub chain_id: String,
    /// Sequence number of the last receipt.
    pub seq: u64,
    /// Its id.
    pub receipt_id: String,
    /// Its `payload_sha256`.
    pub payload_sha256: String,
}

/// One row of the audit outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    /// Outbox id (increasing).
    pub id: i64,
    /// When it was written.
    pub created_at: Timestamp,
    /// The event, as JSON.
    pub event_json: String,
}

/// A task queued for a human owner (manual provisioning, or fallback after a connector
/// failed permanently).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualTask {
    /// Task id.
    pub id: String,
    /// The job it belongs to, if any.
    pub job_id: Option<String>,
    /// Tenant.
    pub tenant: String,
    /// Target system.
    pub system: String,
    /// The owner who must act.
    pub owner: Option<String>,
    /// One-line summary (no secrets).
    pub summary: String,
    /// Extra detail as JSON.
    pub detail_json: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A job together with its directive, as claimed for execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    /// The job (now `InFlight`).
    pub job: FulfillmentJob,
    /// Its directive.
    pub directive: AccessDirective,
}

/// Result of persisting directives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PersistReport {
    /// Directives stored (each with a new `Pending` job).
    pub inserted: usize,
    /// Directives already stored (same id): ignored.
    pub duplicates: usize,
}

/// One terminal (or retry) outcome to commit atomically: job state, attempt, ledger
/// confirmation, receipts, manual task and audit events — all or nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeCommit {
    /// The job.
    pub job_id: String,
    /// Its new state (checked against the transition table).
    pub new_state: JobState,
    /// A failed attempt to record before the transition.
    pub attempt: Option<AttemptRecord>,
    /// Ledger confirmation; only allowed when `new_state` is `Succeeded`.
    pub confirm: Option<Confirmation>,
    /// Receipts of the executed operations, appended in order.
    pub receipts: Vec<ReceiptRecord>,
    /// A manual task to open (e.g. with `AwaitingExternal`).
    pub manual_task: Option<ManualTask>,
    /// Audit events (JSON documents) for the outbox.
    pub audit_events: Vec<String>,
    /// Commit time.
    pub at: Timestamp,
}

impl OutcomeCommit {
    /// An outcome moving `job_id` to `new_state` at `at`, with nothing else.
    pub fn new(job_id: impl Into<String>, new_state: JobState, at: Timestamp) -> Self {
        Self {
            job_id: job_id.into(),
            new_state,
            attempt: None,
            confirm: None,
            receipts: Vec::new(),
            manual_task: None,
            audit_events: Vec::new(),
            at,
        }
    }

    /// Add a ledger confirmation.
    pub fn with_confirm(mut self, c: Confirmation) -> Self {
        self.confirm = Some(c);
        self
    }

    /// Add a receipt.
    pub fn with_receipt(mut self, r: ReceiptRecord) -> Self {
        self.receipts.push(r);
        self
    }

    /// Add an audit event (JSON).
    pub fn with_audit(mut self, event_json: impl Into<String>) -> Self {
        self.audit_events.push(event_json.into());
        self
    }

    /// Record a failed attempt.
    pub fn with_attempt(mut self, a: AttemptRecord) -> Self {
        self.attempt = Some(a);
        self
    }

    /// Open a manual task.
    pub fn with_manual_task(mut self, t: ManualTask) -> Self {
        self.manual_task = Some(t);
        self
    }
}

/// What a committed outcome produced.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitResult {
    /// The job after the transition.
    pub job: FulfillmentJob,
    /// The ledger confirmation's result, if one was made.
    pub confirm: Option<ConfirmOutcome>,
    /// Outbox ids of the audit events.
    pub audit_ids: Vec<i64>,
}

/// A versioned JSON document kept in the store for a component's own state (the
/// inbound SCIM endpoint's resources, identity and feed snapshots). The version is
/// 1 on creation and grows by one per write, so it serves as an ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Namespace (one per component and resource type, e.g. `scim.users`).
    pub namespace: String,
    /// Key within the namespace.
    pub key: String,
    /// Version (ETag).
    pub version: u64,
    /// The JSON body.
    pub body: String,
    /// Last write.
    pub updated_at: Timestamp,
}
