//! The unit of work, failpoints, receipts and the audit outbox.
#![cfg(feature = "sqlite")]

mod common;

use std::time::Duration;

use common::*;
use iga_directive::*;
use iga_ledger::*;

/// A directive persisted, granted in the ledger, claimed: ready for an outcome.
fn in_flight(l: &SqliteLedger, who: &str) -> (AccessDirective, AssignmentKey) {
    let d = grant_directive(who, "G", &format!("R-{who}"));
    l.persist_directives(std::slice::from_ref(&d), at(0))
        .unwrap();
    let k = AssignmentKey::from_directive(&d).unwrap();
    l.grant(&k, &d.source, &ChangeContext::from_directive(&d, at(0)))
        .unwrap();
    l.transition_job(d.id.as_str(), JobState::Planned, None, at(1))
        .unwrap();
    l.transition_job(d.id.as_str(), JobState::InFlight, None, at(2))
        .unwrap();
    (d, k)
}

fn success(d: &AccessDirective, k: &AssignmentKey, seq: u64, prev: Option<&str>) -> OutcomeCommit {
    OutcomeCommit::new(d.id.as_str(), JobState::Succeeded, at(10))
        .with_confirm(Confirmation::grant(
            k.clone(),
            d.source.clone(),
            ChangeContext::from_directive(d, at(10)),
        ))
        .with_receipt(receipt("chain-1", seq, prev, d.id.as_str()))
        .with_audit(r#"{"event":"grant","outcome":"applied"}"#)
}

#[test]
fn one_outcome_commits_job_ledger_receipt_and_audit_together() {
    let (_d, l) = fresh();
    let (d, k) = in_flight(&l, "alice");
    let r = l.commit_outcome(&success(&d, &k, 1, None)).unwrap();
    assert_eq!(r.job.state, JobState::Succeeded);
    assert_eq!(r.confirm.unwrap().confirmed_sources, 1);
    assert_eq!(r.audit_ids.len(), 1);
    assert!(l.assignment(&k).unwrap().target_visible());
    assert_eq!(l.receipts_for_directive(d.id.as_str()).unwrap().len(), 1);
    assert_eq!(l.chain_head("chain-1").unwrap().unwrap().seq, 1);
    assert_eq!(l.audit_backlog().unwrap(), 1);
}

#[test]
fn failure_injected_before_commit_leaves_everything_unchanged() {
    for fp in [
        FailPoint::AfterLedgerConfirm,
        FailPoint::AfterReceiptAppend,
        FailPoint::BeforeCommit,
    ] {
        let (_dir, l) = fresh();
        let (d, k) = in_flight(&l, "alice");
        let before_counts = counts(&l);
        let before_ledger = l.snapshot().unwrap();
        let before_job = l.job(d.id.as_str()).unwrap();

        l.set_failpoint(Some(fp));
        let e = l.commit_outcome(&success(&d, &k, 1, None)).unwrap_err();
        assert!(matches!(e, LedgerError::Injected(p) if p == fp), "{e}");
        assert_eq!(counts(&l), before_counts, "{fp}");
        assert_eq!(l.snapshot().unwrap(), before_ledger, "{fp}");
        assert_eq!(l.job(d.id.as_str()).unwrap(), before_job, "{fp}");
        assert!(l.chain_head("chain-1").unwrap().is_none(), "{fp}");
        assert!(!l.assignment(&k).unwrap().target_visible(), "{fp}");

        // Disarmed, the same outcome commits.
        l.set_failpoint(None);
        l.commit_outcome(&success(&d, &k, 1, None)).unwrap();
        assert!(l.assignment(&k).unwrap().target_visible());
        assert_eq!(l.replay_history().unwrap(), l.snapshot().unwrap());
    }
}

#[test]
fn a_bad_part_rolls_back_the_whole_outcome() {
    let (_d, l) = fresh();
    let (d, k) = in_flight(&l, "alice");
    l.append_receipt(&receipt("chain-1", 1, None, "earlier"))
        .unwrap();
    let before = counts(&l);
    // Receipt seq 5 does not follow head 1: the job and ledger must not move either.
    let e = l.commit_outcome(&success(&d, &k, 5, None)).unwrap_err();
    assert!(matches!(e, LedgerError::ReceiptChain { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("does not follow the chain head seq 1"),
        "{e}"
    );
    assert_eq!(counts(&l), before);
    assert_eq!(
        l.job(d.id.as_str()).unwrap().unwrap().state,
        JobState::InFlight
    );
    // A bad audit event (not JSON) also rolls back everything.
    let o = OutcomeCommit::new(d.id.as_str(), JobState::Succeeded, at(10)).with_audit("not json");
    let e = l.commit_outcome(&o).unwrap_err();
    assert!(e.to_string().starts_with("audit_event:"), "{e}");
    assert_eq!(counts(&l), before);
}

#[test]
fn confirmation_requires_a_terminal_success() {
    let (_d, l) = fresh();
    let (d, k) = in_flight(&l, "alice");
    let o = OutcomeCommit::new(
        d.id.as_str(),
        JobState::Retrying {
            attempt: 1,
            next_at: at(60),
        },
        at(10),
    )
    .with_confirm(Confirmation::grant(k.clone(), d.source.clone(), ctx(10)));
    let e = l.commit_outcome(&o).unwrap_err();
    assert!(e.to_string().contains("needs a terminal success"), "{e}");
    assert_eq!(
        l.job(d.id.as_str()).unwrap().unwrap().state,
        JobState::InFlight
    );

    // A failed grant with a retry: attempt recorded, nothing counted as provisioned.
    let a = AttemptRecord::new(1, at(10), "unavailable", "503", Some("HTTP 503".into()));
    let o = OutcomeCommit::new(
        d.id.as_str(),
        JobState::Retrying {
            attempt: 1,
            next_at: at(60),
        },
        at(10),
    )
    .with_attempt(a.clone())
    .with_audit(r#"{"event":"retry"}"#);
    let r = l.commit_outcome(&o).unwrap();
    assert_eq!(r.job.attempts, vec![a]);
    assert!(!l.assignment(&k).unwrap().target_visible());
    assert_eq!(l.assignment(&k).unwrap().intended_sources, 1);
}

#[test]
fn batched_outcomes_commit_together_and_isolate_item_errors() {
    let (_d, l) = fresh();
    let (d1, k1) = in_flight(&l, "u1");
    let (d2, k2) = in_flight(&l, "u2");
    let (d3, k3) = in_flight(&l, "u3");
    let h1 = format!("{:064x}", 2);
    let batch = vec![
        success(&d1, &k1, 1, None),
        // Illegal: InFlight -> Cancelled.
        OutcomeCommit::new(
            d2.id.as_str(),
            JobState::Cancelled { reason: "x".into() },
            at(10),
        ),
        success(&d3, &k3, 2, Some(&h1)),
    ];
    let res = l.commit_outcomes(&batch).unwrap();
    assert!(res[0].is_ok());
    assert!(matches!(res[1], Err(LedgerError::Transition(_))));
    assert!(res[2].is_ok());
    assert!(l.assignment(&k1).unwrap().target_visible());
    assert!(!l.assignment(&k2).unwrap().target_visible());
    assert!(l.assignment(&k3).unwrap().target_visible());
    assert_eq!(l.chain_head("chain-1").unwrap().unwrap().seq, 2);

    // An injected failure aborts a whole batch.
    let (d4, k4) = in_flight(&l, "u4");
    let before = counts(&l);
    l.set_failpoint(Some(FailPoint::BeforeCommit));
    let h2 = format!("{:064x}", 3);
    assert!(
        l.commit_outcomes(&[success(&d4, &k4, 3, Some(&h2))])
            .is_err()
    );
    assert_eq!(counts(&l), before);
}

#[test]
fn receipts_are_append_only_and_chained() {
    let (dir, l) = fresh();
    l.append_receipt(&receipt("c", 1, None, "d1")).unwrap();
    let h = l.chain_head("c").unwrap().unwrap();
    // Wrong previous hash.
    let e = l
        .append_receipt(&receipt("c", 2, Some("deadbeef"), "d2"))
        .unwrap_err();
    assert!(e.to_string().contains("prev_sha256"), "{e}");
    // Fork at the same position.
    let e = l.append_receipt(&receipt("c", 1, None, "d2")).unwrap_err();
    assert!(e.to_string().contains("does not follow"), "{e}");
    l.append_receipt(&receipt("c", 2, Some(&h.payload_sha256), "d2"))
        .unwrap();
    let all = l.receipts("c", 0, 10).unwrap();
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(all[0], receipt("c", 1, None, "d1"));
    drop(l);
    let c = rusqlite::Connection::open(dir.path().join("ledger.db")).unwrap();
    for sql in [
        "UPDATE rc_receipt SET jws = 'forged' WHERE seq = 1",
        "DELETE FROM rc_receipt WHERE seq = 2",
    ] {
        let e = c.execute(sql, []).unwrap_err().to_string();
        assert!(e.contains("receipts are append-only"), "{sql}: {e}");
    }
}

#[test]
fn audit_outbox_claim_lease_and_ack() {
    let (_d, l) = fresh();
    for i in 0..5 {
        l.enqueue_audit(&format!(r#"{{"n":{i}}}"#), at(i)).unwrap();
    }
    let a = l
        .claim_audit(3, "pump-1", Duration::from_secs(30), at(10))
        .unwrap();
    assert_eq!(a.len(), 3);
    assert_eq!(a[0].event_json, r#"{"n":0}"#);
    assert_eq!(a[0].created_at, at(0));
    let b = l
        .claim_audit(10, "pump-2", Duration::from_secs(30), at(11))
        .unwrap();
    assert_eq!(
        b.iter().map(|r| r.event_json.as_str()).collect::<Vec<_>>(),
        [r#"{"n":3}"#, r#"{"n":4}"#]
    );
    assert_eq!(l.ack_audit(&[a[0].id, a[1].id]).unwrap(), 2);
    // pump-1 crashed before acking a[2]: after the lease it is delivered again.
    assert!(
        l.claim_audit(10, "pump-3", Duration::from_secs(30), at(20))
            .unwrap()
            .is_empty()
    );
    let c = l
        .claim_audit(10, "pump-3", Duration::from_secs(30), at(41))
        .unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(c[0].id, a[2].id);
    assert_eq!(
        l.ack_audit(&c.iter().map(|r| r.id).collect::<Vec<_>>())
            .unwrap(),
        3
    );
    assert_eq!(l.audit_backlog().unwrap(), 0);
}

#[test]
fn names_interned_in_a_rolled_back_transaction_are_not_reused() {
    let (_d, l) = fresh();
    let k = key("newcomer", "NewGroup");
    let s = GrantSource::birthright("new-rule");
    l.set_failpoint(Some(FailPoint::BeforeCommit));
    assert!(l.grant(&k, &s, &ctx(1)).is_err());
    l.set_failpoint(None);
    assert_eq!(l.table_count("lg_identity").unwrap(), 0);
    // The ids interned by the failed transaction must not be served from a cache.
    l.grant(&k, &s, &ctx(2)).unwrap();
    assert_eq!(l.sources_of(&k).unwrap().len(), 1);
    assert_eq!(
        l.assignments_of_identity("acme", "newcomer").unwrap().len(),
        1
    );

    // Same inside a batch: an outcome rolled back to its savepoint after interning.
    let (d1, _) = in_flight(&l, "u1");
    let (d2, _) = in_flight(&l, "u2");
    let fresh_key = key("late", "LateGroup");
    let src = GrantSource::delegation("boss");
    let bad = OutcomeCommit::new(d1.id.as_str(), JobState::Succeeded, at(10))
        .with_confirm(Confirmation::grant(fresh_key.clone(), src.clone(), ctx(10)))
        .with_receipt(receipt("c", 7, Some("nope"), "x"));
    l.append_receipt(&receipt("c", 1, None, "x")).unwrap();
    let good = OutcomeCommit::new(d2.id.as_str(), JobState::Succeeded, at(11));
    let res = l.commit_outcomes(&[bad, good]).unwrap();
    assert!(res[0].is_err() && res[1].is_ok());
    assert!(l.sources_of(&fresh_key).unwrap().is_empty());
    l.confirm(&Confirmation::grant(fresh_key.clone(), src, ctx(12)))
        .unwrap();
    assert_eq!(l.sources_of(&fresh_key).unwrap().len(), 1);
    assert_eq!(l.replay_history().unwrap(), l.snapshot().unwrap());
}
