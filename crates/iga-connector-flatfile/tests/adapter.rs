//! The adapter side beyond the conformance kit: the files a legacy job consumes.

use iga_adapter::{
    AccountRef, AssignmentScope, ErrorKind, NoOpReason, ObjectRef, Observed, Outcome, PageRequest,
    ProvisioningAdapter, ProvisioningAdapterExt,
};
use iga_connector_flatfile::*;
use iga_directive::{EntitlementKind, EntitlementRef, Identity, Operation, OperationKind};

const KEY: &str = "manifest-key-3f9a";

fn racf() -> Mapping {
    Mapping::accounts("USERID")
        .display_name("NAME")
        .enabled("REVOKED_NOT")
        .entitlements("GROUPS")
        .entitlement_kind(EntitlementKind::Generic("racf_group".into()))
        .separator(" ")
}

fn grant(who: &str, g: &str) -> Operation {
    Operation::new("acme", "racf", OperationKind::Grant, Identity::person(who))
        .with_entitlement(EntitlementRef::new(
            EntitlementKind::Generic("racf_group".into()),
            g,
        ))
        .with_id(format!("op-grant-{who}-{g}"))
}

fn seed(dir: &std::path::Path, bytes: &[u8]) {
    std::fs::write(dir.join("racf_users.csv"), bytes).unwrap();
}

fn racf_adapter(dir: &std::path::Path) -> FlatFileAdapter {
    FlatFileAdapterBuilder::new(dir)
        .with_file("racf_users.csv")
        .with_mapping(racf())
        .with_delimiter(';')
        .with_latin1()
        .with_line_ending(LineEnding::CrLf)
        .with_bool_literals("Y", "N")
        .with_roles(["AUDITOR"])
        .with_manifest_key(KEY)
        .build()
        .unwrap()
}

#[tokio::test]
async fn grant_writes_full_file_change_file_and_manifest_and_is_idempotent() {
    let d = tempfile::tempdir().unwrap();
    seed(d.path(), b"USERID;NAME;REVOKED_NOT;GROUPS;OWNER\r\nIBMUSER;M\xfcller;Y;SYS1 PAYROLL;SECADM\r\nJDOE;Doe;Y;SYS1;SECADM\r\n");
    let a = racf_adapter(d.path());
    assert_eq!(a.sequence(), 0);

    let first = a.apply(&grant("JDOE", "PAYROLL")).await.unwrap();
    assert_eq!(
        first,
        Outcome::Applied {
            native_id: Some("JDOE".into())
        }
    );
    assert_eq!(a.sequence(), 1);
    let bytes = std::fs::read(a.file_path()).unwrap();
    assert_eq!(
        bytes,
        b"USERID;NAME;REVOKED_NOT;GROUPS;OWNER\r\nIBMUSER;M\xfcller;Y;SYS1 PAYROLL;SECADM\r\nJDOE;Doe;Y;SYS1 PAYROLL;SECADM\r\n",
        "Latin-1, CRLF, `;`, unknown columns and row order preserved"
    );
    let changes = std::fs::read_to_string(a.change_file_path(1)).unwrap();
    assert_eq!(
        changes,
        "sequence;operation_id;action;account_id;entitlement;field;old_value;new_value\r\n1;op-grant-JDOE-PAYROLL;grant;JDOE;PAYROLL;GROUPS;SYS1;SYS1 PAYROLL\r\n"
    );
    let m = verify_manifest(&a.manifest_path(), Some(&KEY.into())).unwrap();
    assert_eq!(
        (m.sequence, m.full.rows, m.changes.as_ref().unwrap().rows),
        (1, 2, 1)
    );

    // Re-applying (a retry after a lost response) changes nothing and writes nothing.
    let again = a.apply(&grant("JDOE", "PAYROLL")).await.unwrap();
    assert_eq!(
        again,
        Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyGranted,
            native_id: Some("JDOE".into())
        }
    );
    assert_eq!(a.sequence(), 1);
    assert_eq!(std::fs::read(a.file_path()).unwrap(), bytes);
    assert!(!a.change_file_path(2).exists());

    // A re-import reads the new state back.
    let (rep, snap) = Importer::new(
        ImportOptions::default()
            .mapping(racf())
            .source(SourceOptions::default().delimiter(';')),
    )
    .import_snapshot(a.file_path())
    .unwrap();
    assert_eq!(rep.rows_imported, 2);
    let payroll = EntitlementRef::new(EntitlementKind::Generic("racf_group".into()), "PAYROLL");
    assert_eq!(snap.holders(&payroll), ["IBMUSER", "JDOE"]);
    assert_eq!(
        snap.identity("IBMUSER").unwrap().display_name.as_deref(),
        Some("Müller")
    );
}

