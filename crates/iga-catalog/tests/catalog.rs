//! Catalog behaviour on the SQLite store: delegation enforcement and history,
//! lifecycle, resolver/linked exports, Quick Populate, bulk upload (CSV and XLSX),
//! discovery against the in-memory adapter.

use std::sync::Arc;
use std::time::Duration;

use iga_adapter::MemoryAdapter;
use iga_catalog::{
    Actor, Catalog, CatalogEntry, CatalogError, Delegation, DelegationScope, EntryKey, Lifecycle,
    RiskLevel,
};
use iga_directive::{EntitlementKind, EntitlementRef, ManualClock, Timestamp};
use iga_ledger::{LedgerStore, SqliteLedger, SqliteStore};
use iga_resolver::Endpoint;

fn catalog() -> Catalog {
    let store: Arc<dyn LedgerStore> =
        Arc::new(SqliteStore::new(SqliteLedger::open_in_memory().unwrap()));
    Catalog::new(store)
}

fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

fn entry(system: &str, id: &str, owner: &str) -> CatalogEntry {
    CatalogEntry::new(system, EntitlementRef::group(id))
        .display_name(format!("{id} group"))
        .owner(owner)
        .risk(RiskLevel::Medium)
        .flags(true, true)
}

fn forbidden_reason(r: Result<u64, CatalogError>) -> String {
    match r {
        Err(CatalogError::Forbidden { reason, .. }) => reason,
        other => panic!("expected Forbidden, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_allowed_expired_out_of_scope_revoked_all_recorded() {
    let cat = catalog();
    let clock = ManualClock::at_epoch();
    let admin = Actor::admin("root");
    let owner = Actor::user("olivia");
    let bob = Actor::user("bob");
    cat.create(&admin, entry("ldap", "finance", "olivia"), clock.now_ts())
        .await
        .unwrap();
    cat.create(
        &admin,
        entry("github", "maintainers", "olivia"),
        clock.now_ts(),
    )
    .await
    .unwrap();
    let fin = EntryKey::new("ldap", &EntitlementKind::Group, "finance");
    let gh = EntryKey::new("github", &EntitlementKind::Group, "maintainers");

    // Without a delegation bob may not touch olivia's entries.
    let reason = forbidden_reason(cat.publish(&bob, &fin, clock.now_ts()).await);
    assert!(reason.contains("holds no delegation"), "{reason}");

    // A delegate may not delegate on the owner's behalf.
    let now = clock.now_ts();
    let d = Delegation::new(
        "olivia",
        "bob",
        DelegationScope::system("ldap"),
        now,
        now + chrono::Duration::hours(8),
    );
    let err = cat.delegate(&bob, d.clone(), now).await.unwrap_err();
    assert!(matches!(err, CatalogError::Forbidden { .. }), "{err}");
    let d = cat.delegate(&owner, d, now).await.unwrap();

    // Allowed: inside scope and time.
    clock.advance(hours(1));
    cat.publish(&bob, &fin, clock.now_ts()).await.unwrap();
    let h = cat.history(fin.as_str()).await.unwrap();
    let last = h.last().unwrap();
    assert_eq!(
        (last.actor.as_str(), last.action.as_str()),
        ("bob", "publish")
    );
    assert_eq!(last.via, format!("delegation {}", d.id));

    // Out of scope: another system.
    let reason = forbidden_reason(cat.publish(&bob, &gh, clock.now_ts()).await);
    assert!(reason.contains("out of scope"), "{reason}");

    // A delegate cannot change the owners.
    let mut stolen = cat.get(&fin).await.unwrap().unwrap();
    stolen.entry.owners = vec!["bob".into()];
    let reason = forbidden_reason(
        cat.update(&bob, stolen.entry, stolen.version, clock.now_ts())
            .await,
    );
    assert!(reason.contains("owners"), "{reason}");

    // Expired.
    clock.advance(hours(8));
    let mut e = cat.get(&fin).await.unwrap().unwrap();
    e.entry.risk = RiskLevel::High;
    let reason = forbidden_reason(
        cat.update(&bob, e.entry.clone(), e.version, clock.now_ts())
            .await,
    );
    assert!(reason.contains("expired"), "{reason}");

    // Renewed, then revoked.
    let now = clock.now_ts();
    let d2 = cat
        .delegate(
            &owner,
            Delegation::new(
                "olivia",
                "bob",
                DelegationScope::all(),
                now,
                now + chrono::Duration::hours(8),
            ),
            now,
        )
        .await
        .unwrap();
    cat.update(&bob, e.entry.clone(), e.version, now)
        .await
        .unwrap();
    cat.revoke_delegation(&owner, &d2.id, now).await.unwrap();
    let e = cat.get(&fin).await.unwrap().unwrap();
    let reason = forbidden_reason(cat.deprecate(&bob, &fin, clock.now_ts()).await);
    assert!(reason.contains("revoked"), "{reason}");
    assert_eq!(e.entry.risk, RiskLevel::High);

    // History: every write with its actor, in order, and the delegations' own.
    let h = cat.history(fin.as_str()).await.unwrap();
    let seen: Vec<(&str, &str)> = h
        .iter()
        .map(|r| (r.actor.as_str(), r.action.as_str()))
        .collect();
    assert_eq!(
        seen,
        [("root", "create"), ("bob", "publish"), ("bob", "update")]
    );
    let dh = cat.history(&d2.id).await.unwrap();
    let seen: Vec<(&str, &str)> = dh
        .iter()
        .map(|r| (r.actor.as_str(), r.action.as_str()))
        .collect();
    assert_eq!(
        seen,
        [("olivia", "delegate"), ("olivia", "revoke_delegation")]
    );
    // Stale compare-and-set is a conflict, not a lost update.
    let mut stale = e.entry.clone();
    stale.description = Some("x".into());
    let err = cat
        .update(&owner, stale, e.version - 1, clock.now_ts())
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::Conflict { .. }), "{err}");
}

