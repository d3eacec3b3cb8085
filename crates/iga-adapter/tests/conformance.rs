//! The conformance kit against the reference adapter, in every form an embedder may
//! hold it, plus proof that the kit catches a misbehaving adapter.

use std::sync::Arc;

use async_trait::async_trait;
use iga_adapter::*;
use iga_adapter_testkit::{Fixture, Verdict, run_conformance};
use iga_directive::{Operation, OperationKind};

const CANARY: &str = "canary-secret-5b1e8c0d";

fn seeded(config: MemoryConfig) -> MemoryAdapter {
    let a = config.credential(CANARY).build();
    fixture(&a);
    a
}

fn fixture(a: &MemoryAdapter) -> Fixture {
    Fixture::for_memory(a, CANARY)
}

#[tokio::test]
async fn memory_adapter_passes_everything() {
    let a = seeded(MemoryAdapter::config("memory"));
    let report = run_conformance("memory", &a, &fixture(&a)).await;
    report.assert_ok();
    assert_eq!(report.not_applicable(), 0, "{}", report.summary());
    assert_eq!(report.passed(), 9);
    assert!(a.duplicate_effects().is_empty());
}

#[tokio::test]
async fn file_backed_memory_adapter_passes_everything_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("target.jsonl");
    let a = MemoryAdapter::config("memory-file")
        .credential(CANARY)
        .open_file(&path)
        .unwrap();
    let report = run_conformance("memory-file", &a, &fixture(&a)).await;
    report.assert_ok();
    assert_eq!(report.not_applicable(), 0);
    let (mutations, assignments) = (a.mutations(), a.assignments());
    drop(a);
    let reopened = MemoryAdapter::config("memory-file")
        .open_file(&path)
        .unwrap();
    assert_eq!(reopened.mutations(), mutations);
    assert_eq!(reopened.assignments(), assignments);
    let journal = std::fs::read_to_string(&path).unwrap();
    assert!(!journal.contains(CANARY));
}

#[tokio::test]
async fn arc_and_box_forms_pass() {
    let a = seeded(MemoryAdapter::config("memory-arc"));
    let arc: Arc<dyn ProvisioningAdapter> = Arc::new(a.clone());
    run_conformance("memory-arc", &arc, &fixture(&a))
        .await
        .assert_ok();
    let b = seeded(MemoryAdapter::config("memory-box"));
    let boxed: Box<dyn ProvisioningAdapter> = Box::new(b.clone());
    run_conformance("memory-box", &boxed, &fixture(&b))
        .await
        .assert_ok();
}

#[tokio::test]
async fn restricted_capabilities_are_honoured_and_reported_not_applicable() {
    let a = seeded(
        MemoryAdapter::config("memory-restricted")
            .operations(&[OperationKind::CreateAccount, OperationKind::Grant])
            .batch_max(1),
    );
    let report = run_conformance("memory-restricted", &a, &fixture(&a)).await;
    report.assert_ok();
    assert_eq!(report.verdict("capability_honesty"), Some(&Verdict::Passed));
    for s in [
        "grant_revoke_round_trip",
        "idempotent_reapply",
        "batch_partial_failure",
    ] {
        assert!(
            matches!(report.verdict(s), Some(Verdict::NotApplicable(_))),
            "{s}: {:?}",
            report.verdict(s)
        );
    }
}

/// An adapter that breaks the contract in two ways: it leaks its credential in Debug,
/// and it reports a repeated grant as an error.
#[derive(Debug)]
struct Leaky {
    inner: MemoryAdapter,
    #[allow(dead_code)]
    token: String,
}

impl std::fmt::Display for Leaky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Leaky")
    }
}

#[async_trait]
impl ProvisioningAdapter for Leaky {
    fn info(&self) -> AdapterInfo {
        self.inner.info()
    }
    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }
    async fn check(&self) -> Result<()> {
        self.inner.check().await
    }
    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        match self.inner.apply(op).await? {
            Outcome::AlreadyInState {
                reason: NoOpReason::AlreadyGranted,
                ..
            } => Err(Error::new(ErrorKind::Conflict, "member already exists")),
            o => Ok(o),
        }
    }
    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        iga_adapter::batch::sequential(self, ops).await
    }
    async fn read(&self, o: &ObjectRef) -> Result<Option<Observed>> {
        self.inner.read(o).await
    }
    async fn list_accounts(&self, p: PageRequest) -> Result<Page<Account>> {
        self.inner.list_accounts(p).await
    }
    async fn list_entitlements(&self, p: PageRequest) -> Result<Page<EntitlementInfo>> {
        self.inner.list_entitlements(p).await
    }
    async fn list_assignments(
        &self,
        s: &AssignmentScope,
        p: PageRequest,
    ) -> Result<Page<Assignment>> {
        self.inner.list_assignments(s, p).await
    }
}

#[tokio::test]
async fn the_kit_catches_a_contract_breaking_adapter() {
    let inner = seeded(MemoryAdapter::config("leaky"));
    let leaky = Leaky {
        inner: inner.clone(),
        token: CANARY.into(),
    };
    let report = run_conformance("leaky", &leaky, &fixture(&inner)).await;
    assert!(matches!(
        report.verdict("idempotent_reapply"),
        Some(Verdict::Failed(_))
    ));
    assert!(
        matches!(report.verdict("canary_secret"), Some(Verdict::Failed(m)) if m.contains("adapter Debug")),
        "{:?}",
        report.verdict("canary_secret")
    );
    assert!(report.failed() >= 2);
    assert!(report.summary().starts_with("conformance leaky passed="));
}
