//! Canonical identity ↔ SCIM User translation.
//!
//! | identity | SCIM |
//! |---|---|
//! | `id` | `externalId` |
//! | `login()` | `userName` |
//! | `display_name` (else given + family) | `displayName` |
//! | `given_name` / `family_name` | `name.givenName` / `name.familyName` |
//! | `email` | `emails[type eq "work"]` (primary) |
//! | `department` / `employee_id` | enterprise `department` / `employeeNumber` |

use std::collections::BTreeMap;

use iga_adapter::Account;
use iga_directive::Identity;
use serde_json::{Value, json};

pub(crate) const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub(crate) const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub(crate) const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn display_name(who: &Identity) -> Option<String> {
    who.display_name
        .clone()
        .or_else(|| match (&who.given_name, &who.family_name) {
            (Some(g), Some(f)) => Some(format!("{g} {f}")),
            (Some(n), None) | (None, Some(n)) => Some(n.clone()),
            (None, None) => None,
        })
}

/// The SCIM User to POST for an identity.
pub(crate) fn user_resource(who: &Identity) -> Value {
    let mut user = json!({
        "schemas": [USER_SCHEMA],
        "externalId": who.id,
        "userName": who.login(),
        "active": true,
    });
    let obj = user.as_object_mut().expect("object");
    for (path, value) in desired_from_identity(who) {
        if path == "emails" {
            obj.insert(path, emails_value(&value));
        } else {
            set_path(obj, &path, value);
        }
    }
    if obj.contains_key(ENTERPRISE) {
        obj.insert("schemas".into(), json!([USER_SCHEMA, ENTERPRISE]));
    }
    user
}

/// The SCIM paths and values an identity implies (everything but userName/externalId).
pub(crate) fn desired_from_identity(who: &Identity) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Some(d) = display_name(who) {
        out.push(("displayName".into(), Value::from(d)));
    }
    if let Some(g) = &who.given_name {
        out.push(("name.givenName".into(), Value::from(g.clone())));
    }
    if let Some(f) = &who.family_name {
        out.push(("name.familyName".into(), Value::from(f.clone())));
    }
    if let Some(e) = &who.email {
        out.push(("emails".into(), Value::from(e.clone())));
    }
    if let Some(d) = &who.department {
        out.push((format!("{ENTERPRISE}:department"), Value::from(d.clone())));
    }
    if let Some(n) = &who.employee_id {
        out.push((
            format!("{ENTERPRISE}:employeeNumber"),
            Value::from(n.clone()),
        ));
    }
    out
}

/// Map an update operation's attribute keys to SCIM paths. Canonical keys
/// (`display_name`, `given_name`, `family_name`, `email`, `department`,
/// `employee_id`, `user_name`) are translated; any other key is taken as a SCIM
/// attribute path as is (`title`, `name.middleName`, `urn:...:User:costCenter`).
pub(crate) fn desired_from_attributes(attrs: &BTreeMap<String, Value>) -> Vec<(String, Value)> {
    attrs
        .iter()
        .map(|(k, v)| {
            let path = match k.as_str() {
                "display_name" => "displayName".to_string(),
                "given_name" => "name.givenName".into(),
                "family_name" => "name.familyName".into(),
                "email" => "emails".into(),
                "user_name" | "login" => "userName".into(),
                "department" => format!("{ENTERPRISE}:department"),
                "employee_id" => format!("{ENTERPRISE}:employeeNumber"),
                other => other.to_string(),
            };
            (path, v.clone())
        })
        .collect()
}

pub(crate) fn emails_value(email: &Value) -> Value {
    json!([{"value": email, "type": "work", "primary": true}])
}

/// The primary (else work, else first) e-mail of a SCIM User.
pub(crate) fn primary_email(user: &Value) -> Option<String> {
    let emails = user.get("emails")?.as_array()?;
    let pick = emails
        .iter()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| {
            emails
                .iter()
                .find(|e| e.get("type").and_then(Value::as_str) == Some("work"))
        })
        .or_else(|| emails.first())?;
    pick.get("value")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn split_urn(path: &str) -> (Option<&str>, &str) {
    if path.to_ascii_lowercase().starts_with("urn:") {
        match path.rfind(':') {
            Some(i) => (Some(&path[..i]), &path[i + 1..]),
            None => (None, path),
        }
    } else {
        (None, path)
    }
}

fn get_ci<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// Read an attribute path (`a`, `a.b`, `urn:...:a.b`) from a resource;
/// `emails` reads the primary e-mail string.
pub(crate) fn get_path(user: &Value, path: &str) -> Option<Value> {
    if path == "emails" {
        return primary_email(user).map(Value::from);
    }
    let (urn, rest) = split_urn(path);
    let mut cur = match urn {
        Some(u) => get_ci(user, u)?,
        None => user,
    };
    for part in rest.split('.') {
        cur = get_ci(cur, part)?;
    }
    Some(cur.clone())
}

