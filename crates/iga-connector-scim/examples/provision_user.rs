//! Provision one user into a SCIM 2.0 server and add it to a group.
//!
//! ```text
//! IGA_SCIM_URL=http://127.0.0.1:8080/v2 IGA_SCIM_TOKEN=... \
//!   cargo run -p iga-connector-scim --example provision_user [group]
//! ```
//! Start a local server with `.venv/bin/scim2-server --hostname 127.0.0.1 --port 8080`.

use iga_adapter::{ProvisioningAdapter, ProvisioningAdapterExt};
use iga_connector_scim::{ScimAdapter, ScimConfig};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Ok(url) = std::env::var("IGA_SCIM_URL") else {
        eprintln!(
            "IGA_SCIM_URL is not set. Point it at a SCIM 2.0 service root, e.g.\n  \
             IGA_SCIM_URL=http://127.0.0.1:8080/v2 IGA_SCIM_TOKEN=<token> \
             cargo run -p iga-connector-scim --example provision_user\n\
             (a local server: .venv/bin/scim2-server --hostname 127.0.0.1 --port 8080)"
        );
        std::process::exit(2);
    };
    let group = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "iga-example".into());
    if let Err(e) = run(&url, &group).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(url: &str, group: &str) -> iga_adapter::Result<()> {
    let mut config = ScimConfig::new(url)?;
    if let Ok(token) = std::env::var("IGA_SCIM_TOKEN") {
        config = config.bearer_token(token);
    } else {
        println!("IGA_SCIM_TOKEN is not set: sending no credentials");
    }
    let scim = ScimAdapter::connect(config).await?;
    println!("connected to {scim}: {:?}", scim.features());
    scim.check().await?;
    scim.create_group(group).await?;
    let ada = Identity::person("example-ada")
        .with_user_name("ada.lovelace@example.com")
        .with_name("Ada", "Lovelace")
        .with_email("ada.lovelace@example.com");
    let created = scim
        .apply(&Operation::new(
            "default",
            "scim",
            OperationKind::CreateAccount,
            ada.clone(),
        ))
        .await?;
    println!("create: {created:?}");
    let granted = scim
        .apply(
            &Operation::new("default", "scim", OperationKind::Grant, ada.clone())
                .with_entitlement(EntitlementRef::group(group)),
        )
        .await?;
    println!("grant {group}: {granted:?}");
    println!(
        "groups of {}: {:?}",
        ada.id,
        scim.get_user_groups(&ada).await?
    );
    Ok(())
}
