//! Operation ↔ LDAP request translation, without I/O: DNs, entry attributes,
//! modifications, Active Directory specifics (userAccountControl bits, `unicodePwd`
//! encoding, ranged `member` retrieval). Everything here is unit-tested by shape,
//! which is how the AD dialect is verified without a domain controller.

use std::collections::{BTreeMap, HashMap};

use iga_adapter::{Account, Error, ErrorKind, Result, Secret};
use iga_directive::Identity;
use serde_json::Value;

use crate::KIND;
use crate::config::{Dialect, DisableMode, LdapConfig};
use crate::error::Intent;
use crate::escape;

/// One value on the wire (binary-safe: `unicodePwd` is not UTF-8).
pub type Val = Vec<u8>;

/// One change inside a Modify request (applied atomically with its siblings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Add values.
    Add(String, Vec<Val>),
    /// Delete these values (or the whole attribute when empty).
    Delete(String, Vec<Val>),
    /// Replace with exactly these values (empty = remove the attribute).
    Replace(String, Vec<Val>),
}

impl Change {
    pub(crate) fn to_ldap3(&self) -> ldap3::Mod<Val> {
        let set = |v: &Vec<Val>| v.iter().cloned().collect();
        match self {
            Self::Add(a, v) => ldap3::Mod::Add(a.as_bytes().to_vec(), set(v)),
            Self::Delete(a, v) => ldap3::Mod::Delete(a.as_bytes().to_vec(), set(v)),
            Self::Replace(a, v) => ldap3::Mod::Replace(a.as_bytes().to_vec(), set(v)),
        }
    }
}

/// A Modify request and how to read its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifyReq {
    /// Target entry.
    pub dn: String,
    /// Changes, in order.
    pub changes: Vec<Change>,
    /// How the result code is classified.
    pub intent: Intent,
}

/// An Add request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddReq {
    /// New entry.
    pub dn: String,
    /// Attributes with their values (none empty).
    pub attrs: Vec<(String, Vec<Val>)>,
}

impl AddReq {
    /// Values of one attribute (case-insensitive name), as strings.
    pub fn get(&self, attr: &str) -> Vec<String> {
        self.attrs
            .iter()
            .filter(|(a, _)| a.eq_ignore_ascii_case(attr))
            .flat_map(|(_, v)| v.iter().map(|b| String::from_utf8_lossy(b).into_owned()))
            .collect()
    }
}

fn s(v: &str) -> Val {
    v.as_bytes().to_vec()
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, msg).with_connector(KIND)
}

/// DN of the account with this login.
pub fn user_dn(cfg: &LdapConfig, login: &str) -> String {
    escape::child_dn(&cfg.user_rdn_attr, login, &cfg.user_base)
}

/// DN of a group given an entitlement id: a full DN under `group_base` is used as
/// is; anything else is a group name (escaped into `cn=<name>,<group_base>`).
pub fn group_dn(cfg: &LdapConfig, id: &str) -> String {
    let base = escape::normalize_dn(&cfg.group_base);
    let norm = escape::normalize_dn(id);
    if norm.ends_with(&format!(",{base}")) && escape::split_dn(id).len() > 1 {
        id.to_string()
    } else {
        escape::child_dn(&cfg.group_rdn_attr, id, &cfg.group_base)
    }
}

/// The entitlement id a group DN is reported as: its name when it sits directly
/// under `group_base`, else the full DN.
pub fn entitlement_id(cfg: &LdapConfig, dn: &str) -> String {
    if escape::normalize_dn(&escape::parent_dn(dn)) == escape::normalize_dn(&cfg.group_base)
        && let Some(v) = escape::first_rdn_value(dn)
    {
        return v;
    }
    dn.to_string()
}

/// The membership value for an account (DN, or login for `memberUid`).
pub fn member_value(cfg: &LdapConfig, dn: &str, login: &str) -> String {
    if cfg.group_model.member_is_dn() {
        dn.to_string()
    } else {
        login.to_string()
    }
}

/// JSON attribute value → LDAP values (`null` → none, arrays → several).
pub fn json_values(key: &str, v: &Value) -> Result<Vec<String>> {
    Ok(match v {
        Value::Null => vec![],
        Value::String(s) => vec![s.clone()],
        Value::Bool(b) => vec![if *b { "TRUE" } else { "FALSE" }.to_string()],
        Value::Number(n) => vec![n.to_string()],
        Value::Array(a) => {
            let mut out = Vec::new();
            for x in a {
                out.extend(json_values(key, x)?);
            }
            out
        }
        Value::Object(_) => {
            return Err(invalid(format!("attribute `{key}`: objects not supported")));
        }
    })
}

