//! JiraSource against the faithful mock: detection, cursor, dedupe, paging,
//! throttling, bad input, write-back, webhooks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use iga_adapter::{
    DirectiveSink, DirectiveSource, FulfillmentReport, PollBatch, Result, SourceCursor,
};
use iga_connector_jira::mock::{JiraMock, MockRequest};
use iga_connector_jira::{FieldMapping, JiraSource, JiraSourceConfig};
use iga_directive::{AccessDirective, Action, DirectiveId};
use iga_http::webhook::{WebhookSecret, hmac_sha256};
use serde_json::json;

fn mapping() -> FieldMapping {
    FieldMapping::new("customfield_10010", "customfield_10011")
        .action_field("customfield_10012")
        .system_field("customfield_10013")
}

fn source(mock: &JiraMock) -> JiraSource {
    let mut cfg = JiraSourceConfig::new("acme", "project = ACC AND status = Approved", mapping());
    cfg.jql_timezone = chrono::FixedOffset::east_opt(3600).unwrap();
    cfg.overlap = Duration::from_secs(120);
    JiraSource::new(mock.connection(), cfg).unwrap()
}

fn request(user: &str, group: &str) -> MockRequest {
    MockRequest::approved(json!({
        "customfield_10010": {"accountId": format!("acc-{user}"), "emailAddress": format!("{user}@example.com")},
        "customfield_10011": [{"value": group}],
        "customfield_10012": {"value": "Grant"},
        "customfield_10013": "ldap",
    }))
}

/// Poll until `more` is false; returns every batch.
async fn drain(
    src: &JiraSource,
    mut cursor: Option<SourceCursor>,
) -> (Vec<PollBatch>, Option<SourceCursor>) {
    let mut out = Vec::new();
    for _ in 0..1000 {
        let b = src.poll(cursor.as_ref()).await.unwrap();
        cursor = b.cursor.clone().or(cursor);
        let more = b.more;
        out.push(b);
        if !more {
            return (out, cursor);
        }
    }
    panic!("source never finished");
}

fn directives(bs: &[PollBatch]) -> Vec<AccessDirective> {
    bs.iter().flat_map(|b| b.directives.clone()).collect()
}

#[tokio::test]
async fn approval_becomes_one_directive_and_is_never_repeated() {
    let mock = JiraMock::start().await;
    let src = source(&mock);
    let key = mock.add_request(request("ada", "cn=finance"));
    let declined = mock.add_request(request("eve", "cn=finance").declined());
    let _ = declined;

    let (bs, cursor) = drain(&src, None).await;
    let ds = directives(&bs);
    assert_eq!(ds.len(), 1, "{ds:#?}");
    let d = &ds[0];
    assert_eq!(d.identity.id, "ada@example.com");
    assert_eq!(d.action, Action::Grant);
    assert_eq!(d.system, "ldap");
    assert_eq!(d.tenant, "acme");
    assert_eq!(d.entitlement.as_ref().unwrap().id, "cn=finance");
    let a = d.approval.as_ref().unwrap();
    assert_eq!(
        (a.system.as_str(), a.ticket_id.as_str()),
        ("jira", key.as_str())
    );
    assert_eq!(a.approver.as_deref(), Some("bo.manager@example.com"));
    assert!(a.url.as_ref().unwrap().ends_with(&format!("/browse/{key}")));
    assert!(bs.iter().all(|b| b.rejected.is_empty()));

    // Same cursor again (crash before commit): same directives, same ids.
    let (again, _) = drain(&src, None).await;
    assert_eq!(directives(&again)[0].id, d.id);

    // Restart with the stored cursor, the issue still inside the overlap: nothing new.
    let (later, cursor2) = drain(&src, cursor.clone()).await;
    assert!(
        directives(&later).is_empty(),
        "overlap re-read must not duplicate"
    );

    // A touch (new update time) re-detects the approval with the same derived id.
    mock.advance(Duration::from_secs(600));
    mock.set_field(&key, "summary", json!("Access request (edited)"));
    let (touched, _) = drain(&src, cursor2).await;
    let t = directives(&touched);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].id, d.id, "re-detection yields the same directive id");
}

