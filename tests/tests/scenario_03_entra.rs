//! Scenario 3 — quarterly review on the Entra connector: 700 membership revocations
//! across three Entra tenants (three Graph mocks), 500 of them in `contoso`. The batch
//! engine groups by tenant; contoso's 500 go out as 25 `$batch` calls of 20; three
//! inner responses come back 429 with a Retry-After and are sent again alone (one more
//! `$batch` of exactly those 3); all 700 are confirmed, each with a signed, chained
//! receipt, and no membership changed twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iga_adapter::Outcome;
use iga_batch::{BatchConfig, BatchEngine, ItemResult, Targets};
use iga_connector_entra::mock::{CLIENT_ID, DOMAIN, GraphMock, TENANT};
use iga_connector_entra::{EntraAdapter, EntraConfig};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};
use iga_receipt::{
    Algorithm, ChainId, ChainState, KeyRing, ReceiptDraft, ReceiptSigner, SigningKey, verify_chain,
};

const TENANTS: [(&str, usize); 3] = [("contoso", 500), ("fabrikam", 120), ("northwind", 80)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarterly_review_500_entra_revocations_across_three_tenants() {
    let mut targets = Targets::new();
    let mut tenants = Vec::new();
    let mut ops = Vec::new();
    for (tenant, n) in TENANTS {
        let graph = GraphMock::start().await;
        graph.set_client_secret("review-secret");
        let groups: Vec<String> = (0..5)
            .map(|i| graph.seed_group(&format!("Finance-{i}")))
            .collect();
        for i in 0..n {
            let login = format!("{tenant}-user{i:03}");
            let uid = graph.seed_user(&login, &login);
            let g = &groups[i % 5];
            graph.seed_member(g, &uid);
            ops.push(
                Operation::new(
                    tenant,
                    "entra",
                    OperationKind::Revoke,
                    Identity::person(&login),
                )
                .with_native_id(&uid)
                .with_entitlement(EntitlementRef::group(g))
                .with_id(format!("review-2026q1.{tenant}.{i}")),
            );
        }
        let adapter = EntraAdapter::new(
            EntraConfig::with_client_secret(TENANT, CLIENT_ID, "review-secret")
                .endpoints(graph.graph_base(), graph.authority())
                .upn_domain(DOMAIN)
                .instance(format!("entra-{tenant}")),
        )
        .unwrap();
        targets.insert(tenant, "entra", Arc::new(adapter.clone()));
        tenants.push((tenant, n, graph, adapter, groups));
    }
    // The throttled tenant: three inner responses come back 429, Retry-After: 1.
    tenants[0].2.throttle_next_inner(3, 1);

    let engine = BatchEngine::new(BatchConfig::default().seed(2026));
    let t0 = Instant::now();
    let report = engine.run(&targets, ops.clone()).await;
    let elapsed = t0.elapsed();

    assert_eq!(report.items.len(), 700);
    assert!(report.all_succeeded(), "{:?}", report.counts());
    assert!(
        report
            .items
            .iter()
            .enumerate()
            .all(|(i, r)| r.index == i && r.op_id == ops[i].id)
    );
    let (_, _, contoso, contoso_adapter, _) = &tenants[0];
    assert_eq!(contoso.inner_throttled(), 3);
    assert_eq!(
        contoso.calls("/v1.0/$batch"),
        26,
        "25 batches of 20 plus one of the 3 throttled: {:?}",
        contoso.calls_by_path()
    );
    assert_eq!(contoso.graph_calls(), 26, "nothing but $batch");
    let inner = contoso
        .requests()
        .into_iter()
        .filter(|r| r.in_batch)
        .count();
    assert_eq!(inner, 503, "only the throttled items were sent again");
    let batches: Vec<usize> = contoso
        .requests()
        .into_iter()
        .filter(|r| r.path == "/$batch")
        .map(|r| r.body.unwrap()["requests"].as_array().unwrap().len())
        .collect();
    assert_eq!(batches.iter().filter(|n| **n == 20).count(), 25);
    assert_eq!(batches.iter().filter(|n| **n == 3).count(), 1);
    assert!(
        elapsed >= Duration::from_secs(1),
        "the Retry-After was honoured"
    );
    assert_eq!(contoso_adapter.stats().throttle.throttled, 3);
    for (tenant, n, graph, _, groups) in &tenants {
        if *tenant != "contoso" {
            assert_eq!(
                graph.calls("/v1.0/$batch") as usize,
                n.div_ceil(20),
                "{tenant}"
            );
            assert_eq!(graph.inner_throttled(), 0);
        }
        for g in groups {
            assert!(graph.members(g).is_empty(), "{tenant}");
        }
        let changes = graph.membership_changes();
        assert_eq!(changes.len(), *n, "{tenant}");
        assert!(
            changes.values().all(|c| *c == 1),
            "{tenant}: a change took effect twice"
        );
    }

    // One receipt per confirmed revocation, in a verifiable hash chain.
    let signer = ReceiptSigner::new(SigningKey::generate(Algorithm::EdDSA).unwrap()).unwrap();
    let keys = KeyRing::new().with(signer.key().verifying_key().clone());
    let mut chain = ChainState::genesis(ChainId::new("node-1", "entra").unwrap());
    let now = chrono::Utc::now();
    let mut records = Vec::new();
    for (item, op) in report.items.iter().zip(&ops) {
        let outcome = match &item.result {
            ItemResult::Succeeded(Outcome::Applied { .. }) => iga_receipt::Outcome::Applied,
            other => panic!("{}: {other:?}", item.op_id),
        };
        let draft = ReceiptDraft::for_operation(op, outcome, now).unwrap();
        records.push(chain.append(&signer, draft, now).unwrap().to_record());
    }
    assert_eq!(records.len(), 700);
    let head = chain.head(&signer, now).unwrap();
    assert!(verify_chain(&records, Some(&head), &keys).is_ok());
}