/// Keys never written from operation attributes (secrets, back-links, structure).
const FORBIDDEN: &[&str] = &[
    "userpassword",
    "unicodepwd",
    "password",
    "memberof",
    "objectclass",
    "useraccountcontrol",
];

/// Resolve an operation attribute key to an LDAP attribute name.
pub fn attr_for_key<'a>(cfg: &'a LdapConfig, key: &'a str) -> Result<&'a str> {
    let attr = cfg.ldap_attr(key).ok_or_else(|| {
        invalid(format!(
            "attribute key `{key}` is not an LDAP attribute name"
        ))
    })?;
    if FORBIDDEN.contains(&attr.to_ascii_lowercase().as_str())
        || FORBIDDEN.contains(&key.to_ascii_lowercase().as_str())
    {
        return Err(invalid(format!(
            "attribute `{key}` cannot be set through operation attributes"
        )));
    }
    Ok(attr)
}

/// `sAMAccountName` rules: at most 20 characters, none of `"/\[]:;|=,+*?<>`.
pub fn check_sam_account_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 20 {
        return Err(invalid("sAMAccountName must be 1..=20 characters"));
    }
    if let Some(c) = name.chars().find(|c| "\"/\\[]:;|=,+*?<>".contains(*c)) {
        return Err(invalid(format!("sAMAccountName must not contain `{c}`")));
    }
    Ok(())
}

/// The Add request for a new account.
pub fn create_user(
    cfg: &LdapConfig,
    who: &Identity,
    extra: &BTreeMap<String, Value>,
) -> Result<AddReq> {
    let login = who.login();
    if login.trim().is_empty() {
        return Err(invalid("identity has no login"));
    }
    let dn = user_dn(cfg, login);
    let mut attrs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut put = |a: &str, v: String| {
        let e = attrs.entry(a.to_string()).or_default();
        if !e.contains(&v) {
            e.push(v);
        }
    };
    let mut classes = cfg.user_object_classes.clone();
    if cfg.posix_accounts
        && !classes
            .iter()
            .any(|c| c.eq_ignore_ascii_case("posixAccount"))
    {
        classes.push("posixAccount".into());
    }
    for c in classes {
        put("objectClass", c);
    }
    put(&cfg.user_rdn_attr, login.to_string());
    put(&cfg.login_attr, login.to_string());
    let display = who
        .display_name
        .clone()
        .unwrap_or_else(|| login.to_string());
    put("cn", display.clone());
    if cfg.user_rdn_attr.eq_ignore_ascii_case("cn") {
        // cn is the RDN: keep exactly one value, the login.
        attrs.insert("cn".into(), vec![login.to_string()]);
    }
    let mut put = |a: &str, v: String| {
        let e = attrs.entry(a.to_string()).or_default();
        if !e.contains(&v) {
            e.push(v);
        }
    };
    put(
        "sn",
        who.family_name.clone().unwrap_or_else(|| login.to_string()),
    );
    put(&cfg.correlation_attr, who.id.clone());
    let canonical: [(&str, Option<&String>); 6] = [
        ("display_name", Some(&display)),
        ("given_name", who.given_name.as_ref()),
        ("email", who.email.as_ref()),
        ("department", who.department.as_ref()),
        ("employee_id", who.employee_id.as_ref()),
        ("family_name", None),
    ];
    for (key, v) in canonical {
        if let (Some(v), Some(a)) = (v, cfg.attribute_map.get(key)) {
            put(a, v.clone());
        }
    }
    if cfg.dialect == Dialect::Ad {
        check_sam_account_name(login)?;
        let suffix = cfg.upn_suffix.as_deref().unwrap_or_default();
        put("userPrincipalName", format!("{login}@{suffix}"));
        // Created disabled; enabled once a password is set (AD refuses 512 without one).
        put(
            "userAccountControl",
            (UAC_NORMAL_ACCOUNT | UAC_ACCOUNTDISABLE).to_string(),
        );
    }
    for (k, v) in extra {
        let a = attr_for_key(cfg, k)?;
        let vals = json_values(k, v)?;
        if !vals.is_empty() {
            // Operation attributes win over identity-derived values.
            attrs.insert(a.to_string(), vals);
        }
    }
    if cfg.posix_accounts {
        for need in ["uidNumber", "gidNumber", "homeDirectory"] {
            if !attrs.keys().any(|k| k.eq_ignore_ascii_case(need)) {
                return Err(invalid(format!("posix account needs `{need}`")));
            }
        }
    }
    Ok(AddReq {
        dn,
        attrs: attrs
            .into_iter()
            .map(|(a, v)| (a, v.iter().map(|x| s(x)).collect()))
            .collect(),
    })
}

