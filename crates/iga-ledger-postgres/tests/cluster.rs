//! PostgreSQL-only behaviour: checksummed migrations, concurrent claims with
//! `SKIP LOCKED`, leases with heartbeats, fencing of late commits, re-claim after a
//! worker died, planners that never share a pending job, and the cluster-wide leader
//! lock.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use iga_directive::{AccessDirective, Action, EntitlementRef, GrantSource, Identity, JobState};
use iga_ledger::{LedgerError, LedgerStore, OutcomeCommit};
use iga_ledger_postgres::testing::Postgres;
use iga_ledger_postgres::{PgOptions, PgStore};

fn directives(tag: &str, n: usize) -> Vec<AccessDirective> {
    (0..n)
        .map(|i| {
            AccessDirective::builder(
                "c",
                "dir",
                Identity::person(format!("{tag}{i}")),
                Action::Grant,
            )
            .entitlement(EntitlementRef::group("g"))
            .source(GrantSource::birthright("all"))
            .build()
            .unwrap()
        })
        .collect()
}

async fn planned(s: &PgStore, tag: &str, n: usize) -> Vec<AccessDirective> {
    let ds = directives(tag, n);
    s.persist_directives(&ds, Utc::now()).await.unwrap();
    for d in &ds {
        s.transition_job(d.id.as_str(), JobState::Planned, None, Utc::now())
            .await
            .unwrap();
    }
    ds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cluster_semantics() {
    let pg = Postgres::start();

    // --- Migrations are checksummed: an altered applied migration is refused.
    let url = pg.fresh_db().await;
    drop(PgStore::connect(&url).await.unwrap());
    drop(PgStore::connect(&url).await.unwrap()); // idempotent
    pg.execute(
        &url,
        "UPDATE _iga_migrations SET checksum = 'x' WHERE version = 1",
    )
    .await;
    let e = PgStore::connect(&url).await.unwrap_err();
    assert!(
        matches!(e, LedgerError::MigrationAltered { version: 1, .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("was altered after it was applied"),
        "{e}"
    );
    pg.execute(
        &url,
        "INSERT INTO _iga_migrations (version, name, checksum) VALUES (99, 'future', 'y')",
    )
    .await;
    let url2 = pg.fresh_db().await;
    drop(PgStore::connect(&url2).await.unwrap());
    pg.execute(
        &url2,
        "INSERT INTO _iga_migrations (version, name, checksum) VALUES (99, 'future', 'y')",
    )
    .await;
    let e = PgStore::connect(&url2).await.unwrap_err();
    assert!(
        matches!(e, LedgerError::MigrationUnknown { version: 99, .. }),
        "{e}"
    );
    let e = PgStore::connect("mysql://nope").await.unwrap_err();
    assert!(e.to_string().contains("store.url"), "{e}");
    // Pending migrations with run_migrations(false) are refused.
    let url3 = pg.fresh_db().await;
    let e = PgStore::connect_with(&url3, PgOptions::default().run_migrations(false))
        .await
        .unwrap_err();
    assert!(
        matches!(e, LedgerError::MigrationPending { version: 1, .. }),
        "{e}"
    );

    // --- Concurrent claims by four workers: every job exactly once.
    let url = pg.fresh_db().await;
    let a = PgStore::connect_with(&url, PgOptions::default().node("a"))
        .await
        .unwrap();
    planned(&a, "u", 400).await;
    let mut handles = Vec::new();
    for w in 0..4 {
        let s = PgStore::connect_with(&url, PgOptions::default().node(format!("w{w}")))
            .await
            .unwrap();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let c = s.claim_due(7, Utc::now(), s.node()).await.unwrap();
                if c.is_empty() {
                    return got;
                }
                got.extend(c.into_iter().map(|c| c.job.id));
            }
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let uniq: HashSet<&String> = all.iter().collect();
    assert_eq!(
        (all.len(), uniq.len()),
        (400, 400),
        "each job claimed exactly once"
    );

    // --- Leases, heartbeats and fencing.
    let url = pg.fresh_db().await;
    let lease = Duration::from_millis(400);
    // `dead` never heartbeats (its worker is stuck or gone); `live` heartbeats.
    let dead = PgStore::connect_with(
        &url,
        PgOptions::default()
            .node("dead")
            .lease(lease)
            .heartbeat(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let live = PgStore::connect_with(&url, PgOptions::default().node("live").lease(lease))
        .await
        .unwrap();
    let other = PgStore::connect_with(&url, PgOptions::default().node("other").lease(lease))
        .await
        .unwrap();
    let ds = planned(&dead, "d", 2).await;
    let c_dead = dead.claim_due(1, Utc::now(), "dead").await.unwrap();
    let c_live = live.claim_due(1, Utc::now(), "live").await.unwrap();
    assert_eq!((c_dead.len(), c_live.len()), (1, 1));
    assert_eq!(live.held_claims(), 1);
    tokio::time::sleep(lease * 3).await;
    // The live worker's lease was kept alive; the dead one's expired and is re-claimed.
    let re = other.claim_due(10, Utc::now(), "other").await.unwrap();
    assert_eq!(re.len(), 1, "only the expired claim is taken over");
    assert_eq!(re[0].job.id, c_dead[0].job.id);
    // The late commit of the worker that lost its lease is refused (fencing token).
    let late = OutcomeCommit::new(c_dead[0].job.id.clone(), JobState::Succeeded, Utc::now());
    let e = dead.commit_outcome(&late).await.unwrap_err();
    assert!(
        matches!(&e, LedgerError::Invalid { field, .. } if field.ends_with(".lease")),
        "{e}"
    );
    assert!(e.to_string().contains("stale"), "{e}");
    let rs = dead
        .commit_outcomes(std::slice::from_ref(&late))
        .await
        .unwrap();
    assert!(rs[0].is_err(), "refused in a batch too");
    // A store that never claimed the job cannot move it on either.
    let e = live.commit_outcome(&late).await.unwrap_err();
    assert!(e.to_string().contains("another worker"), "{e}");
    // The current holder commits.
    other.commit_outcome(&late).await.unwrap();
    live.commit_outcome(&OutcomeCommit::new(
        c_live[0].job.id.clone(),
        JobState::Succeeded,
        Utc::now(),
    ))
    .await
    .unwrap();
    assert_eq!(live.held_claims(), 0);
    assert_eq!(ds.len(), 2);
    // requeue_in_flight(None) never takes a live worker's jobs.
    let more = planned(&live, "m", 1).await;
    let c = live.claim_due(1, Utc::now(), "live").await.unwrap();
    assert_eq!(c[0].job.id, more[0].id.as_str());
    assert_eq!(other.requeue_in_flight(None, Utc::now()).await.unwrap(), 0);
    assert_eq!(
        live.requeue_in_flight(Some("live"), Utc::now())
            .await
            .unwrap(),
        1
    );

    // --- Planners never share a pending job; the same node sees its own again.
    let url = pg.fresh_db().await;
    let p1 = PgStore::connect_with(&url, PgOptions::default().node("p1"))
        .await
        .unwrap();
    let p2 = PgStore::connect_with(&url, PgOptions::default().node("p2"))
        .await
        .unwrap();
    p1.persist_directives(&directives("p", 10), Utc::now())
        .await
        .unwrap();
    let a = p1.due_pending(Utc::now(), 6).await.unwrap();
    let b = p2.due_pending(Utc::now(), 100).await.unwrap();
    assert_eq!((a.len(), b.len()), (6, 4));
    assert_eq!(p1.due_pending(Utc::now(), 100).await.unwrap().len(), 6);

    // --- One leader cluster-wide.
    let l1 = p1
        .try_lead("source.hr")
        .await
        .unwrap()
        .expect("first leader");
    assert!(p2.try_lead("source.hr").await.unwrap().is_none());
    assert!(p2.try_lead("source.other").await.unwrap().is_some());
    drop(l1);
    let mut took_over = false;
    for _ in 0..50 {
        if p2.try_lead("source.hr").await.unwrap().is_some() {
            took_over = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        took_over,
        "leadership passes on when the leader's connection closes"
    );
}
