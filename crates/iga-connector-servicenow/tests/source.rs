//! ServiceNow source against the mock Table API: detection, de-duplication across
//! overlap/restart/skew, paging, rejections, write-back, throttling, bad input.

use std::time::{Duration, Instant};

use iga_adapter::{DirectiveSource, ErrorKind, FulfillmentReport, SourceCursor};
use iga_connector_servicenow::mock::{MockRequest, MockServiceNow};
use iga_connector_servicenow::{
    CatalogMapping, ServiceNowAuth, ServiceNowConfig, ServiceNowSource, parse_glide,
};
use iga_directive::{AccessDirective, Action, DirectiveId, EntitlementKind};

struct Env {
    sn: MockServiceNow,
    item: String,
    alice: String,
    boss: String,
}

async fn env() -> Env {
    let sn = MockServiceNow::start().await;
    let alice = sn.add_user("alice", "alice@example.com");
    let boss = sn.add_user("bob.manager", "bob@example.com");
    let item = sn.add_catalog_item("Entra group access");
    Env {
        sn,
        item,
        alice,
        boss,
    }
}

fn config(sn: &MockServiceNow) -> ServiceNowConfig {
    let mut cfg = ServiceNowConfig::new(
        sn.url(),
        ServiceNowAuth::Basic {
            username: sn.auth().username.clone(),
            password: sn.auth().password.clone().into(),
        },
    );
    cfg.catalog.push(CatalogMapping::group_from_variable(
        "Entra group access",
        "entra",
        "group",
    ));
    cfg.write_back.escalated_state = Some("2".into());
    cfg
}

fn source(sn: &MockServiceNow) -> ServiceNowSource {
    ServiceNowSource::new(config(sn)).expect("source")
}

impl Env {
    fn request(&self, group: &str) -> MockRequest {
        self.sn
            .create_request(&self.item, &self.alice, &self.boss, &[("group", group)])
    }
}

/// Poll until `more` is false, carrying the cursor like the orchestrator does.
async fn drain(
    s: &ServiceNowSource,
    cursor: &mut Option<SourceCursor>,
) -> (Vec<AccessDirective>, Vec<iga_adapter::RejectedInput>) {
    let mut ds = Vec::new();
    let mut rej = Vec::new();
    loop {
        let b = s.poll(cursor.as_ref()).await.expect("poll");
        ds.extend(b.directives);
        rej.extend(b.rejected);
        if b.cursor.is_some() {
            *cursor = b.cursor;
        }
        if !b.more {
            return (ds, rej);
        }
    }
}

#[tokio::test]
async fn an_approval_becomes_exactly_one_directive() {
    let e = env().await;
    let s = source(&e.sn);
    let req = e.request("Finance-Readers");
    let mut cursor = None;
    let (ds, rej) = drain(&s, &mut cursor).await;
    assert!(ds.is_empty() && rej.is_empty(), "not approved yet: {ds:?}");

    e.sn.approve(&req.number);
    let (ds, rej) = drain(&s, &mut cursor).await;
    assert!(rej.is_empty(), "{rej:?}");
    assert_eq!(ds.len(), 1);
    let d = &ds[0];
    assert_eq!(d.system, "entra");
    assert_eq!(d.action, Action::Grant);
    assert_eq!(d.identity.id, "alice");
    let ent = d.entitlement.as_ref().unwrap();
    assert_eq!(
        (ent.kind.clone(), ent.id.as_str()),
        (EntitlementKind::Group, "Finance-Readers")
    );
    let a = d.approval.as_ref().unwrap();
    assert_eq!(a.system, "servicenow");
    assert_eq!(a.ticket_id, req.number);
    assert_eq!(a.approver.as_deref(), Some("bob.manager"));
    let ritm = e.sn.record("sc_req_item", &req.number).unwrap();
    let set = parse_glide(ritm["approval_set"].as_str().unwrap()).unwrap();
    assert_eq!(a.decided_at, Some(set));
    assert_eq!(d.source.key(), format!("request:servicenow:{}", req.number));

    // the overlap window re-reads it: no duplicate
    let (again, _) = drain(&s, &mut cursor).await;
    assert!(again.is_empty(), "{again:?}");
    // a restart with the stored cursor: no duplicate
    let restarted = source(&e.sn);
    let (again, _) = drain(&restarted, &mut cursor.clone()).await;
    assert!(again.is_empty(), "{again:?}");
    // without a cursor it is re-detected with the same id (the store ignores it)
    let (fresh, _) = drain(&restarted, &mut None).await;
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0].id, d.id);
}

#[tokio::test]
async fn rejected_requests_yield_nothing() {
    let e = env().await;
    let s = source(&e.sn);
    let req = e.request("Finance-Readers");
    e.sn.decide(&req.number, false, 0);
    let (ds, rej) = drain(&s, &mut None).await;
    assert!(ds.is_empty(), "{ds:?}");
    assert!(rej.is_empty(), "{rej:?}");
}

