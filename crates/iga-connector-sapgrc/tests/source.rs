//! SapGrcSource + ODataDialect against the faithful OData mock.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use iga_adapter::{DirectiveSource, ErrorKind, FulfillmentReport, PollBatch, SourceCursor};
use iga_connector_sapgrc::mock::{GrcMock, MockLine, PASSWORD, SERVICE, USER};
use iga_connector_sapgrc::{ODataDialect, SapGrcSource, SapGrcSourceConfig};
use iga_directive::{AccessDirective, Action, DirectiveId};
use serde_json::json;

fn source(mock: &GrcMock) -> (SapGrcSource, Arc<ODataDialect>) {
    let dialect = Arc::new(ODataDialect::new(mock.config()).unwrap());
    let mut cfg = SapGrcSourceConfig::new("acme").map_system("PRD_CLNT100", "sap-prd");
    cfg.overlap = Duration::from_secs(120);
    (SapGrcSource::new(cfg, dialect.clone()).unwrap(), dialect)
}

async fn drain(
    src: &SapGrcSource,
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

fn ds(bs: &[PollBatch]) -> Vec<AccessDirective> {
    bs.iter().flat_map(|b| b.directives.clone()).collect()
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

#[tokio::test]
async fn approved_lines_become_directives_with_timed_revocation() {
    let mock = GrcMock::start().await;
    let (src, _) = source(&mock);
    let req = mock.add_request(
        "ADA",
        "PARTIALLY_APPROVED",
        vec![
            MockLine::assign("PRD_CLNT100", "Z_FI_AP_CLERK"),
            MockLine::assign("PRD_CLNT100", "Z_FI_AUDITOR").valid(d(2026, 12, 1), d(2026, 12, 31)),
            MockLine::assign("PRD_CLNT100", "Z_FI_ADMIN").status("REJECTED"),
        ],
    );
    mock.add_request(
        "EVE",
        "REJECTED",
        vec![MockLine::assign("PRD_CLNT100", "Z_FI_AP_CLERK").status("REJECTED")],
    );
    let (bs, cursor) = drain(&src, None).await;
    let got = ds(&bs);
    assert_eq!(got.len(), 3, "{got:#?}");
    let clerk = &got[0];
    assert_eq!(
        (
            clerk.action,
            clerk.system.as_str(),
            clerk.identity.id.as_str()
        ),
        (Action::Grant, "sap-prd", "ADA")
    );
    assert_eq!(clerk.entitlement.as_ref().unwrap().id, "Z_FI_AP_CLERK");
    assert_eq!(clerk.identity.email.as_deref(), Some("ada@example.com"));
    assert_eq!(
        clerk.approval.as_ref().unwrap().ticket_id,
        format!("{req}/1")
    );
    assert_eq!(clerk.not_before, None);
    let grant = &got[1];
    assert_eq!(grant.action, Action::Grant);
    assert_eq!(
        grant.not_before.unwrap().to_rfc3339(),
        "2026-12-01T00:00:00+00:00"
    );
    let revoke = &got[2];
    assert_eq!(revoke.action, Action::Revoke);
    assert_eq!(
        revoke.not_before.unwrap().to_rfc3339(),
        "2027-01-01T00:00:00+00:00"
    );
    assert_eq!(revoke.approval, grant.approval);
    assert!(bs.iter().all(|b| b.rejected.is_empty()));

    // Same cursor again → same ids; stored cursor inside the overlap → nothing.
    let (again, _) = drain(&src, None).await;
    assert_eq!(
        ds(&again).iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        got.iter().map(|d| d.id.clone()).collect::<Vec<_>>()
    );
    let (later, _) = drain(&src, cursor).await;
    assert!(ds(&later).is_empty());
}

#[tokio::test]
async fn write_back_per_line_with_receipts_then_no_redetection() {
    let mock = GrcMock::start().await;
    let (src, _) = source(&mock);
    let req = mock.add_request(
        "ADA",
        "APPROVED",
        vec![
            MockLine::assign("PRD_CLNT100", "Z_A"),
            MockLine {
                action: "REMOVE".into(),
                ..MockLine::assign("PRD_CLNT100", "Z_B")
            },
        ],
    );
    let (bs, cursor) = drain(&src, None).await;
    let got = ds(&bs);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].action, Action::Revoke);
    for (i, dd) in got.iter().enumerate() {
        let rep = FulfillmentReport::Fulfilled {
            directive_id: dd.id.clone(),
            approval: dd.approval.clone(),
            receipt_ids: vec![format!("rcpt-{i}")],
        };
        src.report(&rep).await.unwrap();
        src.report(&rep).await.unwrap();
    }
    assert_eq!(mock.line_statuses(&req), vec!["PROVISIONED", "REVOKED"]);
    let results = mock.results();
    assert_eq!(results.len(), 2, "idempotent upserts: {results:#?}");
    assert!(
        results
            .iter()
            .any(|r| r["ReceiptIds"] == "rcpt-0" && r["LineId"] == "1")
    );
    assert!(
        results
            .iter()
            .any(|r| r["ReceiptIds"] == "rcpt-1" && r["Status"] == "REVOKED")
    );
    // The write-back changed UpdatedOn; the request is seen again but yields nothing.
    mock.advance(Duration::from_secs(10));
    let (after, _) = drain(&src, cursor).await;
    assert!(ds(&after).is_empty());

    src.report(&FulfillmentReport::NeedsAttention {
        directive_id: got[0].id.clone(),
        approval: got[0].approval.clone(),
        message: "sap-prd: permission denied".into(),
    })
    .await
    .unwrap();
    assert_eq!(mock.line_statuses(&req)[0], "ERROR");
    // Unknown request / line: errors naming them.
    let mut a = got[0].approval.clone().unwrap();
    a.ticket_id = "9999999999/1".into();
    let e = src
        .report(&FulfillmentReport::Fulfilled {
            directive_id: DirectiveId("x".into()),
            approval: Some(a.clone()),
            receipt_ids: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    a.ticket_id = format!("{req}/7");
    let e = src
        .report(&FulfillmentReport::Fulfilled {
            directive_id: DirectiveId("x".into()),
            approval: Some(a),
            receipt_ids: vec![],
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no line 7"), "{e}");
}

#[tokio::test]
async fn backlog_of_2000_server_paged_all_detected_once() {
    let mock = GrcMock::start().await;
    let (src, _) = source(&mock);
    for n in 0..2000 {
        if n % 250 == 0 {
            mock.advance(Duration::from_secs(1));
        }
        mock.add_request(
            &format!("U{n}"),
            "APPROVED",
            vec![MockLine::assign("PRD_CLNT100", "Z_BULK")],
        );
    }
    let (bs, cursor) = drain(&src, None).await;
    let got = ds(&bs);
    assert_eq!(got.len(), 2000);
    assert_eq!(
        got.iter()
            .map(|d| d.id.clone())
            .collect::<HashSet<_>>()
            .len(),
        2000
    );
    assert!(bs.len() >= 20);
    let (again, _) = drain(&src, cursor).await;
    assert!(ds(&again).is_empty());
}

#[tokio::test]
async fn expired_skiptoken_and_late_record_and_skew() {
    let mock = GrcMock::start().await;
    mock.set_now(chrono::Utc::now() + chrono::Duration::hours(5));
    let (src, _) = source(&mock);
    for n in 0..150 {
        mock.add_request(
            &format!("U{n}"),
            "APPROVED",
            vec![MockLine::assign("PRD_CLNT100", "Z_X")],
        );
    }
    let first = src.poll(None).await.unwrap();
    assert!(first.more);
    mock.expire_skiptokens();
    let (rest, cursor) = drain(&src, first.cursor.clone()).await;
    let mut all = first.directives.clone();
    all.extend(ds(&rest));
    assert_eq!(
        (
            all.len(),
            all.iter()
                .map(|d| d.id.clone())
                .collect::<HashSet<_>>()
                .len()
        ),
        (150, 150)
    );
    // A record that becomes visible late with an UpdatedOn 60 s below the watermark.
    let hwm = mock.now();
    mock.advance(Duration::from_secs(5));
    let late = mock.add_request(
        "LATE",
        "APPROVED",
        vec![MockLine::assign("PRD_CLNT100", "Z_X")],
    );
    mock.set_updated(&late, hwm - chrono::Duration::seconds(60));
    let (bs, _) = drain(&src, cursor).await;
    let got = ds(&bs);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].identity.id, "LATE");
}

#[tokio::test]
async fn throttling_honoured() {
    let mock = GrcMock::start().await;
    let (src, dialect) = source(&mock);
    mock.add_request(
        "ADA",
        "APPROVED",
        vec![MockLine::assign("PRD_CLNT100", "Z_A")],
    );
    mock.throttle_next(2, 1);
    let t = Instant::now();
    let (bs, _) = drain(&src, None).await;
    assert!(t.elapsed() >= Duration::from_secs(2));
    assert_eq!(ds(&bs).len(), 1);
    assert_eq!((mock.throttled(), dialect.throttled()), (2, 2));
    mock.throttle_next(1, 7200);
    let e = src.poll(None).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.retry_after()),
        (ErrorKind::RateLimited, Some(Duration::from_secs(7200)))
    );
}

