//! Scenario 5 — crash mid-run: a worker process runs 20,000 directives against the
//! SQLite store and a file-backed target with latency; it is aborted at every step
//! boundary (deterministic failpoints) and SIGKILLed at 20+ random points, restarted
//! each time. At the end: every directive succeeded (or escalated), no operation took
//! effect twice (the target's mutation log), the ledger's confirmed state equals the
//! target's state, and every receipt chain verifies.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use iga_adapter::MemoryAdapter;
use iga_directive::JobStateName;
use iga_ledger::{LedgerStore, SqliteStore};
use iga_orchestrator::Orchestrator;
use iga_receipt::{ReceiptSigner, SigningKey};
use rand::{Rng, SeedableRng};

const N: usize = 20_000;
const WORKER: &str = env!("CARGO_BIN_EXE_crash_worker");

async fn run_worker(
    dir: &Path,
    crash_at: Option<&str>,
    kill_after: Option<Duration>,
) -> Option<String> {
    let mut cmd = tokio::process::Command::new(WORKER);
    cmd.args([
        "--dir",
        dir.to_str().unwrap(),
        "--directives",
        &N.to_string(),
        "--latency-ms",
        "2",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    match crash_at {
        Some(p) => cmd.env("IGA_CRASH_AT", p),
        None => cmd.env_remove("IGA_CRASH_AT"),
    };
    let mut child = cmd.spawn().expect("spawn crash_worker");
    let status = match kill_after {
        Some(after) => tokio::select! {
            s = child.wait() => s.expect("wait"),
            _ = tokio::time::sleep(after) => {
                child.kill().await.expect("SIGKILL worker");
                child.wait().await.expect("wait")
            }
        },
        None => child.wait().await.expect("wait"),
    };
    let out = child
        .wait_with_output()
        .await
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if status.success() {
        out.lines()
            .rfind(|l| l.starts_with("done"))
            .map(str::to_string)
    } else {
        None
    }
}

/// After every crash: no operation took effect twice so far.
fn assert_no_duplicate_effects(dir: &Path) {
    let path = dir.join("target.jsonl");
    if !path.exists() {
        return;
    }
    let target = MemoryAdapter::config("dir").open_file(&path).unwrap();
    assert!(
        target.duplicate_effects().is_empty(),
        "{:?}",
        target.duplicate_effects()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_step_boundary_and_at_random_points_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // (a) Deterministic failpoints at every step boundary.
    for point in [
        "after_persist",
        "mid_batch:2",
        "after_apply_before_commit:1",
        "after_commit_before_ack:1",
        "mid_batch:1",
    ] {
        let done = run_worker(dir.path(), Some(point), None).await;
        assert!(done.is_none(), "failpoint {point} did not stop the worker");
        assert_no_duplicate_effects(dir.path());
    }
    // (b) SIGKILL at random points.
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut kills = 0;
    let mut finished = None;
    for _ in 0..22 {
        let after = Duration::from_millis(rng.random_range(200..2500));
        match run_worker(dir.path(), None, Some(after)).await {
            Some(done) => {
                finished = Some(done);
                break;
            }
            None => {
                kills += 1;
                assert_no_duplicate_effects(dir.path());
            }
        }
    }
    // (c) Run to completion.
    let done = match finished {
        Some(d) => d,
        None => run_worker(dir.path(), None, None)
            .await
            .expect("final run completes"),
    };
    eprintln!("crash test: {kills} random kills, final: {done}");
    assert!(
        kills >= 20,
        "only {kills} random kills happened before the run finished; make the run longer"
    );

    // Verify from the outside, with the same files.
    let target = MemoryAdapter::config("dir")
        .open_file(dir.path().join("target.jsonl"))
        .unwrap();
    let store = SqliteStore::open(dir.path().join("iga.db")).await.unwrap();
    let orch = Orchestrator::builder()
        .store(Arc::new(store.clone()))
        .signer(
            ReceiptSigner::new(SigningKey::from_ed25519_seed(&[7u8; 32], None).unwrap()).unwrap(),
        )
        .system("dir", Arc::new(target.clone()))
        .build()
        .await
        .unwrap();
    let s = orch.status().await.unwrap();
    let terminal = s.count(JobStateName::Succeeded)
        + s.count(JobStateName::Escalated)
        + s.count(JobStateName::Skipped);
    assert_eq!(terminal, N, "every directive is terminal: {s:?}");
    assert_eq!(s.count(JobStateName::Escalated), 0, "{s:?}");
    assert!(
        target.duplicate_effects().is_empty(),
        "operations applied twice: {:?}",
        target.duplicate_effects()
    );
    // One effective membership change per distinct assignment.
    let effective = target
        .mutations()
        .into_iter()
        .filter(|m| m.effective)
        .count();
    assert_eq!(
        effective, N,
        "each of the {N} assignments changed the target exactly once"
    );
    // Ledger confirmed state == target state.
    let confirmed: BTreeSet<(String, String)> = store
        .system_assignments("acme", "dir", false)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.target_visible())
        .map(|a| (a.key.identity.clone(), a.key.entitlement.key()))
        .collect();
    let actual: BTreeSet<(String, String)> = target.assignments().into_iter().collect();
    assert_eq!(confirmed.len(), N);
    assert_eq!(
        confirmed, actual,
        "ledger confirmed state differs from the target"
    );
    // Every receipt chain verifies, one receipt per operation.
    let reports = orch.verify_receipts().await.unwrap();
    let receipts: u64 = reports.iter().map(|(_, r)| r.verified).sum();
    assert!(reports.iter().all(|(_, r)| r.is_ok()), "{reports:?}");
    assert_eq!(receipts as usize, N);
}