#[tokio::test]
async fn late_commits_and_clock_skew_are_caught_once() {
    let e = env().await;
    e.sn.set_skew(-3 * 3600); // the instance runs three hours behind us
    let s = source(&e.sn);
    let first = e.request("G1");
    let late = e.request("G2");
    e.sn.approve(&first.number);
    let mut cursor = None;
    let (ds, _) = drain(&s, &mut cursor).await;
    assert_eq!(ds.len(), 1);
    // committed now but stamped 60 s earlier than the watermark: inside the overlap
    e.sn.decide(&late.number, true, 60);
    // and the instance clock steps back 30 s
    e.sn.set_skew(-3 * 3600 - 30);
    let third = e.request("G3");
    e.sn.approve(&third.number);
    let (ds, _) = drain(&s, &mut cursor).await;
    let tickets: Vec<&str> = ds
        .iter()
        .map(|d| d.approval.as_ref().unwrap().ticket_id.as_str())
        .collect();
    assert_eq!(ds.len(), 2, "{tickets:?}");
    assert!(tickets.contains(&late.number.as_str()));
    assert!(tickets.contains(&third.number.as_str()));
    let (ds, _) = drain(&s, &mut cursor).await;
    assert!(ds.is_empty());
}

#[tokio::test]
async fn a_paged_backlog_of_2000_approvals_is_detected_completely() {
    let e = env().await;
    let mut cfg = config(&e.sn);
    cfg.page_size = 100;
    cfg.max_batch = 500;
    let s = ServiceNowSource::new(cfg).unwrap();
    let mut numbers = Vec::new();
    for i in 0..2000 {
        let r = e.request(&format!("G{i}"));
        e.sn.approve(&r.number);
        numbers.push(r.number);
    }
    let mut cursor = None;
    let mut polls = 0;
    let mut all = Vec::new();
    loop {
        let b = s.poll(cursor.as_ref()).await.unwrap();
        polls += 1;
        all.extend(b.directives);
        cursor = b.cursor;
        if !b.more {
            break;
        }
    }
    assert!(polls >= 4, "max_batch 500 means several polls, got {polls}");
    let mut ids: Vec<DirectiveId> = all.iter().map(|d| d.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(all.len(), 2000);
    assert_eq!(ids.len(), 2000);
    let mut got: Vec<String> = all
        .iter()
        .map(|d| d.approval.as_ref().unwrap().ticket_id.clone())
        .collect();
    got.sort();
    numbers.sort();
    assert_eq!(got, numbers);
    let (again, _) = drain(&s, &mut cursor).await;
    assert!(again.is_empty());
}

#[tokio::test]
async fn bad_input_is_rejected_named_and_written_back() {
    let e = env().await;
    let s = source(&e.sn);
    let unknown_item = e.sn.add_catalog_item("Espresso machine");
    let good = e.request("Finance-Readers");
    let unmapped = e.sn.create_request(&unknown_item, &e.alice, &e.boss, &[]);
    let no_var =
        e.sn.create_request(&e.item, &e.alice, &e.boss, &[("other", "x")]);
    for r in [&good, &unmapped, &no_var] {
        e.sn.approve(&r.number);
    }
    let mut cursor = None;
    let (ds, rej) = drain(&s, &mut cursor).await;
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].approval.as_ref().unwrap().ticket_id, good.number);
    assert_eq!(rej.len(), 2, "{rej:?}");
    let r1 = rej.iter().find(|r| r.location == unmapped.number).unwrap();
    assert!(r1.reason.contains("Espresso machine"), "{}", r1.reason);
    let r2 = rej.iter().find(|r| r.location == no_var.number).unwrap();
    assert!(r2.reason.contains("`group`"), "{}", r2.reason);
    for r in [&unmapped, &no_var] {
        let notes = e.sn.work_notes("sc_req_item", &r.number);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("Needs attention"), "{notes:?}");
    }
    assert!(e.sn.work_notes("sc_req_item", &good.number).is_empty());
    // not re-reported on the next poll
    let (_, rej) = drain(&s, &mut cursor).await;
    assert!(rej.is_empty(), "{rej:?}");
    // a malformed cursor is an error naming it
    let err = s
        .poll(Some(&SourceCursor("not json".into())))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("watermark cursor"));
}

