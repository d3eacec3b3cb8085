//! Configuration: connection, TLS, bind credentials, directory layout, dialect,
//! attribute mapping. `Debug` never shows the bind password.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use iga_adapter::{Error, ErrorKind, Result, Secret};
use serde::Deserialize;

use crate::escape;

/// Which directory server family the target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// OpenLDAP (and other RFC-conforming servers): `inetOrgPerson`, `uid`,
    /// duplicate member = 20, absent member = 16.
    #[default]
    Openldap,
    /// Active Directory: `user` with `sAMAccountName`/`userPrincipalName`,
    /// `userAccountControl`, `unicodePwd`, duplicate member = 68, absent member =
    /// 53 `00000561`, ranged `member` retrieval.
    Ad,
}

/// How group membership is stored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", tag = "model")]
pub enum GroupModel {
    /// `groupOfNames` / `member` (DN). The schema requires at least one member; see
    /// [`LdapConfig::placeholder_member`].
    GroupOfNames,
    /// `groupOfUniqueNames` / `uniqueMember` (DN). Same MUST rule as `groupOfNames`.
    GroupOfUniqueNames,
    /// RFC 2307 `posixGroup` / `memberUid` (the login, not a DN). Empty groups allowed.
    PosixGroup,
    /// Active Directory `group` / `member` (DN). Empty groups allowed.
    AdGroup,
}

impl GroupModel {
    /// The structural object class.
    pub fn object_class(&self) -> &'static str {
        match self {
            Self::GroupOfNames => "groupOfNames",
            Self::GroupOfUniqueNames => "groupOfUniqueNames",
            Self::PosixGroup => "posixGroup",
            Self::AdGroup => "group",
        }
    }

    /// The membership attribute.
    pub fn member_attr(&self) -> &'static str {
        match self {
            Self::GroupOfNames | Self::AdGroup => "member",
            Self::GroupOfUniqueNames => "uniqueMember",
            Self::PosixGroup => "memberUid",
        }
    }

    /// Whether members are DNs (else logins).
    pub fn member_is_dn(&self) -> bool {
        !matches!(self, Self::PosixGroup)
    }

    /// Whether the schema requires at least one member.
    pub fn needs_placeholder(&self) -> bool {
        matches!(self, Self::GroupOfNames | Self::GroupOfUniqueNames)
    }
}

/// How an account is disabled on OpenLDAP (AD always uses the `userAccountControl`
/// ACCOUNTDISABLE bit, read-modify-write).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum DisableMode {
    /// Disabled while `attribute` holds `value` (added on disable, that value deleted
    /// on enable; other values untouched). Default `employeeType: disabled`, which
    /// `inetOrgPerson` allows without schema changes. Point your PAM/IdP filters at it.
    Attribute {
        /// Multi-valued attribute holding the marker.
        attribute: String,
        /// The marker value.
        value: String,
    },
    /// ppolicy: `pwdAccountLockedTime: 000001010000Z` (permanent lock) on disable,
    /// attribute removed on enable. Needs the ppolicy overlay on the server.
    PwdAccountLockedTime,
}

impl Default for DisableMode {
    fn default() -> Self {
        Self::Attribute {
            attribute: "employeeType".into(),
            value: "disabled".into(),
        }
    }
}

/// TLS settings. Verification is **on** by default.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct TlsConfig {
    /// Upgrade `ldap://` connections with StartTLS before binding.
    pub starttls: bool,
    /// PEM file with CA certificates to trust instead of the system store.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification. Never in production; logged as a warning.
    pub danger_skip_verify: bool,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("starttls", &self.starttls)
            .field("ca_file", &self.ca_file)
            .field("danger_skip_verify", &self.danger_skip_verify)
            .finish()
    }
}

