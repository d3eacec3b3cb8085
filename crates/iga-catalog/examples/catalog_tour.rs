//! A tour of the catalog: manual curation, a delegation, Quick Populate, discovery on an
//! in-memory adapter and role-intelligence rules printed as `iga-policy` YAML.
//!
//! `cargo run -p iga-catalog --example catalog_tour`

use std::sync::Arc;

use iga_adapter::MemoryAdapter;
use iga_catalog::intel::{IntelConfig, birthright_rules, rules_yaml};
use iga_catalog::{Actor, Catalog, CatalogEntry, Delegation, DelegationScope, RiskLevel};
use iga_directive::EntitlementRef;
use iga_ledger::{LedgerStore, SqliteLedger, SqliteStore};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store: Arc<dyn LedgerStore> = Arc::new(SqliteStore::new(SqliteLedger::open_in_memory()?));
    let catalog = Catalog::new(store);
    let now = chrono::Utc::now();
    let olivia = Actor::user("olivia");

    let e = CatalogEntry::new("ldap", EntitlementRef::group("finance"))
        .display_name("Finance")
        .description("Finance shares and reports")
        .owner("olivia")
        .risk(RiskLevel::High)
        .flags(true, true);
    let key = e.key();
    catalog.create(&olivia, e, now).await?;

    let d = Delegation::new(
        "olivia",
        "bob",
        DelegationScope::system("ldap"),
        now,
        now + chrono::Duration::days(7),
    );
    let d = catalog.delegate(&olivia, d, now).await?;
    catalog.publish(&Actor::user("bob"), &key, now).await?;
    println!("bob published {key} through delegation {}", d.id);

    let seed = (0..1000).map(|i| {
        CatalogEntry::new("app", EntitlementRef::role(format!("role-{i}"))).owner("olivia")
    });
    let r = catalog
        .quick_populate(&Actor::admin("migration"), seed, now)
        .await?;
    println!("quick populate: {r:?}");

    let target = MemoryAdapter::new("hr-app");
    target.seed_entitlement(&EntitlementRef::group("payroll"));
    let r = catalog
        .discover(&Actor::admin("root"), "hr-app", &target, now)
        .await?;
    println!("discovery: created {:?}", r.created);

    for h in catalog.history(key.as_str()).await? {
        println!(
            "history {}: {} by {} via {}",
            h.version, h.action, h.actor, h.via
        );
    }

    let synth = iga_catalog::synthetic::generate(1000, 6, 0.05, 7);
    let rules = birthright_rules(&synth.population, &IntelConfig::default());
    println!("{}", rules_yaml(&rules));
    Ok(())
}
