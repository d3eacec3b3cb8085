#![allow(dead_code, unreachable_pub)]

use iga_directive::*;
use iga_ledger::*;

pub fn t0() -> Timestamp {
    chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
}

pub fn at(secs: i64) -> Timestamp {
    t0() + chrono::Duration::seconds(secs)
}

pub fn fresh() -> (tempfile::TempDir, SqliteLedger) {
    let dir = tempfile::tempdir().unwrap();
    let l = SqliteLedger::open(dir.path().join("ledger.db")).unwrap();
    (dir, l)
}

pub fn key(identity: &str, group: &str) -> AssignmentKey {
    AssignmentKey::new("acme", identity, "entra", EntitlementRef::group(group))
}

pub fn ctx(secs: i64) -> ChangeContext {
    ChangeContext::at(at(secs)).actor("test")
}

pub fn grant_directive(identity: &str, group: &str, ticket: &str) -> AccessDirective {
    AccessDirective::builder("acme", "entra", Identity::person(identity), Action::Grant)
        .entitlement(EntitlementRef::group(group))
        .approval(ApprovalRef::new("servicenow", ticket).approver("carol"))
        .requested_at(t0())
        .build()
        .unwrap()
}

pub fn receipt(chain: &str, seq: u64, prev: Option<&str>, directive: &str) -> ReceiptRecord {
    ReceiptRecord {
        receipt_id: format!("{chain}-{seq}"),
        chain_id: chain.into(),
        seq,
        directive_id: directive.into(),
        operation_id: format!("{directive}.0"),
        jws: format!("eyJhbGciOiJFUzI1NiJ9.payload{seq}.sig"),
        payload_sha256: format!("{:064x}", seq + 1),
        prev_sha256: prev.map(str::to_string),
        created_at: at(seq as i64),
    }
}

/// Row counts of every table a unit of work touches.
pub fn counts(l: &SqliteLedger) -> Vec<(String, u64)> {
    [
        "lg_grant",
        "lg_history",
        "q_job",
        "q_manual_task",
        "rc_receipt",
        "rc_chain_head",
        "au_outbox",
    ]
    .iter()
    .map(|t| (t.to_string(), l.table_count(t).unwrap()))
    .collect()
}
