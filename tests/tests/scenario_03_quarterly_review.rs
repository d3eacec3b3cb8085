//! Scenario 3 — quarterly review: revocations across three Entra-like tenants at once.
//!
//! Tenant `contoso` holds 500 of the memberships and is throttled: three inner
//! responses of its `$batch` calls come back 429 with a Retry-After. The engine groups
//! by tenant, sends contoso's 500 in 25 batch calls of 20, retries the three throttled
//! items alone (one more call of 3, after the Retry-After), and confirms everything.
//! Every confirmed revocation gets a signed, hash-chained receipt; the targets'
//! mutation logs show no operation taking effect twice. (The other two tenants carry
//! 120 and 80 memberships.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use iga_adapter::{ErrorKind, Fault, MemoryAdapter, Outcome};
use iga_batch::{BatchConfig, BatchEngine, ItemResult, Targets};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};
use iga_receipt::{
    Algorithm, ChainId, ChainState, KeyRing, ReceiptDraft, ReceiptSigner, SigningKey, verify_chain,
};

const TENANTS: [(&str, usize); 3] = [("contoso", 500), ("fabrikam", 120), ("northwind", 80)];
const RETRY_AFTER: Duration = Duration::from_millis(300);

fn graph_like(tenant: &str) -> MemoryAdapter {
    MemoryAdapter::config(format!("entra-{tenant}"))
        .batch_max(20)
        .latency(Duration::from_millis(50))
        .max_concurrent(4)
        .build()
}

fn review_group(i: usize) -> EntitlementRef {
    EntitlementRef::group(format!("Finance-{}", i % 5))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarterly_review_500_revocations_across_three_tenants() {
    let mut targets = Targets::new();
    let mut adapters = Vec::new();
    let mut ops = Vec::new();
    for (tenant, n) in TENANTS {
        let a = graph_like(tenant);
        for i in 0..n {
            let who = Identity::person(format!("{tenant}-user{i:03}"));
            a.seed_membership(&who, &review_group(i));
            ops.push(
                Operation::new(tenant, "entra", OperationKind::Revoke, who)
                    .with_entitlement(review_group(i))
                    .with_id(format!("review-2026q1.{tenant}.{i}")),
            );
        }
        targets.insert(tenant, "entra", Arc::new(a.clone()));
        adapters.push((tenant, n, a));
    }
    // The throttled tenant: three inner responses come back 429 with Retry-After.
    let contoso = &adapters[0].2;
    for _ in 0..3 {
        contoso.inject(Fault::RateLimited(Some(RETRY_AFTER)));
    }

    let engine = BatchEngine::new(BatchConfig::default().seed(2026));
    let t0 = Instant::now();
    let report = engine.run(&targets, ops.clone()).await;
    let elapsed = t0.elapsed();

    // All confirmed, one final outcome per operation, in input order.
    assert_eq!(report.items.len(), 700);
    assert!(report.all_succeeded(), "{:?}", report.counts());
    assert!(
        report
            .items
            .iter()
            .enumerate()
            .all(|(i, r)| r.index == i && r.op_id == ops[i].id)
    );

    // Grouped by tenant: contoso's 500 in 25 calls of 20, plus one re-batch of exactly
    // the 3 throttled items; the other tenants were neither throttled nor slowed.
    let s = contoso.stats();
    assert_eq!(s.batch_calls, 26, "{s:?}");
    assert_eq!(
        s.batch_items, 503,
        "only the throttled items were sent again"
    );
    assert!(s.peak_concurrency <= 4);
    assert_eq!(report.retries, 3);
    assert_eq!(report.throttled, 3);
    let retried: Vec<_> = report.items.iter().filter(|i| i.attempts == 2).collect();
    assert_eq!(retried.len(), 3);
    for item in &retried {
        assert_eq!(item.errors.len(), 1);
        assert_eq!(item.errors[0].kind(), ErrorKind::RateLimited);
        assert_eq!(item.errors[0].retry_after(), Some(RETRY_AFTER));
        assert!(item.op_id.0.starts_with("review-2026q1.contoso."));
    }
    assert!(elapsed >= RETRY_AFTER, "the Retry-After was honoured");
    assert_eq!(engine.limiter("contoso", "entra").throttled(), 1);
    for (tenant, n, a) in &adapters[1..] {
        let s = a.stats();
        assert_eq!(s.batch_calls as usize, n.div_ceil(20), "{tenant}");
        assert_eq!(s.batch_items as usize, *n, "{tenant}");
        assert_eq!(engine.limiter(tenant, "entra").throttled(), 0, "{tenant}");
    }

    // Targets: nothing left, each membership changed exactly once.
    for (tenant, n, a) in &adapters {
        assert!(a.assignments().is_empty(), "{tenant}");
        assert_eq!(a.effective_mutations(), *n, "{tenant}");
        assert!(a.duplicate_effects().is_empty(), "{tenant}");
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
            ItemResult::Succeeded(Outcome::AlreadyInState { .. }) => {
                iga_receipt::Outcome::AlreadyInState
            }
            other => panic!("{}: {other:?}", item.op_id),
        };
        let draft = ReceiptDraft::for_operation(op, outcome, now).unwrap();
        records.push(chain.append(&signer, draft, now).unwrap().to_record());
    }
    assert_eq!(records.len(), 700);
    let head = chain.head(&signer, now).unwrap();
    assert!(verify_chain(&records, Some(&head), &keys).is_ok());
}
