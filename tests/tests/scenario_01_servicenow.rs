//! Scenario 1 — approval to access in seconds: a ServiceNow requested item for
//! "Alice -> Entra group Finance-Readers" turns approved; within the poll interval a
//! directive exists with the RITM number, approver and decision time; the target
//! shows the membership; a receipt verifies; the ledger counts one `Request`
//! source; the RITM carries a work note with the receipt id and is closed complete.
//! Plus scenario 4's write-back: target down -> retries -> escalation -> a "needs
//! attention" work note on the ticket. And the push path: a signed webhook stores
//! the directive durably through the orchestrator's sink; the poll then finds
//! nothing new.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iga_adapter::DirectiveSource;
use iga_connector_servicenow::mock::{MockServiceNow, standard_webhook_headers, whsec};
use iga_connector_servicenow::{
    CatalogMapping, ServiceNowAuth, ServiceNowConfig, ServiceNowSource, WebhookReceiver,
};
use iga_directive::{Clock, EntitlementRef, GrantSource, JobState, JobStateName};
use iga_http::webhook::{Profile, WebhookSecret};
use iga_ledger::{AssignmentKey, LedgerStore};
use iga_scenarios::*;

struct Sn {
    sn: MockServiceNow,
    source: ServiceNowSource,
    alice: String,
    boss: String,
    item: String,
}

async fn servicenow() -> Sn {
    let sn = MockServiceNow::start().await;
    let alice = sn.add_user("alice", "alice@example.com");
    let boss = sn.add_user("bob.manager", "bob@example.com");
    let item = sn.add_catalog_item("Entra group access");
    let mut cfg = ServiceNowConfig::new(
        sn.url(),
        ServiceNowAuth::Basic {
            username: sn.auth().username.clone(),
            password: sn.auth().password.clone().into(),
        },
    );
    cfg.tenant = "acme".into();
    cfg.catalog.push(CatalogMapping::group_from_variable(
        "Entra group access",
        "entra",
        "group",
    ));
    let source = ServiceNowSource::new(cfg).expect("servicenow source");
    Sn {
        sn,
        source,
        alice,
        boss,
        item,
    }
}