/// Changes that bring `current` (attribute → values, as read) to `wanted` (operation
/// attributes). Empty = nothing to do (`NoChange`). Attribute names compare
/// case-insensitively; values exactly, as sets.
pub fn update_changes(
    cfg: &LdapConfig,
    current: &HashMap<String, Vec<String>>,
    wanted: &BTreeMap<String, Value>,
) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    for (k, v) in wanted {
        let a = attr_for_key(cfg, k)?;
        if a.eq_ignore_ascii_case(&cfg.user_rdn_attr) {
            return Err(invalid(format!(
                "`{k}` is the RDN attribute; renaming is not supported"
            )));
        }
        let mut want = json_values(k, v)?;
        let mut have: Vec<String> = current
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(a))
            .flat_map(|(_, v)| v.clone())
            .collect();
        want.sort();
        want.dedup();
        have.sort();
        if want != have {
            changes.push(Change::Replace(
                a.to_string(),
                want.iter().map(|x| s(x)).collect(),
            ));
        }
    }
    Ok(changes)
}

/// The attributes a read requests.
pub fn account_attrs(cfg: &LdapConfig) -> Vec<String> {
    let mut v = vec!["*".to_string(), "memberOf".to_string()];
    match (cfg.dialect, &cfg.disable) {
        (Dialect::Ad, _) => v.push("userAccountControl".into()),
        (_, DisableMode::PwdAccountLockedTime) => v.push("pwdAccountLockedTime".into()),
        _ => {}
    }
    v
}

fn first<'a>(attrs: &'a HashMap<String, Vec<String>>, name: &str) -> Option<&'a String> {
    attrs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first())
}

fn all<'a>(attrs: &'a HashMap<String, Vec<String>>, name: &str) -> Vec<&'a String> {
    attrs
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.iter())
        .collect()
}

/// Whether an entry's attributes say the account is enabled.
pub fn is_enabled(cfg: &LdapConfig, attrs: &HashMap<String, Vec<String>>) -> bool {
    match cfg.dialect {
        Dialect::Ad => first(attrs, "userAccountControl")
            .and_then(|v| v.parse::<u32>().ok())
            .is_none_or(|u| u & UAC_ACCOUNTDISABLE == 0),
        Dialect::Openldap => match &cfg.disable {
            DisableMode::Attribute { attribute, value } => !all(attrs, attribute)
                .iter()
                .any(|v| v.eq_ignore_ascii_case(value)),
            DisableMode::PwdAccountLockedTime => first(attrs, "pwdAccountLockedTime").is_none(),
        },
    }
}

/// An [`Account`] from a search entry.
pub fn account_from_entry(
    cfg: &LdapConfig,
    dn: &str,
    attrs: &HashMap<String, Vec<String>>,
) -> Account {
    let mut a = Account::new(dn);
    a.identity_id = first(attrs, &cfg.correlation_attr).cloned();
    a.login = first(attrs, &cfg.login_attr).cloned();
    a.display_name = first(attrs, "displayName").cloned();
    a.email = first(attrs, "mail").cloned();
    a.enabled = is_enabled(cfg, attrs);
    for (key, attr) in &cfg.attribute_map {
        if matches!(key.as_str(), "display_name" | "email") {
            continue;
        }
        if let Some(v) = first(attrs, attr) {
            a.attributes.insert(key.clone(), Value::from(v.clone()));
        }
    }
    let member_of: Vec<Value> = all(attrs, "memberOf")
        .into_iter()
        .map(|v| Value::from(v.clone()))
        .collect();
    if !member_of.is_empty() {
        a.attributes
            .insert("member_of".into(), Value::Array(member_of));
    }
    a
}

