//! Poll approved requests from a (mock) ServiceNow instance and print the directives.
//!
//! `cargo run -p iga-connector-servicenow --features test-support --example approvals`

use iga_adapter::DirectiveSource;
use iga_connector_servicenow::mock::MockServiceNow;
use iga_connector_servicenow::{
    CatalogMapping, ServiceNowAuth, ServiceNowConfig, ServiceNowSource,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sn = MockServiceNow::start().await;
    let alice = sn.add_user("alice", "alice@example.com");
    let boss = sn.add_user("bob.manager", "bob@example.com");
    let item = sn.add_catalog_item("Entra group access");
    let req = sn.create_request(&item, &alice, &boss, &[("group", "Finance-Readers")]);
    sn.approve(&req.number);

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
    let source = ServiceNowSource::new(cfg)?;
    let batch = source.poll(None).await?;
    for d in &batch.directives {
        println!("{}", d.to_json());
    }
    println!("rejected: {:?}", batch.rejected);
    Ok(())
}
