//! Behaviour against a real OpenLDAP slapd: the server's own view (memberOf),
//! injection attempts, reconnect after a server restart, pipelined batches, paging,
//! membership models, nested groups, placeholder handling, bad credentials.

use std::collections::{BTreeMap, HashSet};

use iga_adapter::{
    AccountRef, AssignmentScope, ErrorKind, NoOpReason, ObjectRef, Observed, Outcome, PageRequest,
    ProvisioningAdapter, ProvisioningAdapterExt,
};
use iga_connector_ldap::testing::{ADMIN_DN, BASE_DN, Slapd};
use iga_connector_ldap::{GroupModel, LdapAdapter, LdapConfig};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};
use ldap3::{LdapConnAsync, Scope, SearchEntry};

fn person(login: &str) -> Identity {
    Identity::person(format!("id-{login}"))
        .with_user_name(login)
        .with_name("Test", login)
        .with_email(format!(
            "{}@example.com",
            login.replace(|c: char| !c.is_ascii_alphanumeric(), "")
        ))
}

fn op(kind: OperationKind, who: &Identity) -> Operation {
    Operation::new("t", "slapd", kind, who.clone())
}

fn grant(who: &Identity, g: &str) -> Operation {
    op(OperationKind::Grant, who).with_entitlement(EntitlementRef::group(g))
}

fn revoke(who: &Identity, g: &str) -> Operation {
    op(OperationKind::Revoke, who).with_entitlement(EntitlementRef::group(g))
}

/// memberOf as the server itself reports it (raw search, independent of the adapter).
async fn server_member_of(slapd: &Slapd, dn: &str) -> Vec<String> {
    let (conn, mut ldap) = LdapConnAsync::new(&slapd.url()).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(ADMIN_DN, slapd.password())
        .await
        .unwrap()
        .success()
        .unwrap();
    let (rs, _) = ldap
        .search(dn, Scope::Base, "(objectClass=*)", vec!["memberOf"])
        .await
        .unwrap()
        .success()
        .unwrap();
    let mut out: Vec<String> = rs
        .into_iter()
        .flat_map(|e| {
            SearchEntry::construct(e)
                .attrs
                .remove("memberOf")
                .unwrap_or_default()
        })
        .collect();
    out.sort();
    out
}

async fn adapter(slapd: &Slapd) -> LdapAdapter {
    LdapAdapter::new(slapd.config()).unwrap()
}

#[tokio::test]
async fn member_of_appears_and_disappears_in_the_servers_own_view() {
    let slapd = Slapd::start();
    let a = adapter(&slapd).await;
    a.create_group("eng", None).await.unwrap();
    a.create_group("ops", None).await.unwrap();
    let alice = person("alice");
    let created = a.create_user(&alice, BTreeMap::new()).await.unwrap();
    let dn = created.native_id().unwrap().to_string();
    assert_eq!(dn, "uid=alice,ou=people,dc=example,dc=com");
    assert!(server_member_of(&slapd, &dn).await.is_empty());

    assert!(a.apply(&grant(&alice, "eng")).await.unwrap().changed());
    assert!(a.apply(&grant(&alice, "ops")).await.unwrap().changed());
    assert_eq!(
        server_member_of(&slapd, &dn).await,
        vec![
            "cn=eng,ou=groups,dc=example,dc=com".to_string(),
            "cn=ops,ou=groups,dc=example,dc=com".to_string()
        ]
    );
    // The adapter's read shows the same back-link.
    let Some(Observed::Account(acc)) = a
        .read(&ObjectRef::Account(AccountRef::of(&alice)))
        .await
        .unwrap()
    else {
        panic!("account not readable")
    };
    assert_eq!(acc.attributes["member_of"].as_array().unwrap().len(), 2);
    assert_eq!(acc.identity_id.as_deref(), Some("id-alice"));

    assert!(a.apply(&revoke(&alice, "eng")).await.unwrap().changed());
    assert_eq!(
        server_member_of(&slapd, &dn).await,
        vec!["cn=ops,ou=groups,dc=example,dc=com".to_string()]
    );
    // Revoking the last real member keeps the placeholder; memberOf is gone.
    assert!(a.apply(&revoke(&alice, "ops")).await.unwrap().changed());
    assert!(server_member_of(&slapd, &dn).await.is_empty());
    let holders = a
        .list_all_assignments(&AssignmentScope::Entitlement(EntitlementRef::group("ops")))
        .await
        .unwrap();
    assert!(
        holders.is_empty(),
        "placeholder must not be reported: {holders:?}"
    );
    // refint: deleting the user removes it from groups.
    a.apply(&grant(&alice, "eng")).await.unwrap();
    a.apply(&op(OperationKind::DeleteAccount, &alice))
        .await
        .unwrap();
    let holders = a
        .members_of(&EntitlementRef::group("eng"))
        .await
        .unwrap()
        .unwrap();
    assert!(holders.is_empty(), "{holders:?}");
}

