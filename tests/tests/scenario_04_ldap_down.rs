//! Scenario 4 against a real OpenLDAP slapd: the directory is unreachable, jobs wait in
//! `Retrying` with visible next attempt times and no ledger change; when the server is
//! back, every job succeeds and the directory's own view shows the memberships.

use std::sync::Arc;
use std::time::Duration;

use iga_adapter::ProvisioningAdapterExt;
use iga_connector_ldap::LdapAdapter;
use iga_connector_ldap::testing::Slapd;
use iga_directive::{Clock, EntitlementRef, GrantSource, JobState, JobStateName, ManualClock};
use iga_ledger::{AssignmentKey, LedgerStore, SqliteStore};
use iga_orchestrator::Orchestrator;
use iga_receipt::{Algorithm, ReceiptSigner, SigningKey};
use iga_scenarios::{grant, person};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_outage_then_recovery() {
    let mut slapd = Slapd::start();
    let ldap = LdapAdapter::new(slapd.config()).expect("ldap config");
    ldap.create_group("engineering", None)
        .await
        .expect("create group");
    let people: Vec<_> = (0..4)
        .map(|i| person(&format!("eng{i}")).with_name("Eng", format!("N{i}")))
        .collect();
    for p in &people {
        ldap.create_user(p, Default::default())
            .await
            .expect("create user");
    }

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("iga.db")).await.unwrap();
    let clock = ManualClock::at_epoch();
    let orch = Orchestrator::builder()
        .store(Arc::new(store.clone()))
        .signer(ReceiptSigner::new(SigningKey::generate(Algorithm::EdDSA).unwrap()).unwrap())
        .clock(clock.shared())
        .system("ldap", Arc::new(ldap.clone()))
        .batch(
            iga_batch::BatchConfig::default()
                .retry(iga_batch::RetryPolicy::new(2, Duration::from_secs(5))),
        )
        .build()
        .await
        .unwrap();
    let rule = GrantSource::birthright("dept-engineering");
    let ds: Vec<_> = people
        .iter()
        .map(|p| grant("ldap", p, "engineering", rule.clone()))
        .collect();
    orch.submit(ds.clone()).await.unwrap();

    // The directory goes away before the run.
    slapd.stop();
    let start = clock.now();
    orch.run_until_idle().await.unwrap();
    let mut latest = start;
    for d in &ds {
        match orch.job(d.id.as_str()).await.unwrap().unwrap().state {
            JobState::Retrying {
                attempt: 1,
                next_at,
            } => {
                assert!(next_at > start);
                latest = latest.max(next_at);
            }
            other => panic!("{other:?}"),
        }
        let key = AssignmentKey::new(
            "acme",
            &d.identity.id,
            "ldap",
            EntitlementRef::group("engineering"),
        );
        let s = store.sources_of(&key).await.unwrap();
        assert!(
            s.iter().all(|s| !s.confirmed),
            "no ledger confirmation while down: {s:?}"
        );
    }

    // It comes back; the retries are due.
    slapd.restart();
    clock.set(latest + chrono::Duration::seconds(1));
    orch.run_until_idle().await.unwrap();
    for d in &ds {
        let job = orch.job(d.id.as_str()).await.unwrap().unwrap();
        assert_eq!(job.state.name(), JobStateName::Succeeded, "{:?}", job.state);
        assert_eq!(job.attempts.len(), 1);
        assert!(
            job.attempts[0].error_kind == "unavailable" || job.attempts[0].error_kind == "timeout",
            "{:?}",
            job.attempts[0]
        );
    }
    let members = ldap
        .members_of(&EntitlementRef::group("engineering"))
        .await
        .unwrap()
        .expect("group exists");
    assert_eq!(members.len(), 4, "{members:?}");
    let reports = orch.verify_receipts().await.unwrap();
    assert!(reports.iter().all(|(_, r)| r.is_ok()));
    assert_eq!(reports.iter().map(|(_, r)| r.verified).sum::<u64>(), 4);
}
