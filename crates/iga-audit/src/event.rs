//! Audit events and their correlation ids.

use std::collections::BTreeMap;
use std::fmt;

use iga_directive::{AccessDirective, Operation, Timestamp};
use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A directive was accepted from a source and persisted.
    DirectiveReceived,
    /// A directive was planned (ledger decision taken, operations ordered).
    DirectivePlanned,
    /// A directive was staged for review by a guardrail (mass deletion).
    DirectiveStaged,
    /// A staged directive was released for execution.
    DirectiveReleased,
    /// An operation reached a terminal success (applied or already in state).
    OperationExecuted,
    /// One attempt at an operation failed (it may be retried).
    AttemptFailed,
    /// A failed operation was scheduled for retry.
    AttemptRetried,
    /// Retries were exhausted or the failure is permanent: handed to a human.
    JobEscalated,
    /// The entitlement ledger changed (reference added or removed).
    LedgerChanged,
    /// An execution receipt was signed and stored.
    ReceiptWritten,
    /// A directive source's cursor advanced (poll position persisted).
    SourceCursorAdvanced,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 11] = [
        Self::DirectiveReceived,
        Self::DirectivePlanned,
        Self::DirectiveStaged,
        Self::DirectiveReleased,
        Self::OperationExecuted,
        Self::AttemptFailed,
        Self::AttemptRetried,
        Self::JobEscalated,
        Self::LedgerChanged,
        Self::ReceiptWritten,
        Self::SourceCursorAdvanced,
    ];

    /// snake_case name (`receipt_written`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DirectiveReceived => "directive_received",
            Self::DirectivePlanned => "directive_planned",
            Self::DirectiveStaged => "directive_staged",
            Self::DirectiveReleased => "directive_released",
            Self::OperationExecuted => "operation_executed",
            Self::AttemptFailed => "attempt_failed",
            Self::AttemptRetried => "attempt_retried",
            Self::JobEscalated => "job_escalated",
            Self::LedgerChanged => "ledger_changed",
            Self::ReceiptWritten => "receipt_written",
            Self::SourceCursorAdvanced => "source_cursor_advanced",
        }
    }

    /// The SIEM event class id (CEF Device Event Class ID, LEEF EventID, syslog MSGID):
    /// upper-case, at most 32 printable ASCII characters (`RECEIPT_WRITTEN`).
    pub fn class_id(self) -> &'static str {
        match self {
            Self::DirectiveReceived => "DIRECTIVE_RECEIVED",
            Self::DirectivePlanned => "DIRECTIVE_PLANNED",
            Self::DirectiveStaged => "DIRECTIVE_STAGED",
            Self::DirectiveReleased => "DIRECTIVE_RELEASED",
            Self::OperationExecuted => "OPERATION_EXECUTED",
            Self::AttemptFailed => "ATTEMPT_FAILED",
            Self::AttemptRetried => "ATTEMPT_RETRIED",
            Self::JobEscalated => "JOB_ESCALATED",
            Self::LedgerChanged => "LEDGER_CHANGED",
            Self::ReceiptWritten => "RECEIPT_WRITTEN",
            Self::SourceCursorAdvanced => "SOURCE_CURSOR_ADVANCED",
        }
    }

    /// Human-readable name (CEF Name).
    pub fn title(self) -> &'static str {
        match self {
            Self::DirectiveReceived => "Directive received",
            Self::DirectivePlanned => "Directive planned",
            Self::DirectiveStaged => "Directive staged for review",
            Self::DirectiveReleased => "Directive released",
            Self::OperationExecuted => "Operation executed",
            Self::AttemptFailed => "Attempt failed",
            Self::AttemptRetried => "Attempt retried",
            Self::JobEscalated => "Job escalated",
            Self::LedgerChanged => "Ledger changed",
            Self::ReceiptWritten => "Receipt written",
            Self::SourceCursorAdvanced => "Source cursor advanced",
        }
    }

    /// The default severity of the kind.
    pub fn default_severity(self) -> Severity {
        match self {
            Self::AttemptFailed | Self::AttemptRetried | Self::DirectiveStaged => Severity::Warning,
            Self::JobEscalated => Severity::Error,
            Self::OperationExecuted | Self::LedgerChanged | Self::DirectiveReleased => {
                Severity::Notice
            }
            _ => Severity::Info,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Event severity, mapped to each format's scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Routine (CEF 3, syslog 6 informational).
    Info,
    /// Significant change (CEF 4, syslog 5 notice).
    Notice,
    /// Something went wrong but is being handled (CEF 6, syslog 4 warning).
    Warning,
    /// Needs a human (CEF 8, syslog 3 error).
    Error,
}

impl Severity {
    /// CEF / LEEF severity (0–10 scale).
    pub fn cef(self) -> u8 {
        match self {
            Self::Info => 3,
            Self::Notice => 4,
            Self::Warning => 6,
            Self::Error => 8,
        }
    }

    /// Syslog severity (RFC 5424 §6.2.1).
    pub fn syslog(self) -> u8 {
        match self {
            Self::Info => 6,
            Self::Notice => 5,
            Self::Warning => 4,
            Self::Error => 3,
        }
    }
}

/// Ids that tie an event to the rest of the evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Correlation {
    /// Directive id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directive_id: Option<String>,
    /// Fulfilment job id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Operation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// Receipt id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_id: Option<String>,
    /// Approval key (`servicenow:RITM0010001`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
}