#[tokio::test]
async fn revoke_of_the_last_member_without_placeholder_adds_it_atomically() {
    let slapd = Slapd::start();
    let a = adapter(&slapd).await;
    let bob = person("bob");
    let dn = a.create_user(&bob, BTreeMap::new()).await.unwrap();
    let dn = dn.native_id().unwrap().to_string();
    // A group created elsewhere with bob as its only member (no placeholder).
    let (conn, mut ldap) = LdapConnAsync::new(&slapd.url()).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(ADMIN_DN, slapd.password()).await.unwrap();
    let gdn = format!("cn=solo,ou=groups,{BASE_DN}");
    ldap.add(
        &gdn,
        vec![
            ("objectClass", HashSet::from(["groupOfNames"])),
            ("cn", HashSet::from(["solo"])),
            ("member", HashSet::from([dn.as_str()])),
        ],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    let r = a.apply(&revoke(&bob, "solo")).await.unwrap();
    assert!(r.changed(), "{r:?}");
    assert!(server_member_of(&slapd, &dn).await.is_empty());
    let again = a.apply(&revoke(&bob, "solo")).await.unwrap();
    assert_eq!(
        again,
        Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyAbsent,
            native_id: Some(dn)
        }
    );
}

#[tokio::test]
async fn injection_attempts_are_inert_against_the_real_server() {
    let slapd = Slapd::start();
    let a = adapter(&slapd).await;
    let victim = person("victim");
    a.create_user(&victim, BTreeMap::new()).await.unwrap();
    let weird_group = "Finance, EU (R&D)+#1 \\ *";
    a.create_group(weird_group, None).await.unwrap();
    a.create_group("admins", None).await.unwrap();
    for login in [
        "*",
        "x)(uid=*",
        "evil,ou=groups",
        "a+cn=admin",
        "#lead",
        " sp ",
        "back\\slash",
    ] {
        let who = person(login);
        let created = a.create_user(&who, BTreeMap::new()).await.unwrap();
        assert!(created.changed(), "{login}: {created:?}");
        let dn = created.native_id().unwrap().to_string();
        assert!(dn.ends_with(",ou=people,dc=example,dc=com"), "{dn}");
        // Reading the hostile account finds exactly that account, never the victim.
        let Some(Observed::Account(acc)) = a
            .read(&ObjectRef::Account(AccountRef::of(&who)))
            .await
            .unwrap()
        else {
            panic!("{login}: not readable")
        };
        assert_eq!(acc.login.as_deref(), Some(login), "{login}");
        assert_eq!(acc.identity_id.as_deref(), Some(who.id.as_str()));
        // A hostile account holds nothing and its grant lands on the right group only.
        assert!(
            a.list_all_assignments(&AssignmentScope::Account(AccountRef::of(&who)))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(a.apply(&grant(&who, weird_group)).await.unwrap().changed());
        assert_eq!(
            server_member_of(&slapd, &dn).await,
            vec![format!(
                "cn=Finance\\2C EU (R&D)\\2B#1 \\5C *,ou=groups,{BASE_DN}"
            )],
            "{login}"
        );
    }
    // A login that looks like a wildcard does not list the victim as its account.
    let star = person("*");
    let groups = a
        .list_all_assignments(&AssignmentScope::Account(AccountRef::of(&star)))
        .await
        .unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].entitlement.id, weird_group);
    assert!(
        server_member_of(&slapd, &format!("uid=victim,ou=people,{BASE_DN}"))
            .await
            .is_empty()
    );
    // The weird group lists with the same id it was created with.
    let ents = a.list_all_entitlements().await.unwrap();
    assert!(
        ents.iter().any(|e| e.entitlement.id == weird_group),
        "{ents:?}"
    );
    let holders = a
        .list_all_assignments(&AssignmentScope::Entitlement(EntitlementRef::group(
            weird_group,
        )))
        .await
        .unwrap();
    assert_eq!(holders.len(), 7);
    // A group id that tries to point outside group_base is treated as a name.
    let r = a
        .apply(&grant(&victim, "cn=admins,ou=groups,dc=evil"))
        .await
        .unwrap_err();
    assert_eq!(r.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn reconnects_after_the_server_restarts_and_reports_outage_as_temporary() {
    let mut slapd = Slapd::start();
    let a = adapter(&slapd).await;
    a.create_group("g", None).await.unwrap();
    let carol = person("carol");
    a.create_user(&carol, BTreeMap::new()).await.unwrap();
    let opened = a.connections_opened();
    assert!(opened >= 1);

    slapd.stop();
    let e = a.apply(&grant(&carol, "g")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable(), "{e}");
    let e = a.check().await.unwrap_err();
    assert!(e.is_retryable(), "{e}");

    slapd.restart();
    // The pooled connections are dead; the next calls reconnect and rebind.
    assert!(a.apply(&grant(&carol, "g")).await.unwrap().changed());
    a.check().await.unwrap();
    assert!(a.connections_opened() > opened);
    // A restart between two calls (connection dropped under an idle pool) is invisible.
    slapd.restart();
    assert_eq!(
        a.apply(&grant(&carol, "g")).await.unwrap(),
        Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyGranted,
            native_id: Some(format!("uid=carol,ou=people,{BASE_DN}"))
        }
    );
}

