//! Joiner / mover / leaver / rehire: the exact directive set of each event.

use chrono::{Duration, TimeZone, Utc};
use iga_directive::{Action, GrantSource, Identity, IdentityStatus, Timestamp};
use iga_policy::{
    EventKind, HeldGrant, Lifecycle, LifecyclePolicy, RuleSet, Transition, UsernameRegistry,
};

const RULES: &str = r#"
systems:
  ldap:
    attributes:
      user_name: { value: "${given_name|initial}${family_name}", transforms: [ascii, alnum, lower], unique: true, max_len: 12 }
      display_name: "${display_name}"
  app:
    create_account: when_granted
rules:
  - name: staff
    when: 'true'
    grants: [{ system: ldap, entitlement: staff }]
  - name: finance
    when: 'department == "Finance"'
    grants: [{ system: ldap, entitlement: finance }, { system: app, entitlement: ledger, kind: app_role }]
  - name: sales
    when: 'department == "Sales" and location in ["NYC", "LON"]'
    grants: [{ system: ldap, entitlement: sales }]
"#;

fn lc() -> Lifecycle {
    Lifecycle::new(
        RuleSet::from_yaml(RULES).unwrap(),
        LifecyclePolicy::new("acme").grace_period(Duration::days(14)),
    )
}

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap()
}

fn ada(dept: &str) -> Identity {
    let mut i = Identity::person("e1")
        .with_name("Ada", "Lovelace")
        .with_department(dept);
    i.attributes.insert("location".into(), "NYC".into());
    i
}

/// `action system entitlement source [not_before]` lines, sorted.
fn lines(t: &Transition) -> Vec<String> {
    let mut v: Vec<String> = t
        .directives
        .iter()
        .map(|d| {
            let mut s = format!(
                "{} {} {} {}",
                d.action,
                d.system,
                d.entitlement.as_ref().map_or("-", |e| e.id.as_str()),
                d.source.key()
            );
            if let Some(nb) = d.not_before {
                s.push_str(&format!(" @{}", nb.format("%Y-%m-%d")));
            }
            s
        })
        .collect();
    v.sort();
    v
}

#[test]
fn joiner_mover_leaver_rehire_table() {
    let lc = lc();
    let mut reg = UsernameRegistry::new();
    let now = t0();

    let j = lc
        .transition(None, &ada("Finance"), &[], &mut reg, now)
        .unwrap();
    assert_eq!(j.kind, EventKind::Joiner);
    assert_eq!(
        lines(&j),
        [
            "create_account app - birthright:joiner",
            "create_account ldap - birthright:joiner",
            "grant app ledger birthright:finance",
            "grant ldap finance birthright:finance",
            "grant ldap staff birthright:staff",
        ]
    );
    let create = j
        .directives
        .iter()
        .find(|d| d.system == "ldap" && d.action == Action::CreateAccount)
        .unwrap();
    assert_eq!(create.identity.user_name.as_deref(), Some("alovelace"));
    assert_eq!(create.attributes["display_name"], "Ada Lovelace");
    assert!(!create.attributes.contains_key("user_name"));
    // Every ldap directive names the generated login.
    assert!(
        j.directives
            .iter()
            .filter(|d| d.system == "ldap")
            .all(|d| d.identity.user_name.as_deref() == Some("alovelace"))
    );

    // Same input again: nothing to do.
    let same = lc
        .transition(Some(&j.snapshot), &ada("Finance"), &[], &mut reg, now)
        .unwrap();
    assert_eq!(same.kind, EventKind::NoChange);
    assert!(same.directives.is_empty());

    // Mover Finance -> Sales (NYC): revoke the finance rule's grants (birthright source
    // only), grant sales; the app account stays.
    let m = lc
        .transition(Some(&j.snapshot), &ada("Sales"), &[], &mut reg, now)
        .unwrap();
    assert_eq!(m.kind, EventKind::Mover);
    assert_eq!(
        lines(&m),
        [
            "grant ldap sales birthright:sales",
            "revoke app ledger birthright:finance",
            "revoke ldap finance birthright:finance",
        ]
    );

    // Leaver now, holding a request-based and a delegated grant.
    let held = [
        HeldGrant {
            system: "ldap".into(),
            entitlement: iga_directive::EntitlementRef::group("vpn"),
            source: GrantSource::request("servicenow", "RITM1"),
        },
        HeldGrant {
            system: "ldap".into(),
            entitlement: iga_directive::EntitlementRef::group("board"),
            source: GrantSource::delegation("bob"),
        },
    ];
    let mut gone = ada("Sales");
    gone.status = IdentityStatus::Terminated;
    let later = now + Duration::days(10);
    let l = lc
        .transition(Some(&m.snapshot), &gone, &held, &mut reg, later)
        .unwrap();
    assert_eq!(l.kind, EventKind::Leaver);
    assert_eq!(
        lines(&l),
        [
            "delete_account app - birthright:leaver @2026-01-29",
            "delete_account ldap - birthright:leaver @2026-01-29",
            "disable_account app - birthright:leaver",
            "disable_account ldap - birthright:leaver",
            "revoke ldap board delegation:bob",
            "revoke ldap sales birthright:sales",
            "revoke ldap staff birthright:staff",
            "revoke ldap vpn request:servicenow:RITM1",
        ]
    );
    assert_eq!(l.snapshot.scheduled.len(), 2, "the deletes wait");

    // Policy: keep request/delegation access of leavers.
    let keep = Lifecycle::new(
        RuleSet::from_yaml(RULES).unwrap(),
        LifecyclePolicy::new("acme").revoke_non_birthright_on_leave(false, false),
    );
    let l2 = keep
        .transition(Some(&m.snapshot), &gone, &held, &mut reg, later)
        .unwrap();
    assert!(
        l2.directives
            .iter()
            .all(|d| d.source.kind() != iga_directive::GrantSourceKind::Request)
    );

    // Rehire within the grace period: enable (not create), birthrights again, and the
    // scheduled deletes are cancelled.
    let back = now + Duration::days(20);
    let r = lc
        .transition(Some(&l.snapshot), &ada("Sales"), &[], &mut reg, back)
        .unwrap();
    assert_eq!(r.kind, EventKind::Rehire);
    assert_eq!(
        lines(&r),
        [
            "enable_account app - birthright:rehire",
            "enable_account ldap - birthright:rehire",
            "grant ldap sales birthright:sales",
            "grant ldap staff birthright:staff",
        ]
    );
    let scheduled: Vec<_> = l.snapshot.scheduled.iter().map(|s| s.id.clone()).collect();
    assert_eq!(r.cancel, scheduled);
    // The re-grant is a new directive, not a re-detection of the joiner's.
    let first_staff = j
        .directives
        .iter()
        .find(|d| d.entitlement.as_ref().is_some_and(|e| e.id == "staff"))
        .unwrap();
    let again_staff = r
        .directives
        .iter()
        .find(|d| d.entitlement.as_ref().is_some_and(|e| e.id == "staff"))
        .unwrap();
    assert_ne!(first_staff.id, again_staff.id);

    // Rehire after the grace period: the accounts are gone, so it is a joiner again,
    // keeping the login it had.
    let much_later = now + Duration::days(40);
    let j2 = lc
        .transition(Some(&l.snapshot), &ada("Sales"), &[], &mut reg, much_later)
        .unwrap();
    assert_eq!(j2.kind, EventKind::Joiner);
    assert!(lines(&j2).contains(&"create_account ldap - birthright:joiner".to_string()));
    assert!(j2.cancel.is_empty());
}