trait NowTs {
    fn now_ts(&self) -> Timestamp;
}
impl NowTs for ManualClock {
    fn now_ts(&self) -> Timestamp {
        iga_directive::Clock::now(self)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_prerequisites_and_linked_groups_feed_their_consumers() {
    let cat = catalog();
    let now = ManualClock::at_epoch().now_ts();
    let admin = Actor::admin("root");
    let e = entry("app", "ledger-viewer", "olivia")
        .prerequisite(Endpoint::system("ldap"))
        .prerequisite(Endpoint::entitlement(
            "ldap",
            EntitlementRef::group("finance"),
        ))
        .linked_to("okta", EntitlementRef::group("app-ledger-viewers"));
    let key = e.key();
    cat.create(&admin, e, now).await.unwrap();
    // Drafts feed nothing.
    assert!(cat.dependencies().await.unwrap().is_empty());
    assert!(cat.linked_entitlements("app").await.unwrap().is_empty());
    cat.publish(&admin, &key, now).await.unwrap();
    let deps = cat.dependencies().await.unwrap();
    assert_eq!(deps.len(), 2);
    assert_eq!(deps[0].before, Endpoint::system("ldap"));
    assert_eq!(
        deps[1].after,
        Endpoint::entitlement("app", EntitlementRef::group("ledger-viewer"))
    );
    let cfg = cat
        .resolver_config(iga_resolver::ResolverConfig::default())
        .await
        .unwrap();
    assert_eq!(cfg.dependencies, deps);
    let linked = cat.linked_entitlements("app").await.unwrap();
    assert_eq!(linked[0].1.group.id, "app-ledger-viewers");
    // A linked adapter needs the IdP adapter.
    let err = cat
        .linked_adapter("app", &Default::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("okta"), "{err}");
    let okta: Arc<dyn iga_adapter::ProvisioningAdapter> = Arc::new(MemoryAdapter::new("okta"));
    let la = cat
        .linked_adapter("app", &[("okta".to_string(), okta)].into_iter().collect())
        .await
        .unwrap();
    assert_eq!(la.links().len(), 1);
    // Published → draft is refused; deprecated is terminal.
    let err = cat
        .set_lifecycle(&admin, &key, Lifecycle::Draft, now)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lifecycle"), "{err}");
    cat.deprecate(&admin, &key, now).await.unwrap();
    assert!(cat.publish(&admin, &key, now).await.is_err());
    // Publishing needs an owner.
    let orphan = CatalogEntry::new("app", EntitlementRef::group("orphan"));
    let ok = orphan.key();
    cat.create(&admin, orphan, now).await.unwrap();
    let err = cat.publish(&admin, &ok, now).await.unwrap_err();
    assert!(err.to_string().contains("owner"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_populate_is_idempotent_for_thousands() {
    let cat = catalog();
    let now = ManualClock::at_epoch().now_ts();
    let admin = Actor::admin("migration");
    let batch: Vec<CatalogEntry> = (0..3000)
        .map(|i| {
            entry(
                if i % 2 == 0 { "ldap" } else { "app" },
                &format!("g{i:04}"),
                "olivia",
            )
        })
        .collect();
    let r = cat
        .quick_populate(&admin, batch.clone(), now)
        .await
        .unwrap();
    assert_eq!((r.created, r.updated, r.unchanged), (3000, 0, 0));
    let r = cat
        .quick_populate(&admin, batch.clone(), now)
        .await
        .unwrap();
    assert_eq!((r.created, r.updated, r.unchanged), (0, 0, 3000));
    let mut changed = batch[..10].to_vec();
    changed[3].risk = RiskLevel::Critical;
    let r = cat.quick_populate(&admin, changed, now).await.unwrap();
    assert_eq!((r.created, r.updated, r.unchanged), (0, 1, 9));
    assert_eq!(cat.list().await.unwrap().len(), 3000);
    assert_eq!(cat.list_system("ldap").await.unwrap().len(), 1500);
    // A non-owner's seed is refused before anything is written.
    let err = cat
        .quick_populate(
            &Actor::user("eve"),
            vec![entry("ldap", "new-one", "olivia")],
            now,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::Forbidden { .. }), "{err}");
    assert_eq!(cat.list().await.unwrap().len(), 3000);
}

const HEADER: &str = "system,kind,entitlement,display_name,description,owners,risk,requestable,certifiable,prerequisites,idp_system,idp_group,lifecycle\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_upload_csv_rejects_whole_file_then_accepts_good_one() {
    let cat = catalog();
    let now = ManualClock::at_epoch().now_ts();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("catalog.csv");
    std::fs::write(
        &bad,
        format!(
            "{HEADER}ldap,group,finance,Finance,All finance,olivia,high,yes,yes,,,,published\n\
             ldap,group,hr,HR,,olivia,extreme,no,yes,,,,draft\n\
             app,app_role,viewer,Viewer,,olivia;bob,low,maybe,no,ldap/finance,okta,app-viewers,draft\n"
        ),
    )
    .unwrap();
    let admin = Actor::admin("root");
    let err = cat.bulk_upload(&admin, &bad, now).await.unwrap_err();
    let CatalogError::UploadRejected(report) = err else {
        panic!("expected a rejection, got {err:?}")
    };
    let text: Vec<String> = report.issues.iter().map(|i| i.to_string()).collect();
    assert_eq!(report.issues.len(), 2, "{text:#?}");
    assert_eq!(report.issues[0].row, 3);
    assert_eq!(report.issues[0].column.as_deref(), Some("risk"));
    assert!(
        text[0].starts_with(&format!("{}: row 3, column \"risk\"", bad.display())),
        "{}",
        text[0]
    );
    assert_eq!(report.issues[1].row, 4);
    assert_eq!(report.issues[1].column.as_deref(), Some("requestable"));
    assert!(cat.list().await.unwrap().is_empty(), "nothing written");
    assert!(cat.all_history().await.unwrap().is_empty());

    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        format!(
            "{HEADER}ldap,group,finance,Finance,All finance,olivia,high,yes,yes,,,,published\n\
             ldap,group,hr,HR,,olivia,medium,no,yes,,,,draft\n\
             app,app_role,viewer,Viewer,,olivia;bob,low,true,no,ldap/finance,okta,app-viewers,draft\n"
        ),
    )
    .unwrap();
    let r = cat.bulk_upload(&admin, &good, now).await.unwrap();
    assert_eq!((r.entries, r.created), (3, 3));
    let v = cat
        .get(&EntryKey::new("app", &EntitlementKind::AppRole, "viewer"))
        .await
        .unwrap()
        .unwrap()
        .entry;
    assert_eq!(v.owners, ["olivia", "bob"]);
    assert_eq!(
        v.prerequisites,
        [Endpoint::entitlement(
            "ldap",
            EntitlementRef::group("finance")
        )]
    );
    assert_eq!(v.linked_group.unwrap().group.id, "app-viewers");
    assert!(v.requestable && !v.certifiable);
    let f = cat
        .get(&EntryKey::new("ldap", &EntitlementKind::Group, "finance"))
        .await
        .unwrap()
        .unwrap()
        .entry;
    assert_eq!(
        (f.lifecycle, f.risk),
        (Lifecycle::Published, RiskLevel::High)
    );
    // Re-upload: idempotent.
    let r = cat.bulk_upload(&admin, &good, now).await.unwrap();
    assert_eq!((r.created, r.updated, r.unchanged), (0, 0, 3));
    // A user may only upload entries they own.
    let mallory = dir.path().join("mallory.csv");
    std::fs::write(
        &mallory,
        format!("{HEADER}ldap,group,finance,Finance,pwned,mallory,low,yes,yes,,,,published\n"),
    )
    .unwrap();
    let err = cat
        .bulk_upload(&Actor::user("mallory"), &mallory, now)
        .await
        .unwrap_err();
    let CatalogError::UploadRejected(report) = err else {
        panic!("{err:?}")
    };
    assert_eq!(report.issues[0].row, 2);
    assert!(
        report.issues[0].message.contains("owner"),
        "{:?}",
        report.issues
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_upload_xlsx_names_sheet_row_and_column() {
    use rust_xlsxwriter::Workbook;
    let cat = catalog();
    let now = ManualClock::at_epoch().now_ts();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, rows: &[[&str; 13]]| {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        ws.set_name("Catalog").unwrap();
        for (c, h) in HEADER.trim().split(',').enumerate() {
            ws.write_string(0, c as u16, h).unwrap();
        }
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                if !v.is_empty() {
                    ws.write_string(r as u32 + 1, c as u16, *v).unwrap();
                }
            }
        }
        let p = dir.path().join(name);
        wb.save(&p).unwrap();
        p
    };
    let good_row = [
        "ldap",
        "group",
        "eng",
        "Engineering",
        "",
        "olivia",
        "low",
        "yes",
        "yes",
        "",
        "",
        "",
        "draft",
    ];
    let bad_row = [
        "", "group", "ops", "Ops", "", "olivia", "low", "yes", "yes", "", "", "", "draft",
    ];
    let bad = write("bad.xlsx", &[good_row, bad_row]);
    let err = cat
        .bulk_upload(&Actor::admin("root"), &bad, now)
        .await
        .unwrap_err();
    let CatalogError::UploadRejected(report) = err else {
        panic!("{err:?}")
    };
    let i = &report.issues[0];
    assert_eq!(
        (i.sheet.as_deref(), i.row, i.column.as_deref()),
        (Some("Catalog"), 3, Some("system")),
        "{i}"
    );
    assert!(cat.list().await.unwrap().is_empty());
    let good = write("good.xlsx", &[good_row]);
    let r = cat
        .bulk_upload(&Actor::admin("root"), &good, now)
        .await
        .unwrap();
    assert_eq!(r.created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_on_memory_adapter_creates_drafts_and_flags_vanished() {
    let cat = catalog();
    let clock = ManualClock::at_epoch();
    let admin = Actor::admin("root");
    let first = MemoryAdapter::new("hr-app");
    for g in ["a", "b", "c"] {
        first.seed_entitlement(&EntitlementRef::group(g));
    }
    // Only administrators run discovery.
    let err = cat
        .discover(&Actor::user("olivia"), "hr-app", &first, clock.now_ts())
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::Forbidden { .. }));
    let r = cat
        .discover(&admin, "hr-app", &first, clock.now_ts())
        .await
        .unwrap();
    assert_eq!((r.listed, r.created.len(), r.vanished.len()), (3, 3, 0));
    let e = cat.list_system("hr-app").await.unwrap();
    assert!(e.iter().all(|s| s.entry.lifecycle == Lifecycle::Draft
        && s.entry.origin == iga_catalog::Origin::Discovery));
    // Second run: idempotent.
    let r = cat
        .discover(&admin, "hr-app", &first, clock.now_ts())
        .await
        .unwrap();
    assert!(r.created.is_empty() && r.vanished.is_empty());
    // `b` is gone from the target.
    clock.advance(hours(24));
    let second = MemoryAdapter::new("hr-app");
    for g in ["a", "c", "d"] {
        second.seed_entitlement(&EntitlementRef::group(g));
    }
    let r = cat
        .discover(&admin, "hr-app", &second, clock.now_ts())
        .await
        .unwrap();
    assert_eq!(
        r.created,
        [EntryKey::new("hr-app", &EntitlementKind::Group, "d")]
    );
    assert_eq!(
        r.vanished,
        [EntryKey::new("hr-app", &EntitlementKind::Group, "b")]
    );
    let b = cat.get(&r.vanished[0]).await.unwrap().unwrap().entry;
    assert_eq!(b.vanished_at, Some(clock.now_ts()));
    // Back again.
    let r = cat
        .discover(&admin, "hr-app", &first, clock.now_ts())
        .await
        .unwrap();
    assert_eq!(
        r.reappeared,
        [EntryKey::new("hr-app", &EntitlementKind::Group, "b")]
    );
    assert_eq!(
        r.vanished,
        [EntryKey::new("hr-app", &EntitlementKind::Group, "d")]
    );
    let actions: Vec<String> = cat
        .history(r.reappeared[0].as_str())
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.action)
        .collect();
    assert_eq!(actions, ["discover", "vanish", "reappear"]);
}
