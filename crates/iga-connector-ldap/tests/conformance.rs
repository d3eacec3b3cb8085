//! The conformance kit against a real OpenLDAP slapd (started here on loopback, with
//! the memberof and refint overlays). Panics if slapd cannot start — never skips.

use std::sync::Arc;

use iga_adapter::ProvisioningAdapter;
use iga_adapter_testkit::{Fixture, IoProbe, run_conformance};
use iga_connector_ldap::LdapAdapter;
use iga_connector_ldap::testing::{Slapd, SlapdOptions};
use iga_directive::EntitlementRef;

const CANARY: &str = "canary-ldap-bindpw-6c1d0f";

struct Probe(LdapAdapter);

impl IoProbe for Probe {
    fn calls(&self) -> u64 {
        self.0.requests_sent()
    }
}

#[tokio::test]
async fn ldap_adapter_passes_conformance_against_real_slapd() {
    let slapd = Slapd::start_with(SlapdOptions {
        password: CANARY.into(),
        ..Default::default()
    });
    let adapter = LdapAdapter::new(slapd.config().with_instance("slapd")).unwrap();
    adapter.check().await.expect("check against slapd");
    for g in ["conformance-a", "conformance-b"] {
        adapter
            .create_group(g, Some("conformance group"))
            .await
            .expect("create group");
    }
    let fixture = Fixture::new()
        .entitlements(vec![
            EntitlementRef::group("conformance-a"),
            EntitlementRef::group("conformance-b"),
        ])
        .missing_entitlement(EntitlementRef::group("conformance-missing"))
        .canary(CANARY)
        .io_probe(Arc::new(Probe(adapter.clone())));
    let report = run_conformance("ldap-slapd", &adapter, &fixture).await;
    report.assert_ok();
    assert_eq!(report.not_applicable(), 0, "{}", report.summary());
    assert!(!slapd.log().contains(CANARY));
}
