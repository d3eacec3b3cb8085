//! The conformance kit against the flat-file adapter, targets in a temp dir.

use std::sync::Arc;

use iga_adapter::ProvisioningAdapter;
use iga_adapter_testkit::{Fixture, IoProbe, run_conformance};
use iga_connector_flatfile::{FlatFileAdapter, FlatFileAdapterBuilder, verify_manifest};
use iga_directive::{EntitlementKind, EntitlementRef};

const CANARY: &str = "canary-secret-flatfile-91c2e7";

struct Probe(FlatFileAdapter);

impl IoProbe for Probe {
    fn calls(&self) -> u64 {
        self.0.io_calls()
    }
}

fn adapter(dir: &std::path::Path) -> FlatFileAdapter {
    FlatFileAdapterBuilder::new(dir)
        .with_name("flatfile-conformance")
        .with_entitlement_kind(EntitlementKind::Role)
        .with_roles(["conformance-a", "conformance-b"])
        .with_manifest_key(CANARY)
        .with_batch_max(50)
        .build()
        .unwrap()
}

fn fixture(a: &FlatFileAdapter) -> Fixture {
    Fixture::new()
        .entitlements(vec![
            EntitlementRef::role("conformance-a"),
            EntitlementRef::role("conformance-b"),
        ])
        .missing_entitlement(EntitlementRef::role("conformance-missing"))
        .canary(CANARY)
        .io_probe(Arc::new(Probe(a.clone())))
}

#[tokio::test]
async fn flatfile_adapter_passes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let a = adapter(dir.path());
    let report = run_conformance("flatfile", &a, &fixture(&a)).await;
    report.assert_ok();
    assert_eq!(report.not_applicable(), 0, "{}", report.summary());
    assert_eq!(report.failed(), 0);

    // Every generation left a verifiable manifest; none of the files holds the key.
    let m = verify_manifest(&a.manifest_path(), Some(&CANARY.into())).unwrap();
    assert_eq!(m.sequence, a.sequence());
    assert!(m.sequence > 5);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(!text.contains(CANARY), "{} holds the key", p.display());
        assert!(
            !p.file_name().unwrap().to_string_lossy().contains(".tmp-"),
            "temp file left: {}",
            p.display()
        );
    }
    // Cleanup deleted every conformance account: only the header is left.
    let full = std::fs::read_to_string(a.file_path()).unwrap();
    assert_eq!(full.lines().count(), 1, "{full}");
}

#[tokio::test]
async fn boxed_form_passes_and_reopened_adapter_sees_the_same_target() {
    let dir = tempfile::tempdir().unwrap();
    let a = adapter(dir.path());
    let boxed: Box<dyn ProvisioningAdapter> = Box::new(a.clone());
    run_conformance("flatfile-box", &boxed, &fixture(&a))
        .await
        .assert_ok();
    let again = adapter(dir.path());
    assert_eq!(again.sequence(), a.sequence());
}
