//! AWS IAM Identity Center through its SCIM endpoint: the SCIM connector for users
//! and group lookup, plus this dialect for what Identity Center does differently —
//! group reads carry no members (membership is checked with
//! `filter=id eq "<g>" and members eq "<u>"`), filters are `eq` (+ `and`) only, and a
//! group PATCH carries at most 100 membership changes (the native batch).

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use iga_adapter::{
    Account, AccountRef, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo,
    Error, ErrorKind, NoOpReason, ObjectRef, Observed, Outcome, Page, PageRequest,
    ProvisioningAdapter, Result, bad_cursor,
};
use iga_connector_scim::{ScimAdapter, ScimConfig};
use iga_directive::{EntitlementKind, EntitlementRef, Operation, OperationKind};
use reqwest::Method;
use serde_json::{Value, json};

use crate::IDENTITY_CENTER_KIND as KIND;

/// Most membership changes one group PATCH may carry (Identity Center limit).
pub const MEMBERSHIP_CHANGES_PER_PATCH: usize = 100;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// An IAM Identity Center identity store, over SCIM. Cheap to clone.
#[derive(Clone)]
pub struct IdentityCenterAdapter {
    scim: ScimAdapter,
    caps: Capabilities,
    instance: String,
}

impl fmt::Debug for IdentityCenterAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityCenterAdapter")
            .field("instance", &self.instance)
            .field("scim", &self.scim)
            .finish()
    }
}

impl fmt::Display for IdentityCenterAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "aws-identity-center({})", self.instance)
    }
}

