//! Scenario 8 — mass-deletion guardrail: a faulty HR file terminates 40 % of a
//! department; the revocations exceed the threshold and are staged, not executed; the
//! dry-run plan shows them; releasing executes them, cancelling leaves access intact.

use iga_directive::{EntitlementRef, GrantSource, JobState, JobStateName};
use iga_ledger::{AssignmentKey, LedgerStore};
use iga_orchestrator::{Guardrail, SystemSettings};
use iga_scenarios::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mass_revocations_are_staged_until_released() {
    let settings =
        SystemSettings::new().guardrail(Guardrail::max_removals(25).with_fraction(0.25, 20));
    let w = world(vec![SystemSpec::new("entra").with_settings(settings)]).await;
    let t = w.target("entra");
    let g = EntitlementRef::group("Finance-All");
    t.seed_entitlement(&g);
    let rule = GrantSource::birthright("dept-finance");
    let people: Vec<_> = (0..50).map(|i| person(&format!("f{i:02}"))).collect();
    for p in &people {
        t.seed_account(p);
    }
    w.orch
        .submit(
            people
                .iter()
                .map(|p| grant("entra", p, "Finance-All", rule.clone()))
                .collect(),
        )
        .await
        .unwrap();
    w.orch.run_until_idle().await.unwrap();
    assert_eq!(t.members(&g).len(), 50);
    let receipts_after_grants = w.verify_chains().await;

    // The faulty file: 20 of 50 (40 %) terminated at once.
    let revokes: Vec<_> = people[..20]
        .iter()
        .map(|p| revoke("entra", p, "Finance-All", rule.clone()))
        .collect();
    let plan = w.orch.plan(&revokes).await.unwrap();
    assert_eq!(plan.staged.len(), 20, "{}", plan.render());
    assert_eq!(plan.operation_count(), 0);
    assert!(
        plan.staged[0].reason.contains("20 of 50 assignments (40%)"),
        "{}",
        plan.staged[0].reason
    );

    w.orch.submit(revokes.clone()).await.unwrap();
    let r = w.orch.run_until_idle().await.unwrap();
    assert_eq!((r.staged, r.executed), (20, 0), "{r}");
    assert_eq!(t.members(&g).len(), 50, "nothing executed");
    let staged = w.orch.jobs(JobStateName::Staged, 100).await.unwrap();
    assert_eq!(staged.len(), 20);
    match &staged[0].state {
        JobState::Staged { reason } => assert!(reason.contains("guardrail"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // The ledger is untouched while staged.
    let key = AssignmentKey::new("acme", "f00", "entra", g.clone());
    assert!(
        w.store
            .sources_of(&key)
            .await
            .unwrap()
            .iter()
            .any(|s| s.intended)
    );

    // Review: release 15, cancel 5.
    let ids: Vec<String> = revokes.iter().map(|d| d.id.to_string()).collect();
    assert_eq!(w.orch.release(&ids[..15]).await.unwrap(), 15);
    assert_eq!(
        w.orch
            .cancel(&ids[15..], "HR file was wrong for these")
            .await
            .unwrap(),
        5
    );
    w.orch.run_until_idle().await.unwrap();
    assert_eq!(t.members(&g).len(), 35);
    for (i, id) in ids.iter().enumerate() {
        let state = w.orch.job(id).await.unwrap().unwrap().state.name();
        let want = if i < 15 {
            JobStateName::Succeeded
        } else {
            JobStateName::Cancelled
        };
        assert_eq!(state, want, "{id}");
    }
    let cancelled_key = AssignmentKey::new("acme", "f19", "entra", g.clone());
    let s = w.store.sources_of(&cancelled_key).await.unwrap();
    assert!(
        s.iter().any(|s| s.intended && s.confirmed),
        "cancelled revocation keeps access: {s:?}"
    );
    assert_eq!(w.verify_chains().await, receipts_after_grants + 15);
    // Releasing something that is not staged is refused with the reason.
    let e = w.orch.release(&ids[..1]).await.unwrap_err().to_string();
    assert!(e.contains("is succeeded, not staged"), "{e}");

    // Below the threshold nothing is staged.
    let small: Vec<_> = people[20..25]
        .iter()
        .map(|p| revoke("entra", p, "Finance-All", rule.clone()))
        .collect();
    w.orch.submit(small).await.unwrap();
    let r = w.orch.run_until_idle().await.unwrap();
    assert_eq!((r.staged, r.succeeded), (0, 5), "{r}");
    assert_eq!(t.members(&g).len(), 30);
}
