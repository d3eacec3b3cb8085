//! One store test suite, written once over `&dyn LedgerStore`, run against the
//! embedded SQLite store and the PostgreSQL store (a throwaway cluster on loopback,
//! one fresh database per run). A proptest checks random grant/revoke/confirm
//! sequences against a model on both.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use iga_directive::{
    AccessDirective, Action, EntitlementRef, GrantSource, Identity, JobState, JobStateName,
    Timestamp,
};
use iga_ledger::logic::{self, Rows};
use iga_ledger::{
    AssignmentKey, ChangeContext, Confirmation, DecisionOutcome, ImportOptions, ImportRule,
    LedgerError, LedgerStore, ManualTask, OutcomeCommit, ReceiptRecord, SqliteStore,
};
use iga_ledger_postgres::PgStore;
use iga_ledger_postgres::testing::Postgres;
use proptest::prelude::*;

fn t(s: i64) -> Timestamp {
    Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
}

fn directive(tenant: &str, who: &str, group: &str) -> AccessDirective {
    AccessDirective::builder(tenant, "dir", Identity::person(who), Action::Grant)
        .entitlement(EntitlementRef::group(group))
        .source(GrantSource::birthright("everyone"))
        .build()
        .unwrap()
}

fn key(tenant: &str, who: &str, group: &str) -> AssignmentKey {
    AssignmentKey::new(tenant, who, "dir", EntitlementRef::group(group))
}

fn receipt(chain: &str, seq: u64, prev: Option<&str>, d: &str) -> ReceiptRecord {
    ReceiptRecord {
        receipt_id: format!("{chain}-r{seq}"),
        chain_id: chain.into(),
        seq,
        directive_id: d.into(),
        operation_id: format!("op-{d}"),
        jws: "h.p.s".into(),
        payload_sha256: format!("{chain}-h{seq}"),
        prev_sha256: prev.map(str::to_string),
        created_at: t(seq as i64),
    }
}

