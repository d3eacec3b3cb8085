//! The conformance kit against the webhook adapter and a local receiving app (axum on
//! a free loopback port; the test fails if it cannot bind).

mod support;

use std::sync::Arc;

use iga_adapter::{ErrorKind, ProvisioningAdapter};
use iga_adapter_testkit::{Fixture, IoProbe, run_conformance};
use iga_connector_webhook::{WebhookAdapter, WebhookConfig};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};

struct Probe(WebhookAdapter);

impl IoProbe for Probe {
    fn calls(&self) -> u64 {
        self.0.stats().requests
    }
}

#[tokio::test]
async fn webhook_adapter_passes_conformance_against_a_local_app() {
    let app = support::start(&["conformance-a", "conformance-b"], false).await;
    let adapter =
        WebhookAdapter::new(WebhookConfig::new("homegrown", &app.url, support::SECRET).unwrap())
            .unwrap();
    let fixture = Fixture::new()
        .entitlements(vec![
            EntitlementRef::group("conformance-a"),
            EntitlementRef::group("conformance-b"),
        ])
        .missing_entitlement(EntitlementRef::group("conformance-missing"))
        .canary(support::SECRET)
        .faults(Arc::new(app.clone()))
        .io_probe(Arc::new(Probe(adapter.clone())));
    let report = run_conformance("webhook", &adapter, &fixture).await;
    report.assert_ok();
    assert!(report.passed() >= 5, "{}", report.summary());
    assert!(app.requests() > 5);
}

#[tokio::test]
async fn the_app_rejects_a_wrong_secret_and_a_replayed_key_has_no_second_effect() {
    let app = support::start(&["g"], false).await;
    let wrong = WebhookAdapter::new(
        WebhookConfig::new("homegrown", &app.url, "whsec_d3Jvbmctc2VjcmV0LXh5eg==").unwrap(),
    )
    .unwrap();
    let op = Operation::new(
        "acme",
        "homegrown",
        OperationKind::Grant,
        Identity::person("u1"),
    )
    .with_entitlement(EntitlementRef::group("g"))
    .with_id("d1.0");
    let e = wrong.apply(&op).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert!(!app.holds("u1", "g"));
    let right =
        WebhookAdapter::new(WebhookConfig::new("homegrown", &app.url, support::SECRET).unwrap())
            .unwrap();
    assert!(right.apply(&op).await.unwrap().changed());
    // Same operation again (a retry after a lost response): same key, same answer,
    // and the app did nothing twice.
    assert!(right.apply(&op).await.unwrap().changed());
    assert!(app.holds("u1", "g"));
}
