//! Grant and revoke per entitlement kind, and the PIM request API.

use http::Method;
use iga_adapter::{Error, ErrorKind, NoOpReason, Outcome, Result};
use iga_directive::{Operation, OperationKind};
use serde_json::{Value, json};

use crate::KIND;
use crate::adapter::{EntraAdapter, path, str_of};
use crate::commands::{ASSIGNMENT_ACTIONS, ELIGIBILITY_ACTIONS, PIM_SURFACES, action_removes};
use crate::error::Direction;
use crate::target::{CaList, PimScope, Target};

/// Which PIM request collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PimSurface {
    /// `roleEligibilityScheduleRequests`.
    RoleEligibility,
    /// `roleAssignmentScheduleRequests`.
    RoleAssignment,
    /// PIM for Groups `eligibilityScheduleRequests`.
    GroupEligibility,
    /// PIM for Groups `assignmentScheduleRequests`.
    GroupAssignment,
}

impl PimSurface {
    /// Every surface.
    pub const ALL: [PimSurface; 4] = [
        Self::RoleEligibility,
        Self::RoleAssignment,
        Self::GroupEligibility,
        Self::GroupAssignment,
    ];

    fn index(self) -> usize {
        match self {
            Self::RoleEligibility => 0,
            Self::RoleAssignment => 1,
            Self::GroupEligibility => 2,
            Self::GroupAssignment => 3,
        }
    }

    /// Command-name prefix, e.g. `pim.role.assignment`.
    pub fn prefix(self) -> &'static str {
        PIM_SURFACES[self.index()].0
    }

    /// The actions this surface accepts.
    pub fn actions(self) -> &'static [&'static str] {
        match self {
            Self::RoleEligibility | Self::GroupEligibility => &ELIGIBILITY_ACTIONS,
            _ => &ASSIGNMENT_ACTIONS,
        }
    }

    /// Whether the surface is about groups.
    pub fn is_group(self) -> bool {
        matches!(self, Self::GroupEligibility | Self::GroupAssignment)
    }

    fn of(eligible: bool, scope: &PimScope) -> Self {
        match (eligible, scope) {
            (true, PimScope::Role { .. }) => Self::RoleEligibility,
            (false, PimScope::Role { .. }) => Self::RoleAssignment,
            (true, PimScope::Group { .. }) => Self::GroupEligibility,
            (false, PimScope::Group { .. }) => Self::GroupAssignment,
        }
    }
}

/// `scheduleInfo.expiration`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PimExpiration {
    /// `noExpiration`.
    NoExpiration,
    /// `afterDuration` with an ISO 8601 duration (`PT8H`).
    AfterDuration(String),
    /// `afterDateTime` with an RFC 3339 end.
    AfterDateTime(String),
}

/// One PIM schedule request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PimRequest {
    /// Where to send it.
    pub surface: PimSurface,
    /// `adminAssign`, `adminRemove`, `selfActivate`, … (must suit the surface).
    pub action: String,
    /// The principal's object id.
    pub principal_id: String,
    /// Role or group target (group ids must be object ids here).
    pub scope: PimScope,
    /// `justification`.
    pub justification: String,
    /// Expiration (ignored by removing actions).
    pub expiration: PimExpiration,
    /// `ticketInfo` (number, system).
    pub ticket: Option<(String, String)>,
}

impl PimRequest {
    /// A request with no expiration, no ticket.
    pub fn new(
        surface: PimSurface,
        action: impl Into<String>,
        principal_id: impl Into<String>,
        scope: PimScope,
        justification: impl Into<String>,
    ) -> Self {
        Self {
            surface,
            action: action.into(),
            principal_id: principal_id.into(),
            scope,
            justification: justification.into(),
            expiration: PimExpiration::NoExpiration,
            ticket: None,
        }
    }
}

/// The service's answer to a PIM request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PimResponse {
    /// The request id (None when Graph answered "already in state").
    pub request_id: Option<String>,
    /// `status` (`Provisioned`, `Granted`, `PendingApproval`, …).
    pub status: String,
    /// What it means for the operation.
    pub outcome: Outcome,
}

fn not_found(what: String) -> Error {
    Error::not_found(what).with_connector(KIND).set_permanent()
}

