//! The conformance kit against the faithful Okta mock (feature `test-support`).

use std::sync::Arc;

use iga_adapter::ProvisioningAdapter;
use iga_adapter_testkit::{
    FaultInjector, Fixture, IoProbe, ScriptedFault, Verdict, run_conformance,
};
use iga_connector_okta::mock::{MockConfig, MockFault, MockServer};
use iga_connector_okta::{OktaAdapter, OktaConfig};
use iga_directive::EntitlementRef;

const CANARY: &str = "canary-okta-ssws-8d1e4b";

struct Hooks(Arc<MockServer>);

impl FaultInjector for Hooks {
    fn inject(&self, fault: ScriptedFault) -> bool {
        let f = match fault {
            ScriptedFault::RateLimited { retry_after } => MockFault::RateLimited {
                reset_in: retry_after,
            },
            ScriptedFault::Unavailable => MockFault::Unavailable,
            ScriptedFault::Unauthenticated => MockFault::Unauthenticated,
            ScriptedFault::PermissionDenied => MockFault::PermissionDenied,
            _ => return false,
        };
        self.0.inject(f);
        true
    }
}

impl IoProbe for Hooks {
    fn calls(&self) -> u64 {
        self.0.calls()
    }
}

#[tokio::test]
async fn okta_adapter_passes_conformance_against_the_mock() {
    let mock = Arc::new(MockServer::start_with(MockConfig::default().token(CANARY)).await);
    mock.add_group("conformance-a");
    mock.add_group("conformance-b");
    let adapter = OktaAdapter::new(
        OktaConfig::new(mock.url(), CANARY)
            .unwrap()
            .with_instance("okta-mock"),
    )
    .unwrap();
    adapter.check().await.expect("check");
    let fixture = Fixture::new()
        .entitlements(vec![
            EntitlementRef::group("conformance-a"),
            EntitlementRef::group("conformance-b"),
        ])
        .missing_entitlement(EntitlementRef::group("conformance-missing"))
        .canary(CANARY)
        .faults(Arc::new(Hooks(mock.clone())))
        .io_probe(Arc::new(Hooks(mock.clone())));
    let report = run_conformance("okta-mock", &adapter, &fixture).await;
    report.assert_ok();
    // Okta has no batch endpoint: batch_partial_failure is the one scenario that
    // does not apply; every other one must have passed.
    for scenario in [
        "account_lifecycle",
        "grant_revoke_round_trip",
        "idempotent_reapply",
        "create_on_conflict_links",
        "pagination_exhaustion",
        "capability_honesty",
        "error_classification",
        "canary_secret",
    ] {
        assert!(
            matches!(report.verdict(scenario), Some(Verdict::Passed)),
            "{scenario}: {:?}",
            report.verdict(scenario)
        );
    }
    assert_eq!(report.not_applicable(), 1, "{}", report.summary());
    assert!(mock.calls() > 0);
}
