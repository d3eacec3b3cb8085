//! A manual system: a grant opens a task for the entitlement's owner, the owner
//! completes it, and applying the grant again answers `Applied`.
//!
//! `cargo run -p iga-connector-manual --example owner_queue`

use std::sync::Arc;

use iga_adapter::ProvisioningAdapter;
use iga_connector_manual::{ManualAdapter, ManualConfig, MemoryTaskStore};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = ManualConfig::new("badge-office", Some("facilities"))
        .entitlement(EntitlementRef::group("building-a"), Some("security-desk"));
    let manual = ManualAdapter::new(config, Arc::new(MemoryTaskStore::new()));
    let op = Operation::new(
        "acme",
        "badge-office",
        OperationKind::Grant,
        Identity::person("dana"),
    )
    .with_entitlement(EntitlementRef::group("building-a"))
    .with_id("directive-1.0");
    println!("first apply: {:?}", manual.apply(&op).await?);
    for task in manual.open_tasks(10).await? {
        println!("task {} for {:?}: {}", task.id, task.owner, task.summary);
        manual.complete(&task.id, Some("guard-1")).await?;
    }
    println!("after completion: {:?}", manual.apply(&op).await?);
    Ok(())
}
