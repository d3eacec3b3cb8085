//! Durable job queue, cursors, manual tasks.
#![cfg(feature = "sqlite")]

mod common;

use common::*;
use iga_directive::*;
use iga_ledger::*;

#[test]
fn directives_and_jobs_survive_reopen_and_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let d1 = grant_directive("alice", "G1", "RITM1");
    let d2 = grant_directive("bob", "G1", "RITM2");
    {
        let l = SqliteLedger::open(&path).unwrap();
        let r = l
            .persist_directives(&[d1.clone(), d2.clone()], at(1))
            .unwrap();
        assert_eq!(
            r,
            PersistReport {
                inserted: 2,
                duplicates: 0
            }
        );
        let r = l
            .persist_directives(std::slice::from_ref(&d1), at(2))
            .unwrap();
        assert_eq!(
            r,
            PersistReport {
                inserted: 0,
                duplicates: 1
            }
        );
        l.transition_job(d1.id.as_str(), JobState::Planned, None, at(3))
            .unwrap();
    }
    let l = SqliteLedger::open(&path).unwrap();
    assert_eq!(l.directive(d1.id.as_str()).unwrap().unwrap(), d1);
    let j = l.job(d1.id.as_str()).unwrap().unwrap();
    assert_eq!(j.state, JobState::Planned);
    assert_eq!(j.updated_at, at(3));
    assert_eq!(l.jobs_by_state(JobStateName::Pending, 10).unwrap().len(), 1);
    assert!(l.job("nope").unwrap().is_none());
}

#[test]
fn invalid_directive_fails_the_whole_persist_naming_it() {
    let (_d, l) = fresh();
    let good = grant_directive("alice", "G1", "RITM1");
    let mut bad = grant_directive("bob", "G1", "RITM2");
    bad.tenant = String::new();
    let e = l
        .persist_directives(&[good, bad.clone()], at(1))
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(bad.id.as_str()) && msg.contains("tenant"),
        "{msg}"
    );
    assert_eq!(l.table_count("q_directive").unwrap(), 0);
    assert_eq!(l.table_count("q_job").unwrap(), 0);
}

#[test]
fn transitions_follow_the_table_and_illegal_ones_change_nothing() {
    let (_d, l) = fresh();
    let d = grant_directive("alice", "G1", "RITM1");
    l.persist_directives(std::slice::from_ref(&d), at(0))
        .unwrap();
    let id = d.id.as_str();
    let e = l
        .transition_job(id, JobState::Succeeded, None, at(1))
        .unwrap_err();
    assert!(matches!(e, LedgerError::Transition(_)), "{e}");
    assert!(
        e.to_string()
            .contains("illegal transition pending -> succeeded"),
        "{e}"
    );
    assert_eq!(l.job(id).unwrap().unwrap().state, JobState::Pending);
    let e = l
        .transition_job("missing", JobState::Planned, None, at(1))
        .unwrap_err();
    assert!(matches!(e, LedgerError::JobNotFound(_)));
}

#[test]
fn claim_due_takes_planned_and_due_retries_once() {
    let (_d, l) = fresh();
    let ds: Vec<_> = (0..4)
        .map(|i| grant_directive(&format!("u{i}"), "G", &format!("R{i}")))
        .collect();
    l.persist_directives(&ds, at(0)).unwrap();
    for d in &ds[..3] {
        l.transition_job(d.id.as_str(), JobState::Planned, None, at(1))
            .unwrap();
    }
    // ds[3] stays Pending: not claimable.
    let first = l.claim_due(2, at(2), "w1").unwrap();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|c| c.job.state == JobState::InFlight));
    assert_eq!(first[0].directive.id, first[0].job.directive_id);
    let second = l.claim_due(10, at(2), "w2").unwrap();
    assert_eq!(second.len(), 1);
    assert!(first.iter().all(|c| c.job.id != second[0].job.id));
    assert!(l.claim_due(10, at(2), "w3").unwrap().is_empty());

    // One fails transiently: retry at +60 s.
    let j = &first[0].job;
    let attempt = AttemptRecord::new(1, at(3), "rate_limited", "429 from target", None);
    l.transition_job(
        &j.id,
        JobState::Retrying {
            attempt: 1,
            next_at: at(63),
        },
        Some(attempt.clone()),
        at(3),
    )
    .unwrap();
    assert!(l.due_retries(at(62), 10).unwrap().is_empty());
    assert!(l.claim_due(10, at(62), "w1").unwrap().is_empty());
    let due = l.due_retries(at(63), 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].attempts, vec![attempt]);
    let again = l.claim_due(10, at(63), "w1").unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].job.id, j.id);
    assert_eq!(again[0].job.attempts.len(), 1);
}

