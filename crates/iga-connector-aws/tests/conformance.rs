//! The conformance kit against the IAM and Identity Center mocks, plus the negative
//! checks each mock must enforce (bad signature, non-eq filter, > 100 changes per PATCH).

use std::sync::Arc;
use std::time::Duration;

use iga_adapter::{ErrorKind, NoOpReason, Outcome, ProvisioningAdapter};
use iga_adapter_testkit::{FaultInjector, Fixture, IoProbe, ScriptedFault, run_conformance};
use iga_connector_aws::mock::{self, IamMock};
use iga_connector_aws::mock_scim::{self, IdentityCenterMock};
use iga_connector_aws::{AwsCredentials, IamAdapter, IdentityCenterAdapter, managed_policy};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};
use reqwest::Method;

struct IamProbe(IamAdapter);
impl IoProbe for IamProbe {
    fn calls(&self) -> u64 {
        self.0.requests()
    }
}

struct IamFaults(Arc<IamMock>);
impl FaultInjector for IamFaults {
    fn inject(&self, fault: ScriptedFault) -> bool {
        let f = match fault {
            // IAM throttles with 400 `Throttling` and no Retry-After, so the kit's
            // "429 with Retry-After" cannot be produced; see `iam_throttling_*` below.
            ScriptedFault::RateLimited { .. } => return false,
            ScriptedFault::Unavailable => mock::MockFault::Unavailable,
            ScriptedFault::Unauthenticated => mock::MockFault::InvalidClientTokenId,
            ScriptedFault::PermissionDenied => mock::MockFault::AccessDenied,
            _ => return false,
        };
        self.0.inject(f);
        true
    }
}

#[tokio::test]
async fn iam_adapter_passes_conformance_against_mock() {
    let mock = Arc::new(IamMock::start().await);
    mock.seed_group("conformance-a");
    mock.seed_group("conformance-b");
    let adapter = IamAdapter::new(mock.config()).unwrap();
    adapter.check().await.expect("check");
    let fixture = Fixture::new()
        .entitlements(vec![
            EntitlementRef::group("conformance-a"),
            EntitlementRef::group("conformance-b"),
        ])
        .missing_entitlement(EntitlementRef::group("conformance-missing"))
        .canary(mock::TEST_SECRET)
        .faults(Arc::new(IamFaults(mock.clone())))
        .io_probe(Arc::new(IamProbe(adapter.clone())));
    let report = run_conformance("aws-iam-mock", &adapter, &fixture).await;
    report.assert_ok();
    // IAM has no native batch: that scenario alone does not apply.
    assert_eq!(report.not_applicable(), 1, "{}", report.summary());
    assert!(matches!(
        report.verdict("batch_partial_failure"),
        Some(iga_adapter_testkit::Verdict::NotApplicable(_))
    ));
    assert_eq!(mock.rejected_signatures(), 0);
}

fn person(id: &str) -> Identity {
    Identity::person(id)
        .with_user_name(id)
        .with_name("Ada", "Lovelace")
}

fn op(kind: OperationKind, who: &Identity) -> Operation {
    Operation::new("default", "aws", kind, who.clone())
}

#[tokio::test]
async fn iam_rejects_a_bad_signature_and_unknown_keys() {
    let mock = IamMock::start().await;
    let mut config = mock.config();
    config.credentials = AwsCredentials::new(mock::TEST_ACCESS_KEY_ID, "wrong-secret-canary");
    let e = IamAdapter::new(config).unwrap().check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(
        e.to_string().contains("SignatureDoesNotMatch")
            || format!("{e:?}").contains("SignatureDoesNotMatch")
    );
    assert!(!format!("{e:?}").contains("wrong-secret-canary"));
    assert_eq!(mock.rejected_signatures(), 1);
    let mut config = mock.config();
    config.credentials = AwsCredentials::new("AKIAUNKNOWN000000000", mock::TEST_SECRET);
    let e = IamAdapter::new(config).unwrap().check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    // Unsigned request.
    let r = reqwest::Client::new()
        .post(mock.endpoint())
        .body("Action=ListUsers&Version=2010-05-08")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("MissingAuthenticationToken")
    );
}

