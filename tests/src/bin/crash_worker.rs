//! Crash-test worker (scenario 5): runs a fixed set of directives through the SQLite
//! store and a file-backed in-memory target that both live in `--dir`, so it can be
//! killed at any point and restarted. `IGA_CRASH_AT=<point>[:<n>]` aborts at a step
//! boundary. Prints `done ...` when every job is terminal.
//!
//! usage: crash_worker --dir DIR [--directives N] [--latency-ms L]

use std::sync::Arc;
use std::time::Duration;

use iga_adapter::MemoryAdapter;
use iga_directive::{
    AccessDirective, Action, ApprovalRef, EntitlementRef, GrantSource, Identity, JobStateName,
};
use iga_ledger::SqliteStore;
use iga_orchestrator::{Orchestrator, SystemSettings};
use iga_receipt::{ReceiptSigner, SigningKey};

/// Identities, groups and directives are a pure function of N, so every restart
/// submits the same directives (same ids: duplicates are ignored).
pub fn directives(n: usize) -> Vec<AccessDirective> {
    let people = (n / 10).max(1);
    (0..n)
        .map(|k| {
            let who = Identity::person(format!("u{:05}", k % people));
            let group = format!("g{}", k / people);
            let b = AccessDirective::builder("acme", "dir", who, Action::Grant)
                .entitlement(EntitlementRef::group(group));
            let b = if k % 10 == 0 {
                b.approval(ApprovalRef::new("jira", format!("ACC-{k}")))
            } else {
                b.source(GrantSource::birthright("everyone"))
            };
            b.build().expect("valid directive")
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut dir = None;
    let mut n = 20_000usize;
    let mut latency = 1u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dir" => dir = args.next(),
            "--directives" => {
                n = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--directives N")
            }
            "--latency-ms" => {
                latency = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--latency-ms L")
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let dir = std::path::PathBuf::from(dir.expect("--dir DIR"));
    let target = MemoryAdapter::config("dir")
        .batch_max(20)
        .max_concurrent(4)
        .latency(Duration::from_millis(latency))
        .open_file(dir.join("target.jsonl"))
        .expect("open target journal");
    let people = (n / 10).max(1);
    if target.account_count() < people {
        for i in 0..people {
            target.seed_account(&Identity::person(format!("u{i:05}")));
        }
        for g in 0..=(n / people) {
            target.seed_entitlement(&EntitlementRef::group(format!("g{g}")));
        }
    }
    let store = SqliteStore::open(dir.join("iga.db"))
        .await
        .expect("open store");
    let key = SigningKey::from_ed25519_seed(&[7u8; 32], None).expect("key");
    let orch = Orchestrator::builder()
        .store(Arc::new(store))
        .signer(ReceiptSigner::new(key).expect("signer"))
        .system_with("dir", Arc::new(target.clone()), SystemSettings::new())
        .build()
        .await
        .expect("build orchestrator");
    let ds = directives(n);
    for chunk in ds.chunks(5000) {
        orch.submit(chunk.to_vec()).await.expect("submit");
    }
    orch.run_until_idle().await.expect("run");
    let s = orch.status().await.expect("status");
    println!(
        "done succeeded={} escalated={} skipped={} requeued_at_start={}",
        s.count(JobStateName::Succeeded),
        s.count(JobStateName::Escalated),
        s.count(JobStateName::Skipped),
        orch.requeued_at_start()
    );
}
