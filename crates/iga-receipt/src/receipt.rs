//! The receipt payload and its outcome.

use std::fmt;

use iga_directive::{
    AccessDirective, ApprovalRef, DirectiveId, EntitlementRef, Operation, OperationId,
    OperationKind, Timestamp,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ReceiptError;

/// Version of the receipt payload format written by this build.
pub const RECEIPT_VERSION: u32 = 1;

/// The JWS `typ` of a receipt.
pub const RECEIPT_TYP: &str = "iga-receipt+jws";

/// `prev_sha256` of the first receipt in a chain (64 zeros).
pub const GENESIS_SHA256: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The terminal outcome of an operation. Intermediate failed attempts are audit events,
/// not receipts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The target changed as asked.
    Applied,
    /// The target already was in the desired state (idempotent success).
    AlreadyInState,
    /// Failed permanently without escalation (e.g. the target rejected the input).
    Failed {
        /// The adapter's error kind (`invalid_input`, `not_found`, ...).
        error_kind: String,
        /// The redacted error message.
        message: String,
    },
    /// Retries exhausted or permanent failure handed to a human.
    Escalated {
        /// The last error kind.
        error_kind: String,
        /// The redacted last error message.
        message: String,
    },
    /// A ticket-based fulfilment was rejected by its assignee.
    Rejected {
        /// Why (the ticket's close notes, redacted).
        reason: String,
        /// Who rejected it, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
}

impl Outcome {
    /// The `status` string (`applied`, `already_in_state`, `failed`, `escalated`, `rejected`).
    pub fn status(&self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::AlreadyInState => "already_in_state",
            Self::Failed { .. } => "failed",
            Self::Escalated { .. } => "escalated",
            Self::Rejected { .. } => "rejected",
        }
    }

    /// Whether the target is now in the intended state.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Applied | Self::AlreadyInState)
    }

    /// A failure outcome.
    pub fn failed(error_kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Failed {
            error_kind: error_kind.into(),
            message: message.into(),
        }
    }

    /// An escalation outcome.
    pub fn escalated(error_kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Escalated {
            error_kind: error_kind.into(),
            message: message.into(),
        }
    }

    /// A rejection outcome.
    pub fn rejected(reason: impl Into<String>, by: Option<String>) -> Self {
        Self::Rejected {
            reason: reason.into(),
            by,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed {
                error_kind,
                message,
            }
            | Self::Escalated {
                error_kind,
                message,
            } => {
                write!(f, "{} ({error_kind}: {message})", self.status())
            }
            Self::Rejected { reason, .. } => write!(f, "rejected ({reason})"),
            _ => f.write_str(self.status()),
        }
    }
}

/// The signed content of one receipt (the JWS payload, in canonical JSON).
///
/// Field names are the JSON member names. Secrets never appear: identities and
/// entitlements are referenced by id, operation attributes only through
/// `request_sha256`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExecutionReceipt {
    /// Payload format version ([`RECEIPT_VERSION`]).
    pub version: u32,
    /// Unique receipt id (UUIDv5 of chain id and sequence number).
    pub receipt_id: String,
    /// The chain (`<node>/<system>`).
    pub chain_id: String,
    /// 1-based, gap-free position in the chain.
    pub seq: u64,
    /// Hex SHA-256 of the previous receipt's payload in this chain ([`GENESIS_SHA256`] for seq 1).
    pub prev_sha256: String,
    /// The directive.
    pub directive_id: DirectiveId,
    /// The operation.
    pub operation_id: OperationId,
    /// What was executed.
    pub operation: OperationKind,
    /// Tenant.
    pub tenant: String,
    /// Target system.
    pub system: String,
    /// Identity id.
    pub identity: String,
    /// The target's account id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_id: Option<String>,
    /// The entitlement, for grant and revoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitlement: Option<EntitlementRef>,
    /// The grant source key (`request:servicenow:RITM0010001`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The approval the operation executes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRef>,
    /// Terminal outcome.
    pub outcome: Outcome,
    /// Hex SHA-256 of the canonical JSON of the executed [`Operation`] ([`request_digest`]).
    pub request_sha256: String,
    /// Number of attempts made (≥ 1).
    pub attempts: u32,
    /// When the directive was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<Timestamp>,
    /// When the first attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When the terminal outcome was reached.
    pub completed_at: Timestamp,
    /// When the receipt was issued (signed).
    pub issued_at: Timestamp,
}

