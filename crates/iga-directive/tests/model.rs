use iga_directive::*;

fn t(s: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// The expected legal table, written out independently of the implementation.
const LEGAL: &[(JobStateName, JobStateName)] = {
    use JobStateName::*;
    &[
        (Pending, Planned),
        (Pending, Staged),
        (Pending, Skipped),
        (Pending, Cancelled),
        (Planned, InFlight),
        (Planned, Staged),
        (Planned, Skipped),
        (Planned, Cancelled),
        (Staged, Planned),
        (Staged, Cancelled),
        (InFlight, Succeeded),
        (InFlight, AwaitingExternal),
        (InFlight, Retrying),
        (InFlight, Escalated),
        (InFlight, Planned),
        (AwaitingExternal, Succeeded),
        (AwaitingExternal, Retrying),
        (AwaitingExternal, Escalated),
        (AwaitingExternal, Cancelled),
        (Retrying, InFlight),
        (Retrying, Escalated),
        (Retrying, Cancelled),
        (Escalated, Planned),
    ]
};

fn sample_state(n: JobStateName) -> JobState {
    match n {
        JobStateName::Pending => JobState::Pending,
        JobStateName::Planned => JobState::Planned,
        JobStateName::Staged => JobState::Staged {
            reason: "threshold".into(),
        },
        JobStateName::InFlight => JobState::InFlight,
        JobStateName::AwaitingExternal => JobState::AwaitingExternal {
            external_ref: "INC001".into(),
        },
        JobStateName::Retrying => JobState::Retrying {
            attempt: 1,
            next_at: t("2026-01-01T00:01:00Z"),
        },
        JobStateName::Succeeded => JobState::Succeeded,
        JobStateName::Escalated => JobState::Escalated {
            reason: "x".into(),
            attempts: vec![],
        },
        JobStateName::Skipped => JobState::Skipped {
            reason: "refcount".into(),
        },
        JobStateName::Cancelled => JobState::Cancelled {
            reason: "rejected".into(),
        },
    }
}

fn directive() -> AccessDirective {
    AccessDirective::builder(
        "acme",
        "entra",
        Identity::person("alice").with_email("alice@acme.test"),
        Action::Grant,
    )
    .entitlement(EntitlementRef::group("Finance-Readers"))
    .approval(
        ApprovalRef::new("servicenow", "RITM0010001")
            .approver("carol")
            .decided_at(t("2026-03-01T10:00:00Z")),
    )
    .build()
    .unwrap()
}

#[test]
fn transition_table_is_exhaustive_over_every_pair() {
    let mut legal_seen = 0;
    for from in JobStateName::ALL {
        for to in JobStateName::ALL {
            let expected = LEGAL.contains(&(from, to));
            assert_eq!(from.can_transition_to(to), expected, "{from} -> {to}");
            let mut job = FulfillmentJob::new(&directive(), t("2026-01-01T00:00:00Z"));
            job.state = sample_state(from);
            let now = t("2026-01-02T00:00:00Z");
            let r = job.transition(sample_state(to), now);
            if expected {
                legal_seen += 1;
                r.unwrap();
                assert_eq!(job.state.name(), to);
                assert_eq!(job.updated_at, now);
            } else {
                let e = r.unwrap_err();
                assert_eq!((e.from, e.to), (from, to));
                assert!(e.to_string().contains("illegal transition"), "{e}");
                assert_eq!(
                    job.state.name(),
                    from,
                    "state unchanged after illegal transition"
                );
            }
        }
    }
    assert_eq!(legal_seen, LEGAL.len());
    assert_eq!(JobStateName::ALL.len() * JobStateName::ALL.len(), 100);
}

#[test]
fn terminal_states_have_no_way_out_except_operator_requeue() {
    for s in JobStateName::ALL {
        if s.is_terminal() {
            let outs: Vec<_> = JobStateName::ALL
                .into_iter()
                .filter(|to| s.can_transition_to(*to))
                .collect();
            if s == JobStateName::Escalated {
                assert_eq!(outs, vec![JobStateName::Planned]);
            } else {
                assert!(outs.is_empty(), "{s} has exits {outs:?}");
            }
        }
        assert_eq!(JobStateName::parse(s.as_str()), Some(s));
    }
}

#[test]
fn escalation_carries_the_full_attempt_history() {
    let mut job = FulfillmentJob::new(&directive(), t("2026-01-01T00:00:00Z"));
    job.transition(JobState::Planned, t("2026-01-01T00:00:01Z"))
        .unwrap();
    job.transition(JobState::InFlight, t("2026-01-01T00:00:02Z"))
        .unwrap();
    for i in 1..=3 {
        job.record_attempt(AttemptRecord::new(
            i,
            t("2026-01-01T00:00:03Z"),
            "unavailable",
            format!("connect refused #{i}"),
            Some("503".into()),
        ));
        if i < 3 {
            job.transition(
                JobState::Retrying {
                    attempt: i,
                    next_at: t("2026-01-01T00:05:00Z"),
                },
                t("2026-01-01T00:00:04Z"),
            )
            .unwrap();
            job.transition(JobState::InFlight, t("2026-01-01T00:05:00Z"))
                .unwrap();
        }
    }
    job.escalate("retries exhausted", t("2026-01-01T01:00:00Z"))
        .unwrap();
    match &job.state {
        JobState::Escalated { reason, attempts } => {
            assert_eq!(reason, "retries exhausted");
            assert_eq!(attempts.len(), 3);
            assert_eq!(attempts[2].message, "connect refused #3");
        }
        other => panic!("{other:?}"),
    }
    let json = serde_json::to_string(&job).unwrap();
    assert_eq!(serde_json::from_str::<FulfillmentJob>(&json).unwrap(), job);
}

#[test]
fn directive_round_trips_through_json() {
    let d = directive();
    let json = d.to_json();
    assert_eq!(AccessDirective::from_json(&json).unwrap(), d);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["schema_version"], SCHEMA_VERSION);
    assert_eq!(v["source"]["kind"], "request");
    assert_eq!(v["source"]["approval"], "servicenow:RITM0010001");
    assert_eq!(v["entitlement"]["kind"], "group");
    assert_eq!(v["action"], "grant");
}