fn default_pool() -> usize {
    2
}
fn default_depth() -> usize {
    64
}
fn default_page() -> usize {
    500
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_instance() -> String {
    "ldap".into()
}

/// Everything the LDAP connector needs. Build with [`LdapConfig::openldap`] /
/// [`LdapConfig::active_directory`] and the `with_*` setters, or deserialize (the
/// password field deserializes into a [`Secret`]).
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct LdapConfig {
    /// Instance label (system name in operations; never a secret). Default `ldap`.
    #[serde(default = "default_instance")]
    pub instance: String,
    /// `ldap://host:port` (plain or StartTLS) or `ldaps://host:port`.
    pub url: String,
    /// Bind DN of the service account.
    pub bind_dn: String,
    /// Bind password.
    pub bind_password: Secret,
    /// Server family.
    #[serde(default)]
    pub dialect: Dialect,
    /// TLS options.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Base DN under which accounts are created and searched.
    pub user_base: String,
    /// Base DN under which groups are addressed and searched.
    pub group_base: String,
    /// Object classes of new accounts.
    pub user_object_classes: Vec<String>,
    /// Object class that identifies accounts in searches.
    pub user_filter_class: String,
    /// RDN attribute of account DNs (`uid` on OpenLDAP, `cn` on AD).
    pub user_rdn_attr: String,
    /// Login attribute (`uid`, `sAMAccountName`).
    pub login_attr: String,
    /// Attribute that stores our identity id, for correlation on read/list
    /// (`employeeNumber` on OpenLDAP, `employeeID` on AD).
    pub correlation_attr: String,
    /// Group membership model.
    pub group_model: GroupModel,
    /// RDN attribute of group DNs (`cn`).
    pub group_rdn_attr: String,
    /// For `groupOfNames`/`groupOfUniqueNames`: a DN kept in every group so that
    /// removing the last real member does not violate the MUST `member` rule (65).
    /// Never reported as an assignment. Default `cn=iga-placeholder`.
    pub placeholder_member: Option<String>,
    /// Extra attribute names: our key (`display_name`, `title`, ...) → LDAP attribute.
    /// Defaults map the canonical identity fields; unmapped keys that are valid
    /// attribute names are written as is.
    pub attribute_map: BTreeMap<String, String>,
    /// How OpenLDAP accounts are disabled.
    #[serde(default)]
    pub disable: DisableMode,
    /// AD: `userPrincipalName` suffix (`@corp.example.com`); UPN = login + suffix.
    pub upn_suffix: Option<String>,
    /// Create accounts with `posixAccount` too (needs `uidNumber`, `gidNumber`,
    /// `homeDirectory` in the operation attributes).
    #[serde(default)]
    pub posix_accounts: bool,
    /// Connections in the pool (each binds once).
    #[serde(default = "default_pool")]
    pub pool_size: usize,
    /// Operations in flight at once in `apply_batch` (the declared `batch_max`).
    #[serde(default = "default_depth")]
    pub pipeline_depth: usize,
    /// Simple-paged-results page size for discovery searches.
    #[serde(default = "default_page")]
    pub page_size: usize,
    /// Per-operation timeout (also the connect timeout).
    #[serde(default = "default_timeout", with = "secs")]
    pub timeout: Duration,
}

mod secs {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs_f64(f64::deserialize(d)?))
    }
}

impl fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapConfig")
            .field("instance", &self.instance)
            .field("url", &self.url)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password", &self.bind_password)
            .field("dialect", &self.dialect)
            .field("tls", &self.tls)
            .field("user_base", &self.user_base)
            .field("group_base", &self.group_base)
            .field("group_model", &self.group_model)
            .field("pool_size", &self.pool_size)
            .field("pipeline_depth", &self.pipeline_depth)
            .finish_non_exhaustive()
    }
}