/// Hex SHA-256 of the canonical JSON of an operation: binds a receipt to exactly what
/// was sent without copying attribute values (which may be sensitive) into the receipt.
pub fn request_digest(op: &Operation) -> Result<String, ReceiptError> {
    let bytes = crate::canonical::to_canonical_json(op)?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Everything a receipt says that the caller knows; the chain adds id, sequence number,
/// previous hash and issue time when it seals the draft ([`crate::ChainState::append`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReceiptDraft {
    /// Directive id.
    pub directive_id: DirectiveId,
    /// Operation id.
    pub operation_id: OperationId,
    /// Operation kind.
    pub operation: OperationKind,
    /// Tenant.
    pub tenant: String,
    /// Target system (must be the chain's system).
    pub system: String,
    /// Identity id.
    pub identity: String,
    /// Target account id.
    pub native_id: Option<String>,
    /// Entitlement.
    pub entitlement: Option<EntitlementRef>,
    /// Grant source key.
    pub source: Option<String>,
    /// Approval reference.
    pub approval: Option<ApprovalRef>,
    /// Terminal outcome.
    pub outcome: Outcome,
    /// Request digest.
    pub request_sha256: String,
    /// Attempts made.
    pub attempts: u32,
    /// When requested.
    pub requested_at: Option<Timestamp>,
    /// When the first attempt started.
    pub started_at: Option<Timestamp>,
    /// When the outcome was reached.
    pub completed_at: Timestamp,
}

impl ReceiptDraft {
    /// A draft for an executed operation (one attempt; request digest computed).
    pub fn for_operation(
        op: &Operation,
        outcome: Outcome,
        completed_at: Timestamp,
    ) -> Result<Self, ReceiptError> {
        Ok(Self {
            directive_id: op.directive_id.clone(),
            operation_id: op.id.clone(),
            operation: op.kind,
            tenant: op.tenant.clone(),
            system: op.system.clone(),
            identity: op.identity.id.clone(),
            native_id: op.native_id.clone(),
            entitlement: op.entitlement.clone(),
            source: None,
            approval: None,
            outcome,
            request_sha256: request_digest(op)?,
            attempts: 1,
            requested_at: None,
            started_at: None,
            completed_at,
        })
    }

    /// A draft for one operation of a directive: adds source, approval and request time.
    pub fn for_directive(
        directive: &AccessDirective,
        op: &Operation,
        outcome: Outcome,
        completed_at: Timestamp,
    ) -> Result<Self, ReceiptError> {
        let mut d = Self::for_operation(op, outcome, completed_at)?;
        d.source = Some(directive.source.key());
        d.approval = directive.approval.clone();
        d.requested_at = Some(directive.requested_at);
        Ok(d)
    }

    /// Set the number of attempts.
    pub fn attempts(mut self, n: u32) -> Self {
        self.attempts = n;
        self
    }

    /// Set when the first attempt started.
    pub fn started_at(mut self, t: Timestamp) -> Self {
        self.started_at = Some(t);
        self
    }

    /// Set the approval reference.
    pub fn approval(mut self, a: ApprovalRef) -> Self {
        self.approval = Some(a);
        self
    }

    /// Set the grant source key.
    pub fn source(mut self, key: impl Into<String>) -> Self {
        self.source = Some(key.into());
        self
    }

    /// Set the target account id.
    pub fn native_id(mut self, id: impl Into<String>) -> Self {
        self.native_id = Some(id.into());
        self
    }
}

// ---------------------------------------------------------------------------------------
// Fast canonical serialization of receipts.
//
// Mirror structs whose fields are declared in canonical (sorted) order, serialized by
// serde_json, whose string escaping equals the canonical escaping. This avoids building a
// `serde_json::Value` tree per receipt (the hot path of signing and verifying). The
// test `fast_canonical_equals_generic` and the verifier's canonical-form check keep it
// identical to `canonical::to_canonical_json`.

#[derive(Serialize)]
struct CanonApproval<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    approver: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_at: Option<&'a Timestamp>,
    system: &'a str,
    ticket_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
}

#[derive(Serialize)]
struct CanonEntitlement<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
    id: &'a str,
    kind: &'a iga_directive::EntitlementKind,
}

#[derive(Serialize)]
struct CanonOutcome<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    status: &'static str,
}

#[derive(Serialize)]
struct CanonReceipt<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    approval: Option<CanonApproval<'a>>,
    attempts: u32,
    chain_id: &'a str,
    completed_at: &'a Timestamp,
    directive_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    entitlement: Option<CanonEntitlement<'a>>,
    identity: &'a str,
    issued_at: &'a Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    native_id: Option<&'a str>,
    operation: OperationKind,
    operation_id: &'a str,
    outcome: CanonOutcome<'a>,
    prev_sha256: &'a str,
    receipt_id: &'a str,
    request_sha256: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    requested_at: Option<&'a Timestamp>,
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<&'a Timestamp>,
    system: &'a str,
    tenant: &'a str,
    version: u32,
}

