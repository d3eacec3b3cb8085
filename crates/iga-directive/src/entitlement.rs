use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The kind of a grantable thing in a target system.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EntitlementKind {
    /// A group (LDAP group, Entra security group, SCIM Group, Okta group...).
    Group,
    /// A role (application or directory role).
    Role,
    /// A license (Microsoft 365 SKU, Google license...).
    License,
    /// An application role assignment (Entra appRoleAssignment).
    AppRole,
    /// A PIM-eligible directory role or group membership.
    PimEligibleRole,
    /// A PIM-active (time-bound, activated) role.
    PimActiveRole,
    /// An entitlement-management access package.
    AccessPackage,
    /// An administrative unit membership.
    AdministrativeUnit,
    /// Inclusion in a conditional-access policy's scope.
    ConditionalAccessInclusion,
    /// Anything else; the string names the target's own kind (e.g. `racf_group`).
    Generic(String),
}

impl EntitlementKind {
    /// The canonical string form (`group`, `pim_eligible_role`, `generic:racf_group`).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Group => "group",
            Self::Role => "role",
            Self::License => "license",
            Self::AppRole => "app_role",
            Self::PimEligibleRole => "pim_eligible_role",
            Self::PimActiveRole => "pim_active_role",
            Self::AccessPackage => "access_package",
            Self::AdministrativeUnit => "administrative_unit",
            Self::ConditionalAccessInclusion => "conditional_access_inclusion",
            Self::Generic(s) => s,
        }
    }

    /// Parse the canonical form. Unknown names become [`EntitlementKind::Generic`].
    pub fn parse(s: &str) -> Self {
        match s {
            "group" => Self::Group,
            "role" => Self::Role,
            "license" => Self::License,
            "app_role" => Self::AppRole,
            "pim_eligible_role" => Self::PimEligibleRole,
            "pim_active_role" => Self::PimActiveRole,
            "access_package" => Self::AccessPackage,
            "administrative_unit" => Self::AdministrativeUnit,
            "conditional_access_inclusion" => Self::ConditionalAccessInclusion,
            other => Self::Generic(other.strip_prefix("generic:").unwrap_or(other).to_string()),
        }
    }

    /// Every named (non-generic) kind.
    pub const NAMED: [EntitlementKind; 9] = [
        Self::Group,
        Self::Role,
        Self::License,
        Self::AppRole,
        Self::PimEligibleRole,
        Self::PimActiveRole,
        Self::AccessPackage,
        Self::AdministrativeUnit,
        Self::ConditionalAccessInclusion,
    ];
}

impl fmt::Display for EntitlementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Generic(s) => write!(f, "generic:{s}"),
            other => f.write_str(other.as_str()),
        }
    }
}

impl Serialize for EntitlementKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Generic(g) => s.serialize_str(&format!("generic:{g}")),
            other => s.serialize_str(other.as_str()),
        }
    }
}

impl<'de> Deserialize<'de> for EntitlementKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Err(serde::de::Error::custom(
                "entitlement kind must not be empty",
            ));
        }
        Ok(Self::parse(&s))
    }
}

/// A reference to one entitlement in one target system.
///
/// `id` is whatever the target uses to address it (group name or DN, object id, role
/// code); the target system itself is named by the directive or operation carrying it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntitlementRef {
    /// What kind of entitlement.
    pub kind: EntitlementKind,
    /// The target's key for it.
    pub id: String,
    /// A human-readable name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl EntitlementRef {
    /// A reference of any kind.
    pub fn new(kind: EntitlementKind, id: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
            display_name: None,
        }
    }

    /// A group reference.
    pub fn group(id: impl Into<String>) -> Self {
        Self::new(EntitlementKind::Group, id)
    }

    /// A role reference.
    pub fn role(id: impl Into<String>) -> Self {
        Self::new(EntitlementKind::Role, id)
    }

    /// Set the display name.
    pub fn with_display_name(mut self, n: impl Into<String>) -> Self {
        self.display_name = Some(n.into());
        self
    }

    /// A stable textual key: `kind:id` (display name excluded).
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind, self.id)
    }
}

impl fmt::Display for EntitlementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_round_trips_through_strings() {
        for k in EntitlementKind::NAMED {
            assert_eq!(EntitlementKind::parse(k.as_str()), k);
            let j = serde_json::to_string(&k).unwrap();
            assert_eq!(serde_json::from_str::<EntitlementKind>(&j).unwrap(), k);
        }
        let g = EntitlementKind::Generic("racf_group".into());
        let j = serde_json::to_string(&g).unwrap();
        assert_eq!(j, "\"generic:racf_group\"");
        assert_eq!(serde_json::from_str::<EntitlementKind>(&j).unwrap(), g);
        assert_eq!(EntitlementKind::parse("racf_group"), g);
        assert!(serde_json::from_str::<EntitlementKind>("\"\"").is_err());
    }
}
