//! Provision a joiner into Google Workspace and revoke it as a leaver, against the
//! in-process mock (`--features test-support`). Against a real tenant build the
//! config with `GoogleConfig::new(ServiceAccountKey::from_json(..)?, admin, domain)`.
//!
//! `cargo run -p iga-connector-google --features test-support --example provision_user`

use iga_adapter::ProvisioningAdapter;
use iga_connector_google::GoogleAdapter;
use iga_connector_google::mock::GoogleMock;
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = GoogleMock::start().await;
    mock.seed_group("eng@example.com", "Engineering");
    let adapter = GoogleAdapter::new(mock.config())?;
    adapter.check().await?;
    let ada = Identity::person("emp-701")
        .with_user_name("ada")
        .with_name("Ada", "Lovelace");
    let eng = EntitlementRef::group("eng@example.com");
    let op = |kind| Operation::new("default", "google", kind, ada.clone());
    let steps = [
        op(OperationKind::CreateAccount),
        op(OperationKind::Grant).with_entitlement(eng.clone()),
        op(OperationKind::Revoke).with_entitlement(eng.clone()),
        op(OperationKind::DisableAccount),
    ];
    for step in &steps {
        let outcome = adapter.apply(step).await?;
        println!("{:<16} {}", step.kind.as_str(), outcome.name());
    }
    println!(
        "members of eng: {:?}; suspended: {:?}; requests: {:?}",
        mock.members("eng@example.com"),
        mock.suspended("ada@example.com"),
        adapter.stats()
    );
    Ok(())
}
