//! Every layer, wrapped around `MemoryAdapter`, passes the conformance kit unchanged.

use std::sync::Arc;
use std::time::Duration;

use iga_adapter::{MemoryAdapter, MemoryConfig, ProvisioningAdapter};
use iga_adapter_testkit::{FaultInjector, Fixture, Report, ScriptedFault, run_conformance};
use iga_directive::OperationKind;
use iga_layers::*;
use tower_layer::Layer;

const CANARY: &str = "canary-secret-layers-91d2";

fn target(config: MemoryConfig) -> MemoryAdapter {
    let a = config.credential(CANARY).build();
    fixture(&a);
    a
}

fn fixture(a: &MemoryAdapter) -> Fixture {
    Fixture::for_memory(a, CANARY)
}

fn check(report: Report, a: &MemoryAdapter) {
    report.assert_ok();
    assert_eq!(report.not_applicable(), 0, "{}", report.summary());
    assert!(a.duplicate_effects().is_empty());
}

#[tokio::test]
async fn capability_check_passes() {
    let a = target(MemoryAdapter::config("memory"));
    let wrapped = CapabilityCheckLayer.layer(a.clone());
    assert_eq!(wrapped.to_string(), "CapabilityCheck(Memory(memory))");
    check(
        run_conformance("capability-check", &wrapped, &fixture(&a)).await,
        &a,
    );
}

#[tokio::test]
async fn capability_check_passes_with_restricted_capabilities() {
    let a = target(
        MemoryAdapter::config("memory-restricted")
            .operations(&[OperationKind::CreateAccount, OperationKind::Grant])
            .batch_max(1),
    );
    let wrapped = CapabilityCheckLayer.layer(a.clone());
    run_conformance("capability-check-restricted", &wrapped, &fixture(&a))
        .await
        .assert_ok();
}

#[tokio::test]
async fn concurrency_limit_passes() {
    let a = target(MemoryAdapter::config("memory"));
    let wrapped = ConcurrencyLimitLayer::new(2).layer(a.clone());
    assert_eq!(wrapped.to_string(), "ConcurrencyLimit(Memory(memory))");
    assert_eq!(wrapped.capabilities().max_concurrency, Some(2));
    check(
        run_conformance("concurrency-limit", &wrapped, &fixture(&a)).await,
        &a,
    );
}

#[tokio::test]
async fn timeout_passes() {
    let a = target(MemoryAdapter::config("memory").latency(Duration::from_millis(1)));
    let wrapped = TimeoutLayer::new(Duration::from_secs(5)).layer(a.clone());
    assert_eq!(wrapped.to_string(), "Timeout(Memory(memory))");
    check(run_conformance("timeout", &wrapped, &fixture(&a)).await, &a);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_passes() {
    let a = target(MemoryAdapter::config("memory"));
    let wrapped = RateLimitLayer::new(RateLimitConfig::per_second(50.0, 10)).layer(a.clone());
    assert_eq!(wrapped.to_string(), "RateLimit(Memory(memory))");
    let report = run_conformance("rate-limit", &wrapped, &fixture(&a)).await;
    // The kit's injected 429 reached the limiter and paused it.
    assert_eq!(wrapped.limiter().throttled(), 1);
    check(report, &a);
}

/// A retry layer hides transient faults by design, so through it the kit's
/// "a 429/503 comes back as a retryable error" checks cannot be produced: this
/// injector declines them (the kit then skips those cases) and passes the permanent
/// ones (401, 403), which the layer must return unchanged. `retry_recovers_*` tests
/// in `tests/layers.rs` cover the transient side.
struct PermanentFaultsOnly(MemoryAdapter);

impl FaultInjector for PermanentFaultsOnly {
    fn inject(&self, fault: ScriptedFault) -> bool {
        match fault {
            ScriptedFault::RateLimited { .. } | ScriptedFault::Unavailable => false,
            other => FaultInjector::inject(&self.0, other),
        }
    }
}

#[tokio::test]
async fn retry_passes() {
    let a = target(MemoryAdapter::config("memory"));
    let wrapped = RetryLayer::new(RetryPolicy::default())
        .seed(1)
        .layer(a.clone());
    assert_eq!(wrapped.to_string(), "Retry(Memory(memory))");
    let f = fixture(&a).faults(Arc::new(PermanentFaultsOnly(a.clone())));
    check(run_conformance("retry", &wrapped, &f).await, &a);
}

#[tokio::test]
async fn full_default_stack_passes() {
    let a = target(MemoryAdapter::config("memory").max_concurrent(4));
    let stack = CapabilityCheckLayer.layer(
        RetryLayer::new(RetryPolicy::default()).seed(2).layer(
            TimeoutLayer::new(Duration::from_secs(5)).layer(
                RateLimitLayer::new(RateLimitConfig::per_second(1000.0, 100))
                    .layer(ConcurrencyLimitLayer::new(4).layer(a.clone())),
            ),
        ),
    );
    let f = fixture(&a).faults(Arc::new(PermanentFaultsOnly(a.clone())));
    check(run_conformance("stack", &stack, &f).await, &a);
}