/// Add `member` to a container through a `$ref` POST (`{"@odata.id": …}`).
pub(crate) async fn ref_add(
    a: &EntraAdapter,
    cmd: &str,
    container: &str,
    member: &str,
    collection: &str,
) -> Result<Outcome> {
    let key = if cmd.starts_with("au.") {
        "auId"
    } else {
        "groupId"
    };
    let body = json!({"@odata.id": a.client().object_ref(collection, member)});
    let r = a
        .client()
        .send(
            Method::POST,
            &path(cmd, &[(key, container)])?,
            Some(&body),
            &[],
        )
        .await?;
    if r.ok() {
        return Ok(Outcome::applied());
    }
    let g = r.error();
    match g.no_op(Direction::Add) {
        Some(reason) => Ok(Outcome::no_op(reason)),
        None => Err(g.to_error()),
    }
}

/// The command that checks a `$ref` container exists, for a membership command.
pub(crate) fn container_path(cmd: &str, container: &str) -> Result<String> {
    if cmd.starts_with("au.") {
        path("au.get", &[("auId", container)])
    } else {
        path("group.get", &[("groupId", container)])
    }
}

async fn ref_remove(a: &EntraAdapter, cmd: &str, container: &str, member: &str) -> Result<Outcome> {
    let key = if cmd.starts_with("au.") {
        "auId"
    } else {
        "groupId"
    };
    let r = a
        .client()
        .send(
            Method::DELETE,
            &path(cmd, &[(key, container), ("id", member)])?,
            None,
            &[],
        )
        .await?;
    if r.ok() {
        return Ok(Outcome::applied());
    }
    let g = r.error();
    match g.no_op(Direction::Remove) {
        Some(reason) if a.container_exists(&container_path(cmd, container)?).await? => {
            Ok(Outcome::no_op(reason))
        }
        Some(_) => Err(not_found(format!("`{container}` does not exist"))),
        None => Err(g.to_error()),
    }
}

fn attr<'a>(op: &'a Operation, k: &str) -> Option<&'a str> {
    op.attributes.get(k).and_then(Value::as_str)
}

/// Grant or revoke `t` for the operation's account.
pub(crate) async fn apply(a: &EntraAdapter, op: &Operation, t: &Target) -> Result<Outcome> {
    let grant = op.kind == OperationKind::Grant;
    // The member: CA group lists take a group's object id from the native id.
    let uid = match t {
        Target::ConditionalAccess { list, .. } if list.holds_groups() => {
            Some(op.native_id.clone().ok_or_else(|| {
                Error::invalid_input(format!(
                    "{}: a conditional-access group list needs the group's object id as the operation's native id",
                    op.id
                ))
                .with_connector(KIND)
            })?)
        }
        _ => a.user_id(op).await?,
    };
    let Some(uid) = uid else {
        return if grant {
            Err(not_found(format!(
                "user `{}` does not exist",
                op.identity.id
            )))
        } else {
            Ok(Outcome::no_op(NoOpReason::AlreadyAbsent))
        };
    };
    match t {
        Target::Group(g) | Target::GroupOwner(g) => {
            let gid = a.group_id(g).await?;
            let owner = matches!(t, Target::GroupOwner(_));
            if grant {
                let cmd = if owner {
                    "group.add_owner"
                } else {
                    "group.add_member"
                };
                ref_add(a, cmd, &gid, &uid, "directoryObjects").await
            } else {
                let cmd = if owner {
                    "group.remove_owner"
                } else {
                    "group.remove_member"
                };
                ref_remove(a, cmd, &gid, &uid).await
            }
        }
        Target::AdministrativeUnit(au) => {
            if grant {
                ref_add(a, "au.add_member", au, &uid, "users").await
            } else {
                ref_remove(a, "au.remove_member", au, &uid).await
            }
        }
        Target::AppRole {
            resource_id,
            app_role_id,
        } => app_role(a, grant, &uid, resource_id, app_role_id).await,
        Target::DirectoryRole {
            role_definition_id,
            directory_scope_id,
        } => directory_role(a, grant, &uid, role_definition_id, directory_scope_id).await,
        Target::Pim { eligible, scope } => {
            let surface = PimSurface::of(*eligible, scope);
            let scope = match scope {
                PimScope::Group { group, access_id } => PimScope::Group {
                    group: a.group_id(group).await?,
                    access_id: access_id.clone(),
                },
                s => s.clone(),
            };
            let action = match attr(op, "pim_action") {
                Some(x) => x.to_string(),
                None if grant => "adminAssign".to_string(),
                None => "adminRemove".to_string(),
            };
            if action_removes(&action) == grant {
                return Err(Error::invalid_input(format!(
                    "pim_action `{action}` does not fit a {}",
                    op.kind
                ))
                .with_connector(KIND));
            }
            let expiration = match (attr(op, "pim_duration"), attr(op, "pim_end")) {
                (Some(d), _) => PimExpiration::AfterDuration(d.to_string()),
                (None, Some(e)) => PimExpiration::AfterDateTime(e.to_string()),
                (None, None) if action == "selfActivate" => {
                    PimExpiration::AfterDuration("PT8H".to_string())
                }
                _ => PimExpiration::NoExpiration,
            };
            let mut req = PimRequest::new(
                surface,
                action,
                uid,
                scope,
                attr(op, "justification")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("iga-connectors operation {}", op.id)),
            );
            req.expiration = expiration;
            if let Some(n) = attr(op, "ticket_number") {
                req.ticket = Some((
                    n.to_string(),
                    attr(op, "ticket_system").unwrap_or("iga").to_string(),
                ));
            }
            Ok(a.pim_request(&req).await?.outcome)
        }
        Target::AccessPackage {
            package_id,
            policy_id,
        } => access_package(a, grant, &uid, package_id, policy_id.as_deref()).await,
        Target::License {
            sku_id,
            disabled_plans,
        } => license(a, grant, &uid, sku_id, disabled_plans).await,
        Target::ConditionalAccess { policy_id, list } => {
            conditional_access(a, grant, &uid, policy_id, *list).await
        }
    }
}

