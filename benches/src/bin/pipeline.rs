//! End-to-end pipeline throughput: directives submitted, planned against the ledger,
//! ordered, executed in native batches against a zero-latency in-memory target, and
//! committed with signed, chained receipts in the SQLite store (synchronous=NORMAL).
//!
//! ```text
//! usage: pipeline [--directives N]   (default 100000)
//! last line: pipeline directives=<N> secs=<S> directives_per_sec=<R> receipts=<N>
//!            succeeded=<N> chains_verified=true synchronous=<mode>
//! ```

use std::sync::Arc;
use std::time::Instant;

use iga_adapter::MemoryAdapter;
use iga_directive::{AccessDirective, Action, EntitlementRef, GrantSource, Identity, JobStateName};
use iga_ledger::{OpenOptions, SqliteLedger, SqliteStore};
use iga_orchestrator::{Orchestrator, SystemSettings};
use iga_receipt::{Algorithm, ReceiptSigner, SigningKey};

fn main() {
    let mut n = 100_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--directives" => {
                n = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--directives N")
            }
            other => {
                eprintln!("unknown argument {other}; usage: pipeline [--directives N]");
                std::process::exit(2);
            }
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if let Err(e) = rt.block_on(run(n)) {
        eprintln!("pipeline: {e}");
        std::process::exit(1);
    }
}

async fn run(n: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let opts = OpenOptions::default();
    let sync = opts.synchronous.as_str();
    let ledger =
        SqliteLedger::open_with(dir.path().join("iga.db"), opts).map_err(|e| e.to_string())?;
    let store = SqliteStore::new(ledger);
    let people = (n / 10).max(1);
    let groups = n.div_ceil(people);
    let target = MemoryAdapter::config("entra").batch_max(20).build();
    for i in 0..people {
        target.seed_account(&Identity::person(format!("u{i:06}")));
    }
    for g in 0..groups {
        target.seed_entitlement(&EntitlementRef::group(format!("g{g}")));
    }
    let orch = Orchestrator::builder()
        .store(Arc::new(store))
        .signer(
            ReceiptSigner::new(SigningKey::generate(Algorithm::EdDSA).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?,
        )
        .system_with("entra", Arc::new(target.clone()), SystemSettings::new())
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let directives: Vec<AccessDirective> = (0..n)
        .map(|k| {
            AccessDirective::builder(
                "acme",
                "entra",
                Identity::person(format!("u{:06}", k % people)),
                Action::Grant,
            )
            .entitlement(EntitlementRef::group(format!("g{}", k / people)))
            .source(GrantSource::birthright("all"))
            .build()
            .expect("valid")
        })
        .collect();

    let start = Instant::now();
    for chunk in directives.chunks(10_000) {
        orch.submit(chunk.to_vec())
            .await
            .map_err(|e| e.to_string())?;
    }
    let report = orch.run_until_idle().await.map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();

    let status = orch.status().await.map_err(|e| e.to_string())?;
    let succeeded = status.count(JobStateName::Succeeded);
    let chains = orch.verify_receipts().await.map_err(|e| e.to_string())?;
    let receipts: u64 = chains.iter().map(|(_, r)| r.verified).sum();
    let verified = chains.iter().all(|(_, r)| r.is_ok());
    eprintln!(
        "pipeline: {report}; target calls={} effective={}",
        target.stats().calls,
        target.effective_mutations()
    );
    if succeeded != n
        || receipts as usize != n
        || !verified
        || !target.duplicate_effects().is_empty()
    {
        return Err(format!(
            "checks failed: succeeded={succeeded} receipts={receipts} chains_verified={verified} duplicates={}",
            target.duplicate_effects().len()
        ));
    }
    println!(
        "pipeline directives={n} secs={secs:.3} directives_per_sec={:.0} receipts={receipts} succeeded={succeeded} chains_verified={verified} synchronous={sync}",
        n as f64 / secs
    );
    Ok(())
}
