//! The conformance kit against the manual adapter, with an owner who completes every
//! task the moment it is opened (so each operation answers `Applied` at once, and the
//! target's state is what the completed tasks say).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use iga_adapter::{ProvisioningAdapter, Result};
use iga_adapter_testkit::{Fixture, IoProbe, run_conformance};
use iga_connector_manual::{
    ManualAdapter, ManualConfig, MemoryTaskStore, Resolution, Task, TaskStore,
};
use iga_directive::{EntitlementRef, Timestamp};

/// A task store whose owner completes each task as soon as it is opened; counts calls.
#[derive(Debug, Default)]
struct PromptOwner {
    inner: MemoryTaskStore,
    calls: AtomicU64,
}

#[async_trait]
impl TaskStore for PromptOwner {
    async fn open(&self, task: Task) -> Result<Task> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let t = self.inner.open(task).await?;
        let at = t.created_at;
        self.inner
            .resolve(&t.id, Resolution::complete(Some("prompt-owner")), at)
            .await
    }
    async fn get(&self, id: &str) -> Result<Option<Task>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.get(id).await
    }
    async fn open_tasks(&self, system: Option<&str>, limit: usize) -> Result<Vec<Task>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.open_tasks(system, limit).await
    }
    async fn resolve(&self, id: &str, r: Resolution, at: Timestamp) -> Result<Task> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.resolve(id, r, at).await
    }
    async fn resolved(&self, system: &str) -> Result<Vec<Task>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.resolved(system).await
    }
}

struct Probe(Arc<PromptOwner>);

impl IoProbe for Probe {
    fn calls(&self) -> u64 {
        self.0.calls.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn manual_adapter_passes_conformance_with_a_prompt_owner() {
    let store = Arc::new(PromptOwner::default());
    let config = ManualConfig::new("manual-conformance", Some("it-ops"))
        .entitlement(EntitlementRef::group("conformance-a"), Some("owner-a"))
        .entitlement(EntitlementRef::group("conformance-b"), None);
    let adapter = ManualAdapter::new(config, store.clone());
    adapter.check().await.expect("check");
    let fixture = Fixture::new()
        .entitlements(vec![
            EntitlementRef::group("conformance-a"),
            EntitlementRef::group("conformance-b"),
        ])
        .missing_entitlement(EntitlementRef::group("conformance-missing"))
        .canary("canary-manual-7c1e")
        .io_probe(Arc::new(Probe(store.clone())));
    let report = run_conformance("manual", &adapter, &fixture).await;
    report.assert_ok();
    // Only the native-batch scenario does not apply (no batch: batch_max = 1).
    assert_eq!(report.not_applicable(), 1, "{}", report.summary());
    assert!(
        store.inner.len() > 10,
        "tasks were opened: {}",
        store.inner.len()
    );
}