async fn app_role(
    a: &EntraAdapter,
    grant: bool,
    uid: &str,
    resource: &str,
    role: &str,
) -> Result<Outcome> {
    if grant {
        let body = json!({"principalId": uid, "resourceId": resource, "appRoleId": role});
        let r = a
            .client()
            .send(
                Method::POST,
                &path("app_role.assign", &[("resourceId", resource)])?,
                Some(&body),
                &[],
            )
            .await?;
        if r.ok() {
            return Ok(Outcome::applied());
        }
        let g = r.error();
        return match g.no_op(Direction::Add) {
            Some(reason) => Ok(Outcome::no_op(reason)),
            None => Err(g.to_error()),
        };
    }
    let held = a
        .list_collection("app_role.user_assignments", &[("id", uid)])
        .await?;
    let Some(asg) = held.iter().find(|x| {
        str_of(x, "resourceId") == Some(resource) && str_of(x, "appRoleId") == Some(role)
    }) else {
        return Ok(Outcome::no_op(NoOpReason::AlreadyAbsent));
    };
    let aid = str_of(asg, "id").unwrap_or_default();
    let r = a
        .client()
        .send(
            Method::DELETE,
            &path(
                "app_role.remove",
                &[("resourceId", resource), ("assignmentId", aid)],
            )?,
            None,
            &[],
        )
        .await?;
    if r.status == 404 {
        return Ok(Outcome::no_op(NoOpReason::AlreadyAbsent));
    }
    r.into_result()?;
    Ok(Outcome::applied())
}

async fn directory_role(
    a: &EntraAdapter,
    grant: bool,
    uid: &str,
    role: &str,
    scope: &str,
) -> Result<Outcome> {
    let found = a
        .list_collection(
            "role.find_assignment",
            &[("principalId", uid), ("roleDefinitionId", role)],
        )
        .await?;
    let existing = found
        .iter()
        .find(|x| str_of(x, "directoryScopeId").unwrap_or("/") == scope);
    match (grant, existing) {
        (true, Some(_)) => Ok(Outcome::no_op(NoOpReason::AlreadyGranted)),
        (false, None) => Ok(Outcome::no_op(NoOpReason::AlreadyAbsent)),
        (true, None) => {
            let body =
                json!({"principalId": uid, "roleDefinitionId": role, "directoryScopeId": scope});
            let r = a
                .client()
                .send(Method::POST, &path("role.assign", &[])?, Some(&body), &[])
                .await?;
            if r.ok() {
                return Ok(Outcome::applied());
            }
            let g = r.error();
            match g.no_op(Direction::Add) {
                Some(reason) => Ok(Outcome::no_op(reason)),
                None => Err(g.to_error()),
            }
        }
        (false, Some(x)) => {
            let id = str_of(x, "id").unwrap_or_default();
            let r = a
                .client()
                .send(
                    Method::DELETE,
                    &path("role.remove", &[("assignmentId", id)])?,
                    None,
                    &[],
                )
                .await?;
            if r.status == 404 {
                return Ok(Outcome::no_op(NoOpReason::AlreadyAbsent));
            }
            r.into_result()?;
            Ok(Outcome::applied())
        }
    }
}

