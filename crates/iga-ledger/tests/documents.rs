//! Versioned documents: create-only, compare-and-set, conditional delete, keyset
//! listing, validation, persistence across reopen.
#![cfg(feature = "sqlite")]

mod common;

use common::*;
use iga_ledger::*;

#[test]
fn versions_are_etags_and_conditions_are_enforced() {
    let (_d, l) = fresh();
    // Create-only.
    assert_eq!(
        l.put_document(
            "scim.users",
            "u1",
            r#"{"userName":"bjensen"}"#,
            Some(0),
            at(1)
        )
        .unwrap(),
        1
    );
    match l.put_document("scim.users", "u1", r#"{"userName":"x"}"#, Some(0), at(2)) {
        Err(LedgerError::VersionConflict {
            expected, found, ..
        }) => assert_eq!((expected, found), (0, 1)),
        other => panic!("create over an existing document must conflict: {other:?}"),
    }
    // Compare-and-set: the right version wins, a stale one loses and changes nothing.
    assert_eq!(
        l.put_document("scim.users", "u1", r#"{"userName":"bj2"}"#, Some(1), at(3))
            .unwrap(),
        2
    );
    let e = l
        .put_document(
            "scim.users",
            "u1",
            r#"{"userName":"stale"}"#,
            Some(1),
            at(4),
        )
        .unwrap_err();
    assert!(e.to_string().contains("expected version 1, found 2"), "{e}");
    let doc = l.get_document("scim.users", "u1").unwrap().unwrap();
    assert_eq!(
        (doc.version, doc.body.as_str()),
        (2, r#"{"userName":"bj2"}"#)
    );
    assert_eq!(doc.updated_at, at(3));
    // Unconditional write.
    assert_eq!(
        l.put_document("scim.users", "u1", "{}", None, at(5))
            .unwrap(),
        3
    );
    // A CAS on a missing document conflicts (found 0).
    assert!(matches!(
        l.put_document("scim.users", "nope", "{}", Some(4), at(5)),
        Err(LedgerError::VersionConflict { found: 0, .. })
    ));
    // Conditional delete.
    assert!(matches!(
        l.delete_document("scim.users", "u1", Some(2)),
        Err(LedgerError::VersionConflict { found: 3, .. })
    ));
    assert!(l.delete_document("scim.users", "u1", Some(3)).unwrap());
    assert!(!l.delete_document("scim.users", "u1", None).unwrap());
    assert!(l.get_document("scim.users", "u1").unwrap().is_none());
}

#[test]
fn bad_input_names_the_document_and_writes_nothing() {
    let (_d, l) = fresh();
    let e = l
        .put_document("ns", "k", "{not json", None, at(1))
        .unwrap_err();
    assert!(e.to_string().contains("document ns/k.body"), "{e}");
    assert!(l.get_document("ns", "k").unwrap().is_none());
    assert!(l.put_document("", "k", "{}", None, at(1)).is_err());
    assert!(l.put_document("ns", " ", "{}", None, at(1)).is_err());
}

#[test]
fn listing_is_keyset_paged_per_namespace_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docs.db");
    {
        let l = SqliteLedger::open(&path).unwrap();
        for i in 0..25 {
            l.put_document(
                "a",
                &format!("k{i:03}"),
                &format!("{{\"n\":{i}}}"),
                None,
                at(i),
            )
            .unwrap();
        }
        l.put_document("b", "k000", "{}", None, at(0)).unwrap();
    }
    let l = SqliteLedger::open(&path).unwrap();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = l.list_documents("a", after.as_deref(), 10).unwrap();
        if page.is_empty() {
            break;
        }
        after = Some(page.last().unwrap().key.clone());
        seen.extend(page.into_iter().map(|d| d.key));
    }
    let want: Vec<String> = (0..25).map(|i| format!("k{i:03}")).collect();
    assert_eq!(seen, want);
    assert_eq!(l.list_documents("b", None, 10).unwrap().len(), 1);
}

#[tokio::test]
async fn the_async_store_exposes_the_same_documents() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path().join("s.db")).await.unwrap();
    let v = s
        .put_document("hr.snapshot", "feed", r#"{"rows":1}"#, Some(0), at(1))
        .await
        .unwrap();
    assert_eq!(v, 1);
    let d = s
        .get_document("hr.snapshot", "feed")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.body, r#"{"rows":1}"#);
    assert_eq!(
        s.list_documents("hr.snapshot", None, 5)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        s.delete_document("hr.snapshot", "feed", Some(1))
            .await
            .unwrap()
    );
}