/// OpenLDAP disable/enable as one Modify whose result code tells whether it was
/// already so (20 on disable, 16 on enable).
pub fn openldap_disable(cfg: &LdapConfig, dn: &str, disable: bool) -> ModifyReq {
    let (attr, val) = match &cfg.disable {
        DisableMode::Attribute { attribute, value } => (attribute.clone(), value.clone()),
        DisableMode::PwdAccountLockedTime => (
            "pwdAccountLockedTime".to_string(),
            "000001010000Z".to_string(),
        ),
    };
    let (change, intent) = if disable {
        (Change::Add(attr, vec![s(&val)]), Intent::AddDisableMarker)
    } else if matches!(cfg.disable, DisableMode::PwdAccountLockedTime) {
        (Change::Delete(attr, vec![]), Intent::RemoveDisableMarker)
    } else {
        (
            Change::Delete(attr, vec![s(&val)]),
            Intent::RemoveDisableMarker,
        )
    };
    ModifyReq {
        dn: dn.to_string(),
        changes: vec![change],
        intent,
    }
}

/// Grant/revoke as one Modify on the group.
pub fn membership(group_dn: &str, member_attr: &str, value: &str, grant: bool) -> ModifyReq {
    let v = vec![s(value)];
    ModifyReq {
        dn: group_dn.to_string(),
        changes: vec![if grant {
            Change::Add(member_attr.into(), v)
        } else {
            Change::Delete(member_attr.into(), v)
        }],
        intent: if grant {
            Intent::AddMember
        } else {
            Intent::RemoveMember
        },
    }
}

/// Revoke of the last member of a `groupOfNames`: put the placeholder in and take the
/// member out in the same atomic Modify (avoids 65 objectClassViolation).
pub fn revoke_last_member(
    group_dn: &str,
    member_attr: &str,
    value: &str,
    placeholder: &str,
) -> ModifyReq {
    ModifyReq {
        dn: group_dn.to_string(),
        changes: vec![
            Change::Add(member_attr.into(), vec![s(placeholder)]),
            Change::Delete(member_attr.into(), vec![s(value)]),
        ],
        intent: Intent::RemoveMember,
    }
}

/// The Add request for a new group (with the placeholder member where the schema
/// requires one).
pub fn create_group(cfg: &LdapConfig, name: &str, description: Option<&str>) -> AddReq {
    let dn = escape::child_dn(&cfg.group_rdn_attr, name, &cfg.group_base);
    let mut attrs = vec![
        (
            "objectClass".to_string(),
            vec![s("top"), s(cfg.group_model.object_class())],
        ),
        (cfg.group_rdn_attr.clone(), vec![s(name)]),
    ];
    if cfg.group_model.needs_placeholder()
        && let Some(p) = &cfg.placeholder_member
    {
        attrs.push((cfg.group_model.member_attr().to_string(), vec![s(p)]));
    }
    if matches!(cfg.group_model, crate::config::GroupModel::PosixGroup) {
        // gidNumber is MUST for posixGroup; derive a stable one from the name.
        let h = name
            .bytes()
            .fold(5381u32, |h, b| h.wrapping_mul(33) ^ u32::from(b));
        attrs.push((
            "gidNumber".into(),
            vec![s(&(10_000 + h % 1_000_000).to_string())],
        ));
    }
    if let Some(d) = description {
        attrs.push(("description".into(), vec![s(d)]));
    }
    if cfg.dialect == Dialect::Ad {
        attrs.push(("sAMAccountName".into(), vec![s(name)]));
    }
    AddReq { dn, attrs }
}

// ---------------------------------------------------------------- Active Directory

/// `userAccountControl` ACCOUNTDISABLE bit.
pub const UAC_ACCOUNTDISABLE: u32 = 0x0002;
/// `userAccountControl` LOCKOUT bit (read-only in practice).
pub const UAC_LOCKOUT: u32 = 0x0010;
/// `userAccountControl` PASSWD_NOTREQD bit.
pub const UAC_PASSWD_NOTREQD: u32 = 0x0020;
/// `userAccountControl` NORMAL_ACCOUNT bit.
pub const UAC_NORMAL_ACCOUNT: u32 = 0x0200;
/// `userAccountControl` DONT_EXPIRE_PASSWORD bit.
pub const UAC_DONT_EXPIRE_PASSWORD: u32 = 0x1_0000;

/// The new `userAccountControl` after disable/enable: only the ACCOUNTDISABLE bit
/// changes. `None` when it already has the requested state.
pub fn uac_toggle(current: u32, disable: bool) -> Option<u32> {
    let next = if disable {
        current | UAC_ACCOUNTDISABLE
    } else {
        current & !UAC_ACCOUNTDISABLE
    };
    (next != current).then_some(next)
}

