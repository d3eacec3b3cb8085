//! Behaviour of each layer on its own (tokio time paused: no real waiting).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use iga_adapter::{
    ErrorKind, Fault, MemoryAdapter, NoOpReason, Outcome, ProvisioningAdapter, RetryStatus,
};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};
use iga_layers::*;
use tokio::time::Instant;
use tower_layer::Layer;

fn revoke(n: usize) -> Operation {
    Operation::new(
        "acme",
        "entra",
        OperationKind::Revoke,
        Identity::person(format!("u{n}")),
    )
    .with_entitlement(EntitlementRef::group("G"))
    .with_id(format!("op{n}"))
}

fn seeded(a: &MemoryAdapter, n: usize) {
    for i in 0..n {
        a.seed_membership(
            &Identity::person(format!("u{i}")),
            &EntitlementRef::group("G"),
        );
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(u32, Duration, usize)>>);

impl RetryObserver for Recorder {
    fn before_sleep(&self, e: &RetryEvent<'_>) {
        self.0.lock().unwrap().push((e.retry, e.delay, e.items));
    }
}

#[tokio::test(start_paused = true)]
async fn retry_recovers_from_429_after_its_retry_after() {
    let a = MemoryAdapter::new("entra");
    seeded(&a, 1);
    let rec = Arc::new(Recorder::default());
    let r = RetryLayer::new(RetryPolicy::default())
        .seed(3)
        .observer(rec.clone())
        .layer(a.clone());
    a.inject(Fault::RateLimited(Some(Duration::from_secs(3))));
    let t0 = Instant::now();
    let out = r.apply(&revoke(0)).await.unwrap();
    assert!(out.changed());
    assert!(t0.elapsed() >= Duration::from_secs(3), "{:?}", t0.elapsed());
    let events = rec.0.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert!(events[0].1 >= Duration::from_secs(3));
    assert_eq!(a.stats().apply_calls, 2);
}

#[tokio::test(start_paused = true)]
async fn retry_of_a_lost_response_is_already_in_state_and_effective_once() {
    let a = MemoryAdapter::new("entra");
    seeded(&a, 1);
    let r = RetryLayer::new(RetryPolicy::default())
        .seed(4)
        .layer(a.clone());
    a.inject(Fault::ResponseLost);
    let out = r.apply(&revoke(0)).await.unwrap();
    assert_eq!(out, Outcome::no_op(NoOpReason::AlreadyAbsent));
    assert!(a.duplicate_effects().is_empty());
    assert_eq!(a.effective_mutations(), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_gives_up_after_max_attempts_and_marks_exhausted() {
    let a = MemoryAdapter::new("entra");
    seeded(&a, 1);
    let r = RetryLayer::new(RetryPolicy::new(3, Duration::from_secs(60)))
        .seed(5)
        .layer(a.clone());
    for _ in 0..5 {
        a.inject(Fault::Unavailable);
    }
    let e = r.apply(&revoke(0)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.retry(), RetryStatus::Exhausted { attempts: 3 });
    assert_eq!(a.stats().apply_calls, 3);
}

#[tokio::test(start_paused = true)]
async fn retry_stops_when_the_retry_after_exceeds_the_elapsed_budget() {
    let a = MemoryAdapter::new("entra");
    seeded(&a, 1);
    let r = RetryLayer::new(RetryPolicy::new(10, Duration::from_secs(5)))
        .seed(6)
        .layer(a.clone());
    a.inject(Fault::RateLimited(Some(Duration::from_secs(30))));
    let t0 = Instant::now();
    let e = r.apply(&revoke(0)).await.unwrap_err();
    assert_eq!(e.retry(), RetryStatus::Exhausted { attempts: 1 });
    assert!(t0.elapsed() < Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn retry_never_retries_permanent_errors() {
    let a = MemoryAdapter::new("entra");
    let r = RetryLayer::new(RetryPolicy::default()).layer(a.clone());
    let grant = Operation::new(
        "acme",
        "entra",
        OperationKind::Grant,
        Identity::person("nobody"),
    )
    .with_entitlement(EntitlementRef::group("missing"));
    let e = r.apply(&grant).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.retry(), RetryStatus::Permanent);
    assert_eq!(a.stats().apply_calls, 1);
}

#[tokio::test(start_paused = true)]
async fn retry_batch_resends_only_the_failed_items() {
    let a = MemoryAdapter::new("entra");
    seeded(&a, 5);
    let rec = Arc::new(Recorder::default());
    let r = RetryLayer::new(RetryPolicy::default())
        .seed(7)
        .observer(rec.clone())
        .layer(a.clone());
    // Scripted faults hit batch items in order: item 0 fails, item 1 loses its response.
    a.inject(Fault::ItemFailure);
    a.inject(Fault::ResponseLost);
    let ops: Vec<_> = (0..5).map(revoke).collect();
    let results = r.apply_batch(&ops).await;
    assert_eq!(results.len(), 5);
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert_eq!(
        results[1].as_ref().unwrap(),
        &Outcome::no_op(NoOpReason::AlreadyAbsent)
    );
    let s = a.stats();
    assert_eq!((s.batch_calls, s.batch_items), (2, 7));
    assert_eq!(rec.0.lock().unwrap()[0].2, 2);
    assert!(a.duplicate_effects().is_empty());
    assert_eq!(a.effective_mutations(), 5);
}

#[tokio::test(start_paused = true)]
async fn timeout_fails_a_slow_call_with_a_temporary_timeout() {
    let a = MemoryAdapter::config("slow")
        .latency(Duration::from_millis(200))
        .build();
    seeded(&a, 2);
    let t = TimeoutLayer::new(Duration::from_millis(50)).layer(a.clone());
    let e = t.apply(&revoke(0)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.is_retryable());
    assert!(
        e.to_string().contains("per-attempt timeout of 50 ms"),
        "{e}"
    );
    let results = t.apply_batch(&[revoke(1)]).await;
    assert!(matches!(&results[0], Err(e) if e.kind() == ErrorKind::Timeout));
}

#[tokio::test(start_paused = true)]
async fn concurrency_limit_caps_calls_in_flight() {
    let a = MemoryAdapter::config("entra")
        .latency(Duration::from_millis(50))
        .build();
    seeded(&a, 10);
    let c = ConcurrencyLimitLayer::new(2).layer(a.clone());
    let ops: Vec<_> = (0..10).map(revoke).collect();
    let results = futures::future::join_all(ops.iter().map(|op| c.apply(op))).await;
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(a.stats().peak_concurrency, 2);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_paces_calls_and_pauses_after_429() {
    let a = MemoryAdapter::new("entra");
    seeded(&a, 20);
    let r = RateLimitLayer::new(RateLimitConfig::per_second(10.0, 1)).layer(a.clone());
    let t0 = Instant::now();
    for i in 0..5 {
        r.apply(&revoke(i)).await.unwrap();
    }
    // 1 token at once, then one per 100 ms.
    let el = t0.elapsed();
    assert!(
        el >= Duration::from_millis(400) && el < Duration::from_millis(500),
        "{el:?}"
    );

    a.inject(Fault::RateLimited(Some(Duration::from_secs(2))));
    let e = r.apply(&revoke(5)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    let t1 = Instant::now();
    r.apply(&revoke(6)).await.unwrap();
    assert!(t1.elapsed() >= Duration::from_secs(2), "{:?}", t1.elapsed());
    // Slowed to half rate: the next call waits ~200 ms instead of ~100 ms.
    let t2 = Instant::now();
    r.apply(&revoke(7)).await.unwrap();
    assert!(
        t2.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t2.elapsed()
    );
    assert_eq!(r.limiter().throttled(), 1);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_charges_one_token_per_batch_item() {
    let a = MemoryAdapter::new("entra");
    seeded(&a, 40);
    let r = RateLimitLayer::new(RateLimitConfig::per_second(20.0, 20)).layer(a.clone());
    let ops: Vec<_> = (0..20).map(revoke).collect();
    let t0 = Instant::now();
    r.apply_batch(&ops).await;
    assert!(t0.elapsed() < Duration::from_millis(10));
    let ops: Vec<_> = (20..40).map(revoke).collect();
    r.apply_batch(&ops).await;
    assert!(
        t0.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn capability_check_rejects_before_the_inner_adapter_sees_anything() {
    let a = MemoryAdapter::config("ro")
        .operations(&[OperationKind::Grant])
        .build();
    let c = CapabilityCheckLayer.layer(a.clone());
    let del = Operation::new(
        "acme",
        "ro",
        OperationKind::DeleteAccount,
        Identity::person("x"),
    );
    let e = c.apply(&del).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(
        e.to_string().contains("checked_by=capability-check layer"),
        "{e}"
    );
    // In a batch: the undeclared item fails, the declared one is forwarded, order kept.
    a.seed_membership(&Identity::person("x"), &EntitlementRef::group("G"));
    let grant = Operation::new("acme", "ro", OperationKind::Grant, Identity::person("x"))
        .with_entitlement(EntitlementRef::group("G"));
    let results = c.apply_batch(&[del, grant]).await;
    assert!(matches!(&results[0], Err(e) if e.kind() == ErrorKind::Unsupported));
    assert!(
        matches!(
            results[1],
            Ok(Outcome::AlreadyInState {
                reason: NoOpReason::AlreadyGranted,
                ..
            })
        ),
        "{:?}",
        results[1]
    );
    assert_eq!(a.stats().batch_items, 1);
    assert_eq!(a.stats().calls, 1);
}
