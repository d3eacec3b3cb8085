//! The command table: every request this connector can send to Microsoft Graph.
//!
//! The adapter builds every request from this table ([`command`] +
//! [`Command::path`]), the README's command table is rendered from it
//! ([`render_markdown`], checked by a test) and the coverage test exercises every
//! row against the Graph mock, so the three cannot drift apart.

use std::fmt::Write as _;
use std::sync::LazyLock;

use iga_adapter::{Error, ErrorKind, Result};

use crate::KIND;

/// One request shape.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Command {
    /// Stable name, e.g. `group.add_member`.
    pub name: String,
    /// HTTP method.
    pub method: &'static str,
    /// URL template relative to the version root; `{param}` placeholders; a query
    /// part is written unencoded (encoded when rendered).
    pub template: String,
    /// The JSON body shape (empty = no body).
    pub body: String,
    /// How the connector stays idempotent with it.
    pub idempotency: String,
}

impl Command {
    /// Render the template with `params` (values are percent-encoded). A missing
    /// parameter is an `InvalidInput` error naming the command and the parameter.
    pub fn path(&self, params: &[(&str, &str)]) -> Result<String> {
        let (path, query) = match self.template.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (self.template.as_str(), None),
        };
        let subst = |s: &str, enc: fn(&str) -> String| -> Result<String> {
            let mut out = String::new();
            let mut rest = s;
            while let Some(i) = rest.find('{') {
                out.push_str(&rest[..i]);
                let j = rest[i..].find('}').map(|j| i + j).ok_or_else(|| {
                    Error::invalid_input(format!("command {}: bad template", self.name))
                })?;
                let key = &rest[i + 1..j];
                let v = params
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| *v)
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::InvalidInput,
                            format!("command {}: missing parameter `{key}`", self.name),
                        )
                        .with_connector(KIND)
                    })?;
                out.push_str(&enc(v));
                rest = &rest[j + 1..];
            }
            out.push_str(rest);
            Ok(out)
        };
        let mut url = subst(path, encode_path)?;
        if let Some(q) = query {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for pair in q.split('&') {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                ser.append_pair(k, &subst(v, |s| s.replace('\'', "''"))?);
            }
            url.push('?');
            url.push_str(&ser.finish());
        }
        Ok(url)
    }
}

fn encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            ' ' => out.push_str("%20"),
            '\'' => out.push_str("''"),
            c => out.push(c),
        }
    }
    out
}

fn row(name: &str, method: &'static str, template: &str, body: &str, idem: &str) -> Command {
    Command {
        name: name.to_string(),
        method,
        template: template.to_string(),
        body: body.to_string(),
        idempotency: idem.to_string(),
    }
}

/// PIM surfaces: (name prefix, request collection, schedule collection, target fields).
pub(crate) const PIM_SURFACES: [(&str, &str, &str, &str); 4] = [
    (
        "pim.role.eligibility",
        "/roleManagement/directory/roleEligibilityScheduleRequests",
        "/roleManagement/directory/roleEligibilitySchedules?$filter=principalId eq '{principalId}' and roleDefinitionId eq '{roleDefinitionId}'",
        "roleDefinitionId, directoryScopeId",
    ),
    (
        "pim.role.assignment",
        "/roleManagement/directory/roleAssignmentScheduleRequests",
        "/roleManagement/directory/roleAssignmentSchedules?$filter=principalId eq '{principalId}' and roleDefinitionId eq '{roleDefinitionId}'",
        "roleDefinitionId, directoryScopeId",
    ),
    (
        "pim.group.eligibility",
        "/identityGovernance/privilegedAccess/group/eligibilityScheduleRequests",
        "/identityGovernance/privilegedAccess/group/eligibilitySchedules?$filter=principalId eq '{principalId}' and groupId eq '{groupId}'",
        "groupId, accessId",
    ),
    (
        "pim.group.assignment",
        "/identityGovernance/privilegedAccess/group/assignmentScheduleRequests",
        "/identityGovernance/privilegedAccess/group/assignmentSchedules?$filter=principalId eq '{principalId}' and groupId eq '{groupId}'",
        "groupId, accessId",
    ),
];

/// Schedule-request actions per surface kind (protocols §1.7).
pub const ASSIGNMENT_ACTIONS: [&str; 9] = [
    "adminAssign",
    "adminUpdate",
    "adminRemove",
    "adminExtend",
    "adminRenew",
    "selfActivate",
    "selfDeactivate",
    "selfExtend",
    "selfRenew",
];
/// Eligibility requests accept the admin* actions and self{Extend,Renew}.
pub const ELIGIBILITY_ACTIONS: [&str; 7] = [
    "adminAssign",
    "adminUpdate",
    "adminRemove",
    "adminExtend",
    "adminRenew",
    "selfExtend",
    "selfRenew",
];

