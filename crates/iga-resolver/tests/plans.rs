//! Snapshot-style resolver tests: small fixtures in, the rendered plan (waves and
//! dependency edges) out, for each strictness mode, deprovisioning, explicit
//! orderings and the cycle error text.

use iga_directive::{EntitlementRef, Identity, Operation, OperationKind as K};
use iga_resolver::{
    Dependency, Endpoint, Gate, OpStatus, Plan, ResolveError, Resolver, ResolverConfig, Strictness,
};

fn op(n: usize, who: &str, system: &str, kind: K) -> Operation {
    Operation::new("acme", system, kind, Identity::person(who)).with_id(format!("op{n}"))
}

fn grant(n: usize, who: &str, system: &str, e: EntitlementRef) -> Operation {
    op(n, who, system, K::Grant).with_entitlement(e)
}

fn revoke(n: usize, who: &str, system: &str, e: EntitlementRef) -> Operation {
    op(n, who, system, K::Revoke).with_entitlement(e)
}

fn entra_before_scim(s: Strictness) -> ResolverConfig {
    ResolverConfig::default().depends(
        Dependency::new(Endpoint::system("entra"), Endpoint::system("scim-app")).strictness(s),
    )
}

fn plan(config: ResolverConfig, ops: Vec<Operation>) -> Plan {
    Resolver::new(config).plan(ops).expect("plan")
}

fn assert_snapshot(plan: &Plan, expected: &str) {
    let got = plan.render();
    assert_eq!(
        got.trim_end(),
        expected.trim(),
        "\n--- got ---\n{got}--- expected ---\n{expected}"
    );
}

/// Joiner in two systems: accounts before grants, entra before the SCIM app.
#[test]
fn joiner_accounts_first_entra_before_scim_app() {
    let ops = vec![
        grant(0, "alice", "scim-app", EntitlementRef::role("viewer")),
        op(1, "alice", "scim-app", K::CreateAccount),
        grant(2, "alice", "entra", EntitlementRef::group("G")),
        op(3, "alice", "entra", K::CreateAccount),
    ];
    let p = plan(entra_before_scim(Strictness::Strict), ops);
    assert_snapshot(
        &p,
        "
wave 0
  #3 create_account alice on entra@acme
wave 1
  #2 grant group:G to alice on entra@acme  after #3 (strict)
wave 2
  #1 create_account alice on scim-app@acme  after #2 (strict), #3 (strict)
wave 3
  #0 grant role:viewer to alice on scim-app@acme  after #1 (strict), #2 (strict), #3 (strict)
",
    );
}

/// Leaver: the same configuration, reversed — the SCIM app is torn down first,
/// revocations come before disabling and deleting.
#[test]
fn leaver_reverses_provisioning_order() {
    let ops = vec![
        op(0, "bob", "entra", K::DisableAccount),
        revoke(1, "bob", "entra", EntitlementRef::group("G")),
        op(2, "bob", "scim-app", K::DeleteAccount),
        revoke(3, "bob", "scim-app", EntitlementRef::role("viewer")),
    ];
    let p = plan(entra_before_scim(Strictness::Relaxed), ops);
    assert_snapshot(
        &p,
        "
wave 0
  #3 revoke role:viewer from bob on scim-app@acme
wave 1
  #2 delete_account bob on scim-app@acme  after #3 (lax)
wave 2
  #1 revoke group:G from bob on entra@acme  after #2 (relaxed), #3 (relaxed)
wave 3
  #0 disable_account bob on entra@acme  after #1 (lax), #2 (relaxed), #3 (relaxed)
",
    );
}

/// Different identities never wait for each other; one wave holds them all.
#[test]
fn independent_identities_share_waves() {
    let ops = vec![
        revoke(0, "u1", "entra", EntitlementRef::group("G")),
        revoke(1, "u2", "entra", EntitlementRef::group("G")),
        op(2, "u1", "entra", K::CreateAccount),
        grant(3, "u3", "entra", EntitlementRef::group("G")),
    ];
    let p = plan(ResolverConfig::default(), ops);
    assert_snapshot(
        &p,
        "
wave 0
  #0 revoke group:G from u1 on entra@acme
  #1 revoke group:G from u2 on entra@acme
  #2 create_account u1 on entra@acme
  #3 grant group:G to u3 on entra@acme
",
    );
}

