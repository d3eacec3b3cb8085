//! The mock rejects what Okta rejects, and the adapter copes with Okta's quirks:
//! deactivate-before-delete, partial vs full update, APP_GROUP memberships, app
//! assignments, 429 `E0000047` with `X-Rate-Limit-*`, and `Link` paging.

use std::time::Duration;

use iga_adapter::{
    AssignmentScope, ErrorKind, NoOpReason, Outcome, PageRequest, ProvisioningAdapter,
    ProvisioningAdapterExt,
};
use iga_connector_okta::mock::{MockConfig, MockFault, MockServer};
use iga_connector_okta::{OktaAdapter, OktaConfig};
use iga_directive::{EntitlementKind, EntitlementRef, Identity, Operation, OperationKind};
use serde_json::{Value, json};

fn ada(n: u32) -> Identity {
    Identity::person(format!("hr-{n}"))
        .with_email(format!("ada{n}@acme.example"))
        .with_name("Ada", format!("Lovelace{n}"))
}

fn adapter(mock: &MockServer) -> OktaAdapter {
    OktaAdapter::new(OktaConfig::new(mock.url(), mock.token()).unwrap()).unwrap()
}

async fn raw(mock: &MockServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = iga_http::default_client().unwrap();
    let mut rb = client
        .request(
            method.parse().unwrap(),
            format!("{}/api/v1{path}", mock.url()),
        )
        .header("authorization", format!("SSWS {}", mock.token()));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("mock reachable");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn mock_rejects_what_okta_rejects() {
    let mock = MockServer::start().await;
    // Wrong token.
    let r = iga_http::default_client()
        .unwrap()
        .get(format!("{}/api/v1/users", mock.url()))
        .header("authorization", "SSWS wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "E0000011");
    // Missing required attributes, non-email login, unknown attribute.
    let (s, b) = raw(
        &mock,
        "POST",
        "/users",
        Some(json!({"profile": {"login": "ada"}})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(b["errorCode"], "E0000001");
    let causes = b["errorCauses"].to_string();
    assert!(causes.contains("email address"), "{causes}");
    assert!(causes.contains("firstName"), "{causes}");
    let (s, b) = raw(
        &mock,
        "POST",
        "/users",
        Some(json!({"profile": {"login": "a@x.io", "email": "a@x.io", "firstName": "A", "lastName": "B", "favouriteColour": "red"}})),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        b["errorCauses"]
            .to_string()
            .contains("not defined in profile")
    );
    // Duplicate login (case-insensitive).
    let ok = json!({"profile": {"login": "a@x.io", "email": "a@x.io", "firstName": "A", "lastName": "B"}});
    assert_eq!(raw(&mock, "POST", "/users", Some(ok.clone())).await.0, 200);
    let mut dup = ok.clone();
    dup["profile"]["login"] = json!("A@X.IO");
    let (s, b) = raw(&mock, "POST", "/users", Some(dup)).await;
    assert_eq!(s, 400);
    assert!(b["errorCauses"].to_string().contains("already exists"));
    // Deactivating a deprovisioned user; activating an active one.
    let (_, u) = raw(&mock, "GET", "/users/a@x.io", None).await;
    let id = u["id"].as_str().unwrap().to_string();
    assert_eq!(u["status"], "PROVISIONED");
    let (s, b) = raw(
        &mock,
        "POST",
        &format!("/users/{id}/lifecycle/activate"),
        None,
    )
    .await;
    assert_eq!((s, b["errorCode"].as_str()), (403, Some("E0000016")));
    assert_eq!(
        raw(
            &mock,
            "POST",
            &format!("/users/{id}/lifecycle/deactivate"),
            None
        )
        .await
        .0,
        200
    );
    let (s, b) = raw(
        &mock,
        "POST",
        &format!("/users/{id}/lifecycle/deactivate"),
        None,
    )
    .await;
    assert_eq!((s, b["errorCode"].as_str()), (403, Some("E0000038")));
    // Unknown ids.
    let (s, b) = raw(&mock, "PUT", &format!("/groups/00gnope/users/{id}"), None).await;
    assert_eq!((s, b["errorCode"].as_str()), (404, Some("E0000007")));
    // APP_GROUP memberships are read-only.
    let g = mock.add_app_group("AD-Imported");
    let (s, b) = raw(&mock, "PUT", &format!("/groups/{g}/users/{id}"), None).await;
    assert_eq!((s, b["errorCode"].as_str()), (403, Some("E0000006")));
}

#[tokio::test]
async fn put_replaces_the_whole_profile_post_merges_and_the_adapter_uses_post() {
    let mock = MockServer::start().await;
    let okta = adapter(&mock);
    let who = ada(1).with_department("Research");
    let created = okta.create_user(&who, Default::default()).await.unwrap();
    let id = created.native_id().unwrap().to_string();
    // A PUT without department clears it (Okta's full-replace semantics).
    let (s, _) = raw(
        &mock,
        "PUT",
        &format!("/users/{id}"),
        Some(json!({"profile": {"login": "ada1@acme.example", "email": "ada1@acme.example", "firstName": "Ada", "lastName": "Lovelace1", "employeeNumber": "hr-1"}})),
    )
    .await;
    assert_eq!(s, 200);
    assert!(mock.user_profile(&id).unwrap().get("department").is_none());
    // The adapter's update is partial: the department set back, nothing else touched.
    let op = Operation::new("t", "okta", OperationKind::UpdateAccount, who.clone())
        .with_attribute("department", "Analytics")
        .with_attribute("title", "Engineer");
    assert!(okta.apply(&op).await.unwrap().changed());
    let p = mock.user_profile(&id).unwrap();
    assert_eq!(p["department"], "Analytics");
    assert_eq!(p["firstName"], "Ada");
    assert_eq!(p["employeeNumber"], "hr-1");
    assert_eq!(
        okta.apply(&op).await.unwrap(),
        Outcome::AlreadyInState {
            reason: NoOpReason::NoChange,
            native_id: Some(id.clone())
        }
    );
    let routes = mock.calls_by_route();
    // The one PUT is the test's own: the adapter never PUTs a user.
    assert_eq!(routes.get("PUT /users/{id}"), Some(&1), "{routes:?}");
}

#[tokio::test]
async fn delete_deactivates_first_and_memberships_survive_deactivation() {
    let mock = MockServer::start().await;
    let okta = adapter(&mock);
    let g = mock.add_group("Engineering");
    let who = ada(2);
    okta.create_user(&who, Default::default()).await.unwrap();
    okta.add_to_group(&who, "Engineering").await.unwrap();
    okta.apply(&Operation::new(
        "t",
        "okta",
        OperationKind::DisableAccount,
        who.clone(),
    ))
    .await
    .unwrap();
    assert_eq!(
        mock.user_status("ada2@acme.example").as_deref(),
        Some("DEPROVISIONED")
    );
    assert_eq!(
        mock.group_members(&g),
        vec!["ada2@acme.example".to_string()]
    );
    // Enable reactivates (no password → PROVISIONED).
    okta.apply(&Operation::new(
        "t",
        "okta",
        OperationKind::EnableAccount,
        who.clone(),
    ))
    .await
    .unwrap();
    assert_eq!(
        mock.user_status("ada2@acme.example").as_deref(),
        Some("PROVISIONED")
    );
    let del = Operation::new("t", "okta", OperationKind::DeleteAccount, who.clone());
    assert!(okta.apply(&del).await.unwrap().changed());
    assert_eq!(mock.user_status("ada2@acme.example"), None, "really gone");
    assert!(mock.group_members(&g).is_empty());
    assert_eq!(
        okta.apply(&del).await.unwrap(),
        Outcome::no_op(NoOpReason::AccountAbsent)
    );
    let routes = mock.calls_by_route();
    assert_eq!(
        routes.get("POST /users/{id}/lifecycle/deactivate"),
        Some(&2)
    );
    assert_eq!(routes.get("DELETE /users/{id}"), Some(&1));
}

#[tokio::test]
async fn app_group_is_refused_before_any_write_and_app_assignments_work() {
    let mock = MockServer::start().await;
    let okta = adapter(&mock);
    mock.add_app_group("AD-Imported");
    let app = mock.add_app("Salesforce");
    let who = ada(3);
    okta.create_user(&who, Default::default()).await.unwrap();
    let e = okta.add_to_group(&who, "AD-Imported").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(!e.is_retryable());
    assert_eq!(
        mock.calls_by_route().get("PUT /groups/{id}/users/{id}"),
        None
    );

    let ent = EntitlementRef::new(EntitlementKind::AppRole, app.clone());
    let grant = Operation::new("t", "okta", OperationKind::Grant, who.clone())
        .with_entitlement(ent.clone());
    assert!(okta.apply(&grant).await.unwrap().changed());
    assert!(matches!(
        okta.apply(&grant).await.unwrap(),
        Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyGranted,
            ..
        }
    ));
    let mine = okta
        .list_all_assignments(&AssignmentScope::Account(iga_adapter::AccountRef::of(&who)))
        .await
        .unwrap();
    assert!(mine.iter().any(|a| a.entitlement.id == app), "{mine:?}");
    let revoke =
        Operation::new("t", "okta", OperationKind::Revoke, who.clone()).with_entitlement(ent);
    assert!(okta.apply(&revoke).await.unwrap().changed());
    assert!(matches!(
        okta.apply(&revoke).await.unwrap(),
        Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyAbsent,
            ..
        }
    ));
    let missing = EntitlementRef::new(EntitlementKind::AppRole, "0oanope");
    let e = okta
        .apply(&Operation::new("t", "okta", OperationKind::Grant, who).with_entitlement(missing))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn rate_limit_429_and_exhausted_window_are_honoured() {
    let mock =
        MockServer::start_with(MockConfig::default().rate_limit(3, Duration::from_secs(2))).await;
    let okta = adapter(&mock);
    // Injected 429 with Okta's headers: temporary, wait = reset - Date.
    mock.inject(MockFault::RateLimited {
        reset_in: Duration::from_secs(1),
    });
    let e = okta.check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert!(e.is_retryable());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
    assert!(format!("{e:?}").contains("E0000047"));
    // The real bucket: 3 calls per 2 s window on /users. The pacer waits for the
    // window reset instead of running into 429s.
    let started = std::time::Instant::now();
    for _ in 0..5 {
        okta.check().await.expect("paced, never throttled");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn link_paging_walks_every_user_once() {
    let mock = MockServer::start().await;
    let okta = adapter(&mock);
    for n in 10..17 {
        okta.create_user(&ada(n), Default::default()).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(3);
    let mut pages = 0;
    loop {
        pages += 1;
        let p = okta.list_accounts(page.clone()).await.unwrap();
        assert!(p.items.len() <= 3);
        seen.extend(p.items.into_iter().map(|a| a.native_id));
        match p.next {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut dedup = seen.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), 7);
    let e = okta
        .list_accounts(PageRequest::after("garbage", 3))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    // Users without an e-mail shaped login or email are refused before any I/O.
    let before = mock.calls();
    let e = okta
        .create_user(
            &Identity::person("x").with_user_name("nomail"),
            Default::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(mock.calls(), before);
}

#[tokio::test]
async fn private_key_jwt_service_app_gets_a_bearer_token() {
    use iga_connector_okta::OktaPrivateKeyJwt;
    use iga_connector_okta::mock::MockOAuthClient;
    const KEY: &str = include_str!("fixtures/test-service-app-key.pem");
    let key = iga_adapter::Secret::new(KEY.to_string());
    let signer = OktaPrivateKeyJwt::new(
        iga_http::default_client().unwrap(),
        "http://127.0.0.1:1",
        "0oa-service",
        None,
        &key,
        &[],
    )
    .unwrap();
    let mock = MockServer::start_with(MockConfig::default().oauth_client(MockOAuthClient {
        client_id: "0oa-service".into(),
        public_key_der: signer.public_key_der(),
    }))
    .await;
    let scopes = ["okta.users.manage", "okta.groups.manage"];
    let okta = OktaAdapter::new(
        OktaConfig::new(mock.url(), "unused")
            .unwrap()
            .private_key_jwt("0oa-service", KEY.to_string(), &scopes),
    )
    .unwrap();
    okta.check().await.expect("token minted and accepted");
    okta.create_user(&ada(40), Default::default())
        .await
        .unwrap();
    assert_eq!(
        mock.calls_by_route().get("POST /oauth2/v1/token"),
        Some(&1),
        "token cached"
    );
    assert!(!format!("{okta:?}").contains("PRIVATE KEY"));
    // An unregistered client id is refused: Unauthenticated, permanent.
    let other = OktaAdapter::new(
        OktaConfig::new(mock.url(), "unused")
            .unwrap()
            .private_key_jwt("0oa-other", KEY.to_string(), &scopes),
    )
    .unwrap();
    let e = other.check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.is_retryable());
    // Missing scopes: PermissionDenied.
    let noscope = OktaAdapter::new(
        OktaConfig::new(mock.url(), "unused")
            .unwrap()
            .private_key_jwt("0oa-service", KEY.to_string(), &[]),
    )
    .unwrap();
    assert_eq!(
        noscope.check().await.unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    // A malformed key is a configuration error that does not echo the key.
    let e = OktaAdapter::new(
        OktaConfig::new(mock.url(), "unused")
            .unwrap()
            .private_key_jwt(
                "0oa-service",
                "-----BEGIN PRIVATE KEY-----\nsecretjunk\n-----END PRIVATE KEY-----",
                &scopes,
            ),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    assert!(!format!("{e:?}").contains("secretjunk"));
}
