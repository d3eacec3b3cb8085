//! A joiner and leaver in AWS IAM and IAM Identity Center, against the in-process
//! mocks (`--features test-support`).
//!
//! `cargo run -p iga-connector-aws --features test-support --example leaver`

use iga_adapter::ProvisioningAdapter;
use iga_connector_aws::mock::IamMock;
use iga_connector_aws::mock_scim::IdentityCenterMock;
use iga_connector_aws::{IamAdapter, IdentityCenterAdapter};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iam_mock = IamMock::start().await;
    iam_mock.seed_group("developers");
    let iam = IamAdapter::new(iam_mock.config())?;
    let sso_mock = IdentityCenterMock::start().await;
    sso_mock.seed_group("developers");
    let sso = IdentityCenterAdapter::connect(sso_mock.config()).await?;

    let ada = Identity::person("emp-701")
        .with_user_name("ada")
        .with_name("Ada", "Lovelace")
        .with_email("ada@example.com");
    let dev = EntitlementRef::group("developers");
    for (name, target) in [
        ("iam", &iam as &dyn ProvisioningAdapter),
        ("identity-center", &sso),
    ] {
        let op = |kind| Operation::new("default", name, kind, ada.clone());
        for step in [
            op(OperationKind::CreateAccount),
            op(OperationKind::Grant).with_entitlement(dev.clone()),
            op(OperationKind::Revoke).with_entitlement(dev.clone()),
            op(OperationKind::DisableAccount),
        ] {
            let outcome = target.apply(&step).await?;
            println!("{name:<16} {:<16} {}", step.kind.as_str(), outcome.name());
        }
    }
    println!(
        "iam requests: {}, identity center requests: {}",
        iam.requests(),
        sso_mock.calls()
    );
    Ok(())
}
