//! `apply_batch` through the full batch path (`iga_batch::BatchEngine`) against the
//! Graph mock: 500 group-membership revocations are exactly 25 `$batch` calls; with
//! 20% of inner responses throttled all 500 still complete, each exactly once.

use std::sync::Arc;

use iga_adapter::{NoOpReason, Outcome, ProvisioningAdapter};
use iga_batch::{BatchConfig, BatchEngine, ItemResult, Targets};
use iga_connector_entra::mock::{CLIENT_ID, DOMAIN, GraphMock, TENANT};
use iga_connector_entra::{EntraAdapter, EntraConfig};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};

const SECRET: &str = "batch-secret";

async fn setup(
    users: usize,
    groups: usize,
) -> (GraphMock, EntraAdapter, Vec<String>, Vec<(String, String)>) {
    let mock = GraphMock::start().await;
    mock.set_client_secret(SECRET);
    let gids: Vec<String> = (0..groups)
        .map(|i| mock.seed_group(&format!("Review-{i}")))
        .collect();
    let mut members = Vec::new();
    for i in 0..users {
        let uid = mock.seed_user(&format!("user{i:03}"), &format!("user{i:03}"));
        let g = &gids[i % groups];
        mock.seed_member(g, &uid);
        members.push((uid, g.clone()));
    }
    let config = EntraConfig::with_client_secret(TENANT, CLIENT_ID, SECRET)
        .endpoints(mock.graph_base(), mock.authority())
        .upn_domain(DOMAIN)
        .inner_throttle_retries(8);
    let adapter = EntraAdapter::new(config).unwrap();
    (mock, adapter, gids, members)
}

fn revocations(members: &[(String, String)]) -> Vec<Operation> {
    members
        .iter()
        .enumerate()
        .map(|(i, (uid, g))| {
            Operation::new(
                "contoso",
                "entra",
                OperationKind::Revoke,
                Identity::person(format!("user{i:03}")),
            )
            .with_native_id(uid)
            .with_entitlement(EntitlementRef::group(g))
            .with_id(format!("review.{i}"))
        })
        .collect()
}

