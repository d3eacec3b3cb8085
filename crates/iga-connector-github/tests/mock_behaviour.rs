//! The GitHub mock rejects what GitHub rejects, and the adapter copes with GitHub's
//! behaviour: invitations, IdP-synced teams, repository invitations, primary and
//! secondary rate limits, conditional requests.

use std::time::{Duration, Instant};

use iga_adapter::{
    AccountRef, AssignmentScope, ErrorKind, NoOpReason, ObjectRef, Observed, Outcome,
    ProvisioningAdapter, ProvisioningAdapterExt,
};
use iga_connector_github::mock::{MockApp, MockConfig, MockServer};
use iga_connector_github::{GithubAdapter, GithubAppAuth, GithubConfig};
use iga_directive::{EntitlementKind, EntitlementRef, Identity, Operation, OperationKind};
use serde_json::Value;

const KEY: &str = include_str!("fixtures/test-app-key.pem");

fn adapter(mock: &MockServer) -> GithubAdapter {
    GithubAdapter::new(
        GithubConfig::with_api_url(mock.url(), mock.org(), mock.token().to_string()).unwrap(),
    )
    .unwrap()
}

fn dev(login: &str) -> Identity {
    Identity::person(format!("hr-{login}")).with_user_name(login)
}

async fn raw(mock: &MockServer, method: &str, path: &str, token: &str) -> (u16, Value) {
    let r = iga_http::default_client()
        .unwrap()
        .request(method.parse().unwrap(), format!("{}{path}", mock.url()))
        .bearer_auth(token)
        .json(&serde_json::json!({"role": "owner"}))
        .send()
        .await
        .expect("mock reachable");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn mock_rejects_what_github_rejects() {
    let mock = MockServer::start().await;
    mock.add_users(["ada"]);
    mock.add_idp_team("idp-eng");
    let (s, b) = raw(&mock, "GET", "/orgs/acme", "ghp_wrong").await;
    assert_eq!((s, b["message"].as_str()), (401, Some("Bad credentials")));
    let t = mock.token().to_string();
    assert_eq!(
        raw(&mock, "PUT", "/orgs/acme/memberships/nobody", &t)
            .await
            .0,
        404,
        "unknown GitHub user"
    );
    assert_eq!(
        raw(&mock, "PUT", "/orgs/acme/memberships/ada", &t).await.0,
        422,
        "invalid role"
    );
    assert_eq!(
        raw(&mock, "DELETE", "/orgs/acme/memberships/ada", &t)
            .await
            .0,
        404,
        "not a member"
    );
    assert_eq!(raw(&mock, "GET", "/orgs/other", &t).await.0, 404);
    // IdP-synchronised team: the adapter reports PermissionDenied, permanent.
    let gh = adapter(&mock);
    gh.create_user(&dev("ada"), Default::default())
        .await
        .unwrap();
    let e = gh.add_to_group(&dev("ada"), "idp-eng").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(!e.is_retryable());
    // Not a GitHub login: refused before any I/O.
    let before = mock.calls();
    let e = gh
        .create_user(
            &Identity::person("x").with_user_name("not a login"),
            Default::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(mock.calls(), before);
    // Undeclared operations (GitHub has no account disable/update).
    let e = gh
        .apply(&Operation::new(
            "t",
            "github",
            OperationKind::DisableAccount,
            dev("ada"),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn app_jwt_must_verify_and_not_outlive_ten_minutes() {
    let auth = GithubAppAuth::new(
        iga_http::default_client().unwrap(),
        "http://127.0.0.1:1",
        "4242",
        7,
        &iga_adapter::Secret::new(KEY.to_string()),
    )
    .unwrap();
    let mock = MockServer::start_with(MockConfig::default().app(MockApp {
        app_id: "4242".into(),
        installation_id: 7,
        public_key_der: auth.public_key_der(),
    }))
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let good = auth.jwt(now).unwrap();
    let (s, b) = raw(
        &mock,
        "POST",
        "/app/installations/7/access_tokens",
        good.expose(),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert!(b["token"].as_str().unwrap().starts_with("ghs_"));
    let expired = auth.jwt(now - 3600).unwrap();
    assert_eq!(
        raw(
            &mock,
            "POST",
            "/app/installations/7/access_tokens",
            expired.expose()
        )
        .await
        .0,
        401
    );
    let mut tampered = good.expose().to_string();
    tampered.pop();
    tampered.push(if good.expose().ends_with('A') {
        'B'
    } else {
        'A'
    });
    assert_eq!(
        raw(
            &mock,
            "POST",
            "/app/installations/7/access_tokens",
            &tampered
        )
        .await
        .0,
        401
    );
    assert_eq!(
        raw(
            &mock,
            "POST",
            "/app/installations/8/access_tokens",
            good.expose()
        )
        .await
        .0,
        404
    );
    // A JWT is not an API credential.
    assert_eq!(raw(&mock, "GET", "/orgs/acme", good.expose()).await.0, 401);
}

#[tokio::test]
async fn invitations_stay_pending_until_accepted() {
    let mock = MockServer::start().await;
    mock.add_users(["ada", "bob"]);
    mock.add_team("eng");
    let gh = adapter(&mock);
    let ada = dev("ada");
    assert!(
        gh.create_user(&ada, Default::default())
            .await
            .unwrap()
            .changed()
    );
    assert_eq!(mock.membership_state("ada"), Some("pending"));
    let Some(Observed::Account(acc)) = gh
        .read(&ObjectRef::Account(AccountRef::of(&ada)))
        .await
        .unwrap()
    else {
        panic!("pending membership is readable");
    };
    assert_eq!(acc.attributes["state"], "pending");
    assert!(gh.add_to_group(&ada, "eng").await.unwrap().changed());
    assert!(matches!(
        gh.add_to_group(&ada, "eng").await.unwrap(),
        Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyGranted,
            ..
        }
    ));
    let holders = gh
        .list_all_assignments(&AssignmentScope::Entitlement(EntitlementRef::group("eng")))
        .await
        .unwrap();
    assert_eq!(
        holders.len(),
        1,
        "the pending team invitation is a holder: {holders:?}"
    );
    assert!(mock.accept_invitation("ada"));
    assert_eq!(mock.membership_state("ada"), Some("active"));
    let holders = gh
        .list_all_assignments(&AssignmentScope::Entitlement(EntitlementRef::group("eng")))
        .await
        .unwrap();
    assert_eq!(holders.len(), 1, "now an active member: {holders:?}");
    let all = gh
        .list_all_assignments(&AssignmentScope::All)
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    // Leaver: removing the membership removes the team membership too.
    let del = Operation::new("t", "github", OperationKind::DeleteAccount, ada.clone());
    assert!(gh.apply(&del).await.unwrap().changed());
    assert_eq!(
        gh.apply(&del).await.unwrap(),
        Outcome::AlreadyInState {
            reason: NoOpReason::AccountAbsent,
            native_id: Some("ada".into())
        }
    );
    assert!(
        gh.list_all_assignments(&AssignmentScope::All)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn outside_collaborators_are_invited_and_members_added_directly() {
    let mock = MockServer::start_with(MockConfig::default().auto_accept(true)).await;
    mock.add_users(["ada", "carol"]);
    mock.add_repo("api");
    let gh = adapter(&mock);
    gh.create_user(&dev("ada"), Default::default())
        .await
        .unwrap();
    let repo = |id: &str| EntitlementRef::new(EntitlementKind::Generic("repository".into()), id);
    let grant = |who: &str, e: EntitlementRef| {
        Operation::new("t", "github", OperationKind::Grant, dev(who)).with_entitlement(e)
    };
    let revoke = |who: &str, e: EntitlementRef| {
        Operation::new("t", "github", OperationKind::Revoke, dev(who)).with_entitlement(e)
    };
    // Org member: direct collaborator.
    assert!(
        gh.apply(&grant("ada", repo("api:maintain")))
            .await
            .unwrap()
            .changed()
    );
    // Outside collaborator (no org membership): a repository invitation, held.
    let mock2 = MockServer::start().await;
    mock2.add_users(["carol"]);
    mock2.add_repo("api");
    let gh2 = adapter(&mock2);
    assert!(
        gh2.apply(&grant("carol", repo("api")))
            .await
            .unwrap()
            .changed()
    );
    assert!(matches!(
        gh2.apply(&grant("carol", repo("api"))).await.unwrap(),
        Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyGranted,
            ..
        }
    ));
    let holders = gh2
        .list_all_assignments(&AssignmentScope::Entitlement(repo("api")))
        .await
        .unwrap();
    assert_eq!(
        holders
            .iter()
            .map(|a| a.account_native_id.as_str())
            .collect::<Vec<_>>(),
        ["carol"]
    );
    let mine = gh2
        .list_all_assignments(&AssignmentScope::Account(AccountRef::of(&dev("carol"))))
        .await
        .unwrap();
    assert_eq!(
        mine.len(),
        1,
        "an outside collaborator's access is listed: {mine:?}"
    );
    assert!(
        gh2.apply(&revoke("carol", repo("api")))
            .await
            .unwrap()
            .changed(),
        "cancels the invitation"
    );
    assert!(
        gh2.list_all_assignments(&AssignmentScope::Entitlement(repo("api")))
            .await
            .unwrap()
            .is_empty()
    );
    let e = gh2.apply(&grant("carol", repo("nope"))).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = gh2
        .apply(&grant("carol", repo("api:owner")))
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::InvalidInput,
        "422 for an unknown permission"
    );
}

#[tokio::test]
async fn conditional_requests_use_etags_and_spare_the_primary_limit() {
    let mock = MockServer::start().await;
    mock.add_users(["ada"]);
    let gh = adapter(&mock);
    gh.create_user(&dev("ada"), Default::default())
        .await
        .unwrap();
    let who = ObjectRef::Account(AccountRef::of(&dev("ada")));
    let first = gh.read(&who).await.unwrap();
    for _ in 0..3 {
        assert_eq!(gh.read(&who).await.unwrap(), first);
    }
    assert!(mock.not_modified() >= 3, "{}", mock.not_modified());
    assert_eq!(gh.not_modified(), mock.not_modified());
}

#[tokio::test]
async fn primary_limit_is_paced_and_secondary_limit_is_a_60s_rate_limit() {
    // Primary: 3 requests per 2 s window. Writes are never conditional, so the
    // window runs dry and the pacer waits for the reset instead of failing.
    let mock =
        MockServer::start_with(MockConfig::default().primary_limit(3, Duration::from_secs(2)))
            .await;
    let names: Vec<String> = (0..4).map(|n| format!("dev{n}")).collect();
    mock.add_users(names.iter().map(String::as_str));
    let gh = adapter(&mock);
    let started = Instant::now();
    for n in &names {
        let del = Operation::new("t", "github", OperationKind::DeleteAccount, dev(n));
        gh.apply(&del).await.expect("paced, never throttled");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );

    // Secondary: 2 writes per minute.
    let mock = MockServer::start_with(MockConfig::default().writes_per_minute(2)).await;
    mock.add_users(["a1", "a2", "a3"]);
    let gh = adapter(&mock);
    for n in ["a1", "a2"] {
        let del = Operation::new("t", "github", OperationKind::DeleteAccount, dev(n));
        gh.apply(&del).await.unwrap();
    }
    let e = gh
        .apply(&Operation::new(
            "t",
            "github",
            OperationKind::DeleteAccount,
            dev("a3"),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert!(e.is_retryable());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
}
