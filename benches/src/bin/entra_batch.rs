//! `entra_batch`: group-membership revocations through `iga-batch` and the Entra
//! connector's `$batch` path against the Graph mock on loopback (real HTTP, real JSON,
//! the mock's batch rules), optionally with a share of inner responses throttled.
//!
//! Flags: `--ops N` (default 5000), `--throttle P` (share of inner requests answered
//! 429 with `Retry-After: 1`, default 0), `--seed S`.
//!
//! Last line:
//! `entra_batch ops=<N> batch_calls=<C> inner_throttled=<T> secs=<X> ops_per_sec=<R> duplicates=<D>`.
//! Exits non-zero when a revocation is not confirmed, a membership changed twice, or
//! (without throttling) the call count is not ceil(N/20).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use iga_batch::{BatchConfig, BatchEngine, Targets};
use iga_connector_entra::mock::{CLIENT_ID, DOMAIN, GraphMock, TENANT};
use iga_connector_entra::{EntraAdapter, EntraConfig};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};

struct Args {
    ops: usize,
    throttle: f64,
    seed: u64,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        ops: 5000,
        throttle: 0.0,
        seed: 42,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--ops" => a.ops = value("--ops")?.parse().map_err(|e| format!("--ops: {e}"))?,
            "--throttle" => {
                a.throttle = value("--throttle")?
                    .parse()
                    .map_err(|e| format!("--throttle: {e}"))?
            }
            "--seed" => {
                a.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if !(0.0..0.9).contains(&a.throttle) {
        return Err("--throttle must be in [0, 0.9)".into());
    }
    Ok(a)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("entra_batch: {e}");
            return ExitCode::from(2);
        }
    };
    let graph = GraphMock::start().await;
    graph.set_client_secret("bench-secret");
    graph.seed(args.seed);
    let groups: Vec<String> = (0..50)
        .map(|i| graph.seed_group(&format!("G{i}")))
        .collect();
    let mut ops = Vec::with_capacity(args.ops);
    for i in 0..args.ops {
        let login = format!("u{i:06}");
        let uid = graph.seed_user(&login, &login);
        let g = &groups[i % groups.len()];
        graph.seed_member(g, &uid);
        ops.push(
            Operation::new(
                "contoso",
                "entra",
                OperationKind::Revoke,
                Identity::person(&login),
            )
            .with_native_id(&uid)
            .with_entitlement(EntitlementRef::group(g))
            .with_id(format!("bench.{i}")),
        );
    }
    if args.throttle > 0.0 {
        graph.throttle_inner_fraction(args.throttle, 1);
    }
    let adapter = EntraAdapter::new(
        EntraConfig::with_client_secret(TENANT, CLIENT_ID, "bench-secret")
            .endpoints(graph.graph_base(), graph.authority())
            .upn_domain(DOMAIN)
            .inner_throttle_retries(10),
    )
    .expect("config");
    let mut targets = Targets::new();
    targets.insert("contoso", "entra", Arc::new(adapter.clone()));
    let engine = BatchEngine::new(BatchConfig::default().seed(args.seed));
    let t0 = Instant::now();
    let report = engine.run(&targets, ops).await;
    let secs = t0.elapsed().as_secs_f64();
    let calls = graph.calls("/v1.0/$batch");
    let changes = graph.membership_changes();
    let duplicates = changes.values().filter(|n| **n > 1).count();
    let mut ok = true;
    if !report.all_succeeded() || changes.len() != args.ops {
        eprintln!(
            "entra_batch: not every revocation confirmed: {:?}",
            report.counts()
        );
        ok = false;
    }
    if duplicates > 0 {
        eprintln!("entra_batch: {duplicates} memberships changed twice");
        ok = false;
    }
    if args.throttle == 0.0 && calls as usize != args.ops.div_ceil(20) {
        eprintln!(
            "entra_batch: {calls} $batch calls for {} revocations",
            args.ops
        );
        ok = false;
    }
    println!(
        "entra_batch ops={} batch_calls={calls} inner_throttled={} secs={secs:.3} ops_per_sec={:.0} duplicates={duplicates}",
        args.ops,
        graph.inner_throttled(),
        args.ops as f64 / secs.max(1e-9)
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