#[test]
fn future_dated_hire_and_termination_are_scheduled() {
    let lc = lc();
    let mut reg = UsernameRegistry::new();
    let now = t0();
    let mut hire = ada("Finance");
    hire.attributes
        .insert("hire_date".into(), "2026-02-01".into());
    let j = lc.transition(None, &hire, &[], &mut reg, now).unwrap();
    assert!(
        j.directives
            .iter()
            .all(|d| d.not_before == Some(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap()))
    );
    // A hire date in the past is applied at once.
    let mut past = ada("Finance");
    past.id = "e2".into();
    past.attributes
        .insert("hire_date".into(), "2025-02-01".into());
    let j2 = lc.transition(None, &past, &[], &mut reg, now).unwrap();
    assert!(j2.directives.iter().all(|d| d.not_before.is_none()));

    // Termination dated 2026-03-31: everything waits for it, deletion 14 days later.
    let mut leaving = past.clone();
    leaving
        .attributes
        .insert("termination_date".into(), "2026-03-31".into());
    let l = lc
        .transition(Some(&j2.snapshot), &leaving, &[], &mut reg, now)
        .unwrap();
    assert_eq!(l.kind, EventKind::Leaver);
    let day = |d| Utc.with_ymd_and_hms(2026, 3, d, 0, 0, 0).unwrap();
    for d in &l.directives {
        let want = if d.action == Action::DeleteAccount {
            Utc.with_ymd_and_hms(2026, 4, 14, 0, 0, 0).unwrap()
        } else {
            day(31)
        };
        assert_eq!(d.not_before, Some(want), "{}", d.action);
    }
    assert_eq!(l.snapshot.scheduled.len(), l.directives.len());

    // Withdrawn before its date: every scheduled directive is cancelled.
    let r = lc
        .transition(
            Some(&l.snapshot),
            &past,
            &[],
            &mut reg,
            now + Duration::days(1),
        )
        .unwrap();
    assert_eq!(r.kind, EventKind::Rescinded);
    assert!(r.directives.is_empty());
    assert_eq!(r.cancel.len(), l.directives.len());
    assert!(r.snapshot.terminated_at.is_none());

    // Bad dates name the field.
    let mut bad = ada("Finance");
    bad.attributes
        .insert("hire_date".into(), "31/12/2026".into());
    let e = lc
        .transition(None, &bad, &[], &mut reg, now)
        .unwrap_err()
        .to_string();
    assert!(e.contains("hire_date") && e.contains("31/12/2026"), "{e}");
}

#[test]
fn removal_is_a_leaver_now() {
    let lc = lc();
    let mut reg = UsernameRegistry::new();
    let now = t0();
    let j = lc
        .transition(None, &ada("Finance"), &[], &mut reg, now)
        .unwrap();
    let l = lc.removed(&j.snapshot, &[], &mut reg, now).unwrap();
    assert_eq!(l.kind, EventKind::Leaver);
    assert_eq!(
        l.directives
            .iter()
            .filter(|d| d.action == Action::Revoke)
            .count(),
        3
    );
    assert!(
        l.directives
            .iter()
            .filter(|d| d.action == Action::DisableAccount)
            .all(|d| d.not_before.is_none())
    );
}