#[tokio::test]
async fn iam_leaver_disables_access_keys_then_enable_restores_them() {
    let mock = IamMock::start().await;
    mock.seed_group("eng");
    let arn = mock.seed_policy("ReadOnly");
    let a = IamAdapter::new(mock.config()).unwrap();
    let ada = person("ada");
    assert!(
        a.apply(&op(OperationKind::CreateAccount, &ada))
            .await
            .unwrap()
            .changed()
    );
    let key = mock.seed_credentials("ada").unwrap();
    assert!(key.starts_with("AKIA"));
    a.apply(&op(OperationKind::Grant, &ada).with_entitlement(EntitlementRef::group("eng")))
        .await
        .unwrap();
    let g = a
        .apply(&op(OperationKind::Grant, &ada).with_entitlement(managed_policy(&arn)))
        .await
        .unwrap();
    assert!(g.changed());
    let again = a
        .apply(&op(OperationKind::Grant, &ada).with_entitlement(managed_policy(&arn)))
        .await
        .unwrap();
    assert!(matches!(
        again,
        Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyGranted,
            ..
        }
    ));
    // Leave: keys inactive, console password gone.
    assert!(
        a.apply(&op(OperationKind::DisableAccount, &ada))
            .await
            .unwrap()
            .changed()
    );
    assert_eq!(mock.key_statuses("ada"), vec!["Inactive"]);
    assert!(!mock.has_login_profile("ada"));
    let again = a
        .apply(&op(OperationKind::DisableAccount, &ada))
        .await
        .unwrap();
    assert!(matches!(
        again,
        Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyDisabled,
            ..
        }
    ));
    assert!(
        a.apply(&op(OperationKind::EnableAccount, &ada))
            .await
            .unwrap()
            .changed()
    );
    assert_eq!(mock.key_statuses("ada"), vec!["Active"]);
    // Delete cleans groups, policies and keys first (the mock refuses DeleteConflict).
    assert!(
        a.apply(&op(OperationKind::DeleteAccount, &ada))
            .await
            .unwrap()
            .changed()
    );
    assert_eq!(mock.groups_of("ada"), None);
    let missing = a
        .apply(
            &op(OperationKind::Grant, &person("bob"))
                .with_entitlement(managed_policy("arn:aws:iam::123456789012:policy/Nope")),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn iam_throttling_is_temporary_and_limits_are_enforced() {
    let mock = IamMock::start().await;
    let a = IamAdapter::new(mock.config()).unwrap();
    mock.inject(mock::MockFault::Throttling);
    let e = a.check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert!(e.is_retryable());
    assert_eq!(e.retry_after(), None, "IAM sends no Retry-After");
    let ada = person("ada");
    a.apply(&op(OperationKind::CreateAccount, &ada))
        .await
        .unwrap();
    for n in 0..11 {
        mock.seed_group(&format!("g{n:02}"));
    }
    for n in 0..10 {
        a.apply(
            &op(OperationKind::Grant, &ada)
                .with_entitlement(EntitlementRef::group(format!("g{n:02}"))),
        )
        .await
        .unwrap();
    }
    let e = a
        .apply(&op(OperationKind::Grant, &ada).with_entitlement(EntitlementRef::group("g10")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "LimitExceeded: {e}");
    let bad = a
        .apply(&op(OperationKind::CreateAccount, &person("no spaces!")))
        .await
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput);
}

struct IcProbe(Arc<IdentityCenterMock>);
impl IoProbe for IcProbe {
    fn calls(&self) -> u64 {
        self.0.calls()
    }
}

struct IcFaults(Arc<IdentityCenterMock>);
impl FaultInjector for IcFaults {
    fn inject(&self, fault: ScriptedFault) -> bool {
        let f = match fault {
            ScriptedFault::RateLimited { retry_after } => {
                mock_scim::MockFault::Throttling(Some(retry_after))
            }
            ScriptedFault::Unavailable => mock_scim::MockFault::Unavailable,
            ScriptedFault::Unauthenticated => return false, // 401 is retried once with fresh credentials
            ScriptedFault::PermissionDenied => mock_scim::MockFault::AccessDenied,
            _ => return false,
        };
        self.0.inject(f);
        true
    }
}

#[tokio::test]
async fn identity_center_adapter_passes_conformance_against_mock() {
    let mock = Arc::new(IdentityCenterMock::start().await);
    mock.seed_group("conformance-a");
    mock.seed_group("conformance-b");
    let adapter = IdentityCenterAdapter::connect(mock.config())
        .await
        .expect("connect");
    assert_eq!(adapter.capabilities().batch_max, 100);
    let fixture = Fixture::new()
        .entitlements(vec![
            EntitlementRef::group("conformance-a"),
            EntitlementRef::group("conformance-b"),
        ])
        .missing_entitlement(EntitlementRef::group("conformance-missing"))
        .canary(mock_scim::TEST_TOKEN)
        .faults(Arc::new(IcFaults(mock.clone())))
        .io_probe(Arc::new(IcProbe(mock.clone())));
    let report = run_conformance("aws-identity-center-mock", &adapter, &fixture).await;
    report.assert_ok();
    assert_eq!(report.not_applicable(), 0, "{}", report.summary());
}

#[tokio::test]
async fn identity_center_rejects_non_eq_filters_and_oversized_patches() {
    let mock = Arc::new(IdentityCenterMock::start().await);
    let gid = mock.seed_group("eng");
    let a = IdentityCenterAdapter::connect(mock.config()).await.unwrap();
    let e = a
        .scim()
        .request(
            Method::GET,
            "/Users",
            &[("filter", r#"userName sw "a""#.to_string())],
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = a
        .scim()
        .request(
            Method::GET,
            "/Groups",
            &[("filter", r#"members[value eq "u"]"#.to_string())],
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    // Group reads carry no members.
    let g = a
        .scim()
        .request(Method::GET, &format!("/Groups/{gid}"), &[], None)
        .await
        .unwrap()
        .unwrap();
    assert!(g.get("members").is_none());
    // 101 membership changes in one PATCH are refused; replace of members too.
    let values: Vec<serde_json::Value> = (0..101)
        .map(|n| serde_json::json!({"value": format!("u-{n}")}))
        .collect();
    let body = serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": values}]});
    let e = a
        .scim()
        .request(Method::PATCH, &format!("/Groups/{gid}"), &[], Some(&body))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let body = serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "members", "value": []}]});
    let e = a
        .scim()
        .request(Method::PATCH, &format!("/Groups/{gid}"), &[], Some(&body))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(mock.rejected() >= 4);
}

#[tokio::test]
async fn identity_center_batch_sends_at_most_100_changes_per_patch() {
    let mock = Arc::new(IdentityCenterMock::start().await);
    let gid = mock.seed_group("eng");
    let a = IdentityCenterAdapter::connect(mock.config()).await.unwrap();
    let people: Vec<Identity> = (0..150).map(|n| person(&format!("u{n:03}"))).collect();
    let creates: Vec<Operation> = people
        .iter()
        .map(|p| op(OperationKind::CreateAccount, p))
        .collect();
    for r in a.apply_batch(&creates).await {
        assert!(r.unwrap().changed());
    }
    let grants: Vec<Operation> = people
        .iter()
        .map(|p| op(OperationKind::Grant, p).with_entitlement(EntitlementRef::group("eng")))
        .collect();
    let before = mock.patches();
    let mut results = a.apply_batch(&grants[..100]).await;
    results.extend(a.apply_batch(&grants[100..]).await);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(Outcome::Applied { .. })))
    );
    assert_eq!(
        mock.patches() - before,
        2,
        "150 grants → 2 PATCHes (100 + 50)"
    );
    assert_eq!(mock.members(&gid).len(), 150);
    let again = a.apply_batch(&grants[..100]).await;
    assert!(again.iter().all(|r| matches!(
        r,
        Ok(Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyGranted,
            ..
        })
    )));
    assert_eq!(mock.patches() - before, 2, "no PATCH for no-ops");
    mock.inject(mock_scim::MockFault::Throttling(Some(Duration::from_secs(
        4,
    ))));
    let e = a.check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(4)));
}
