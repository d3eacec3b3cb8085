//! The conformance kit against a real SCIM 2.0 server (`scim2-server` from PyPI,
//! started here on loopback with a bearer token). Panics if it cannot start — never skips.

mod support;

use std::sync::Arc;

use iga_adapter::{ErrorKind, ProvisioningAdapter};
use iga_adapter_testkit::{Fixture, IoProbe, run_conformance};
use iga_connector_scim::{ScimAdapter, ScimConfig};
use iga_directive::EntitlementRef;
use support::Scim2Server;

const CANARY: &str = "canary-scim-bearer-3f9a1c";

struct Probe(ScimAdapter);

impl IoProbe for Probe {
    fn calls(&self) -> u64 {
        self.0.stats().requests
    }
}

#[tokio::test]
async fn scim_adapter_passes_conformance_against_real_scim2_server() {
    let server = Scim2Server::start(Some(CANARY));
    let config = ScimConfig::new(&server.base_url())
        .unwrap()
        .bearer_token(CANARY)
        .with_instance("scim2-server");
    let adapter = ScimAdapter::connect(config).await.expect("discovery");
    let f = adapter.features().clone();
    assert!(f.patch && f.filter && f.bulk && f.etag, "{f:?}");
    assert_eq!(f.bulk_max_operations, 1000);
    let caps = adapter.capabilities();
    assert_eq!(caps.batch_max, 1000);
    assert!(caps.create_links_existing && caps.grant && caps.revoke);
    adapter.check().await.expect("check");
    for g in ["conformance-a", "conformance-b"] {
        adapter.create_group(g).await.expect("create group");
    }
    let fixture = Fixture::new()
        .entitlements(vec![
            EntitlementRef::group("conformance-a"),
            EntitlementRef::group("conformance-b"),
        ])
        .missing_entitlement(EntitlementRef::group("conformance-missing"))
        .canary(CANARY)
        .io_probe(Arc::new(Probe(adapter.clone())));
    let report = run_conformance("scim2-server", &adapter, &fixture).await;
    report.assert_ok();
    assert_eq!(report.not_applicable(), 0, "{}", report.summary());
    assert!(!server.log().contains(CANARY));
}

#[tokio::test]
async fn wrong_token_is_unauthenticated_and_not_retryable() {
    let server = Scim2Server::start(Some(CANARY));
    let config = ScimConfig::new(&server.base_url())
        .unwrap()
        .bearer_token("wrong-token");
    // ServiceProviderConfig may be public (RFC 7644 §4); then check() must fail.
    let err = match ScimAdapter::connect(config).await {
        Ok(a) => a.check().await.unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert!(!err.is_retryable());
}
