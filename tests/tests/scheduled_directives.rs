//! Future-dated directives (a termination date, a validity end): persisted at once,
//! executed only when the clock reaches `not_before`, and never early after a restart.

use std::time::Duration;

use iga_directive::{AccessDirective, Action, EntitlementRef, GrantSource, JobStateName};
use iga_scenarios::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_dated_revocation_waits_for_its_date() {
    let w = world(vec![SystemSpec::new("entra")]).await;
    let t = w.target("entra");
    let g = EntitlementRef::group("Contractors");
    t.seed_entitlement(&g);
    let ana = person("ana");
    t.seed_account(&ana);
    let src = GrantSource::request("sapgrc", "REQ-9");

    w.orch
        .submit(vec![grant("entra", &ana, "Contractors", src.clone())])
        .await
        .unwrap();
    w.orch.run_until_idle().await.unwrap();
    assert!(t.has_member("ana", &g));

    // Validity ends in 30 days: the revocation is accepted now, held until then.
    let end = w.clock.shared().now() + chrono::Duration::days(30);
    let mut r = revoke("entra", &ana, "Contractors", src.clone());
    r = AccessDirective::builder(&r.tenant, &r.system, r.identity.clone(), Action::Revoke)
        .entitlement(g.clone())
        .source(src.clone())
        .approval(r.approval.clone().unwrap())
        .not_before(end)
        .build()
        .unwrap();
    w.orch.submit(vec![r.clone()]).await.unwrap();
    w.orch.run_until_idle().await.unwrap();
    assert!(t.has_member("ana", &g), "not revoked before its date");
    let job = w.orch.job(r.id.as_str()).await.unwrap().unwrap();
    assert_eq!(job.state.name(), JobStateName::Pending);

    // A day before: still there.
    w.clock.advance(Duration::from_secs(29 * 86_400));
    w.orch.run_until_idle().await.unwrap();
    assert!(t.has_member("ana", &g));

    // On the date: revoked, with a receipt.
    w.clock.advance(Duration::from_secs(86_400));
    w.orch.run_until_idle().await.unwrap();
    assert!(!t.has_member("ana", &g), "revoked on its date");
    let job = w.orch.job(r.id.as_str()).await.unwrap().unwrap();
    assert_eq!(job.state.name(), JobStateName::Succeeded);
    assert!(w.verify_chains().await >= 2);
}
