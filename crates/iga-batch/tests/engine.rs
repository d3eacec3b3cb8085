//! Batch engine behaviour against MemoryAdapter (tokio time paused: backoff and
//! latency cost no real time).

use std::sync::Arc;
use std::time::Duration;

use iga_adapter::{ErrorKind, Fault, FaultConfig, MemoryAdapter, NoOpReason, Outcome, RetryStatus};
use iga_batch::*;
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};
use iga_resolver::{Dependency, Endpoint, Resolver, ResolverConfig};
use tokio::time::Instant;

fn group() -> EntitlementRef {
    EntitlementRef::group("G")
}

fn revocations(target: &MemoryAdapter, tenant: &str, n: usize) -> Vec<Operation> {
    (0..n)
        .map(|i| {
            let who = Identity::person(format!("{tenant}-u{i}"));
            target.seed_membership(&who, &group());
            Operation::new(tenant, "entra", OperationKind::Revoke, who)
                .with_entitlement(group())
                .with_id(format!("{tenant}.{i}"))
        })
        .collect()
}

fn graph_like(name: &str) -> MemoryAdapter {
    MemoryAdapter::config(name)
        .batch_max(20)
        .latency(Duration::from_millis(50))
        .max_concurrent(4)
        .build()
}

fn engine() -> BatchEngine {
    BatchEngine::new(BatchConfig::default().seed(11))
}

#[tokio::test(start_paused = true)]
async fn groups_chunk_to_batch_max_and_bound_concurrency() {
    let a = graph_like("entra");
    let ops = revocations(&a, "acme", 500);
    let targets = Targets::new().with("acme", "entra", Arc::new(a.clone()));
    let t0 = Instant::now();
    let report = engine().run(&targets, ops).await;
    assert!(report.all_succeeded());
    assert_eq!(report.calls, 25);
    assert_eq!(report.retries, 0);
    let s = a.stats();
    assert_eq!((s.batch_calls, s.batch_items, s.apply_calls), (25, 500, 0));
    assert_eq!(s.peak_concurrency, 4);
    // ceil(25 / 4) = 7 rounds of 50 ms.
    assert_eq!(t0.elapsed().as_millis() / 50, 7, "{:?}", t0.elapsed());
    assert!(report.items.iter().enumerate().all(|(i, r)| r.index == i));
    assert!(a.assignments().is_empty());
}

#[tokio::test(start_paused = true)]
async fn only_failures_are_retried_and_a_lost_response_is_not_applied_twice() {
    let a = graph_like("entra");
    let ops = revocations(&a, "acme", 40);
    // Items 0, 1, 2 of the first batch: 429 with Retry-After, 503, response lost.
    a.inject(Fault::RateLimited(Some(Duration::from_secs(2))));
    a.inject(Fault::Unavailable);
    a.inject(Fault::ResponseLost);
    let targets = Targets::new().with("acme", "entra", Arc::new(a.clone()));
    let t0 = Instant::now();
    let report = engine().run(&targets, ops).await;
    assert!(report.all_succeeded(), "{:?}", report.counts());
    assert_eq!(report.calls, 3, "2 batches + 1 re-batch of the 3 failures");
    assert_eq!(report.retries, 3);
    assert_eq!(report.throttled, 1);
    assert_eq!(a.stats().batch_items, 43);
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
        "Retry-After honoured"
    );
    for (i, kind) in [
        (0, ErrorKind::RateLimited),
        (1, ErrorKind::Unavailable),
        (2, ErrorKind::Timeout),
    ] {
        let item = &report.items[i];
        assert_eq!(item.attempts, 2);
        assert_eq!(item.errors.len(), 1);
        assert_eq!(item.errors[0].kind(), kind);
    }
    assert!(matches!(
        report.items[2].result,
        ItemResult::Succeeded(Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyAbsent,
            ..
        })
    ));
    assert_eq!(report.items[3].attempts, 1);
    assert!(a.duplicate_effects().is_empty());
    assert_eq!(a.effective_mutations(), 40);
}

