//! `ledger_ops`: grant/revoke decisions committed to the SQLite ledger in batches of B
//! (one transaction per batch) and one per transaction.
//!
//! ```text
//! cargo run --release -p iga-benches --bin ledger_ops -- --ops 200000 [--batch 100]
//! ```
//! Last line: `ledger_ops ops=<N> batch=<B> decisions_per_sec=<R> single_commit_per_sec=<S>`
//!
//! The first half of the operations grants distinct (identity, entitlement, source)
//! triples, the second half revokes them in the same order, so every decision changes
//! the ledger (grant 0→1 or revoke 1→0). Only `apply_changes` calls are timed (input
//! generation is not). The single-commit run uses min(N, 20000) operations. Before printing, the binary checks that every decision had the expected
//! outcome, that the ledger is empty again, that the history holds one record per
//! decision, and `PRAGMA integrity_check`; any failure exits non-zero.

use std::process::ExitCode;
use std::time::Instant;

use iga_directive::{Clock, EntitlementRef, GrantSource, SystemClock};
use iga_ledger::{
    AssignmentKey, ChangeContext, ChangeKind, DecisionOutcome, LedgerChange, OpenOptions,
    SqliteLedger, Synchronous,
};

const SINGLE_MAX: u64 = 20_000;

fn change(i: u64, half: u64, ctx: &ChangeContext) -> LedgerChange {
    let j = i % half;
    let u = j % 10_000;
    let e = (j / 10_000) % 100;
    let s = j / 1_000_000;
    let key = AssignmentKey::new(
        "acme",
        format!("user{u:05}"),
        "entra",
        EntitlementRef::group(format!("grp-{e:03}")),
    );
    let source = match s % 3 {
        0 => GrantSource::birthright(format!("rule-{s}")),
        1 => GrantSource::request("servicenow", &format!("RITM{s}")),
        _ => GrantSource::delegation(format!("mgr-{s}")),
    };
    if i < half {
        LedgerChange::grant(key, source, ctx.clone())
    } else {
        LedgerChange::revoke(key, source, ctx.clone())
    }
}

fn expected(c: &LedgerChange) -> DecisionOutcome {
    match c.kind {
        ChangeKind::Grant => DecisionOutcome::GrantTarget,
        ChangeKind::Revoke => DecisionOutcome::RevokeTarget,
    }
}

/// Run `n` decisions in batches of `batch`; returns decisions per second.
fn run(ledger: &SqliteLedger, n: u64, batch: u64) -> Result<f64, String> {
    let half = n / 2;
    let ctx = ChangeContext::at(SystemClock.now()).actor("ledger_ops");
    let mut elapsed = std::time::Duration::ZERO;
    let mut i = 0;
    while i < n {
        let end = (i + batch).min(n);
        // Input generation is not timed: only the decisions and their commits are.
        let changes: Vec<LedgerChange> = (i..end).map(|k| change(k, half, &ctx)).collect();
        let start = Instant::now();
        let decisions = ledger.apply_changes(&changes).map_err(|e| e.to_string())?;
        elapsed += start.elapsed();
        for (c, d) in changes.iter().zip(&decisions) {
            if d.outcome != expected(c) {
                return Err(format!("{:?} of {} gave {:?}", c.kind, c.key, d.outcome));
            }
        }
        i = end;
    }
    let rate = n as f64 / elapsed.as_secs_f64();
    let verify = || -> Result<(), iga_ledger::LedgerError> {
        let grants = ledger.table_count("lg_grant")?;
        let history = ledger.history_len()?;
        if grants != 0 || history != n {
            return Err(iga_ledger::LedgerError::Internal(format!(
                "after {n} decisions: {grants} grant rows (expected 0), {history} history records (expected {n})"
            )));
        }
        ledger.integrity_check()
    };
    verify().map_err(|e| e.to_string())?;
    Ok(rate)
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ledger_ops: FAILED: {msg}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let mut ops: u64 = 200_000;
    let mut batch: u64 = 100;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> Result<u64, ExitCode> {
            match args.next().and_then(|v| v.replace('_', "").parse().ok()) {
                Some(v) if v > 0 => Ok(v),
                _ => Err(fail(format!("{name} needs a positive integer"))),
            }
        };
        match a.as_str() {
            "--ops" => match num("--ops") {
                Ok(v) => ops = v,
                Err(c) => return c,
            },
            "--batch" => match num("--batch") {
                Ok(v) => batch = v,
                Err(c) => return c,
            },
            "-h" | "--help" => {
                println!("usage: ledger_ops [--ops N] [--batch B]");
                return ExitCode::SUCCESS;
            }
            other => return fail(format!("unknown argument `{other}`")),
        }
    }
    // An even number, so every grant has its revoke.
    let ops = ops.div_ceil(2) * 2;
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let open = |name: &str| {
        SqliteLedger::open_with(
            dir.path().join(name),
            OpenOptions::default().synchronous(Synchronous::Normal),
        )
    };
    let (batched_db, single_db) = match (open("batched.db"), open("single.db")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return fail(e),
    };
    let batched = match run(&batched_db, ops, batch) {
        Ok(r) => r,
        Err(e) => return fail(format!("batched run: {e}")),
    };
    eprintln!("batched: {ops} decisions in batches of {batch}: {batched:.0}/s");
    let single_ops = ops.min(SINGLE_MAX);
    let single = match run(&single_db, single_ops, 1) {
        Ok(r) => r,
        Err(e) => return fail(format!("single-commit run: {e}")),
    };
    eprintln!("single: {single_ops} decisions, one transaction each: {single:.0}/s");
    println!(
        "ledger_ops ops={ops} batch={batch} decisions_per_sec={batched:.0} single_commit_per_sec={single:.0}"
    );
    ExitCode::SUCCESS
}