async fn queue_and_unit_of_work(s: &dyn LedgerStore, name: &str) {
    let ds: Vec<AccessDirective> = (0..5)
        .map(|i| directive("q", &format!("u{i}"), "g"))
        .collect();
    let rep = s.persist_directives(&ds, t(0)).await.unwrap();
    assert_eq!((rep.inserted, rep.duplicates), (5, 0), "{name}");
    let rep = s.persist_directives(&ds[..2], t(1)).await.unwrap();
    assert_eq!(
        (rep.inserted, rep.duplicates),
        (0, 2),
        "{name}: idempotent by id"
    );
    assert_eq!(
        s.directive(ds[0].id.as_str()).await.unwrap().unwrap(),
        ds[0]
    );
    assert!(s.directive("nope").await.unwrap().is_none());
    // A future-dated directive waits in Pending.
    let later = AccessDirective::builder("q", "dir", Identity::person("late"), Action::Grant)
        .entitlement(EntitlementRef::group("g"))
        .source(GrantSource::birthright("everyone"))
        .not_before(t(1000))
        .build()
        .unwrap();
    s.persist_directives(std::slice::from_ref(&later), t(0))
        .await
        .unwrap();
    let due = s.due_pending(t(10), 100).await.unwrap();
    assert_eq!(due.len(), 5, "{name}: the future-dated job is not due");
    assert_eq!(
        s.due_pending(t(1000), 100).await.unwrap().len(),
        6,
        "{name}"
    );
    // Bad input is refused, naming the directive.
    let mut bad = directive("q", "x", "g");
    bad.tenant = String::new();
    let e = s.persist_directives(&[bad], t(0)).await.unwrap_err();
    assert!(matches!(e, LedgerError::Directive { .. }), "{name}: {e}");

    for d in &ds {
        s.transition_job(d.id.as_str(), JobState::Planned, None, t(2))
            .await
            .unwrap();
    }
    // Illegal transitions are errors and change nothing.
    let e = s
        .transition_job(ds[0].id.as_str(), JobState::Succeeded, None, t(2))
        .await
        .unwrap_err();
    assert!(matches!(e, LedgerError::Transition(_)), "{name}: {e}");
    assert!(matches!(
        s.transition_job("missing", JobState::Planned, None, t(2))
            .await
            .unwrap_err(),
        LedgerError::JobNotFound(_)
    ));

    let c1 = s.claim_due(3, t(3), "w1").await.unwrap();
    let c2 = s.claim_due(10, t(3), "w2").await.unwrap();
    assert_eq!((c1.len(), c2.len()), (3, 2), "{name}");
    assert!(
        s.claim_due(10, t(3), "w3").await.unwrap().is_empty(),
        "{name}"
    );
    let mut all: Vec<&str> = c1.iter().chain(&c2).map(|c| c.job.id.as_str()).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 5, "{name}: no job handed out twice");
    assert!(c1.iter().all(|c| c.job.state == JobState::InFlight));
    assert_eq!(c1[0].directive.id.as_str(), c1[0].job.id, "{name}");
    assert_eq!(
        s.jobs_by_state(JobStateName::InFlight, 10)
            .await
            .unwrap()
            .len(),
        5
    );

    // Crash recovery for one worker.
    assert_eq!(
        s.requeue_in_flight(Some("w2"), t(4)).await.unwrap(),
        2,
        "{name}"
    );
    assert_eq!(
        s.jobs_by_state(JobStateName::Planned, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    let c2 = s.claim_due(10, t(5), "w2").await.unwrap();
    assert_eq!(c2.len(), 2);

    // The unit of work: job + confirm + receipt + manual task + audit.
    let d0 = &c1[0].directive;
    let k0 = AssignmentKey::from_directive(d0).unwrap();
    s.grant(&k0, &d0.source, &ChangeContext::at(t(1)))
        .await
        .unwrap();
    let o = OutcomeCommit::new(c1[0].job.id.clone(), JobState::Succeeded, t(6))
        .with_confirm(Confirmation::grant(
            k0.clone(),
            d0.source.clone(),
            ChangeContext::at(t(6)),
        ))
        .with_receipt(receipt("n1/dir", 1, None, d0.id.as_str()))
        .with_audit(r#"{"event":"done"}"#);
    let r = s.commit_outcome(&o).await.unwrap();
    assert_eq!(r.job.state, JobState::Succeeded, "{name}");
    assert_eq!(r.confirm.unwrap().confirmed_sources, 1, "{name}");
    assert_eq!(r.audit_ids.len(), 1);
    assert_eq!(s.chain_head("n1/dir").await.unwrap().unwrap().seq, 1);
    // A confirmation needs a success.
    let bad = OutcomeCommit::new(c1[1].job.id.clone(), JobState::Planned, t(6)).with_confirm(
        Confirmation::grant(k0.clone(), d0.source.clone(), ChangeContext::at(t(6))),
    );
    assert!(matches!(
        s.commit_outcome(&bad).await.unwrap_err(),
        LedgerError::Invalid { .. }
    ));
    // A broken chain rolls the whole outcome back.
    let broken = OutcomeCommit::new(c1[1].job.id.clone(), JobState::Succeeded, t(7))
        .with_receipt(receipt("n1/dir", 3, Some("n1/dir-h1"), "x"))
        .with_audit(r#"{"event":"x"}"#);
    assert!(matches!(
        s.commit_outcome(&broken).await.unwrap_err(),
        LedgerError::ReceiptChain { .. }
    ));
    assert_eq!(
        s.job(&c1[1].job.id).await.unwrap().unwrap().state,
        JobState::InFlight,
        "{name}: nothing of a failed unit of work is kept"
    );
    // Many outcomes: the bad one alone is rolled back (savepoint), in its slot.
    let os =
        vec![
            OutcomeCommit::new(c1[1].job.id.clone(), JobState::Succeeded, t(8))
                .with_receipt(receipt("n1/dir", 2, Some("n1/dir-h1"), "a"))
                .with_manual_task(ManualTask {
                    id: "task-1".into(),
                    job_id: Some(c1[1].job.id.clone()),
                    tenant: "q".into(),
                    system: "dir".into(),
                    owner: Some("ops".into()),
                    summary: "check".into(),
                    detail_json: None,
                    created_at: t(8),
                }),
            OutcomeCommit::new(c1[2].job.id.clone(), JobState::Pending, t(8))
                .with_receipt(receipt("n1/dir", 3, Some("n1/dir-h2"), "b")),
            OutcomeCommit::new(c2[0].job.id.clone(), JobState::Succeeded, t(8))
                .with_receipt(receipt("n1/dir", 3, Some("n1/dir-h2"), "c"))
                .with_audit(r#"{"event":"c"}"#),
        ];
    let rs = s.commit_outcomes(&os).await.unwrap();
    assert!(rs[0].is_ok(), "{name}: {:?}", rs[0]);
    assert!(matches!(rs[1], Err(LedgerError::Transition(_))), "{name}");
    assert!(rs[2].is_ok(), "{name}: {:?}", rs[2]);
    let chain = s.receipts("n1/dir", 1, 100).await.unwrap();
    assert_eq!(
        chain
            .iter()
            .map(|r| r.directive_id.as_str())
            .collect::<Vec<_>>(),
        [d0.id.as_str(), "a", "c"],
        "{name}"
    );
    assert_eq!(s.receipts("n1/dir", 2, 1).await.unwrap()[0].seq, 2);
    assert_eq!(s.open_manual_tasks(Some("dir"), 10).await.unwrap().len(), 1);
    assert!(s.close_manual_task("task-1", "done", t(9)).await.unwrap());
    assert!(!s.close_manual_task("task-1", "done", t(9)).await.unwrap());
    assert!(s.open_manual_tasks(None, 10).await.unwrap().is_empty());

    // Retrying jobs become due at next_at.
    let retry = JobState::Retrying {
        attempt: 1,
        next_at: t(100),
    };
    s.commit_outcome(&OutcomeCommit::new(c1[2].job.id.clone(), retry, t(9)))
        .await
        .unwrap();
    assert!(s.due_retries(t(99), 10).await.unwrap().is_empty());
    assert_eq!(s.due_retries(t(100), 10).await.unwrap().len(), 1);
    assert!(
        s.claim_due(10, t(99), "w1").await.unwrap().is_empty(),
        "{name}"
    );
    assert_eq!(
        s.claim_due(10, t(100), "w1").await.unwrap().len(),
        1,
        "{name}"
    );

    // Audit outbox: claim with a lease, ack.
    let rows = s
        .claim_audit(10, "pump", Duration::from_secs(60), t(10))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "{name}");
    assert!(rows[0].id < rows[1].id);
    assert!(
        s.claim_audit(10, "pump2", Duration::from_secs(60), t(11))
            .await
            .unwrap()
            .is_empty(),
        "{name}: claimed rows are invisible during the lease"
    );
    assert_eq!(
        s.claim_audit(10, "pump2", Duration::from_secs(60), t(71))
            .await
            .unwrap()
            .len(),
        2,
        "{name}: redelivered after the lease"
    );
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    assert_eq!(s.ack_audit(&ids).await.unwrap(), 2);
    assert!(s.enqueue_audit("not json", t(0)).await.is_err());
}

async fn ledger_counts(s: &dyn LedgerStore, name: &str) {
    let k = key("l", "alice", "admins");
    let a = GrantSource::birthright("everyone");
    let b = GrantSource::parse_key("request:jira:ACC-1").unwrap();
    let ctx = ChangeContext::at(t(0));
    assert_eq!(
        s.grant(&k, &a, &ctx).await.unwrap().outcome,
        DecisionOutcome::GrantTarget
    );
    assert_eq!(
        s.grant(&k, &b, &ctx).await.unwrap().outcome,
        DecisionOutcome::GrantCounted
    );
    assert_eq!(
        s.grant(&k, &b, &ctx).await.unwrap().outcome,
        DecisionOutcome::GrantAlreadyHeld
    );
    let drift = s.system_assignments("l", "dir", true).await.unwrap();
    assert_eq!(drift.len(), 1, "{name}: intended but not confirmed");
    s.confirm(&Confirmation::grant(k.clone(), a.clone(), ctx.clone()))
        .await
        .unwrap();
    assert!(
        s.system_assignments("l", "dir", true)
            .await
            .unwrap()
            .is_empty(),
        "{name}"
    );
    let srcs = s.sources_of(&k).await.unwrap();
    assert_eq!(srcs.len(), 2);
    assert!(
        srcs.iter().all(|x| x.intended && x.confirmed),
        "{name}: {srcs:?}"
    );
    assert_eq!(
        s.revoke(&k, &GrantSource::birthright("other"), &ctx)
            .await
            .unwrap()
            .outcome,
        DecisionOutcome::RevokeNotHeld,
        "{name}"
    );
    let d = s.revoke(&k, &a, &ctx).await.unwrap();
    assert_eq!(
        (d.outcome, d.intended_sources),
        (DecisionOutcome::RevokeCounted, 1)
    );
    let d = s.revoke(&k, &b, &ctx).await.unwrap();
    assert_eq!(d.outcome, DecisionOutcome::RevokeTarget, "{name}");
    assert_eq!(
        d.confirmed_sources, 1,
        "{name}: counted until the revoke is confirmed"
    );
    s.confirm(&Confirmation::revoke(k.clone(), b.clone(), ctx.clone()))
        .await
        .unwrap();
    assert!(s.sources_of(&k).await.unwrap().is_empty(), "{name}");
    // Queries.
    s.grant(&key("l", "bob", "admins"), &a, &ctx).await.unwrap();
    s.grant(&key("l", "bob", "devs"), &a, &ctx).await.unwrap();
    let held = s
        .holders_of("l", "dir", &EntitlementRef::group("admins"))
        .await
        .unwrap();
    assert_eq!(held.len(), 1, "{name}: {held:?}");
    let bobs = s.assignments_of_identity("l", "bob").await.unwrap();
    assert_eq!(
        bobs.iter()
            .map(|a| a.key.entitlement.id.as_str())
            .collect::<Vec<_>>(),
        ["admins", "devs"]
    );
    // All-or-nothing batch: an invalid change rolls back the whole call.
    let bad = iga_ledger::LedgerChange::grant(key("l", "", "x"), a.clone(), ctx.clone());
    let good = iga_ledger::LedgerChange::grant(key("l", "carol", "x"), a.clone(), ctx.clone());
    assert!(s.apply_changes(&[good, bad]).await.is_err());
    assert!(
        s.assignments_of_identity("l", "carol")
            .await
            .unwrap()
            .is_empty(),
        "{name}"
    );
    // Import.
    let rules = vec![ImportRule {
        tenant: "l".into(),
        identity: "dave".into(),
        system: "dir".into(),
        entitlement: EntitlementRef::group("legacy"),
        source: GrantSource::parse_key("import:2026-q1").unwrap(),
    }];
    let rep = s
        .import_rules(
            Box::new(rules.clone().into_iter()),
            ImportOptions::new("b1", t(0)),
        )
        .await
        .unwrap();
    assert_eq!(rep.rows_changed, 1, "{name}");
    let dave = s.assignments_of_identity("l", "dave").await.unwrap();
    assert!(dave[0].target_visible() && dave[0].intended());
    let rep = s
        .import_rules(Box::new(rules.into_iter()), ImportOptions::new("b2", t(0)))
        .await
        .unwrap();
    assert_eq!((rep.rows_changed, rep.rows_unchanged), (0, 1), "{name}");
    let bad = vec![ImportRule {
        tenant: "l".into(),
        identity: String::new(),
        system: "dir".into(),
        entitlement: EntitlementRef::group("legacy"),
        source: GrantSource::parse_key("import:2026-q1").unwrap(),
    }];
    let e = s
        .import_rules(Box::new(bad.into_iter()), ImportOptions::new("b3", t(0)))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("row 1: identity"), "{name}: {e}");
}

async fn cursors_modes_documents(s: &dyn LedgerStore, name: &str) {
    assert!(s.cursor("hr").await.unwrap().is_none());
    s.set_cursor("hr", "c1", t(0)).await.unwrap();
    let ds = vec![directive("c", "u1", "g")];
    s.persist_directives_with_cursor(&ds, "hr", "c2", t(1))
        .await
        .unwrap();
    assert_eq!(
        s.cursor("hr").await.unwrap().as_deref(),
        Some("c2"),
        "{name}"
    );
    assert!(s.set_cursor(" ", "x", t(0)).await.is_err());

    use iga_ledger::CoexistenceMode;
    assert_eq!(s.coexistence("dir").await.unwrap(), CoexistenceMode::Native);
    s.set_coexistence("dir", CoexistenceMode::ShadowCompare, t(0))
        .await
        .unwrap();
    s.set_coexistence("aaa", CoexistenceMode::ShadowCompare, t(0))
        .await
        .unwrap();
    assert_eq!(
        s.coexistence("dir").await.unwrap(),
        CoexistenceMode::ShadowCompare
    );
    assert_eq!(
        s.systems_in_mode(CoexistenceMode::ShadowCompare)
            .await
            .unwrap(),
        ["aaa", "dir"],
        "{name}"
    );

    assert_eq!(
        s.put_document("ns", "k1", r#"{"a":1}"#, Some(0), t(0))
            .await
            .unwrap(),
        1
    );
    let e = s
        .put_document("ns", "k1", "{}", Some(0), t(0))
        .await
        .unwrap_err();
    assert!(
        matches!(e, LedgerError::VersionConflict { found: 1, .. }),
        "{name}: {e}"
    );
    assert_eq!(
        s.put_document("ns", "k1", "{}", Some(1), t(1))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.put_document("ns", "k1", "{}", None, t(1)).await.unwrap(),
        3
    );
    assert!(
        s.put_document("ns", "k2", "not json", None, t(0))
            .await
            .is_err()
    );
    for k in ["k2", "k3", "K0"] {
        s.put_document("ns", k, "[]", None, t(0)).await.unwrap();
    }
    let page = s.list_documents("ns", None, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(),
        ["K0", "k1"],
        "{name}: byte order"
    );
    let page = s.list_documents("ns", Some("k1"), 10).await.unwrap();
    assert_eq!(page.len(), 2);
    let d = s.get_document("ns", "k1").await.unwrap().unwrap();
    assert_eq!((d.version, d.body.as_str()), (3, "{}"));
    assert!(matches!(
        s.delete_document("ns", "k1", Some(2)).await.unwrap_err(),
        LedgerError::VersionConflict { .. }
    ));
    assert!(s.delete_document("ns", "k1", Some(3)).await.unwrap());
    assert!(!s.delete_document("ns", "k1", None).await.unwrap());
    assert!(s.get_document("ns", "k1").await.unwrap().is_none());
}

async fn run_suite(s: &dyn LedgerStore, name: &str) {
    queue_and_unit_of_work(s, name).await;
    ledger_counts(s, name).await;
    cursors_modes_documents(s, name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("s.db")).await.unwrap();
    run_suite(&sqlite, "sqlite").await;

    let pg = Postgres::start();
    let store = PgStore::connect(&pg.fresh_db().await).await.unwrap();
    run_suite(&store, "postgres").await;
    // The ledger's history replays to the live state.
    assert_eq!(
        store.replay_history().await.unwrap(),
        store.snapshot().await.unwrap()
    );
    assert_eq!(
        sqlite.blocking().replay_history().unwrap(),
        sqlite.blocking().snapshot().unwrap()
    );
    // Same live ledger on both after the same calls.
    assert_eq!(
        store.snapshot().await.unwrap(),
        sqlite.blocking().snapshot().unwrap()
    );
}

#[derive(Debug, Clone)]
enum Step {
    Grant(u8, u8),
    Revoke(u8, u8),
    ConfirmGrant(u8, u8),
    ConfirmRevoke(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3u8, 0..3u8).prop_map(|(a, s)| Step::Grant(a, s)),
        (0..3u8, 0..3u8).prop_map(|(a, s)| Step::Revoke(a, s)),
        (0..3u8, 0..3u8).prop_map(|(a, s)| Step::ConfirmGrant(a, s)),
        (0..3u8).prop_map(Step::ConfirmRevoke),
    ]
}

async fn check_model(s: &dyn LedgerStore, tenant: &str, steps: &[Step]) -> Result<(), String> {
    let mut model: BTreeMap<u8, Rows<String>> = BTreeMap::new();
    let src = |i: u8| GrantSource::birthright(format!("s{i}"));
    let k = |a: u8| key(tenant, "who", &format!("g{a}"));
    let ctx = ChangeContext::at(t(0));
    for st in steps {
        match st {
            Step::Grant(a, i) => {
                let want = logic::grant(model.entry(*a).or_default(), src(*i).key());
                let got = s
                    .grant(&k(*a), &src(*i), &ctx)
                    .await
                    .map_err(|e| e.to_string())?;
                if got.outcome != want {
                    return Err(format!("{st:?}: {:?} != {want:?}", got.outcome));
                }
            }
            Step::Revoke(a, i) => {
                let want = logic::revoke(model.entry(*a).or_default(), &src(*i).key());
                let got = s
                    .revoke(&k(*a), &src(*i), &ctx)
                    .await
                    .map_err(|e| e.to_string())?;
                if got.outcome != want {
                    return Err(format!("{st:?}: {:?} != {want:?}", got.outcome));
                }
            }
            Step::ConfirmGrant(a, i) => {
                let want = logic::confirm_grant(model.entry(*a).or_default(), src(*i).key());
                let got = s
                    .confirm(&Confirmation::grant(k(*a), src(*i), ctx.clone()))
                    .await
                    .map_err(|e| e.to_string())?;
                if got.revoke_needed != want {
                    return Err(format!("{st:?}: revoke_needed {}", got.revoke_needed));
                }
            }
            Step::ConfirmRevoke(a) => {
                let want = logic::confirm_revoke(model.entry(*a).or_default());
                let got = s
                    .confirm(&Confirmation::revoke(k(*a), src(0), ctx.clone()))
                    .await
                    .map_err(|e| e.to_string())?;
                if got.regrant_needed != want {
                    return Err(format!("{st:?}: regrant_needed {}", got.regrant_needed));
                }
            }
        }
        for (a, rows) in &model {
            let got: Rows<String> = s
                .sources_of(&k(*a))
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|x| {
                    (
                        x.source.key(),
                        iga_ledger::SourceFlags {
                            intended: x.intended,
                            confirmed: x.confirmed,
                        },
                    )
                })
                .collect();
            if &got != rows {
                return Err(format!("after {st:?}: g{a} is {got:?}, model {rows:?}"));
            }
            if rows.values().any(|f| !f.intended && !f.confirmed) {
                return Err("dead row".into());
            }
        }
    }
    Ok(())
}

#[test]
fn random_grant_revoke_sequences_match_the_model_on_both_stores() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start();
    let (sqlite, store) = rt.block_on(async {
        (
            SqliteStore::open(dir.path().join("p.db")).await.unwrap(),
            PgStore::connect(&pg.fresh_db().await).await.unwrap(),
        )
    });
    let case = std::sync::atomic::AtomicU64::new(0);
    proptest!(ProptestConfig::with_cases(32), |(steps in proptest::collection::vec(step(), 1..40))| {
        let tenant = format!("p{}", case.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        rt.block_on(async {
            check_model(&sqlite, &tenant, &steps).await.map_err(|e| format!("sqlite: {e}"))?;
            check_model(&store, &tenant, &steps).await.map_err(|e| format!("postgres: {e}"))
        }).map_err(TestCaseError::fail)?;
    });
    rt.block_on(async {
        assert_eq!(
            store.replay_history().await.unwrap(),
            store.snapshot().await.unwrap()
        );
        assert_eq!(
            store.snapshot().await.unwrap(),
            sqlite.blocking().snapshot().unwrap()
        );
    });
}