/// Whether a schedule action removes access (no `scheduleInfo` in its body).
pub fn action_removes(action: &str) -> bool {
    matches!(action, "adminRemove" | "selfDeactivate")
}

static COMMANDS: LazyLock<Vec<Command>> = LazyLock::new(build);

fn build() -> Vec<Command> {
    let ref_body = r#"{"@odata.id":"<root>/v1.0/directoryObjects/{id}"}"#;
    let mut c = vec![
        row(
            "token.client_secret",
            "POST",
            "<authority>/{tenant}/oauth2/v2.0/token",
            "form: grant_type=client_credentials, client_id, client_secret, scope=<root>/.default",
            "read-only; token cached until 5 min (secret: 60 s) before expiry",
        ),
        row(
            "token.client_assertion",
            "POST",
            "<authority>/{tenant}/oauth2/v2.0/token",
            "form: grant_type, client_id, scope, client_assertion_type=jwt-bearer, client_assertion=<RS256 JWT, x5t>",
            "read-only; token cached",
        ),
        row(
            "organization.get",
            "GET",
            "/organization?$select=id",
            "",
            "read-only (check)",
        ),
        row(
            "batch",
            "POST",
            "/$batch",
            r#"{"requests":[{"id","method","url","headers"?,"body"?,"dependsOn"?}] (<=20)}"#,
            "items mapped by id; inner 429 re-sent alone after Retry-After; 424 re-sent",
        ),
        // Users
        row(
            "user.create",
            "POST",
            "/users",
            r#"{"accountEnabled":true,"displayName","mailNickname","userPrincipalName","employeeId","givenName"?,"surname"?,"mail"?,"department"?,"passwordProfile":{"password","forceChangePasswordNextSignIn":true}}"#,
            "400 UPN taken -> GET by UPN, link (AlreadyInState linked_existing)",
        ),
        row(
            "user.get",
            "GET",
            "/users/{user}?$select=id,userPrincipalName,displayName,mail,accountEnabled,employeeId,givenName,surname,department",
            "",
            "read-only; 404 -> None",
        ),
        row(
            "user.find_by_employee_id",
            "GET",
            "/users?$filter=employeeId eq '{employeeId}'&$select=id,userPrincipalName,displayName,mail,accountEnabled,employeeId",
            "",
            "read-only",
        ),
        row(
            "user.list",
            "GET",
            "/users?$top={top}&$select=id,userPrincipalName,displayName,mail,accountEnabled,employeeId",
            "",
            "read-only; @odata.nextLink followed verbatim",
        ),
        row(
            "user.update",
            "PATCH",
            "/users/{id}",
            r#"{changed attributes only: displayName, givenName, surname, mail, department, jobTitle, ...}"#,
            "read first; unchanged -> AlreadyInState no_change",
        ),
        row(
            "user.disable",
            "PATCH",
            "/users/{id}",
            r#"{"accountEnabled":false}"#,
            "read first; already false -> already_disabled",
        ),
        row(
            "user.enable",
            "PATCH",
            "/users/{id}",
            r#"{"accountEnabled":true}"#,
            "read first; already true -> already_enabled",
        ),
        row(
            "user.delete",
            "DELETE",
            "/users/{id}",
            "",
            "404 -> account_absent",
        ),
        row(
            "user.restore",
            "POST",
            "/directory/deletedItems/{id}/restore",
            "",
            "404 -> NotFound (nothing to restore)",
        ),
        row(
            "user.deleted_list",
            "GET",
            "/directory/deletedItems/microsoft.graph.user?$top={top}",
            "",
            "read-only",
        ),
        row(
            "user.revoke_sessions",
            "POST",
            "/users/{id}/revokeSignInSessions",
            "",
            "safe to repeat",
        ),
        row(
            "user.set_manager",
            "PUT",
            "/users/{id}/manager/$ref",
            r#"{"@odata.id":"<root>/v1.0/users/{managerId}"}"#,
            "PUT replaces; safe to repeat",
        ),
        row(
            "user.remove_manager",
            "DELETE",
            "/users/{id}/manager/$ref",
            "",
            "404 -> already absent",
        ),
        row(
            "user.get_manager",
            "GET",
            "/users/{id}/manager?$select=id",
            "",
            "read-only; 404 -> none",
        ),
        row(
            "user.member_of",
            "GET",
            "/users/{id}/memberOf/microsoft.graph.group?$select=id,displayName&$top={top}",
            "",
            "read-only",
        ),
        row(
            "user.transitive_member_of",
            "GET",
            "/users/{id}/transitiveMemberOf/microsoft.graph.group?$select=id,displayName&$top={top}",
            "",
            "read-only",
        ),
        row(
            "user.check_member_groups",
            "POST",
            "/directoryObjects/{id}/checkMemberGroups",
            r#"{"groupIds":[<=20 ids]}"#,
            "read-only (POST)",
        ),
        row(
            "user.delta",
            "GET",
            "/users/delta?$select=id,displayName,accountEnabled,userPrincipalName,employeeId",
            "",
            "read-only; deltaLink persisted by the embedder; 410 -> full resync",
        ),
        row(
            "user.delta_latest",
            "GET",
            "/users/delta?$deltatoken=latest",
            "",
            "read-only; only a deltaLink",
        ),
        // Licenses
        row(
            "license.read",
            "GET",
            "/users/{id}?$select=id,assignedLicenses",
            "",
            "read-only",
        ),
        row(
            "license.add",
            "POST",
            "/users/{id}/assignLicense",
            r#"{"addLicenses":[{"skuId","disabledPlans":[]}],"removeLicenses":[]}"#,
            "read first; SKU held with same disabled plans -> already_granted",
        ),
        row(
            "license.add_with_disabled_plans",
            "POST",
            "/users/{id}/assignLicense",
            r#"{"addLicenses":[{"skuId","disabledPlans":[planIds]}],"removeLicenses":[]}"#,
            "read first; same disabled plans -> already_granted, else updated",
        ),
        row(
            "license.remove",
            "POST",
            "/users/{id}/assignLicense",
            r#"{"addLicenses":[],"removeLicenses":[skuId]}"#,
            "read first; SKU not held -> already_absent",
        ),
        row(
            "license.subscribed_skus",
            "GET",
            "/subscribedSkus?$select=skuId,skuPartNumber",
            "",
            "read-only",
        ),
        // Groups
        row(
            "group.get",
            "GET",
            "/groups/{groupId}?$select=id,displayName,description",
            "",
            "read-only; 404 -> None",
        ),
        row(
            "group.find_by_name",
            "GET",
            "/groups?$filter=displayName eq '{displayName}'&$select=id,displayName",
            "",
            "read-only; cached; >1 match -> InvalidInput",
        ),
        row(
            "group.list",
            "GET",
            "/groups?$top={top}&$select=id,displayName,description",
            "",
            "read-only",
        ),
        row(
            "group.create",
            "POST",
            "/groups",
            r#"{"displayName","mailNickname","mailEnabled":false,"securityEnabled":true,"description"?}"#,
            "name lookup first; existing -> reuse",
        ),
        row(
            "group.members",
            "GET",
            "/groups/{groupId}/members?$select=id,userPrincipalName,employeeId&$top={top}",
            "",
            "read-only",
        ),
        row(
            "group.transitive_members",
            "GET",
            "/groups/{groupId}/transitiveMembers?$select=id,userPrincipalName,employeeId&$top={top}",
            "",
            "read-only",
        ),
        row(
            "group.add_member",
            "POST",
            "/groups/{groupId}/members/$ref",
            ref_body,
            "400 'already exist' -> already_granted",
        ),
        row(
            "group.add_members",
            "PATCH",
            "/groups/{groupId}",
            r#"{"members@odata.bind":["<root>/v1.0/directoryObjects/{id}", ... <=20]}"#,
            "all-or-nothing; any 'already exist' -> per-member add_member",
        ),
        row(
            "group.remove_member",
            "DELETE",
            "/groups/{groupId}/members/{id}/$ref",
            "",
            "404 + group exists -> already_absent",
        ),
        row(
            "group.owners",
            "GET",
            "/groups/{groupId}/owners?$select=id,userPrincipalName,employeeId&$top={top}",
            "",
            "read-only",
        ),
        row(
            "group.add_owner",
            "POST",
            "/groups/{groupId}/owners/$ref",
            ref_body,
            "400 'already exist' -> already_granted",
        ),
        row(
            "group.remove_owner",
            "DELETE",
            "/groups/{groupId}/owners/{id}/$ref",
            "",
            "404 + group exists -> already_absent",
        ),
        row(
            "group.delta",
            "GET",
            "/groups/delta?$select=displayName,members",
            "",
            "read-only; members@delta merged across pages",
        ),
        row(
            "group.delta_latest",
            "GET",
            "/groups/delta?$deltatoken=latest",
            "",
            "read-only; only a deltaLink",
        ),
        // App roles
        row(
            "app_role.assign",
            "POST",
            "/servicePrincipals/{resourceId}/appRoleAssignedTo",
            r#"{"principalId","resourceId","appRoleId"}"#,
            "400 'Permission being assigned already exists' -> already_granted",
        ),
        row(
            "app_role.user_assignments",
            "GET",
            "/users/{id}/appRoleAssignments?$top={top}",
            "",
            "read-only (finds the assignment id)",
        ),
        row(
            "app_role.holders",
            "GET",
            "/servicePrincipals/{resourceId}/appRoleAssignedTo?$top={top}",
            "",
            "read-only",
        ),
        row(
            "app_role.remove",
            "DELETE",
            "/servicePrincipals/{resourceId}/appRoleAssignedTo/{assignmentId}",
            "",
            "no assignment found or 404 -> already_absent",
        ),
        row(
            "service_principal.by_app_id",
            "GET",
            "/servicePrincipals(appId='{appId}')?$select=id,appId,displayName,appRoles",
            "",
            "read-only",
        ),
        // Administrative units
        row(
            "au.list",
            "GET",
            "/directory/administrativeUnits?$top={top}&$select=id,displayName",
            "",
            "read-only",
        ),
        row(
            "au.get",
            "GET",
            "/directory/administrativeUnits/{auId}?$select=id,displayName",
            "",
            "read-only; 404 -> None",
        ),
        row(
            "au.members",
            "GET",
            "/directory/administrativeUnits/{auId}/members?$select=id,userPrincipalName,employeeId&$top={top}",
            "",
            "read-only",
        ),
        row(
            "au.add_member",
            "POST",
            "/directory/administrativeUnits/{auId}/members/$ref",
            r#"{"@odata.id":"<root>/v1.0/users/{id}"}"#,
            "400 'already exist' -> already_granted",
        ),
        row(
            "au.remove_member",
            "DELETE",
            "/directory/administrativeUnits/{auId}/members/{id}/$ref",
            "",
            "404 + AU exists -> already_absent",
        ),
        // Conditional access
        row(
            "ca.list",
            "GET",
            "/identity/conditionalAccess/policies?$select=id,displayName,state",
            "",
            "read-only",
        ),
        row(
            "ca.get",
            "GET",
            "/identity/conditionalAccess/policies/{policyId}",
            "",
            "read-only; @odata.etag kept for If-Match",
        ),
    ];
    for list in [
        "includeUsers",
        "excludeUsers",
        "includeGroups",
        "excludeGroups",
    ] {
        c.push(row(
            &format!("ca.update.{list}"),
            "PATCH",
            "/identity/conditionalAccess/policies/{policyId}",
            &format!(r#"{{"conditions":{{<every condition as read>,"users":{{<as read>,"{list}":[..+/- id]}}}}}}"#),
            "read-modify-write of the whole conditions object (PATCH replaces complex properties); If-Match when an etag was read; id already (not) listed -> no-op",
        ));
    }
    c.extend([
        // Directory roles (permanent)
        row("role.definitions", "GET", "/roleManagement/directory/roleDefinitions?$select=id,displayName", "", "read-only"),
        row("role.find_assignment", "GET", "/roleManagement/directory/roleAssignments?$filter=principalId eq '{principalId}' and roleDefinitionId eq '{roleDefinitionId}'", "", "read-only"),
        row("role.assign", "POST", "/roleManagement/directory/roleAssignments", r#"{"principalId","roleDefinitionId","directoryScopeId"}"#, "find first; RoleAssignmentExists -> already_granted"),
        row("role.remove", "DELETE", "/roleManagement/directory/roleAssignments/{assignmentId}", "", "none found or 404 -> already_absent"),
    ]);
    for (prefix, requests, schedules, fields) in PIM_SURFACES {
        let actions: &[&str] = if prefix.ends_with("eligibility") {
            &ELIGIBILITY_ACTIONS
        } else {
            &ASSIGNMENT_ACTIONS
        };
        for a in actions {
            let body = if action_removes(a) {
                format!(r#"{{"action":"{a}","principalId",{fields},"justification"}}"#)
            } else {
                format!(
                    r#"{{"action":"{a}","principalId",{fields},"justification","scheduleInfo":{{"startDateTime"?,"expiration":{{"type","duration"?|"endDateTime"?}}}},"ticketInfo"?}}"#
                )
            };
            let idem = if action_removes(a) {
                "RoleAssignmentDoesNotExist -> already_absent"
            } else {
                "RoleAssignmentExists -> already_granted; Pending* status -> Outcome::Pending"
            };
            c.push(row(&format!("{prefix}.{a}"), "POST", requests, &body, idem));
        }
        c.push(row(
            &format!("{prefix}.get_request"),
            "GET",
            &format!("{requests}/{{requestId}}"),
            "",
            "read-only (poll)",
        ));
        c.push(row(
            &format!("{prefix}.schedules"),
            "GET",
            schedules,
            "",
            "read-only",
        ));
    }
    c.extend([
        // Access packages
        row("access_package.list", "GET", "/identityGovernance/entitlementManagement/accessPackages?$select=id,displayName", "", "read-only"),
        row("access_package.policies", "GET", "/identityGovernance/entitlementManagement/assignmentPolicies?$filter=accessPackage/id eq '{accessPackageId}'", "", "read-only"),
        row("access_package.find_assignments", "GET", "/identityGovernance/entitlementManagement/assignments?$filter=target/objectId eq '{targetId}' and accessPackage/id eq '{accessPackageId}'", "", "read-only"),
        row("access_package.find_requests", "GET", "/identityGovernance/entitlementManagement/assignmentRequests?$filter=target/objectId eq '{targetId}' and accessPackage/id eq '{accessPackageId}'", "", "read-only (open request -> Pending)"),
        row("access_package.request_add", "POST", "/identityGovernance/entitlementManagement/assignmentRequests", r#"{"requestType":"adminAdd","assignment":{"targetId","assignmentPolicyId","accessPackageId"}}"#, "delivered assignment -> already_granted; open request -> Pending{request id}"),
        row("access_package.request_remove", "POST", "/identityGovernance/entitlementManagement/assignmentRequests", r#"{"requestType":"adminRemove","assignment":{"id"}}"#, "no delivered assignment -> already_absent; open request -> Pending"),
        row("access_package.get_request", "GET", "/identityGovernance/entitlementManagement/assignmentRequests/{requestId}", "", "read-only (poll: state/status or requestState/requestStatus)"),
        row("access_package.cancel_request", "POST", "/identityGovernance/entitlementManagement/assignmentRequests/{requestId}/cancel", "", "already final -> 400 InvalidInput"),
    ]);
    c
}

/// Every command.
pub fn commands() -> &'static [Command] {
    &COMMANDS
}

/// The command named `name`. Unknown names are a programming error and panic
/// (the table test proves every name the adapter uses exists).
pub fn command(name: &str) -> &'static Command {
    COMMANDS
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("unknown Graph command {name}"))
}

/// Render the command table as Markdown (what the README carries).
pub fn render_markdown() -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} commands.\n", COMMANDS.len());
    s.push_str(
        "| # | command | method | URL template | body | idempotency |\n|---|---|---|---|---|---|\n",
    );
    for (i, c) in COMMANDS.iter().enumerate() {
        let esc = |t: &str| t.replace('|', "\\|");
        let body = if c.body.is_empty() {
            "—".to_string()
        } else {
            format!("`{}`", esc(&c.body))
        };
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | `{}` | {} | {} |",
            i + 1,
            c.name,
            c.method,
            esc(&c.template),
            body,
            esc(&c.idempotency)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_paths_render() {
        let mut names: Vec<_> = commands().iter().map(|c| c.name.as_str()).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate command names");
        let p = command("group.find_by_name")
            .path(&[("displayName", "O'Brien Team")])
            .unwrap();
        assert_eq!(
            p,
            "/groups?%24filter=displayName+eq+%27O%27%27Brien+Team%27&%24select=id%2CdisplayName"
        );
        let p = command("group.remove_member")
            .path(&[("groupId", "g1"), ("id", "u#1")])
            .unwrap();
        assert_eq!(p, "/groups/g1/members/u%231/$ref");
        let e = command("group.add_member").path(&[]).unwrap_err();
        assert!(e.message().contains("`groupId`"), "{e}");
    }

    #[test]
    fn readme_carries_the_rendered_table() {
        let readme = include_str!("../README.md");
        let table = render_markdown();
        assert!(
            readme.contains(&table),
            "README command table is stale: regenerate it from commands::render_markdown()"
        );
    }
}