#[tokio::test]
async fn late_indexed_record_inside_overlap_is_found_despite_skew() {
    let mock = JiraMock::start().await;
    // The Jira clock is 3 hours behind ours: nothing depends on our clock.
    mock.set_now(chrono::Utc::now() - chrono::Duration::hours(3));
    let src = source(&mock);
    mock.add_request(request("ada", "cn=a"));
    let (_, cursor) = drain(&src, None).await;
    mock.advance(Duration::from_secs(30));
    let hwm = mock.now();
    mock.add_request(request("bob", "cn=b"));
    let (bs, cursor) = drain(&src, cursor).await;
    assert_eq!(directives(&bs).len(), 1);
    // A record committed 90 s before the watermark becomes visible only now.
    let late =
        mock.add_request(request("cy", "cn=c").updated_at(hwm - chrono::Duration::seconds(90)));
    let (bs, _) = drain(&src, cursor).await;
    let ds = directives(&bs);
    assert_eq!(ds.len(), 1, "{ds:#?}");
    assert_eq!(ds[0].approval.as_ref().unwrap().ticket_id, late);
}

#[tokio::test]
async fn backlog_of_2000_paged_all_detected_once() {
    let mock = JiraMock::start().await;
    let src = source(&mock);
    for n in 0..2000 {
        if n % 100 == 0 {
            mock.advance(Duration::from_secs(1));
        }
        mock.add_request(request(&format!("u{n}"), "cn=bulk"));
    }
    let (bs, cursor) = drain(&src, None).await;
    let ds = directives(&bs);
    assert_eq!(ds.len(), 2000);
    let ids: std::collections::HashSet<_> = ds.iter().map(|d| d.id.clone()).collect();
    assert_eq!(ids.len(), 2000, "no duplicates");
    assert!(bs.len() >= 20, "paged: {} polls", bs.len());
    assert!(bs[..bs.len() - 1].iter().all(|b| b.more));
    let (again, _) = drain(&src, cursor).await;
    assert!(directives(&again).is_empty());
}

#[tokio::test]
async fn expired_page_token_restarts_without_duplicates() {
    let mock = JiraMock::start().await;
    let src = source(&mock);
    for n in 0..150 {
        mock.add_request(request(&format!("u{n}"), "cn=x"));
    }
    let first = src.poll(None).await.unwrap();
    assert!(first.more);
    assert_eq!(first.directives.len(), 100);
    mock.expire_page_tokens();
    let (rest, _) = drain(&src, first.cursor.clone()).await;
    let mut all = first.directives.clone();
    all.extend(directives(&rest));
    let ids: std::collections::HashSet<_> = all.iter().map(|d| d.id.clone()).collect();
    assert_eq!((all.len(), ids.len()), (150, 150));
}

#[tokio::test]
async fn throttling_waits_retry_after() {
    let mock = JiraMock::start().await;
    let src = source(&mock);
    mock.add_request(request("ada", "cn=a"));
    mock.throttle_next(2, 1);
    let started = Instant::now();
    let (bs, _) = drain(&src, None).await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(directives(&bs).len(), 1);
    assert_eq!(mock.throttled(), 2);
    assert_eq!(src.throttled(), 2);
}

#[tokio::test]
async fn long_retry_after_is_a_temporary_error_not_a_wait() {
    let mock = JiraMock::start().await;
    let src = source(&mock);
    mock.add_request(request("ada", "cn=a"));
    mock.throttle_next(1, 3600);
    let e = src.poll(None).await.unwrap_err();
    assert_eq!(e.kind(), iga_adapter::ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(3600)));
}