/// Request states of an access-package assignment request that are still open.
pub(crate) const OPEN_REQUEST_STATES: [&str; 4] =
    ["submitted", "pendingApproval", "delivering", "scheduled"];

/// The state of an access-package request (`state`, or `requestState` in older
/// examples).
pub(crate) fn request_state(v: &Value) -> &str {
    str_of(v, "state")
        .or_else(|| str_of(v, "requestState"))
        .unwrap_or_default()
}

fn request_outcome(req: &Value) -> Result<Outcome> {
    let id = str_of(req, "id").unwrap_or_default();
    match request_state(req) {
        "delivered" => Ok(Outcome::applied()),
        s if OPEN_REQUEST_STATES.contains(&s) || s.is_empty() => Ok(Outcome::Pending {
            external_ref: format!("accessPackageAssignmentRequest:{id}"),
        }),
        "denied" => Err(Error::new(
            ErrorKind::PermissionDenied,
            format!("access package request {id} was denied"),
        )
        .with_connector(KIND)
        .set_permanent()),
        s => Err(Error::new(
            ErrorKind::Unexpected,
            format!("access package request {id} ended in state {s}"),
        )
        .with_connector(KIND)
        .with_context(
            "status",
            str_of(req, "status")
                .or_else(|| str_of(req, "requestStatus"))
                .unwrap_or_default(),
        )
        .set_permanent()),
    }
}

async fn access_package(
    a: &EntraAdapter,
    grant: bool,
    uid: &str,
    package: &str,
    policy: Option<&str>,
) -> Result<Outcome> {
    let p = [("targetId", uid), ("accessPackageId", package)];
    // Requests first: one delivered between the two reads shows up as an assignment.
    let requests = a
        .list_collection("access_package.find_requests", &p)
        .await?;
    let assignments = a
        .list_collection("access_package.find_assignments", &p)
        .await?;
    let delivered = assignments.iter().find(|x| {
        str_of(x, "state")
            .unwrap_or("delivered")
            .eq_ignore_ascii_case("delivered")
    });
    let wanted_type = if grant { "adminAdd" } else { "adminRemove" };
    let open = requests.iter().find(|r| {
        str_of(r, "requestType") == Some(wanted_type)
            && OPEN_REQUEST_STATES.contains(&request_state(r))
    });
    match (grant, delivered) {
        (true, Some(_)) => return Ok(Outcome::no_op(NoOpReason::AlreadyGranted)),
        (false, None) if open.is_none() => return Ok(Outcome::no_op(NoOpReason::AlreadyAbsent)),
        _ => {}
    }
    if let Some(r) = open {
        return request_outcome(r);
    }
    let body = if grant {
        let policy = policy.ok_or_else(|| {
            Error::invalid_input(format!(
                "access package `{package}`: granting needs {{accessPackageId}}/{{assignmentPolicyId}}"
            ))
            .with_connector(KIND)
        })?;
        json!({"requestType": "adminAdd", "assignment": {
            "targetId": uid, "assignmentPolicyId": policy, "accessPackageId": package}})
    } else {
        let aid = delivered.and_then(|d| str_of(d, "id")).unwrap_or_default();
        json!({"requestType": "adminRemove", "assignment": {"id": aid}})
    };
    let name = if grant {
        "access_package.request_add"
    } else {
        "access_package.request_remove"
    };
    let req = a
        .client()
        .call(Method::POST, &path(name, &[])?, Some(&body))
        .await?
        .unwrap_or_default();
    request_outcome(&req)
}

