//! Criterion benchmark: planning 100,000 operations (issue 4 asks for "well under a
//! second"). The fixture is a realistic mix: 25,000 identities, each with an account
//! creation and a grant in entra, a grant in a SCIM app that depends on entra, and a
//! revocation in a third system.

use criterion::{Criterion, criterion_group, criterion_main};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};
use iga_resolver::{Dependency, Endpoint, Resolver, ResolverConfig, Strictness};
use std::hint::black_box;

fn fixture(identities: usize) -> Vec<Operation> {
    let mut ops = Vec::with_capacity(identities * 4);
    for i in 0..identities {
        let who = Identity::person(format!("u{i:06}"));
        let op = |n: usize, system: &str, kind| {
            Operation::new(format!("t{}", i % 3), system, kind, who.clone())
                .with_id(format!("d{i}.{n}"))
        };
        ops.push(op(0, "entra", OperationKind::CreateAccount));
        ops.push(
            op(1, "entra", OperationKind::Grant)
                .with_entitlement(EntitlementRef::group(format!("g{}", i % 50))),
        );
        ops.push(
            op(2, "scim-app", OperationKind::Grant)
                .with_entitlement(EntitlementRef::role("viewer")),
        );
        ops.push(
            op(3, "ldap", OperationKind::Revoke).with_entitlement(EntitlementRef::group("old")),
        );
    }
    ops
}

fn bench(c: &mut Criterion) {
    let ops = fixture(25_000);
    assert_eq!(ops.len(), 100_000);
    let resolver = Resolver::new(
        ResolverConfig::default().depends(
            Dependency::new(Endpoint::system("entra"), Endpoint::system("scim-app"))
                .strictness(Strictness::Relaxed),
        ),
    );
    let plan = resolver.plan(ops.clone()).expect("plan");
    assert_eq!(plan.waves().len(), 3);
    let mut group = c.benchmark_group("resolver");
    group.sample_size(10);
    group.bench_function("plan_100k_operations", |b| {
        b.iter_batched(
            || ops.clone(),
            |ops| black_box(resolver.plan(ops).expect("plan").waves().len()),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
