//! `batch_revocations`: 500 revocations against a MemoryAdapter configured like
//! Microsoft Graph (native batch 20, 50 ms per call, at most 4 concurrent calls),
//! batched through `iga-batch` versus one `apply` per operation with the same
//! concurrency limit.
//!
//! Flags: `--ops N` (default 500; smaller for smoke runs), `--faults P` (mixed fault
//! rate for the batched run: 429 with a 50 ms Retry-After, 503, whole-call timeouts,
//! per-item failures, applied-but-response-lost), `--seed S`.
//!
//! Last line:
//! `batch_revocations ops=<N> calls=<C> batched_secs=<X> naive_calls=<N> naive_secs=<Y> speedup=<Y/X> retries=<K> duplicates=<D>`.
//! Exits non-zero when a check fails: not every revocation confirmed, a duplicate
//! effect in the mutation log, and (fault-free, 500 ops or more) more than
//! ceil(N/20) calls or a speedup below 15.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iga_adapter::{FaultConfig, MemoryAdapter, MemoryConfig};
use iga_batch::{BackoffConfig, BatchConfig, BatchEngine, RetryPolicy, Targets};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};

struct Args {
    ops: usize,
    faults: f64,
    seed: u64,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        ops: 500,
        faults: 0.0,
        seed: 42,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--ops" => a.ops = value("--ops")?.parse().map_err(|e| format!("--ops: {e}"))?,
            "--faults" => {
                a.faults = value("--faults")?
                    .parse()
                    .map_err(|e| format!("--faults: {e}"))?
            }
            "--seed" => {
                a.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "-h" | "--help" => {
                return Err("usage: batch_revocations [--ops N] [--faults P] [--seed S]".into());
            }
            other => return Err(format!("unknown flag `{other}` (try --help)")),
        }
    }
    if a.ops == 0 || !(0.0..1.0).contains(&a.faults) {
        return Err("--ops must be > 0 and --faults in [0, 1)".into());
    }
    Ok(a)
}

fn graph_like(name: &str) -> MemoryConfig {
    MemoryAdapter::config(name)
        .batch_max(20)
        .latency(Duration::from_millis(50))
        .max_concurrent(4)
}

fn group() -> EntitlementRef {
    EntitlementRef::group("Quarterly-Review-Scope")
}

fn revocations(target: &MemoryAdapter, n: usize) -> Vec<Operation> {
    (0..n)
        .map(|i| {
            let who = Identity::person(format!("user{i:04}"));
            target.seed_membership(&who, &group());
            Operation::new("contoso", "entra", OperationKind::Revoke, who)
                .with_entitlement(group())
                .with_id(format!("review-2026q1.{i}"))
        })
        .collect()
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("batch_revocations: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let n = args.ops;
    let mut failures = Vec::new();

    // Batched: iga-batch against the Graph-like target (with faults if asked).
    let mut config = graph_like("entra-batched");
    if args.faults > 0.0 {
        config = config.faults(FaultConfig::mixed(args.seed, args.faults));
    }
    let batched = config.build();
    let ops = revocations(&batched, n);
    let engine = BatchEngine::new(BatchConfig::default().seed(args.seed).retry(
        RetryPolicy::new(12, Duration::from_secs(60)).backoff(BackoffConfig::new(
            Duration::from_millis(50),
            Duration::from_secs(1),
            2.0,
        )),
    ));
    let targets = Targets::new().with("contoso", "entra", Arc::new(batched.clone()));
    let t0 = Instant::now();
    let report = engine.run(&targets, ops).await;
    let batched_secs = t0.elapsed().as_secs_f64();
    let s = batched.stats();
    let calls = s.batch_calls + s.apply_calls;
    let duplicates = batched.duplicate_effects().len();
    println!(
        "batched: {} of {n} confirmed, {calls} calls ({} items sent), {} retried, {} throttled, peak concurrency {}, {:.3}s, faults injected {}",
        report.succeeded(),
        s.batch_items,
        report.retries,
        report.throttled,
        s.peak_concurrency,
        batched_secs,
        s.faults_injected
    );
    if !report.all_succeeded() {
        failures.push(format!(
            "{} revocations not confirmed: {:?}",
            n - report.succeeded(),
            report.counts()
        ));
    }
    if !batched.assignments().is_empty() {
        failures.push(format!(
            "{} memberships still present",
            batched.assignments().len()
        ));
    }

    // Naive: one apply per operation, same target shape and concurrency, no faults.
    let naive = graph_like("entra-naive").build();
    let ops = revocations(&naive, n);
    let t0 = Instant::now();
    let results = iga_adapter::batch::concurrent(&naive, &ops, 4).await;
    let naive_secs = t0.elapsed().as_secs_f64();
    let naive_calls = naive.stats().apply_calls;
    let naive_ok = results.iter().filter(|r| r.is_ok()).count();
    println!("naive: {naive_ok} of {n} confirmed, {naive_calls} calls, {naive_secs:.3}s");
    if naive_ok != n {
        failures.push(format!("naive run confirmed only {naive_ok} of {n}"));
    }
    let duplicates = duplicates + naive.duplicate_effects().len();
    if duplicates > 0 {
        failures.push(format!("{duplicates} operations took effect twice"));
    }
    let speedup = naive_secs / batched_secs;
    if args.faults == 0.0 {
        let max_calls = n.div_ceil(20) as u64;
        if calls > max_calls {
            failures.push(format!("{calls} calls, expected at most {max_calls}"));
        }
        if n >= 500 && speedup < 15.0 {
            failures.push(format!("speedup {speedup:.1} below 15"));
        }
    }
    for f in &failures {
        eprintln!("batch_revocations: check failed: {f}");
    }
    println!(
        "batch_revocations ops={n} calls={calls} batched_secs={batched_secs:.3} naive_calls={naive_calls} naive_secs={naive_secs:.3} speedup={speedup:.1} retries={} duplicates={duplicates}",
        report.retries
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