#[tokio::test]
async fn bad_inputs_are_rejected_and_flagged_never_half_applied() {
    let mock = JiraMock::start().await;
    let src = source(&mock);
    let good = mock.add_request(request("ada", "cn=a"));
    let unmapped = mock.add_request(MockRequest::approved(json!({
        "customfield_10010": {"emailAddress": "bob@example.com"},
        "customfield_10011": [{"value": "cn=a"}, {"value": "cn=b"}],
        "customfield_10012": {"value": "Extend"},
        "customfield_10013": "ldap",
    })));
    let missing = mock.add_request(MockRequest::approved(json!({
        "customfield_10011": [{"value": "cn=a"}],
        "customfield_10012": {"value": "Grant"},
        "customfield_10013": "ldap",
    })));
    let mut not_sd = request("cy", "cn=a");
    not_sd.decision = None;
    let unknown = mock.add_request(not_sd);

    let (bs, cursor) = drain(&src, None).await;
    let ds = directives(&bs);
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].approval.as_ref().unwrap().ticket_id, good);
    let rejected: Vec<_> = bs.iter().flat_map(|b| b.rejected.clone()).collect();
    assert_eq!(rejected.len(), 3, "{rejected:#?}");
    assert!(
        rejected
            .iter()
            .any(|r| r.location == format!("{unmapped}:customfield_10012")
                && r.reason.contains("'Extend'"))
    );
    assert!(
        rejected
            .iter()
            .any(|r| r.location == format!("{missing}:customfield_10010"))
    );
    assert!(
        rejected
            .iter()
            .any(|r| r.location == unknown && r.reason.contains("not a service-desk request"))
    );
    for k in [&unmapped, &missing, &unknown] {
        let c = mock.comments(k);
        assert_eq!(c.len(), 1, "{k}: {c:?}");
        assert!(c[0].contains("needs attention"));
    }
    // Re-polling the same window flags nothing twice.
    let _ = drain(&src, None).await;
    let _ = drain(&src, cursor).await;
    assert_eq!(mock.comments(&unmapped).len(), 1);
}

#[tokio::test]
async fn fulfilment_write_back_comments_receipts_and_transitions_once() {
    let mock = JiraMock::start().await;
    let src = source(&mock);
    let key = mock.add_request(MockRequest::approved(json!({
        "customfield_10010": {"emailAddress": "ada@example.com"},
        "customfield_10011": [{"value": "cn=a"}, {"value": "cn=b"}],
        "customfield_10012": {"value": "Grant"},
        "customfield_10013": "ldap",
    })));
    let (bs, _) = drain(&src, None).await;
    let ds = directives(&bs);
    assert_eq!(ds.len(), 2);
    let rep = |d: &AccessDirective, r: &str| FulfillmentReport::Fulfilled {
        directive_id: d.id.clone(),
        approval: d.approval.clone(),
        receipt_ids: vec![r.to_string()],
    };
    src.report(&rep(&ds[0], "rcpt-1")).await.unwrap();
    assert_eq!(
        mock.status(&key).0,
        "Approved",
        "not done until every directive is"
    );
    src.report(&rep(&ds[0], "rcpt-1")).await.unwrap();
    assert_eq!(mock.comments(&key).len(), 1, "report is idempotent");
    src.report(&rep(&ds[1], "rcpt-2")).await.unwrap();
    src.report(&rep(&ds[1], "rcpt-2")).await.unwrap();
    let comments = mock.comments(&key);
    assert_eq!(comments.len(), 2, "{comments:?}");
    assert!(comments[0].contains("rcpt-1") && comments[0].contains("cn=a"));
    assert!(comments[1].contains("rcpt-2"));
    assert_eq!(mock.status(&key), ("Done".into(), Some("Done".into())));

    src.report(&FulfillmentReport::NeedsAttention {
        directive_id: DirectiveId("x".into()),
        approval: ds[0].approval.clone(),
        message: "ldap: permission denied".into(),
    })
    .await
    .unwrap();
    assert!(
        mock.comments(&key)
            .last()
            .unwrap()
            .contains("permission denied")
    );
}

