//! Receipt throughput benchmark.
//!
//! Times, together and on one thread: receipt payload construction (draft from the
//! operation incl. request digest), canonical JSON, chain hashing, Ed25519 signing and a
//! store append (pushing the `ReceiptRecord` onto an in-memory `Vec`, the shape the
//! ledger persists). Then times verification of the whole chain against its head
//! (signatures on all available cores, linkage in order).
//!
//! Usage: `receipts [--receipts N] [--verify-threads T]` (default N = 100000).
//! Last line: `receipts signed=<N> sign_per_sec=<S> chain_verify_secs=<V> chain_len=<N> alg=EdDSA`.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use iga_directive::{
    AccessDirective, Action, ApprovalRef, EntitlementRef, ExpandOptions, GrantSource, Identity,
};
use iga_receipt::{
    Algorithm, ChainId, ChainState, ChainVerifier, KeyRing, Outcome, ReceiptDraft, ReceiptSigner,
    SigningKey,
};

/// CPU time (user + system) consumed so far by the calling thread, from
/// `/proc/thread-self/stat` (Linux; clock ticks of 10 ms). `None` elsewhere.
fn thread_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// CPU time (user + system) of the whole process so far (`/proc/self/stat`).
fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn arg(args: &[String], name: &str) -> Option<usize> {
    let i = args.iter().position(|a| a == name)?;
    let v = args
        .get(i + 1)
        .unwrap_or_else(|| panic!("{name} needs a value"));
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}: `{v}` is not a number")),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = arg(&args, "--receipts").unwrap_or(100_000);
    let verify_threads = arg(&args, "--verify-threads");

    let t0: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-03-01T09:00:00Z")
        .expect("constant")
        .with_timezone(&Utc);
    // Input: n directives (500 identities x 7 groups cycling), expanded to operations.
    let work: Vec<_> = (0..n)
        .map(|i| {
            let d = AccessDirective::builder(
                "acme",
                "entra",
                Identity::person(format!("user{:06}", i % 500)),
                if i % 3 == 0 {
                    Action::Revoke
                } else {
                    Action::Grant
                },
            )
            .id(format!("d-{i:07}"))
            .entitlement(EntitlementRef::group(format!("Group-{}", i % 7)))
            .source(GrantSource::request("servicenow", &format!("RITM{i:07}")))
            .approval(
                ApprovalRef::new("servicenow", format!("RITM{i:07}"))
                    .approver("carol")
                    .decided_at(t0),
            )
            .requested_at(t0)
            .build()
            .expect("valid directive");
            let op = d.operations(ExpandOptions::default()).remove(0);
            (d, op)
        })
        .collect();

    let signer = ReceiptSigner::new(SigningKey::generate(Algorithm::EdDSA).expect("keygen"))
        .expect("signer");
    let keys = KeyRing::new().with(signer.key().verifying_key().clone());
    let mut chain = ChainState::genesis(ChainId::new("bench-node", "entra").expect("chain id"));
    let mut store = Vec::with_capacity(n);

    let cpu_start = thread_cpu_secs();
    let start = Instant::now();
    for (i, (d, op)) in work.iter().enumerate() {
        let at = t0 + Duration::milliseconds(i as i64);
        let outcome = if i % 10 == 9 {
            Outcome::AlreadyInState
        } else {
            Outcome::Applied
        };
        let draft = ReceiptDraft::for_directive(d, op, outcome, at).expect("draft");
        let receipt = chain.append(&signer, draft, at).expect("sign");
        store.push(receipt.into_record());
    }
    let head = chain.head(&signer, t0).expect("head");
    let sign_secs = start.elapsed().as_secs_f64();
    let cpu_secs = match (cpu_start, thread_cpu_secs()) {
        (Some(a), Some(b)) if b > a => Some(b - a),
        _ => None,
    };
    let wall_rate = n as f64 / sign_secs;
    println!(
        "signed {n} receipts on one thread: wall {sign_secs:.3} s ({wall_rate:.0}/s), thread CPU {} s ({}/s)",
        cpu_secs.map_or("n/a".into(), |c| format!("{c:.2}")),
        cpu_secs.map_or("n/a".into(), |c| format!("{:.0}", n as f64 / c)),
    );
    let sign_per_sec = wall_rate;

    let mut verifier = ChainVerifier::new(&keys);
    if let Some(t) = verify_threads {
        verifier = verifier.threads(t);
    }
    let cpu_before = process_cpu_secs();
    let start = Instant::now();
    let report = verifier.verify(&store, Some(&head));
    let verify_secs = start.elapsed().as_secs_f64();
    let verify_cpu = match (cpu_before, process_cpu_secs()) {
        (Some(a), Some(b)) => format!("{:.2}", b - a),
        _ => "n/a".into(),
    };
    assert!(report.is_ok(), "benchmark chain does not verify: {report}");
    assert_eq!(report.verified, n as u64);
    println!(
        "verified chain of {n} receipts against its head: wall {verify_secs:.3} s, CPU {verify_cpu} s (all threads)"
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "load average {} on {} CPUs (wall-clock figures below include waiting for a CPU)",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
    }
    println!(
        "receipts signed={n} sign_per_sec={sign_per_sec:.0} chain_verify_secs={verify_secs:.3} chain_len={} alg=EdDSA",
        report.verified
    );
}