fn engine_targets(a: &EntraAdapter) -> Targets {
    let mut t = Targets::new();
    t.insert("contoso", "entra", Arc::new(a.clone()));
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_revocations_are_exactly_25_batch_calls() {
    let (mock, adapter, gids, members) = setup(500, 5).await;
    let ops = revocations(&members);
    let engine = BatchEngine::new(BatchConfig::default().seed(7));
    let report = engine.run(&engine_targets(&adapter), ops.clone()).await;
    assert_eq!(report.items.len(), 500);
    assert!(report.all_succeeded(), "{:?}", report.counts());
    for (i, item) in report.items.iter().enumerate() {
        assert_eq!(item.op_id, ops[i].id);
        assert!(
            matches!(item.result, ItemResult::Succeeded(Outcome::Applied { .. })),
            "{item:?}"
        );
    }
    assert_eq!(mock.calls("/v1.0/$batch"), 25, "{:?}", mock.calls_by_path());
    assert_eq!(
        mock.graph_calls(),
        25,
        "nothing but $batch: {:?}",
        mock.calls_by_path()
    );
    assert_eq!(adapter.stats().batch_requests, 25);
    let inner = mock.requests().iter().filter(|r| r.in_batch).count();
    assert_eq!(inner, 500);
    for g in &gids {
        assert!(mock.members(g).is_empty());
    }
    let changes = mock.membership_changes();
    assert_eq!(changes.len(), 500);
    assert!(changes.values().all(|n| *n == 1));

    // Re-running the same revocations: every one is "already absent", still batched.
    let again = engine.run(&engine_targets(&adapter), ops).await;
    assert!(again.items.iter().all(|i| matches!(
        i.result,
        ItemResult::Succeeded(Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyAbsent,
            ..
        })
    )));
    assert!(
        mock.membership_changes().values().all(|n| *n == 1),
        "no second effect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_percent_throttled_inner_responses_still_complete_each_once() {
    let (mock, adapter, gids, members) = setup(500, 5).await;
    mock.seed(2026);
    mock.throttle_inner_fraction(0.2, 1);
    let ops = revocations(&members);
    let engine = BatchEngine::new(BatchConfig::default().seed(7));
    let report = engine.run(&engine_targets(&adapter), ops).await;
    assert!(report.all_succeeded(), "{:?}", report.counts());
    assert!(
        report
            .items
            .iter()
            .all(|i| matches!(i.result, ItemResult::Succeeded(Outcome::Applied { .. })))
    );
    let throttled = mock.inner_throttled();
    assert!(
        throttled >= 60,
        "about 20% of 500+ inner requests throttled, got {throttled}"
    );
    // Throttled items were re-sent alone: one inner request per throttle beyond the 500.
    let inner = mock.requests().iter().filter(|r| r.in_batch).count() as u64;
    assert_eq!(inner, 500 + throttled);
    assert!(mock.calls("/v1.0/$batch") > 25);
    assert!(adapter.stats().throttle.throttled >= throttled);
    for g in &gids {
        assert!(mock.members(g).is_empty());
    }
    let changes = mock.membership_changes();
    assert_eq!(changes.len(), 500);
    assert!(
        changes.values().all(|n| *n == 1),
        "an item took effect twice"
    );
}

#[tokio::test]
async fn same_member_twice_in_one_batch_is_chained_with_depends_on() {
    let (mock, adapter, gids, members) = setup(2, 1).await;
    let (uid, g) = members[0].clone();
    let who = Identity::person("user000");
    let revoke = Operation::new("c", "entra", OperationKind::Revoke, who.clone())
        .with_native_id(&uid)
        .with_entitlement(EntitlementRef::group(&g));
    let grant = Operation::new("c", "entra", OperationKind::Grant, who)
        .with_native_id(&uid)
        .with_entitlement(EntitlementRef::group(&g));
    let other = Operation::new(
        "c",
        "entra",
        OperationKind::Revoke,
        Identity::person("user001"),
    )
    .with_native_id(&members[1].0)
    .with_entitlement(EntitlementRef::group(&g));
    // Revoke then grant of the same membership: order matters.
    let res = adapter.apply_batch(&[revoke, grant, other]).await;
    assert!(
        res.iter().all(|r| matches!(r, Ok(Outcome::Applied { .. }))),
        "{res:?}"
    );
    assert_eq!(mock.members(&gids[0]), vec![uid.clone()]);
    let reqs = mock.requests();
    let batch = reqs.iter().find(|r| r.path == "/$batch").unwrap();
    let items = batch.body.as_ref().unwrap()["requests"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(items[0].get("dependsOn"), None);
    assert_eq!(items[1]["dependsOn"], serde_json::json!([items[0]["id"]]));
    assert_eq!(items[2]["dependsOn"], serde_json::json!([items[1]["id"]]));

    // A failed head makes Graph answer 424 for the chain; those are re-sent and the
    // no-op head is still success.
    mock.clear_log();
    let who = Identity::person("user000");
    let grant_again = Operation::new("c", "entra", OperationKind::Grant, who.clone())
        .with_native_id(&uid)
        .with_entitlement(EntitlementRef::group(&g));
    let revoke_after = Operation::new("c", "entra", OperationKind::Revoke, who)
        .with_native_id(&uid)
        .with_entitlement(EntitlementRef::group(&g));
    let res = adapter.apply_batch(&[grant_again, revoke_after]).await;
    assert!(
        matches!(
            res[0],
            Ok(Outcome::AlreadyInState {
                reason: NoOpReason::AlreadyGranted,
                ..
            })
        ),
        "{res:?}"
    );
    assert!(matches!(res[1], Ok(Outcome::Applied { .. })), "{res:?}");
    let statuses: Vec<u16> = mock
        .requests()
        .iter()
        .filter(|r| r.in_batch)
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses,
        vec![400, 204],
        "the dependent was not executed in round one"
    );
    assert_eq!(mock.calls("/v1.0/$batch"), 2);
    assert!(mock.members(&gids[0]).is_empty());
}

#[tokio::test]
async fn users_without_native_ids_are_resolved_by_batch_and_missing_ones_are_absent() {
    let (mock, adapter, _gids, members) = setup(3, 1).await;
    let g = members[0].1.clone();
    let mut ops: Vec<Operation> = (0..3)
        .map(|i| {
            Operation::new(
                "c",
                "entra",
                OperationKind::Revoke,
                Identity::person(format!("user{i:03}")).with_user_name(format!("user{i:03}")),
            )
            .with_entitlement(EntitlementRef::group(&g))
        })
        .collect();
    ops.push(
        Operation::new(
            "c",
            "entra",
            OperationKind::Revoke,
            Identity::person("ghost").with_user_name("ghost"),
        )
        .with_entitlement(EntitlementRef::group(&g)),
    );
    ops.push(
        Operation::new(
            "c",
            "entra",
            OperationKind::Grant,
            Identity::person("ghost").with_user_name("ghost"),
        )
        .with_entitlement(EntitlementRef::group(&g)),
    );
    let res = adapter.apply_batch(&ops).await;
    assert!(
        res[..3]
            .iter()
            .all(|r| matches!(r, Ok(Outcome::Applied { .. }))),
        "{res:?}"
    );
    assert!(matches!(
        res[3],
        Ok(Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyAbsent,
            ..
        })
    ));
    assert_eq!(
        res[4].as_ref().unwrap_err().kind(),
        iga_adapter::ErrorKind::NotFound
    );
    // One $batch resolving the 4 distinct UPNs, one carrying the 3 removals.
    assert_eq!(mock.calls("/v1.0/$batch"), 2, "{:?}", mock.calls_by_path());
    assert_eq!(mock.graph_calls(), 2);
}

