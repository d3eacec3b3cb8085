//! JiraTicketAdapter against the mock: idempotent create, Pending while open,
//! Applied when done, permanent error when won't-do; mock rejections.

use iga_adapter::{ErrorKind, Outcome, ProvisioningAdapter, RetryStatus};
use iga_connector_jira::mock::JiraMock;
use iga_connector_jira::{
    JiraAuth, JiraConnection, JiraTicketAdapter, TicketConfig, correlation_label,
};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};
use serde_json::json;

fn op(id: &str, kind: OperationKind) -> Operation {
    Operation::new(
        "acme",
        "mainframe",
        kind,
        Identity::person("ada@example.com"),
    )
    .with_entitlement(EntitlementRef::group("RACF-FIN"))
    .with_id(id)
}

#[tokio::test]
async fn ticket_lifecycle() {
    let mock = JiraMock::start().await;
    let a =
        JiraTicketAdapter::new(mock.connection(), TicketConfig::new("mainframe", "OPS")).unwrap();
    a.check().await.unwrap();
    assert!(a.capabilities().asynchronous);
    let grant = op("op-1", OperationKind::Grant);
    let Outcome::Pending { external_ref } = a.apply(&grant).await.unwrap() else {
        panic!("pending expected")
    };
    let (summary, text) = mock.issue_text(&external_ref);
    assert!(
        summary.contains("grant") && summary.contains("RACF-FIN"),
        "{summary}"
    );
    assert!(
        text.contains("ada@example.com") && text.contains("op-1"),
        "{text}"
    );
    // Re-applied while open: same ticket, no second one.
    assert_eq!(
        a.apply(&grant).await.unwrap(),
        Outcome::Pending {
            external_ref: external_ref.clone()
        }
    );
    assert_eq!(
        mock.issues_with_label(&correlation_label(&grant)),
        vec![external_ref.clone()]
    );
    mock.resolve(&external_ref, "Done", "Done");
    assert!(matches!(
        a.apply(&grant).await.unwrap(),
        Outcome::Applied { .. }
    ));

    let revoke = op("op-2", OperationKind::Revoke);
    let Outcome::Pending { external_ref: k2 } = a.apply(&revoke).await.unwrap() else {
        panic!()
    };
    assert_ne!(k2, external_ref);
    mock.resolve(&k2, "Won't Do", "Won't Do");
    let e = a.apply(&revoke).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert_eq!(e.retry(), RetryStatus::Permanent);
    assert!(e.to_string().contains(&k2), "{e}");

    // Undeclared operation: Unsupported before any I/O.
    let before = mock.requests();
    let e = a
        .apply(&op("op-3", OperationKind::DeleteAccount))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(mock.requests(), before);
}

#[tokio::test]
async fn mock_rejects_what_jira_rejects() {
    let mock = JiraMock::start().await;
    let http = iga_http::default_client().unwrap();
    let url = |p: &str| format!("{}{p}", mock.base_url());
    let auth = ("provisioning@example.com", Some("mock-api-token"));
    // Bad credentials.
    let r = http
        .post(url("/rest/api/3/search/jql"))
        .basic_auth("x", Some("y"))
        .json(&json!({"jql": "project = ACC"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Malformed JQL, unknown field, bad date literal.
    for (jql, needle) in [
        ("project = ACC AND", "Expecting a field name"),
        ("nosuchfield = 1", "does not exist"),
        ("updated >= \"22/11/2026\"", "is invalid"),
        ("project = ACC ORDER BY summary", "Not able to sort"),
    ] {
        let r = http
            .post(url("/rest/api/3/search/jql"))
            .basic_auth(auth.0, auth.1)
            .json(&json!({"jql": jql}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{jql}");
        let body = r.text().await.unwrap();
        assert!(body.contains(needle), "{jql}: {body}");
    }
    // Page size over the limit; a token from another query.
    let r = http
        .post(url("/rest/api/3/search/jql"))
        .basic_auth(auth.0, auth.1)
        .json(&json!({"jql": "project = ACC", "maxResults": 5001}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .post(url("/rest/api/3/search/jql"))
        .basic_auth(auth.0, auth.1)
        .json(&json!({"jql": "project = ACC", "nextPageToken": "bm9wZQ"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Legacy search is gone.
    let r = http
        .get(url("/rest/api/3/search?jql=project%3DACC"))
        .basic_auth(auth.0, auth.1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    // Plain-string comment and description are not ADF.
    let r = http.post(url("/rest/api/3/issue")).basic_auth(auth.0, auth.1)
        .json(&json!({"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "x", "description": "plain"}}))
        .send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = http.post(url("/rest/api/3/issue")).basic_auth(auth.0, auth.1)
        .json(&json!({"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "x", "labels": ["has space"]}}))
        .send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = http.post(url("/rest/api/3/issue")).basic_auth(auth.0, auth.1)
        .json(&json!({"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "ok"}}))
        .send().await.unwrap();
    assert_eq!(r.status(), 201);
    let key = r.json::<serde_json::Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .post(url(&format!("/rest/api/3/issue/{key}/comment")))
        .basic_auth(auth.0, auth.1)
        .json(&json!({"body": "Provisioned"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Invalid transition id.
    let r = http
        .post(url(&format!("/rest/api/3/issue/{key}/transitions")))
        .basic_auth(auth.0, auth.1)
        .json(&json!({"transition": {"id": "999"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Approvals paging limits.
    let r = http
        .get(url(&format!(
            "/rest/servicedeskapi/request/{key}/approval?limit=500"
        )))
        .basic_auth(auth.0, auth.1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn wrong_credentials_are_unauthenticated_and_never_leak() {
    let mock = JiraMock::start().await;
    let conn = JiraConnection::new(
        &mock.base_url(),
        JiraAuth::Basic {
            email: "provisioning@example.com".into(),
            api_token: "canary-s3cret-token".into(),
        },
    )
    .unwrap();
    let a = JiraTicketAdapter::new(conn, TicketConfig::new("mainframe", "OPS")).unwrap();
    let e = a.check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    for text in [
        e.to_string(),
        format!("{e:?}"),
        format!("{a:?}"),
        a.to_string(),
    ] {
        assert!(!text.contains("canary-s3cret-token"), "{text}");
    }
}
