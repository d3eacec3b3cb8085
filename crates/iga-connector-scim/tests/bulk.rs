//! `apply_batch` through `/Bulk` against a real `scim2-server`: request packing,
//! bulkId cross-references, per-item results in input order, a failing item alone.

mod support;

use iga_adapter::{
    AccountRef, AssignmentScope, ErrorKind, NoOpReason, ObjectRef, Observed, Outcome,
    ProvisioningAdapter, ProvisioningAdapterExt,
};
use iga_connector_scim::{ScimAdapter, ScimConfig};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};
use support::Scim2Server;

fn who(n: &str) -> Identity {
    Identity::person(format!("id-{n}"))
        .with_user_name(format!("user-{n}"))
        .with_name("Bulk", n.to_string())
        .with_email(format!("{n}@bulk.example.com"))
}

fn op(kind: OperationKind, w: &Identity) -> Operation {
    Operation::new("default", "scim2-server", kind, w.clone())
}

async fn adapter(server: &Scim2Server, bulk_max: usize) -> ScimAdapter {
    let config = ScimConfig::new(&server.base_url())
        .unwrap()
        .with_bulk_max(bulk_max);
    ScimAdapter::connect(config).await.expect("discovery")
}

#[tokio::test]
async fn fifty_operations_pack_into_ceil_n_over_max_requests_with_bulk_id_references() {
    let server = Scim2Server::start(None);
    let a = adapter(&server, 10).await;
    assert_eq!(a.capabilities().batch_max, 10);
    a.create_group("bulk-g").await.unwrap();
    let g = EntitlementRef::group("bulk-g");
    // 25 × (create, grant to bulk-g): each grant references its create by bulkId.
    let people: Vec<Identity> = (0..25).map(|i| who(&format!("p{i}"))).collect();
    let ops: Vec<Operation> = people
        .iter()
        .flat_map(|w| {
            [
                op(OperationKind::CreateAccount, w),
                op(OperationKind::Grant, w).with_entitlement(g.clone()),
            ]
        })
        .collect();
    let before = a.stats().bulk_requests;
    let results = a.apply_batch(&ops).await;
    assert_eq!(
        a.stats().bulk_requests - before,
        5,
        "ceil(50 / 10) requests"
    );
    assert_eq!(results.len(), 50);
    for (i, r) in results.iter().enumerate() {
        assert!(
            matches!(r, Ok(Outcome::Applied { native_id: Some(_) })),
            "item {i}: {r:?}"
        );
    }
    // Created ids line up with reads; grants are observed on the group.
    let holders = a
        .list_all_assignments(&AssignmentScope::Entitlement(g.clone()))
        .await
        .unwrap();
    assert_eq!(holders.len(), 25);
    for (i, w) in people.iter().enumerate() {
        let Some(Observed::Account(acc)) = a
            .read(&ObjectRef::Account(AccountRef::of(w)))
            .await
            .unwrap()
        else {
            panic!("{} not readable", w.id)
        };
        assert_eq!(
            Some(acc.native_id.as_str()),
            results[2 * i].as_ref().unwrap().native_id()
        );
        assert!(
            holders
                .iter()
                .any(|h| h.identity_id.as_deref() == Some(w.id.as_str()))
        );
    }
    // Re-applying the same batch: every item is already in state, nothing is sent
    // for the grants, and creates link to the existing users.
    let again = a.apply_batch(&ops).await;
    for (i, r) in again.iter().enumerate() {
        let want = if i % 2 == 0 {
            NoOpReason::LinkedExisting
        } else {
            NoOpReason::AlreadyGranted
        };
        assert!(
            matches!(r, Ok(Outcome::AlreadyInState { reason, .. }) if *reason == want),
            "item {i}: {r:?}"
        );
    }
}

#[tokio::test]
async fn a_failing_item_fails_alone_and_results_keep_input_order() {
    let server = Scim2Server::start(None);
    let a = adapter(&server, 1000).await;
    a.create_group("bulk-h").await.unwrap();
    let existing = who("taken");
    a.apply(&op(OperationKind::CreateAccount, &existing))
        .await
        .unwrap();
    // Same userName under another identity id: the server answers 409 uniqueness for
    // that item only; match-then-link links it by userName.
    let dup = Identity::person("id-other")
        .with_user_name("user-taken")
        .with_email("other@bulk.example.com");
    let ok1 = who("ok1");
    let ok2 = who("ok2");
    let ops = vec![
        op(OperationKind::CreateAccount, &ok1),
        op(OperationKind::CreateAccount, &dup),
        op(OperationKind::Grant, &ok1).with_entitlement(EntitlementRef::group("bulk-missing")),
        op(OperationKind::CreateAccount, &ok2),
        op(OperationKind::Grant, &ok2).with_entitlement(EntitlementRef::group("bulk-h")),
        op(OperationKind::DeleteAccount, &who("never-existed")),
    ];
    let before = a.stats().bulk_requests;
    let r = a.apply_batch(&ops).await;
    assert_eq!(a.stats().bulk_requests - before, 1);
    assert_eq!(r.len(), 6);
    assert!(matches!(&r[0], Ok(Outcome::Applied { .. })), "{:?}", r[0]);
    assert!(
        matches!(
            &r[1],
            Ok(Outcome::AlreadyInState {
                reason: NoOpReason::LinkedExisting,
                ..
            })
        ),
        "{:?}",
        r[1]
    );
    assert!(
        matches!(&r[2], Err(e) if e.kind() == ErrorKind::NotFound),
        "{:?}",
        r[2]
    );
    assert!(matches!(&r[3], Ok(Outcome::Applied { .. })), "{:?}", r[3]);
    assert!(matches!(&r[4], Ok(Outcome::Applied { .. })), "{:?}", r[4]);
    assert!(
        matches!(
            &r[5],
            Ok(Outcome::AlreadyInState {
                reason: NoOpReason::AccountAbsent,
                ..
            })
        ),
        "{:?}",
        r[5]
    );
    assert!(
        a.get_user_groups(&ok2)
            .await
            .unwrap()
            .iter()
            .any(|e| e.id == "bulk-h")
    );
}

#[tokio::test]
async fn bulk_disabled_by_config_falls_back_to_sequential() {
    let server = Scim2Server::start(None);
    let a = adapter(&server, 1).await;
    assert_eq!(a.capabilities().batch_max, 1);
    let ops: Vec<Operation> = (0..3)
        .map(|i| op(OperationKind::CreateAccount, &who(&format!("s{i}"))))
        .collect();
    let r = a.apply_batch(&ops).await;
    assert!(r.iter().all(|r| matches!(r, Ok(Outcome::Applied { .. }))));
    assert_eq!(a.stats().bulk_requests, 0);
}