/// The canonical JSON bytes of a receipt payload (identical to
/// `canonical::to_canonical_json(receipt)`, computed without an intermediate JSON tree).
pub fn receipt_canonical_bytes(r: &ExecutionReceipt) -> Result<Vec<u8>, ReceiptError> {
    let (by, error_kind, message, reason) = match &r.outcome {
        Outcome::Applied | Outcome::AlreadyInState => (None, None, None, None),
        Outcome::Failed {
            error_kind,
            message,
        }
        | Outcome::Escalated {
            error_kind,
            message,
        } => (
            None,
            Some(error_kind.as_str()),
            Some(message.as_str()),
            None,
        ),
        Outcome::Rejected { reason, by } => (by.as_deref(), None, None, Some(reason.as_str())),
    };
    let c = CanonReceipt {
        approval: r.approval.as_ref().map(|a| CanonApproval {
            approver: a.approver.as_deref(),
            decided_at: a.decided_at.as_ref(),
            system: &a.system,
            ticket_id: &a.ticket_id,
            url: a.url.as_deref(),
        }),
        attempts: r.attempts,
        chain_id: &r.chain_id,
        completed_at: &r.completed_at,
        directive_id: &r.directive_id.0,
        entitlement: r.entitlement.as_ref().map(|e| CanonEntitlement {
            display_name: e.display_name.as_deref(),
            id: &e.id,
            kind: &e.kind,
        }),
        identity: &r.identity,
        issued_at: &r.issued_at,
        native_id: r.native_id.as_deref(),
        operation: r.operation,
        operation_id: &r.operation_id.0,
        outcome: CanonOutcome {
            by,
            error_kind,
            message,
            reason,
            status: r.outcome.status(),
        },
        prev_sha256: &r.prev_sha256,
        receipt_id: &r.receipt_id,
        request_sha256: &r.request_sha256,
        requested_at: r.requested_at.as_ref(),
        seq: r.seq,
        source: r.source.as_deref(),
        started_at: r.started_at.as_ref(),
        system: &r.system,
        tenant: &r.tenant,
        version: r.version,
    };
    let mut out = Vec::with_capacity(1024);
    serde_json::to_writer(&mut out, &c).map_err(|e| ReceiptError::Invalid {
        context: format!("receipt {}", r.receipt_id),
        reason: e.to_string(),
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iga_directive::{EntitlementKind, Identity, Operation};

    fn t(s: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    #[test]
    fn fast_canonical_equals_generic() {
        let op = Operation::new(
            "acme",
            "entra",
            OperationKind::Revoke,
            Identity::person("a\"li\\ce\n✓"),
        )
        .with_entitlement(
            EntitlementRef::new(EntitlementKind::Generic("racf_group".into()), "G\u{1}1")
                .with_display_name("Grüppe \"1\""),
        );
        let outcomes = [
            Outcome::Applied,
            Outcome::AlreadyInState,
            Outcome::failed("invalid_input", "bad \"mail\"\t"),
            Outcome::escalated("unavailable", "down"),
            Outcome::rejected("no", Some("dave".into())),
            Outcome::rejected("no", None),
        ];
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let mut d =
                ReceiptDraft::for_operation(&op, outcome, t("2026-03-01T09:00:00.123456789Z"))
                    .unwrap();
            if i % 2 == 0 {
                d = d
                    .approval(
                        ApprovalRef::new("jira", "ACC-1")
                            .approver("carol")
                            .decided_at(t("2026-02-28T23:59:59+01:00"))
                            .url("https://x/y?a=b&c=\"d\""),
                    )
                    .source("request:jira:ACC-1")
                    .native_id("uid=a,ou=x")
                    .started_at(t("2026-03-01T08:00:00Z"));
            }
            let r = ExecutionReceipt {
                version: RECEIPT_VERSION,
                receipt_id: "r".into(),
                chain_id: "n/entra".into(),
                seq: 7,
                prev_sha256: GENESIS_SHA256.into(),
                directive_id: d.directive_id,
                operation_id: d.operation_id,
                operation: d.operation,
                tenant: d.tenant,
                system: d.system,
                identity: d.identity,
                native_id: d.native_id,
                entitlement: if i == 5 { None } else { d.entitlement },
                source: d.source,
                approval: d.approval,
                outcome: d.outcome,
                request_sha256: d.request_sha256,
                attempts: 3,
                requested_at: if i == 1 {
                    Some(t("2026-01-01T00:00:00Z"))
                } else {
                    None
                },
                started_at: d.started_at,
                completed_at: d.completed_at,
                issued_at: t("2026-03-01T09:00:01Z"),
            };
            let fast = receipt_canonical_bytes(&r).unwrap();
            let generic = crate::canonical::to_canonical_json(&r).unwrap();
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(generic).unwrap(),
                "case {i}"
            );
        }
    }
}
