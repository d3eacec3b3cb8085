//! Behaviour of the reference target beyond the conformance kit: faults, batch limits,
//! latency and concurrency caps, the mutation log and the file journal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iga_adapter::*;
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};

fn grant(who: &str, g: &str) -> Operation {
    Operation::new("t", "mem", OperationKind::Grant, Identity::person(who))
        .with_entitlement(EntitlementRef::group(g))
        .with_id(format!("grant-{who}-{g}"))
}

fn seeded(cfg: MemoryConfig, users: usize) -> MemoryAdapter {
    let a = cfg.build();
    a.seed_entitlement(&EntitlementRef::group("G"));
    for i in 0..users {
        a.seed_account(&Identity::person(format!("u{i}")));
    }
    a
}

#[tokio::test]
async fn scripted_faults_classify_and_apply_as_described() {
    let a = seeded(MemoryAdapter::config("m"), 2);
    a.inject(Fault::RateLimited(Some(Duration::from_secs(7))));
    let e = a.apply(&grant("u0", "G")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert!(
        !a.has_member("u0", &EntitlementRef::group("G")),
        "429 must not apply"
    );

    a.inject(Fault::ResponseLost);
    let e = a.apply(&grant("u0", "G")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.is_retryable());
    assert!(
        a.has_member("u0", &EntitlementRef::group("G")),
        "response lost: change happened"
    );
    // The re-send is a no-op, so the op took effect once.
    let again = a.apply(&grant("u0", "G")).await.unwrap();
    assert!(matches!(
        again,
        Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyGranted,
            ..
        }
    ));
    assert!(a.duplicate_effects().is_empty());
    let effective: Vec<_> = a.mutations().into_iter().filter(|m| m.effective).collect();
    assert_eq!(effective.len(), 1);

    a.inject(Fault::Unauthenticated);
    assert_eq!(
        a.check().await.unwrap_err().kind(),
        ErrorKind::Unauthenticated
    );
    a.check().await.unwrap();
}

#[tokio::test]
async fn batch_items_fail_independently_and_in_order() {
    let a = seeded(MemoryAdapter::config("m").batch_max(5), 4);
    a.inject(Fault::Unavailable); // item 0
    a.inject(Fault::ItemFailure); // item 1
    let ops: Vec<_> = (0..4).map(|i| grant(&format!("u{i}"), "G")).collect();
    let r = a.apply_batch(&ops).await;
    assert_eq!(r.len(), 4);
    assert_eq!(r[0].as_ref().unwrap_err().kind(), ErrorKind::Unavailable);
    assert_eq!(r[1].as_ref().unwrap_err().kind(), ErrorKind::Unavailable);
    assert!(r[2].as_ref().unwrap().changed());
    assert!(r[3].as_ref().unwrap().changed());
    assert_eq!(a.members(&EntitlementRef::group("G")), vec!["u2", "u3"]);
    assert_eq!(a.stats().batch_calls, 1);
}