#[test]
fn derived_ids_are_stable_and_distinguish_content() {
    let a = directive();
    let b = directive();
    assert_eq!(a.id, b.id, "same decision => same id");
    let c = AccessDirective::builder("acme", "entra", Identity::person("alice"), Action::Revoke)
        .entitlement(EntitlementRef::group("Finance-Readers"))
        .source(GrantSource::request("servicenow", "RITM0010001"))
        .approval(ApprovalRef::new("servicenow", "RITM0010001"))
        .build()
        .unwrap();
    assert_ne!(a.id, c.id);
}

#[test]
fn version_1_documents_are_upgraded() {
    let v1 = r#"{
        "schema_version": 1,
        "id": "d-legacy-1",
        "target": "ldap-corp",
        "identity": {"id": "bob", "department": "Finance"},
        "action": "grant",
        "entitlement": {"kind": "group", "id": "cn=finance,ou=groups,dc=example,dc=com"},
        "source": {"kind": "birthright", "rule": "finance-default"},
        "requested_at": "2025-06-01T08:00:00Z"
    }"#;
    let d = AccessDirective::from_json(v1).unwrap();
    assert_eq!(d.schema_version, SCHEMA_VERSION);
    assert_eq!(d.system, "ldap-corp");
    assert_eq!(d.tenant, "default");
    assert_eq!(d.identity.department.as_deref(), Some("Finance"));
    assert_eq!(d.source, GrantSource::birthright("finance-default"));
    // and re-encodes as the current version
    let again = AccessDirective::from_json(&d.to_json()).unwrap();
    assert_eq!(again, d);
}

