//! The conformance kit against the faithful GitHub mock (feature `test-support`),
//! authenticated as a GitHub App installation (RS256 JWT → installation token).
//! Invitations stay pending (GitHub's real behaviour): the adapter treats a pending
//! membership as held.

use std::sync::Arc;

use iga_adapter::ProvisioningAdapter;
use iga_adapter_testkit::{
    FaultInjector, Fixture, IoProbe, ScriptedFault, Verdict, run_conformance,
};
use iga_connector_github::mock::{MockApp, MockConfig, MockFault, MockServer};
use iga_connector_github::{GithubAdapter, GithubAppAuth, GithubConfig};
use iga_directive::{EntitlementKind, EntitlementRef};

const KEY: &str = include_str!("fixtures/test-app-key.pem");
const CANARY: &str = "ghp_canary_github_pat_0c9d7e";

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

fn public_key() -> Vec<u8> {
    GithubAppAuth::new(
        iga_http::default_client().unwrap(),
        "http://127.0.0.1:1",
        "4242",
        7,
        &iga_adapter::Secret::new(KEY.to_string()),
    )
    .unwrap()
    .public_key_der()
}

async fn run(name: &str, adapter: GithubAdapter, mock: Arc<MockServer>, canary: &str) {
    mock.add_team("conformance-a");
    mock.add_team("conformance-b");
    let fixture = Fixture::new()
        .entitlements(vec![
            EntitlementRef::group("conformance-a"),
            EntitlementRef::group("conformance-b"),
        ])
        .missing_entitlement(EntitlementRef::group("conformance-missing"))
        .canary(canary)
        .faults(Arc::new(Hooks(mock.clone())))
        .io_probe(Arc::new(Hooks(mock.clone())));
    // GitHub accounts exist outside the org: register the kit's test users.
    let logins: Vec<String> = (1..=100)
        .map(|n| fixture.identity(n).login().to_string())
        .collect();
    mock.add_users(logins.iter().map(String::as_str));
    adapter.check().await.expect("check");
    let report = run_conformance(name, &adapter, &fixture).await;
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
    // No batch endpoint: batch_partial_failure is the one scenario that does not apply.
    assert_eq!(report.not_applicable(), 1, "{}", report.summary());
    assert!(
        adapter
            .capabilities()
            .supports_entitlement(&EntitlementKind::Generic("repository".into()))
    );
}

#[tokio::test]
async fn github_adapter_passes_conformance_as_an_app_installation() {
    let mock = Arc::new(
        MockServer::start_with(MockConfig::default().app(MockApp {
            app_id: "4242".into(),
            installation_id: 7,
            public_key_der: public_key(),
        }))
        .await,
    );
    let adapter = GithubAdapter::new(
        GithubConfig::with_api_url(mock.url(), mock.org(), "unused")
            .unwrap()
            .app("4242", 7, KEY.to_string())
            .with_instance("github-mock-app"),
    )
    .unwrap();
    // The private key is the secret that must never leak.
    let canary = KEY.lines().nth(5).unwrap().to_string();
    run("github-mock", adapter, mock, &canary).await;
}

#[tokio::test]
async fn github_adapter_passes_conformance_with_a_token() {
    let mock = Arc::new(MockServer::start_with(MockConfig::default().token(CANARY)).await);
    let adapter = GithubAdapter::new(
        GithubConfig::with_api_url(mock.url(), mock.org(), CANARY)
            .unwrap()
            .with_instance("github-mock-pat"),
    )
    .unwrap();
    run("github-mock-pat", adapter, mock, CANARY).await;
}
