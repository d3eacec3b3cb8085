//! Scenario 9 — coexistence during migration: a system in SHADOW_COMPARE mode; we
//! compute what we would do, the legacy tool does it, and the comparison report lists
//! the disagreements; switching to NATIVE makes us the executor with no double
//! provisioning.

use iga_directive::{EntitlementRef, GrantSource, JobState, JobStateName};
use iga_ledger::{CoexistenceMode, LedgerStore};
use iga_scenarios::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_compare_then_native_without_double_provisioning() {
    let w = world_with(vec![SystemSpec::new("legacyapp")], |b| {
        b.coexistence("legacyapp", CoexistenceMode::ShadowCompare)
    })
    .await;
    let t = w.target("legacyapp");
    let g = EntitlementRef::group("Traders");
    t.seed_entitlement(&g);
    let rule = GrantSource::birthright("desk-traders");
    let people: Vec<_> = ["ann", "ben", "cat", "dan"]
        .iter()
        .map(|n| person(n))
        .collect();
    for p in &people {
        t.seed_account(p);
    }
    // We compute; we do not execute.
    let ds: Vec<_> = people[..3]
        .iter()
        .map(|p| grant("legacyapp", p, "Traders", rule.clone()))
        .collect();
    w.orch.submit(ds.clone()).await.unwrap();
    let r = w.orch.run_until_idle().await.unwrap();
    assert_eq!((r.skipped, r.executed), (3, 0), "{r}");
    assert_eq!(
        t.stats().apply_calls + t.stats().batch_calls,
        0,
        "nothing sent to the target"
    );
    match w.orch.job(ds[0].id.as_str()).await.unwrap().unwrap().state {
        JobState::Skipped { reason } => assert!(reason.starts_with("SHADOW_COMPARE"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        w.store.coexistence("legacyapp").await.unwrap(),
        CoexistenceMode::ShadowCompare
    );

    // The legacy tool provisions: it grants ann and ben, misses cat, and adds dan.
    t.seed_membership(&people[0], &g);
    t.seed_membership(&people[1], &g);
    t.seed_membership(&people[3], &g);

    let report = w.orch.reconcile("acme", "legacyapp").await.unwrap();
    let table = report.to_table();
    assert_eq!(
        report
            .missing
            .iter()
            .map(|i| i.identity.as_str())
            .collect::<Vec<_>>(),
        vec!["cat"],
        "{table}"
    );
    assert_eq!(
        report
            .unexpected
            .iter()
            .map(|i| i.identity.as_str())
            .collect::<Vec<_>>(),
        vec!["dan"],
        "{table}"
    );
    assert_eq!(
        report.mismatched.len(),
        2,
        "ann and ben: done by the legacy tool, not confirmed by us\n{table}"
    );
    assert!(table.contains("missing") && table.contains("cat"));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["missing"][0]["identity"], "cat");

    // Switch to NATIVE: what the legacy tool did is adopted (confirmed), not redone.
    let adopted = w
        .orch
        .set_coexistence("acme", "legacyapp", CoexistenceMode::Native)
        .await
        .unwrap();
    assert_eq!(adopted, 2);
    let after = w.orch.reconcile("acme", "legacyapp").await.unwrap();
    assert_eq!(
        (after.in_sync, after.mismatched.len(), after.missing.len()),
        (2, 0, 1),
        "{}",
        after.to_table()
    );

    // Remediation (dry run first) provisions the one the legacy tool missed.
    let dry = w.orch.remediate("acme", "legacyapp", true).await.unwrap();
    assert_eq!(dry.len(), 1);
    assert_eq!(
        w.orch.status().await.unwrap().count(JobStateName::Pending),
        0,
        "dry run submits nothing"
    );
    w.orch.remediate("acme", "legacyapp", false).await.unwrap();
    w.orch.run_until_idle().await.unwrap();
    assert!(t.has_member("cat", &g));

    // A new request for access the legacy tool already gave changes nothing twice.
    let again = grant(
        "legacyapp",
        &people[0],
        "Traders",
        GrantSource::request("jira", "ACC-9"),
    );
    w.orch.submit(vec![again.clone()]).await.unwrap();
    w.orch.run_until_idle().await.unwrap();
    assert_eq!(
        w.orch
            .job(again.id.as_str())
            .await
            .unwrap()
            .unwrap()
            .state
            .name(),
        JobStateName::Skipped
    );
    let effective: Vec<_> = t.mutations().into_iter().filter(|m| m.effective).collect();
    assert_eq!(
        effective.len(),
        1,
        "we executed exactly one change (cat): {effective:?}"
    );
    let final_report = w.orch.reconcile("acme", "legacyapp").await.unwrap();
    assert_eq!(
        final_report.drift(),
        1,
        "only dan remains, reported as unexpected\n{}",
        final_report.to_table()
    );
    assert_eq!(w.verify_chains().await, 1);
}