/// Set an attribute path in a resource object (creating intermediate objects).
pub(crate) fn set_path(obj: &mut serde_json::Map<String, Value>, path: &str, value: Value) {
    if path == "emails" {
        obj.insert("emails".into(), emails_value(&value));
        return;
    }
    let (urn, rest) = split_urn(path);
    let mut cur = obj;
    if let Some(u) = urn {
        cur = cur
            .entry(u.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("extension object");
    }
    let parts: Vec<&str> = rest.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        let entry = cur.entry(part.to_string()).or_insert_with(|| json!({}));
        if !entry.is_object() {
            *entry = json!({});
        }
        cur = entry.as_object_mut().expect("object");
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
}

/// Whether a SCIM value already equals the wanted one (strings compared exactly,
/// `"true"`/`true` tolerated).
pub(crate) fn same_value(current: Option<&Value>, wanted: &Value) -> bool {
    match (current, wanted) {
        (None, Value::Null) => true,
        (None, _) => false,
        (Some(c), w) if c == w => true,
        (Some(Value::String(c)), Value::Bool(b)) | (Some(Value::Bool(b)), Value::String(c)) => {
            c.eq_ignore_ascii_case(&b.to_string())
        }
        _ => false,
    }
}

/// `active`, absent = true (RFC 7643 leaves it optional; servers omit it).
pub(crate) fn is_active(user: &Value) -> bool {
    match get_ci(user, "active") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.eq_ignore_ascii_case("false"),
        _ => true,
    }
}

pub(crate) fn str_field(v: &Value, key: &str) -> Option<String> {
    get_ci(v, key).and_then(Value::as_str).map(str::to_string)
}

/// A SCIM User as an [`Account`].
pub(crate) fn account_from_user(user: &Value) -> Option<Account> {
    let mut a = Account::new(str_field(user, "id")?);
    a.identity_id = str_field(user, "externalId");
    a.login = str_field(user, "userName");
    a.display_name = str_field(user, "displayName");
    a.email = primary_email(user);
    a.enabled = is_active(user);
    if let Some(n) = get_ci(user, "name") {
        for (k, key) in [("given_name", "givenName"), ("family_name", "familyName")] {
            if let Some(v) = get_ci(n, key) {
                a.attributes.insert(k.to_string(), v.clone());
            }
        }
    }
    Some(a)
}

/// A JSON string literal for a SCIM filter (RFC 7644: JSON string syntax).
pub(crate) fn filter_literal(s: &str) -> String {
    Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_to_user_and_back() {
        let who = Identity::person("id-1")
            .with_user_name("ada")
            .with_name("Ada", "Lovelace")
            .with_email("ada@x.test")
            .with_department("R&D")
            .with_employee_id("701");
        let u = user_resource(&who);
        assert_eq!(u["externalId"], "id-1");
        assert_eq!(u["userName"], "ada");
        assert_eq!(u["displayName"], "Ada Lovelace");
        assert_eq!(u["name"]["familyName"], "Lovelace");
        assert_eq!(u[ENTERPRISE]["employeeNumber"], "701");
        assert_eq!(u["schemas"][1], ENTERPRISE);
        let mut with_id = u.clone();
        with_id["id"] = json!("n-1");
        let a = account_from_user(&with_id).unwrap();
        assert_eq!(a.native_id, "n-1");
        assert_eq!(a.identity_id.as_deref(), Some("id-1"));
        assert_eq!(a.email.as_deref(), Some("ada@x.test"));
        assert!(a.enabled);
        assert_eq!(
            get_path(&u, &format!("{ENTERPRISE}:department")),
            Some(json!("R&D"))
        );
        assert_eq!(get_path(&u, "NAME.givenName"), Some(json!("Ada")));
    }

    #[test]
    fn paths_values_and_filters() {
        let mut o = serde_json::Map::new();
        set_path(&mut o, "name.middleName", json!("M"));
        set_path(&mut o, &format!("{ENTERPRISE}:costCenter"), json!("4"));
        assert_eq!(o["name"]["middleName"], "M");
        assert_eq!(o[ENTERPRISE]["costCenter"], "4");
        assert!(same_value(Some(&json!("True")), &json!(true)));
        assert!(!same_value(None, &json!("x")));
        assert!(!is_active(&json!({"active": "False"})));
        assert!(is_active(&json!({})));
        assert_eq!(filter_literal(r#"a"b\c"#), r#""a\"b\\c""#);
        let mut attrs = BTreeMap::new();
        attrs.insert("display_name".to_string(), json!("X"));
        attrs.insert("title".to_string(), json!("Eng"));
        let d = desired_from_attributes(&attrs);
        assert!(d.contains(&("displayName".to_string(), json!("X"))));
        assert!(d.contains(&("title".to_string(), json!("Eng"))));
    }
}
