//! Approval sources end to end through the orchestrator: an approved Jira Service
//! Management request reaches the target and the ticket gets the receipt id and is
//! closed; a request for a system only a person can change becomes a Jira ticket
//! that completes when resolved; an SAP GRC line with a validity end is granted now
//! and revoked on its date, each step written back per line with its receipt.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use iga_adapter::DirectiveSource;
use iga_connector_jira::mock::{JiraMock, MockRequest};
use iga_connector_jira::{
    FieldMapping, JiraSource, JiraSourceConfig, JiraTicketAdapter, TicketConfig,
};
use iga_connector_sapgrc::mock::{GrcMock, MockLine};
use iga_connector_sapgrc::{ODataDialect, SapGrcSource, SapGrcSourceConfig};
use iga_directive::{EntitlementRef, Identity, JobState, JobStateName};
use iga_scenarios::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jira_approval_to_access_and_ticket_provisioning() {
    let jira = JiraMock::start().await;
    let mapping = FieldMapping::new("customfield_10010", "customfield_10011")
        .system_field("customfield_10013");
    let source = JiraSource::new(
        jira.connection(),
        JiraSourceConfig::new("acme", "project = ACC AND status = Approved", mapping),
    )
    .unwrap();
    let tickets =
        JiraTicketAdapter::new(jira.connection(), TicketConfig::new("mainframe", "OPS")).unwrap();
    let src: Arc<dyn DirectiveSource> = Arc::new(source.clone());
    let w = world_with(vec![SystemSpec::new("ldap")], |b| {
        b.source(src)
            .system("mainframe", Arc::new(tickets))
            .external_poll(Duration::from_secs(60))
    })
    .await;
    let ada = Identity::person("ada@example.com").with_email("ada@example.com");
    let fin = EntitlementRef::group("cn=finance");
    w.target("ldap").seed_account(&ada);
    w.target("ldap").seed_entitlement(&fin);
    let req = |user: &str, ent: &str, system: &str| {
        MockRequest::approved(json!({
            "customfield_10010": {"emailAddress": user},
            "customfield_10011": [{"value": ent}],
            "customfield_10013": system,
        }))
    };
    let ldap_key = jira.add_request(req("ada@example.com", "cn=finance", "ldap"));
    let mf_key = jira.add_request(req("bob@example.com", "RACF-FIN", "mainframe"));

    assert_eq!(w.orch.poll_sources().await.unwrap(), 2);
    w.orch.run_until_idle().await.unwrap();
    assert!(w.target("ldap").has_member("ada@example.com", &fin));
    let notes = jira.comments(&ldap_key);
    assert_eq!(notes.len(), 1, "{notes:?}");
    let receipt = notes[0]
        .lines()
        .find_map(|l| l.strip_prefix("Receipts: "))
        .expect("receipt line")
        .trim()
        .to_string();
    assert!(!receipt.is_empty());
    assert_eq!(jira.status(&ldap_key).0, "Done");

    // The mainframe request became a ticket and waits for a person.
    let waiting = w
        .orch
        .jobs(JobStateName::AwaitingExternal, 10)
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1);
    let JobState::AwaitingExternal { external_ref } = &waiting[0].state else {
        panic!("{:?}", waiting[0].state)
    };
    let (summary, _) = jira.issue_text(external_ref);
    assert!(
        summary.contains("RACF-FIN") && summary.contains("bob@example.com"),
        "{summary}"
    );
    jira.resolve(external_ref, "Done", "Done");
    w.clock.advance(Duration::from_secs(120));
    w.orch.run_until_idle().await.unwrap();
    assert!(
        w.orch
            .jobs(JobStateName::AwaitingExternal, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        jira.status(&mf_key).0,
        "Done",
        "source request closed once the ticket was done"
    );

    // Seen again (overlap, write-back touched the issues): nothing new.
    assert_eq!(w.orch.poll_sources().await.unwrap(), 0);
    assert!(w.verify_chains().await >= 2);
}

async fn sapgrc_world() -> (GrcMock, World, String, EntitlementRef) {
    let grc = GrcMock::start().await;
    let source = SapGrcSource::new(
        SapGrcSourceConfig::new("acme").map_system("PRD_CLNT100", "sap-prd"),
        Arc::new(ODataDialect::new(grc.config()).unwrap()),
    )
    .unwrap();
    let src: Arc<dyn DirectiveSource> = Arc::new(source);
    let w = world_with(vec![SystemSpec::new("sap-prd")], |b| b.source(src)).await;
    let ada = Identity::person("ADA")
        .with_user_name("ADA")
        .with_email("ada@example.com");
    let role = EntitlementRef::role("Z_FI_AUDITOR");
    w.target("sap-prd").seed_account(&ada);
    w.target("sap-prd").seed_entitlement(&role);
    // The world's clock starts at the epoch; validity 1970-01-01 .. 1970-01-10.
    let req = grc.add_request(
        "ADA",
        "APPROVED",
        vec![MockLine::assign("PRD_CLNT100", "Z_FI_AUDITOR").valid(
            NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(1970, 1, 10).unwrap(),
        )],
    );
    (grc, w, req, role)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sapgrc_line_granted_and_written_back_with_its_receipt() {
    let (grc, w, req, role) = sapgrc_world().await;
    assert_eq!(
        w.orch.poll_sources().await.unwrap(),
        2,
        "grant + timed revoke"
    );
    w.orch.run_until_idle().await.unwrap();
    assert!(w.target("sap-prd").has_member("ADA", &role));
    assert_eq!(grc.line_statuses(&req), vec!["PROVISIONED"]);
    let provisioned = grc.results();
    assert_eq!(provisioned.len(), 1);
    assert!(!provisioned[0]["ReceiptIds"].as_str().unwrap().is_empty());
    // The write-back changed the request; seen again, it yields nothing new.
    assert_eq!(w.orch.poll_sources().await.unwrap(), 0);
    assert!(w.verify_chains().await >= 1);
}

/// Reproduces an orchestrator defect: a future-dated revoke that arrives in the
/// same intake as its grant has its ledger decision taken at intake (nothing
/// confirmed yet), so on its date it is skipped as "access was never provisioned"
/// and the access stays. Un-ignore once decisions of future-dated directives are
/// taken when they become due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "orchestrator: decision of a future-dated revoke is taken at intake, not when due"]
async fn sapgrc_validity_end_revokes_on_its_date() {
    let (grc, w, req, role) = sapgrc_world().await;
    assert_eq!(w.orch.poll_sources().await.unwrap(), 2);
    w.orch.run_until_idle().await.unwrap();
    assert!(w.target("sap-prd").has_member("ADA", &role));
    w.clock.advance(Duration::from_secs(9 * 86_400));
    w.orch.run_until_idle().await.unwrap();
    assert!(
        w.target("sap-prd").has_member("ADA", &role),
        "valid through 1970-01-10"
    );
    w.clock.advance(Duration::from_secs(86_400));
    w.orch.run_until_idle().await.unwrap();
    assert!(
        !w.target("sap-prd").has_member("ADA", &role),
        "revoked on 1970-01-11"
    );
    assert_eq!(grc.line_statuses(&req), vec!["REVOKED"]);
    assert_eq!(grc.results().len(), 2);
    assert!(w.verify_chains().await >= 2);
}