#[test]
fn crash_recovery_requeues_in_flight_jobs_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let ds: Vec<_> = (0..3)
        .map(|i| grant_directive(&format!("u{i}"), "G", &format!("R{i}")))
        .collect();
    {
        let l = SqliteLedger::open(&path).unwrap();
        l.persist_directives(&ds, at(0)).unwrap();
        for d in &ds {
            l.transition_job(d.id.as_str(), JobState::Planned, None, at(1))
                .unwrap();
        }
        assert_eq!(l.claim_due(2, at(2), "w1").unwrap().len(), 2);
        assert_eq!(l.claim_due(1, at(2), "w2").unwrap().len(), 1);
        // "crash": drop without finishing.
    }
    let l = SqliteLedger::open(&path).unwrap();
    assert_eq!(
        l.jobs_by_state(JobStateName::InFlight, 10).unwrap().len(),
        3
    );
    assert_eq!(l.requeue_in_flight(Some("w1"), at(5)).unwrap(), 2);
    assert_eq!(l.requeue_in_flight(None, at(5)).unwrap(), 1);
    assert_eq!(l.jobs_by_state(JobStateName::Planned, 10).unwrap().len(), 3);
    assert_eq!(l.job_counts().unwrap(), vec![(JobStateName::Planned, 3)]);
}

#[test]
fn staged_items_and_manual_tasks() {
    let (_d, l) = fresh();
    let d = grant_directive("alice", "G", "R1");
    l.persist_directives(std::slice::from_ref(&d), at(0))
        .unwrap();
    l.transition_job(
        d.id.as_str(),
        JobState::Staged {
            reason: "mass deletion threshold".into(),
        },
        None,
        at(1),
    )
    .unwrap();
    let staged = l.staged_jobs(10).unwrap();
    assert_eq!(staged.len(), 1);
    assert!(
        matches!(&staged[0].state, JobState::Staged { reason } if reason.contains("threshold"))
    );
    l.transition_job(d.id.as_str(), JobState::Planned, None, at(2))
        .unwrap();
    assert!(l.staged_jobs(10).unwrap().is_empty());

    let task = ManualTask {
        id: "T1".into(),
        job_id: Some(d.id.0.clone()),
        tenant: "acme".into(),
        system: "as400".into(),
        owner: Some("ops".into()),
        summary: "grant G to alice".into(),
        detail_json: None,
        created_at: at(3),
    };
    l.create_manual_task(&task).unwrap();
    let e = l.create_manual_task(&task).unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_eq!(
        l.open_manual_tasks(Some("as400"), 10).unwrap(),
        vec![task.clone()]
    );
    assert!(l.open_manual_tasks(Some("entra"), 10).unwrap().is_empty());
    assert!(l.close_manual_task("T1", "done by ops", at(4)).unwrap());
    assert!(!l.close_manual_task("T1", "again", at(5)).unwrap());
    assert!(l.open_manual_tasks(None, 10).unwrap().is_empty());
}

#[test]
fn cursor_moves_with_the_directives_it_covers() {
    let (_d, l) = fresh();
    assert_eq!(l.cursor("servicenow").unwrap(), None);
    let d = grant_directive("alice", "G", "R1");
    l.persist_directives_with_cursor(
        std::slice::from_ref(&d),
        "servicenow",
        "2026-01-01T00:00:05Z|R1",
        at(1),
    )
    .unwrap();
    assert_eq!(
        l.cursor("servicenow").unwrap().as_deref(),
        Some("2026-01-01T00:00:05Z|R1")
    );
    // A failing batch moves neither the directives nor the cursor.
    let mut bad = grant_directive("bob", "G", "R2");
    bad.system = String::new();
    assert!(
        l.persist_directives_with_cursor(&[bad], "servicenow", "later", at(2))
            .is_err()
    );
    assert_eq!(
        l.cursor("servicenow").unwrap().as_deref(),
        Some("2026-01-01T00:00:05Z|R1")
    );
    l.set_cursor("jira", "42", at(3)).unwrap();
    assert_eq!(l.cursor("jira").unwrap().as_deref(), Some("42"));
}

#[test]
fn future_dated_directives_stay_pending_until_their_not_before() {
    let (_d, l) = fresh();
    let now_d = grant_directive("alice", "G1", "RITM10");
    let later = AccessDirective::builder("acme", "entra", Identity::person("bob"), Action::Grant)
        .entitlement(EntitlementRef::group("G1"))
        .approval(ApprovalRef::new("servicenow", "RITM11"))
        .requested_at(t0())
        .not_before(at(100))
        .build()
        .unwrap();
    l.persist_directives(&[now_d.clone(), later.clone()], at(1))
        .unwrap();
    let due: Vec<String> = l
        .due_pending(at(50), 10)
        .unwrap()
        .into_iter()
        .map(|j| j.directive_id.0)
        .collect();
    assert_eq!(due, vec![now_d.id.0.clone()]);
    // Both are pending all along; the future one becomes due at its time.
    assert_eq!(l.jobs_by_state(JobStateName::Pending, 10).unwrap().len(), 2);
    assert_eq!(l.due_pending(at(100), 10).unwrap().len(), 2);
    // The stored directive keeps its not_before.
    assert_eq!(
        l.directive(later.id.as_str()).unwrap().unwrap().not_before,
        Some(at(100))
    );
}
