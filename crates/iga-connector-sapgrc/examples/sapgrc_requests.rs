//! Poll approved SAP GRC access-request lines into directives (including a timed
//! revocation from a validity end date) and write the result back per line,
//! against the in-process OData mock.
//!
//! `cargo run -p iga-connector-sapgrc --features test-support --example sapgrc_requests`

use std::sync::Arc;

use chrono::NaiveDate;
use iga_adapter::{DirectiveSource, FulfillmentReport};
use iga_connector_sapgrc::mock::{GrcMock, MockLine};
use iga_connector_sapgrc::{ODataDialect, SapGrcSource, SapGrcSourceConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> iga_adapter::Result<()> {
    let grc = GrcMock::start().await;
    let req = grc.add_request(
        "ADA",
        "APPROVED",
        vec![
            MockLine::assign("PRD_CLNT100", "Z_FI_AP_CLERK"),
            MockLine::assign("PRD_CLNT100", "Z_FI_AUDITOR").valid(
                NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
                NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
            ),
        ],
    );
    let dialect = Arc::new(ODataDialect::new(grc.config())?);
    let cfg = SapGrcSourceConfig::new("acme").map_system("PRD_CLNT100", "sap-prd");
    let source = SapGrcSource::new(cfg, dialect)?;
    let batch = source.poll(None).await?;
    for d in &batch.directives {
        println!(
            "{} {} {} on {} not before {:?} (line {})",
            d.id,
            d.action,
            d.entitlement.as_ref().map(|e| e.id.as_str()).unwrap_or("-"),
            d.system,
            d.not_before,
            d.approval
                .as_ref()
                .map(|a| a.ticket_id.as_str())
                .unwrap_or("-"),
        );
    }
    let first = &batch.directives[0];
    source
        .report(&FulfillmentReport::Fulfilled {
            directive_id: first.id.clone(),
            approval: first.approval.clone(),
            receipt_ids: vec!["receipt-0001".into()],
        })
        .await?;
    println!("{req} line statuses now {:?}", grc.line_statuses(&req));
    Ok(())
}
