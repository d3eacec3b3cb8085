//! End to end through the orchestrator with tasks in the durable store: a manual
//! grant waits for its owner, completes with a receipt and a ledger confirmation, a
//! rejected task escalates the job, and tasks survive a restart.

use std::sync::Arc;
use std::time::Duration;

use iga_connector_manual::{ManualAdapter, ManualConfig, TaskStore};
use iga_directive::{
    AccessDirective, Action, ApprovalRef, EntitlementRef, GrantSource, Identity, JobState,
    ManualClock,
};
use iga_ledger::{AssignmentKey, LedgerStore, SqliteStore};
use iga_orchestrator::{Orchestrator, StoreTasks};
use iga_receipt::{Algorithm, ReceiptSigner, SigningKey};

const SYSTEM: &str = "badge-office";

struct World {
    orch: Orchestrator,
    store: SqliteStore,
    manual: ManualAdapter,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("iga.db"))
        .await
        .expect("store");
    let clock = ManualClock::at_epoch();
    let manual = ManualAdapter::new(
        ManualConfig::new(SYSTEM, Some("facilities"))
            .entitlement(EntitlementRef::group("building-a"), Some("security-desk")),
        Arc::new(StoreTasks::new(Arc::new(store.clone()))),
    )
    .with_clock(clock.shared());
    let orch = Orchestrator::builder()
        .store(Arc::new(store.clone()))
        .signer(ReceiptSigner::new(SigningKey::generate(Algorithm::EdDSA).unwrap()).unwrap())
        .clock(clock.shared())
        .external_poll(Duration::from_secs(30))
        .system(SYSTEM, Arc::new(manual.clone()))
        .build()
        .await
        .expect("orchestrator");
    World {
        orch,
        store,
        manual,
        clock,
        _dir: dir,
    }
}

fn grant(who: &str, ticket: &str) -> AccessDirective {
    AccessDirective::builder("acme", SYSTEM, Identity::person(who), Action::Grant)
        .entitlement(EntitlementRef::group("building-a"))
        .source(GrantSource::request("servicenow", ticket))
        .approval(ApprovalRef::new("servicenow", ticket))
        .build()
        .unwrap()
}

async fn state(w: &World, d: &AccessDirective) -> JobState {
    w.orch.job(d.id.as_str()).await.unwrap().expect("job").state
}

#[tokio::test]
async fn manual_grant_waits_for_its_owner_then_succeeds_with_receipt_and_ledger() {
    let w = world().await;
    let d = grant("dana", "RITM100");
    w.orch.submit(vec![d.clone()]).await.unwrap();
    let pass = w.orch.run_until_idle().await.unwrap();
    assert_eq!(pass.awaiting, 1, "{pass:?}");
    let task_id = match state(&w, &d).await {
        JobState::AwaitingExternal { external_ref } => external_ref,
        other => panic!("expected AwaitingExternal, got {other:?}"),
    };
    // The task is in the store's queue, for the entitlement's owner.
    let queue = w.store.open_manual_tasks(Some(SYSTEM), 10).await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].id, task_id);
    assert_eq!(queue[0].owner.as_deref(), Some("security-desk"));
    assert_eq!(queue[0].job_id.as_deref(), Some(d.id.as_str()));
    // Polling while open opens nothing new and keeps waiting; no receipt yet.
    w.clock.advance(Duration::from_secs(60));
    w.orch.run_until_idle().await.unwrap();
    assert!(matches!(
        state(&w, &d).await,
        JobState::AwaitingExternal { .. }
    ));
    assert_eq!(w.store.open_manual_tasks(None, 10).await.unwrap().len(), 1);
    assert_eq!(receipts(&w).await, 0);

    w.manual.complete(&task_id, Some("guard-1")).await.unwrap();
    assert!(
        w.store
            .open_manual_tasks(None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    w.clock.advance(Duration::from_secs(60));
    let pass = w.orch.run_until_idle().await.unwrap();
    assert_eq!(pass.completed_external, 1, "{pass:?}");
    assert_eq!(state(&w, &d).await, JobState::Succeeded);
    assert_eq!(receipts(&w).await, 1);
    let key = AssignmentKey::from_directive(&d).unwrap();
    let sources = w.store.sources_of(&key).await.unwrap();
    assert!(
        sources.iter().all(|s| s.intended && s.confirmed),
        "{sources:?}"
    );
    assert_eq!(sources.len(), 1);
}

#[tokio::test]
async fn rejected_task_escalates_the_job_with_the_reason() {
    let w = world().await;
    let d = grant("eve", "RITM200");
    w.orch.submit(vec![d.clone()]).await.unwrap();
    w.orch.run_until_idle().await.unwrap();
    let tasks = w.manual.open_tasks(10).await.unwrap();
    assert_eq!(tasks.len(), 1);
    w.manual
        .reject(
            &tasks[0].id,
            "no badge for contractors",
            Some("security-desk"),
        )
        .await
        .unwrap();
    w.clock.advance(Duration::from_secs(60));
    let pass = w.orch.run_until_idle().await.unwrap();
    assert_eq!(pass.escalated, 1, "{pass:?}");
    match state(&w, &d).await {
        JobState::Escalated { reason, attempts } => {
            assert!(reason.contains("no badge for contractors"), "{reason}");
            assert_eq!(attempts.last().unwrap().error_kind, "permission_denied");
        }
        other => panic!("expected Escalated, got {other:?}"),
    }
    // The escalation is receipted and the ledger did not confirm anything.
    assert_eq!(receipts(&w).await, 1);
    let key = AssignmentKey::from_directive(&d).unwrap();
    assert!(
        w.store
            .sources_of(&key)
            .await
            .unwrap()
            .iter()
            .all(|s| !s.confirmed)
    );
}

#[tokio::test]
async fn tasks_survive_a_restart() {
    let w = world().await;
    let d = grant("fay", "RITM300");
    w.orch.submit(vec![d.clone()]).await.unwrap();
    w.orch.run_until_idle().await.unwrap();
    let path = w._dir.path().join("iga.db");
    drop(w.orch);
    let reopened = SqliteStore::open(path).await.unwrap();
    let tasks = StoreTasks::new(Arc::new(reopened));
    let open = tasks.open_tasks(Some(SYSTEM), 10).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].operation.identity.id, "fay");
}

async fn receipts(w: &World) -> u64 {
    let mut n = 0;
    for (chain, report) in w.orch.verify_receipts().await.unwrap() {
        assert!(report.is_ok(), "chain {chain}: {report:?}");
        n += report.records as u64;
    }
    n
}