/// One audit event. Holds references (ids), never secrets: detail values whose key
/// looks secret (`password`, `token`, `secret`, ...) are replaced by `[REDACTED]` when
/// set, and credentials embedded in the message (`Bearer …`, `password=…`) are masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEvent {
    /// Unique event id (UUID), for de-duplication by the SIEM (delivery is at least once).
    pub event_id: String,
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub at: Timestamp,
    /// Severity.
    pub severity: Severity,
    /// Tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Target system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Identity id (the subject of the change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Entitlement key (`group:Finance-Readers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitlement: Option<String>,
    /// Action or operation kind (`grant`, `revoke`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Outcome (`success`, `failure`, `applied`, `already_in_state`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Who decided or acted (approver, service account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Correlation ids.
    #[serde(default)]
    pub correlation: Correlation,
    /// Human-readable message.
    pub message: String,
    /// Further key/value details (keys are `[A-Za-z0-9_]` after sanitising).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

const REDACTED: &str = "[REDACTED]";
const SECRET_KEY_PARTS: [&str; 9] = [
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "authorization",
    "credential",
    "private",
];

/// Whether a detail key names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|p| k.contains(p)) || k == "cookie" || k == "key"
}

/// Mask credentials in free text: the word after `Bearer`/`Basic`, and the value after
/// `<secret-looking key>=` or `<secret-looking key>:`.
pub fn redact_text(s: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut mask_next = false;
    for word in s.split(' ') {
        let lw = word.to_ascii_lowercase();
        if mask_next && !word.is_empty() && lw != "bearer" && lw != "basic" {
            out.push(REDACTED.into());
            mask_next = false;
            continue;
        }
        if lw == "bearer" || lw == "basic" {
            mask_next = true;
            out.push(word.into());
            continue;
        }
        if let Some(pos) = word.find(['=', ':']) {
            let (k, rest) = word.split_at(pos);
            if is_secret_key(k.trim_start_matches(['"', '\'', '(', '{', ',', '&', '?'])) {
                if rest.len() > 1 {
                    out.push(format!("{k}{}{REDACTED}", &rest[..1]));
                } else {
                    out.push(word.into());
                    mask_next = true;
                }
                continue;
            }
        }
        out.push(word.into());
    }
    out.join(" ")
}

fn sanitize_key(k: &str) -> String {
    let s: String = k
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    if s.is_empty() { "_".into() } else { s }
}

impl AuditEvent {
    /// A new event of `kind` at `at` with the kind's default severity and a fresh id.
    pub fn new(kind: EventKind, at: Timestamp, message: impl Into<String>) -> Self {
        Self {
            event_id: uuid::Uuid::new_v4().to_string(),
            kind,
            at,
            severity: kind.default_severity(),
            tenant: None,
            system: None,
            identity: None,
            entitlement: None,
            action: None,
            outcome: None,
            actor: None,
            correlation: Correlation::default(),
            message: redact_text(&message.into()),
            details: BTreeMap::new(),
        }
    }

