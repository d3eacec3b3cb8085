//! Poll approved Jira Service Management requests into directives and write the
//! fulfilment back, against the in-process mock.
//!
//! `cargo run -p iga-connector-jira --features test-support --example jira_approvals`

use iga_adapter::{DirectiveSource, FulfillmentReport};
use iga_connector_jira::mock::{JiraMock, MockRequest};
use iga_connector_jira::{FieldMapping, JiraSource, JiraSourceConfig};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> iga_adapter::Result<()> {
    let jira = JiraMock::start().await;
    let key = jira.add_request(MockRequest::approved(json!({
        "customfield_10010": {"accountId": "5b10", "emailAddress": "ada@example.com"},
        "customfield_10011": [{"value": "cn=finance,ou=groups,dc=example,dc=com"}],
        "customfield_10012": {"value": "Grant"},
    })));

    let mapping = FieldMapping::new("customfield_10010", "customfield_10011")
        .action_field("customfield_10012")
        .default_system("corp-ldap");
    let cfg = JiraSourceConfig::new("acme", "project = ACC AND status = Approved", mapping);
    let source = JiraSource::new(jira.connection(), cfg)?;

    let batch = source.poll(None).await?;
    for d in &batch.directives {
        println!(
            "{} {} {} on {} (approved in {})",
            d.id,
            d.action,
            d.entitlement.as_ref().map(|e| e.id.as_str()).unwrap_or("-"),
            d.system,
            d.approval
                .as_ref()
                .map(|a| a.ticket_id.as_str())
                .unwrap_or("-"),
        );
        source
            .report(&FulfillmentReport::Fulfilled {
                directive_id: d.id.clone(),
                approval: d.approval.clone(),
                receipt_ids: vec!["receipt-0001".into()],
            })
            .await?;
    }
    println!(
        "cursor to store: {} bytes",
        batch.cursor.map(|c| c.0.len()).unwrap_or(0)
    );
    println!(
        "{key} is now {:?}; comments: {:?}",
        jira.status(&key),
        jira.comments(&key)
    );
    Ok(())
}
