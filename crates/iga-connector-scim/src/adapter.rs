//! `impl ProvisioningAdapter for ScimAdapter`.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use iga_adapter::{
    Account, AccountRef, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo,
    Error, ErrorKind, NoOpReason, ObjectRef, Observed, Outcome, Page, PageRequest,
    ProvisioningAdapter, Result, bad_cursor,
};
use iga_directive::{EntitlementKind, EntitlementRef, Operation, OperationKind};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::Client;
use crate::config::ScimConfig;
use crate::mapping::{self, GROUP_SCHEMA, PATCH_OP, filter_literal, str_field};
use crate::{KIND, bulk};

/// What the server advertised in `/ServiceProviderConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerFeatures {
    /// `patch.supported`.
    pub patch: bool,
    /// `bulk.supported`.
    pub bulk: bool,
    /// `bulk.maxOperations` (0 when bulk is unsupported).
    pub bulk_max_operations: usize,
    /// `bulk.maxPayloadSize` in bytes (0 when unknown).
    pub bulk_max_payload: usize,
    /// `filter.supported`.
    pub filter: bool,
    /// `filter.maxResults` (0 when unknown).
    pub filter_max_results: usize,
    /// `etag.supported` (recorded; If-Match is not sent yet).
    pub etag: bool,
}

impl ServerFeatures {
    /// Parse a `ServiceProviderConfig` resource (missing sections = unsupported).
    pub fn from_service_provider_config(v: &Value) -> Self {
        let sup = |k: &str| {
            v.get(k)
                .and_then(|s| s.get("supported"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let num = |k: &str, f: &str| {
            v.get(k)
                .and_then(|s| s.get(f))
                .and_then(|n| {
                    n.as_u64()
                        .or_else(|| n.as_str().and_then(|s| s.parse().ok()))
                })
                .unwrap_or(0) as usize
        };
        let bulk = sup("bulk");
        Self {
            patch: sup("patch"),
            bulk,
            bulk_max_operations: if bulk {
                num("bulk", "maxOperations")
            } else {
                0
            },
            bulk_max_payload: num("bulk", "maxPayloadSize"),
            filter: sup("filter"),
            filter_max_results: num("filter", "maxResults"),
            etag: sup("etag"),
        }
    }

    /// The capabilities these features allow, under `config`'s caps.
    pub fn capabilities(&self, config: &ScimConfig) -> Capabilities {
        let mut c = Capabilities::full([EntitlementKind::Group]);
        // Membership changes need PATCH: a PUT of a whole member list races with
        // every other writer and is not offered.
        c.grant = self.patch;
        c.revoke = self.patch;
        c.create_links_existing = true;
        let mut page = config.page_size.max(1);
        if self.filter_max_results > 0 {
            page = page.min(self.filter_max_results);
        }
        c.list_page_max = page;
        c.batch_max = if self.bulk && self.bulk_max_operations > 1 {
            self.bulk_max_operations.min(config.bulk_max).max(1)
        } else {
            1
        };
        c
    }
}

/// Request counters (for tests, benchmarks and the conformance I/O probe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ScimStats {
    /// HTTP requests sent (including discovery and `/Bulk`).
    pub requests: u64,
    /// `/Bulk` requests sent.
    pub bulk_requests: u64,
}

/// A SCIM 2.0 target. Cheap to clone (shared client and caches).
///
/// Build with [`ScimAdapter::connect`], which reads `/ServiceProviderConfig` once and
/// derives [`Capabilities`] from it.
#[derive(Clone)]
pub struct ScimAdapter {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) features: ServerFeatures,
    pub(crate) caps: Capabilities,
    pub(crate) instance: String,
    /// Entitlement id (displayName or SCIM id) → SCIM group id.
    groups: Mutex<HashMap<String, String>>,
}

impl fmt::Debug for ScimAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScimAdapter")
            .field("instance", &self.inner.instance)
            .field("client", &self.inner.client)
            .field("features", &self.inner.features)
            .finish()
    }
}

impl fmt::Display for ScimAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scim({})", self.inner.instance)
    }
}

fn op_err(e: Error, op: &'static str) -> Error {
    e.with_connector(KIND).with_operation(op)
}

