//! Bulk import: iterator and CSV, idempotence, progress, all-or-nothing errors, replay.
#![cfg(feature = "sqlite")]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use iga_directive::*;
use iga_ledger::*;

fn rule(who: &str, group: &str, source: GrantSource) -> ImportRule {
    ImportRule {
        tenant: "acme".into(),
        identity: who.into(),
        system: "entra".into(),
        entitlement: EntitlementRef::group(group),
        source,
    }
}

fn rules(n: usize) -> Vec<ImportRule> {
    (0..n)
        .map(|i| {
            rule(
                &format!("u{}", i / 3),
                &format!("G{}", i % 3),
                GrantSource::import("mig-1"),
            )
        })
        .collect()
}

#[test]
fn imported_rules_are_existing_access_and_reimport_changes_nothing() {
    let (_d, l) = fresh();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let opts = ImportOptions::new("mig-1", at(1))
        .actor("admin")
        .progress(10, move |p| s2.lock().unwrap().push(p.rows_read));
    let rep = l.import_rules(rules(30), opts).unwrap();
    assert_eq!(
        (rep.rows_read, rep.rows_changed, rep.rows_unchanged),
        (30, 30, 0)
    );
    assert!(rep.batch_id.is_some());
    assert_eq!(rep.digest.len(), 64);
    // Every 10 rows, and once at the end.
    assert_eq!(*seen.lock().unwrap(), vec![10, 20, 30, 30]);

    let st = l.assignment(&key("u0", "G1")).unwrap();
    assert_eq!((st.intended_sources, st.confirmed_sources), (1, 1));
    assert_eq!(l.table_count("lg_grant").unwrap(), 30);
    assert_eq!(l.history_len().unwrap(), 1);

    let tables = [
        "lg_grant",
        "lg_history",
        "lg_import_batch",
        "lg_import_item",
        "lg_identity",
    ];
    let before: Vec<u64> = tables.iter().map(|t| l.table_count(t).unwrap()).collect();
    let snap = l.snapshot().unwrap();
    let again = l
        .import_rules(rules(30), ImportOptions::new("mig-1", at(2)))
        .unwrap();
    assert_eq!((again.rows_changed, again.rows_unchanged), (0, 30));
    assert_eq!(again.batch_id, None);
    assert_eq!(again.digest, rep.digest);
    let after: Vec<u64> = tables.iter().map(|t| l.table_count(t).unwrap()).collect();
    assert_eq!(before, after);
    assert_eq!(l.snapshot().unwrap(), snap);
    assert_eq!(l.replay_history().unwrap(), snap);
}

