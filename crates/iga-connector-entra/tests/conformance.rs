//! The conformance kit against the Graph mock (loopback axum server, started here;
//! it panics if it cannot start — never skips).

use std::sync::Arc;

use iga_adapter::ProvisioningAdapter;
use iga_adapter_testkit::{FaultInjector, Fixture, IoProbe, ScriptedFault, run_conformance};
use iga_connector_entra::mock::{CLIENT_ID, DOMAIN, GraphMock, TENANT};
use iga_connector_entra::{EntraAdapter, EntraConfig};
use iga_directive::EntitlementRef;

const CANARY: &str = "canary-entra-secret-5d1e77";

struct Faults(Arc<GraphMock>);

impl FaultInjector for Faults {
    fn inject(&self, fault: ScriptedFault) -> bool {
        match fault {
            ScriptedFault::RateLimited { retry_after } => self.0.fail_next(429, Some(retry_after)),
            ScriptedFault::Unavailable => self.0.fail_next(503, None),
            // The client refreshes its token and retries once after a 401.
            ScriptedFault::Unauthenticated => {
                self.0.fail_next(401, None);
                self.0.fail_next(401, None);
            }
            ScriptedFault::PermissionDenied => self.0.fail_next(403, None),
            _ => return false,
        }
        true
    }
}

struct Probe(Arc<GraphMock>);

impl IoProbe for Probe {
    fn calls(&self) -> u64 {
        self.0.graph_calls() + self.0.token_requests()
    }
}

#[tokio::test]
async fn entra_adapter_passes_conformance_against_the_graph_mock() {
    let mock = Arc::new(GraphMock::start().await);
    mock.set_client_secret(CANARY);
    let a = mock.seed_group("conformance-a");
    let b = mock.seed_group("conformance-b");
    let config = EntraConfig::with_client_secret(TENANT, CLIENT_ID, CANARY)
        .endpoints(mock.graph_base(), mock.authority())
        .upn_domain(DOMAIN)
        .instance("graph-mock");
    let adapter = EntraAdapter::new(config).expect("config");
    adapter.check().await.expect("check");
    let caps = adapter.capabilities();
    assert_eq!(caps.batch_max, 20);
    assert!(caps.create_links_existing && caps.grant && caps.revoke && caps.read);
    let fixture = Fixture::new()
        .entitlements(vec![EntitlementRef::group(a), EntitlementRef::group(b)])
        .missing_entitlement(EntitlementRef::group(uuid_like()))
        .canary(CANARY)
        .faults(Arc::new(Faults(mock.clone())))
        .io_probe(Arc::new(Probe(mock.clone())));
    let report = run_conformance("entra-graph-mock", &adapter, &fixture).await;
    report.assert_ok();
    assert_eq!(report.not_applicable(), 0, "{}", report.summary());
    assert!(
        mock.calls("/v1.0/$batch") >= 1,
        "batch scenario used $batch"
    );
    for r in mock
        .requests()
        .into_iter()
        .filter(|r| !r.path.contains("oauth2"))
    {
        assert!(
            !r.body
                .map(|b| b.to_string())
                .unwrap_or_default()
                .contains(CANARY),
            "secret sent to Graph"
        );
    }
}

fn uuid_like() -> String {
    "0b9c2a4e-1111-4e2b-9a7f-3c5d6e7f8a9b".to_string()
}