async fn license(
    a: &EntraAdapter,
    grant: bool,
    uid: &str,
    sku: &str,
    disabled: &[String],
) -> Result<Outcome> {
    let u = a
        .client()
        .call(Method::GET, &path("license.read", &[("id", uid)])?, None)
        .await?
        .unwrap_or_default();
    let held = u
        .get("assignedLicenses")
        .and_then(Value::as_array)
        .and_then(|l| {
            l.iter()
                .find(|x| str_of(x, "skuId").is_some_and(|s| s.eq_ignore_ascii_case(sku)))
        })
        .cloned();
    let mut want: Vec<String> = disabled.to_vec();
    want.sort();
    let body = if grant {
        if let Some(h) = &held {
            let mut have: Vec<String> = h
                .get("disabledPlans")
                .and_then(Value::as_array)
                .map(|p| {
                    p.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            have.sort();
            if have == want {
                return Ok(Outcome::no_op(NoOpReason::AlreadyGranted));
            }
        }
        json!({"addLicenses": [{"skuId": sku, "disabledPlans": disabled}], "removeLicenses": []})
    } else {
        if held.is_none() {
            return Ok(Outcome::no_op(NoOpReason::AlreadyAbsent));
        }
        json!({"addLicenses": [], "removeLicenses": [sku]})
    };
    let name = match (grant, disabled.is_empty()) {
        (false, _) => "license.remove",
        (true, true) => "license.add",
        (true, false) => "license.add_with_disabled_plans",
    };
    a.client()
        .call(Method::POST, &path(name, &[("id", uid)])?, Some(&body))
        .await?;
    Ok(Outcome::applied())
}

fn ca_list(policy: &Value, list: CaList) -> Vec<String> {
    policy
        .pointer(&format!("/conditions/users/{}", list.property()))
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn conditional_access(
    a: &EntraAdapter,
    grant: bool,
    member: &str,
    policy_id: &str,
    list: CaList,
) -> Result<Outcome> {
    let get = path("ca.get", &[("policyId", policy_id)])?;
    let policy = a
        .client()
        .call(Method::GET, &get, None)
        .await?
        .unwrap_or_default();
    let current = ca_list(&policy, list);
    let has = current.iter().any(|x| x.eq_ignore_ascii_case(member));
    match (grant, has) {
        (true, true) => return Ok(Outcome::no_op(NoOpReason::AlreadyGranted)),
        (false, false) => return Ok(Outcome::no_op(NoOpReason::AlreadyAbsent)),
        _ => {}
    }
    let mut next: Vec<String> = current
        .into_iter()
        .filter(|x| !x.eq_ignore_ascii_case(member) && !x.eq_ignore_ascii_case("None"))
        .collect();
    if grant {
        next.push(member.to_string());
    }
    let mut conditions = policy
        .get("conditions")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let users = conditions
        .as_object_mut()
        .ok_or_else(|| {
            Error::new(ErrorKind::Unexpected, "policy has no conditions object")
                .with_connector(KIND)
        })?
        .entry("users")
        .or_insert_with(|| json!({}));
    users[list.property()] = json!(next);
    // A policy must include someone: an emptied includeUsers becomes ["None"].
    let empty = |k: &str| {
        users
            .get(k)
            .and_then(Value::as_array)
            .is_none_or(|v| v.is_empty())
    };
    if list == CaList::IncludeUsers
        && empty("includeUsers")
        && empty("includeGroups")
        && empty("includeRoles")
    {
        users["includeUsers"] = json!(["None"]);
    }
    let name = format!("ca.update.{}", list.property());
    a.client()
        .call(
            Method::PATCH,
            &path(&name, &[("policyId", policy_id)])?,
            Some(&json!({ "conditions": conditions })),
        )
        .await?;
    // No ETag on conditional-access policies: read back to detect a lost update.
    let after = a
        .client()
        .call(Method::GET, &get, None)
        .await?
        .unwrap_or_default();
    let now_has = ca_list(&after, list)
        .iter()
        .any(|x| x.eq_ignore_ascii_case(member));
    if now_has != grant {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("conditional-access policy {policy_id} changed concurrently"),
        )
        .with_connector(KIND)
        .set_temporary(None));
    }
    Ok(Outcome::applied())
}

impl EntraAdapter {
    /// Send one PIM schedule request. `RoleAssignmentExists` on an assigning action
    /// and `RoleAssignmentDoesNotExist` on a removing one are success
    /// (`AlreadyInState`); a `Pending*` status is `Outcome::Pending` with the request
    /// id; `Denied` is `PermissionDenied`, `Failed`/`Canceled` are errors.
    pub async fn pim_request(&self, req: &PimRequest) -> Result<PimResponse> {
        if !req.surface.actions().contains(&req.action.as_str()) {
            return Err(Error::invalid_input(format!(
                "PIM action `{}` is not valid for {} (expected one of {})",
                req.action,
                req.surface.prefix(),
                req.surface.actions().join(", ")
            ))
            .with_connector(KIND));
        }
        let mut body = json!({
            "action": req.action,
            "principalId": req.principal_id,
            "justification": req.justification,
        });
        match (&req.scope, req.surface.is_group()) {
            (
                PimScope::Role {
                    role_definition_id,
                    directory_scope_id,
                },
                false,
            ) => {
                body["roleDefinitionId"] = json!(role_definition_id);
                body["directoryScopeId"] = json!(directory_scope_id);
            }
            (PimScope::Group { group, access_id }, true) => {
                body["groupId"] = json!(group);
                body["accessId"] = json!(access_id);
            }
            _ => {
                return Err(Error::invalid_input("PIM scope does not match the surface")
                    .with_connector(KIND));
            }
        }
        let removes = action_removes(&req.action);
        if !removes {
            let expiration = match &req.expiration {
                PimExpiration::NoExpiration => json!({"type": "noExpiration"}),
                PimExpiration::AfterDuration(d) => json!({"type": "afterDuration", "duration": d}),
                PimExpiration::AfterDateTime(e) => {
                    json!({"type": "afterDateTime", "endDateTime": e})
                }
            };
            body["scheduleInfo"] = json!({
                "startDateTime": self.inner.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "expiration": expiration,
            });
            if let Some((n, s)) = &req.ticket {
                body["ticketInfo"] = json!({"ticketNumber": n, "ticketSystem": s});
            }
        }
        let name = format!("{}.{}", req.surface.prefix(), req.action);
        let r = self
            .client()
            .send(Method::POST, &path(&name, &[])?, Some(&body), &[])
            .await?;
        if !r.ok() {
            let g = r.error();
            let dir = if removes {
                Direction::Remove
            } else {
                Direction::Add
            };
            return match g.no_op(dir) {
                // Only the PIM codes count here (a 404 is a real failure).
                Some(reason) if g.code.starts_with("RoleAssignment") => Ok(PimResponse {
                    request_id: None,
                    status: g.code.clone(),
                    outcome: Outcome::no_op(reason),
                }),
                _ => Err(g.to_error()),
            };
        }
        let v = r.body.unwrap_or_default();
        let id = str_of(&v, "id").unwrap_or_default().to_string();
        let status = str_of(&v, "status").unwrap_or_default().to_string();
        let outcome = match status.as_str() {
            s if s.starts_with("Pending") => Outcome::Pending {
                external_ref: format!("{}:{id}", req.surface.prefix()),
            },
            "Denied" => {
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    format!("PIM request {id} was denied"),
                )
                .with_connector(KIND)
                .set_permanent());
            }
            "Failed" | "Canceled" => {
                return Err(Error::new(
                    ErrorKind::Unexpected,
                    format!("PIM request {id} ended {status}"),
                )
                .with_connector(KIND)
                .set_permanent());
            }
            _ => Outcome::applied(),
        };
        Ok(PimResponse {
            request_id: Some(id),
            status,
            outcome,
        })
    }

    /// Read a PIM request (`…ScheduleRequests/{id}`).
    pub async fn pim_request_status(&self, surface: PimSurface, request_id: &str) -> Result<Value> {
        let name = format!("{}.get_request", surface.prefix());
        Ok(self
            .execute(&name, &[("requestId", request_id)], None)
            .await?
            .unwrap_or_default())
    }

    /// The schedules (eligible or active) a principal holds for a role or group.
    pub async fn pim_schedules(
        &self,
        surface: PimSurface,
        principal_id: &str,
        target_id: &str,
    ) -> Result<Vec<Value>> {
        let key = if surface.is_group() {
            "groupId"
        } else {
            "roleDefinitionId"
        };
        let name = format!("{}.schedules", surface.prefix());
        self.list_collection(&name, &[("principalId", principal_id), (key, target_id)])
            .await
    }

    /// Read an access-package assignment request (`state`/`status`).
    pub async fn access_package_request(&self, request_id: &str) -> Result<Value> {
        Ok(self
            .execute(
                "access_package.get_request",
                &[("requestId", request_id)],
                None,
            )
            .await?
            .unwrap_or_default())
    }
}
