//! The signed webhook path and ticket provisioning, against the mock.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use iga_adapter::{
    DirectiveSink, DirectiveSource, ErrorKind, Outcome, ProvisioningAdapter, RetryStatus,
    SourceCursor,
};
use iga_connector_servicenow::mock::{MockServiceNow, standard_webhook_headers, whsec};
use iga_connector_servicenow::{
    CatalogMapping, ServiceNowAuth, ServiceNowConfig, ServiceNowSource, ServiceNowTicketAdapter,
    WEBHOOK_PATH, WebhookReceiver, webhook_router,
};
use iga_directive::{
    AccessDirective, DirectiveId, EntitlementKind, EntitlementRef, Identity, Operation,
    OperationKind,
};
use iga_http::webhook::{Profile, WebhookSecret};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

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
    cfg
}

/// Stores directives by id (duplicates ignored, like the ledger store); can be
/// told to fail.
#[derive(Debug, Default)]
struct RecordingSink {
    stored: Mutex<Vec<AccessDirective>>,
    calls: Mutex<u32>,
    fail: Mutex<bool>,
}

#[async_trait]
impl DirectiveSink for RecordingSink {
    async fn accept(
        &self,
        _source: &str,
        directives: Vec<AccessDirective>,
        _cursor: Option<SourceCursor>,
    ) -> iga_adapter::Result<()> {
        *self.calls.lock().unwrap() += 1;
        if *self.fail.lock().unwrap() {
            return Err(iga_adapter::Error::new(
                ErrorKind::Unavailable,
                "store down",
            ));
        }
        let mut s = self.stored.lock().unwrap();
        for d in directives {
            if !s.iter().any(|x| x.id == d.id) {
                s.push(d);
            }
        }
        Ok(())
    }
}

struct Push {
    sn: MockServiceNow,
    sink: Arc<RecordingSink>,
    url: String,
    http: reqwest::Client,
    source: ServiceNowSource,
    _server: tokio::task::JoinHandle<()>,
}

async fn push_env() -> Push {
    let sn = MockServiceNow::start().await;
    let source = ServiceNowSource::new(config(&sn)).unwrap();
    let sink = Arc::new(RecordingSink::default());
    let receiver = WebhookReceiver::new(
        source.clone(),
        Profile::standard_webhooks(),
        vec![WebhookSecret::new("k1", whsec(KEY))],
        sink.clone(),
        None,
    )
    .expect("receiver");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind webhook endpoint");
    let url = format!("http://{}{WEBHOOK_PATH}", listener.local_addr().unwrap());
    let app = webhook_router(Arc::new(receiver));
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("webhook endpoint failed")
    });
    Push {
        sn,
        sink,
        url,
        http: reqwest::Client::new(),
        source,
        _server: server,
    }
}

