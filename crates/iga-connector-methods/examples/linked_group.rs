//! An app role granted through the IdP group that controls it.
//!
//! `cargo run -p iga-connector-methods --example linked_group`

use std::sync::Arc;

use iga_adapter::{MemoryAdapter, ProvisioningAdapterExt};
use iga_connector_methods::LinkedAdapter;
use iga_directive::{EntitlementRef, Identity};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let idp = MemoryAdapter::new("entra");
    idp.seed_entitlement(&EntitlementRef::group("sg-tableau-creators"));
    let dana = Identity::person("dana");
    idp.create_user(&dana, Default::default()).await?;
    let tableau = LinkedAdapter::new("tableau").link(
        EntitlementRef::role("creator"),
        Arc::new(idp.clone()),
        EntitlementRef::group("sg-tableau-creators"),
    )?;
    println!(
        "grant: {:?}",
        tableau
            .grant(&dana, &EntitlementRef::role("creator"))
            .await?
    );
    println!(
        "IdP group members: {:?}",
        idp.members(&EntitlementRef::group("sg-tableau-creators"))
    );
    Ok(())
}