#[test]
fn import_keeps_index_definitions_and_queries_work_after_a_bulk_load() {
    let (dir, l) = fresh();
    let c = rusqlite::Connection::open(dir.path().join("ledger.db")).unwrap();
    let idx = || -> Vec<(String, String)> {
        c.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let before = idx();
    assert!(before.iter().any(|(n, _)| n == "lg_grant_by_entitlement"));
    l.import_rules(rules(300), ImportOptions::new("m", at(1)))
        .unwrap();
    assert_eq!(idx(), before);
    let holders = l
        .holders_of("acme", "entra", &EntitlementRef::group("G2"))
        .unwrap();
    assert_eq!(holders.len(), 100);
    l.integrity_check().unwrap();
}

#[test]
fn import_confirms_pending_intent_and_keeps_other_sources() {
    let (_d, l) = fresh();
    let k = key("alice", "G");
    let req = GrantSource::request("servicenow", "R1");
    assert!(l.grant(&k, &req, &ctx(1)).unwrap().outcome.target_change());
    assert!(!l.assignment(&k).unwrap().target_visible());
    // The migration reports alice already has G through the legacy system.
    l.import_rules(
        vec![rule("alice", "G", GrantSource::import("legacy"))],
        ImportOptions::new("legacy", at(2)),
    )
    .unwrap();
    let srcs = l.sources_of(&k).unwrap();
    assert_eq!(srcs.len(), 2);
    assert!(srcs.iter().all(|s| s.intended && s.confirmed));
    // Revoking the imported source keeps the request's access.
    let d = l
        .revoke(&k, &GrantSource::import("legacy"), &ctx(3))
        .unwrap();
    assert_eq!(d.outcome, DecisionOutcome::RevokeCounted);
    assert_eq!(l.replay_history().unwrap(), l.snapshot().unwrap());
}

#[test]
fn bad_rows_reject_the_whole_import_listing_rows_and_reasons() {
    let (_d, l) = fresh();
    l.import_rules(rules(3), ImportOptions::new("first", at(0)))
        .unwrap();
    let before = l.snapshot().unwrap();
    let counts_before: Vec<u64> = [
        "lg_grant",
        "lg_identity",
        "lg_source",
        "lg_import_batch",
        "lg_import_item",
        "lg_history",
    ]
    .iter()
    .map(|t| l.table_count(t).unwrap())
    .collect();
    let csv = "\
tenant,identity,system,entitlement_kind,entitlement,source
acme,carol,entra,group,G1,import:mig-2
acme,,entra,group,G1,import:mig-2
acme,dave,entra,role,Admin,gift:xmas
acme,erin,entra,group,,birthright:r1
acme,frank,entra,group,G1
acme,gina,entra,group,G2,request:
acme,hank,entra,group,G3,birthright:r1
";
    let e = l
        .import_csv(csv.as_bytes(), ImportOptions::new("mig-2", at(1)))
        .unwrap_err();
    let LedgerError::ImportRejected(r) = &e else {
        panic!("{e}")
    };
    assert_eq!(r.rows_read, 7);
    assert_eq!(r.total_errors, 5);
    let got: Vec<(u64, &str)> = r.errors.iter().map(|e| (e.row, e.field)).collect();
    assert_eq!(
        got,
        [
            (3, "identity"),
            (4, "source"),
            (5, "entitlement"),
            (6, "row"),
            (7, "source")
        ]
    );
    let msg = e.to_string();
    assert!(msg.contains("nothing written"), "{msg}");
    assert!(
        msg.contains("row 4: source: unknown source kind `gift`"),
        "{msg}"
    );
    assert!(msg.contains("row 6: row: malformed CSV row"), "{msg}");
    // No partial rows: carol and hank (valid) were not written either.
    assert_eq!(l.snapshot().unwrap(), before);
    let counts_after: Vec<u64> = [
        "lg_grant",
        "lg_identity",
        "lg_source",
        "lg_import_batch",
        "lg_import_item",
        "lg_history",
    ]
    .iter()
    .map(|t| l.table_count(t).unwrap())
    .collect();
    assert_eq!(counts_before, counts_after);
}

#[test]
fn error_list_is_capped_but_counts_everything() {
    let (_d, l) = fresh();
    let mut opts = ImportOptions::new("m", at(0));
    opts.max_reported_errors = 2;
    let bad: Vec<ImportRule> = (0..5)
        .map(|i| rule("", &format!("G{i}"), GrantSource::import("m")))
        .collect();
    let e = l.import_rules(bad, opts).unwrap_err();
    let LedgerError::ImportRejected(r) = &e else {
        panic!("{e}")
    };
    assert_eq!((r.errors.len(), r.total_errors), (2, 5));
    assert!(e.to_string().contains("and 3 more"), "{e}");
}

#[test]
fn csv_import_with_defaults_and_header_errors() {
    let (_d, l) = fresh();
    let csv = "identity,system,entitlement,source\nalice,ldap,cn=admins,birthright:it\nbob,ldap,cn=admins,request:jira:ACC-7\n";
    let rep = l
        .import_csv(
            csv.as_bytes(),
            ImportOptions::new("m", at(0)).default_tenant("acme"),
        )
        .unwrap();
    assert_eq!(rep.rows_changed, 2);
    let k = AssignmentKey::new("acme", "bob", "ldap", EntitlementRef::group("cn=admins"));
    assert_eq!(
        l.sources_of(&k).unwrap()[0].source,
        GrantSource::request("jira", "ACC-7")
    );
    let e = l
        .import_csv(
            "identity,system,source\na,b,import:x\n".as_bytes(),
            ImportOptions::new("m", at(0)),
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("row 1: header: missing column `entitlement`"),
        "{e}"
    );
}

#[test]
fn failpoint_before_commit_rolls_back_an_import() {
    let (_d, l) = fresh();
    l.set_failpoint(Some(FailPoint::BeforeCommit));
    let e = l
        .import_rules(rules(10), ImportOptions::new("m", at(0)))
        .unwrap_err();
    assert!(matches!(e, LedgerError::Injected(_)));
    l.set_failpoint(None);
    assert_eq!(l.table_count("lg_grant").unwrap(), 0);
    assert_eq!(l.table_count("lg_identity").unwrap(), 0);
    assert_eq!(l.table_count("lg_import_batch").unwrap(), 0);
}

#[test]
fn typed_sink_import_and_interning_across_batches() {
    let (_d, l) = fresh();
    l.import_rules(rules(6), ImportOptions::new("a", at(0)))
        .unwrap();
    // A second batch reuses interned names and adds one new source.
    let rep = l
        .import(ImportOptions::new("b", at(1)), |sink| {
            for who in ["u0", "u1", "u9"] {
                sink.add(&RuleRow {
                    tenant: "acme",
                    identity: who,
                    system: "entra",
                    entitlement_kind: "",
                    entitlement_id: "G0",
                    source_kind: "birthright",
                    source_detail: "all-staff",
                })?;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(rep.rows_changed, 3);
    assert_eq!(l.table_count("lg_identity").unwrap(), 3);
    assert_eq!(l.table_count("lg_source").unwrap(), 2);
    assert_eq!(l.sources_of(&key("u0", "G0")).unwrap().len(), 2);
    assert_eq!(l.replay_history().unwrap(), l.snapshot().unwrap());
}
