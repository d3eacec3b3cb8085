//! Provision a user into Entra ID and add them to a group, against the Graph mock
//! (a real tenant only needs a different `EntraConfig`).
//!
//! ```sh
//! cargo run -p iga-connector-entra --features test-support --example provision_user
//! ```

use iga_adapter::{ProvisioningAdapter, ProvisioningAdapterExt};
use iga_connector_entra::mock::{CLIENT_ID, DOMAIN, GraphMock, TENANT};
use iga_connector_entra::{EntraAdapter, EntraConfig};
use iga_directive::Identity;

#[tokio::main(flavor = "current_thread")]
async fn main() -> iga_adapter::Result<()> {
    let graph = GraphMock::start().await;
    graph.set_client_secret("example-secret");
    let group = graph.seed_group("Finance-Readers");

    let config = EntraConfig::with_client_secret(TENANT, CLIENT_ID, "example-secret")
        .endpoints(graph.graph_base(), graph.authority())
        .upn_domain(DOMAIN);
    let entra = EntraAdapter::new(config)?;
    entra.check().await?;

    let alice = Identity::person("alice")
        .with_user_name("alice")
        .with_name("Alice", "Example")
        .with_email("alice@example.com");
    let created = entra.create_user(&alice, Default::default()).await?;
    println!("create: {created:?}");
    let granted = entra.add_to_group(&alice, "Finance-Readers").await?;
    println!("grant:  {granted:?}");
    let again = entra.add_to_group(&alice, "Finance-Readers").await?;
    println!("again:  {again:?} (already a member: a no-op, not an error)");
    println!("members of {group}: {:?}", graph.members(&group));
    println!("{:?}", entra.stats());
    Ok(())
}