#[tokio::test]
async fn bad_input_rejected_flagged_and_never_half_applied() {
    let mock = GrcMock::start().await;
    let (src, _) = source(&mock);
    let good = mock.add_request(
        "ADA",
        "APPROVED",
        vec![MockLine::assign("PRD_CLNT100", "Z_A")],
    );
    let unmapped = mock.add_request(
        "BOB",
        "APPROVED",
        vec![
            MockLine::assign("PRD_CLNT100", "Z_A"),
            MockLine::assign("QAS_CLNT200", "Z_B"),
        ],
    );
    let bad_action = mock.add_request(
        "CY",
        "APPROVED",
        vec![MockLine {
            action: "EXTEND".into(),
            ..MockLine::assign("PRD_CLNT100", "Z_A")
        }],
    );
    let bad_date = mock.add_request(
        "DI",
        "APPROVED",
        vec![MockLine::assign("PRD_CLNT100", "Z_A")],
    );
    mock.corrupt_line(&bad_date, 0, "ValidTo", json!("31.12.9999"));
    let inverted = mock.add_request(
        "EL",
        "APPROVED",
        vec![MockLine::assign("PRD_CLNT100", "Z_A").valid(d(2026, 12, 31), d(2026, 12, 1))],
    );
    let (bs, cursor) = drain(&src, None).await;
    let got = ds(&bs);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(
        got[0].approval.as_ref().unwrap().ticket_id,
        format!("{good}/1")
    );
    let rej: Vec<_> = bs.iter().flat_map(|b| b.rejected.clone()).collect();
    assert_eq!(rej.len(), 4, "{rej:#?}");
    assert!(
        rej.iter()
            .any(|r| r.location == format!("{unmapped}/2:System"))
    );
    assert!(
        rej.iter()
            .any(|r| r.location == format!("{bad_action}/1:Action"))
    );
    assert!(
        rej.iter()
            .any(|r| r.location == format!("{bad_date}/1:ValidTo"))
    );
    assert!(
        rej.iter()
            .any(|r| r.location == format!("{inverted}/1:ValidTo"))
    );
    // Every approved line of a rejected request is written back as ERROR: the good
    // line of `unmapped` is held too (never half-applied).
    assert_eq!(mock.line_statuses(&unmapped), vec!["ERROR", "ERROR"]);
    for r in [&bad_action, &bad_date, &inverted] {
        assert_eq!(mock.line_statuses(r), vec!["ERROR"]);
    }
    assert!(
        mock.results()
            .iter()
            .all(|r| r["Message"].as_str().unwrap().contains("needs attention"))
    );
    // Re-read after the write-back: nothing new, nothing half-applied.
    let (after, _) = drain(&src, cursor).await;
    assert!(ds(&after).is_empty());
}