    /// An event about a directive: tenant, system, identity, entitlement, action,
    /// directive id, approval key and approver filled in.
    pub fn for_directive(
        kind: EventKind,
        d: &AccessDirective,
        at: Timestamp,
        message: impl Into<String>,
    ) -> Self {
        let mut e = Self::new(kind, at, message);
        e.tenant = Some(d.tenant.clone());
        e.system = Some(d.system.clone());
        e.identity = Some(d.identity.id.clone());
        e.entitlement = d.entitlement.as_ref().map(|x| x.key());
        e.action = Some(d.action.as_str().into());
        e.correlation.directive_id = Some(d.id.0.clone());
        e.correlation.approval = d.approval.as_ref().map(|a| a.key());
        e.actor = d.approval.as_ref().and_then(|a| a.approver.clone());
        e.details.insert("source".into(), d.source.key());
        e
    }

    /// An event about an operation: tenant, system, identity, entitlement, kind,
    /// directive and operation ids filled in.
    pub fn for_operation(
        kind: EventKind,
        op: &Operation,
        at: Timestamp,
        message: impl Into<String>,
    ) -> Self {
        let mut e = Self::new(kind, at, message);
        e.tenant = Some(op.tenant.clone());
        e.system = Some(op.system.clone());
        e.identity = Some(op.identity.id.clone());
        e.entitlement = op.entitlement.as_ref().map(|x| x.key());
        e.action = Some(op.kind.as_str().into());
        e.correlation.directive_id = Some(op.directive_id.0.clone());
        e.correlation.operation_id = Some(op.id.0.clone());
        e
    }

    /// Set the severity.
    pub fn severity(mut self, s: Severity) -> Self {
        self.severity = s;
        self
    }
    /// Set the tenant.
    pub fn tenant(mut self, v: impl Into<String>) -> Self {
        self.tenant = Some(v.into());
        self
    }
    /// Set the system.
    pub fn system(mut self, v: impl Into<String>) -> Self {
        self.system = Some(v.into());
        self
    }
    /// Set the identity id.
    pub fn identity(mut self, v: impl Into<String>) -> Self {
        self.identity = Some(v.into());
        self
    }
    /// Set the entitlement key.
    pub fn entitlement(mut self, v: impl Into<String>) -> Self {
        self.entitlement = Some(v.into());
        self
    }
    /// Set the action.
    pub fn action(mut self, v: impl Into<String>) -> Self {
        self.action = Some(v.into());
        self
    }
    /// Set the outcome.
    pub fn outcome(mut self, v: impl Into<String>) -> Self {
        self.outcome = Some(v.into());
        self
    }
    /// Set the actor.
    pub fn actor(mut self, v: impl Into<String>) -> Self {
        self.actor = Some(v.into());
        self
    }
    /// Set the directive id.
    pub fn directive(mut self, id: impl Into<String>) -> Self {
        self.correlation.directive_id = Some(id.into());
        self
    }
    /// Set the job id.
    pub fn job(mut self, id: impl Into<String>) -> Self {
        self.correlation.job_id = Some(id.into());
        self
    }
    /// Set the operation id.
    pub fn operation(mut self, id: impl Into<String>) -> Self {
        self.correlation.operation_id = Some(id.into());
        self
    }
    /// Set the receipt id.
    pub fn receipt(mut self, id: impl Into<String>) -> Self {
        self.correlation.receipt_id = Some(id.into());
        self
    }
    /// Set the approval key.
    pub fn approval(mut self, key: impl Into<String>) -> Self {
        self.correlation.approval = Some(key.into());
        self
    }
    /// Add a detail. The key is sanitised to `[A-Za-z0-9_]{1,32}`; a secret-looking key
    /// stores `[REDACTED]` instead of the value, and the value is passed through
    /// [`redact_text`].
    pub fn detail(mut self, key: &str, value: impl Into<String>) -> Self {
        let v = if is_secret_key(key) {
            REDACTED.to_string()
        } else {
            redact_text(&value.into())
        };
        self.details.insert(sanitize_key(key), v);
        self
    }

    /// JSON form (what an outbox stores).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse the JSON form.
    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
}
