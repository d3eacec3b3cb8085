//! `impl ProvisioningAdapter for IamAdapter`: IAM users, group membership and
//! managed-policy attachment over the Query API.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use iga_adapter::{
    Account, AccountRef, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo,
    Error, ErrorKind, NoOpReason, ObjectRef, Observed, Outcome, Page, PageRequest,
    ProvisioningAdapter, Result, bad_cursor,
};
use iga_directive::{EntitlementKind, EntitlementRef, Operation, OperationKind};

use crate::client::IamClient;
use crate::config::IamConfig;
use crate::xml::Node;
use crate::{IAM_POLICY_KIND, KIND, error};

/// Tag carrying our identity id.
pub const IDENTITY_TAG: &str = "iga:identity";
/// Tag marking a user disabled by this connector; its value lists the access keys it deactivated.
pub const DISABLED_TAG: &str = "iga:disabled";

/// The entitlement kind of managed policies (`generic:iam_managed_policy`).
pub fn policy_kind() -> EntitlementKind {
    EntitlementKind::Generic(IAM_POLICY_KIND.into())
}

/// An IAM managed policy entitlement by ARN.
pub fn managed_policy(arn: impl Into<String>) -> EntitlementRef {
    EntitlementRef::new(policy_kind(), arn)
}

/// An AWS IAM account. Cheap to clone.
#[derive(Clone)]
pub struct IamAdapter {
    inner: Arc<Inner>,
}

struct Inner {
    client: IamClient,
    caps: Capabilities,
    page_size: usize,
    instance: String,
}

impl fmt::Debug for IamAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IamAdapter")
            .field("instance", &self.inner.instance)
            .field("client", &self.inner.client)
            .finish()
    }
}

impl fmt::Display for IamAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "aws-iam({})", self.inner.instance)
    }
}

fn op_err(e: Error, op: &'static str) -> Error {
    e.with_connector(KIND).with_operation(op)
}

fn is_code(e: &Error, code: &str) -> bool {
    error::code_of(e) == Some(code)
}

fn tags(user: &Node) -> Vec<(String, String)> {
    user.members(&["Tags"])
        .into_iter()
        .filter_map(|t| {
            Some((
                t.text_at(&["Key"])?,
                t.text_at(&["Value"]).unwrap_or_default(),
            ))
        })
        .collect()
}

fn account_from_user(user: &Node) -> Option<Account> {
    let name = user.text_at(&["UserName"])?;
    let mut a = Account::new(name.clone());
    a.login = Some(name);
    let t = tags(user);
    a.identity_id = t
        .iter()
        .find(|(k, _)| k == IDENTITY_TAG)
        .map(|(_, v)| v.clone());
    a.enabled = !t.iter().any(|(k, _)| k == DISABLED_TAG);
    if let Some(arn) = user.text_at(&["Arn"]) {
        a.attributes.insert("arn".into(), arn.into());
    }
    Some(a)
}

