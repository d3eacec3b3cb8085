//! Open the PostgreSQL store, persist a directive, claim it as a worker and commit
//! its outcome in one unit of work.
//!
//! usage: `cargo run -p iga-ledger-postgres --example postgres_store -- postgres://postgres@127.0.0.1:5432/iga`
//! (without an argument it starts a throwaway cluster; needs the `test-support`
//! feature and the PostgreSQL server binaries).

use iga_directive::{AccessDirective, Action, EntitlementRef, GrantSource, Identity, JobState};
use iga_ledger::{LedgerStore, OutcomeCommit};
use iga_ledger_postgres::{PgOptions, PgStore};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut _cluster = None;
    let url = match std::env::args().nth(1) {
        Some(u) => u,
        None => {
            let pg = iga_ledger_postgres::testing::Postgres::start();
            let u = pg.fresh_db().await;
            _cluster = Some(pg);
            u
        }
    };
    let store = PgStore::connect_with(&url, PgOptions::default().node("example-node"))
        .await
        .expect("connect");
    let d = AccessDirective::builder("acme", "dir", Identity::person("alice"), Action::Grant)
        .entitlement(EntitlementRef::group("admins"))
        .source(GrantSource::birthright("everyone"))
        .build()
        .expect("valid directive");
    let now = chrono::Utc::now();
    store
        .persist_directives(std::slice::from_ref(&d), now)
        .await
        .expect("persist");
    store
        .transition_job(d.id.as_str(), JobState::Planned, None, now)
        .await
        .expect("plan");
    let claimed = store.claim_due(10, now, store.node()).await.expect("claim");
    println!("claimed {} job(s) as {}", claimed.len(), store.node());
    for c in claimed {
        let r = store
            .commit_outcome(&OutcomeCommit::new(c.job.id, JobState::Succeeded, now))
            .await
            .expect("commit");
        println!("job {} is {}", r.job.id, r.job.state.name());
    }
}
