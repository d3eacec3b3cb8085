//! The main job on the embedded default: approved decisions become directives,
//! directives become operations, operations are provisioned through the in-memory
//! reference target in native batches, and a second pass proves idempotency.
//!
//! Run: `cargo run -p iga-examples --example quickstart`

use std::time::Duration;

use iga_adapter::{Fault, MemoryAdapter, Outcome, ProvisioningAdapter};
use iga_directive::{
    AccessDirective, Action, ApprovalRef, EntitlementRef, ExpandOptions, GrantSource, Identity,
    Operation,
};

fn directives() -> Vec<AccessDirective> {
    let finance = EntitlementRef::group("Finance-Readers");
    let staff = EntitlementRef::group("All-Staff");
    let mut out = Vec::new();
    for (id, given, family, dept) in [
        ("e1001", "Alice", "Archer", "Finance"),
        ("e1002", "Bob", "Baker", "Finance"),
        ("e1003", "Chen", "Cruz", "Sales"),
    ] {
        let who = Identity::person(id)
            .with_name(given, family)
            .with_user_name(given.to_lowercase())
            .with_email(format!("{}@corp.example.com", given.to_lowercase()))
            .with_department(dept);
        // Birthright: everyone gets All-Staff; Finance gets Finance-Readers.
        out.push(
            AccessDirective::builder("corp", "directory", who.clone(), Action::Grant)
                .entitlement(staff.clone())
                .source(GrantSource::birthright("all-staff"))
                .build()
                .expect("valid directive"),
        );
        if dept == "Finance" {
            out.push(
                AccessDirective::builder("corp", "directory", who.clone(), Action::Grant)
                    .entitlement(finance.clone())
                    .source(GrantSource::birthright("dept-finance"))
                    .build()
                    .expect("valid directive"),
            );
        }
    }
    // An approved ServiceNow request: Chen (Sales) needs Finance-Readers.
    out.push(
        AccessDirective::builder(
            "corp",
            "directory",
            Identity::person("e1003")
                .with_name("Chen", "Cruz")
                .with_user_name("chen")
                .with_email("chen@corp.example.com"),
            Action::Grant,
        )
        .entitlement(finance)
        .approval(
            ApprovalRef::new("servicenow", "RITM0010001")
                .approver("carol.manager")
                .decided_at(chrono::Utc::now()),
        )
        .build()
        .expect("valid directive"),
    );
    out
}

async fn provision(target: &MemoryAdapter, ops: &[Operation]) -> (usize, usize, usize) {
    let (mut applied, mut no_op, mut failed) = (0, 0, 0);
    let batch = target.capabilities().batch_max;
    // Accounts first (one wave), then grants (second wave), each in native batches.
    for wave in [true, false] {
        let wave_ops: Vec<Operation> = ops
            .iter()
            .filter(|o| o.entitlement.is_none() == wave)
            .cloned()
            .collect();
        for chunk in wave_ops.chunks(batch) {
            let mut pending: Vec<Operation> = chunk.to_vec();
            for attempt in 1..=3 {
                let results = target.apply_batch(&pending).await;
                let mut retry = Vec::new();
                for (op, r) in pending.iter().zip(results) {
                    match r {
                        Ok(o @ Outcome::Applied { .. }) => {
                            applied += 1;
                            println!("  applied      {}  {:?}", op.describe(), o.native_id());
                        }
                        Ok(_) => {
                            no_op += 1;
                            println!("  no-op        {}", op.describe());
                        }
                        Err(e) if e.is_retryable() && attempt < 3 => {
                            println!("  retry later  {}  ({e})", op.describe());
                            tokio::time::sleep(
                                e.retry_after().unwrap_or(Duration::from_millis(10)),
                            )
                            .await;
                            retry.push(op.clone());
                        }
                        Err(e) => {
                            failed += 1;
                            println!("  FAILED       {}  ({e})", op.describe());
                        }
                    }
                }
                if retry.is_empty() {
                    break;
                }
                pending = retry;
            }
        }
    }
    (applied, no_op, failed)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let target = MemoryAdapter::config("directory").batch_max(20).build();
    target.seed_entitlement(&EntitlementRef::group("All-Staff"));
    target.seed_entitlement(&EntitlementRef::group("Finance-Readers"));
    // The target throttles the first item once, to show retry classification.
    target.inject(Fault::RateLimited(Some(Duration::from_millis(20))));

    let directives = directives();
    println!("{} approved decisions became directives:", directives.len());
    for d in &directives {
        println!(
            "  {}  {} {} for {} (source {})",
            &d.id.as_str()[..8],
            d.action,
            d.entitlement
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default(),
            d.identity.id,
            d.source
        );
    }
    let ops: Vec<Operation> = directives
        .iter()
        .flat_map(|d| d.operations(ExpandOptions::ensure_account()))
        .collect();

    println!("\npass 1: {} operations", ops.len());
    let (a1, n1, f1) = provision(&target, &ops).await;
    println!("\npass 2 (same directives again)");
    let (a2, n2, f2) = provision(&target, &ops).await;

    let stats = target.stats();
    println!(
        "\nsummary: pass1 applied={a1} no_op={n1} failed={f1}; pass2 applied={a2} no_op={n2} failed={f2}; \
         target calls={} effective_changes={} duplicate_effects={}",
        stats.calls,
        target.effective_mutations(),
        target.duplicate_effects().len()
    );
    println!(
        "holders of Finance-Readers: {:?}",
        target.members(&EntitlementRef::group("Finance-Readers"))
    );
    assert_eq!(f1 + f2, 0, "nothing may fail");
    assert_eq!(a2, 0, "the second pass must change nothing");
}