impl IamAdapter {
    /// Build the adapter (no I/O).
    pub fn new(config: IamConfig) -> Result<Self> {
        let client = IamClient::new(&config)?;
        let mut caps = Capabilities::full([EntitlementKind::Group, policy_kind()]);
        // IAM users have no display name or profile to update.
        caps.update_account = false;
        caps.list_page_max = config.page_size;
        caps.batch_max = 1;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                caps,
                page_size: config.page_size,
                instance: config.instance_label(),
            }),
        })
    }

    /// IAM requests sent so far.
    pub fn requests(&self) -> u64 {
        self.inner.client.requests.load(Ordering::Relaxed)
    }

    /// Create a group (set-up and fixtures); an existing group is fine.
    pub async fn create_group(&self, name: &str) -> Result<()> {
        match self
            .call("CreateGroup", &[("GroupName", name.to_string())])
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(op_err(e, "create_group")),
        }
    }

    async fn call(&self, action: &str, params: &[(&str, String)]) -> Result<Node> {
        self.inner.client.call(action, params).await
    }

    fn user_name(r: &AccountRef) -> String {
        r.native_id
            .clone()
            .or_else(|| r.login.clone())
            .unwrap_or_else(|| r.identity_id.clone())
    }

    fn op_user(op: &Operation) -> String {
        op.native_id
            .clone()
            .unwrap_or_else(|| op.identity.login().to_string())
    }

    async fn get_user(&self, name: &str) -> Result<Option<Node>> {
        match self
            .call("GetUser", &[("UserName", name.to_string())])
            .await
        {
            Ok(n) => Ok(n.at(&["GetUserResult", "User"]).cloned()),
            Err(e) if is_code(&e, "NoSuchEntity") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every page of a list action: the `member`s under `result/field`.
    async fn list_all(
        &self,
        action: &str,
        params: &[(&str, String)],
        field: &str,
    ) -> Result<Vec<Node>> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut p = params.to_vec();
            p.push(("MaxItems", "1000".into()));
            if let Some(m) = &marker {
                p.push(("Marker", m.clone()));
            }
            let n = self.call(action, &p).await?;
            let result = format!("{action}Result");
            out.extend(n.members(&[&result, field]).into_iter().cloned());
            let truncated = n.text_at(&[&result, "IsTruncated"]).as_deref() == Some("true");
            marker = n.text_at(&[&result, "Marker"]);
            if !truncated || marker.is_none() {
                return Ok(out);
            }
        }
    }

    async fn user_groups(&self, user: &str) -> Result<Vec<String>> {
        Ok(self
            .list_all(
                "ListGroupsForUser",
                &[("UserName", user.to_string())],
                "Groups",
            )
            .await?
            .iter()
            .filter_map(|g| g.text_at(&["GroupName"]))
            .collect())
    }

    async fn user_policies(&self, user: &str) -> Result<Vec<String>> {
        Ok(self
            .list_all(
                "ListAttachedUserPolicies",
                &[("UserName", user.to_string())],
                "AttachedPolicies",
            )
            .await?
            .iter()
            .filter_map(|g| g.text_at(&["PolicyArn"]))
            .collect())
    }

    async fn access_keys(&self, user: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .list_all(
                "ListAccessKeys",
                &[("UserName", user.to_string())],
                "AccessKeyMetadata",
            )
            .await?
            .iter()
            .filter_map(|k| Some((k.text_at(&["AccessKeyId"])?, k.text_at(&["Status"])?)))
            .collect())
    }

    async fn create(&self, op: &Operation) -> Result<Outcome> {
        let name = op.identity.login().to_string();
        let params = [
            ("UserName", name.clone()),
            ("Tags.member.1.Key", IDENTITY_TAG.to_string()),
            ("Tags.member.1.Value", op.identity.id.clone()),
        ];
        match self.call("CreateUser", &params).await {
            Ok(_) => Ok(Outcome::Applied {
                native_id: Some(name),
            }),
            Err(e) if is_code(&e, "EntityAlreadyExists") => match self.get_user(&name).await? {
                Some(_) => Ok(Outcome::AlreadyInState {
                    reason: NoOpReason::LinkedExisting,
                    native_id: Some(name),
                }),
                // Eventual consistency: created but not yet readable. Still the same name.
                None => Ok(Outcome::AlreadyInState {
                    reason: NoOpReason::LinkedExisting,
                    native_id: Some(name),
                }),
            },
            Err(e) => Err(e),
        }
    }

    /// Leaver: deactivate every active access key, delete the console password and
    /// tag the user; the tag remembers the keys so enable can reactivate exactly them.
    async fn disable(&self, op: &Operation) -> Result<Outcome> {
        let name = Self::op_user(op);
        let user = self.get_user(&name).await?.ok_or_else(|| {
            Error::not_found("account not found").with_context("identity", &op.identity.id)
        })?;
        let keys = self.access_keys(&name).await?;
        let active: Vec<&String> = keys
            .iter()
            .filter(|(_, s)| s == "Active")
            .map(|(k, _)| k)
            .collect();
        let tagged = tags(&user).into_iter().find(|(k, _)| k == DISABLED_TAG);
        if tagged.is_some() && active.is_empty() {
            return Ok(Outcome::AlreadyInState {
                reason: NoOpReason::AlreadyDisabled,
                native_id: Some(name),
            });
        }
        for k in &active {
            self.call(
                "UpdateAccessKey",
                &[
                    ("UserName", name.clone()),
                    ("AccessKeyId", (*k).clone()),
                    ("Status", "Inactive".into()),
                ],
            )
            .await?;
        }
        match self
            .call("DeleteLoginProfile", &[("UserName", name.clone())])
            .await
        {
            Ok(_) => {}
            Err(e) if is_code(&e, "NoSuchEntity") => {}
            Err(e) => return Err(e),
        }
        let mut remembered: Vec<String> = tagged
            .map(|(_, v)| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        remembered.extend(active.into_iter().cloned());
        self.call(
            "TagUser",
            &[
                ("UserName", name.clone()),
                ("Tags.member.1.Key", DISABLED_TAG.into()),
                ("Tags.member.1.Value", remembered.join(" ")),
            ],
        )
        .await?;
        Ok(Outcome::Applied {
            native_id: Some(name),
        })
    }

    /// Reactivate the keys the disable tag lists and remove the tag (a deleted
    /// console password cannot be restored).
    async fn enable(&self, op: &Operation) -> Result<Outcome> {
        let name = Self::op_user(op);
        let user = self.get_user(&name).await?.ok_or_else(|| {
            Error::not_found("account not found").with_context("identity", &op.identity.id)
        })?;
        let Some((_, keys)) = tags(&user).into_iter().find(|(k, _)| k == DISABLED_TAG) else {
            return Ok(Outcome::AlreadyInState {
                reason: NoOpReason::AlreadyEnabled,
                native_id: Some(name),
            });
        };
        let existing = self.access_keys(&name).await?;
        for k in keys.split_whitespace() {
            if existing.iter().any(|(id, _)| id == k) {
                self.call(
                    "UpdateAccessKey",
                    &[
                        ("UserName", name.clone()),
                        ("AccessKeyId", k.to_string()),
                        ("Status", "Active".into()),
                    ],
                )
                .await?;
            }
        }
        self.call(
            "UntagUser",
            &[
                ("UserName", name.clone()),
                ("TagKeys.member.1", DISABLED_TAG.into()),
            ],
        )
        .await?;
        Ok(Outcome::Applied {
            native_id: Some(name),
        })
    }

    /// Delete: IAM refuses (`DeleteConflict`) while groups, policies, keys or a login
    /// profile remain, so they are removed first.
    async fn delete(&self, op: &Operation) -> Result<Outcome> {
        let name = Self::op_user(op);
        if self.get_user(&name).await?.is_none() {
            return Ok(Outcome::no_op(NoOpReason::AccountAbsent));
        }
        let u = ("UserName", name.clone());
        for g in self.user_groups(&name).await? {
            self.call("RemoveUserFromGroup", &[u.clone(), ("GroupName", g)])
                .await?;
        }
        for p in self.user_policies(&name).await? {
            self.call("DetachUserPolicy", &[u.clone(), ("PolicyArn", p)])
                .await?;
        }
        for (k, _) in self.access_keys(&name).await? {
            self.call("DeleteAccessKey", &[u.clone(), ("AccessKeyId", k)])
                .await?;
        }
        match self
            .call("DeleteLoginProfile", std::slice::from_ref(&u))
            .await
        {
            Ok(_) => {}
            Err(e) if is_code(&e, "NoSuchEntity") => {}
            Err(e) => return Err(e),
        }
        match self.call("DeleteUser", &[u]).await {
            Ok(_) => Ok(Outcome::Applied {
                native_id: Some(name),
            }),
            Err(e) if is_code(&e, "NoSuchEntity") => Ok(Outcome::no_op(NoOpReason::AccountAbsent)),
            Err(e) => Err(e),
        }
    }

    /// Grant/revoke with a read first: IAM answers success whether or not the user
    /// was already in the group / had the policy (§0.2), so the read decides the outcome.
    async fn membership(&self, op: &Operation, add: bool) -> Result<Outcome> {
        let e = op
            .entitlement
            .as_ref()
            .ok_or_else(|| Error::invalid_input("grant/revoke needs an entitlement"))?;
        let name = Self::op_user(op);
        let is_group = e.kind == EntitlementKind::Group;
        let held = if is_group {
            self.user_groups(&name).await
        } else {
            self.user_policies(&name).await
        };
        let held = match held {
            Ok(h) => h,
            Err(err) if is_code(&err, "NoSuchEntity") && !add => {
                return Ok(Outcome::no_op(NoOpReason::AlreadyAbsent));
            }
            Err(err) if is_code(&err, "NoSuchEntity") => {
                return Err(
                    Error::not_found("account not found").with_context("identity", &op.identity.id)
                );
            }
            Err(err) => return Err(err),
        };
        let has = held.iter().any(|h| h == &e.id);
        if has == add {
            let reason = if add {
                NoOpReason::AlreadyGranted
            } else {
                NoOpReason::AlreadyAbsent
            };
            return Ok(Outcome::AlreadyInState {
                reason,
                native_id: Some(name),
            });
        }
        let (action, key) = match (is_group, add) {
            (true, true) => ("AddUserToGroup", "GroupName"),
            (true, false) => ("RemoveUserFromGroup", "GroupName"),
            (false, true) => ("AttachUserPolicy", "PolicyArn"),
            (false, false) => ("DetachUserPolicy", "PolicyArn"),
        };
        match self
            .call(action, &[("UserName", name.clone()), (key, e.id.clone())])
            .await
        {
            Ok(_) => Ok(Outcome::Applied {
                native_id: Some(name),
            }),
            Err(err) if is_code(&err, "NoSuchEntity") => Err(Error::not_found(format!(
                "{} {} not found",
                if is_group { "group" } else { "policy" },
                e.id
            ))
            .with_context("entitlement", &e.id)),
            Err(err) => Err(err),
        }
    }

    async fn apply_checked(&self, op: &Operation) -> Result<Outcome> {
        match op.kind {
            OperationKind::CreateAccount => self.create(op).await,
            OperationKind::DisableAccount => self.disable(op).await,
            OperationKind::EnableAccount => self.enable(op).await,
            OperationKind::DeleteAccount => self.delete(op).await,
            OperationKind::Grant => self.membership(op, true).await,
            OperationKind::Revoke => self.membership(op, false).await,
            _ => Err(Error::unsupported(format!(
                "operation {} is not supported",
                op.kind
            ))),
        }
    }

    /// One page of a list action with the caller's marker as cursor.
    async fn page_of(
        &self,
        action: &str,
        params: &[(&str, String)],
        field: &str,
        page: &PageRequest,
    ) -> Result<(Vec<Node>, Option<String>)> {
        let mut p = params.to_vec();
        p.push((
            "MaxItems",
            page.limit.clamp(1, self.inner.page_size).to_string(),
        ));
        if let Some(m) = &page.cursor {
            p.push(("Marker", m.clone()));
        }
        let n = match self.call(action, &p).await {
            Ok(n) => n,
            Err(e) if page.cursor.is_some() && e.kind() == ErrorKind::InvalidInput => {
                return Err(bad_cursor(page.cursor.as_deref().unwrap_or("")));
            }
            Err(e) => return Err(e),
        };
        let result = format!("{action}Result");
        let items = n.members(&[&result, field]).into_iter().cloned().collect();
        let next = (n.text_at(&[&result, "IsTruncated"]).as_deref() == Some("true"))
            .then(|| n.text_at(&[&result, "Marker"]))
            .flatten();
        Ok((items, next))
    }

    async fn holders(&self, e: &EntitlementRef, page: &PageRequest) -> Result<Page<Assignment>> {
        let r = if e.kind == EntitlementKind::Group {
            self.page_of("GetGroup", &[("GroupName", e.id.clone())], "Users", page)
                .await
        } else {
            self.page_of(
                "ListEntitiesForPolicy",
                &[("PolicyArn", e.id.clone()), ("EntityFilter", "User".into())],
                "PolicyUsers",
                page,
            )
            .await
        };
        let (users, next) = match r {
            Ok(x) => x,
            Err(err) if is_code(&err, "NoSuchEntity") => return Ok(Page::last(Vec::new())),
            Err(err) => return Err(err),
        };
        Ok(Page {
            items: users
                .iter()
                .filter_map(|u| u.text_at(&["UserName"]))
                .map(|n| Assignment::new(n, None, e.clone()))
                .collect(),
            next,
        })
    }
}