fn default_map(dialect: Dialect) -> BTreeMap<String, String> {
    let pairs: &[(&str, &str)] = match dialect {
        Dialect::Openldap => &[
            ("display_name", "displayName"),
            ("given_name", "givenName"),
            ("family_name", "sn"),
            ("email", "mail"),
            ("department", "departmentNumber"),
            ("title", "title"),
            ("employee_id", "employeeNumber"),
        ],
        Dialect::Ad => &[
            ("display_name", "displayName"),
            ("given_name", "givenName"),
            ("family_name", "sn"),
            ("email", "mail"),
            ("department", "department"),
            ("title", "title"),
            ("employee_id", "employeeNumber"),
        ],
    };
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

impl LdapConfig {
    /// OpenLDAP defaults: accounts `uid=<login>,ou=people,<base>` as
    /// `inetOrgPerson`, groups `cn=<name>,ou=groups,<base>` as `groupOfNames` with a
    /// placeholder member (`cn=iga-placeholder`), identity id in `employeeNumber`,
    /// disable marker `employeeType: disabled`.
    pub fn openldap(
        url: impl Into<String>,
        bind_dn: impl Into<String>,
        password: impl Into<Secret>,
        base_dn: &str,
    ) -> Self {
        let mut attribute_map = default_map(Dialect::Openldap);
        // The identity id is the correlation key; the HR employee number would
        // collide with it in `employeeNumber` (single-valued), so it is not mapped
        // by default on OpenLDAP.
        attribute_map.remove("employee_id");
        Self {
            instance: default_instance(),
            url: url.into(),
            bind_dn: bind_dn.into(),
            bind_password: password.into(),
            dialect: Dialect::Openldap,
            tls: TlsConfig::default(),
            user_base: format!("ou=people,{base_dn}"),
            group_base: format!("ou=groups,{base_dn}"),
            user_object_classes: vec![
                "top".into(),
                "person".into(),
                "organizationalPerson".into(),
                "inetOrgPerson".into(),
            ],
            user_filter_class: "inetOrgPerson".into(),
            user_rdn_attr: "uid".into(),
            login_attr: "uid".into(),
            correlation_attr: "employeeNumber".into(),
            group_model: GroupModel::GroupOfNames,
            group_rdn_attr: "cn".into(),
            placeholder_member: Some("cn=iga-placeholder".into()),
            attribute_map,
            disable: DisableMode::default(),
            upn_suffix: None,
            posix_accounts: false,
            pool_size: default_pool(),
            pipeline_depth: default_depth(),
            page_size: default_page(),
            timeout: default_timeout(),
        }
    }

    /// Active Directory defaults: accounts `CN=<login>,CN=Users,<base>` as `user`
    /// with `sAMAccountName` and `userPrincipalName` (`<login>@<upn_suffix>`),
    /// groups `CN=<name>,<group_base>` (`group`/`member`), identity id in `employeeID`.
    /// Use `ldaps://` or StartTLS: AD refuses `unicodePwd` on a plain connection.
    pub fn active_directory(
        url: impl Into<String>,
        bind_dn: impl Into<String>,
        password: impl Into<Secret>,
        base_dn: &str,
        upn_suffix: &str,
    ) -> Self {
        Self {
            dialect: Dialect::Ad,
            user_base: format!("CN=Users,{base_dn}"),
            group_base: format!("CN=Users,{base_dn}"),
            user_object_classes: vec![
                "top".into(),
                "person".into(),
                "organizationalPerson".into(),
                "user".into(),
            ],
            user_filter_class: "user".into(),
            user_rdn_attr: "cn".into(),
            login_attr: "sAMAccountName".into(),
            correlation_attr: "employeeID".into(),
            group_model: GroupModel::AdGroup,
            placeholder_member: None,
            attribute_map: default_map(Dialect::Ad),
            upn_suffix: Some(upn_suffix.trim_start_matches('@').to_string()),
            ..Self::openldap(url, bind_dn, password, base_dn)
        }
    }

    /// Set the instance label.
    pub fn with_instance(mut self, s: impl Into<String>) -> Self {
        self.instance = s.into();
        self
    }

    /// Set TLS options.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// Set the group model.
    pub fn with_group_model(mut self, m: GroupModel) -> Self {
        self.group_model = m;
        self
    }

    /// Set the pool size.
    pub fn with_pool_size(mut self, n: usize) -> Self {
        self.pool_size = n;
        self
    }

    /// Set the pipeline depth (= `batch_max`).
    pub fn with_pipeline_depth(mut self, n: usize) -> Self {
        self.pipeline_depth = n;
        self
    }

    /// Set the OpenLDAP disable mode.
    pub fn with_disable(mut self, d: DisableMode) -> Self {
        self.disable = d;
        self
    }

    /// Set the per-operation timeout.
    pub fn with_timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Map one of our attribute keys to an LDAP attribute.
    pub fn map_attribute(mut self, key: impl Into<String>, ldap_attr: impl Into<String>) -> Self {
        self.attribute_map.insert(key.into(), ldap_attr.into());
        self
    }

    /// The LDAP attribute for one of our keys (mapped, or the key itself when it is a
    /// valid attribute name).
    pub fn ldap_attr<'a>(&'a self, key: &'a str) -> Option<&'a str> {
        match self.attribute_map.get(key) {
            Some(a) => Some(a.as_str()),
            None if escape::is_attribute_name(key) && !key.contains(';') => Some(key),
            None => None,
        }
    }

    /// Check the configuration without I/O.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::new(ErrorKind::ConfigInvalid, m).with_connector("ldap"));
        let scheme_ok = self.url.starts_with("ldap://") || self.url.starts_with("ldaps://");
        if !scheme_ok {
            return bad("url must start with ldap:// or ldaps://".into());
        }
        if self.url.starts_with("ldaps://") && self.tls.starttls {
            return bad("StartTLS cannot be combined with ldaps://".into());
        }
        if self.url.contains('@') {
            return bad("url must not carry credentials; use bind_dn/bind_password".into());
        }
        for (what, a) in [
            ("user_rdn_attr", &self.user_rdn_attr),
            ("login_attr", &self.login_attr),
            ("correlation_attr", &self.correlation_attr),
            ("group_rdn_attr", &self.group_rdn_attr),
            ("user_filter_class", &self.user_filter_class),
        ] {
            if !escape::is_attribute_name(a) {
                return bad(format!("{what} `{a}` is not an attribute name"));
            }
        }
        for (k, a) in &self.attribute_map {
            if !escape::is_attribute_name(a) {
                return bad(format!("attribute_map[{k}] `{a}` is not an attribute name"));
            }
        }
        if self.user_base.is_empty() || self.group_base.is_empty() {
            return bad("user_base and group_base are required".into());
        }
        if self.pool_size == 0 || self.pipeline_depth == 0 || self.page_size == 0 {
            return bad("pool_size, pipeline_depth and page_size must be at least 1".into());
        }
        if self.dialect == Dialect::Ad && self.upn_suffix.is_none() {
            return bad("the AD dialect needs upn_suffix".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let c = LdapConfig::openldap(
            "ldap://127.0.0.1:1",
            "cn=admin,dc=x",
            "pw-canary-31337",
            "dc=x",
        );
        let s = format!("{c:?}");
        assert!(!s.contains("pw-canary-31337"), "{s}");
        assert!(s.contains("***"));
        c.validate().unwrap();
    }

    #[test]
    fn validation_rejects_bad_settings() {
        let base = LdapConfig::openldap("ldap://h:389", "cn=a", "p", "dc=x");
        let mut c = base.clone();
        c.url = "http://h".into();
        assert_eq!(c.validate().unwrap_err().kind(), ErrorKind::ConfigInvalid);
        let mut c = base.clone();
        c.login_attr = "uid)(x".into();
        assert!(c.validate().is_err());
        let c = base.clone().with_tls(TlsConfig {
            starttls: true,
            ..Default::default()
        });
        c.validate().unwrap();
        let mut c = base.clone();
        c.url = "ldaps://h".into();
        c.tls.starttls = true;
        assert!(c.validate().is_err());
        let mut c = base;
        c.url = "ldap://user:pw@h".into();
        let e = c.validate().unwrap_err();
        assert!(!e.to_string().contains("pw@"), "{e}");
    }

    #[test]
    fn tls_verification_is_on_by_default_and_config_deserializes() {
        let c: LdapConfig = serde_json::from_value(serde_json::json!({
            "url": "ldaps://dc1.corp:636",
            "bind_dn": "CN=svc,DC=corp",
            "bind_password": "pw-canary-2",
            "dialect": "ad",
            "user_base": "CN=Users,DC=corp",
            "group_base": "OU=Groups,DC=corp",
            "user_object_classes": ["top", "person", "organizationalPerson", "user"],
            "user_filter_class": "user",
            "user_rdn_attr": "cn",
            "login_attr": "sAMAccountName",
            "correlation_attr": "employeeID",
            "group_model": {"model": "ad_group"},
            "group_rdn_attr": "cn",
            "placeholder_member": null,
            "attribute_map": {"display_name": "displayName"},
            "upn_suffix": "corp.example.com",
            "timeout": 5
        }))
        .unwrap();
        assert!(!c.tls.danger_skip_verify);
        assert!(!c.tls.starttls);
        assert_eq!(c.pool_size, 2);
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert!(!format!("{c:?}").contains("pw-canary-2"));
        c.validate().unwrap();
    }
}
