//! A product embedding one target through `iga-adapter` alone: it provisions a user,
//! grants a group through the typed conveniences, and prints what the target holds.
//! (When `iga-connector-scim` lands, this swaps `MemoryAdapter` for `ScimAdapter`.)

use iga_adapter::model::{EntitlementRef, Identity};
use iga_adapter::{MemoryAdapter, ProvisioningAdapterExt};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let target = MemoryAdapter::new("product-app");
    target.seed_entitlement(&EntitlementRef::group("app-users"));
    let dana = Identity::person("dana")
        .with_name("Dana", "Diaz")
        .with_email("dana@example.com");
    let created = target
        .create_user(&dana, Default::default())
        .await
        .expect("create");
    let granted = target
        .add_to_group(&dana, "app-users")
        .await
        .expect("grant");
    let groups = target.get_user_groups(&dana).await.expect("groups");
    println!(
        "created={} granted={} groups={groups:?}",
        created.name(),
        granted.name()
    );
}
