//! `impl ProvisioningAdapter for GoogleAdapter`.

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
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::{Call, Client, random_password, seg};
use crate::config::GoogleConfig;
use crate::{KIND, error};

/// `externalIds[].customType` that carries our identity id.
const ID_TYPE: &str = "iga-identity";

/// Request counters (for tests, benchmarks and the conformance I/O probe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct GoogleStats {
    /// HTTP requests to the Directory API, batch requests included (token requests excluded).
    pub requests: u64,
    /// Batch requests.
    pub batch_requests: u64,
    /// Token endpoint requests.
    pub token_requests: u64,
}

/// A Google Workspace tenant through the Admin SDK Directory API. Cheap to clone.
#[derive(Clone)]
pub struct GoogleAdapter {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    config: GoogleConfig,
    caps: Capabilities,
    instance: String,
}

impl fmt::Debug for GoogleAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleAdapter")
            .field("instance", &self.inner.instance)
            .field("client", &self.inner.client)
            .finish()
    }
}

impl fmt::Display for GoogleAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "google({})", self.inner.instance)
    }
}

fn op_err(e: Error, op: &'static str) -> Error {
    e.with_connector(KIND).with_operation(op)
}

fn unexpected(msg: &str) -> Error {
    Error::new(ErrorKind::Unexpected, msg.to_string()).with_connector(KIND)
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

/// An account from a Directory `User` resource.
fn account_from_user(u: &Value) -> Option<Account> {
    let mut a = Account::new(s(u, "id")?);
    a.login = s(u, "primaryEmail");
    a.email = a.login.clone();
    let name = u.get("name");
    a.display_name = name.and_then(|n| s(n, "displayName").or_else(|| s(n, "fullName")));
    a.enabled = !u.get("suspended").and_then(Value::as_bool).unwrap_or(false);
    a.identity_id = u
        .get("externalIds")
        .and_then(Value::as_array)
        .and_then(|ids| {
            ids.iter()
                .find(|x| s(x, "customType").as_deref() == Some(ID_TYPE))
                .and_then(|x| s(x, "value"))
        });
    Some(a)
}

fn group_ref(g: &Value) -> Option<EntitlementRef> {
    let mut e = EntitlementRef::group(s(g, "email")?);
    e.display_name = s(g, "name");
    Some(e)
}

/// The name attributes an update may set: operation attribute → `name` field.
const NAME_ATTRS: [(&str, &str); 3] = [
    ("display_name", "displayName"),
    ("given_name", "givenName"),
    ("family_name", "familyName"),
];

impl GoogleAdapter {
    /// Build the adapter (no I/O: the token is fetched on first use).
    pub fn new(config: GoogleConfig) -> Result<Self> {
        let client = Client::new(&config)?;
        let mut caps = Capabilities::full([EntitlementKind::Group]);
        caps.list_page_max = config.page_size;
        caps.batch_max = config.batch_max;
        caps.create_links_existing = true;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                instance: config.instance_label(),
                config,
                caps,
            }),
        })
    }

    /// Request counters so far.
    pub fn stats(&self) -> GoogleStats {
        let c = &self.inner.client;
        GoogleStats {
            requests: c.requests.load(Ordering::Relaxed),
            batch_requests: c.batch_requests.load(Ordering::Relaxed),
            token_requests: c.auth.token_requests.load(Ordering::Relaxed),
        }
    }

    /// Create a group (set-up and fixtures); an existing group is left as is.
    pub async fn create_group(&self, email: &str, name: &str) -> Result<()> {
        let body = json!({"email": email, "name": name});
        match self.call(Method::POST, "/groups", &[], Some(&body)).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(op_err(e, "create_group")),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Option<Value>> {
        self.inner.client.call(method, path, query, body).await
    }

    fn key_of(&self, r: &AccountRef) -> String {
        self.inner
            .config
            .user_key(r.login.as_deref().unwrap_or(&r.identity_id))
    }

    fn op_key(&self, op: &Operation) -> String {
        self.inner.config.user_key(op.identity.login())
    }

    async fn get_user(&self, key: &str) -> Result<Option<Value>> {
        match self
            .call(Method::GET, &format!("/users/{}", seg(key)), &[], None)
            .await
        {
            Ok(v) => Ok(v),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The user of an account: native id hint first, then the login-derived address.
    async fn find_user(&self, r: &AccountRef) -> Result<Option<Value>> {
        if let Some(id) = &r.native_id
            && let Some(u) = self.get_user(id).await?
        {
            return Ok(Some(u));
        }
        self.get_user(&self.key_of(r)).await
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

    async fn create(&self, op: &Operation) -> Result<Outcome> {
        let who = &op.identity;
        let key = self.op_key(op);
        let local = key.split('@').next().unwrap_or(&key).to_string();
        let mut name = json!({
            "givenName": who.given_name.clone().unwrap_or_else(|| local.clone()),
            "familyName": who.family_name.clone().unwrap_or_else(|| local.clone()),
        });
        if let Some(d) = &who.display_name {
            name["displayName"] = json!(d);
        }
        let body = json!({
            "primaryEmail": key,
            "name": name,
            "password": random_password(),
            "changePasswordAtNextLogin": true,
            "externalIds": [{"type": "custom", "customType": ID_TYPE, "value": who.id}],
        });
        match self.call(Method::POST, "/users", &[], Some(&body)).await {
            Ok(u) => Ok(Outcome::Applied {
                native_id: u.as_ref().and_then(|u| s(u, "id")),
            }),
            Err(e) if matches!(e.kind(), ErrorKind::AlreadyExists | ErrorKind::Conflict) => {
                match self.get_user(&key).await? {
                    Some(u) => Ok(Outcome::AlreadyInState {
                        reason: NoOpReason::LinkedExisting,
                        native_id: s(&u, "id"),
                    }),
                    None => Err(Error::new(
                        ErrorKind::AlreadyExists,
                        "the address is taken but no user could be found to link",
                    )
                    .with_connector(KIND)),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn update(&self, op: &Operation) -> Result<Outcome> {
        let mut wanted: Vec<(&str, String)> = Vec::new();
        if op.attributes.is_empty() {
            let who = &op.identity;
            for (field, v) in [
                ("displayName", &who.display_name),
                ("givenName", &who.given_name),
                ("familyName", &who.family_name),
            ] {
                if let Some(v) = v {
                    wanted.push((field, v.clone()));
                }
            }
        } else {
            for (k, v) in &op.attributes {
                let field = NAME_ATTRS
                    .iter()
                    .find(|(a, _)| a == k)
                    .map(|(_, f)| *f)
                    .ok_or_else(|| {
                        Error::invalid_input(format!(
                            "attribute `{k}` cannot be updated (supported: display_name, given_name, family_name)"
                        ))
                        .with_connector(KIND)
                    })?;
                let v = v.as_str().ok_or_else(|| {
                    Error::invalid_input(format!("attribute `{k}` must be a string"))
                        .with_connector(KIND)
                })?;
                wanted.push((field, v.to_string()));
            }
        }
        let user = self.require_user(op).await?;
        let id = s(&user, "id").ok_or_else(|| unexpected("user without id"))?;
        let current = user.get("name").cloned().unwrap_or(Value::Null);
        let mut patch = Map::new();
        for (field, v) in wanted {
            if current.get(field).and_then(Value::as_str) != Some(v.as_str()) {
                patch.insert(field.to_string(), Value::String(v));
            }
        }
        if patch.is_empty() {
            return Ok(Outcome::AlreadyInState {
                reason: NoOpReason::NoChange,
                native_id: Some(id),
            });
        }
        let body = json!({"name": patch});
        self.call(
            Method::PATCH,
            &format!("/users/{}", seg(&id)),
            &[],
            Some(&body),
        )
        .await?;
        Ok(Outcome::Applied {
            native_id: Some(id),
        })
    }

    async fn set_suspended(&self, op: &Operation, suspended: bool) -> Result<Outcome> {
        let user = self.require_user(op).await?;
        let id = s(&user, "id").ok_or_else(|| unexpected("user without id"))?;
        if user
            .get("suspended")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            == suspended
        {
            let reason = if suspended {
                NoOpReason::AlreadyDisabled
            } else {
                NoOpReason::AlreadyEnabled
            };
            return Ok(Outcome::AlreadyInState {
                reason,
                native_id: Some(id),
            });
        }
        let body = json!({"suspended": suspended});
        self.call(
            Method::PATCH,
            &format!("/users/{}", seg(&id)),
            &[],
            Some(&body),
        )
        .await?;
        Ok(Outcome::Applied {
            native_id: Some(id),
        })
    }

    /// The single call of an operation that needs no read first (delete, grant,
    /// revoke) — these are the operations the native batch carries.
    fn single_call(&self, op: &Operation) -> Option<Call> {
        let key = self.op_key(op);
        let group = || op.entitlement.as_ref().map(|e| seg(&e.id));
        match op.kind {
            OperationKind::DeleteAccount => Some(Call {
                method: Method::DELETE,
                path: format!("/users/{}", seg(&key)),
                body: None,
            }),
            OperationKind::Grant => Some(Call {
                method: Method::POST,
                path: format!("/groups/{}/members", group()?),
                body: Some(json!({"email": key, "role": "MEMBER"})),
            }),
            OperationKind::Revoke => Some(Call {
                method: Method::DELETE,
                path: format!("/groups/{}/members/{}", group()?, seg(&key)),
                body: None,
            }),
            _ => None,
        }
    }

    /// Map the answer of [`single_call`](Self::single_call) to an outcome (§0.2:
    /// insert duplicate 409 and delete-missing-member 404 are no-ops).
    fn interpret(op: &Operation, r: Result<Option<Value>>) -> Result<Outcome> {
        let id = |v: &Option<Value>| v.as_ref().and_then(|v| s(v, "id"));
        match (op.kind, r) {
            (_, Ok(v)) => Ok(Outcome::Applied { native_id: id(&v) }),
            (OperationKind::DeleteAccount, Err(e)) if e.kind() == ErrorKind::NotFound => {
                Ok(Outcome::no_op(NoOpReason::AccountAbsent))
            }
            (OperationKind::Grant, Err(e)) if e.kind() == ErrorKind::AlreadyExists => {
                Ok(Outcome::no_op(NoOpReason::AlreadyGranted))
            }
            (OperationKind::Revoke, Err(e))
                if e.kind() == ErrorKind::NotFound && error::names_member(&e) =>
            {
                Ok(Outcome::no_op(NoOpReason::AlreadyAbsent))
            }
            (OperationKind::Grant | OperationKind::Revoke, Err(e))
                if e.kind() == ErrorKind::NotFound =>
            {
                let which = if error::names_member(&e) {
                    "account"
                } else {
                    "group"
                };
                let ent = op.entitlement.as_ref().map(|e| e.id.as_str()).unwrap_or("");
                Err(Error::not_found(format!("{which} not found"))
                    .with_connector(KIND)
                    .with_context("entitlement", ent))
            }
            (_, Err(e)) => Err(e),
        }
    }

    async fn apply_checked(&self, op: &Operation) -> Result<Outcome> {
        if let Some(c) = self.single_call(op) {
            let r = self.call(c.method, &c.path, &[], c.body.as_ref()).await;
            return Self::interpret(op, r);
        }
        match op.kind {
            OperationKind::CreateAccount => self.create(op).await,
            OperationKind::UpdateAccount => self.update(op).await,
            OperationKind::DisableAccount => self.set_suspended(op, true).await,
            OperationKind::EnableAccount => self.set_suspended(op, false).await,
            _ => Err(Error::unsupported(format!(
                "operation {} is not supported",
                op.kind
            ))),
        }
    }

    fn finish(op: &Operation, r: Result<Outcome>) -> Result<Outcome> {
        r.map_err(|e| op_err(e, op.kind.as_str()).with_context("operation_id", &op.id))
    }

    fn page_query(&self, page: &PageRequest, max: usize) -> Vec<(&'static str, String)> {
        let n = page.limit.clamp(1, self.inner.caps.list_page_max.min(max));
        let mut q = vec![("maxResults", n.to_string())];
        if let Some(c) = &page.cursor {
            q.push(("pageToken", c.clone()));
        }
        q
    }

    fn list_of(v: &Option<Value>, field: &str) -> (Vec<Value>, Option<String>) {
        let items = v
            .as_ref()
            .and_then(|v| v.get(field))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let next = v
            .as_ref()
            .and_then(|v| s(v, "nextPageToken"))
            .filter(|t| !t.is_empty());
        (items, next)
    }

    /// A page of `/groups/{g}/members`, members resolved to accounts (for the identity id).
    async fn holders(&self, e: &EntitlementRef, page: &PageRequest) -> Result<Page<Assignment>> {
        let q = self.page_query(page, 200);
        let r = match self
            .call(
                Method::GET,
                &format!("/groups/{}/members", seg(&e.id)),
                &q,
                None,
            )
            .await
        {
            Ok(r) => r,
            Err(err) if err.kind() == ErrorKind::NotFound && page.cursor.is_none() => {
                return Ok(Page::last(Vec::new()));
            }
            Err(err) => return Err(err),
        };
        let (members, next) = Self::list_of(&r, "members");
        let mut items = Vec::new();
        for m in members {
            if s(&m, "type").as_deref().unwrap_or("USER") != "USER" {
                continue;
            }
            let Some(mid) = s(&m, "id") else { continue };
            let identity = self
                .get_user(&mid)
                .await?
                .and_then(|u| account_from_user(&u))
                .and_then(|a| a.identity_id);
            items.push(Assignment::new(mid, identity, e.clone()));
        }
        Ok(Page { items, next })
    }
}

#[async_trait]
impl ProvisioningAdapter for GoogleAdapter {
    fn info(&self) -> AdapterInfo {
        AdapterInfo::new(KIND, self.inner.instance.clone())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.inner.caps
    }

    async fn check(&self) -> Result<()> {
        let q = [
            ("customer", self.inner.config.customer.clone()),
            ("maxResults", "1".to_string()),
        ];
        self.call(Method::GET, "/users", &q, None)
            .await
            .map(|_| ())
            .map_err(|e| op_err(e, "check"))
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.inner.caps.check(op)?;
        Self::finish(op, self.apply_checked(op).await)
    }

    /// Deletes, grants and revokes travel in HTTP batches of up to `batch_max` calls
    /// (answers in request order, executed by Google in any order — the engine never
    /// puts dependent operations in one batch); operations that read first (create,
    /// update, disable, enable) run one by one.
    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        let mut out: Vec<Option<Result<Outcome>>> = (0..ops.len()).map(|_| None).collect();
        let mut batched: Vec<(usize, Call)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            if let Err(e) = self.inner.caps.check(op) {
                out[i] = Some(Err(e));
                continue;
            }
            match self.single_call(op) {
                Some(c) if self.inner.caps.batch_max > 1 => batched.push((i, c)),
                _ => out[i] = Some(Self::finish(op, self.apply_checked(op).await)),
            }
        }
        for chunk in batched.chunks(self.inner.caps.batch_max) {
            let calls: Vec<Call> = chunk.iter().map(|(_, c)| c.clone()).collect();
            match self.inner.client.batch(&calls).await {
                Ok(results) => {
                    for ((i, _), r) in chunk.iter().zip(results) {
                        out[*i] = Some(Self::finish(&ops[*i], Self::interpret(&ops[*i], r)));
                    }
                }
                Err(e) => {
                    for (i, _) in chunk {
                        out[*i] = Some(Self::finish(&ops[*i], Err(e.clone())));
                    }
                }
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(unexpected("operation left without a result"))))
            .collect()
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        self.inner.caps.check_call("read")?;
        let r = match object {
            ObjectRef::Account(a) => self
                .find_user(a)
                .await
                .map(|u| u.and_then(|u| account_from_user(&u).map(Observed::Account))),
            ObjectRef::Entitlement(e) => match self
                .call(Method::GET, &format!("/groups/{}", seg(&e.id)), &[], None)
                .await
            {
                Ok(g) => Ok(g
                    .as_ref()
                    .and_then(group_ref)
                    .map(|e| Observed::Entitlement(EntitlementInfo::new(e)))),
                Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
                Err(err) => Err(err),
            },
            _ => Err(Error::unsupported("unknown object kind")),
        };
        r.map_err(|e| op_err(e, "read"))
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        self.inner.caps.check_call("list_accounts")?;
        let mut q = self.page_query(&page, 500);
        q.push(("customer", self.inner.config.customer.clone()));
        q.push(("orderBy", "email".into()));
        let r = self
            .call(Method::GET, "/users", &q, None)
            .await
            .map_err(|e| op_err(e, "list_accounts"))?;
        let (users, next) = Self::list_of(&r, "users");
        Ok(Page {
            items: users.iter().filter_map(account_from_user).collect(),
            next,
        })
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        self.inner.caps.check_call("list_entitlements")?;
        let mut q = self.page_query(&page, 200);
        q.push(("customer", self.inner.config.customer.clone()));
        let r = self
            .call(Method::GET, "/groups", &q, None)
            .await
            .map_err(|e| op_err(e, "list_entitlements"))?;
        let (groups, next) = Self::list_of(&r, "groups");
        Ok(Page {
            items: groups
                .iter()
                .filter_map(group_ref)
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
        let r: Result<Page<Assignment>> = async {
            match scope {
                AssignmentScope::Account(a) => {
                    let Some(user) = self.find_user(a).await? else {
                        return Ok(Page::last(Vec::new()));
                    };
                    let acc =
                        account_from_user(&user).ok_or_else(|| unexpected("user without id"))?;
                    let mut q = self.page_query(&page, 200);
                    q.push(("userKey", acc.native_id.clone()));
                    let r = self.call(Method::GET, "/groups", &q, None).await?;
                    let (groups, next) = Self::list_of(&r, "groups");
                    let items = groups
                        .iter()
                        .filter_map(group_ref)
                        .map(|e| Assignment::new(acc.native_id.clone(), acc.identity_id.clone(), e))
                        .collect();
                    Ok(Page { items, next })
                }
                AssignmentScope::Entitlement(e) => self.holders(e, &page).await,
                AssignmentScope::All => {
                    // Cursor "<group page token>|<member page token>", one group per page.
                    let (gt, mt) = match &page.cursor {
                        None => (String::new(), String::new()),
                        Some(c) => c
                            .split_once('|')
                            .map(|(a, b)| (a.to_string(), b.to_string()))
                            .ok_or_else(|| bad_cursor(c))?,
                    };
                    let mut q = vec![
                        ("customer", self.inner.config.customer.clone()),
                        ("maxResults", "1".to_string()),
                    ];
                    if !gt.is_empty() {
                        q.push(("pageToken", gt.clone()));
                    }
                    let r = self.call(Method::GET, "/groups", &q, None).await?;
                    let (groups, gnext) = Self::list_of(&r, "groups");
                    let Some(e) = groups.first().and_then(group_ref) else {
                        return Ok(Page::last(Vec::new()));
                    };
                    let mp = PageRequest {
                        cursor: (!mt.is_empty()).then_some(mt),
                        limit: page.limit,
                    };
                    let p = self.holders(&e, &mp).await?;
                    let next = match (p.next, gnext) {
                        (Some(m), _) => Some(format!("{gt}|{m}")),
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