async fn entra_world(source: &ServiceNowSource, tweak_batch: bool) -> World {
    let s = Arc::new(source.clone());
    let w = world_with(vec![SystemSpec::new("entra")], move |b| {
        let b = b.source(s);
        if tweak_batch {
            b.batch(
                iga_batch::BatchConfig::default()
                    .retry(iga_batch::RetryPolicy::new(2, Duration::from_secs(5))),
            )
        } else {
            b
        }
    })
    .await;
    let t = w.target("entra");
    t.seed_entitlement(&EntitlementRef::group("Finance-Readers"));
    t.seed_account(&person("alice"));
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_to_access_in_seconds() {
    let s = servicenow().await;
    let w = entra_world(&s.source, false).await;
    let req =
        s.sn.create_request(&s.item, &s.alice, &s.boss, &[("group", "Finance-Readers")]);
    // not approved yet: nothing happens
    let r = w.orch.run_until_idle().await.unwrap();
    assert_eq!(r.intake, 0);

    s.sn.approve(&req.number);
    let approved_at = Instant::now();
    w.orch.run_until_idle().await.unwrap();
    let took = approved_at.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "within the poll interval: {took:?}"
    );

    // the directive, with its approval
    let jobs = w.orch.jobs(JobStateName::Succeeded, 10).await.unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let d = w
        .store
        .directive(jobs[0].directive_id.as_str())
        .await
        .unwrap()
        .expect("directive stored");
    let a = d.approval.as_ref().unwrap();
    assert_eq!(a.ticket_id, req.number);
    assert_eq!(a.approver.as_deref(), Some("bob.manager"));
    assert!(a.decided_at.is_some());

    // the target shows the membership
    assert!(
        w.target("entra")
            .has_member("alice", &EntitlementRef::group("Finance-Readers"))
    );
    // one Request source in the ledger
    let key = AssignmentKey::new(
        "acme",
        "alice",
        "entra",
        EntitlementRef::group("Finance-Readers"),
    );
    let sources = w.store.sources_of(&key).await.unwrap();
    assert_eq!(sources.len(), 1, "{sources:?}");
    assert_eq!(
        sources[0].source,
        GrantSource::request("servicenow", &req.number)
    );
    assert!(sources[0].intended && sources[0].confirmed);

    // a receipt verifies, and its id is on the ticket, which is closed complete
    assert!(w.verify_chains().await >= 1);
    let mut receipt_ids = Vec::new();
    for (chain, _) in w.orch.verify_receipts().await.unwrap() {
        for r in w.orch.export_chain(&chain).await.unwrap() {
            if r.directive_id == d.id.as_str() {
                receipt_ids.push(r.receipt_id);
            }
        }
    }
    assert!(!receipt_ids.is_empty());
    let notes = s.sn.work_notes("sc_req_item", &req.number);
    assert_eq!(notes.len(), 1, "{notes:?}");
    for id in &receipt_ids {
        assert!(notes[0].contains(id.as_str()), "{} lacks {id}", notes[0]);
    }
    let ritm = s.sn.record("sc_req_item", &req.number).unwrap();
    assert_eq!(ritm["state"], "3");

    // seen again (overlap, restart with the stored cursor): nothing new
    let r = w.orch.run_until_idle().await.unwrap();
    assert_eq!(r.intake, 0);
    let cursor = w
        .store
        .cursor("servicenow")
        .await
        .unwrap()
        .expect("cursor stored");
    let again = s
        .source
        .poll(Some(&iga_adapter::SourceCursor(cursor)))
        .await
        .unwrap();
    assert!(again.directives.is_empty(), "{:?}", again.directives);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_and_poll_store_one_directive() {
    let s = servicenow().await;
    let w = entra_world(&s.source, false).await;
    let key = b"scenario-one-webhook-key-32bytes";
    let receiver = WebhookReceiver::new(
        s.source.clone(),
        Profile::standard_webhooks(),
        vec![WebhookSecret::new("k1", whsec(key))],
        w.orch.sink(),
        None,
    )
    .unwrap();
    let req =
        s.sn.create_request(&s.item, &s.alice, &s.boss, &[("group", "Finance-Readers")]);
    s.sn.approve(&req.number);
    let body = format!(r#"{{"sys_id":"{}"}}"#, req.sys_id);
    let now = chrono::Utc::now().timestamp();

    // a forged delivery: 401 and nothing stored
    let forged = standard_webhook_headers(
        b"wrong-key-wrong-key-wrong-key-00",
        "d1",
        now,
        body.as_bytes(),
    );
    let (code, _) = receiver.handle(&forged, body.as_bytes()).await;
    assert_eq!(code, 401);
    assert_eq!(
        w.orch
            .status()
            .await
            .unwrap()
            .by_state
            .values()
            .sum::<usize>(),
        0
    );

    // a valid one: durable before the 2xx
    let h = standard_webhook_headers(key, "d1", now, body.as_bytes());
    let (code, v) = receiver.handle(&h, body.as_bytes()).await;
    assert_eq!(code, 200, "{v}");
    let id = v["directive_id"].as_str().unwrap().to_string();
    let job = w.orch.job(&id).await.unwrap().expect("durably stored");
    assert_eq!(job.state.name(), JobStateName::Pending);
    // the same delivery again, and the poll: still one
    let (code, _) = receiver.handle(&h, body.as_bytes()).await;
    assert_eq!(code, 200);
    w.orch.run_until_idle().await.unwrap();
    assert_eq!(
        w.orch
            .status()
            .await
            .unwrap()
            .by_state
            .values()
            .sum::<usize>(),
        1
    );
    assert_eq!(
        w.orch.job(&id).await.unwrap().unwrap().state.name(),
        JobStateName::Succeeded
    );
    assert!(
        w.target("entra")
            .has_member("alice", &EntitlementRef::group("Finance-Readers"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_down_escalates_and_the_ticket_needs_attention() {
    let s = servicenow().await;
    let w = entra_world(&s.source, true).await;
    w.target("entra").set_down(true);
    let req =
        s.sn.create_request(&s.item, &s.alice, &s.boss, &[("group", "Finance-Readers")]);
    s.sn.approve(&req.number);
    w.orch.run_until_idle().await.unwrap();
    let jobs = w.orch.jobs(JobStateName::Retrying, 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    let id = jobs[0].directive_id.clone();
    for _ in 0..10 {
        match w.orch.job(id.as_str()).await.unwrap().unwrap().state {
            JobState::Retrying { next_at, .. } => {
                assert!(
                    s.sn.work_notes("sc_req_item", &req.number).is_empty(),
                    "no note while retrying"
                );
                w.clock.set(next_at + chrono::Duration::seconds(1));
                w.orch.run_until_idle().await.unwrap();
            }
            JobState::Escalated { .. } => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        w.orch.job(id.as_str()).await.unwrap().unwrap().state.name(),
        JobStateName::Escalated
    );
    assert!(w.clock.now() > chrono::DateTime::UNIX_EPOCH + chrono::Duration::minutes(25));
    let notes = s.sn.work_notes("sc_req_item", &req.number);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("Needs attention"), "{}", notes[0]);
    assert!(notes[0].contains("unavailable"), "{}", notes[0]);
    // not closed; no ledger confirmation for what did not happen
    assert_ne!(
        s.sn.record("sc_req_item", &req.number).unwrap()["state"],
        "3"
    );
    let key = AssignmentKey::new(
        "acme",
        "alice",
        "entra",
        EntitlementRef::group("Finance-Readers"),
    );
    let sources = w.store.sources_of(&key).await.unwrap();
    assert!(sources.iter().all(|s| !s.confirmed), "{sources:?}");
}
