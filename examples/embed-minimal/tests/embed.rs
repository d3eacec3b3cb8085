//! Scenario 12, first form: the embedding product builds against `iga-adapter` only,
//! provisions through it, and the conformance kit passes against its target.

use std::sync::Arc;

use iga_adapter::model::{EntitlementRef, Identity};
use iga_adapter::{MemoryAdapter, ProvisioningAdapterExt};
use iga_adapter_testkit::{Fixture, run_conformance};

#[test]
fn depends_on_iga_adapter_alone() {
    let manifest = include_str!("../Cargo.toml");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    let iga: Vec<&str> = deps
        .lines()
        .filter(|l| l.trim_start().starts_with("iga-"))
        .map(str::trim)
        .collect();
    assert_eq!(iga, vec!["iga-adapter.workspace = true"]);
}

#[tokio::test]
async fn provisions_a_user_and_passes_the_conformance_kit() {
    let target = MemoryAdapter::config("product-app")
        .credential("canary-embed-31c9")
        .build();
    target.seed_entitlement(&EntitlementRef::group("app-users"));
    target.seed_entitlement(&EntitlementRef::group("app-admins"));
    let dana = Identity::person("dana").with_email("dana@example.com");
    assert!(
        target
            .create_user(&dana, Default::default())
            .await
            .unwrap()
            .changed()
    );
    assert!(
        target
            .add_to_group(&dana, "app-users")
            .await
            .unwrap()
            .changed()
    );
    assert_eq!(
        target.get_user_groups(&dana).await.unwrap(),
        vec![EntitlementRef::group("app-users")]
    );

    let fixture = Fixture::new()
        .entitlements(vec![
            EntitlementRef::group("app-users"),
            EntitlementRef::group("app-admins"),
        ])
        .missing_entitlement(EntitlementRef::group("no-such-group"))
        .canary("canary-embed-31c9")
        .faults(Arc::new(target.clone()))
        .io_probe(Arc::new(target.clone()));
    let report = run_conformance("embed-minimal", &target, &fixture).await;
    report.assert_ok();
    assert_eq!(report.failed(), 0);
    assert!(report.passed() >= 8);
}
