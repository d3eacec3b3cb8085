//! Scenario 6: joiner, mover, leaver from HR. An HR CSV with 1,000 employees makes
//! joiners (accounts + birthright groups in LDAP, Entra and a SCIM app, account before
//! membership, Entra before the SCIM app); the next file moves 50 and terminates 20
//! (request-based access of leavers revoked by policy); a rehire re-enables. Plus the
//! JML table with reference counting on the real orchestrator and ledger.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use iga_adapter::MemoryAdapter;
use iga_directive::{
    AccessDirective, Action, Clock, EntitlementRef, GrantSource, Identity, IdentityStatus,
    JobState, JobStateName,
};
use iga_ledger::LedgerStore;
use iga_orchestrator::SystemSettings;
use iga_policy::{Lifecycle, LifecyclePolicy, RuleSet, UsernameRegistry};
use iga_resolver::{Dependency, Endpoint, ResolverConfig};
use iga_scenarios::*;
use iga_source_hr::{HrFeed, LedgerDocuments, LedgerHeldAccess};

const RULES: &str = r#"
systems:
  ldap:
    attributes:
      user_name: { value: "${given_name|initial}${family_name}", transforms: [ascii, alnum, lower], unique: true, max_len: 16 }
  entra:
    create_account: always
  scim-app: {}
rules:
  - name: staff
    when: 'true'
    grants: [{ system: ldap, entitlement: staff }, { system: entra, entitlement: all-staff }]
  - name: finance
    when: 'department == "Finance"'
    grants: [{ system: ldap, entitlement: finance }, { system: scim-app, entitlement: ledger }]
  - name: sales
    when: 'department == "Sales"'
    grants: [{ system: ldap, entitlement: sales }]
  - name: engineering
    when: 'department == "Engineering"'
    grants: [{ system: ldap, entitlement: engineering }]
"#;

const DEPTS: [&str; 4] = ["Finance", "Sales", "Engineering", "HR"];

fn spec(name: &'static str) -> SystemSpec {
    // ensure_accounts: a grant claimed in an earlier pass than its identity's
    // create-account job still finds the account (match-then-link makes the later
    // create a no-op).
    SystemSpec::new(name)
        .with_target(MemoryAdapter::config(name).auto_create_entitlements(true))
        .with_settings(SystemSettings::new().ensure_accounts())
}

async fn hr_world() -> World {
    world_with(vec![spec("ldap"), spec("entra"), spec("scim-app")], |b| {
        b.resolver(ResolverConfig::default().depends(Dependency::new(
            Endpoint::system("entra"),
            Endpoint::system("scim-app"),
        )))
    })
    .await
}

fn feed(w: &World, grace_days: i64) -> HrFeed {
    let store: Arc<dyn LedgerStore> = Arc::new(w.store.clone());
    HrFeed::new(
        Lifecycle::new(
            RuleSet::from_yaml(RULES).expect("rules"),
            LifecyclePolicy::new("acme").grace_period(chrono::Duration::days(grace_days)),
        ),
        Arc::new(LedgerDocuments(store.clone())),
        Arc::new(LedgerHeldAccess(store)),
    )
}

fn dept_of(i: usize) -> &'static str {
    DEPTS[i % DEPTS.len()]
}

