//! How an [`EntitlementRef`] names a Graph object, per [`EntitlementKind`].

use iga_adapter::{Error, ErrorKind, Result};
use iga_directive::{EntitlementKind, EntitlementRef};

use crate::KIND;

/// Generic kind name for group ownership (`generic:group_owner`).
pub const GROUP_OWNER: &str = "group_owner";

/// A conditional-access policy user list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaList {
    /// `conditions.users.includeUsers`.
    IncludeUsers,
    /// `conditions.users.excludeUsers`.
    ExcludeUsers,
    /// `conditions.users.includeGroups`.
    IncludeGroups,
    /// `conditions.users.excludeGroups`.
    ExcludeGroups,
}

impl CaList {
    /// The Graph property name.
    pub fn property(self) -> &'static str {
        match self {
            Self::IncludeUsers => "includeUsers",
            Self::ExcludeUsers => "excludeUsers",
            Self::IncludeGroups => "includeGroups",
            Self::ExcludeGroups => "excludeGroups",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "includeUsers" => Self::IncludeUsers,
            "excludeUsers" => Self::ExcludeUsers,
            "includeGroups" => Self::IncludeGroups,
            "excludeGroups" => Self::ExcludeGroups,
            _ => return None,
        })
    }

    /// Whether the list holds groups (the member is the operation's native id).
    pub fn holds_groups(self) -> bool {
        matches!(self, Self::IncludeGroups | Self::ExcludeGroups)
    }
}

/// PIM for groups: member or owner access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PimScope {
    /// A directory role at a directory scope (`/` or `/administrativeUnits/{id}`).
    Role {
        /// `roleDefinitionId`.
        role_definition_id: String,
        /// `directoryScopeId`.
        directory_scope_id: String,
    },
    /// A group's membership or ownership.
    Group {
        /// Group id (or display name, resolved).
        group: String,
        /// `member` or `owner`.
        access_id: String,
    },
}

/// What an entitlement reference points at.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// Group membership (`group`): id = group object id or display name.
    Group(String),
    /// Group ownership (`generic:group_owner`): id = group object id or name.
    GroupOwner(String),
    /// Administrative-unit membership (`administrative_unit`): id = AU object id.
    AdministrativeUnit(String),
    /// App role assignment (`app_role`): id = `{resourceServicePrincipalId}/{appRoleId}`.
    AppRole {
        /// The resource service principal.
        resource_id: String,
        /// The app role (all zeros = default access).
        app_role_id: String,
    },
    /// Permanent directory role assignment (`role`): id = `{roleDefinitionId}` or
    /// `{roleDefinitionId}@{directoryScopeId}`.
    DirectoryRole {
        /// `roleDefinitionId`.
        role_definition_id: String,
        /// `directoryScopeId` (default `/`).
        directory_scope_id: String,
    },
    /// PIM (`pim_eligible_role` / `pim_active_role`): id = a role as for
    /// `DirectoryRole`, or `group:{groupId}:{member|owner}` for PIM for Groups.
    Pim {
        /// Eligibility (true) or active assignment (false).
        eligible: bool,
        /// What is made eligible / active.
        scope: PimScope,
    },
    /// Access package (`access_package`): id = `{accessPackageId}/{assignmentPolicyId}`
    /// (the policy is needed to grant only).
    AccessPackage {
        /// `accessPackageId`.
        package_id: String,
        /// `assignmentPolicyId`.
        policy_id: Option<String>,
    },
    /// License (`license`): id = `{skuId}` or `{skuId}:{disabledPlanId},{…}`.
    License {
        /// `skuId`.
        sku_id: String,
        /// `disabledPlans`.
        disabled_plans: Vec<String>,
    },
    /// Conditional-access policy scope (`conditional_access_inclusion`): id =
    /// `{policyId}/{includeUsers|excludeUsers|includeGroups|excludeGroups}`.
    ConditionalAccess {
        /// The policy id.
        policy_id: String,
        /// The list.
        list: CaList,
    },
}

fn bad(e: &EntitlementRef, why: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("entitlement `{e}`: {why}"))
        .with_connector(KIND)
        .set_permanent()
}

fn nonempty(s: &str) -> bool {
    !s.trim().is_empty()
}

/// The entitlement kinds this connector grants and revokes.
pub fn supported_kinds() -> Vec<EntitlementKind> {
    vec![
        EntitlementKind::Group,
        EntitlementKind::Generic(GROUP_OWNER.to_string()),
        EntitlementKind::AdministrativeUnit,
        EntitlementKind::AppRole,
        EntitlementKind::Role,
        EntitlementKind::PimEligibleRole,
        EntitlementKind::PimActiveRole,
        EntitlementKind::AccessPackage,
        EntitlementKind::License,
        EntitlementKind::ConditionalAccessInclusion,
    ]
}

fn role(e: &EntitlementRef) -> Result<(String, String)> {
    let (r, scope) = match e.id.split_once('@') {
        Some((r, s)) => (r, s),
        None => (e.id.as_str(), "/"),
    };
    if !nonempty(r) || !scope.starts_with('/') {
        return Err(bad(
            e,
            "expected {roleDefinitionId} or {roleDefinitionId}@{directoryScopeId starting with /}",
        ));
    }
    Ok((r.to_string(), scope.to_string()))
}

