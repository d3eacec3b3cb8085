//! Reference counting, intent vs confirmed, queries, history and persistence.
#![cfg(feature = "sqlite")]

mod common;

use common::*;
use iga_directive::*;
use iga_ledger::*;

#[test]
fn two_sources_one_revoke_keeps_access_and_last_revoke_deprovisions() {
    let (_d, l) = fresh();
    let k = key("alice", "Finance");
    let a = GrantSource::request("servicenow", "RITM1");
    let b = GrantSource::birthright("finance-default");

    let d = l.grant(&k, &a, &ctx(1)).unwrap();
    assert_eq!(d.outcome, DecisionOutcome::GrantTarget);
    assert!(d.outcome.target_change());
    assert_eq!((d.intended_sources, d.confirmed_sources), (1, 0));
    // Not yet confirmed: the target is not counted as provisioned.
    assert!(!l.assignment(&k).unwrap().target_visible());

    let d = l.grant(&k, &b, &ctx(2)).unwrap();
    assert_eq!(d.outcome, DecisionOutcome::GrantCounted);
    assert_eq!(
        l.grant(&k, &b, &ctx(3)).unwrap().outcome,
        DecisionOutcome::GrantAlreadyHeld
    );

    let c = l
        .confirm(&Confirmation::grant(k.clone(), a.clone(), ctx(4)))
        .unwrap();
    assert!(!c.revoke_needed);
    assert_eq!((c.intended_sources, c.confirmed_sources), (2, 2));

    // Revoking a source that is not there is a reported no-op.
    let other = GrantSource::delegation("bob");
    let d = l.revoke(&k, &other, &ctx(5)).unwrap();
    assert_eq!(d.outcome, DecisionOutcome::RevokeNotHeld);
    assert_eq!(d.intended_sources, 2);

    let d = l.revoke(&k, &a, &ctx(6)).unwrap();
    assert_eq!(d.outcome, DecisionOutcome::RevokeCounted);
    assert!(!d.outcome.target_change());
    let srcs = l.sources_of(&k).unwrap();
    assert_eq!(srcs.len(), 1);
    assert_eq!(srcs[0].source, b);
    assert!(srcs[0].intended && srcs[0].confirmed);

    let d = l.revoke(&k, &b, &ctx(7)).unwrap();
    assert_eq!(d.outcome, DecisionOutcome::RevokeTarget);
    // A revoke not yet confirmed keeps the access counted.
    let st = l.assignment(&k).unwrap();
    assert_eq!((st.intended_sources, st.confirmed_sources), (0, 1));
    assert!(st.target_visible() && !st.in_sync());

    let c = l
        .confirm(&Confirmation::revoke(k.clone(), b.clone(), ctx(8)))
        .unwrap();
    assert!(!c.regrant_needed);
    assert!(l.sources_of(&k).unwrap().is_empty());
    assert_eq!(l.replay_history().unwrap(), l.snapshot().unwrap());
}

#[test]
fn revoke_of_unknown_assignment_is_a_noop_and_interns_nothing() {
    let (_d, l) = fresh();
    let d = l
        .revoke(&key("nobody", "G"), &GrantSource::import("b1"), &ctx(1))
        .unwrap();
    assert_eq!(d.outcome, DecisionOutcome::RevokeNotHeld);
    assert_eq!(l.table_count("lg_identity").unwrap(), 0);
    assert_eq!(l.history_len().unwrap(), 0);
}

#[test]
fn invalid_keys_and_sources_are_rejected_naming_the_field() {
    let (_d, l) = fresh();
    let e = l
        .grant(&key("", "G"), &GrantSource::import("b"), &ctx(1))
        .unwrap_err();
    assert!(e.to_string().starts_with("identity:"), "{e}");
    let e = l
        .grant(&key("a", "G"), &GrantSource::import(""), &ctx(1))
        .unwrap_err();
    assert!(e.to_string().starts_with("source:"), "{e}");
    // apply_changes is all or nothing.
    let ok = LedgerChange::grant(key("a", "G"), GrantSource::import("b"), ctx(1));
    let bad = LedgerChange::grant(key("a", ""), GrantSource::import("b"), ctx(1));
    assert!(l.apply_changes(&[ok, bad]).is_err());
    assert_eq!(l.table_count("lg_grant").unwrap(), 0);
}