#[tokio::test(start_paused = true)]
async fn persistent_failures_end_exhausted_with_every_error() {
    let a = graph_like("entra");
    let ops = revocations(&a, "acme", 1);
    for _ in 0..10 {
        a.inject(Fault::Unavailable);
    }
    let targets = Targets::new().with("acme", "entra", Arc::new(a.clone()));
    let engine = BatchEngine::new(
        BatchConfig::default()
            .seed(1)
            .retry(RetryPolicy::new(3, Duration::from_secs(60))),
    );
    let report = engine.run(&targets, ops).await;
    let item = &report.items[0];
    assert_eq!(item.status(), ItemStatus::TemporaryFailure);
    assert_eq!(item.attempts, 3);
    assert_eq!(item.errors.len(), 3);
    match &item.result {
        ItemResult::Failed(e) => {
            assert_eq!(e.kind(), ErrorKind::Unavailable);
            assert_eq!(e.retry(), RetryStatus::Exhausted { attempts: 3 });
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn elapsed_budget_bounds_the_pass() {
    let a = graph_like("entra");
    let ops = revocations(&a, "acme", 1);
    a.inject(Fault::RateLimited(Some(Duration::from_secs(120))));
    let targets = Targets::new().with("acme", "entra", Arc::new(a.clone()));
    let t0 = Instant::now();
    let report = engine().run(&targets, ops).await;
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(report.items[0].status(), ItemStatus::TemporaryFailure);
    assert_eq!(report.items[0].attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn permanent_failures_are_not_retried_and_missing_targets_are_named() {
    let a = graph_like("entra");
    let mut ops = revocations(&a, "acme", 2);
    ops.push(
        Operation::new(
            "acme",
            "entra",
            OperationKind::Grant,
            Identity::person("acme-u0"),
        )
        .with_entitlement(EntitlementRef::group("does-not-exist")),
    );
    ops.push(
        Operation::new(
            "other",
            "entra",
            OperationKind::Revoke,
            Identity::person("x"),
        )
        .with_entitlement(group()),
    );
    let targets = Targets::new().with("acme", "entra", Arc::new(a.clone()));
    let report = engine().run(&targets, ops).await;
    assert_eq!(report.succeeded(), 2);
    let nf = &report.items[2];
    assert_eq!(nf.status(), ItemStatus::PermanentFailure);
    assert_eq!(nf.attempts, 1);
    let missing = &report.items[3];
    assert_eq!(missing.attempts, 0);
    match &missing.result {
        ItemResult::Failed(e) => {
            assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
            assert!(
                e.to_string()
                    .contains("no adapter is registered for system `entra` in tenant `other`"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report.calls, 2, "one revoke batch, one grant batch");
}

#[tokio::test(start_paused = true)]
async fn random_faults_all_end_succeeded_without_duplicates() {
    let a = MemoryAdapter::config("entra")
        .batch_max(20)
        .latency(Duration::from_millis(50))
        .max_concurrent(4)
        .faults(FaultConfig::mixed(7, 0.3))
        .build();
    let ops = revocations(&a, "acme", 300);
    let targets = Targets::new().with("acme", "entra", Arc::new(a.clone()));
    let engine = BatchEngine::new(
        BatchConfig::default()
            .seed(3)
            .retry(RetryPolicy::new(12, Duration::from_secs(60))),
    );
    let report = engine.run(&targets, ops).await;
    assert!(report.all_succeeded(), "{:?}", report.counts());
    assert!(report.retries > 0);
    assert!(a.duplicate_effects().is_empty());
    assert_eq!(a.effective_mutations(), 300);
    assert!(a.assignments().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_configured_rate_limit_paces_the_target() {
    let a = MemoryAdapter::config("entra").batch_max(20).build();
    let ops = revocations(&a, "acme", 100);
    let targets = Targets::new().with("acme", "entra", Arc::new(a.clone()));
    let engine = BatchEngine::new(
        BatchConfig::default()
            .seed(1)
            .rate_limit("entra", iga_layers::RateLimitConfig::per_second(20.0, 20)),
    );
    let t0 = Instant::now();
    let report = engine.run(&targets, ops).await;
    assert!(report.all_succeeded());
    // 100 operations at 20/s with a burst of 20: about 4 s.
    let el = t0.elapsed();
    assert!(
        el >= Duration::from_millis(3900) && el < Duration::from_millis(4500),
        "{el:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn plans_run_wave_by_wave_with_strictness() {
    // The SCIM app cannot create accounts: its create fails permanently (capability),
    // so the strict grant after it fails without being sent; the relaxed rule
    // "scim-app before audit" skips the audit grant.
    let entra = MemoryAdapter::new("entra");
    let scim = MemoryAdapter::config("scim-app")
        .operations(&[OperationKind::Grant])
        .build();
    let audit = MemoryAdapter::new("audit");
    entra.seed_entitlement(&group());
    scim.seed_entitlement(&group());
    audit.seed_entitlement(&group());
    let who = Identity::person("alice");
    let op = |id: &str, system: &str, kind| {
        Operation::new("acme", system, kind, who.clone()).with_id(id)
    };
    let ops = vec![
        op("e0", "entra", OperationKind::CreateAccount),
        op("e1", "entra", OperationKind::Grant).with_entitlement(group()),
        op("s0", "scim-app", OperationKind::CreateAccount),
        op("s1", "scim-app", OperationKind::Grant).with_entitlement(group()),
        op("a0", "audit", OperationKind::CreateAccount),
    ];
    let plan = Resolver::new(
        ResolverConfig::default()
            .depends(Dependency::new(
                Endpoint::system("entra"),
                Endpoint::system("scim-app"),
            ))
            .depends(
                Dependency::new(Endpoint::system("scim-app"), Endpoint::system("audit"))
                    .strictness(iga_resolver::Strictness::Relaxed),
            ),
    )
    .plan(ops)
    .unwrap();
    let targets = Targets::new()
        .with("acme", "entra", Arc::new(entra.clone()))
        .with("acme", "scim-app", Arc::new(scim.clone()))
        .with("acme", "audit", Arc::new(audit.clone()));
    let report = engine().run_plan(&targets, &plan).await;
    let status: Vec<(String, ItemStatus)> = report
        .items
        .iter()
        .map(|i| (i.op_id.0.clone(), i.status()))
        .collect();
    assert_eq!(
        status,
        vec![
            ("e0".into(), ItemStatus::Succeeded),
            ("e1".into(), ItemStatus::Succeeded),
            ("s0".into(), ItemStatus::PermanentFailure),
            ("s1".into(), ItemStatus::PermanentFailure),
            ("a0".into(), ItemStatus::Skipped),
        ]
    );
    assert!(matches!(
        &report.items[3].result,
        ItemResult::DependencyFailed { dependency } if dependency.0 == "s0"
    ));
    assert!(matches!(
        &report.items[4].result,
        ItemResult::Skipped { dependency } if dependency.0 == "s0" || dependency.0 == "s1"
    ));
    assert_eq!(
        scim.stats().calls,
        0,
        "nothing undeclared reached the SCIM app"
    );
    assert_eq!(audit.account_count(), 0);
    assert!(entra.has_member("alice", &group()));
}