#[async_trait]
impl ProvisioningAdapter for IamAdapter {
    fn info(&self) -> AdapterInfo {
        AdapterInfo::new(KIND, self.inner.instance.clone())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.inner.caps
    }

    async fn check(&self) -> Result<()> {
        self.call("ListUsers", &[("MaxItems", "1".into())])
            .await
            .map(|_| ())
            .map_err(|e| op_err(e, "check"))
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.inner.caps.check(op)?;
        self.apply_checked(op)
            .await
            .map_err(|e| op_err(e, op.kind.as_str()).with_context("operation_id", &op.id))
    }

    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        iga_adapter::batch::sequential(self, ops).await
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        self.inner.caps.check_call("read")?;
        let r = match object {
            ObjectRef::Account(a) => self
                .get_user(&Self::user_name(a))
                .await
                .map(|u| u.and_then(|u| account_from_user(&u)).map(Observed::Account)),
            ObjectRef::Entitlement(e) if e.kind == EntitlementKind::Group => {
                match self
                    .call(
                        "GetGroup",
                        &[("GroupName", e.id.clone()), ("MaxItems", "1".into())],
                    )
                    .await
                {
                    Ok(_) => Ok(Some(Observed::Entitlement(EntitlementInfo::new(e.clone())))),
                    Err(err) if is_code(&err, "NoSuchEntity") => Ok(None),
                    Err(err) => Err(err),
                }
            }
            ObjectRef::Entitlement(e) => {
                match self.call("GetPolicy", &[("PolicyArn", e.id.clone())]).await {
                    Ok(_) => Ok(Some(Observed::Entitlement(EntitlementInfo::new(e.clone())))),
                    Err(err) if is_code(&err, "NoSuchEntity") => Ok(None),
                    Err(err) => Err(err),
                }
            }
            _ => Err(Error::unsupported("unknown object kind")),
        };
        r.map_err(|e| op_err(e, "read"))
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        self.inner.caps.check_call("list_accounts")?;
        let (users, next) = self
            .page_of("ListUsers", &[], "Users", &page)
            .await
            .map_err(|e| op_err(e, "list_accounts"))?;
        Ok(Page {
            items: users.iter().filter_map(account_from_user).collect(),
            next,
        })
    }

    /// Groups only (managed policies are granted by ARN but not enumerated).
    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        self.inner.caps.check_call("list_entitlements")?;
        let (groups, next) = self
            .page_of("ListGroups", &[], "Groups", &page)
            .await
            .map_err(|e| op_err(e, "list_entitlements"))?;
        Ok(Page {
            items: groups
                .iter()
                .filter_map(|g| g.text_at(&["GroupName"]))
                .map(|n| EntitlementInfo::new(EntitlementRef::group(n)))
                .collect(),
            next,
        })
    }

    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>> {
        self.inner.caps.check_call("list_assignments")?;
        let r: Result<Page<Assignment>> = async {
            match scope {
                AssignmentScope::Account(a) => {
                    let name = Self::user_name(a);
                    let Some(user) = self.get_user(&name).await? else {
                        return Ok(Page::last(Vec::new()));
                    };
                    let ident = account_from_user(&user).and_then(|a| a.identity_id);
                    // A user holds at most 10 groups and 20 managed policies: read both,
                    // page by offset.
                    let mut all: Vec<EntitlementRef> = self
                        .user_groups(&name)
                        .await?
                        .into_iter()
                        .map(EntitlementRef::group)
                        .collect();
                    all.extend(
                        self.user_policies(&name)
                            .await?
                            .into_iter()
                            .map(managed_policy),
                    );
                    let offset = match &page.cursor {
                        None => 0,
                        Some(c) => c.parse::<usize>().map_err(|_| bad_cursor(c))?,
                    };
                    let n = page.limit.max(1);
                    let items: Vec<Assignment> = all
                        .iter()
                        .skip(offset)
                        .take(n)
                        .map(|e| Assignment::new(name.clone(), ident.clone(), e.clone()))
                        .collect();
                    let next = (offset + n < all.len()).then(|| (offset + n).to_string());
                    Ok(Page { items, next })
                }
                AssignmentScope::Entitlement(e) => self.holders(e, &page).await,
                AssignmentScope::All => {
                    // Cursor "<group marker>|<user marker>", one group per page.
                    let (gm, um) = match &page.cursor {
                        None => (String::new(), String::new()),
                        Some(c) => c
                            .split_once('|')
                            .map(|(a, b)| (a.to_string(), b.to_string()))
                            .ok_or_else(|| bad_cursor(c))?,
                    };
                    let gp = PageRequest {
                        cursor: (!gm.is_empty()).then_some(gm.clone()),
                        limit: 1,
                    };
                    let (groups, gnext) = self.page_of("ListGroups", &[], "Groups", &gp).await?;
                    let Some(g) = groups.first().and_then(|g| g.text_at(&["GroupName"])) else {
                        return Ok(Page::last(Vec::new()));
                    };
                    let up = PageRequest {
                        cursor: (!um.is_empty()).then_some(um),
                        limit: page.limit,
                    };
                    let p = self.holders(&EntitlementRef::group(g), &up).await?;
                    let next = match (p.next, gnext) {
                        (Some(u), _) => Some(format!("{gm}|{u}")),
                        (None, Some(g)) => Some(format!("{g}|")),
                        (None, None) => None,
                    };
                    Ok(Page {
                        items: p.items,
                        next,
                    })
                }
                _ => Err(Error::unsupported("unknown assignment scope")),
            }
        }
        .await;
        r.map_err(|e| op_err(e, "list_assignments"))
    }
}
