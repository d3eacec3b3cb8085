//! Scenario 2 — same access, two reasons: a revoked request leaves access held through
//! a birthright rule (count 2 → 1, no execution, a ledger history entry says why); when
//! the birthright source goes too, the group is removed and a receipt is written.

use iga_directive::{EntitlementRef, GrantSource, JobState, JobStateName};
use iga_ledger::{AssignmentKey, LedgerStore};
use iga_scenarios::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_access_two_reasons() {
    let w = world(vec![SystemSpec::new("ldap")]).await;
    let t = w.target("ldap");
    let g = EntitlementRef::group("G");
    t.seed_entitlement(&g);
    let bob = person("bob");
    t.seed_account(&bob);
    let birthright = GrantSource::birthright("dept-finance");
    let request = GrantSource::request("jira", "ACC-7");
    let key = AssignmentKey::new("acme", "bob", "ldap", g.clone());

    // Birthright grant, then the approved Jira request for the same group.
    let d1 = grant("ldap", &bob, "G", birthright.clone());
    let d2 = grant("ldap", &bob, "G", request.clone());
    w.orch.submit(vec![d1.clone()]).await.unwrap();
    w.orch.run_until_idle().await.unwrap();
    w.orch.submit(vec![d2.clone()]).await.unwrap();
    let r = w.orch.run_until_idle().await.unwrap();
    assert_eq!(
        r.skipped, 1,
        "second reason changes nothing on the target: {r}"
    );
    assert!(t.has_member("bob", &g));
    let sources = w.store.sources_of(&key).await.unwrap();
    assert_eq!(sources.iter().filter(|s| s.intended).count(), 2);
    assert_eq!(
        t.effective_mutations(),
        1,
        "one membership change for two reasons"
    );

    // The request is revoked: G stays (2 → 1), nothing executed, and the job says why.
    let d3 = revoke("ldap", &bob, "G", request.clone());
    w.orch.submit(vec![d3.clone()]).await.unwrap();
    let calls_before = t.stats().calls;
    w.orch.run_until_idle().await.unwrap();
    assert_eq!(t.stats().calls, calls_before, "no call reached the target");
    assert!(t.has_member("bob", &g));
    match w.orch.job(d3.id.as_str()).await.unwrap().unwrap().state {
        JobState::Skipped { reason } => {
            assert!(reason.contains("1 other source(s) still grant"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let left = w.store.sources_of(&key).await.unwrap();
    let intended: Vec<_> = left
        .iter()
        .filter(|s| s.intended)
        .map(|s| s.source.clone())
        .collect();
    assert_eq!(intended, vec![birthright.clone()]);
    let receipts_before = w.verify_chains().await;
    assert_eq!(receipts_before, 1, "only the first grant was executed");

    // Bob moves to Sales: the birthright source goes, count 1 → 0, G is removed.
    let d4 = revoke("ldap", &bob, "G", birthright.clone());
    w.orch.submit(vec![d4.clone()]).await.unwrap();
    w.orch.run_until_idle().await.unwrap();
    assert!(!t.has_member("bob", &g));
    assert_eq!(
        w.orch
            .job(d4.id.as_str())
            .await
            .unwrap()
            .unwrap()
            .state
            .name(),
        JobStateName::Succeeded
    );
    assert_eq!(w.verify_chains().await, 2, "the removal has its receipt");
    let state = w.store.sources_of(&key).await.unwrap();
    assert!(
        state.iter().all(|s| !s.intended && !s.confirmed),
        "{state:?}"
    );
    assert!(t.duplicate_effects().is_empty());
}
