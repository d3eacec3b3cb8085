//! Scenario 4 — target down: jobs wait in `Retrying` with visible next attempt times
//! (default: 5 retries over about 30 minutes); when the target returns they all
//! succeed; if it never does, each job is escalated with every attempt's error and the
//! source ticket gets a "needs attention" note. No ledger change for what did not
//! happen.

use std::sync::Arc;
use std::time::Duration;

use iga_adapter::{FulfillmentReport, MemorySource};
use iga_directive::{Clock, EntitlementRef, GrantSource, JobState, JobStateName};
use iga_ledger::{AssignmentKey, LedgerStore};
use iga_orchestrator::SystemSettings;
use iga_scenarios::*;

async fn down_world(source: MemorySource) -> World {
    let w = world_with(
        vec![SystemSpec::new("ldap").with_settings(SystemSettings::new())],
        |b| {
            b.source(Arc::new(source)).batch(
                iga_batch::BatchConfig::default()
                    .retry(iga_batch::RetryPolicy::new(2, Duration::from_secs(5))),
            )
        },
    )
    .await;
    let t = w.target("ldap");
    t.seed_entitlement(&EntitlementRef::group("G"));
    for i in 0..3 {
        t.seed_account(&person(&format!("u{i}")));
    }
    t.set_down(true);
    w
}

fn push_requests(source: &MemorySource) -> Vec<String> {
    (0..3)
        .map(|i| {
            let d = grant(
                "ldap",
                &person(&format!("u{i}")),
                "G",
                GrantSource::request("jira", &format!("ACC-{i}")),
            );
            let id = d.id.to_string();
            source.push(d);
            id
        })
        .collect()
}

async fn latest_next_at(w: &World, ids: &[String]) -> iga_directive::Timestamp {
    let mut latest = w.clock.now();
    for id in ids {
        if let JobState::Retrying { next_at, .. } = w.orch.job(id).await.unwrap().unwrap().state {
            latest = latest.max(next_at);
        }
    }
    latest
}

async fn assert_unconfirmed(w: &World) {
    for i in 0..3 {
        let key = AssignmentKey::new("acme", format!("u{i}"), "ldap", EntitlementRef::group("G"));
        let s = w.store.sources_of(&key).await.unwrap();
        assert!(s.iter().all(|s| s.intended && !s.confirmed), "{s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_retry_on_schedule_and_succeed_when_the_target_returns() {
    let source = MemorySource::new("jira", 10);
    let w = down_world(source.clone()).await;
    let ids = push_requests(&source);
    let start = w.clock.now();
    w.orch.run_until_idle().await.unwrap();
    for id in &ids {
        match w.orch.job(id).await.unwrap().unwrap().state {
            JobState::Retrying {
                attempt: 1,
                next_at,
            } => {
                let wait = (next_at - start).num_seconds();
                assert!(
                    (54..=66).contains(&wait),
                    "first retry after ~1 min, got {wait}s"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    assert_unconfirmed(&w).await;
    // Nothing is due before next_at.
    let r = w.orch.run_until_idle().await.unwrap();
    assert_eq!(r.executed, 0);
    // Second attempt, still down.
    w.clock.advance(Duration::from_secs(70));
    w.orch.run_until_idle().await.unwrap();
    assert!(matches!(
        w.orch.job(&ids[0]).await.unwrap().unwrap().state,
        JobState::Retrying { attempt: 2, .. }
    ));
    // The server returns; move past every job's next attempt time.
    w.target("ldap").set_down(false);
    w.clock
        .set(latest_next_at(&w, &ids).await + chrono::Duration::seconds(1));
    w.orch.run_until_idle().await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        let job = w.orch.job(id).await.unwrap().unwrap();
        assert_eq!(job.state.name(), JobStateName::Succeeded);
        assert_eq!(job.attempts.len(), 2, "two failed attempts recorded");
        assert!(
            w.target("ldap")
                .has_member(&format!("u{i}"), &EntitlementRef::group("G"))
        );
    }
    assert_eq!(w.verify_chains().await, 3);
    let fulfilled = source
        .reports()
        .into_iter()
        .filter(|r| matches!(r, FulfillmentReport::Fulfilled { .. }))
        .count();
    assert_eq!(fulfilled, 3, "each ticket is told it was fulfilled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_escalate_with_every_attempt_when_the_target_never_returns() {
    let source = MemorySource::new("jira", 10);
    let w = down_world(source.clone()).await;
    let ids = push_requests(&source);
    let start = w.clock.now();
    w.orch.run_until_idle().await.unwrap();
    let mut last_next = start;
    for retry in 1..=5u32 {
        let job = w.orch.job(&ids[0]).await.unwrap().unwrap();
        match job.state {
            JobState::Retrying { attempt, next_at } => {
                assert_eq!(attempt, retry);
                assert!(next_at > last_next);
                last_next = next_at;
            }
            other => panic!("retry {retry}: {other:?}"),
        }
        w.clock
            .set(latest_next_at(&w, &ids).await + chrono::Duration::seconds(1));
        w.orch.run_until_idle().await.unwrap();
    }
    let span = (last_next - start).num_minutes();
    assert!(
        (25..=40).contains(&span),
        "5 retries over ~30 minutes, got {span} min"
    );
    for id in &ids {
        match w.orch.job(id).await.unwrap().unwrap().state {
            JobState::Escalated { reason, attempts } => {
                assert!(
                    reason.contains("retries exhausted after 6 attempts"),
                    "{reason}"
                );
                assert_eq!(attempts.len(), 6);
                assert!(
                    attempts.iter().all(|a| a.error_kind == "unavailable"
                        && a.message.contains("connection refused"))
                );
                let mut times: Vec<_> = attempts.iter().map(|a| a.at).collect();
                times.dedup();
                assert_eq!(times.len(), 6, "each attempt has its own time");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_unconfirmed(&w).await;
    assert!(
        w.target("ldap")
            .members(&EntitlementRef::group("G"))
            .is_empty()
    );
    let notes: Vec<_> = source
        .reports()
        .into_iter()
        .filter_map(|r| match r {
            FulfillmentReport::NeedsAttention {
                message, approval, ..
            } => Some((message, approval)),
            _ => None,
        })
        .collect();
    assert_eq!(
        notes.len(),
        3,
        "each source ticket gets a needs-attention note"
    );
    assert!(
        notes
            .iter()
            .all(|(m, a)| m.contains("unavailable") && a.is_some())
    );
    // Escalations are terminal outcomes: they have receipts, and the chain verifies.
    assert_eq!(w.verify_chains().await, 3);
    let summary = w.orch.status().await.unwrap();
    assert_eq!(summary.count(JobStateName::Escalated), 3);
}