impl Target {
    /// Parse an entitlement reference; malformed ids are `InvalidInput` naming the
    /// entitlement and the expected form.
    pub fn parse(e: &EntitlementRef) -> Result<Self> {
        let id = e.id.trim();
        if id.is_empty() {
            return Err(bad(e, "empty id"));
        }
        Ok(match &e.kind {
            EntitlementKind::Group => Self::Group(id.to_string()),
            EntitlementKind::Generic(g) if g == GROUP_OWNER => Self::GroupOwner(id.to_string()),
            EntitlementKind::AdministrativeUnit => Self::AdministrativeUnit(id.to_string()),
            EntitlementKind::AppRole => match id.split_once('/') {
                Some((sp, r)) if nonempty(sp) && nonempty(r) => Self::AppRole {
                    resource_id: sp.to_string(),
                    app_role_id: r.to_string(),
                },
                _ => return Err(bad(e, "expected {resourceServicePrincipalId}/{appRoleId}")),
            },
            EntitlementKind::Role => {
                let (r, s) = role(e)?;
                Self::DirectoryRole {
                    role_definition_id: r,
                    directory_scope_id: s,
                }
            }
            EntitlementKind::PimEligibleRole | EntitlementKind::PimActiveRole => {
                let eligible = e.kind == EntitlementKind::PimEligibleRole;
                let scope = if let Some(rest) = id.strip_prefix("group:") {
                    match rest.rsplit_once(':') {
                        Some((g, a)) if nonempty(g) && (a == "member" || a == "owner") => {
                            PimScope::Group {
                                group: g.to_string(),
                                access_id: a.to_string(),
                            }
                        }
                        _ => {
                            return Err(bad(
                                e,
                                "expected group:{groupId}:member or group:{groupId}:owner",
                            ));
                        }
                    }
                } else {
                    let (r, s) = role(e)?;
                    PimScope::Role {
                        role_definition_id: r,
                        directory_scope_id: s,
                    }
                };
                Self::Pim { eligible, scope }
            }
            EntitlementKind::AccessPackage => {
                let (p, pol) = match id.split_once('/') {
                    Some((p, pol)) => (p, Some(pol.to_string()).filter(|s| nonempty(s))),
                    None => (id, None),
                };
                if !nonempty(p) {
                    return Err(bad(e, "expected {accessPackageId}/{assignmentPolicyId}"));
                }
                Self::AccessPackage {
                    package_id: p.to_string(),
                    policy_id: pol,
                }
            }
            EntitlementKind::License => {
                let (sku, plans) = match id.split_once(':') {
                    Some((s, p)) => (
                        s,
                        p.split(',')
                            .map(str::trim)
                            .filter(|x| !x.is_empty())
                            .map(str::to_string)
                            .collect(),
                    ),
                    None => (id, Vec::new()),
                };
                if uuid::Uuid::parse_str(sku).is_err() {
                    return Err(bad(
                        e,
                        "skuId must be a GUID ({skuId} or {skuId}:{plan},{plan})",
                    ));
                }
                Self::License {
                    sku_id: sku.to_string(),
                    disabled_plans: plans,
                }
            }
            EntitlementKind::ConditionalAccessInclusion => {
                match id
                    .split_once('/')
                    .and_then(|(p, l)| Some((p, CaList::parse(l)?)))
                {
                    Some((p, list)) if nonempty(p) => Self::ConditionalAccess {
                        policy_id: p.to_string(),
                        list,
                    },
                    _ => {
                        return Err(bad(
                            e,
                            "expected {policyId}/{includeUsers|excludeUsers|includeGroups|excludeGroups}",
                        ));
                    }
                }
            }
            other => {
                return Err(Error::unsupported(format!(
                    "entitlement kind {other} is not supported by the Entra connector"
                ))
                .with_connector(KIND));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(kind: EntitlementKind, id: &str) -> EntitlementRef {
        EntitlementRef::new(kind, id)
    }

    #[test]
    fn every_kind_parses_and_bad_ids_name_the_form() {
        use EntitlementKind as K;
        assert_eq!(
            Target::parse(&e(K::Group, "g1")).unwrap(),
            Target::Group("g1".into())
        );
        assert!(matches!(
            Target::parse(&e(K::AppRole, "sp1/r1")).unwrap(),
            Target::AppRole { .. }
        ));
        assert_eq!(
            Target::parse(&e(K::Role, "rd1@/administrativeUnits/au1")).unwrap(),
            Target::DirectoryRole {
                role_definition_id: "rd1".into(),
                directory_scope_id: "/administrativeUnits/au1".into()
            }
        );
        assert_eq!(
            Target::parse(&e(K::PimEligibleRole, "group:g1:owner")).unwrap(),
            Target::Pim {
                eligible: true,
                scope: PimScope::Group {
                    group: "g1".into(),
                    access_id: "owner".into()
                }
            }
        );
        let sku = "6fd2c87f-b296-42f0-b197-1e91e994b900";
        assert_eq!(
            Target::parse(&e(K::License, &format!("{sku}:p1,p2"))).unwrap(),
            Target::License {
                sku_id: sku.into(),
                disabled_plans: vec!["p1".into(), "p2".into()]
            }
        );
        assert!(matches!(
            Target::parse(&e(K::ConditionalAccessInclusion, "pol/excludeGroups")).unwrap(),
            Target::ConditionalAccess {
                list: CaList::ExcludeGroups,
                ..
            }
        ));
        for (k, id, needle) in [
            (
                K::AppRole,
                "sp-only",
                "{resourceServicePrincipalId}/{appRoleId}",
            ),
            (K::PimActiveRole, "group:g1:admin", "group:{groupId}:member"),
            (K::Role, "rd@scope", "directoryScopeId"),
            (K::License, "not-a-guid", "GUID"),
            (
                K::ConditionalAccessInclusion,
                "pol/includeApps",
                "includeUsers",
            ),
            (K::Group, "  ", "empty id"),
        ] {
            let err = Target::parse(&e(k.clone(), id)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{k} {id}");
            assert!(err.message().contains(needle), "{err}");
        }
        let err = Target::parse(&e(K::Generic("racf".into()), "x")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
    }
}