#[tokio::test]
async fn write_back_reaches_the_ticket_once() {
    let e = env().await;
    let s = source(&e.sn);
    let req = e.request("Finance-Readers");
    e.sn.approve(&req.number);
    let (ds, _) = drain(&s, &mut None).await;
    let d = &ds[0];
    let rep = FulfillmentReport::Fulfilled {
        directive_id: d.id.clone(),
        approval: d.approval.clone(),
        receipt_ids: vec!["rcpt-1".into(), "rcpt-2".into()],
    };
    s.report(&rep).await.unwrap();
    s.report(&rep).await.unwrap(); // after a crash: idempotent
    let notes = e.sn.work_notes("sc_req_item", &req.number);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("rcpt-1") && notes[0].contains("rcpt-2"));
    let ritm = e.sn.record("sc_req_item", &req.number).unwrap();
    assert_eq!(ritm["state"], "3");
    assert_eq!(ritm["active"], "false");

    let other = e.request("Payroll-Admins");
    e.sn.approve(&other.number);
    let (ds, _) = drain(&s, &mut None).await;
    let d = ds
        .iter()
        .find(|d| d.approval.as_ref().unwrap().ticket_id == other.number)
        .unwrap();
    let rep = FulfillmentReport::NeedsAttention {
        directive_id: d.id.clone(),
        approval: d.approval.clone(),
        message: "target unavailable after 5 attempts".into(),
    };
    s.report(&rep).await.unwrap();
    let notes = e.sn.work_notes("sc_req_item", &other.number);
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("Needs attention") && notes[0].contains("5 attempts"));
    assert_eq!(
        e.sn.record("sc_req_item", &other.number).unwrap()["state"],
        "2"
    );
}

#[tokio::test]
async fn throttling_is_honoured() {
    let e = env().await;
    let s = source(&e.sn);
    let req = e.request("Finance-Readers");
    e.sn.approve(&req.number);
    e.sn.throttle_next(2, 1);
    let t0 = Instant::now();
    let (ds, _) = drain(&s, &mut None).await;
    assert_eq!(ds.len(), 1);
    assert!(t0.elapsed() >= Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(s.client().throttled(), 2);
    assert_eq!(e.sn.throttled(), 2);

    // a rate-limit rule: 2 requests per 2 s window; the poll needs more
    e.sn.set_rate_limit(2, Duration::from_secs(2));
    let t0 = Instant::now();
    let (ds, _) = drain(&s, &mut None).await;
    assert_eq!(ds.len(), 1);
    assert!(e.sn.throttled() > 2, "the rule must have throttled");
    assert!(t0.elapsed() >= Duration::from_secs(1));

    // a wait longer than allowed is a RateLimited error with the wait
    let mut cfg = config(&e.sn);
    cfg.max_throttle_wait_secs = 1;
    let impatient = ServiceNowSource::new(cfg).unwrap();
    e.sn.set_rate_limit(1_000_000, Duration::from_secs(1));
    e.sn.throttle_next(1, 30);
    let err = impatient.poll(None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn the_mock_rejects_what_the_service_rejects() {
    let e = env().await;
    // bad credentials
    let mut cfg = config(&e.sn);
    cfg.auth = ServiceNowAuth::Basic {
        username: "svc_iga".into(),
        password: "wrong".into(),
    };
    let err = ServiceNowSource::new(cfg)
        .unwrap()
        .poll(None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(!err.to_string().contains("wrong"));

    // OAuth client credentials work, a bad secret does not
    let mut cfg = config(&e.sn);
    cfg.auth = ServiceNowAuth::OAuth {
        client_id: e.sn.auth().client_id.clone(),
        client_secret: e.sn.auth().client_secret.clone().into(),
    };
    let req = e.request("G");
    e.sn.approve(&req.number);
    let b = ServiceNowSource::new(cfg.clone())
        .unwrap()
        .poll(None)
        .await
        .unwrap();
    assert_eq!(b.directives.len(), 1);
    cfg.auth = ServiceNowAuth::OAuth {
        client_id: e.sn.auth().client_id.clone(),
        client_secret: "nope".into(),
    };
    let err = ServiceNowSource::new(cfg)
        .unwrap()
        .poll(None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");

    // raw requests: limit over the ceiling, malformed query, unknown field
    let http = reqwest::Client::new();
    let get = |q: &'static [(&'static str, &'static str)]| {
        http.get(format!("{}/api/now/table/sc_req_item", e.sn.url()))
            .basic_auth(&e.sn.auth().username, Some(&e.sn.auth().password))
            .query(q)
            .send()
    };
    for q in [
        &[("sysparm_limit", "10001")][..],
        &[("sysparm_query", "approval")][..],
        &[("sysparm_query", "approval=approved^^")][..],
        &[("sysparm_query", "no_such_field=1")][..],
    ] {
        let r = get(q).await.unwrap();
        assert_eq!(r.status(), 400, "{q:?}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["status"], "failure");
        assert!(v["error"]["message"].is_string());
    }
    // a valid query gets the paging headers and raw string values
    let r = get(&[
        ("sysparm_limit", "1"),
        ("sysparm_fields", "number,state,requested_for"),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-total-count").is_some());
    assert!(
        r.headers()
            .get("link")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("rel=\"last\"")
    );
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["result"][0]["state"].is_string());
    assert!(v["result"][0]["requested_for"]["link"].is_string());
}

#[test]
fn config_from_json_names_bad_keys() {
    let err = ServiceNowConfig::from_json(
        r#"{"instance_url":"https://x.service-now.com","auth":{"type":"basic","username":"u","password":"p"},"pagesize":5}"#,
    )
    .unwrap_err();
    assert!(err.message().contains("pagesize"), "{}", err.message());
}
