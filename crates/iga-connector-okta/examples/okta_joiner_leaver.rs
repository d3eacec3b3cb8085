//! A joiner and a leaver against the in-process Okta mock (no Okta org needed):
//!
//! ```text
//! cargo run -p iga-connector-okta --example okta_joiner_leaver
//! ```
//!
//! Against a real org, build the adapter with
//! `OktaConfig::new("https://<org>.okta.com", <SSWS token>)` instead.

use iga_adapter::{AccountRef, AssignmentScope, ProvisioningAdapter, ProvisioningAdapterExt};
use iga_connector_okta::mock::MockServer;
use iga_connector_okta::{OktaAdapter, OktaConfig};
use iga_directive::{Identity, Operation, OperationKind};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = MockServer::start().await;
    mock.add_group("Engineering");
    let okta = OktaAdapter::new(OktaConfig::new(mock.url(), mock.token())?)?;
    okta.check().await?;

    let ada = Identity::person("hr-701")
        .with_email("ada@acme.example")
        .with_name("Ada", "Lovelace");
    println!(
        "joiner: create  -> {:?}",
        okta.create_user(&ada, Default::default()).await?
    );
    println!(
        "joiner: grant   -> {:?}",
        okta.add_to_group(&ada, "Engineering").await?
    );
    println!(
        "again:  grant   -> {:?}",
        okta.add_to_group(&ada, "Engineering").await?
    );
    let groups = okta
        .list_all_assignments(&AssignmentScope::Account(AccountRef::of(&ada)))
        .await?;
    println!(
        "holds: {:?}",
        groups.iter().map(|a| &a.entitlement.id).collect::<Vec<_>>()
    );

    println!(
        "leaver: revoke  -> {:?}",
        okta.remove_from_group(&ada, "Engineering").await?
    );
    let disable = Operation::new(
        "default",
        "okta",
        OperationKind::DisableAccount,
        ada.clone(),
    );
    println!("leaver: disable -> {:?}", okta.apply(&disable).await?);
    println!(
        "status now {:?}; {} requests",
        mock.user_status("ada@acme.example"),
        mock.calls()
    );
    Ok(())
}