/// A grant/revoke after its membership read: done already, or one change to send.
enum Planned {
    Done(Outcome),
    Change { gid: String, uid: String, add: bool },
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn str_field(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

fn resources(v: &Option<Value>) -> Vec<Value> {
    v.as_ref()
        .and_then(|b| b.get("Resources"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn total(v: &Option<Value>) -> Option<u64> {
    let t = v.as_ref()?.get("totalResults")?;
    t.as_u64().or_else(|| t.as_str()?.parse().ok())
}

fn relabel(e: Error) -> Error {
    e.with_connector(KIND)
}

impl IdentityCenterAdapter {
    /// Connect (reads `/ServiceProviderConfig` through the SCIM connector). Base URL
    /// `https://scim.<region>.amazonaws.com/<tenant>/scim/v2`, bearer token.
    pub async fn connect(config: ScimConfig) -> Result<Self> {
        let instance = config.instance.clone().unwrap_or_else(|| {
            config
                .base_url
                .host_str()
                .unwrap_or("identity-center")
                .to_string()
        });
        let scim = ScimAdapter::connect(config.with_bulk_max(1))
            .await
            .map_err(relabel)?;
        let mut caps = scim.capabilities().clone();
        caps.grant = scim.features().patch;
        caps.revoke = scim.features().patch;
        caps.entitlement_kinds = vec![EntitlementKind::Group];
        caps.batch_max = MEMBERSHIP_CHANGES_PER_PATCH;
        caps.list_page_max = caps.list_page_max.min(100);
        Ok(Self {
            scim,
            caps,
            instance,
        })
    }

    /// The SCIM adapter underneath (request counters, group creation).
    pub fn scim(&self) -> &ScimAdapter {
        &self.scim
    }

    /// Whether `uid` is a member of `gid`: the only membership read Identity Center offers.
    pub async fn is_member(&self, gid: &str, uid: &str) -> Result<bool> {
        let q = [(
            "filter",
            format!("id eq {} and members eq {}", quote(gid), quote(uid)),
        )];
        let r = self.scim.request(Method::GET, "/Groups", &q, None).await?;
        Ok(total(&r).unwrap_or(0) > 0 || !resources(&r).is_empty())
    }

    async fn plan(&self, op: &Operation) -> Result<Planned> {
        let add = op.kind == OperationKind::Grant;
        let e = op
            .entitlement
            .as_ref()
            .ok_or_else(|| Error::invalid_input("grant/revoke needs an entitlement"))?;
        let user = match self
            .scim
            .resolve_user(&AccountRef::of_operation(op))
            .await?
        {
            Some(u) => u,
            None if !add => return Ok(Planned::Done(Outcome::no_op(NoOpReason::AlreadyAbsent))),
            None => {
                return Err(
                    Error::not_found("account not found").with_context("identity", &op.identity.id)
                );
            }
        };
        let uid = str_field(&user, "id").ok_or_else(|| {
            Error::new(ErrorKind::Unexpected, "user without id").with_connector(KIND)
        })?;
        let Some(gid) = self.scim.resolve_group(e).await? else {
            return Err(Error::not_found(format!("group {} not found", e.id))
                .with_context("entitlement", &e.id));
        };
        if self.is_member(&gid, &uid).await? == add {
            let reason = if add {
                NoOpReason::AlreadyGranted
            } else {
                NoOpReason::AlreadyAbsent
            };
            return Ok(Planned::Done(Outcome::AlreadyInState {
                reason,
                native_id: Some(uid),
            }));
        }
        Ok(Planned::Change { gid, uid, add })
    }

    /// One PATCH with up to 100 membership changes: one `add` with a value list and
    /// one `remove` per member (`members[value eq "<id>"]`).
    pub(crate) fn patch_body(changes: &[(String, bool)]) -> Value {
        let adds: Vec<Value> = changes
            .iter()
            .filter(|(_, a)| *a)
            .map(|(u, _)| json!({"value": u}))
            .collect();
        let mut ops = Vec::new();
        if !adds.is_empty() {
            ops.push(json!({"op": "add", "path": "members", "value": adds}));
        }
        for (u, _) in changes.iter().filter(|(_, a)| !*a) {
            ops.push(json!({"op": "remove", "path": format!("members[value eq {}]", quote(u))}));
        }
        json!({"schemas": [PATCH_OP], "Operations": ops})
    }

    async fn send_changes(&self, gid: &str, changes: &[(String, bool)]) -> Result<()> {
        let body = Self::patch_body(changes);
        self.scim
            .request(Method::PATCH, &format!("/Groups/{gid}"), &[], Some(&body))
            .await
            .map(|_| ())
    }

    fn finish(op: &Operation, r: Result<Outcome>) -> Result<Outcome> {
        r.map_err(|e| {
            relabel(e)
                .with_operation(op.kind.as_str())
                .with_context("operation_id", &op.id)
        })
    }

    /// `(resources, next startIndex)` of a list endpoint.
    async fn list_raw(
        &self,
        endpoint: &str,
        start: u64,
        count: usize,
    ) -> Result<(Vec<Value>, Option<u64>)> {
        let q = [
            ("startIndex", start.to_string()),
            ("count", count.to_string()),
        ];
        let r = self.scim.request(Method::GET, endpoint, &q, None).await?;
        let items = resources(&r);
        let next = start + items.len() as u64;
        let more = !items.is_empty() && total(&r).is_some_and(|t| next <= t);
        Ok((items, more.then_some(next)))
    }

    /// Members of group `gid` among the users of one user page.
    async fn holders_page(
        &self,
        gid: &str,
        e: &EntitlementRef,
        start: u64,
        limit: usize,
    ) -> Result<(Vec<Assignment>, Option<u64>)> {
        let (users, next) = self.list_raw("/Users", start, limit).await?;
        let mut out = Vec::new();
        for u in users {
            let Some(uid) = str_field(&u, "id") else {
                continue;
            };
            if self.is_member(gid, &uid).await? {
                out.push(Assignment::new(uid, str_field(&u, "externalId"), e.clone()));
            }
        }
        Ok((out, next))
    }

    fn parse_index(c: &Option<String>) -> Result<u64> {
        match c {
            None => Ok(1),
            Some(c) => c
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| bad_cursor(c)),
        }
    }
}

#[async_trait]
impl ProvisioningAdapter for IdentityCenterAdapter {
    fn info(&self) -> AdapterInfo {
        AdapterInfo::new(KIND, self.instance.clone())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    async fn check(&self) -> Result<()> {
        self.scim.check().await.map_err(relabel)
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.caps.check(op)?;
        let r = match op.kind {
            OperationKind::Grant | OperationKind::Revoke => match self.plan(op).await {
                Ok(Planned::Done(o)) => Ok(o),
                Ok(Planned::Change { gid, uid, add }) => self
                    .send_changes(&gid, &[(uid.clone(), add)])
                    .await
                    .map(|_| Outcome::Applied {
                        native_id: Some(uid),
                    }),
                Err(e) => Err(e),
            },
            _ => self.scim.apply(op).await,
        };
        Self::finish(op, r)
    }

    /// Grants and revokes are read one by one, then sent as one PATCH per group with
    /// at most 100 membership changes; other operations run one by one.
    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        let mut out: Vec<Option<Result<Outcome>>> = (0..ops.len()).map(|_| None).collect();
        let mut per_group: BTreeMap<String, Vec<(usize, String, bool)>> = BTreeMap::new();
        for (i, op) in ops.iter().enumerate() {
            if let Err(e) = self.caps.check(op) {
                out[i] = Some(Err(e));
                continue;
            }
            if !matches!(op.kind, OperationKind::Grant | OperationKind::Revoke) {
                out[i] = Some(self.apply(op).await);
                continue;
            }
            match self.plan(op).await {
                Ok(Planned::Done(o)) => out[i] = Some(Ok(o)),
                Ok(Planned::Change { gid, uid, add }) => {
                    per_group.entry(gid).or_default().push((i, uid, add))
                }
                Err(e) => out[i] = Some(Self::finish(op, Err(e))),
            }
        }
        for (gid, changes) in per_group {
            for chunk in changes.chunks(MEMBERSHIP_CHANGES_PER_PATCH) {
                let c: Vec<(String, bool)> =
                    chunk.iter().map(|(_, u, a)| (u.clone(), *a)).collect();
                let r = self.send_changes(&gid, &c).await;
                for (i, uid, _) in chunk {
                    let o = r.clone().map(|_| Outcome::Applied {
                        native_id: Some(uid.clone()),
                    });
                    out[*i] = Some(Self::finish(&ops[*i], o));
                }
            }
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(
                        Error::new(ErrorKind::Unexpected, "operation left without a result")
                            .with_connector(KIND),
                    )
                })
            })
            .collect()
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        self.scim.read(object).await.map_err(relabel)
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        self.scim.list_accounts(page).await.map_err(relabel)
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        self.scim.list_entitlements(page).await.map_err(relabel)
    }

    /// Identity Center cannot list members: holders are found by checking each user
    /// of a page (and an account's groups by checking each group of a page), one
    /// filtered query per pair — correct, and slow on large directories.
    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>> {
        self.caps.check_call("list_assignments")?;
        let limit = page.limit.clamp(1, self.caps.list_page_max);
        let r: Result<Page<Assignment>> = async {
            match scope {
                AssignmentScope::Account(a) => {
                    let start = Self::parse_index(&page.cursor)?;
                    let Some(user) = self.scim.resolve_user(a).await? else {
                        return Ok(Page::last(Vec::new()));
                    };
                    let uid = str_field(&user, "id").unwrap_or_default();
                    let ext = str_field(&user, "externalId");
                    let (groups, next) = self.list_raw("/Groups", start, limit).await?;
                    let mut items = Vec::new();
                    for g in groups {
                        let (Some(gid), Some(name)) =
                            (str_field(&g, "id"), str_field(&g, "displayName"))
                        else {
                            continue;
                        };
                        if self.is_member(&gid, &uid).await? {
                            items.push(Assignment::new(
                                uid.clone(),
                                ext.clone(),
                                EntitlementRef::group(name),
                            ));
                        }
                    }
                    Ok(Page {
                        items,
                        next: next.map(|n| n.to_string()),
                    })
                }
                AssignmentScope::Entitlement(e) => {
                    let start = Self::parse_index(&page.cursor)?;
                    let Some(gid) = self.scim.resolve_group(e).await? else {
                        return Ok(Page::last(Vec::new()));
                    };
                    let (items, next) = self.holders_page(&gid, e, start, limit).await?;
                    Ok(Page {
                        items,
                        next: next.map(|n| n.to_string()),
                    })
                }
                AssignmentScope::All => {
                    // Cursor "<group index>:<user index>", one group per page.
                    let (gi, ui) = match &page.cursor {
                        None => (1u64, 1u64),
                        Some(c) => c
                            .split_once(':')
                            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                            .filter(|(a, b)| *a >= 1 && *b >= 1)
                            .ok_or_else(|| bad_cursor(c))?,
                    };
                    let (groups, gnext) = self.list_raw("/Groups", gi, 1).await?;
                    let Some(g) = groups.first() else {
                        return Ok(Page::last(Vec::new()));
                    };
                    let (Some(gid), Some(name)) = (str_field(g, "id"), str_field(g, "displayName"))
                    else {
                        return Err(Error::new(
                            ErrorKind::Unexpected,
                            "group without id or displayName",
                        ));
                    };
                    let (items, unext) = self
                        .holders_page(&gid, &EntitlementRef::group(name), ui, limit)
                        .await?;
                    let next = match (unext, gnext) {
                        (Some(u), _) => Some(format!("{gi}:{u}")),
                        (None, Some(g)) => Some(format!("{g}:1")),
                        (None, None) => None,
                    };
                    Ok(Page { items, next })
                }
                _ => Err(Error::unsupported("unknown assignment scope")),
            }
        }
        .await;
        r.map_err(|e| relabel(e).with_operation("list_assignments"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_body_shape() {
        let b = IdentityCenterAdapter::patch_body(&[
            ("u1".into(), true),
            ("u2".into(), false),
            ("u3".into(), true),
        ]);
        let ops = b["Operations"].as_array().unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0]["value"].as_array().unwrap().len(), 2);
        assert_eq!(ops[1]["path"], r#"members[value eq "u2"]"#);
    }
}