fn resources(body: &Option<Value>) -> Vec<Value> {
    body.as_ref()
        .and_then(|b| b.get("Resources"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn total_results(body: &Option<Value>) -> Option<u64> {
    let t = body.as_ref()?.get("totalResults")?;
    t.as_u64().or_else(|| t.as_str()?.parse().ok())
}

fn parse_index(cursor: &Option<String>) -> Result<u64> {
    match cursor {
        None => Ok(1),
        Some(c) => c
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad_cursor(c)),
    }
}

fn members(group: &Value) -> Vec<String> {
    group
        .get("members")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|x| str_field(x, "value"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
}

impl ScimAdapter {
    /// Connect: build the HTTP client and read `/ServiceProviderConfig`.
    pub async fn connect(config: ScimConfig) -> Result<Self> {
        let client = Client::new(&config)?;
        let spc = client
            .call(Method::GET, "/ServiceProviderConfig", &[], None)
            .await
            .map_err(|e| op_err(e, "discover"))?;
        let features =
            ServerFeatures::from_service_provider_config(spc.body.as_ref().unwrap_or(&Value::Null));
        let caps = features.capabilities(&config);
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                features,
                caps,
                instance: config.instance_label(),
                groups: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// What discovery found.
    pub fn features(&self) -> &ServerFeatures {
        &self.inner.features
    }

    /// Request counters so far.
    pub fn stats(&self) -> ScimStats {
        ScimStats {
            requests: self.inner.client.requests.load(Ordering::Relaxed),
            bulk_requests: self.inner.client.bulk_requests.load(Ordering::Relaxed),
        }
    }

    /// Create a group (for fixtures and set-up); returns its SCIM id. An existing group
    /// with the same `displayName` is returned as is.
    pub async fn create_group(&self, display_name: &str) -> Result<String> {
        if let Some(g) = self.find_group(display_name).await? {
            return Ok(g);
        }
        let body = json!({"schemas": [GROUP_SCHEMA], "displayName": display_name, "members": []});
        let r = self
            .inner
            .client
            .call(Method::POST, "/Groups", &[], Some(&body))
            .await
            .map_err(|e| op_err(e, "create_group"))?;
        r.body
            .as_ref()
            .and_then(|b| str_field(b, "id"))
            .ok_or_else(|| unexpected("group created without an id"))
    }

    /// One raw request to `base + path` with the adapter's client and credentials;
    /// the parsed body (None for 204). For dialect wrappers built on this adapter
    /// (e.g. AWS IAM Identity Center, whose group reads carry no members).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Option<Value>> {
        self.call(method, path, query, body).await.map(|r| r.body)
    }

    /// The SCIM User of an account (native id, then `externalId`, then `userName`).
    pub async fn resolve_user(&self, account: &AccountRef) -> Result<Option<Value>> {
        self.find_user(account).await
    }

    /// The SCIM id of a group named by an entitlement (`displayName`, else the id).
    pub async fn resolve_group(&self, entitlement: &EntitlementRef) -> Result<Option<String>> {
        self.find_group(&entitlement.id).await
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<crate::client::Resp> {
        self.inner.client.call(method, path, query, body).await
    }

    /// GET a resource; 404 → None.
    async fn get_opt(&self, path: &str) -> Result<Option<Value>> {
        match self.call(Method::GET, path, &[], None).await {
            Ok(r) => Ok(r.body),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// First resource matching a filter (server filter when supported, else a scan).
    async fn find_one(&self, endpoint: &str, attr: &str, value: &str) -> Result<Option<Value>> {
        if self.inner.features.filter {
            let q = [
                ("filter", format!("{attr} eq {}", filter_literal(value))),
                ("startIndex", "1".to_string()),
                ("count", "2".to_string()),
            ];
            let r = self.call(Method::GET, endpoint, &q, None).await?;
            return Ok(resources(&r.body).into_iter().next());
        }
        let mut index = 1u64;
        loop {
            let q = [
                ("startIndex", index.to_string()),
                ("count", self.inner.caps.list_page_max.to_string()),
            ];
            let r = self.call(Method::GET, endpoint, &q, None).await?;
            let items = resources(&r.body);
            if let Some(hit) = items.iter().find(|u| {
                mapping::get_path(u, attr)
                    .and_then(|v| v.as_str().map(|s| s.eq_ignore_ascii_case(value)))
                    .unwrap_or(false)
            }) {
                return Ok(Some(hit.clone()));
            }
            index += items.len() as u64;
            if items.is_empty() || total_results(&r.body).is_none_or(|t| index > t) {
                return Ok(None);
            }
        }
    }

    /// The SCIM User of an account: native id hint, then `externalId`, then `userName`.
    pub(crate) async fn find_user(&self, r: &AccountRef) -> Result<Option<Value>> {
        if let Some(id) = &r.native_id
            && let Some(u) = self.get_opt(&format!("/Users/{id}")).await?
        {
            return Ok(Some(u));
        }
        if let Some(u) = self
            .find_one("/Users", "externalId", &r.identity_id)
            .await?
        {
            return Ok(Some(u));
        }
        match &r.login {
            Some(l) => self.find_one("/Users", "userName", l).await,
            None => Ok(None),
        }
    }

    async fn find_group(&self, key: &str) -> Result<Option<String>> {
        if let Some(id) = self.inner.groups.lock().expect("group cache").get(key) {
            return Ok(Some(id.clone()));
        }
        let found = match self.find_one("/Groups", "displayName", key).await? {
            Some(g) => str_field(&g, "id"),
            None => self
                .get_opt(&format!("/Groups/{key}"))
                .await?
                .and_then(|g| str_field(&g, "id")),
        };
        if let Some(id) = &found {
            self.inner
                .groups
                .lock()
                .expect("group cache")
                .insert(key.to_string(), id.clone());
        }
        Ok(found)
    }

    /// Resolve and read a group; a stale cache entry is re-resolved once.
    pub(crate) async fn read_group(&self, e: &EntitlementRef) -> Result<Option<(String, Value)>> {
        for _ in 0..2 {
            let Some(id) = self.find_group(&e.id).await? else {
                return Ok(None);
            };
            if let Some(g) = self.get_opt(&format!("/Groups/{id}")).await? {
                return Ok(Some((id, g)));
            }
            self.inner.groups.lock().expect("group cache").remove(&e.id);
        }
        Ok(None)
    }

    pub(crate) async fn link_existing(&self, op: &Operation) -> Result<Outcome> {
        let r = AccountRef::of_operation(op);
        let found = match &r.login {
            Some(l) => self.find_one("/Users", "userName", l).await?,
            None => None,
        };
        let found = match found {
            Some(u) => Some(u),
            None => self.find_user(&r).await?,
        };
        match found.and_then(|u| str_field(&u, "id")) {
            Some(id) => Ok(Outcome::AlreadyInState {
                reason: NoOpReason::LinkedExisting,
                native_id: Some(id),
            }),
            None => Err(Error::new(
                ErrorKind::AlreadyExists,
                "userName is taken but no matching user could be found to link",
            )
            .with_connector(KIND)),
        }
    }

    async fn create(&self, op: &Operation) -> Result<Outcome> {
        let body = mapping::user_resource(&op.identity);
        match self.call(Method::POST, "/Users", &[], Some(&body)).await {
            Ok(r) => Ok(Outcome::Applied {
                native_id: r.body.as_ref().and_then(|b| str_field(b, "id")),
            }),
            Err(e) if e.kind() == ErrorKind::AlreadyExists || e.kind() == ErrorKind::Conflict => {
                self.link_existing(op).await
            }
            Err(e) => Err(e),
        }
    }

    async fn require_user(&self, op: &Operation) -> Result<Value> {
        self.find_user(&AccountRef::of_operation(op))
            .await?
            .ok_or_else(|| {
                Error::not_found("account not found")
                    .with_connector(KIND)
                    .with_context("identity", &op.identity.id)
            })
    }

    /// Apply attribute changes to a user: PATCH replace when supported, else PUT.
    async fn change_user(&self, user: &Value, changes: Vec<(String, Value)>) -> Result<()> {
        let id = str_field(user, "id").ok_or_else(|| unexpected("user without id"))?;
        if self.inner.features.patch {
            let ops: Vec<Value> = changes
                .into_iter()
                .map(|(path, value)| {
                    let value = if path == "emails" {
                        mapping::emails_value(&value)
                    } else {
                        value
                    };
                    json!({"op": "replace", "path": path, "value": value})
                })
                .collect();
            let body = json!({"schemas": [PATCH_OP], "Operations": ops});
            // 200 with the resource and 204 without a body are both success.
            self.call(Method::PATCH, &format!("/Users/{id}"), &[], Some(&body))
                .await?;
        } else {
            let mut full = user.clone();
            let obj = full
                .as_object_mut()
                .ok_or_else(|| unexpected("user is not an object"))?;
            obj.remove("meta");
            obj.remove("groups");
            for (path, value) in changes {
                mapping::set_path(obj, &path, value);
            }
            self.call(Method::PUT, &format!("/Users/{id}"), &[], Some(&full))
                .await?;
        }
        Ok(())
    }

    async fn update(&self, op: &Operation) -> Result<Outcome> {
        let user = self.require_user(op).await?;
        let wanted = if op.attributes.is_empty() {
            mapping::desired_from_identity(&op.identity)
        } else {
            mapping::desired_from_attributes(&op.attributes)
        };
        let changes: Vec<(String, Value)> = wanted
            .into_iter()
            .filter(|(p, v)| !mapping::same_value(mapping::get_path(&user, p).as_ref(), v))
            .collect();
        let native_id = str_field(&user, "id");
        if changes.is_empty() {
            return Ok(Outcome::AlreadyInState {
                reason: NoOpReason::NoChange,
                native_id,
            });
        }
        self.change_user(&user, changes).await?;
        Ok(Outcome::Applied { native_id })
    }

    async fn set_active(&self, op: &Operation, active: bool) -> Result<Outcome> {
        let user = self.require_user(op).await?;
        let native_id = str_field(&user, "id");
        if mapping::is_active(&user) == active {
            let reason = if active {
                NoOpReason::AlreadyEnabled
            } else {
                NoOpReason::AlreadyDisabled
            };
            return Ok(Outcome::AlreadyInState { reason, native_id });
        }
        self.change_user(&user, vec![("active".into(), Value::Bool(active))])
            .await?;
        Ok(Outcome::Applied { native_id })
    }

    async fn delete(&self, op: &Operation) -> Result<Outcome> {
        let Some(user) = self.find_user(&AccountRef::of_operation(op)).await? else {
            return Ok(Outcome::no_op(NoOpReason::AccountAbsent));
        };
        let id = str_field(&user, "id").ok_or_else(|| unexpected("user without id"))?;
        match self
            .call(Method::DELETE, &format!("/Users/{id}"), &[], None)
            .await
        {
            Ok(_) => Ok(Outcome::Applied {
                native_id: Some(id),
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Outcome::AlreadyInState {
                reason: NoOpReason::AccountAbsent,
                native_id: Some(id),
            }),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn membership_patch(add: bool, user_id: &str) -> Value {
        let op = if add {
            json!({"op": "add", "path": "members", "value": [{"value": user_id}]})
        } else {
            json!({"op": "remove", "path": format!("members[value eq {}]", filter_literal(user_id))})
        };
        json!({"schemas": [PATCH_OP], "Operations": [op]})
    }

    fn entitlement_of(op: &Operation) -> Result<&EntitlementRef> {
        op.entitlement
            .as_ref()
            .ok_or_else(|| Error::invalid_input("grant/revoke needs an entitlement"))
    }

    async fn membership(&self, op: &Operation, add: bool) -> Result<Outcome> {
        let e = Self::entitlement_of(op)?;
        let user = match self.find_user(&AccountRef::of_operation(op)).await? {
            Some(u) => u,
            None if !add => return Ok(Outcome::no_op(NoOpReason::AlreadyAbsent)),
            None => return Err(Error::not_found("account not found").with_connector(KIND)),
        };
        let uid = str_field(&user, "id").ok_or_else(|| unexpected("user without id"))?;
        let Some((gid, group)) = self.read_group(e).await? else {
            return Err(Error::not_found(format!("group {} not found", e.id))
                .with_connector(KIND)
                .with_context("entitlement", &e.id));
        };
        // Decide from the Group's members, never from User.groups (not maintained
        // by every server).
        let is_member = members(&group).iter().any(|m| m == &uid);
        if is_member == add {
            let reason = if add {
                NoOpReason::AlreadyGranted
            } else {
                NoOpReason::AlreadyAbsent
            };
            return Ok(Outcome::AlreadyInState {
                reason,
                native_id: Some(uid),
            });
        }
        let body = Self::membership_patch(add, &uid);
        self.call(Method::PATCH, &format!("/Groups/{gid}"), &[], Some(&body))
            .await?;
        Ok(Outcome::Applied {
            native_id: Some(uid),
        })
    }

    pub(crate) async fn apply_checked(&self, op: &Operation) -> Result<Outcome> {
        match op.kind {
            OperationKind::CreateAccount => self.create(op).await,
            OperationKind::UpdateAccount => self.update(op).await,
            OperationKind::DisableAccount => self.set_active(op, false).await,
            OperationKind::EnableAccount => self.set_active(op, true).await,
            OperationKind::DeleteAccount => self.delete(op).await,
            OperationKind::Grant => self.membership(op, true).await,
            OperationKind::Revoke => self.membership(op, false).await,
            _ => Err(Error::unsupported(format!(
                "operation {} is not supported",
                op.kind
            ))),
        }
    }

    /// One page of a list endpoint: `(resources, next cursor)`.
    async fn list_page(
        &self,
        endpoint: &str,
        page: &PageRequest,
        extra: &[(&str, String)],
    ) -> Result<(Vec<Value>, Option<String>)> {
        let start = parse_index(&page.cursor)?;
        let count = page.limit.clamp(1, self.inner.caps.list_page_max);
        let mut q = vec![
            ("startIndex", start.to_string()),
            ("count", count.to_string()),
        ];
        q.extend(extra.iter().cloned());
        let r = self.call(Method::GET, endpoint, &q, None).await?;
        let mut items = resources(&r.body);
        items.truncate(count);
        let next_index = start + items.len() as u64;
        let more = !items.is_empty()
            && match total_results(&r.body) {
                Some(t) => next_index <= t,
                None => items.len() == count,
            };
        Ok((items, more.then(|| next_index.to_string())))
    }

    /// Holders of one group from member offset `offset`, resolving each member to
    /// its `externalId`; members whose user is gone (dangling) are skipped.
    async fn group_holders(
        &self,
        e: &EntitlementRef,
        group: &Value,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Assignment>, bool)> {
        let all = members(group);
        let slice: Vec<&String> = all.iter().skip(offset).take(limit).collect();
        let mut out = Vec::new();
        for m in &slice {
            if let Some(u) = self.get_opt(&format!("/Users/{m}")).await? {
                out.push(Assignment::new(
                    m.to_string(),
                    str_field(&u, "externalId"),
                    entitlement_ref(group).unwrap_or_else(|| e.clone()),
                ));
            }
        }
        Ok((out, offset + slice.len() < all.len()))
    }
}

fn unexpected(msg: &str) -> Error {
    Error::new(ErrorKind::Unexpected, msg.to_string()).with_connector(KIND)
}

fn entitlement_ref(group: &Value) -> Option<EntitlementRef> {
    let name = str_field(group, "displayName")?;
    let mut e = EntitlementRef::group(name.clone());
    e.display_name = Some(name);
    Some(e)
}

#[async_trait]
impl ProvisioningAdapter for ScimAdapter {
    fn info(&self) -> AdapterInfo {
        AdapterInfo::new(KIND, self.inner.instance.clone())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.inner.caps
    }

    async fn check(&self) -> Result<()> {
        let q = [("startIndex", "1".to_string()), ("count", "1".to_string())];
        self.call(Method::GET, "/Users", &q, None)
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
        if self.inner.caps.batch_max > 1 {
            bulk::apply_bulk(self, ops).await
        } else {
            iga_adapter::batch::sequential(self, ops).await
        }
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        self.inner.caps.check_call("read")?;
        let r = match object {
            ObjectRef::Account(a) => self
                .find_user(a)
                .await
                .map(|u| u.and_then(|u| mapping::account_from_user(&u).map(Observed::Account))),
            ObjectRef::Entitlement(e) => self.read_group(e).await.map(|g| {
                g.and_then(|(_, g)| entitlement_ref(&g))
                    .map(|e| Observed::Entitlement(EntitlementInfo::new(e)))
            }),
            _ => Err(Error::unsupported("unknown object kind")),
        };
        r.map_err(|e| op_err(e, "read"))
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        self.inner.caps.check_call("list_accounts")?;
        let (items, next) = self
            .list_page("/Users", &page, &[])
            .await
            .map_err(|e| op_err(e, "list_accounts"))?;
        Ok(Page {
            items: items
                .iter()
                .filter_map(mapping::account_from_user)
                .collect(),
            next,
        })
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        self.inner.caps.check_call("list_entitlements")?;
        let extra = [("excludedAttributes", "members".to_string())];
        let (items, next) = self
            .list_page("/Groups", &page, &extra)
            .await
            .map_err(|e| op_err(e, "list_entitlements"))?;
        Ok(Page {
            items: items
                .iter()
                .filter_map(entitlement_ref)
                .map(EntitlementInfo::new)
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
        let limit = page.limit.clamp(1, self.inner.caps.list_page_max);
        let r: Result<Page<Assignment>> = async {
            match scope {
                AssignmentScope::Account(a) => {
                    let Some(user) = self.find_user(a).await? else {
                        return Ok(Page::last(Vec::new()));
                    };
                    let uid =
                        str_field(&user, "id").ok_or_else(|| unexpected("user without id"))?;
                    let ext = str_field(&user, "externalId");
                    let mut extra = vec![("attributes", "displayName".to_string())];
                    let mut groups;
                    let next;
                    if self.inner.features.filter {
                        extra.push((
                            "filter",
                            format!("members[value eq {}]", filter_literal(&uid)),
                        ));
                        (groups, next) = self.list_page("/Groups", &page, &extra).await?;
                    } else {
                        // No filter: scan groups page by page and keep those holding uid.
                        let (g, n) = self.list_page("/Groups", &page, &[]).await?;
                        groups = g;
                        groups.retain(|g| members(g).contains(&uid));
                        next = n;
                    }
                    let items = groups
                        .iter()
                        .filter_map(entitlement_ref)
                        .map(|e| Assignment::new(uid.clone(), ext.clone(), e))
                        .collect();
                    Ok(Page { items, next })
                }
                AssignmentScope::Entitlement(e) => {
                    let Some((_, group)) = self.read_group(e).await? else {
                        return Ok(Page::last(Vec::new()));
                    };
                    let offset = match &page.cursor {
                        None => 0,
                        Some(c) => c.parse::<usize>().map_err(|_| bad_cursor(c))?,
                    };
                    let (items, more) = self.group_holders(e, &group, offset, limit).await?;
                    Ok(Page {
                        items,
                        next: more.then(|| (offset + limit).to_string()),
                    })
                }
                AssignmentScope::All => {
                    // Cursor "<group startIndex>:<member offset>"; one group per page.
                    let (gi, mo) = match &page.cursor {
                        None => (1u64, 0usize),
                        Some(c) => c
                            .split_once(':')
                            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                            .filter(|(a, _)| *a >= 1)
                            .ok_or_else(|| bad_cursor(c))?,
                    };
                    let q = [("startIndex", gi.to_string()), ("count", "1".to_string())];
                    let r = self.call(Method::GET, "/Groups", &q, None).await?;
                    let Some(group) = resources(&r.body).into_iter().next() else {
                        return Ok(Page::last(Vec::new()));
                    };
                    let e = entitlement_ref(&group)
                        .ok_or_else(|| unexpected("group without displayName"))?;
                    let (items, more) = self.group_holders(&e, &group, mo, limit).await?;
                    let next = if more {
                        Some(format!("{gi}:{}", mo + limit))
                    } else if total_results(&r.body).is_some_and(|t| gi < t) {
                        Some(format!("{}:0", gi + 1))
                    } else {
                        None
                    };
                    Ok(Page { items, next })
                }
                _ => Err(Error::unsupported("unknown assignment scope")),
            }
        }
        .await;
        r.map_err(|e| op_err(e, "list_assignments"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_derives_capabilities() {
        let cfg = ScimConfig::new("http://127.0.0.1:1/v2").unwrap();
        let spc = json!({
            "patch": {"supported": true},
            "bulk": {"supported": true, "maxOperations": "50", "maxPayloadSize": 1048576},
            "filter": {"supported": true, "maxResults": 40},
            "etag": {"supported": true}
        });
        let f = ServerFeatures::from_service_provider_config(&spc);
        assert!(f.patch && f.bulk && f.filter && f.etag);
        assert_eq!(f.bulk_max_operations, 50);
        let c = f.capabilities(&cfg);
        assert_eq!(c.batch_max, 50);
        assert_eq!(c.list_page_max, 40);
        assert!(c.grant && c.revoke && c.create_links_existing);

        let bare = ServerFeatures::from_service_provider_config(&json!({}));
        let c = bare.capabilities(&cfg);
        assert_eq!(c.batch_max, 1);
        assert!(!c.grant && !c.revoke);
        assert!(c.update_account && c.disable_account, "PUT fallback");
        let capped = f.capabilities(&cfg.clone().with_bulk_max(1));
        assert_eq!(capped.batch_max, 1);
    }

    #[test]
    fn membership_patch_shapes() {
        let add = ScimAdapter::membership_patch(true, "u1");
        assert_eq!(add["Operations"][0]["value"][0]["value"], "u1");
        let rm = ScimAdapter::membership_patch(false, "u\"1");
        assert_eq!(rm["Operations"][0]["path"], r#"members[value eq "u\"1"]"#);
    }
}
