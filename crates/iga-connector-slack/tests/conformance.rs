//! The conformance kit against the faithful Slack SCIM mock (feature `test-support`),
//! at Slack's published rate limits.

use std::sync::Arc;

use iga_adapter::ProvisioningAdapter;
use iga_adapter_testkit::{
    FaultInjector, Fixture, IoProbe, ScriptedFault, Verdict, run_conformance,
};
use iga_connector_slack::mock::{MockConfig, MockFault, MockServer};
use iga_connector_slack::{SlackAdapter, SlackConfig};
use iga_directive::EntitlementRef;

const CANARY: &str = "xoxp-canary-slack-5c7e21";

struct Hooks(Arc<MockServer>);

impl FaultInjector for Hooks {
    fn inject(&self, fault: ScriptedFault) -> bool {
        let f = match fault {
            ScriptedFault::RateLimited { retry_after } => MockFault::RateLimited { retry_after },
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
async fn slack_adapter_passes_conformance_against_the_mock() {
    let mock = Arc::new(MockServer::start_with(MockConfig::default().token(CANARY)).await);
    let slack = SlackAdapter::connect(
        SlackConfig::new(CANARY)
            .with_base_url(mock.url())
            .with_instance("slack-mock")
            // The mock enforces Slack's limits; client pacing (tested apart) would
            // only slow the run down, and the run must stay under them unpaced.
            .with_write_pacing(None),
    )
    .await
    .expect("connect");
    let caps = slack.capabilities();
    assert!(!caps.delete_account, "Slack deactivates, never deletes");
    assert!(caps.disable_account && caps.enable_account && caps.grant && caps.revoke);
    assert_eq!(caps.batch_max, 1);
    for g in ["conformance-a", "conformance-b"] {
        slack.create_group(g).await.expect("create group");
    }
    let fixture = Fixture::new()
        .entitlements(vec![
            EntitlementRef::group("conformance-a"),
            EntitlementRef::group("conformance-b"),
        ])
        .missing_entitlement(EntitlementRef::group("conformance-missing"))
        .canary(CANARY)
        .faults(Arc::new(Hooks(mock.clone())))
        .io_probe(Arc::new(Hooks(mock.clone())));
    let report = run_conformance("slack-mock", &slack, &fixture).await;
    report.assert_ok();
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
    // No /Bulk in Slack: batch_partial_failure is the one scenario that does not apply.
    assert_eq!(report.not_applicable(), 1, "{}", report.summary());
    assert_eq!(mock.throttled(), 0, "the run stayed within Slack's limits");
}