#[tokio::test]
async fn mock_rejects_what_gateway_rejects() {
    let mock = GrcMock::start().await;
    mock.add_request(
        "ADA",
        "APPROVED",
        vec![MockLine::assign("PRD_CLNT100", "Z_A")],
    );
    let http = iga_http::default_client().unwrap();
    let base = mock.service_url();
    let get = |q: &str| {
        http.get(format!("{base}/AccessRequestSet?{q}"))
            .basic_auth(USER, Some(PASSWORD))
            .send()
    };
    assert_eq!(
        http.get(format!("{base}/AccessRequestSet"))
            .basic_auth(USER, Some("nope"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    for q in [
        "$filter=Status%20eq%20APPROVED",
        "$filter=UpdatedOn%20ge%20datetime'22.11.2026'",
        "$filter=Nope%20eq%20'x'",
        "$top=5000",
        "$skip=-1",
        "$orderby=Role",
        "$expand=Approvers",
        "$search=ada",
        "$skiptoken=bm9wZQ",
    ] {
        let r = get(q).await.unwrap();
        assert_eq!(r.status(), 400, "{q}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body.pointer("/error/message/value").is_some(),
            "{q}: {body}"
        );
    }
    // Unexpanded lines are deferred, and the client reports that, not a panic.
    let r: serde_json::Value = get("$format=json").await.unwrap().json().await.unwrap();
    assert!(r.pointer("/d/results/0/Lines/__deferred").is_some());
    // Writes need the CSRF token.
    let r = http
        .post(format!("{base}/ProvisioningResultSet"))
        .basic_auth(USER, Some(PASSWORD))
        .json(&json!({"ReqNo": "9000000001", "LineId": "1", "Status": "PROVISIONED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-csrf-token"], "Required");
    let _ = SERVICE;
}

#[tokio::test]
async fn pending_request_is_detected_once_approved() {
    let mock = GrcMock::start().await;
    let (src, _) = source(&mock);
    let req = mock.add_request(
        "ADA",
        "PENDING",
        vec![MockLine::assign("PRD_CLNT100", "Z_A").status("PENDING")],
    );
    let (bs, cursor) = drain(&src, None).await;
    assert!(ds(&bs).is_empty());
    mock.advance(Duration::from_secs(30));
    mock.approve(&req);
    let (bs, _) = drain(&src, cursor).await;
    assert_eq!(ds(&bs).len(), 1);
}