/// AD disable/enable: read-modify-write of `userAccountControl` (never a blind
/// 514/512). `None` = already in state.
pub fn ad_uac_modify(dn: &str, current: u32, disable: bool) -> Option<ModifyReq> {
    uac_toggle(current, disable).map(|next| ModifyReq {
        dn: dn.to_string(),
        changes: vec![Change::Replace(
            "userAccountControl".into(),
            vec![s(&next.to_string())],
        )],
        intent: Intent::Modify,
    })
}

/// `unicodePwd` value: the password in double quotes, UTF-16LE.
pub fn unicode_pwd(password: &Secret) -> Val {
    format!("\"{}\"", password.expose())
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect()
}

/// Admin password reset: one `replace` of `unicodePwd`.
pub fn ad_password_reset(dn: &str, password: &Secret) -> ModifyReq {
    ModifyReq {
        dn: dn.to_string(),
        changes: vec![Change::Replace(
            "unicodePwd".into(),
            vec![unicode_pwd(password)],
        )],
        intent: Intent::Modify,
    }
}

/// User self-service change: `delete` old + `add` new in the same Modify.
pub fn ad_password_change(dn: &str, old: &Secret, new: &Secret) -> ModifyReq {
    ModifyReq {
        dn: dn.to_string(),
        changes: vec![
            Change::Delete("unicodePwd".into(), vec![unicode_pwd(old)]),
            Change::Add("unicodePwd".into(), vec![unicode_pwd(new)]),
        ],
        intent: Intent::Modify,
    }
}

/// OpenLDAP password set: `replace userPassword` (the server hashes it per
/// `olcPasswordHash` when configured; prefer the Password Modify exop in production).
pub fn openldap_password(dn: &str, password: &Secret) -> ModifyReq {
    ModifyReq {
        dn: dn.to_string(),
        changes: vec![Change::Replace(
            "userPassword".into(),
            vec![s(password.expose())],
        )],
        intent: Intent::Modify,
    }
}

/// The AD create sequence after the Add (which creates the account disabled):
/// with a password, set `unicodePwd` then clear ACCOUNTDISABLE (512 | other bits).
pub fn ad_after_create(dn: &str, password: Option<&Secret>) -> Vec<ModifyReq> {
    match password {
        None => vec![],
        Some(p) => vec![
            ad_password_reset(dn, p),
            ad_uac_modify(dn, UAC_NORMAL_ACCOUNT | UAC_ACCOUNTDISABLE, false)
                .expect("clearing the disable bit is a change"),
        ],
    }
}

/// A ranged attribute name as AD returns it: `member;range=0-1499` or the final
/// `member;range=1500-*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeAttr {
    /// Base attribute (`member`).
    pub attr: String,
    /// First index in this chunk.
    pub start: u32,
    /// Last index, or `None` for `*` (this is the last chunk).
    pub end: Option<u32>,
}

/// Parse `member;range=0-1499`; `None` for names without a range option.
pub fn parse_range_attr(name: &str) -> Option<RangeAttr> {
    let mut parts = name.split(';');
    let attr = parts.next()?.to_string();
    for opt in parts {
        let Some(r) = opt
            .strip_prefix("range=")
            .or_else(|| opt.strip_prefix("Range="))
        else {
            continue;
        };
        let (a, b) = r.split_once('-')?;
        let start = a.parse().ok()?;
        let end = if b == "*" {
            None
        } else {
            Some(b.parse().ok()?)
        };
        return Some(RangeAttr { attr, start, end });
    }
    None
}

/// What one ranged read yielded: values and the attribute to request next (None =
/// done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeStep {
    /// Values in this chunk.
    pub values: Vec<String>,
    /// Next attribute description to request (`member;range=1500-*`).
    pub next: Option<String>,
}

