//! Linked entitlements and multi-step sequences, end to end through the orchestrator.

use std::sync::Arc;
use std::time::Duration;

use iga_adapter::{MemoryAdapter, ProvisioningAdapter, ProvisioningAdapterExt};
use iga_connector_manual::{ManualAdapter, ManualConfig, MemoryTaskStore};
use iga_connector_methods::{LinkedAdapter, MultiStepAdapter};
use iga_directive::{
    AccessDirective, Action, ApprovalRef, EntitlementRef, GrantSource, Identity, JobState,
    ManualClock,
};
use iga_ledger::SqliteStore;
use iga_orchestrator::Orchestrator;
use iga_receipt::{Algorithm, ReceiptSigner, SigningKey};

async fn orch(
    system: &str,
    a: Arc<dyn ProvisioningAdapter>,
    clock: &ManualClock,
) -> (Orchestrator, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("iga.db")).await.unwrap();
    let o = Orchestrator::builder()
        .store(Arc::new(store))
        .signer(ReceiptSigner::new(SigningKey::generate(Algorithm::EdDSA).unwrap()).unwrap())
        .clock(clock.shared())
        .system(system, a)
        .build()
        .await
        .unwrap();
    (o, dir)
}

fn grant(system: &str, who: &Identity, e: EntitlementRef, ticket: &str) -> AccessDirective {
    AccessDirective::builder("acme", system, who.clone(), Action::Grant)
        .entitlement(e)
        .source(GrantSource::request("servicenow", ticket))
        .approval(ApprovalRef::new("servicenow", ticket))
        .build()
        .unwrap()
}

#[tokio::test]
async fn linked_entitlement_grant_lands_as_idp_group_membership() {
    let idp = MemoryAdapter::new("entra");
    idp.seed_entitlement(&EntitlementRef::group("sg-tableau-creators"));
    let dana = Identity::person("dana");
    idp.create_user(&dana, Default::default()).await.unwrap();
    let linked = LinkedAdapter::new("tableau")
        .link(
            EntitlementRef::role("creator"),
            Arc::new(idp.clone()),
            EntitlementRef::group("sg-tableau-creators"),
        )
        .unwrap();
    // One IdP group controls one app entitlement only.
    assert!(
        linked
            .clone()
            .link(
                EntitlementRef::role("viewer"),
                Arc::new(idp.clone()),
                EntitlementRef::group("sg-tableau-creators"),
            )
            .is_err()
    );
    let clock = ManualClock::at_epoch();
    let (o, _dir) = orch("tableau", Arc::new(linked.clone()), &clock).await;
    let d = grant("tableau", &dana, EntitlementRef::role("creator"), "RITM1");
    o.submit(vec![d.clone()]).await.unwrap();
    o.run_until_idle().await.unwrap();
    assert_eq!(
        o.job(d.id.as_str()).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
    assert_eq!(
        idp.members(&EntitlementRef::group("sg-tableau-creators")),
        vec!["dana".to_string()]
    );
    // Read/list reflect the mapping.
    let held = linked.get_user_groups(&dana).await;
    let holders = linked
        .list_all_assignments(&iga_adapter::AssignmentScope::Entitlement(
            EntitlementRef::role("creator"),
        ))
        .await
        .unwrap();
    assert_eq!(holders.len(), 1, "{held:?}");
    assert_eq!(holders[0].entitlement, EntitlementRef::role("creator"));
    // An unmapped app entitlement is a permanent NotFound.
    let e = linked
        .grant(&dana, &EntitlementRef::role("admin"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), iga_adapter::ErrorKind::NotFound);
}

#[tokio::test]
async fn multi_step_waits_for_the_manual_step_and_records_each_step() {
    let app = MemoryAdapter::new("erp");
    app.seed_entitlement(&EntitlementRef::group("ap-clerks"));
    let dana = Identity::person("dana");
    app.create_user(&dana, Default::default()).await.unwrap();
    let clock = ManualClock::at_epoch();
    let manual = ManualAdapter::new(
        ManualConfig::new("erp-verify", Some("finance-controller")),
        Arc::new(MemoryTaskStore::new()),
    )
    .with_clock(clock.shared());
    let multi = Arc::new(
        MultiStepAdapter::new("erp")
            .step("provision", Arc::new(app.clone()))
            .unwrap()
            .step("verify", Arc::new(manual.clone()))
            .unwrap(),
    );
    let (o, _dir) = orch("erp", multi.clone(), &clock).await;
    let d = grant("erp", &dana, EntitlementRef::group("ap-clerks"), "RITM2");
    o.submit(vec![d.clone()]).await.unwrap();
    o.run_until_idle().await.unwrap();
    let job = o.job(d.id.as_str()).await.unwrap().unwrap();
    assert!(
        matches!(&job.state, JobState::AwaitingExternal { external_ref } if external_ref.starts_with("verify:mt-")),
        "{:?}",
        job.state
    );
    assert_eq!(
        app.members(&EntitlementRef::group("ap-clerks")),
        vec!["dana".to_string()]
    );
    let op_id = d.operations(Default::default())[0].id.clone();
    let steps = multi.steps(&op_id);
    assert_eq!(
        steps
            .iter()
            .map(|s| (s.name.as_str(), s.status.as_str()))
            .collect::<Vec<_>>(),
        vec![("provision", "applied"), ("verify", "pending")]
    );
    let task = manual.open_tasks(10).await.unwrap().remove(0);
    manual.complete(&task.id, Some("controller")).await.unwrap();
    clock.advance(Duration::from_secs(60));
    o.run_until_idle().await.unwrap();
    assert_eq!(
        o.job(d.id.as_str()).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
    let steps = multi.steps(&op_id);
    assert_eq!(
        steps
            .iter()
            .map(|s| (s.name.as_str(), s.status.as_str()))
            .collect::<Vec<_>>(),
        vec![("provision", "already_in_state"), ("verify", "applied")]
    );
    // One receipt for the operation (the sequence), chained and verifiable.
    let chains = o.verify_receipts().await.unwrap();
    assert_eq!(chains.iter().map(|(_, r)| r.records).sum::<usize>(), 1);
    assert!(app.duplicate_effects().is_empty());
}
