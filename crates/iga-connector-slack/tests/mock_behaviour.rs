//! The Slack mock rejects what Slack rejects, and the adapter applies Slack's dialect:
//! deactivation instead of deletion, per-method write limits with `Retry-After`.

use std::time::Duration;

use iga_adapter::{ErrorKind, ProvisioningAdapter, ProvisioningAdapterExt};
use iga_connector_slack::mock::{MockConfig, MockServer, normalise_user_name};
use iga_connector_slack::{SlackAdapter, SlackConfig};
use iga_directive::{Identity, Operation, OperationKind};
use serde_json::{Value, json};

async fn raw(mock: &MockServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut rb = iga_http::default_client()
        .unwrap()
        .request(method.parse().unwrap(), format!("{}{path}", mock.url()))
        .header("authorization", format!("Bearer {}", mock.token()));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("mock reachable");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn connect(mock: &MockServer) -> SlackAdapter {
    connect_paced(mock, None).await
}

async fn connect_paced(mock: &MockServer, pacing: Option<f64>) -> SlackAdapter {
    SlackAdapter::connect(
        SlackConfig::new(mock.token().to_string())
            .with_base_url(mock.url())
            .with_write_pacing(pacing),
    )
    .await
    .expect("connect")
}

#[tokio::test]
async fn mock_rejects_what_slack_rejects() {
    let mock = MockServer::start().await;
    let user = |name: &str, email: Option<&str>| {
        let mut u =
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name});
        if let Some(e) = email {
            u["emails"] = json!([{"value": e, "primary": true}]);
        }
        u
    };
    let (s, b) = raw(
        &mock,
        "POST",
        "/Users",
        Some(user("a-very-long-handle-over-21", Some("l@x.io"))),
    )
    .await;
    assert_eq!((s, b["scimType"].as_str()), (400, Some("invalidValue")));
    let (s, b) = raw(&mock, "POST", "/Users", Some(user("nomail", None))).await;
    assert_eq!((s, b["scimType"].as_str()), (400, Some("invalidValue")));
    let (s, created) = raw(
        &mock,
        "POST",
        "/Users",
        Some(user("Ada.Lovelace", Some("ada@x.io"))),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(
        created["userName"], "ada.lovelace",
        "normalised to a handle"
    );
    let (s, b) = raw(
        &mock,
        "POST",
        "/Users",
        Some(user("ADA.lovelace", Some("other@x.io"))),
    )
    .await;
    assert_eq!((s, b["scimType"].as_str()), (409, Some("uniqueness")));
    let (s, _) = raw(&mock, "POST", "/Bulk", Some(json!({"Operations": []}))).await;
    assert_eq!(s, 501, "Slack has no /Bulk");
    let (s, b) = raw(&mock, "GET", "/Users?filter=title%20co%20%22x%22", None).await;
    assert_eq!((s, b["scimType"].as_str()), (400, Some("invalidFilter")));
    // DELETE only deactivates.
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        raw(&mock, "DELETE", &format!("/Users/{id}"), None).await.0,
        204
    );
    let (s, u) = raw(&mock, "GET", &format!("/Users/{id}"), None).await;
    assert_eq!((s, &u["active"]), (200, &json!(false)));
    let (s, _) = raw(
        &mock,
        "PATCH",
        "/Groups/S404",
        Some(json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]})),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(normalise_user_name("Ada Lovelace@X"), "ada_lovelace_x");
}

#[tokio::test]
async fn delete_is_undeclared_and_leavers_are_deactivated() {
    let mock = MockServer::start().await;
    let slack = connect(&mock).await;
    let ada = Identity::person("hr-1")
        .with_user_name("ada")
        .with_email("ada@x.io")
        .with_name("Ada", "Lovelace");
    slack.create_user(&ada, Default::default()).await.unwrap();
    let before = mock.calls();
    let e = slack
        .apply(&Operation::new(
            "t",
            "slack",
            OperationKind::DeleteAccount,
            ada.clone(),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.to_string().contains("disable_account"), "{e}");
    assert_eq!(mock.calls(), before, "no I/O for an undeclared operation");
    let out = slack
        .apply(&Operation::new(
            "t",
            "slack",
            OperationKind::DisableAccount,
            ada.clone(),
        ))
        .await
        .unwrap();
    assert!(out.changed());
    assert_eq!(mock.user("ada").unwrap()["active"], json!(false));
    // Wrong token: Unauthenticated, permanent.
    let e = SlackAdapter::connect(SlackConfig::new("xoxp-wrong").with_base_url(mock.url()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn per_method_write_limits_answer_429_with_retry_after() {
    // A tenth of Slack's limits: user creation has a burst of 2.
    let mock = MockServer::start_with(MockConfig::default().rate_scale(0.1)).await;
    let slack = connect(&mock).await;
    let mut errors = Vec::new();
    for n in 0..4 {
        let who = Identity::person(format!("hr-{n}"))
            .with_user_name(format!("user{n}"))
            .with_email(format!("user{n}@x.io"))
            .with_name("U", format!("{n}"));
        if let Err(e) = slack.create_user(&who, Default::default()).await {
            errors.push(e);
        }
    }
    assert!(!errors.is_empty(), "the create-user bucket must run dry");
    assert!(mock.throttled() > 0);
    for e in &errors {
        assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
        assert!(e.is_retryable());
        let wait = e.retry_after().expect("Retry-After honoured");
        assert!(
            wait >= Duration::from_secs(1) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
    }
}

#[tokio::test]
async fn client_side_pacing_stays_under_the_per_method_limits() {
    // Half of Slack's limits on both sides: user creation bursts 10, then 1.5/s.
    let mock = MockServer::start_with(MockConfig::default().rate_scale(0.5)).await;
    let slack = connect_paced(&mock, Some(0.5)).await;
    let started = std::time::Instant::now();
    for n in 0..12 {
        let who = Identity::person(format!("hr-{n}"))
            .with_user_name(format!("paced{n}"))
            .with_email(format!("paced{n}@x.io"))
            .with_name("P", format!("{n}"));
        slack
            .create_user(&who, Default::default())
            .await
            .expect("paced, never throttled");
    }
    assert_eq!(mock.throttled(), 0);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "two creates beyond the burst wait ~0.67 s each: {:?}",
        started.elapsed()
    );
}
