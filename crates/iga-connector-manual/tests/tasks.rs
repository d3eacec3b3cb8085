//! Task semantics of the manual adapter and the fallback wrapper (in-memory store).

use std::sync::Arc;

use iga_adapter::{ErrorKind, Fault, MemoryAdapter, NoOpReason, Outcome, ProvisioningAdapter};
use iga_connector_manual::{
    FallbackToManual, ManualAdapter, ManualConfig, MemoryTaskStore, TaskState, task_id,
};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};

fn grant(system: &str, who: &str, group: &str, id: &str) -> Operation {
    Operation::new("acme", system, OperationKind::Grant, Identity::person(who))
        .with_entitlement(EntitlementRef::group(group))
        .with_id(id)
}

fn adapter() -> (ManualAdapter, Arc<MemoryTaskStore>) {
    let store = Arc::new(MemoryTaskStore::new());
    let config = ManualConfig::new("hr-app", Some("hr-admins"))
        .entitlement(EntitlementRef::group("payroll"), Some("payroll-lead"))
        .entitlement(EntitlementRef::group("staff"), None);
    (ManualAdapter::new(config, store.clone()), store)
}

#[tokio::test]
async fn one_task_per_operation_owned_per_entitlement_then_completion_answers_applied() {
    let (m, store) = adapter();
    let op = grant("hr-app", "dana", "payroll", "d1.0");
    let first = m.apply(&op).await.unwrap();
    assert_eq!(
        first,
        Outcome::Pending {
            external_ref: task_id(&op)
        }
    );
    // Re-applying, and another operation with the same effect, open nothing new.
    assert_eq!(m.apply(&op).await.unwrap(), first);
    let twin = grant("hr-app", "dana", "payroll", "d2.0");
    assert_eq!(m.apply(&twin).await.unwrap(), first);
    assert_eq!(store.len(), 1);
    let open = m.open_tasks(10).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].owner.as_deref(), Some("payroll-lead"));
    assert!(
        open[0].summary.contains("grant group:payroll to dana"),
        "{}",
        open[0].summary
    );
    // The system owner gets tasks without an entitlement owner.
    m.apply(&grant("hr-app", "dana", "staff", "d3.0"))
        .await
        .unwrap();
    let staff = m.open_tasks(10).await.unwrap();
    assert_eq!(staff[1].owner.as_deref(), Some("hr-admins"));

    m.complete(&task_id(&op), Some("lee")).await.unwrap();
    assert!(matches!(
        m.apply(&op).await.unwrap(),
        Outcome::Applied { .. }
    ));
    // The twin's task never existed; the target now holds the grant.
    assert_eq!(
        m.apply(&twin).await.unwrap(),
        Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyGranted,
            native_id: None
        }
    );
    // Completing twice is fine; rejecting a completed task is a conflict.
    m.complete(&task_id(&op), Some("lee")).await.unwrap();
    let e = m.reject(&task_id(&op), "no", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
}

#[tokio::test]
async fn rejection_is_a_permanent_error_with_the_reason() {
    let (m, _) = adapter();
    let op = grant("hr-app", "eve", "payroll", "d9.0");
    m.apply(&op).await.unwrap();
    let t = m
        .reject(
            &task_id(&op),
            "not in the payroll team",
            Some("payroll-lead"),
        )
        .await
        .unwrap();
    assert!(matches!(t.state, TaskState::Rejected { .. }));
    let e = m.apply(&op).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("not in the payroll team"), "{e}");
}

#[tokio::test]
async fn unknown_entitlements_and_tasks_are_clear_errors() {
    let (m, store) = adapter();
    let e = m
        .apply(&grant("hr-app", "dana", "nope", "d4.0"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("group:nope"), "{e}");
    assert!(store.is_empty());
    let e = m.complete("mt-missing", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn fallback_turns_permanent_failures_into_tasks_and_passes_temporary_ones() {
    let target = MemoryAdapter::new("crm");
    target.seed_entitlement(&EntitlementRef::group("sales"));
    let store = Arc::new(MemoryTaskStore::new());
    let manual = ManualAdapter::new(ManualConfig::new("crm", Some("crm-admins")), store.clone());
    let fb = FallbackToManual::new(Arc::new(target.clone()), manual.clone());
    let who = Identity::person("ana");
    let create =
        Operation::new("acme", "crm", OperationKind::CreateAccount, who.clone()).with_id("c1.0");
    assert!(fb.apply(&create).await.unwrap().changed());
    // The connector does not know the group: permanent NotFound -> a task.
    let op = grant("crm", "ana", "partners", "g1.0");
    let out = fb.apply(&op).await.unwrap();
    assert_eq!(
        out,
        Outcome::Pending {
            external_ref: task_id(&op)
        }
    );
    let task = store_task(&manual, &op).await;
    assert!(task.summary.contains("fallback"), "{}", task.summary);
    manual.complete(&task.id, Some("crm-admin")).await.unwrap();
    assert!(matches!(
        fb.apply(&op).await.unwrap(),
        Outcome::Applied { .. }
    ));
    // Temporary failures are not taken over.
    target.inject(Fault::Unavailable);
    let e = fb
        .apply(&grant("crm", "ana", "sales", "g2.0"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(store.len(), 1);
    let results = fb
        .apply_batch(&[grant("crm", "ana", "sales", "g3.0"), op.clone()])
        .await;
    assert!(results[0].as_ref().unwrap().changed());
    assert!(matches!(results[1], Ok(Outcome::Applied { .. })));
}

async fn store_task(m: &ManualAdapter, op: &Operation) -> iga_connector_manual::Task {
    m.store()
        .get(&task_id(op))
        .await
        .unwrap()
        .expect("task opened")
}
