//! Scenario 1 — approval to access in seconds, on the Entra connector against the
//! Graph mock. An approved request item (RITM0012345, "Alice → Entra group
//! Finance-Readers") arrives through a poll source (a `MemorySource` standing in for
//! ServiceNow); one poll later the directive exists with the RITM number, approver
//! and decision time, Graph shows the membership, a receipt verifies, the ledger
//! counts one `Request` source and the source got the fulfilment report (work note
//! with the receipt id, close complete) for the RITM.

use std::sync::Arc;

use iga_adapter::{FulfillmentReport, MemorySource};
use iga_connector_entra::mock::{CLIENT_ID, DOMAIN, GraphMock, TENANT};
use iga_connector_entra::{EntraAdapter, EntraConfig};
use iga_directive::{AccessDirective, Action, ApprovalRef, EntitlementRef, GrantSource, JobState};
use iga_ledger::{AssignmentKey, LedgerStore};
use iga_scenarios::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_ritm_becomes_entra_membership_with_receipt() {
    let graph = GraphMock::start().await;
    graph.set_client_secret("scenario-1-secret");
    let group = graph.seed_group("Finance-Readers");
    let alice_id = graph.seed_user("alice", "alice");
    let entra = EntraAdapter::new(
        EntraConfig::with_client_secret(TENANT, CLIENT_ID, "scenario-1-secret")
            .endpoints(graph.graph_base(), graph.authority())
            .upn_domain(DOMAIN),
    )
    .unwrap();
    let servicenow = MemorySource::new("servicenow", 50);
    let src = servicenow.clone();
    let w = world_with(vec![], move |b| {
        b.system("entra", Arc::new(entra)).source(Arc::new(src))
    })
    .await;

    // The RITM turns approved: the source delivers it on its next poll.
    let decided = chrono::DateTime::parse_from_rfc3339("2026-03-02T09:15:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let alice = person("alice");
    let d = AccessDirective::builder("acme", "entra", alice.clone(), Action::Grant)
        .entitlement(EntitlementRef::group("Finance-Readers"))
        .source(GrantSource::request("servicenow", "RITM0012345"))
        .approval(
            ApprovalRef::new("servicenow", "RITM0012345")
                .approver("bob.manager")
                .decided_at(decided),
        )
        .build()
        .unwrap();
    servicenow.push(d.clone());
    assert_eq!(w.orch.poll_sources().await.unwrap(), 1);
    let stored = w
        .store
        .directive(d.id.as_str())
        .await
        .unwrap()
        .expect("persisted");
    let approval = stored.approval.expect("approval kept");
    assert_eq!(approval.ticket_id, "RITM0012345");
    assert_eq!(approval.approver.as_deref(), Some("bob.manager"));
    assert_eq!(approval.decided_at, Some(decided));

    w.orch.run_until_idle().await.unwrap();
    assert!(matches!(
        w.orch.job(d.id.as_str()).await.unwrap().unwrap().state,
        JobState::Succeeded
    ));
    // Graph shows the membership, added by one $ref POST.
    assert_eq!(graph.members(&group), vec![alice_id.clone()]);
    let adds: Vec<_> = graph
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == format!("/groups/{group}/members/$ref"))
        .collect();
    assert_eq!(adds.len(), 1);
    // A receipt verifies.
    assert_eq!(w.verify_chains().await, 1);
    // The ledger counts one Request source, intended and confirmed.
    let key = AssignmentKey::new(
        "acme",
        "alice",
        "entra",
        EntitlementRef::group("Finance-Readers"),
    );
    let sources = w.store.sources_of(&key).await.unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(
        sources[0].source,
        GrantSource::request("servicenow", "RITM0012345")
    );
    assert!(sources[0].intended && sources[0].confirmed);
    // The source learned the outcome (work note with the receipt id; close complete).
    let reports = servicenow.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    match &reports[0] {
        FulfillmentReport::Fulfilled {
            approval,
            receipt_ids,
            ..
        } => {
            assert_eq!(approval.as_ref().unwrap().ticket_id, "RITM0012345");
            assert_eq!(receipt_ids.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    // Re-running changes nothing.
    w.orch.run_until_idle().await.unwrap();
    assert_eq!(graph.members(&group), vec![alice_id]);
}