#[test]
fn bad_documents_name_the_field() {
    let cases = [
        (r#"{"id": "x"}"#, "schema_version"),
        (
            r#"{"schema_version": 99, "id": "x"}"#,
            "newer than supported",
        ),
        (r#"{"schema_version": "two"}"#, "schema_version"),
        (r#"[1,2]"#, "JSON object"),
        (
            r#"{"schema_version": 2, "id": "x", "tenant": "t", "system": "s", "identity": {"id": "a"}, "action": "grant", "source": {"kind":"birthright","rule":"r"}, "requested_at": "2026-01-01T00:00:00Z"}"#,
            "entitlement",
        ),
        (
            r#"{"schema_version": 2, "id": "x", "tenant": "", "system": "s", "identity": {"id": "a"}, "action": "disable_account", "source": {"kind":"birthright","rule":"r"}, "requested_at": "2026-01-01T00:00:00Z"}"#,
            "tenant",
        ),
        (
            r#"{"schema_version": 2, "id": "x", "tenant": "t", "system": "s", "identity": {"id": "a"}, "action": "fly", "source": {"kind":"birthright","rule":"r"}, "requested_at": "2026-01-01T00:00:00Z"}"#,
            "unknown variant `fly`",
        ),
        (
            r#"{"schema_version": 2, "id": "x", "tenant": "t", "system": "s", "identity": {"id": "a"}, "action": "grant", "entitlement": {"kind":"group","id":"g"}, "source": {"kind":"request","approval":"jira:A-1"}, "requested_at": "2026-01-01T00:00:00Z"}"#,
            "approval",
        ),
        (
            r#"{"schema_version": 2, "id": "x", "tenant": "t", "system": "s", "identity": {"id": "a"}, "action": "disable_account", "entitlement": {"kind":"group","id":"g"}, "source": {"kind":"birthright","rule":"r"}, "requested_at": "2026-01-01T00:00:00Z"}"#,
            "entitlement: not allowed",
        ),
    ];
    for (doc, needle) in cases {
        let e = AccessDirective::from_json(doc).unwrap_err().to_string();
        assert!(e.contains(needle), "{doc}\n => {e}\n (expected `{needle}`)");
    }
}

#[test]
fn expansion_orders_account_before_grant() {
    let d = directive();
    let ops = d.operations(ExpandOptions::ensure_account());
    let kinds: Vec<_> = ops.iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        vec![OperationKind::CreateAccount, OperationKind::Grant]
    );
    assert_eq!(ops[0].entitlement, None);
    assert_eq!(ops[1].entitlement.as_ref().unwrap().id, "Finance-Readers");
    assert_eq!(ops[0].id.0, format!("{}.0", d.id));
    assert_eq!(ops[1].id.0, format!("{}.1", d.id));
    assert!(
        ops.iter()
            .all(|o| o.directive_id == d.id && o.system == "entra")
    );
    assert_eq!(
        ops[1].describe(),
        "grant group:Finance-Readers to alice on entra@acme"
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn action() -> impl Strategy<Value = Action> {
        prop::sample::select(Action::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn any_valid_directive_round_trips(
            tenant in "[a-z]{1,8}", system in "[a-z-]{1,10}", id in "[a-z0-9]{1,12}",
            action in action(), ent in "[A-Za-z0-9][A-Za-z0-9 =,]{0,19}", rule in "[a-z-]{1,10}",
            dept in proptest::option::of("[A-Za-z ]{0,12}"),
        ) {
            let mut ident = Identity::person(id);
            ident.department = dept;
            let mut b = AccessDirective::builder(tenant, system, ident, action)
                .source(GrantSource::birthright(rule));
            if action.needs_entitlement() { b = b.entitlement(EntitlementRef::group(ent)); }
            let d = b.build().unwrap();
            let back = AccessDirective::from_json(&d.to_json()).unwrap();
            prop_assert_eq!(back, d);
        }
    }
}

#[test]
fn version_2_documents_upgrade_to_3_and_not_before_round_trips() {
    let v2 = r#"{"schema_version": 2, "id": "d2", "tenant": "t", "system": "s",
        "identity": {"id": "a"}, "action": "disable_account",
        "source": {"kind":"birthright","rule":"r"}, "requested_at": "2026-01-01T00:00:00Z"}"#;
    let d = AccessDirective::from_json(v2).unwrap();
    assert_eq!((d.schema_version, d.not_before), (3, None));
    assert!(!d.to_json().contains("not_before"), "absent stays absent");

    let at: Timestamp = "2026-03-01T09:00:00Z".parse().unwrap();
    let who = Identity::person("ana");
    let plain = AccessDirective::builder("t", "s", who.clone(), Action::DisableAccount)
        .source(GrantSource::birthright("leaver"))
        .build()
        .unwrap();
    let dated = AccessDirective::builder("t", "s", who.clone(), Action::DisableAccount)
        .source(GrantSource::birthright("leaver"))
        .not_before(at)
        .build()
        .unwrap();
    let again = AccessDirective::from_json(&dated.to_json()).unwrap();
    assert_eq!(again.not_before, Some(at));
    assert_eq!(again, dated);
    // A scheduled directive is a different decision from an immediate one, and a
    // recurring decision with an occurrence key gets its own id; without either the
    // derived id is the one schema version 2 derived.
    assert_ne!(plain.id, dated.id);
    let recur = AccessDirective::builder("t", "s", who, Action::DisableAccount)
        .source(GrantSource::birthright("leaver"))
        .occurrence("hr-event-42")
        .build()
        .unwrap();
    assert_ne!(recur.id, plain.id);
    assert_eq!(
        plain.id,
        DirectiveId::derived(&["t", "s", "ana", "disable_account", "", "birthright:leaver"])
    );
}