/// Entitlement prerequisite ("license before mailbox") within one system and across.
#[test]
fn license_before_mailbox() {
    let license = EntitlementRef::new(iga_directive::EntitlementKind::License, "E5");
    let mailbox = EntitlementRef::group("mailbox-users");
    let config = ResolverConfig::default().depends(Dependency::new(
        Endpoint::entitlement("entra", license.clone()),
        Endpoint::entitlement("exchange", mailbox.clone()),
    ));
    let ops = vec![
        grant(0, "carol", "exchange", mailbox.clone()),
        grant(1, "carol", "entra", license.clone()),
        grant(2, "carol", "entra", EntitlementRef::group("other")),
    ];
    let p = plan(config.clone(), ops);
    assert_snapshot(
        &p,
        "
wave 0
  #1 grant license:E5 to carol on entra@acme
  #2 grant group:other to carol on entra@acme
wave 1
  #0 grant group:mailbox-users to carol on exchange@acme  after #1 (strict)
",
    );
    // Deprovisioning: the mailbox goes before the license.
    let ops = vec![
        revoke(0, "carol", "entra", license),
        revoke(1, "carol", "exchange", mailbox),
    ];
    assert_snapshot(
        &plan(config, ops),
        "
wave 0
  #1 revoke group:mailbox-users from carol on exchange@acme
wave 1
  #0 revoke license:E5 from carol on entra@acme  after #1 (strict)
",
    );
}

fn joiner_pair() -> Vec<Operation> {
    vec![
        op(0, "dave", "entra", K::CreateAccount),
        op(1, "dave", "scim-app", K::CreateAccount),
        grant(2, "dave", "scim-app", EntitlementRef::role("viewer")),
    ]
}

/// Runs a plan wave by wave with a scripted result per operation, applying the gate.
fn simulate(p: &Plan, fails: &[usize]) -> Vec<(usize, String)> {
    let mut status: Vec<Option<OpStatus>> = vec![None; p.len()];
    let mut log = Vec::new();
    for wave in p.waves() {
        for &i in wave {
            let (s, what) = match p.gate(i, |d| status[d]) {
                Gate::Run if fails.contains(&i) => (OpStatus::Failed, "failed".to_string()),
                Gate::Run => (OpStatus::Succeeded, "succeeded".to_string()),
                Gate::Fail { dependency } => (
                    OpStatus::Failed,
                    format!("failed: dependency #{dependency} did not succeed"),
                ),
                Gate::Skip { dependency } => (
                    OpStatus::Skipped,
                    format!("skipped: dependency #{dependency} did not succeed"),
                ),
                Gate::Waiting { dependency } => panic!("#{i} waits for #{dependency}"),
            };
            status[i] = Some(s);
            log.push((i, what));
        }
    }
    log.sort();
    log
}

#[test]
fn strict_dependency_fails_the_dependents() {
    let p = plan(entra_before_scim(Strictness::Strict), joiner_pair());
    assert_eq!(
        simulate(&p, &[0]),
        vec![
            (0, "failed".into()),
            (1, "failed: dependency #0 did not succeed".into()),
            (2, "failed: dependency #0 did not succeed".into()),
        ]
    );
}

#[test]
fn relaxed_dependency_skips_and_reports() {
    let p = plan(entra_before_scim(Strictness::Relaxed), joiner_pair());
    assert_snapshot(
        &p,
        "
wave 0
  #0 create_account dave on entra@acme
wave 1
  #1 create_account dave on scim-app@acme  after #0 (relaxed)
wave 2
  #2 grant role:viewer to dave on scim-app@acme  after #0 (relaxed), #1 (strict)
",
    );
    assert_eq!(
        simulate(&p, &[0]),
        vec![
            (0, "failed".into()),
            (1, "skipped: dependency #0 did not succeed".into()),
            // The account-before-grant edge is strict: a skipped account fails the grant.
            (2, "failed: dependency #1 did not succeed".into()),
        ]
    );
}