#[tokio::test]
async fn a_batch_is_one_generation_and_bad_items_do_not_block_good_ones() {
    let d = tempfile::tempdir().unwrap();
    seed(
        d.path(),
        b"USERID;NAME;REVOKED_NOT;GROUPS\r\nJDOE;Doe;Y;SYS1\r\n",
    );
    let a = racf_adapter(d.path());
    let create = Operation::new(
        "acme",
        "racf",
        OperationKind::CreateAccount,
        Identity::person("NEWBIE").with_name("Neu", "Ling"),
    );
    let disable = Operation::new(
        "acme",
        "racf",
        OperationKind::DisableAccount,
        Identity::person("JDOE"),
    );
    let ops = vec![
        create,
        grant("NEWBIE", "AUDITOR"),
        grant("NEWBIE", "NOSUCH"),
        disable,
        grant("GHOST", "AUDITOR"),
    ];
    let results = a.apply_batch(&ops).await;
    assert!(results[0].as_ref().unwrap().changed());
    assert!(
        results[1].as_ref().unwrap().changed(),
        "grant after create in the same batch"
    );
    assert_eq!(results[2].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    assert!(results[3].as_ref().unwrap().changed());
    assert_eq!(results[4].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(a.sequence(), 1);
    let text = String::from_utf8(std::fs::read(a.file_path()).unwrap()).unwrap();
    assert_eq!(
        text,
        "USERID;NAME;REVOKED_NOT;GROUPS\r\nJDOE;Doe;N;SYS1\r\nNEWBIE;Neu Ling;Y;AUDITOR\r\n"
    );
    let m = verify_manifest(&a.manifest_path(), Some(&KEY.into())).unwrap();
    assert_eq!(m.changes.unwrap().rows, 3);
    let acc = a
        .read(&ObjectRef::Account(AccountRef::by_id("JDOE")))
        .await
        .unwrap();
    assert!(matches!(acc, Some(Observed::Account(x)) if !x.enabled));
}

#[tokio::test]
async fn tampering_and_wrong_keys_are_detected() {
    let d = tempfile::tempdir().unwrap();
    seed(
        d.path(),
        b"USERID;NAME;REVOKED_NOT;GROUPS\r\nJDOE;Doe;Y;SYS1\r\n",
    );
    let a = racf_adapter(d.path());
    a.apply(&grant("JDOE", "AUDITOR")).await.unwrap();
    assert!(matches!(
        verify_manifest(&a.manifest_path(), Some(&"other".into())),
        Err(ManifestError::BadSignature)
    ));
    let mut bytes = std::fs::read(a.file_path()).unwrap();
    bytes.extend_from_slice(b"EVIL;Mallory;Y;SYS1\r\n");
    std::fs::write(a.file_path(), &bytes).unwrap();
    let err = verify_manifest(&a.manifest_path(), Some(&KEY.into())).unwrap_err();
    assert!(
        matches!(err, ManifestError::Mismatch { what: "bytes", .. }),
        "{err}"
    );
}

#[tokio::test]
async fn an_external_rewrite_is_picked_up() {
    let d = tempfile::tempdir().unwrap();
    seed(
        d.path(),
        b"USERID;NAME;REVOKED_NOT;GROUPS\r\nJDOE;Doe;Y;SYS1\r\n",
    );
    let a = racf_adapter(d.path());
    assert_eq!(
        a.list_accounts(PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    // The legacy job replaces the file with its own export (different size).
    seed(
        d.path(),
        b"USERID;NAME;REVOKED_NOT;GROUPS\r\nJDOE;Doe;Y;SYS1\r\nASMITH;Smith;Y;AUDITOR SYS1\r\n",
    );
    let page = a.list_accounts(PageRequest::first(10)).await.unwrap();
    assert_eq!(
        page.items
            .iter()
            .map(|x| x.native_id.as_str())
            .collect::<Vec<_>>(),
        ["ASMITH", "JDOE"]
    );
    let holders = a
        .list_all_assignments(&AssignmentScope::Entitlement(EntitlementRef::new(
            EntitlementKind::Generic("racf_group".into()),
            "AUDITOR",
        )))
        .await
        .unwrap();
    assert_eq!(holders.len(), 1);
}

#[tokio::test]
async fn unencodable_values_and_unknown_attributes_are_refused_without_touching_the_file() {
    let d = tempfile::tempdir().unwrap();
    seed(
        d.path(),
        b"USERID;NAME;REVOKED_NOT;GROUPS\r\nJDOE;Doe;Y;SYS1\r\n",
    );
    let a = racf_adapter(d.path());
    let before = std::fs::read(a.file_path()).unwrap();
    let op = Operation::new(
        "acme",
        "racf",
        OperationKind::UpdateAccount,
        Identity::person("JDOE"),
    )
    .with_attribute("display_name", "Łukasz");
    assert_eq!(
        a.apply(&op).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let op = Operation::new(
        "acme",
        "racf",
        OperationKind::UpdateAccount,
        Identity::person("JDOE"),
    )
    .with_attribute("shoe_size", "44");
    assert_eq!(
        a.apply(&op).await.unwrap_err().kind(),
        ErrorKind::SchemaViolation
    );
    assert_eq!(std::fs::read(a.file_path()).unwrap(), before);
    let acc = a
        .read(&ObjectRef::Account(AccountRef::by_id("JDOE")))
        .await
        .unwrap();
    assert!(matches!(acc, Some(Observed::Account(x)) if x.display_name.as_deref() == Some("Doe")));
    assert_eq!(a.sequence(), 0);
}

#[tokio::test]
async fn a_failed_manifest_write_is_repaired_by_the_retry() {
    let d = tempfile::tempdir().unwrap();
    seed(
        d.path(),
        b"USERID;NAME;REVOKED_NOT;GROUPS\r\nJDOE;Doe;Y;SYS1\r\n",
    );
    let a = racf_adapter(d.path());
    // A directory where the manifest goes makes its rename fail.
    std::fs::create_dir(a.manifest_path()).unwrap();
    std::fs::write(a.manifest_path().join("x"), b"x").unwrap();
    assert!(a.apply(&grant("JDOE", "AUDITOR")).await.is_err());
    std::fs::remove_dir_all(a.manifest_path()).unwrap();
    // The retry finds the grant on disk and writes a manifest that matches it.
    let r = a.apply(&grant("JDOE", "AUDITOR")).await.unwrap();
    assert_eq!(
        r,
        Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyGranted,
            native_id: Some("JDOE".into())
        }
    );
    verify_manifest(&a.manifest_path(), Some(&KEY.into())).unwrap();
    for e in std::fs::read_dir(d.path()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "temp file left: {name}");
    }
}

#[tokio::test]
async fn a_header_without_a_mapped_column_is_a_config_error() {
    let d = tempfile::tempdir().unwrap();
    seed(d.path(), b"USERID;NAME\r\nJDOE;Doe\r\n");
    let err = FlatFileAdapterBuilder::new(d.path())
        .with_file("racf_users.csv")
        .with_mapping(racf())
        .with_delimiter(';')
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
    assert!(err.to_string().contains("REVOKED_NOT"), "{err}");
    // The key never shows in Debug.
    let a = racf_adapter(tempfile::tempdir().unwrap().path());
    assert!(!format!("{a:?}").contains(KEY));
}