fn csv(rows: impl IntoIterator<Item = (usize, &'static str)>) -> String {
    let mut s = String::from("employee_id,full_name,department,location\n");
    for (i, d) in rows {
        s.push_str(&format!("E{i:04},Given{i} Family{i},{d},NYC\n"));
    }
    s
}

fn id(i: usize) -> String {
    format!("E{i:04}")
}

async fn run(w: &World, ds: Vec<AccessDirective>) {
    let r = w.orch.submit(ds.clone()).await.expect("submit");
    assert_eq!(r.accepted, ds.len(), "every directive is new");
    w.orch.run_until_idle().await.expect("run");
    for d in &ds {
        let job = w.orch.job(d.id.as_str()).await.unwrap().unwrap();
        let ok = matches!(
            job.state.name(),
            JobStateName::Succeeded | JobStateName::Skipped
        ) || (d.not_before.is_some_and(|t| t > w.clock.now())
            && job.state.name() == JobStateName::Pending);
        assert!(
            ok,
            "{} {} {}: {:?}",
            d.action, d.system, d.identity.id, job.state
        );
    }
}

/// `action system identity entitlement source` for comparing directive sets.
fn key(d: &AccessDirective) -> String {
    format!(
        "{} {} {} {} {}",
        d.action,
        d.system,
        d.identity.id,
        d.entitlement.as_ref().map_or("-", |e| e.id.as_str()),
        d.source.key()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_06_hr_csv_joiners_movers_leavers_rehire() {
    let w = hr_world().await;
    let hr = feed(&w, 30);
    let n = 1000;

    // Day 1: 1,000 joiners.
    let day1: Vec<(usize, &str)> = (0..n).map(|i| (i, dept_of(i))).collect();
    let out = hr
        .ingest("hr-0001.csv", &csv(day1.clone()), w.clock.now())
        .await
        .unwrap();
    assert_eq!(out.events.get("joiner"), Some(&n));
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let finance = (0..n).filter(|i| dept_of(*i) == "Finance").count();
    let in_dept_rule = (0..n).filter(|i| dept_of(*i) != "HR").count();
    // accounts: ldap + entra for all, scim-app for finance; grants: 2 staff + dept + ledger.
    assert_eq!(
        out.directives.len(),
        2 * n + finance + 2 * n + in_dept_rule + finance
    );
    run(&w, out.directives).await;
    let (ldap, entra, app) = (w.target("ldap"), w.target("entra"), w.target("scim-app"));
    assert_eq!(ldap.account_count(), n);
    assert_eq!(entra.account_count(), n);
    assert_eq!(app.account_count(), finance);
    assert_eq!(ldap.members(&EntitlementRef::group("staff")).len(), n);
    assert_eq!(app.members(&EntitlementRef::group("ledger")).len(), finance);
    assert_eq!(
        ldap.account(&id(0)).unwrap().login.as_deref(),
        Some("gfamily0")
    );
    assert!(ldap.duplicate_effects().is_empty());

    // Two leavers-to-be also hold request-based access.
    for i in [100, 101] {
        let who = Identity::person(id(i)).with_user_name(format!("gfamily{i}"));
        let src = GrantSource::request("servicenow", &format!("RITM{i}"));
        run(&w, vec![grant("ldap", &who, "vpn", src)]).await;
    }
    assert_eq!(ldap.members(&EntitlementRef::group("vpn")).len(), 2);

    // Day 2: 50 movers (0..50 move one department on), 20 leavers (100..120 gone).
    w.clock.advance(Duration::from_secs(86_400));
    let movers: BTreeSet<usize> = (0..50).collect();
    let leavers: BTreeSet<usize> = (100..120).collect();
    let day2: Vec<(usize, &str)> = (0..n)
        .filter(|i| !leavers.contains(i))
        .map(|i| {
            (
                i,
                if movers.contains(&i) {
                    dept_of(i + 1)
                } else {
                    dept_of(i)
                },
            )
        })
        .collect();
    let out2 = hr
        .ingest("hr-0002.csv", &csv(day2.clone()), w.clock.now())
        .await
        .unwrap();
    assert_eq!(out2.events.get("mover"), Some(&50));
    assert_eq!(out2.events.get("leaver"), Some(&20));
    assert_eq!(out2.events.get("joiner"), None);

    // The exact expected directive set, computed independently.
    let dept_group = |d: &str| match d {
        "Finance" => Some("finance"),
        "Sales" => Some("sales"),
        "Engineering" => Some("engineering"),
        _ => None,
    };
    let mut want = BTreeSet::new();
    for &i in &movers {
        let (old, new) = (dept_of(i), dept_of(i + 1));
        if let Some(g) = dept_group(old) {
            let rule = g;
            want.insert(format!("revoke ldap {} {g} birthright:{rule}", id(i)));
        }
        if let Some(g) = dept_group(new) {
            want.insert(format!("grant ldap {} {g} birthright:{g}", id(i)));
        }
        if old == "Finance" {
            want.insert(format!(
                "revoke scim-app {} ledger birthright:finance",
                id(i)
            ));
        }
        if new == "Finance" {
            want.insert(format!(
                "create_account scim-app {} - birthright:joiner",
                id(i)
            ));
            want.insert(format!(
                "grant scim-app {} ledger birthright:finance",
                id(i)
            ));
        }
    }
    for &i in &leavers {
        let d = dept_of(i);
        want.insert(format!("revoke ldap {} staff birthright:staff", id(i)));
        want.insert(format!("revoke entra {} all-staff birthright:staff", id(i)));
        let mut systems = vec!["entra", "ldap"];
        if let Some(g) = dept_group(d) {
            want.insert(format!("revoke ldap {} {g} birthright:{g}", id(i)));
        }
        if d == "Finance" {
            want.insert(format!(
                "revoke scim-app {} ledger birthright:finance",
                id(i)
            ));
            systems.push("scim-app");
        }
        for s in systems {
            want.insert(format!("disable_account {s} {} - birthright:leaver", id(i)));
            want.insert(format!("delete_account {s} {} - birthright:leaver", id(i)));
        }
    }
    for i in [100, 101] {
        want.insert(format!(
            "revoke ldap {} vpn request:servicenow:RITM{i}",
            id(i)
        ));
    }
    let got: BTreeSet<String> = out2.directives.iter().map(key).collect();
    assert_eq!(got.len(), out2.directives.len(), "no duplicate directive");
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}\nextra {extra:?}"
    );
    // Deletes wait for the grace period.
    for d in out2
        .directives
        .iter()
        .filter(|d| d.action == Action::DeleteAccount)
    {
        assert_eq!(
            d.not_before,
            Some(w.clock.now() + chrono::Duration::days(30))
        );
    }
    run(&w, out2.directives.clone()).await;

    // End state.
    for &i in &movers {
        let who = id(i);
        if let Some(g) = dept_group(dept_of(i + 1)) {
            assert!(
                ldap.has_member(&who, &EntitlementRef::group(g)),
                "{who} in {g}"
            );
        }
        if let Some(g) = dept_group(dept_of(i)) {
            assert!(
                !ldap.has_member(&who, &EntitlementRef::group(g)),
                "{who} left {g}"
            );
        }
    }
    for &i in &leavers {
        let who = id(i);
        assert!(
            ldap.assignments().iter().all(|(m, _)| *m != who),
            "{who} has no ldap membership left"
        );
        assert!(!ldap.account(&who).unwrap().enabled, "{who} disabled");
        assert!(!entra.account(&who).unwrap().enabled);
    }
    assert!(
        ldap.members(&EntitlementRef::group("vpn")).is_empty(),
        "request access revoked by policy"
    );
    assert_eq!(ldap.members(&EntitlementRef::group("staff")).len(), n - 20);

    // Day 10: one leaver is rehired within the grace period: re-enabled, not re-created.
    w.clock.advance(Duration::from_secs(8 * 86_400));
    let mut day3 = day2.clone();
    day3.push((105, dept_of(105)));
    let out3 = hr
        .ingest("hr-0003.csv", &csv(day3), w.clock.now())
        .await
        .unwrap();
    assert_eq!(out3.events.get("rehire"), Some(&1));
    assert_eq!(out3.events.len(), 1, "{:?}", out3.events);
    let actions: BTreeSet<String> = out3.directives.iter().map(key).collect();
    assert!(actions.contains(&format!(
        "enable_account ldap {} - birthright:rehire",
        id(105)
    )));
    assert!(
        out3.directives
            .iter()
            .all(|d| d.action != Action::CreateAccount)
    );
    // The pending deletes of the rehire are withdrawn.
    assert_eq!(out3.cancel.len(), 2);
    for c in &out3.cancel {
        w.store
            .transition_job(
                c.as_str(),
                JobState::Cancelled {
                    reason: "rehired".into(),
                },
                None,
                w.clock.now(),
            )
            .await
            .expect("cancel pending delete");
    }
    let before = ldap.account_count();
    run(&w, out3.directives).await;
    assert_eq!(ldap.account_count(), before, "no new account");
    assert!(ldap.account(&id(105)).unwrap().enabled);
    assert!(ldap.has_member(&id(105), &EntitlementRef::group("staff")));

    // Past the grace period the other leavers' accounts are deleted; the rehire's stays.
    w.clock.advance(Duration::from_secs(31 * 86_400));
    w.orch.run_until_idle().await.unwrap();
    assert!(ldap.account(&id(104)).is_none(), "deleted after grace");
    assert!(
        ldap.account(&id(105)).is_some_and(|a| a.enabled),
        "rehire kept"
    );
    assert_eq!(ldap.account_count(), n - 19);
    assert!(w.verify_chains().await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jml_table_with_reference_counting() {
    let w = hr_world().await;
    let lc = Lifecycle::new(
        RuleSet::from_yaml(RULES).unwrap(),
        LifecyclePolicy::new("acme").grace_period(chrono::Duration::days(14)),
    );
    let store: Arc<dyn LedgerStore> = Arc::new(w.store.clone());
    let held_of = |who: &'static str| {
        let s = store.clone();
        async move {
            use iga_source_hr::HeldAccess;
            LedgerHeldAccess(s).held("acme", who).await.unwrap()
        }
    };
    let mut reg = UsernameRegistry::new();
    let ldap = w.target("ldap");
    let finance = EntitlementRef::group("finance");
    let bob = Identity::person("bob")
        .with_name("Bob", "Stone")
        .with_department("Finance");

    // Joiner.
    let j = lc
        .transition(None, &bob, &[], &mut reg, w.clock.now())
        .unwrap();
    run(&w, j.directives).await;
    assert!(ldap.has_member("bob", &finance));
    // The same group through an approved request: two sources.
    run(
        &w,
        vec![grant(
            "ldap",
            &person("bob").with_user_name("bstone"),
            "finance",
            GrantSource::request("jira", "ACC-7"),
        )],
    )
    .await;

    // Mover to Sales: the finance rule's revoke carries the birthright source only;
    // the request keeps the group.
    let m = lc
        .transition(
            Some(&j.snapshot),
            &bob.clone().with_department("Sales"),
            &[],
            &mut reg,
            w.clock.now(),
        )
        .unwrap();
    run(&w, m.directives).await;
    assert!(
        ldap.has_member("bob", &finance),
        "request source keeps finance"
    );
    assert!(ldap.has_member("bob", &EntitlementRef::group("sales")));
    assert!(
        !w.target("scim-app")
            .has_member("bob", &EntitlementRef::group("ledger"))
    );

    // Leaver: every birthright grant goes, the request goes by policy, accounts disabled.
    let mut gone = bob.clone().with_department("Sales");
    gone.status = IdentityStatus::Terminated;
    let held = held_of("bob").await;
    assert_eq!(held.len(), 1, "{held:?}");
    let l = lc
        .transition(Some(&m.snapshot), &gone, &held, &mut reg, w.clock.now())
        .unwrap();
    run(&w, l.directives).await;
    assert!(ldap.assignments().iter().all(|(who, _)| who != "bob"));
    assert!(!ldap.account("bob").unwrap().enabled);

    // Rehire within grace re-enables.
    w.clock.advance(Duration::from_secs(3 * 86_400));
    let r = lc
        .transition(
            Some(&l.snapshot),
            &bob.clone().with_department("Sales"),
            &[],
            &mut reg,
            w.clock.now(),
        )
        .unwrap();
    for c in &r.cancel {
        w.store
            .transition_job(
                c.as_str(),
                JobState::Cancelled {
                    reason: "rehire".into(),
                },
                None,
                w.clock.now(),
            )
            .await
            .unwrap();
    }
    run(&w, r.directives).await;
    assert!(ldap.account("bob").unwrap().enabled);
    assert!(ldap.has_member("bob", &EntitlementRef::group("sales")));
    assert!(
        !ldap.has_member("bob", &finance),
        "request access is not restored"
    );
    w.clock.advance(Duration::from_secs(30 * 86_400));
    w.orch.run_until_idle().await.unwrap();
    assert!(
        ldap.account("bob").is_some(),
        "cancelled delete never fires"
    );

    // A future-dated termination fires on its date.
    let ann = Identity::person("ann")
        .with_name("Ann", "Lee")
        .with_department("Sales");
    let ja = lc
        .transition(None, &ann, &[], &mut reg, w.clock.now())
        .unwrap();
    run(&w, ja.directives).await;
    let mut leaving = ann.clone();
    let date = (w.clock.now() + chrono::Duration::days(10))
        .format("%Y-%m-%d")
        .to_string();
    leaving
        .attributes
        .insert("termination_date".into(), date.into());
    let la = lc
        .transition(Some(&ja.snapshot), &leaving, &[], &mut reg, w.clock.now())
        .unwrap();
    run(&w, la.directives).await;
    assert!(
        ldap.has_member("ann", &EntitlementRef::group("sales")),
        "not before its date"
    );
    assert!(ldap.account("ann").unwrap().enabled);
    w.clock.advance(Duration::from_secs(9 * 86_400));
    w.orch.run_until_idle().await.unwrap();
    assert!(
        ldap.has_member("ann", &EntitlementRef::group("sales")),
        "a day early: still there"
    );
    w.clock.advance(Duration::from_secs(86_400));
    w.orch.run_until_idle().await.unwrap();
    assert!(
        !ldap.has_member("ann", &EntitlementRef::group("sales")),
        "revoked on the date"
    );
    assert!(
        !ldap.account("ann").unwrap().enabled,
        "disabled on the date"
    );
}