impl Push {
    async fn deliver(&self, id: &str, body: &str, key: &[u8]) -> (u16, serde_json::Value) {
        let ts = chrono::Utc::now().timestamp();
        let r = self
            .http
            .post(&self.url)
            .headers(standard_webhook_headers(key, id, ts, body.as_bytes()))
            .body(body.to_string())
            .send()
            .await
            .expect("deliver");
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    fn approved(&self, group: &str) -> (String, String) {
        let alice = self.sn.add_user("alice", "alice@example.com");
        let boss = self.sn.add_user("boss", "boss@example.com");
        let item = self.sn.add_catalog_item("Entra group access");
        let r = self
            .sn
            .create_request(&item, &alice, &boss, &[("group", group)]);
        self.sn.approve(&r.number);
        (r.sys_id, r.number)
    }
}

#[tokio::test]
async fn a_signed_event_is_stored_once_and_matches_the_poll() {
    let p = push_env().await;
    let (sys_id, number) = p.approved("Finance-Readers");
    let body = format!(r#"{{"sys_id":"{sys_id}","table":"sc_req_item","number":"{number}"}}"#);

    // bad signature: 401, nothing stored, nothing read
    let before = p.sn.requests();
    let (code, _) = p
        .deliver("evt-1", &body, b"another key entirely, 32 bytes!!")
        .await;
    assert_eq!(code, 401);
    assert!(p.sink.stored.lock().unwrap().is_empty());
    assert_eq!(*p.sink.calls.lock().unwrap(), 0);
    assert_eq!(
        p.sn.requests(),
        before,
        "an unsigned event must not reach ServiceNow"
    );

    // valid: stored before the 2xx
    let (code, v) = p.deliver("evt-1", &body, KEY).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "stored");
    let stored = p.sink.stored.lock().unwrap().clone();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].approval.as_ref().unwrap().ticket_id, number);
    assert_eq!(
        stored[0].id.to_string(),
        v["directive_id"].as_str().unwrap()
    );

    // duplicate delivery id: ignored without a second store call
    let (code, v) = p.deliver("evt-1", &body, KEY).await;
    assert_eq!((code, v["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(*p.sink.calls.lock().unwrap(), 1);
    // a second event for the same approval (other id): same directive id
    let (code, _) = p.deliver("evt-2", &body, KEY).await;
    assert_eq!(code, 200);
    assert_eq!(p.sink.stored.lock().unwrap().len(), 1);
    // the poll detects the same approval with the same id
    let polled = p.source.poll(None).await.unwrap().directives;
    assert_eq!(polled.len(), 1);
    assert_eq!(polled[0].id, stored[0].id);
}

#[tokio::test]
async fn malformed_unapproved_and_failed_stores() {
    let p = push_env().await;
    // malformed JSON and a missing sys_id: 400, nothing stored
    for (i, body) in ["{not json", r#"{"number":"RITM1"}"#, r#"{"sys_id":"a^b"}"#]
        .iter()
        .enumerate()
    {
        let (code, v) = p.deliver(&format!("bad-{i}"), body, KEY).await;
        assert_eq!(code, 400, "{body}: {v}");
        assert_eq!(v["status"], "malformed");
    }
    // an item that is not approved: 200 ignored
    let alice = p.sn.add_user("alice", "a@x");
    let item = p.sn.add_catalog_item("Entra group access");
    let r =
        p.sn.create_request(&item, &alice, &alice, &[("group", "G")]);
    let body = format!(r#"{{"sys_id":"{}"}}"#, r.sys_id);
    let (code, v) = p.deliver("early", &body, KEY).await;
    assert_eq!((code, v["status"].as_str()), (200, Some("ignored")));
    assert!(p.sink.stored.lock().unwrap().is_empty());
    // approved but the store is down: 503, and the retry of the same delivery works
    p.sn.approve(&r.number);
    *p.sink.fail.lock().unwrap() = true;
    let (code, _) = p.deliver("retry-me", &body, KEY).await;
    assert_eq!(code, 503);
    *p.sink.fail.lock().unwrap() = false;
    let (code, v) = p.deliver("retry-me", &body, KEY).await;
    assert_eq!((code, v["status"].as_str()), (200, Some("stored")));
    // an unmapped catalog item: rejected, written back, nothing stored
    let other = p.sn.add_catalog_item("Espresso machine");
    let r2 = p.sn.create_request(&other, &alice, &alice, &[]);
    p.sn.approve(&r2.number);
    let (code, v) = p
        .deliver("unmapped", &format!(r#"{{"sys_id":"{}"}}"#, r2.sys_id), KEY)
        .await;
    assert_eq!((code, v["status"].as_str()), (200, Some("rejected")));
    assert_eq!(v["location"], r2.number.as_str());
    assert_eq!(p.sink.stored.lock().unwrap().len(), 1);
    let notes = p.sn.work_notes("sc_req_item", &r2.number);
    assert!(
        notes.iter().any(|n| n.contains("Needs attention")),
        "{notes:?}"
    );
}

fn op(corr: &str) -> Operation {
    let mut o = Operation::new(
        "default",
        "legacy-app",
        OperationKind::Grant,
        Identity::person("alice").with_user_name("alice"),
    );
    o.id = iga_directive::OperationId(format!("{corr}.0"));
    o.directive_id = DirectiveId(corr.to_string());
    o.entitlement = Some(EntitlementRef::group("Ledger-Approvers"));
    o
}

#[tokio::test]
async fn ticket_provisioning_opens_one_task_and_completes_when_closed() {
    let sn = MockServiceNow::start().await;
    let a = ServiceNowTicketAdapter::new(&config(&sn), vec![EntitlementKind::Group]).unwrap();
    a.check().await.unwrap();
    let o = op("d-1");
    let first = a.apply(&o).await.unwrap();
    let Outcome::Pending { external_ref } = &first else {
        panic!("expected pending, got {first:?}")
    };
    assert!(external_ref.starts_with("SCTASK"));
    // re-applied while open (the orchestrator's external poll): same task
    assert_eq!(a.apply(&o).await.unwrap(), first);
    let tasks = sn.records("sc_task");
    assert_eq!(tasks.len(), 1, "the same operation never opens two tasks");
    let t = &tasks[0];
    assert_eq!(t["correlation_id"], "d-1.0");
    assert!(
        t["short_description"]
            .as_str()
            .unwrap()
            .contains("Ledger-Approvers")
    );
    assert!(t["description"].as_str().unwrap().contains("alice"));
    // closed complete -> applied
    sn.set_task_state(external_ref, "3");
    assert!(matches!(
        a.apply(&o).await.unwrap(),
        Outcome::Applied { .. }
    ));

    // closed incomplete -> permanent error naming the task
    let o2 = op("d-2");
    let Outcome::Pending { external_ref: n2 } = a.apply(&o2).await.unwrap() else {
        panic!()
    };
    sn.set_task_state(&n2, "4");
    let e = a.apply(&o2).await.unwrap_err();
    assert_eq!(e.retry(), RetryStatus::Permanent);
    assert!(e.to_string().contains(&n2), "{e}");
    assert_eq!(sn.records("sc_task").len(), 2);

    // undeclared entitlement kind: Unsupported without I/O
    let before = sn.requests();
    let mut o3 = op("d-3");
    o3.entitlement = Some(EntitlementRef::role("Admin"));
    let e = a.apply(&o3).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(sn.requests(), before);
}