#[derive(Default)]
struct Sink {
    got: Mutex<Vec<AccessDirective>>,
    fail: Mutex<bool>,
}

#[async_trait]
impl DirectiveSink for Sink {
    async fn accept(
        &self,
        _s: &str,
        ds: Vec<AccessDirective>,
        _c: Option<SourceCursor>,
    ) -> Result<()> {
        if *self.fail.lock().unwrap() {
            return Err(iga_adapter::Error::new(
                iga_adapter::ErrorKind::Unavailable,
                "store down",
            ));
        }
        self.got.lock().unwrap().extend(ds);
        Ok(())
    }
}

#[tokio::test]
async fn webhook_signed_stored_before_ok_duplicates_ignored() {
    let mock = JiraMock::start().await;
    let src = source(&mock);
    let sink = Arc::new(Sink::default());
    let verifier =
        JiraSource::webhook_verifier(vec![WebhookSecret::new("k1", "whsecret")]).unwrap();
    let app = src.webhook_router(verifier, sink.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind webhook port");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("webhook server") });
    let url = format!("http://{addr}/");
    let http = iga_http::default_client().unwrap();
    let key = mock.add_request(request("ada", "cn=a"));
    let body = mock.webhook_event(&key).to_string();
    let sig = |b: &str, secret: &str| {
        format!(
            "sha256={}",
            hex::encode(hmac_sha256(secret.as_bytes(), b.as_bytes()))
        )
    };
    let send = |b: String, s: String, id: &'static str| {
        let http = http.clone();
        let url = url.clone();
        async move {
            http.post(&url)
                .header("x-hub-signature", s)
                .header("x-atlassian-webhook-identifier", id)
                .body(b)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Bad signature: 401, nothing stored.
    assert_eq!(send(body.clone(), sig(&body, "wrong"), "d1").await, 401);
    assert!(sink.got.lock().unwrap().is_empty());
    // Store down: 503 so Jira retries; nothing marked as accepted.
    *sink.fail.lock().unwrap() = true;
    assert_eq!(send(body.clone(), sig(&body, "whsecret"), "d1").await, 503);
    *sink.fail.lock().unwrap() = false;
    assert_eq!(send(body.clone(), sig(&body, "whsecret"), "d1").await, 200);
    assert_eq!(sink.got.lock().unwrap().len(), 1);
    // Same delivery again: ignored.
    assert_eq!(send(body.clone(), sig(&body, "whsecret"), "d1").await, 200);
    assert_eq!(sink.got.lock().unwrap().len(), 1);
    // Malformed but signed: 400.
    let junk = "{\"webhookEvent\":1}".to_string();
    assert_eq!(send(junk.clone(), sig(&junk, "whsecret"), "d2").await, 400);
    // Signed but without a delivery id: 400, nothing stored.
    let r = http
        .post(&url)
        .header("x-hub-signature", sig(&body, "whsecret"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(sink.got.lock().unwrap().len(), 1);
    // Webhook + poll both: the poll yields the same directive id (the store dedupes).
    let (bs, _) = drain(&src, None).await;
    let polled = directives(&bs);
    assert_eq!(polled.len(), 1);
    assert_eq!(polled[0].id, sink.got.lock().unwrap()[0].id);
}

#[tokio::test]
async fn pending_request_is_detected_once_approved() {
    let mock = JiraMock::start().await;
    let src = source(&mock);
    let mut r = request("ada", "cn=a").pending();
    r.status = "Approved".into(); // even if the workflow status says so
    let key = mock.add_request(r);
    let (bs, cursor) = drain(&src, None).await;
    assert!(directives(&bs).is_empty(), "pending: nothing yet");
    mock.advance(Duration::from_secs(30));
    mock.approve(&key);
    let (bs, _) = drain(&src, cursor).await;
    let ds = directives(&bs);
    assert_eq!(ds.len(), 1);
    assert_eq!(
        ds[0].approval.as_ref().unwrap().decided_at,
        Some(mock.now())
    );
}
