//! Coverage of the command table: every row is sent to the Graph mock and the
//! request is checked field by field (method, decoded path, query, body). Prints
//! `entra_commands total=<N> verified=<N>` from the same table the README carries.

use std::collections::BTreeSet;

use iga_adapter::{
    AccountRef, AssignmentScope, ObjectRef, Outcome, PageRequest, ProvisioningAdapter,
};
use iga_connector_entra::commands::{Command, commands};
use iga_connector_entra::mock::{CLIENT_ID, DOMAIN, GraphMock, Recorded, TENANT};
use iga_connector_entra::{
    DeltaKind, EntraAdapter, EntraConfig, PimExpiration, PimRequest, PimScope, PimSurface,
};
use iga_directive::{EntitlementKind, EntitlementRef, Identity, Operation, OperationKind};
use serde_json::{Value, json};

const SECRET: &str = "coverage-secret";
const ANY: &str = "<any>";
const ROOT: &str = "https://graph.microsoft.com/v1.0";

/// Field-by-field comparison; `"<any>"` matches any present value. Extra fields in
/// `actual` are reported too.
fn same(actual: &Value, expected: &Value, at: &str) -> Result<(), String> {
    match (actual, expected) {
        (_, Value::String(s)) if s == ANY => Ok(()),
        (Value::Object(a), Value::Object(e)) => {
            for (k, ev) in e {
                let av = a.get(k).ok_or_else(|| format!("{at}.{k}: missing"))?;
                same(av, ev, &format!("{at}.{k}"))?;
            }
            for k in a.keys() {
                if !e.contains_key(k) {
                    return Err(format!("{at}.{k}: unexpected field"));
                }
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(e)) => {
            if a.len() != e.len() {
                return Err(format!("{at}: {} items, expected {}", a.len(), e.len()));
            }
            for (i, (x, y)) in a.iter().zip(e).enumerate() {
                same(x, y, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        (a, e) if a == e => Ok(()),
        (a, e) => Err(format!("{at}: {a} != {e}")),
    }
}

/// Whether a decoded path matches a template's path part (`{x}` = one segment, or
/// the `(appId='{x}')` key form).
fn path_matches(template: &str, path: &str) -> bool {
    let tp = template.split('?').next().unwrap_or_default();
    let ts: Vec<&str> = tp.trim_matches('/').split('/').collect();
    let ps: Vec<&str> = path.trim_matches('/').split('/').collect();
    ts.len() == ps.len()
        && ts.iter().zip(&ps).all(|(t, p)| {
            if let Some(i) = t.find('{') {
                p.starts_with(&t[..i]) && p.ends_with(&t[t.find('}').unwrap() + 1..])
            } else {
                t == p
            }
        })
}

fn query_keys(template: &str) -> BTreeSet<String> {
    template
        .split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .map(|p| p.split('=').next().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

struct Cov {
    mock: GraphMock,
    seen: usize,
    verified: BTreeSet<String>,
}

impl Cov {
    fn cmd(name: &str) -> &'static Command {
        commands()
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no command {name}"))
    }

    /// Among the requests since the last check, one matching `name`'s method and
    /// template with exactly `path`, the `query` pairs and the `body`.
    fn check(&mut self, name: &str, path: &str, query: &[(&str, &str)], body: Option<Value>) {
        let c = Self::cmd(name);
        let token = c.template.starts_with('<');
        assert!(
            token || path_matches(&c.template, path),
            "{name}: {path} does not fit template {}",
            c.template
        );
        let all = self.mock.requests();
        let recent: Vec<&Recorded> = all[self.seen..].iter().collect();
        let mut why = Vec::new();
        let found = recent.iter().position(|r| {
            if r.method != c.method || r.path != path {
                return false;
            }
            let keys: BTreeSet<String> = r.query.iter().map(|(k, _)| k.clone()).collect();
            if !token && keys != query_keys(&c.template) && !keys.contains("$skiptoken") {
                why.push(format!("query keys {keys:?} vs template {}", c.template));
                return false;
            }
            for (k, v) in query {
                if !r.query.iter().any(|(a, b)| a == k && b == v) {
                    why.push(format!("query {k}={v} missing in {:?}", r.query));
                    return false;
                }
            }
            match (&r.body, &body) {
                (None, None) => true,
                (Some(a), Some(e)) => match same(a, e, "body") {
                    Ok(()) => true,
                    Err(w) => {
                        why.push(w);
                        false
                    }
                },
                (a, e) => {
                    why.push(format!("body {a:?} vs expected {e:?}"));
                    false
                }
            }
        });
        assert!(
            found.is_some(),
            "{name}: no matching {} {path}; mismatches: {why:?}; recent: {:#?}",
            c.method,
            recent
                .iter()
                .map(|r| format!("{} {} {:?}", r.method, r.path, r.query))
                .collect::<Vec<_>>()
        );
        self.seen += found.unwrap() + 1;
        self.verified.insert(name.to_string());
    }
}

fn op(kind: OperationKind, who: &Identity) -> Operation {
    Operation::new("acme", "entra", kind, who.clone())
}

fn ent(kind: EntitlementKind, id: &str) -> EntitlementRef {
    EntitlementRef::new(kind, id)
}

#[tokio::test]
async fn every_command_is_sent_as_the_table_says() {
    let mock = GraphMock::start().await;
    mock.set_client_secret(SECRET);
    let config = EntraConfig::with_client_secret(TENANT, CLIENT_ID, SECRET)
        .endpoints(mock.graph_base(), mock.authority())
        .upn_domain(DOMAIN)
        .page_size(50);
    let a = EntraAdapter::new(config.clone()).unwrap();
    let mut cov = Cov {
        mock,
        seen: 0,
        verified: BTreeSet::new(),
    };
    let tok = format!("/{TENANT}/oauth2/v2.0/token");

    // -- auth and check
    a.check().await.unwrap();
    cov.check(
        "token.client_secret",
        &tok,
        &[],
        Some(
            json!({"grant_type": "client_credentials", "client_id": CLIENT_ID,
            "client_secret": SECRET, "scope": "https://graph.microsoft.com/.default"}),
        ),
    );
    cov.check(
        "organization.get",
        "/organization",
        &[("$select", "id")],
        None,
    );

    let pem = include_str!("fixtures/test-only-rsa-key.pem");
    let thumb = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
    let kp = ring::signature::RsaKeyPair::from_pkcs8(&base64_decode_pem(pem)).unwrap();
    cov.mock
        .register_certificate(ring::signature::KeyPair::public_key(&kp).as_ref(), thumb);
    let cert = EntraAdapter::new(
        EntraConfig::with_certificate(TENANT, CLIENT_ID, pem, thumb)
            .endpoints(cov.mock.graph_base(), cov.mock.authority()),
    )
    .unwrap();
    cert.check().await.unwrap();
    cov.check(
        "token.client_assertion",
        &tok,
        &[],
        Some(
            json!({"grant_type": "client_credentials", "client_id": CLIENT_ID,
            "scope": "https://graph.microsoft.com/.default",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": ANY}),
        ),
    );
    cov.seen = cov.mock.requests().len();

    // -- users
    let ada = Identity::person("ada")
        .with_user_name("ada")
        .with_name("Ada", "Lovelace")
        .with_email("ada@mail.example")
        .with_department("R&D");
    let upn = format!("ada@{DOMAIN}");
    let created = a
        .apply(&op(OperationKind::CreateAccount, &ada))
        .await
        .unwrap();
    let uid = created.native_id().unwrap().to_string();
    cov.check(
        "user.create",
        "/users",
        &[],
        Some(json!({"accountEnabled": true, "displayName": "Ada Lovelace", "mailNickname": "ada",
            "userPrincipalName": upn, "employeeId": "ada", "givenName": "Ada", "surname": "Lovelace",
            "mail": "ada@mail.example", "department": "R&D",
            "passwordProfile": {"password": ANY, "forceChangePasswordNextSignIn": true}})),
    );
    let read = a
        .read(&ObjectRef::Account(AccountRef::of(&ada)))
        .await
        .unwrap();
    assert!(read.is_some());
    cov.check(
        "user.get",
        &format!("/users/{upn}"),
        &[("$select", "id,userPrincipalName,displayName,mail,accountEnabled,employeeId,givenName,surname,department")],
        None,
    );
    let found = a
        .list_collection("user.find_by_employee_id", &[("employeeId", "ada")])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    cov.check(
        "user.find_by_employee_id",
        "/users",
        &[("$filter", "employeeId eq 'ada'")],
        None,
    );
    let page = a.list_accounts(PageRequest::first(10)).await.unwrap();
    assert_eq!(page.items.len(), 1);
    cov.check("user.list", "/users", &[("$top", "10")], None);

    let boss = Identity::person("boss").with_user_name("boss");
    let boss_id = a
        .apply(&op(OperationKind::CreateAccount, &boss))
        .await
        .unwrap()
        .native_id()
        .unwrap()
        .to_string();
    cov.seen = cov.mock.requests().len();
    let upd = op(OperationKind::UpdateAccount, &ada)
        .with_native_id(&uid)
        .with_attribute("display_name", "Ada L")
        .with_attribute("manager", boss_id.as_str());
    assert!(a.apply(&upd).await.unwrap().changed());
    cov.check(
        "user.update",
        &format!("/users/{uid}"),
        &[],
        Some(json!({"displayName": "Ada L"})),
    );
    cov.check(
        "user.get_manager",
        &format!("/users/{uid}/manager"),
        &[("$select", "id")],
        None,
    );
    cov.check(
        "user.set_manager",
        &format!("/users/{uid}/manager/$ref"),
        &[],
        Some(json!({"@odata.id": format!("{ROOT}/users/{boss_id}")})),
    );
    assert!(a.remove_manager(&uid).await.unwrap());
    cov.check(
        "user.remove_manager",
        &format!("/users/{uid}/manager/$ref"),
        &[],
        None,
    );

    assert!(
        a.apply(&op(OperationKind::DisableAccount, &ada))
            .await
            .unwrap()
            .changed()
    );
    cov.check(
        "user.disable",
        &format!("/users/{uid}"),
        &[],
        Some(json!({"accountEnabled": false})),
    );
    assert!(
        a.apply(&op(OperationKind::EnableAccount, &ada))
            .await
            .unwrap()
            .changed()
    );
    cov.check(
        "user.enable",
        &format!("/users/{uid}"),
        &[],
        Some(json!({"accountEnabled": true})),
    );
    a.revoke_sessions(&uid).await.unwrap();
    cov.check(
        "user.revoke_sessions",
        &format!("/users/{uid}/revokeSignInSessions"),
        &[],
        None,
    );

    // -- groups
    let g1 = cov.mock.seed_group("Finance Readers");
    let grant_by_name =
        op(OperationKind::Grant, &ada).with_entitlement(EntitlementRef::group("Finance Readers"));
    assert!(a.apply(&grant_by_name).await.unwrap().changed());
    cov.check(
        "group.find_by_name",
        "/groups",
        &[
            ("$filter", "displayName eq 'Finance Readers'"),
            ("$select", "id,displayName"),
        ],
        None,
    );
    cov.check(
        "group.add_member",
        &format!("/groups/{g1}/members/$ref"),
        &[],
        Some(json!({"@odata.id": format!("{ROOT}/directoryObjects/{uid}")})),
    );
    let assignments = a
        .list_assignments(
            &AssignmentScope::Account(AccountRef::of(&ada)),
            PageRequest::first(5),
        )
        .await
        .unwrap();
    assert_eq!(assignments.items.len(), 1);
    cov.check(
        "user.member_of",
        &format!("/users/{uid}/memberOf/microsoft.graph.group"),
        &[("$top", "5"), ("$select", "id,displayName")],
        None,
    );
    a.list_collection("user.transitive_member_of", &[("id", &uid)])
        .await
        .unwrap();
    cov.check(
        "user.transitive_member_of",
        &format!("/users/{uid}/transitiveMemberOf/microsoft.graph.group"),
        &[("$top", "50")],
        None,
    );
    let r = a
        .execute(
            "user.check_member_groups",
            &[("id", &uid)],
            Some(&json!({"groupIds": [g1]})),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r["value"], json!([g1]));
    cov.check(
        "user.check_member_groups",
        &format!("/directoryObjects/{uid}/checkMemberGroups"),
        &[],
        Some(json!({"groupIds": [g1]})),
    );
    let holders = a
        .list_assignments(
            &AssignmentScope::Entitlement(EntitlementRef::group(&g1)),
            PageRequest::first(7),
        )
        .await
        .unwrap();
    assert_eq!(holders.items[0].identity_id.as_deref(), Some("ada"));
    cov.check(
        "group.members",
        &format!("/groups/{g1}/members"),
        &[("$top", "7")],
        None,
    );
    a.list_collection("group.transitive_members", &[("groupId", &g1)])
        .await
        .unwrap();
    cov.check(
        "group.transitive_members",
        &format!("/groups/{g1}/transitiveMembers"),
        &[],
        None,
    );
    let info = a
        .read(&ObjectRef::Entitlement(EntitlementRef::group(&g1)))
        .await
        .unwrap();
    assert!(info.is_some());
    cov.check(
        "group.get",
        &format!("/groups/{g1}"),
        &[("$select", "id,displayName,description")],
        None,
    );
    a.list_entitlements(PageRequest::first(3)).await.unwrap();
    cov.check("group.list", "/groups", &[("$top", "3")], None);
    let g2 = a.create_group("Brand New").await.unwrap();
    cov.check(
        "group.create",
        "/groups",
        &[],
        Some(
            json!({"displayName": "Brand New", "mailNickname": "BrandNew",
            "mailEnabled": false, "securityEnabled": true}),
        ),
    );
    let outs = a
        .add_members(&g2, &[uid.clone(), boss_id.clone()])
        .await
        .unwrap();
    assert_eq!(outs.len(), 2);
    cov.check(
        "group.add_members",
        &format!("/groups/{g2}"),
        &[],
        Some(
            json!({"members@odata.bind": [format!("{ROOT}/directoryObjects/{uid}"),
            format!("{ROOT}/directoryObjects/{boss_id}")]}),
        ),
    );
    let revoke = op(OperationKind::Revoke, &ada).with_entitlement(EntitlementRef::group(&g1));
    assert!(a.apply(&revoke).await.unwrap().changed());
    cov.check(
        "group.remove_member",
        &format!("/groups/{g1}/members/{uid}/$ref"),
        &[],
        None,
    );
    let owner = ent(EntitlementKind::Generic("group_owner".into()), &g1);
    assert!(
        a.apply(&op(OperationKind::Grant, &ada).with_entitlement(owner.clone()))
            .await
            .unwrap()
            .changed()
    );
    cov.check(
        "group.add_owner",
        &format!("/groups/{g1}/owners/$ref"),
        &[],
        Some(json!({"@odata.id": format!("{ROOT}/directoryObjects/{uid}")})),
    );
    let owners = a
        .list_assignments(
            &AssignmentScope::Entitlement(owner.clone()),
            PageRequest::first(2),
        )
        .await
        .unwrap();
    assert_eq!(owners.items.len(), 1);
    cov.check(
        "group.owners",
        &format!("/groups/{g1}/owners"),
        &[("$top", "2")],
        None,
    );
    assert!(
        a.apply(&op(OperationKind::Revoke, &ada).with_entitlement(owner))
            .await
            .unwrap()
            .changed()
    );
    cov.check(
        "group.remove_owner",
        &format!("/groups/{g1}/owners/{uid}/$ref"),
        &[],
        None,
    );

    // -- $batch
    let batch = vec![
        op(OperationKind::Grant, &ada)
            .with_native_id(&uid)
            .with_entitlement(EntitlementRef::group(&g1)),
        op(OperationKind::Grant, &boss)
            .with_native_id(&boss_id)
            .with_entitlement(EntitlementRef::group(&g1)),
    ];
    let res = a.apply_batch(&batch).await;
    assert!(
        res.iter().all(|r| matches!(r, Ok(Outcome::Applied { .. }))),
        "{res:?}"
    );
    let member_req = |id: &str, who: &str| {
        json!({"id": id, "method": "POST", "url": format!("/groups/{g1}/members/$ref"),
            "headers": {"Content-Type": "application/json"},
            "body": {"@odata.id": format!("{ROOT}/directoryObjects/{who}")}})
    };
    cov.check(
        "batch",
        "/$batch",
        &[],
        Some(json!({"requests": [member_req("0", &uid), member_req("1", &boss_id)]})),
    );

    // -- delta
    let d = a.delta_sync(DeltaKind::Users, None, false).await.unwrap();
    assert!(!d.delta_link.is_empty());
    cov.check(
        "user.delta",
        "/users/delta",
        &[(
            "$select",
            "id,displayName,accountEnabled,userPrincipalName,employeeId",
        )],
        None,
    );
    let d = a.delta_sync(DeltaKind::Users, None, true).await.unwrap();
    assert!(d.changes.is_empty());
    cov.check(
        "user.delta_latest",
        "/users/delta",
        &[("$deltatoken", "latest")],
        None,
    );
    a.delta_sync(DeltaKind::Groups, None, false).await.unwrap();
    cov.check(
        "group.delta",
        "/groups/delta",
        &[("$select", "displayName,members")],
        None,
    );
    a.delta_sync(DeltaKind::Groups, None, true).await.unwrap();
    cov.check(
        "group.delta_latest",
        "/groups/delta",
        &[("$deltatoken", "latest")],
        None,
    );

    // -- licenses
    let (sku, plans) = cov.mock.seed_sku("E5", &["EXCHANGE", "TEAMS"]);
    let lic = ent(EntitlementKind::License, &sku);
    assert!(
        a.apply(&op(OperationKind::Grant, &ada).with_entitlement(lic.clone()))
            .await
            .unwrap()
            .changed()
    );
    cov.check(
        "license.read",
        &format!("/users/{uid}"),
        &[("$select", "id,assignedLicenses")],
        None,
    );
    cov.check(
        "license.add",
        &format!("/users/{uid}/assignLicense"),
        &[],
        Some(json!({"addLicenses": [{"skuId": sku, "disabledPlans": []}], "removeLicenses": []})),
    );
    let lic2 = ent(EntitlementKind::License, &format!("{sku}:{}", plans[1]));
    assert!(
        a.apply(&op(OperationKind::Grant, &ada).with_entitlement(lic2))
            .await
            .unwrap()
            .changed()
    );
    cov.check(
        "license.add_with_disabled_plans",
        &format!("/users/{uid}/assignLicense"),
        &[],
        Some(json!({"addLicenses": [{"skuId": sku, "disabledPlans": [plans[1]]}], "removeLicenses": []})),
    );
    assert!(
        a.apply(&op(OperationKind::Revoke, &ada).with_entitlement(lic))
            .await
            .unwrap()
            .changed()
    );
    cov.check(
        "license.remove",
        &format!("/users/{uid}/assignLicense"),
        &[],
        Some(json!({"addLicenses": [], "removeLicenses": [sku]})),
    );
    a.list_collection("license.subscribed_skus", &[])
        .await
        .unwrap();
    cov.check(
        "license.subscribed_skus",
        "/subscribedSkus",
        &[("$select", "skuId,skuPartNumber")],
        None,
    );

    // -- app roles
    let (sp, roles) = cov.mock.seed_service_principal("Payroll", &["Reader"]);
    let app = ent(EntitlementKind::AppRole, &format!("{sp}/{}", roles[0]));
    assert!(
        a.apply(&op(OperationKind::Grant, &ada).with_entitlement(app.clone()))
            .await
            .unwrap()
            .changed()
    );
    cov.check(
        "app_role.assign",
        &format!("/servicePrincipals/{sp}/appRoleAssignedTo"),
        &[],
        Some(json!({"principalId": uid, "resourceId": sp, "appRoleId": roles[0]})),
    );
    let held = a
        .list_collection("app_role.holders", &[("resourceId", &sp)])
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    cov.check(
        "app_role.holders",
        &format!("/servicePrincipals/{sp}/appRoleAssignedTo"),
        &[],
        None,
    );
    let aid = held[0]["id"].as_str().unwrap().to_string();
    assert!(
        a.apply(&op(OperationKind::Revoke, &ada).with_entitlement(app))
            .await
            .unwrap()
            .changed()
    );
    cov.check(
        "app_role.user_assignments",
        &format!("/users/{uid}/appRoleAssignments"),
        &[],
        None,
    );
    cov.check(
        "app_role.remove",
        &format!("/servicePrincipals/{sp}/appRoleAssignedTo/{aid}"),
        &[],
        None,
    );
    let app_id = cov.mock.service_principal(&sp).unwrap()["appId"]
        .as_str()
        .unwrap()
        .to_string();
    let spv = a
        .execute("service_principal.by_app_id", &[("appId", &app_id)], None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(spv["id"], json!(sp));
    cov.check(
        "service_principal.by_app_id",
        &format!("/servicePrincipals(appId='{app_id}')"),
        &[("$select", "id,appId,displayName,appRoles")],
        None,
    );

    // -- administrative units
    let au = cov.mock.seed_administrative_unit("Europe");
    let aue = ent(EntitlementKind::AdministrativeUnit, &au);
    assert!(
        a.apply(&op(OperationKind::Grant, &ada).with_entitlement(aue.clone()))
            .await
            .unwrap()
            .changed()
    );
    cov.check(
        "au.add_member",
        &format!("/directory/administrativeUnits/{au}/members/$ref"),
        &[],
        Some(json!({"@odata.id": format!("{ROOT}/users/{uid}")})),
    );
    a.list_assignments(
        &AssignmentScope::Entitlement(aue.clone()),
        PageRequest::first(4),
    )
    .await
    .unwrap();
    cov.check(
        "au.members",
        &format!("/directory/administrativeUnits/{au}/members"),
        &[("$top", "4")],
        None,
    );
    assert!(
        a.apply(&op(OperationKind::Revoke, &ada).with_entitlement(aue.clone()))
            .await
            .unwrap()
            .changed()
    );
    cov.check(
        "au.remove_member",
        &format!("/directory/administrativeUnits/{au}/members/{uid}/$ref"),
        &[],
        None,
    );
    let again = a
        .apply(&op(OperationKind::Revoke, &ada).with_entitlement(aue))
        .await
        .unwrap();
    assert!(!again.changed());
    cov.check(
        "au.get",
        &format!("/directory/administrativeUnits/{au}"),
        &[("$select", "id,displayName")],
        None,
    );
    a.list_collection("au.list", &[]).await.unwrap();
    cov.check(
        "au.list",
        "/directory/administrativeUnits",
        &[("$select", "id,displayName")],
        None,
    );

    // -- conditional access
    let pol = cov.mock.seed_ca_policy("Require MFA");
    a.list_collection("ca.list", &[]).await.unwrap();
    cov.check(
        "ca.list",
        "/identity/conditionalAccess/policies",
        &[("$select", "id,displayName,state")],
        None,
    );
    let before = cov.mock.ca_policy(&pol).unwrap();
    for (list, member) in [
        ("includeUsers", uid.clone()),
        ("excludeUsers", uid.clone()),
        ("includeGroups", g1.clone()),
        ("excludeGroups", g2.clone()),
    ] {
        let mut o = op(OperationKind::Grant, &ada).with_entitlement(ent(
            EntitlementKind::ConditionalAccessInclusion,
            &format!("{pol}/{list}"),
        ));
        if list.ends_with("Groups") {
            o = o.with_native_id(&member);
        }
        let current = cov.mock.ca_policy(&pol).unwrap();
        assert!(a.apply(&o).await.unwrap().changed(), "{list}");
        cov.check(
            "ca.get",
            &format!("/identity/conditionalAccess/policies/{pol}"),
            &[],
            None,
        );
        let mut conditions = current["conditions"].clone();
        let mut l: Vec<Value> = conditions["users"][list].as_array().unwrap().clone();
        l.retain(|x| x != "None");
        l.push(json!(member));
        conditions["users"][list] = json!(l);
        cov.check(
            &format!("ca.update.{list}"),
            &format!("/identity/conditionalAccess/policies/{pol}"),
            &[],
            Some(json!({ "conditions": conditions })),
        );
    }
    let after = cov.mock.ca_policy(&pol).unwrap();
    for k in ["applications", "clientAppTypes", "platforms"] {
        assert_eq!(
            after["conditions"][k], before["conditions"][k],
            "{k} clobbered"
        );
    }
    assert_eq!(after["grantControls"], before["grantControls"]);

    // -- permanent directory roles
    let rd = cov.mock.seed_role_definition("Helpdesk Administrator");
    a.list_collection("role.definitions", &[]).await.unwrap();
    cov.check(
        "role.definitions",
        "/roleManagement/directory/roleDefinitions",
        &[],
        None,
    );
    let role = ent(EntitlementKind::Role, &rd);
    assert!(
        a.apply(&op(OperationKind::Grant, &ada).with_entitlement(role.clone()))
            .await
            .unwrap()
            .changed()
    );
    cov.check(
        "role.find_assignment",
        "/roleManagement/directory/roleAssignments",
        &[(
            "$filter",
            &format!("principalId eq '{uid}' and roleDefinitionId eq '{rd}'"),
        )],
        None,
    );
    cov.check(
        "role.assign",
        "/roleManagement/directory/roleAssignments",
        &[],
        Some(json!({"principalId": uid, "roleDefinitionId": rd, "directoryScopeId": "/"})),
    );
    let ra = cov.mock.role_assignments()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        a.apply(&op(OperationKind::Revoke, &ada).with_entitlement(role))
            .await
            .unwrap()
            .changed()
    );
    cov.check(
        "role.remove",
        &format!("/roleManagement/directory/roleAssignments/{ra}"),
        &[],
        None,
    );

    // -- PIM, every action of every surface
    for surface in PimSurface::ALL {
        let (scope, target_id) = if surface.is_group() {
            (
                PimScope::Group {
                    group: g1.clone(),
                    access_id: "member".into(),
                },
                g1.clone(),
            )
        } else {
            (
                PimScope::Role {
                    role_definition_id: rd.clone(),
                    directory_scope_id: "/".into(),
                },
                rd.clone(),
            )
        };
        let target_fields = if surface.is_group() {
            json!({"groupId": g1, "accessId": "member"})
        } else {
            json!({"roleDefinitionId": rd, "directoryScopeId": "/"})
        };
        let eligible = matches!(
            surface,
            PimSurface::RoleEligibility | PimSurface::GroupEligibility
        );
        let order: Vec<&str> = if eligible {
            vec![
                "adminAssign",
                "adminUpdate",
                "adminExtend",
                "adminRenew",
                "selfExtend",
                "selfRenew",
                "adminRemove",
            ]
        } else {
            vec![
                "selfActivate",
                "selfDeactivate",
                "adminAssign",
                "adminUpdate",
                "adminExtend",
                "adminRenew",
                "selfExtend",
                "selfRenew",
                "adminRemove",
            ]
        };
        if !eligible {
            // Activation needs an eligibility first.
            let elig = if surface.is_group() {
                PimSurface::GroupEligibility
            } else {
                PimSurface::RoleEligibility
            };
            a.pim_request(&PimRequest::new(
                elig,
                "adminAssign",
                &uid,
                scope.clone(),
                "setup",
            ))
            .await
            .unwrap();
            cov.seen = cov.mock.requests().len();
        }
        let mut last_id = String::new();
        for action in order {
            let mut req = PimRequest::new(
                surface,
                action,
                &uid,
                scope.clone(),
                format!("ticket for {action}"),
            );
            req.expiration = PimExpiration::AfterDuration("PT8H".into());
            req.ticket = Some(("RITM0012345".into(), "ServiceNow".into()));
            let resp = a.pim_request(&req).await.unwrap();
            assert!(resp.outcome.changed(), "{surface:?} {action}: {resp:?}");
            last_id = resp.request_id.unwrap();
            let mut body = json!({"action": action, "principalId": uid, "justification": format!("ticket for {action}")});
            for (k, v) in target_fields.as_object().unwrap() {
                body[k] = v.clone();
            }
            if !matches!(action, "adminRemove" | "selfDeactivate") {
                body["scheduleInfo"] = json!({"startDateTime": ANY,
                    "expiration": {"type": "afterDuration", "duration": "PT8H"}});
                body["ticketInfo"] =
                    json!({"ticketNumber": "RITM0012345", "ticketSystem": "ServiceNow"});
            }
            let requests_path = iga_connector_entra::commands::commands()
                .iter()
                .find(|c| c.name == format!("{}.{action}", surface.prefix()))
                .unwrap()
                .template
                .clone();
            cov.check(
                &format!("{}.{action}", surface.prefix()),
                &requests_path,
                &[],
                Some(body),
            );
            if action == "selfRenew" {
                let s = a.pim_schedules(surface, &uid, &target_id).await.unwrap();
                assert_eq!(s.len(), 1, "{surface:?}");
                let key = if surface.is_group() {
                    "groupId"
                } else {
                    "roleDefinitionId"
                };
                let sched = Cov::cmd(&format!("{}.schedules", surface.prefix()))
                    .template
                    .clone();
                let sched_path = sched.split('?').next().unwrap().to_string();
                cov.check(
                    &format!("{}.schedules", surface.prefix()),
                    &sched_path,
                    &[(
                        "$filter",
                        &format!("principalId eq '{uid}' and {key} eq '{target_id}'"),
                    )],
                    None,
                );
            }
        }
        let st = a.pim_request_status(surface, &last_id).await.unwrap();
        assert_eq!(st["status"], "Revoked");
        let get = Cov::cmd(&format!("{}.get_request", surface.prefix()))
            .template
            .replace("{requestId}", &last_id);
        cov.check(
            &format!("{}.get_request", surface.prefix()),
            &get,
            &[],
            None,
        );
    }

    // -- access packages
    let (pkg, policy) = cov.mock.seed_access_package("Sales tools", false);
    let ape = ent(EntitlementKind::AccessPackage, &format!("{pkg}/{policy}"));
    let grant_ap = op(OperationKind::Grant, &ada).with_entitlement(ape.clone());
    let first = a.apply(&grant_ap).await.unwrap();
    let Outcome::Pending { external_ref } = &first else {
        panic!("{first:?}")
    };
    let filter = format!("target/objectId eq '{uid}' and accessPackage/id eq '{pkg}'");
    cov.check(
        "access_package.find_requests",
        "/identityGovernance/entitlementManagement/assignmentRequests",
        &[("$filter", &filter)],
        None,
    );
    cov.check(
        "access_package.find_assignments",
        "/identityGovernance/entitlementManagement/assignments",
        &[("$filter", &filter)],
        None,
    );
    cov.check(
        "access_package.request_add",
        "/identityGovernance/entitlementManagement/assignmentRequests",
        &[],
        Some(
            json!({"requestType": "adminAdd", "assignment": {"targetId": uid,
            "assignmentPolicyId": policy, "accessPackageId": pkg}}),
        ),
    );
    let req_id = external_ref.rsplit(':').next().unwrap().to_string();
    let r = a.access_package_request(&req_id).await.unwrap();
    assert!(
        ["delivering", "delivered"].contains(&r["state"].as_str().unwrap()),
        "{r}"
    );
    cov.check(
        "access_package.get_request",
        &format!("/identityGovernance/entitlementManagement/assignmentRequests/{req_id}"),
        &[],
        None,
    );
    // Poll until delivered (the orchestrator re-applies AwaitingExternal jobs).
    let mut done = None;
    for _ in 0..5 {
        let o = a.apply(&grant_ap).await.unwrap();
        if o.is_done() {
            done = Some(o);
            break;
        }
    }
    assert!(done.is_some(), "access package never delivered");
    assert_eq!(cov.mock.access_package_assignments().len(), 1);
    assert_eq!(
        cov.mock.access_package_requests().len(),
        1,
        "polling re-applies without submitting a second request"
    );
    cov.seen = cov.mock.requests().len();
    let rm = a
        .apply(&op(OperationKind::Revoke, &ada).with_entitlement(ape))
        .await
        .unwrap();
    assert!(matches!(rm, Outcome::Pending { .. }), "{rm:?}");
    let asg = cov.mock.access_package_assignments()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    cov.check(
        "access_package.request_remove",
        "/identityGovernance/entitlementManagement/assignmentRequests",
        &[],
        Some(json!({"requestType": "adminRemove", "assignment": {"id": asg}})),
    );
    a.list_collection("access_package.list", &[]).await.unwrap();
    cov.check(
        "access_package.list",
        "/identityGovernance/entitlementManagement/accessPackages",
        &[("$select", "id,displayName")],
        None,
    );
    a.list_collection("access_package.policies", &[("accessPackageId", &pkg)])
        .await
        .unwrap();
    cov.check(
        "access_package.policies",
        "/identityGovernance/entitlementManagement/assignmentPolicies",
        &[("$filter", &format!("accessPackage/id eq '{pkg}'"))],
        None,
    );
    let (pkg2, pol2) = cov.mock.seed_access_package("Approval needed", true);
    let pending = a
        .apply(&op(OperationKind::Grant, &ada).with_entitlement(ent(
            EntitlementKind::AccessPackage,
            &format!("{pkg2}/{pol2}"),
        )))
        .await
        .unwrap();
    let Outcome::Pending { external_ref } = pending else {
        panic!()
    };
    let rid = external_ref.rsplit(':').next().unwrap().to_string();
    a.execute(
        "access_package.cancel_request",
        &[("requestId", &rid)],
        None,
    )
    .await
    .unwrap();
    cov.check(
        "access_package.cancel_request",
        &format!("/identityGovernance/entitlementManagement/assignmentRequests/{rid}/cancel"),
        &[],
        None,
    );

    // -- delete, deleted items, restore
    assert!(
        a.apply(&op(OperationKind::DeleteAccount, &ada))
            .await
            .unwrap()
            .changed()
    );
    cov.check("user.delete", &format!("/users/{uid}"), &[], None);
    let deleted = a.list_collection("user.deleted_list", &[]).await.unwrap();
    assert_eq!(deleted.len(), 1);
    cov.check(
        "user.deleted_list",
        "/directory/deletedItems/microsoft.graph.user",
        &[],
        None,
    );
    a.restore_user(&uid).await.unwrap();
    cov.check(
        "user.restore",
        &format!("/directory/deletedItems/{uid}/restore"),
        &[],
        None,
    );
    assert!(cov.mock.user(&uid).is_some());

    let total = commands().len();
    let missing: Vec<&str> = commands()
        .iter()
        .map(|c| c.name.as_str())
        .filter(|n| !cov.verified.contains(*n))
        .collect();
    println!(
        "entra_commands total={total} verified={}",
        cov.verified.len()
    );
    assert!(missing.is_empty(), "commands not verified: {missing:?}");
    assert!(total >= 100, "{total} commands");
}

fn base64_decode_pem(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .secret_pkcs8_der()
        .to_vec()
}