#[tokio::test]
async fn bad_credentials_are_unauthenticated_and_never_echo_the_password() {
    let slapd = Slapd::start();
    let cfg = LdapConfig::openldap(slapd.url(), ADMIN_DN, "wrong-pw-canary-77", BASE_DN);
    let a = LdapAdapter::new(cfg).unwrap();
    let e = a.check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.is_retryable());
    let shown = format!("{e} {e:?} {a:?} {a}");
    assert!(!shown.contains("wrong-pw-canary-77"), "{shown}");
}

#[tokio::test]
async fn pipelined_batch_keeps_per_account_order_and_input_order() {
    let slapd = Slapd::start();
    let a = LdapAdapter::new(slapd.config().with_pipeline_depth(16).with_pool_size(2)).unwrap();
    for g in 0..10 {
        a.create_group(&format!("pg{g}"), None).await.unwrap();
    }
    let mut ops = Vec::new();
    for u in 0..40 {
        let who = person(&format!("pipe{u}"));
        ops.push(op(OperationKind::CreateAccount, &who));
        ops.push(grant(&who, &format!("pg{}", u % 10)));
        ops.push(grant(&who, &format!("pg{}", (u + 1) % 10)));
        ops.push(op(OperationKind::DisableAccount, &who));
    }
    ops.push(grant(&person("pipe0"), "missing-group"));
    let results = a.apply_batch(&ops).await;
    assert_eq!(results.len(), ops.len());
    for (i, r) in results.iter().enumerate().take(160) {
        assert!(
            matches!(r, Ok(o) if o.changed()),
            "{i} {}: {r:?}",
            ops[i].describe()
        );
    }
    assert_eq!(
        results[160].as_ref().unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(
        a.connections_opened() <= 2,
        "one bind per pooled connection"
    );
    // Replay: everything is already in state.
    let again = a.apply_batch(&ops[..160]).await;
    assert!(
        again.iter().all(|r| matches!(r, Ok(o) if !o.changed())),
        "{again:?}"
    );
    let dn = format!("uid=pipe3,ou=people,{BASE_DN}");
    assert_eq!(server_member_of(&slapd, &dn).await.len(), 2);
}

#[tokio::test]
async fn list_calls_use_paged_search_across_many_pages() {
    let slapd = Slapd::start();
    let mut cfg = slapd.config();
    cfg.page_size = 7; // forces several simple-paged-results round trips
    let a = LdapAdapter::new(cfg).unwrap();
    a.create_group("many", None).await.unwrap();
    let mut ops = Vec::new();
    for u in 0..30 {
        let who = person(&format!("pg{u:02}"));
        ops.push(op(OperationKind::CreateAccount, &who));
        ops.push(grant(&who, "many"));
    }
    assert!(a.apply_batch(&ops).await.iter().all(|r| r.is_ok()));
    let all = a.list_all_accounts().await.unwrap();
    assert_eq!(all.len(), 30);
    let mut page = PageRequest::first(4);
    let mut n = 0;
    loop {
        let p = a.list_accounts(page.clone()).await.unwrap();
        assert!(p.items.len() <= 4);
        n += p.items.len();
        match p.next {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(n, 30);
    let all = a.list_all_assignments(&AssignmentScope::All).await.unwrap();
    assert_eq!(all.len(), 30);
}

#[tokio::test]
async fn group_of_unique_names_posix_groups_and_nested_groups() {
    let slapd = Slapd::start();
    let base = adapter(&slapd).await;
    let dave = person("dave");
    base.create_user(&dave, BTreeMap::new()).await.unwrap();
    for model in [GroupModel::GroupOfUniqueNames, GroupModel::PosixGroup] {
        let a = LdapAdapter::new(slapd.config().with_group_model(model.clone())).unwrap();
        let g = format!("{}-grp", model.object_class());
        a.create_group(&g, None).await.unwrap();
        assert!(
            a.apply(&grant(&dave, &g)).await.unwrap().changed(),
            "{model:?}"
        );
        assert!(
            !a.apply(&grant(&dave, &g)).await.unwrap().changed(),
            "{model:?}"
        );
        let held = a
            .list_all_assignments(&AssignmentScope::Account(AccountRef::of(&dave)))
            .await
            .unwrap();
        assert_eq!(held.len(), 1, "{model:?} {held:?}");
        assert_eq!(held[0].entitlement.id, g);
        let holders = a
            .list_all_assignments(&AssignmentScope::Entitlement(EntitlementRef::group(&g)))
            .await
            .unwrap();
        assert_eq!(holders.len(), 1, "{model:?} {holders:?}");
        assert_eq!(
            holders[0].account_native_id,
            format!("uid=dave,ou=people,{BASE_DN}")
        );
        assert!(a.apply(&revoke(&dave, &g)).await.unwrap().changed());
        assert!(!a.apply(&revoke(&dave, &g)).await.unwrap().changed());
    }
    // Nested: dave ∈ inner ∈ outer.
    base.create_group("inner", None).await.unwrap();
    base.create_group("outer", None).await.unwrap();
    base.apply(&grant(&dave, "inner")).await.unwrap();
    let (conn, mut ldap) = LdapConnAsync::new(&slapd.url()).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(ADMIN_DN, slapd.password()).await.unwrap();
    ldap.modify(
        &format!("cn=outer,ou=groups,{BASE_DN}"),
        vec![ldap3::Mod::Add(
            "member",
            HashSet::from([format!("cn=inner,ou=groups,{BASE_DN}").as_str()]),
        )],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    let direct = base.groups_of(&AccountRef::of(&dave), false).await.unwrap();
    assert_eq!(direct, vec![EntitlementRef::group("inner")]);
    let mut nested = base.groups_of(&AccountRef::of(&dave), true).await.unwrap();
    nested.sort();
    assert_eq!(
        nested,
        vec![
            EntitlementRef::group("inner"),
            EntitlementRef::group("outer")
        ]
    );
}

#[tokio::test]
async fn update_disable_enable_and_password_round_trip() {
    let slapd = Slapd::start();
    let a = adapter(&slapd).await;
    let erin = person("erin");
    a.create_user(&erin, BTreeMap::new()).await.unwrap();
    let mut attrs = BTreeMap::new();
    attrs.insert("title".to_string(), serde_json::json!("Engineer"));
    attrs.insert(
        "telephoneNumber".to_string(),
        serde_json::json!(["+1 555", "+1 556"]),
    );
    assert!(a.update_user(&erin, attrs.clone()).await.unwrap().changed());
    assert!(!a.update_user(&erin, attrs).await.unwrap().changed());
    let mut bad = BTreeMap::new();
    bad.insert("noSuchAttr".to_string(), serde_json::json!("x"));
    let e = a.update_user(&erin, bad).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SchemaViolation, "{e}");
    assert!(a.deactivate_user(&erin).await.unwrap().changed());
    assert!(!a.deactivate_user(&erin).await.unwrap().changed());
    assert!(a.reactivate_user(&erin).await.unwrap().changed());
    assert_eq!(
        a.reactivate_user(&erin).await.unwrap(),
        Outcome::AlreadyInState {
            reason: NoOpReason::AlreadyEnabled,
            native_id: Some(format!("uid=erin,ou=people,{BASE_DN}"))
        }
    );
    let missing = person("nobody");
    assert_eq!(
        a.deactivate_user(&missing).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // Password set, then the user can bind with it.
    a.set_password(
        &AccountRef::of(&erin),
        &iga_adapter::Secret::new("n3w-Passw0rd"),
    )
    .await
    .unwrap();
    let (conn, mut ldap) = LdapConnAsync::new(&slapd.url()).await.unwrap();
    ldap3::drive!(conn);
    let r = ldap
        .simple_bind(&format!("uid=erin,ou=people,{BASE_DN}"), "n3w-Passw0rd")
        .await
        .unwrap();
    assert_eq!(r.rc, 0);
    // Create of an existing login owned by another identity is a conflict, not a link.
    let impostor = Identity::person("someone-else").with_user_name("erin");
    let e = a.create_user(&impostor, BTreeMap::new()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
}

#[tokio::test]
async fn tls_misconfiguration_fails_cleanly_and_verification_is_default() {
    let slapd = Slapd::start();
    // ldaps:// against a plain-LDAP port: the TLS handshake fails; a classified error,
    // no panic, no secret.
    let mut cfg = slapd.config();
    cfg.url = format!("ldaps://127.0.0.1:{}/", slapd.port());
    cfg.timeout = std::time::Duration::from_secs(5);
    assert!(
        !cfg.tls.danger_skip_verify,
        "verification must be on by default"
    );
    let a = LdapAdapter::new(cfg).unwrap();
    let e = a.check().await.unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Unavailable | ErrorKind::ConfigInvalid | ErrorKind::Timeout
        ),
        "{e}"
    );
    assert!(!format!("{e} {e:?}").contains(slapd.password()));
    // StartTLS against a server without TLS configured is refused before any bind.
    let cfg = slapd.config().with_tls(iga_connector_ldap::TlsConfig {
        starttls: true,
        ..Default::default()
    });
    let a = LdapAdapter::new(cfg).unwrap();
    let e = a.check().await.unwrap_err();
    assert_ne!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(
        a.connections_opened(),
        0,
        "no bind without TLS when StartTLS is asked"
    );
}
