//! A RACF-style export goes in, a role request comes out as files for the legacy job,
//! and the next export confirms it.
//!
//! ```text
//! cargo run -p iga-connector-flatfile --example mainframe_roundtrip [DIR]
//! ```
//! Without DIR a temporary directory is used.

use iga_adapter::ProvisioningAdapter;
use iga_connector_flatfile::{
    FlatFileAdapterBuilder, ImportOptions, Importer, Mapping, SourceOptions, verify_manifest,
};
use iga_directive::{EntitlementKind, EntitlementRef, Identity, Operation, OperationKind};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| tmp.path().to_path_buf(), Into::into);
    std::fs::create_dir_all(&dir)?;
    let export = dir.join("racf_users.csv");
    std::fs::write(
        &export,
        "USERID;NAME;ACTIVE;GROUPS\nIBMUSER;System Admin;Y;SYS1 SECADM\nJDOE;Jane Doe;Y;SYS1\nASMITH;Al Smith;N;SYS1 PAYROLL\n",
    )?;
    let kind = EntitlementKind::Generic("racf_group".into());
    let mapping = Mapping::accounts("USERID")
        .display_name("NAME")
        .enabled("ACTIVE")
        .entitlements("GROUPS")
        .separator(" ")
        .entitlement_kind(kind.clone());
    let importer = Importer::new(
        ImportOptions::default()
            .mapping(mapping.clone())
            .source(SourceOptions::default().delimiter(';')),
    );

    let schema = importer.infer(&export)?;
    println!("key candidates: {:?}", schema.key_candidates);
    let (report, before) = importer.import_snapshot(&export)?;
    println!(
        "imported {} accounts, {} assignments, entitlements {:?}",
        report.rows_imported,
        before.assignments.len(),
        report.entitlements
    );

    let target = FlatFileAdapterBuilder::new(&dir)
        .with_name("racf-prod")
        .with_file("racf_users.csv")
        .with_mapping(mapping)
        .with_delimiter(';')
        .with_bool_literals("Y", "N")
        .with_manifest_key("demo-key")
        .build()?;
    let payroll = EntitlementRef::new(kind, "PAYROLL");
    let op = Operation::new(
        "acme",
        "racf-prod",
        OperationKind::Grant,
        Identity::person("JDOE"),
    )
    .with_entitlement(payroll.clone());
    println!("grant: {:?}", target.apply(&op).await?);
    println!("again: {:?}", target.apply(&op).await?);
    let manifest = verify_manifest(&target.manifest_path(), Some(&"demo-key".into()))?;
    println!(
        "manifest #{}: {} rows sha256={}",
        manifest.sequence, manifest.full.rows, manifest.full.sha256
    );
    print!(
        "{}",
        std::fs::read_to_string(target.change_file_path(manifest.sequence))?
    );

    let (_, after) = importer.import_snapshot(&export)?;
    let delta = after.delta_from(&before);
    println!("re-import delta: added {:?}", delta.added_assignments);
    println!("holders of PAYROLL: {:?}", after.holders(&payroll));
    Ok(())
}