/// Interpret one entry of a ranged read of `attr`. Looks at attribute *names*: a
/// plain `member` with values and no ranged name means the whole set fit; an empty
/// plain `member` next to `member;range=0-1499` must be ignored.
pub fn range_step(attr: &str, entry_attrs: &HashMap<String, Vec<String>>) -> RangeStep {
    for (name, vals) in entry_attrs {
        if let Some(r) = parse_range_attr(name)
            && r.attr.eq_ignore_ascii_case(attr)
        {
            return RangeStep {
                values: vals.clone(),
                next: r.end.map(|e| format!("{attr};range={}-*", e + 1)),
            };
        }
    }
    RangeStep {
        values: entry_attrs
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(attr))
            .flat_map(|(_, v)| v.clone())
            .collect(),
        next: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GroupModel;

    fn ol() -> LdapConfig {
        LdapConfig::openldap(
            "ldap://h",
            "cn=admin,dc=example,dc=com",
            "pw",
            "dc=example,dc=com",
        )
    }

    fn ad() -> LdapConfig {
        LdapConfig::active_directory(
            "ldaps://dc1",
            "CN=svc,DC=corp,DC=example,DC=com",
            "pw",
            "DC=corp,DC=example,DC=com",
            "corp.example.com",
        )
    }

    fn alice() -> Identity {
        Identity::person("E1001")
            .with_user_name("alice")
            .with_name("Alice", "Liddell")
            .with_email("alice@example.com")
            .with_department("Finance")
    }

    #[test]
    fn openldap_create_shape() {
        let r = create_user(&ol(), &alice(), &BTreeMap::new()).unwrap();
        assert_eq!(r.dn, "uid=alice,ou=people,dc=example,dc=com");
        assert_eq!(
            r.get("objectClass"),
            ["top", "person", "organizationalPerson", "inetOrgPerson"]
        );
        assert_eq!(r.get("uid"), ["alice"]);
        assert_eq!(r.get("sn"), ["Liddell"]);
        assert_eq!(r.get("cn"), ["Alice Liddell"]);
        assert_eq!(r.get("employeeNumber"), ["E1001"]);
        assert_eq!(r.get("mail"), ["alice@example.com"]);
        assert_eq!(r.get("departmentNumber"), ["Finance"]);
        assert!(r.get("userAccountControl").is_empty());
        for (_, v) in &r.attrs {
            assert!(!v.is_empty());
        }
    }

    #[test]
    fn secrets_and_backlinks_cannot_be_smuggled_through_attributes() {
        for k in [
            "userPassword",
            "password",
            "memberOf",
            "unicodePwd",
            "objectClass",
        ] {
            let mut m = BTreeMap::new();
            m.insert(k.to_string(), Value::from("x"));
            let e = create_user(&ol(), &alice(), &m).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{k}");
        }
        let mut m = BTreeMap::new();
        m.insert("cn=x)(y".to_string(), Value::from("x"));
        assert!(create_user(&ol(), &alice(), &m).is_err());
    }

    #[test]
    fn hostile_login_stays_inside_its_rdn() {
        let who = Identity::person("x").with_user_name("evil,ou=groups");
        let r = create_user(&ol(), &who, &BTreeMap::new()).unwrap();
        assert_eq!(r.dn, "uid=evil\\,ou\\=groups,ou=people,dc=example,dc=com");
    }

    #[test]
    fn ad_create_shape_and_sequence() {
        let cfg = ad();
        let r = create_user(&cfg, &alice(), &BTreeMap::new()).unwrap();
        assert_eq!(r.dn, "cn=alice,CN=Users,DC=corp,DC=example,DC=com");
        assert_eq!(r.get("objectClass").last().unwrap(), "user");
        assert_eq!(r.get("sAMAccountName"), ["alice"]);
        assert_eq!(r.get("userPrincipalName"), ["alice@corp.example.com"]);
        assert_eq!(r.get("userAccountControl"), ["514"]);
        assert_eq!(r.get("cn"), ["alice"]);
        assert_eq!(r.get("employeeID"), ["E1001"]);
        assert_eq!(r.get("department"), ["Finance"]);
        assert!(r.get("memberOf").is_empty());
        let seq = ad_after_create(&r.dn, Some(&Secret::new("Secr3t!")));
        assert_eq!(seq.len(), 2);
        assert!(matches!(&seq[0].changes[0], Change::Replace(a, _) if a == "unicodePwd"));
        assert_eq!(
            seq[1].changes,
            vec![Change::Replace("userAccountControl".into(), vec![s("512")])]
        );
        assert!(ad_after_create(&r.dn, None).is_empty());
        let long = Identity::person("x").with_user_name("a-very-long-login-name-x");
        assert!(create_user(&cfg, &long, &BTreeMap::new()).is_err());
        for bad in ["a/b", "a[b", "a:b", "a*b", "a?b", "a<b", "a|b"] {
            assert!(check_sam_account_name(bad).is_err(), "{bad}");
        }
        check_sam_account_name("j.smith-2").unwrap();
    }

    #[test]
    fn uac_read_modify_write_keeps_other_bits() {
        assert_eq!(uac_toggle(512, true), Some(514));
        assert_eq!(uac_toggle(514, false), Some(512));
        assert_eq!(uac_toggle(66048, true), Some(66050));
        assert_eq!(uac_toggle(66050, false), Some(66048));
        assert_eq!(uac_toggle(514, true), None);
        assert_eq!(uac_toggle(512, false), None);
        // lockout, passwd-not-required and expiry bits survive both ways
        let odd = UAC_NORMAL_ACCOUNT | UAC_LOCKOUT | UAC_PASSWD_NOTREQD | UAC_DONT_EXPIRE_PASSWORD;
        let d = uac_toggle(odd, true).unwrap();
        assert_eq!(d, odd | UAC_ACCOUNTDISABLE);
        assert_eq!(uac_toggle(d, false), Some(odd));
        let m = ad_uac_modify("CN=a", 66048, true).unwrap();
        assert_eq!(
            m.changes,
            vec![Change::Replace(
                "userAccountControl".into(),
                vec![s("66050")]
            )]
        );
        assert!(ad_uac_modify("CN=a", 66050, true).is_none());
        let mut attrs = HashMap::new();
        attrs.insert("userAccountControl".to_string(), vec!["66050".to_string()]);
        assert!(!is_enabled(&ad(), &attrs));
        attrs.insert("userAccountControl".to_string(), vec!["66048".to_string()]);
        assert!(is_enabled(&ad(), &attrs));
    }

    #[test]
    fn unicode_pwd_is_quoted_utf16le() {
        let v = unicode_pwd(&Secret::new("Secr3t!"));
        assert_eq!(&v[..4], &[0x22, 0x00, 0x53, 0x00]);
        assert_eq!(&v[v.len() - 2..], &[0x22, 0x00]);
        assert_eq!(v.len(), 2 * "\"Secr3t!\"".len());
        let v = unicode_pwd(&Secret::new("Ünï"));
        assert_eq!(v, vec![0x22, 0, 0xdc, 0, 0x6e, 0, 0xef, 0, 0x22, 0]);
        let change = ad_password_change("CN=a", &Secret::new("old"), &Secret::new("new"));
        assert!(
            matches!(&change.changes[0], Change::Delete(a, v) if a == "unicodePwd" && v[0] == unicode_pwd(&Secret::new("old")))
        );
        assert!(matches!(&change.changes[1], Change::Add(a, _) if a == "unicodePwd"));
        // Debug of a request never shows the clear text (it is UTF-16 bytes, and the
        // Secret itself prints ***).
        let dbg = format!("{change:?}");
        assert!(!dbg.contains("new\""), "{dbg}");
    }

    #[test]
    fn ranged_member_retrieval_parsing() {
        assert_eq!(
            parse_range_attr("member;range=0-1499"),
            Some(RangeAttr {
                attr: "member".into(),
                start: 0,
                end: Some(1499)
            })
        );
        assert_eq!(
            parse_range_attr("member;range=3000-*"),
            Some(RangeAttr {
                attr: "member".into(),
                start: 3000,
                end: None
            })
        );
        assert_eq!(parse_range_attr("member"), None);
        assert_eq!(parse_range_attr("member;range=x-1"), None);
        // A big group: plain `member` empty + ranged chunk → follow the range.
        let mut e = HashMap::new();
        e.insert("member".to_string(), vec![]);
        e.insert(
            "member;range=0-1499".to_string(),
            (0..1500).map(|i| format!("CN=u{i}")).collect(),
        );
        let st = range_step("member", &e);
        assert_eq!(st.values.len(), 1500);
        assert_eq!(st.next.as_deref(), Some("member;range=1500-*"));
        // Final chunk.
        let mut e = HashMap::new();
        e.insert(
            "member;range=3000-*".to_string(),
            vec!["CN=last".to_string()],
        );
        let st = range_step("member", &e);
        assert_eq!(st.values, vec!["CN=last".to_string()]);
        assert_eq!(st.next, None);
        // Small group, no range.
        let mut e = HashMap::new();
        e.insert(
            "member".to_string(),
            vec!["CN=a".to_string(), "CN=b".to_string()],
        );
        assert_eq!(range_step("member", &e).values.len(), 2);
        assert_eq!(range_step("member", &e).next, None);
        // A simulated 3-chunk walk collects everything once.
        let total = 3200u32;
        let mut req = "member;range=0-*".to_string();
        let mut got = Vec::new();
        for _ in 0..10 {
            let r = parse_range_attr(&req).unwrap();
            let end = (r.start + 1499).min(total - 1);
            let name = if end == total - 1 {
                format!("member;range={}-*", r.start)
            } else {
                format!("member;range={}-{end}", r.start)
            };
            let mut e = HashMap::new();
            e.insert(name, (r.start..=end).map(|i| i.to_string()).collect());
            let st = range_step("member", &e);
            got.extend(st.values);
            match st.next {
                Some(n) => req = n,
                None => break,
            }
        }
        assert_eq!(got.len(), total as usize);
    }

    #[test]
    fn membership_shapes_by_model() {
        let cfg = ol();
        let g = group_dn(&cfg, "Finance");
        assert_eq!(g, "cn=Finance,ou=groups,dc=example,dc=com");
        assert_eq!(group_dn(&cfg, &g), g);
        assert_eq!(
            group_dn(&cfg, "cn=x,ou=elsewhere,dc=evil"),
            "cn=cn\\=x\\,ou\\=elsewhere\\,dc\\=evil,ou=groups,dc=example,dc=com"
        );
        assert_eq!(entitlement_id(&cfg, &g), "Finance");
        assert_eq!(
            entitlement_id(&cfg, "cn=a,ou=other,dc=x"),
            "cn=a,ou=other,dc=x"
        );
        let m = membership(&g, "member", "uid=a,ou=people", true);
        assert_eq!(m.intent, Intent::AddMember);
        assert!(matches!(&m.changes[0], Change::Add(a, _) if a == "member"));
        let r = revoke_last_member(&g, "member", "uid=a", "cn=iga-placeholder");
        assert_eq!(r.changes.len(), 2);
        let posix = cfg.clone().with_group_model(GroupModel::PosixGroup);
        assert_eq!(member_value(&posix, "uid=a,ou=p", "a"), "a");
        let add = create_group(&posix, "devs", None);
        assert_eq!(add.get("objectClass"), ["top", "posixGroup"]);
        assert!(add.get("memberUid").is_empty());
        assert_eq!(add.get("gidNumber").len(), 1);
        let add = create_group(&cfg, "devs", Some("Developers"));
        assert_eq!(add.get("member"), ["cn=iga-placeholder"]);
        let ad_add = create_group(&ad(), "devs", None);
        assert_eq!(ad_add.get("objectClass"), ["top", "group"]);
        assert!(ad_add.get("member").is_empty());
    }

    #[test]
    fn update_diff_and_disable_shapes() {
        let cfg = ol();
        let mut cur = HashMap::new();
        cur.insert("displayName".to_string(), vec!["A".to_string()]);
        let mut want = BTreeMap::new();
        want.insert("display_name".to_string(), Value::from("A"));
        assert!(update_changes(&cfg, &cur, &want).unwrap().is_empty());
        want.insert("title".to_string(), Value::from("Eng"));
        want.insert("display_name".to_string(), Value::from("B"));
        let ch = update_changes(&cfg, &cur, &want).unwrap();
        assert_eq!(ch.len(), 2);
        want.clear();
        want.insert("uid".to_string(), Value::from("x"));
        assert!(update_changes(&cfg, &cur, &want).is_err());
        let d = openldap_disable(&cfg, "uid=a", true);
        assert_eq!(d.intent, Intent::AddDisableMarker);
        assert_eq!(
            d.changes,
            vec![Change::Add("employeeType".into(), vec![s("disabled")])]
        );
        let e = openldap_disable(&cfg, "uid=a", false);
        assert_eq!(
            e.changes,
            vec![Change::Delete("employeeType".into(), vec![s("disabled")])]
        );
        let pp = cfg.clone().with_disable(DisableMode::PwdAccountLockedTime);
        let d = openldap_disable(&pp, "uid=a", true);
        assert_eq!(
            d.changes,
            vec![Change::Add(
                "pwdAccountLockedTime".into(),
                vec![s("000001010000Z")]
            )]
        );
        assert_eq!(
            openldap_disable(&pp, "uid=a", false).changes,
            vec![Change::Delete("pwdAccountLockedTime".into(), vec![])]
        );
    }
}
