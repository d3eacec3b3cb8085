//! Onboard and offboard a user in Slack through SCIM, against the in-process mock:
//!
//! ```text
//! cargo run -p iga-connector-slack --example slack_offboarding
//! ```
//!
//! Against a real org use `SlackConfig::new(<org-admin token>)` (Business+ or
//! Enterprise Grid).

use iga_adapter::{ProvisioningAdapter, ProvisioningAdapterExt};
use iga_connector_slack::mock::MockServer;
use iga_connector_slack::{SlackAdapter, SlackConfig};
use iga_directive::{Identity, Operation, OperationKind};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = MockServer::start().await;
    let slack =
        SlackAdapter::connect(SlackConfig::new(mock.token().to_string()).with_base_url(mock.url()))
            .await?;
    slack.create_group("eng-oncall").await?;
    let ada = Identity::person("hr-701")
        .with_user_name("ada")
        .with_email("ada@acme.example")
        .with_name("Ada", "Lovelace");
    println!(
        "create  -> {:?}",
        slack.create_user(&ada, Default::default()).await?
    );
    println!(
        "grant   -> {:?}",
        slack.add_to_group(&ada, "eng-oncall").await?
    );
    println!(
        "revoke  -> {:?}",
        slack.remove_from_group(&ada, "eng-oncall").await?
    );
    let leave = Operation::new(
        "default",
        "slack",
        OperationKind::DisableAccount,
        ada.clone(),
    );
    println!("disable -> {:?}", slack.apply(&leave).await?);
    println!(
        "user now: {}",
        mock.user("ada")
            .map(|u| u["active"].to_string())
            .unwrap_or_default()
    );
    Ok(())
}
