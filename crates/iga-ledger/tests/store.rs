//! Opening, migrations and the async `LedgerStore` handle.
#![cfg(feature = "sqlite")]

mod common;

use common::*;
use iga_directive::*;
use iga_ledger::*;

#[test]
fn altered_applied_migration_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    SqliteLedger::open(&path).unwrap();
    {
        // Simulate the embedded 0001 file having been edited after it was applied.
        let c = rusqlite::Connection::open(&path).unwrap();
        let n = c
            .execute(
                "UPDATE _iga_migrations SET checksum = 'abc123' WHERE version = 1",
                [],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    let e = SqliteLedger::open(&path).unwrap_err();
    assert!(
        matches!(e, LedgerError::MigrationAltered { version: 1, .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("migration 1 (init) was altered"), "{msg}");
    assert!(msg.contains("abc123"), "{msg}");
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    SqliteLedger::open(&path).unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute(
        "INSERT INTO _iga_migrations VALUES (99, 'future', 'x', '2030-01-01')",
        [],
    )
    .unwrap();
    let e = SqliteLedger::open(&path).unwrap_err();
    assert!(
        matches!(e, LedgerError::MigrationUnknown { version: 99, .. }),
        "{e}"
    );
}

#[test]
fn migrations_opt_out_verifies_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let e =
        SqliteLedger::open_with(&path, OpenOptions::default().run_migrations(false)).unwrap_err();
    assert!(
        matches!(e, LedgerError::MigrationPending { version: 1, .. }),
        "{e}"
    );
    SqliteLedger::open(&path).unwrap();
    let l = SqliteLedger::open_with(&path, OpenOptions::default().run_migrations(false)).unwrap();
    assert_eq!(l.table_count("lg_grant").unwrap(), 0);
}

#[test]
fn busy_database_is_a_temporary_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let l = SqliteLedger::open_with(
        &path,
        OpenOptions::default().busy_timeout(std::time::Duration::from_millis(50)),
    )
    .unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let e = l
        .grant(&key("a", "G"), &GrantSource::import("b"), &ctx(1))
        .unwrap_err();
    assert!(e.is_temporary(), "{e}");
    other.execute_batch("ROLLBACK").unwrap();
    l.grant(&key("a", "G"), &GrantSource::import("b"), &ctx(1))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_store_end_to_end_through_the_trait() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("a.db")).await.unwrap();
    let s: std::sync::Arc<dyn LedgerStore> = std::sync::Arc::new(store.clone());

    let ds: Vec<_> = (0..20)
        .map(|i| grant_directive(&format!("u{i}"), "G", &format!("R{i}")))
        .collect();
    let rep = s
        .persist_directives_with_cursor(&ds, "servicenow", "c-20", at(0))
        .await
        .unwrap();
    assert_eq!(rep.inserted, 20);
    assert_eq!(
        s.cursor("servicenow").await.unwrap().as_deref(),
        Some("c-20")
    );
    for d in &ds {
        let k = AssignmentKey::from_directive(d).unwrap();
        let dec = s
            .grant(&k, &d.source, &ChangeContext::from_directive(d, at(1)))
            .await
            .unwrap();
        assert_eq!(dec.outcome, DecisionOutcome::GrantTarget);
        s.transition_job(d.id.as_str(), JobState::Planned, None, at(1))
            .await
            .unwrap();
    }
    // Four workers claim concurrently: every job exactly once.
    let mut handles = Vec::new();
    for w in 0..4 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = s.claim_due(3, at(2), &format!("w{w}")).await.unwrap();
                if got.is_empty() {
                    break;
                }
                mine.extend(got);
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for h in handles {
        claimed.extend(h.await.unwrap());
    }
    let mut ids: Vec<_> = claimed.iter().map(|c| c.job.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    assert_eq!(claimed.len(), 20);

    let outcomes: Vec<OutcomeCommit> = claimed
        .iter()
        .map(|c| {
            let k = AssignmentKey::from_directive(&c.directive).unwrap();
            OutcomeCommit::new(c.job.id.as_str(), JobState::Succeeded, at(3))
                .with_confirm(Confirmation::grant(
                    k,
                    c.directive.source.clone(),
                    ChangeContext::from_directive(&c.directive, at(3)),
                ))
                .with_audit(r#"{"event":"fulfilled"}"#)
        })
        .collect();
    let res = s.commit_outcomes(&outcomes).await.unwrap();
    assert!(res.iter().all(Result::is_ok));
    assert_eq!(
        s.jobs_by_state(JobStateName::Succeeded, 100)
            .await
            .unwrap()
            .len(),
        20
    );
    let holders = s
        .holders_of("acme", "entra", &EntitlementRef::group("G"))
        .await
        .unwrap();
    assert_eq!(holders.len(), 20);
    assert!(holders.iter().all(|h| h.target_visible()));
    assert!(
        s.system_assignments("acme", "entra", true)
            .await
            .unwrap()
            .is_empty()
    );
    let audit = s
        .claim_audit(100, "pump", std::time::Duration::from_secs(10), at(4))
        .await
        .unwrap();
    assert_eq!(audit.len(), 20);
    let ids: Vec<i64> = audit.iter().map(|a| a.id).collect();
    assert_eq!(s.ack_audit(&ids).await.unwrap(), 20);

    let rep = s
        .import_rules(
            Box::new((0..5).map(|i| ImportRule {
                tenant: "acme".into(),
                identity: format!("x{i}"),
                system: "entra".into(),
                entitlement: EntitlementRef::group("G"),
                source: GrantSource::import("legacy"),
            })),
            ImportOptions::new("legacy", at(5)),
        )
        .await
        .unwrap();
    assert_eq!(rep.rows_changed, 5);
    s.set_coexistence("entra", CoexistenceMode::DualWrite, at(6))
        .await
        .unwrap();
    assert_eq!(
        s.coexistence("entra").await.unwrap(),
        CoexistenceMode::DualWrite
    );
    let l = store.blocking();
    assert_eq!(l.replay_history().unwrap(), l.snapshot().unwrap());
}