#[tokio::test]
async fn outer_throttling_fails_every_item_with_the_wait_and_loses_none() {
    let (mock, adapter, _gids, members) = setup(3, 1).await;
    let config = EntraConfig::with_client_secret(TENANT, CLIENT_ID, SECRET)
        .endpoints(mock.graph_base(), mock.authority())
        .inner_throttle_retries(0);
    let strict = EntraAdapter::new(config).unwrap();
    drop(adapter);
    mock.fail_next(429, Some(std::time::Duration::from_secs(9)));
    let ops = revocations(&members);
    let res = strict.apply_batch(&ops).await;
    assert_eq!(res.len(), 3);
    for r in &res {
        let e = r.as_ref().unwrap_err();
        assert_eq!(e.kind(), iga_adapter::ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(9)));
    }
    // Inner throttling with no inline retries is handed to the caller per item.
    mock.throttle_next_inner(1, 4);
    let res = strict.apply_batch(&ops).await;
    let limited: Vec<_> = res.iter().filter(|r| r.is_err()).collect();
    assert_eq!(limited.len(), 1, "{res:?}");
    let e = limited[0].as_ref().unwrap_err();
    assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(4)));
    assert!(
        e.context()
            .iter()
            .any(|(k, v)| k == "throttle_information" && v == "WriteLimitExceeded")
    );
    assert_eq!(
        res.iter()
            .filter(|r| matches!(r, Ok(Outcome::Applied { .. })))
            .count(),
        2
    );
}

#[tokio::test]
async fn the_tenant_rate_layer_paces_requests() {
    let mock = GraphMock::start().await;
    mock.set_client_secret(SECRET);
    let paced = EntraAdapter::new(
        EntraConfig::with_client_secret(TENANT, CLIENT_ID, SECRET)
            .endpoints(mock.graph_base(), mock.authority())
            .requests_per_second(20),
    )
    .unwrap();
    // Burst of 20 allowed, then 20 per second: 40 calls take at least ~1 s.
    let t0 = std::time::Instant::now();
    for _ in 0..40 {
        paced.check().await.unwrap();
    }
    let took = t0.elapsed();
    assert!(took >= std::time::Duration::from_millis(900), "{took:?}");
    // Another adapter of the same tenant shares the budget.
    let second = EntraAdapter::new(
        EntraConfig::with_client_secret(TENANT, CLIENT_ID, SECRET)
            .endpoints(mock.graph_base(), mock.authority())
            .requests_per_second(20),
    )
    .unwrap();
    let t0 = std::time::Instant::now();
    for _ in 0..10 {
        second.check().await.unwrap();
    }
    assert!(
        t0.elapsed() >= std::time::Duration::from_millis(400),
        "shared tenant budget"
    );
}