#[tokio::test]
async fn oversized_batches_are_rejected_like_a_real_api() {
    let a = seeded(MemoryAdapter::config("m").batch_max(2), 3);
    let ops: Vec<_> = (0..3).map(|i| grant(&format!("u{i}"), "G")).collect();
    let r = a.apply_batch(&ops).await;
    assert!(
        r.iter()
            .all(|x| x.as_ref().unwrap_err().kind() == ErrorKind::InvalidInput)
    );
    assert!(
        r[0].as_ref()
            .unwrap_err()
            .to_string()
            .contains("exceeds the native batch size 2")
    );
    assert!(a.members(&EntitlementRef::group("G")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_concurrency_cap_are_enforced() {
    let a = seeded(
        MemoryAdapter::config("m")
            .latency(Duration::from_millis(40))
            .max_concurrent(2),
        8,
    );
    let a = Arc::new(a);
    let start = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move { a.apply(&grant(&format!("u{i}"), "G")).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let took = start.elapsed();
    // 8 calls, 2 at a time, 40 ms each => at least 4 rounds.
    assert!(took >= Duration::from_millis(155), "took {took:?}");
    assert_eq!(a.stats().peak_concurrency, 2);
    assert_eq!(a.stats().apply_calls, 8);
}

#[tokio::test]
async fn random_faults_are_reproducible_from_the_seed() {
    let run = |seed| async move {
        let a = seeded(
            MemoryAdapter::config("m").faults(FaultConfig::mixed(seed, 0.5)),
            40,
        );
        let mut kinds = Vec::new();
        for i in 0..40 {
            kinds.push(
                a.apply(&grant(&format!("u{i}"), "G"))
                    .await
                    .err()
                    .map(|e| e.kind()),
            );
        }
        (kinds, a.stats().faults_injected)
    };
    let (k1, n1) = run(42).await;
    let (k2, n2) = run(42).await;
    assert_eq!(k1, k2);
    assert_eq!(n1, n2);
    assert!(n1 > 5 && n1 < 35, "about half should fault, got {n1}");
    let (k3, _) = run(7).await;
    assert_ne!(k1, k3);
}

#[tokio::test]
async fn strict_targets_report_missing_objects() {
    let a = seeded(MemoryAdapter::config("m"), 1);
    let e = a.apply(&grant("nobody", "G")).await.unwrap_err();
    assert_eq!((e.kind(), e.is_retryable()), (ErrorKind::NotFound, false));
    assert!(e.to_string().contains("account not found"), "{e}");
    let e = a.apply(&grant("u0", "Unknown")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    // Revoking from an unknown account or group is already the desired state.
    let revoke = Operation::new("t", "m", OperationKind::Revoke, Identity::person("nobody"))
        .with_entitlement(EntitlementRef::group("Unknown"));
    assert!(matches!(
        a.apply(&revoke).await.unwrap(),
        Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyAbsent,
            ..
        }
    ));
    let lenient = seeded(MemoryAdapter::config("m").auto_create_entitlements(true), 1);
    assert!(lenient.apply(&grant("u0", "New")).await.unwrap().changed());
}

#[tokio::test]
async fn create_links_by_identity_and_refuses_a_login_owned_by_someone_else() {
    let a = MemoryAdapter::new("m");
    let alice = Identity::person("alice").with_user_name("alice");
    let first = a.create_user(&alice, Default::default()).await.unwrap();
    let again = a.create_user(&alice, Default::default()).await.unwrap();
    assert_eq!(again.native_id(), first.native_id());
    let imposter = Identity::person("alice-2").with_user_name("ALICE");
    let e = a
        .create_user(&imposter, Default::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
}

#[tokio::test]
async fn deleting_an_account_removes_its_memberships_and_typed_calls_work() {
    let a = seeded(MemoryAdapter::config("m"), 0);
    let bob = Identity::person("bob");
    a.create_user(&bob, Default::default()).await.unwrap();
    a.add_to_group(&bob, "G").await.unwrap();
    assert_eq!(
        a.get_user_groups(&bob).await.unwrap(),
        vec![EntitlementRef::group("G")]
    );
    a.deactivate_user(&bob).await.unwrap();
    assert!(!a.get_user(&bob).await.unwrap().unwrap().enabled);
    a.delete_user(&bob).await.unwrap();
    assert!(a.get_user(&bob).await.unwrap().is_none());
    assert!(a.members(&EntitlementRef::group("G")).is_empty());
    assert!(a.get_user_groups(&bob).await.unwrap().is_empty());
}

#[tokio::test]
async fn malformed_cursor_is_invalid_input() {
    let a = MemoryAdapter::new("m");
    let e = a
        .list_accounts(PageRequest::after("garbage", 5))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn journal_tolerates_a_torn_tail_but_not_corruption_in_the_middle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    {
        let a = MemoryAdapter::config("m").open_file(&path).unwrap();
        a.seed_entitlement(&EntitlementRef::group("G"));
        a.seed_account(&Identity::person("u0"));
        a.apply(&grant("u0", "G")).await.unwrap();
    }
    // A kill mid-write leaves half a line.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"mutation\":{\"seq\":2,\"op_");
    std::fs::write(&path, &text).unwrap();
    let a = MemoryAdapter::config("m").open_file(&path).unwrap();
    assert!(a.has_member("u0", &EntitlementRef::group("G")));
    assert_eq!(a.mutations().len(), 1);
    // The torn tail was cut, so new entries append cleanly.
    a.seed_account(&Identity::person("u1"));
    drop(a);
    let a = MemoryAdapter::config("m").open_file(&path).unwrap();
    assert_eq!(a.account_count(), 2);
    drop(a);
    // Corruption before the last line is refused with the line number.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1] = "not json";
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let e = MemoryAdapter::config("m").open_file(&path).unwrap_err();
    assert!(e.to_string().contains(":2: corrupt journal line"), "{e}");
}

#[tokio::test]
async fn memory_source_polls_with_a_cursor_and_records_reports() {
    use iga_directive::{AccessDirective, Action, GrantSource};
    let s = MemorySource::new("hr", 2);
    for i in 0..3 {
        s.push(
            AccessDirective::builder("t", "m", Identity::person(format!("u{i}")), Action::Grant)
                .entitlement(EntitlementRef::group("G"))
                .source(GrantSource::birthright("all"))
                .build()
                .unwrap(),
        );
    }
    let b1 = s.poll(None).await.unwrap();
    assert_eq!((b1.directives.len(), b1.more), (2, true));
    let b1_again = s.poll(None).await.unwrap();
    assert_eq!(
        b1_again.directives, b1.directives,
        "same cursor, same directives"
    );
    let b2 = s.poll(b1.cursor.as_ref()).await.unwrap();
    assert_eq!((b2.directives.len(), b2.more), (1, false));
    let b3 = s.poll(b2.cursor.as_ref()).await.unwrap();
    assert!(b3.directives.is_empty());
    assert_eq!(
        s.poll(Some(&SourceCursor("x".into())))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    let r = FulfillmentReport::NeedsAttention {
        directive_id: b1.directives[0].id.clone(),
        approval: None,
        message: "target down".into(),
    };
    s.report(&r).await.unwrap();
    s.report(&r).await.unwrap();
    assert_eq!(s.reports(), vec![r]);
}

#[tokio::test]
async fn a_target_that_is_down_refuses_everything_and_applies_nothing() {
    let a = seeded(MemoryAdapter::config("m").batch_max(5), 2);
    a.set_down(true);
    let e = a.apply(&grant("u0", "G")).await.unwrap_err();
    assert_eq!((e.kind(), e.is_retryable()), (ErrorKind::Unavailable, true));
    let r = a.apply_batch(&[grant("u0", "G"), grant("u1", "G")]).await;
    assert!(
        r.iter()
            .all(|x| x.as_ref().unwrap_err().kind() == ErrorKind::Unavailable)
    );
    assert_eq!(a.check().await.unwrap_err().kind(), ErrorKind::Unavailable);
    assert!(a.list_accounts(PageRequest::first(5)).await.is_err());
    assert!(a.members(&EntitlementRef::group("G")).is_empty());
    a.set_down(false);
    assert!(a.apply(&grant("u0", "G")).await.unwrap().changed());
}