#[test]
fn history_records_who_why_and_when_and_is_append_only() {
    let (dir, l) = fresh();
    let k = key("alice", "G");
    let appr = ApprovalRef::new("servicenow", "RITM9").approver("carol");
    l.grant(
        &k,
        &GrantSource::request("servicenow", "RITM9"),
        &ChangeContext::at(at(5))
            .actor("orchestrator")
            .approval(appr)
            .directive("d-1"),
    )
    .unwrap();
    drop(l);
    let c = rusqlite::Connection::open(dir.path().join("ledger.db")).unwrap();
    let (event, actor, approval, directive, when): (String, String, String, String, i64) = c
        .query_row(
            "SELECT event, actor, approval_json, directive_id, at FROM lg_history",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(
        (event.as_str(), actor.as_str(), directive.as_str()),
        ("grant", "orchestrator", "d-1")
    );
    assert!(approval.contains("RITM9") && approval.contains("carol"));
    assert_eq!(when, at(5).timestamp_micros());
    for sql in [
        "UPDATE lg_history SET actor = 'x'",
        "DELETE FROM lg_history",
    ] {
        let e = c.execute(sql, []).unwrap_err().to_string();
        assert!(e.contains("append-only"), "{sql}: {e}");
    }
}

#[test]
fn queries_by_identity_entitlement_and_system_drift() {
    let (_d, l) = fresh();
    let src = GrantSource::birthright("r1");
    for (who, g) in [("alice", "G1"), ("alice", "G2"), ("bob", "G1")] {
        l.grant(&key(who, g), &src, &ctx(1)).unwrap();
    }
    l.grant(
        &AssignmentKey::new("acme", "alice", "ldap", EntitlementRef::role("admin")),
        &src,
        &ctx(1),
    )
    .unwrap();
    // Same names in another tenant are another assignment.
    l.grant(
        &AssignmentKey::new("other", "alice", "entra", EntitlementRef::group("G1")),
        &src,
        &ctx(1),
    )
    .unwrap();
    l.confirm(&Confirmation::grant(
        key("alice", "G1"),
        src.clone(),
        ctx(2),
    ))
    .unwrap();

    let mine = l.assignments_of_identity("acme", "alice").unwrap();
    let names: Vec<String> = mine
        .iter()
        .map(|a| format!("{}/{}", a.key.system, a.key.entitlement))
        .collect();
    assert_eq!(
        names,
        ["entra/group:G1", "entra/group:G2", "ldap/role:admin"]
    );

    let holders = l
        .holders_of("acme", "entra", &EntitlementRef::group("G1"))
        .unwrap();
    let who: Vec<&str> = holders.iter().map(|a| a.key.identity.as_str()).collect();
    assert_eq!(who, ["alice", "bob"]);
    assert!(holders[0].target_visible() && !holders[1].target_visible());

    let all = l.system_assignments("acme", "entra", false).unwrap();
    assert_eq!(all.len(), 3);
    let drift = l.system_assignments("acme", "entra", true).unwrap();
    let d: Vec<String> = drift.iter().map(|a| a.key.to_string()).collect();
    assert_eq!(
        d,
        [
            "group:G2 on entra@acme for alice",
            "group:G1 on entra@acme for bob"
        ]
    );
    assert!(
        l.system_assignments("acme", "nosuch", false)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn ledger_survives_reopen_from_the_wal_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    {
        let l = SqliteLedger::open(&path).unwrap();
        assert_eq!(l.journal_mode().unwrap(), "wal");
        assert_eq!(l.synchronous().unwrap(), "NORMAL");
        l.grant(&key("alice", "G"), &GrantSource::import("b"), &ctx(1))
            .unwrap();
        // The WAL file exists while the connection is open.
        assert!(dir.path().join("ledger.db-wal").exists());
    }
    let l = SqliteLedger::open_with(&path, OpenOptions::default().synchronous(Synchronous::Full))
        .unwrap();
    assert_eq!(l.synchronous().unwrap(), "FULL");
    assert_eq!(l.sources_of(&key("alice", "G")).unwrap().len(), 1);
    l.integrity_check().unwrap();
}

#[test]
fn grant_confirmed_after_its_revoke_is_reported_as_revoke_needed() {
    let (_d, l) = fresh();
    let k = key("alice", "G");
    let s = GrantSource::request("jira", "ACC-1");
    assert!(l.grant(&k, &s, &ctx(1)).unwrap().outcome.target_change());
    assert!(l.revoke(&k, &s, &ctx(2)).unwrap().outcome.target_change());
    let c = l
        .confirm(&Confirmation::grant(k.clone(), s.clone(), ctx(3)))
        .unwrap();
    assert!(c.revoke_needed);
    assert_eq!(c.confirmed_sources, 1);
    let c = l
        .confirm(&Confirmation::revoke(k.clone(), s, ctx(4)))
        .unwrap();
    assert!(!c.regrant_needed);
    assert_eq!(c.confirmed_sources, 0);
    assert_eq!(l.replay_history().unwrap(), l.snapshot().unwrap());
}

#[test]
fn coexistence_modes_are_stored_per_system_and_queryable() {
    let (_d, l) = fresh();
    assert_eq!(l.coexistence("entra").unwrap(), CoexistenceMode::Native);
    l.set_coexistence("racf", CoexistenceMode::LegacyProxy, at(1))
        .unwrap();
    l.set_coexistence("ldap", CoexistenceMode::ShadowCompare, at(1))
        .unwrap();
    l.set_coexistence("ad", CoexistenceMode::ShadowCompare, at(1))
        .unwrap();
    l.set_coexistence("ldap", CoexistenceMode::DualWrite, at(2))
        .unwrap();
    assert_eq!(l.coexistence("ldap").unwrap(), CoexistenceMode::DualWrite);
    assert_eq!(
        l.systems_in_mode(CoexistenceMode::ShadowCompare).unwrap(),
        ["ad"]
    );
    assert_eq!(
        l.systems_in_mode(CoexistenceMode::LegacyProxy).unwrap(),
        ["racf"]
    );
    assert!(
        l.set_coexistence(" ", CoexistenceMode::Native, at(1))
            .is_err()
    );

    // The decision table (README): what we execute, record, compare; who wins.
    use ConflictWinner::*;
    let table = [
        (CoexistenceMode::Native, true, false, false, Ledger),
        (CoexistenceMode::LegacyProxy, false, true, false, Legacy),
        (CoexistenceMode::ShadowCompare, false, true, true, Legacy),
        (CoexistenceMode::DualWrite, true, true, true, Ledger),
        (CoexistenceMode::LegacyOverride, true, false, true, Legacy),
    ];
    for (m, exec, legacy, compare, winner) in table {
        let p = m.policy();
        assert_eq!(
            (
                p.we_execute,
                p.legacy_executes,
                p.compare_and_report,
                p.winner,
                p.record
            ),
            (exec, legacy, compare, winner, true),
            "{m}"
        );
        assert_eq!(CoexistenceMode::parse(m.as_str()), Some(m));
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            format!("\"{}\"", m.as_str())
        );
    }
    // Exactly one executor or a deliberate dual write: never nobody.
    for m in CoexistenceMode::ALL {
        let p = m.policy();
        assert!(p.we_execute || p.legacy_executes, "{m}");
    }
}
