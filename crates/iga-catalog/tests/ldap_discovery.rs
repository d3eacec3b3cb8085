//! Connector discovery against a real OpenLDAP slapd: groups become draft entries, a
//! deleted group is flagged as vanished on the next run.

use std::sync::Arc;

use iga_catalog::{Actor, Catalog, EntryKey};
use iga_connector_ldap::LdapAdapter;
use iga_connector_ldap::testing::Slapd;
use iga_directive::{EntitlementKind, EntitlementRef};
use iga_ledger::{LedgerStore, SqliteLedger, SqliteStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_groups_are_discovered_and_a_deleted_group_vanishes() {
    let slapd = Slapd::start();
    let ldap = LdapAdapter::new(slapd.config()).unwrap();
    for g in ["finance", "payroll", "eng"] {
        ldap.create_group(g, Some(&format!("{g} team")))
            .await
            .unwrap();
    }
    let store: Arc<dyn LedgerStore> =
        Arc::new(SqliteStore::new(SqliteLedger::open_in_memory().unwrap()));
    let cat = Catalog::new(store);
    let admin = Actor::admin("root");
    let t0 = chrono::Utc::now();
    let r = cat.discover(&admin, "corp-ldap", &ldap, t0).await.unwrap();
    let ids: Vec<String> = cat
        .list_system("corp-ldap")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.entry.entitlement.id)
        .collect();
    assert_eq!(r.created.len(), ids.len());
    for g in ["finance", "payroll", "eng"] {
        assert!(
            ids.iter().any(|i| i.contains(g)),
            "{g} not discovered: {ids:?}"
        );
    }
    let payroll = cat
        .list_system("corp-ldap")
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.entry.entitlement.id.contains("payroll"))
        .unwrap();
    let payroll_ref = payroll.entry.entitlement.clone();
    ldap.delete_group(&EntitlementRef::new(
        EntitlementKind::Group,
        payroll_ref.id.clone(),
    ))
    .await
    .unwrap();
    let t1 = t0 + chrono::Duration::hours(1);
    let r = cat.discover(&admin, "corp-ldap", &ldap, t1).await.unwrap();
    assert!(r.created.is_empty(), "{r:?}");
    let key = EntryKey::new("corp-ldap", &payroll_ref.kind, &payroll_ref.id);
    assert_eq!(r.vanished, std::slice::from_ref(&key));
    assert_eq!(
        cat.get(&key).await.unwrap().unwrap().entry.vanished_at,
        Some(t1)
    );
}