#[test]
fn lax_dependency_orders_only() {
    let p = plan(entra_before_scim(Strictness::Lax), joiner_pair());
    assert_eq!(p.waves().len(), 3, "{}", p.render());
    assert_eq!(
        simulate(&p, &[0]),
        vec![
            (0, "failed".into()),
            (1, "succeeded".into()),
            (2, "succeeded".into()),
        ]
    );
}

fn cyclic_config() -> ResolverConfig {
    let license = EntitlementRef::new(iga_directive::EntitlementKind::License, "E5");
    let mailbox = EntitlementRef::group("mailbox-users");
    ResolverConfig::default()
        .depends(Dependency::new(
            Endpoint::entitlement("entra", license.clone()),
            Endpoint::entitlement("exchange", mailbox.clone()),
        ))
        .depends(Dependency::new(
            Endpoint::system("exchange"),
            Endpoint::system("entra"),
        ))
}

fn cyclic_ops() -> Vec<Operation> {
    vec![
        grant(
            0,
            "erin",
            "entra",
            EntitlementRef::new(iga_directive::EntitlementKind::License, "E5"),
        ),
        grant(
            1,
            "erin",
            "exchange",
            EntitlementRef::group("mailbox-users"),
        ),
        grant(2, "zed", "entra", EntitlementRef::group("unrelated")),
    ]
}

#[test]
fn cycle_is_an_error_naming_the_path() {
    let err = Resolver::new(cyclic_config())
        .plan(cyclic_ops())
        .expect_err("cycle");
    match &err {
        ResolveError::Cycle {
            tenant,
            identity,
            path,
        } => {
            assert_eq!(tenant, "acme");
            assert_eq!(identity, "erin");
            assert_eq!(path.first(), path.last());
            assert_eq!(path.len(), 3, "{path:?}");
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    let expected_a = "dependency cycle for identity `erin` in tenant `acme`: grant entra/license:E5 -> grant exchange/group:mailbox-users -> grant entra/license:E5; configure an explicit ordering between two of these steps to break it";
    let expected_b = "dependency cycle for identity `erin` in tenant `acme`: grant exchange/group:mailbox-users -> grant entra/license:E5 -> grant exchange/group:mailbox-users; configure an explicit ordering between two of these steps to break it";
    assert!(text == expected_a || text == expected_b, "{text}");
}

#[test]
fn explicit_ordering_breaks_the_cycle() {
    let config = cyclic_config().explicit(
        Dependency::new(
            Endpoint::system("entra"),
            Endpoint::entitlement("exchange", EntitlementRef::group("mailbox-users")),
        )
        .strictness(Strictness::Relaxed),
    );
    let p = plan(config, cyclic_ops());
    assert_snapshot(
        &p,
        "
wave 0
  #0 grant license:E5 to erin on entra@acme
  #2 grant group:unrelated to zed on entra@acme
wave 1
  #1 grant group:mailbox-users to erin on exchange@acme  after #0 (relaxed)
",
    );
}

#[test]
fn duplicate_operation_ids_are_rejected() {
    let ops = vec![
        op(7, "a", "entra", K::CreateAccount),
        op(7, "b", "entra", K::CreateAccount),
    ];
    let err = Resolver::default().plan(ops).unwrap_err();
    assert_eq!(
        err.to_string(),
        "operation id `op7` appears more than once in the resolver input"
    );
}

#[test]
fn empty_input_is_an_empty_plan() {
    let p = Resolver::default().plan(vec![]).unwrap();
    assert!(p.is_empty());
    assert!(p.waves().is_empty());
    assert_eq!(p.render(), "");
}

#[test]
fn config_round_trips_through_json() {
    let config = cyclic_config().teardown_strictness(Strictness::Relaxed);
    let json = serde_json::to_string(&config).unwrap();
    assert!(json.contains("\"strictness\":\"strict\""), "{json}");
    let back: ResolverConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, config);
    let minimal: ResolverConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(minimal, ResolverConfig::default());
}
