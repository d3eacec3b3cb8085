//! Invite a developer to an organization, add them to a team and a repository, and
//! off-board them — against the in-process GitHub mock:
//!
//! ```text
//! cargo run -p iga-connector-github --example github_team_access
//! ```
//!
//! Against github.com use `GithubConfig::new("<org>", <token>)` or
//! `.app(<app id>, <installation id>, <private key PEM>)`.

use iga_adapter::{AccountRef, AssignmentScope, ProvisioningAdapter, ProvisioningAdapterExt};
use iga_connector_github::mock::MockServer;
use iga_connector_github::{GithubAdapter, GithubConfig, REPOSITORY_KIND};
use iga_directive::{EntitlementKind, EntitlementRef, Identity, Operation, OperationKind};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = MockServer::start().await;
    mock.add_users(["octo-ada"]);
    mock.add_team("platform");
    mock.add_repo("api");
    let gh = GithubAdapter::new(GithubConfig::with_api_url(
        mock.url(),
        mock.org(),
        mock.token().to_string(),
    )?)?;
    gh.check().await?;
    let ada = Identity::person("hr-701").with_user_name("octo-ada");
    println!(
        "invite  -> {:?} (state {:?})",
        gh.create_user(&ada, Default::default()).await?,
        mock.membership_state("octo-ada")
    );
    println!("team    -> {:?}", gh.add_to_group(&ada, "platform").await?);
    mock.accept_invitation("octo-ada");
    let repo = EntitlementRef::new(EntitlementKind::Generic(REPOSITORY_KIND.into()), "api:push");
    let grant = Operation::new("default", "github", OperationKind::Grant, ada.clone())
        .with_entitlement(repo);
    println!("repo    -> {:?}", gh.apply(&grant).await?);
    let held = gh
        .list_all_assignments(&AssignmentScope::Account(AccountRef::of(&ada)))
        .await?;
    println!(
        "holds   -> {:?}",
        held.iter().map(|a| &a.entitlement.id).collect::<Vec<_>>()
    );
    let leave = Operation::new(
        "default",
        "github",
        OperationKind::DeleteAccount,
        ada.clone(),
    );
    println!("remove  -> {:?}", gh.apply(&leave).await?);
    println!(
        "{} requests, {} answered 304",
        mock.calls(),
        mock.not_modified()
    );
    Ok(())
}
