//! `impl ProvisioningAdapter for EntraAdapter`: users, reads and lists.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use http::Method;
use iga_adapter::{
    Account, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo, Error,
    ErrorKind, NoOpReason, ObjectRef, Observed, Outcome, Page, PageRequest, ProvisioningAdapter,
    Result, bad_cursor,
};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind, SharedClock, SystemClock};
use serde_json::{Value, json};

use crate::client::{GraphClient, ThrottleState};
use crate::commands::command;
use crate::config::EntraConfig;
use crate::error::Direction;
use crate::target::Target;
use crate::{KIND, batch};

/// Request counters and throttling state (tests, benchmarks, the conformance I/O
/// probe, operators).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct EntraStats {
    /// HTTP requests sent to Graph (token requests excluded; `$batch` counts once).
    pub requests: u64,
    /// `$batch` requests sent.
    pub batch_requests: u64,
    /// What Graph said about throttling.
    pub throttle: ThrottleState,
}

/// A Microsoft Entra ID tenant seen through Microsoft Graph. Cheap to clone.
#[derive(Clone)]
pub struct EntraAdapter {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: GraphClient,
    pub(crate) config: EntraConfig,
    pub(crate) caps: Capabilities,
    pub(crate) clock: SharedClock,
    instance: String,
    /// lower-case UPN → object id.
    users: Mutex<HashMap<String, String>>,
    /// lower-case display name → group id.
    groups: Mutex<HashMap<String, String>>,
    /// Containers (groups, AUs) known to exist, for trusting a 404 on `$ref` delete.
    pub(crate) containers: Mutex<HashSet<String>>,
}

impl fmt::Debug for EntraAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraAdapter")
            .field("instance", &self.inner.instance)
            .field("config", &self.inner.config)
            .field("client", &self.inner.client)
            .finish()
    }
}

impl fmt::Display for EntraAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entra({})", self.inner.instance)
    }
}

pub(crate) fn path(name: &str, params: &[(&str, &str)]) -> Result<String> {
    command(name).path(params)
}

pub(crate) fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

pub(crate) fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn values(body: &Option<Value>) -> Vec<Value> {
    body.as_ref()
        .and_then(|b| b.get("value"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn next_link(body: &Option<Value>) -> Option<String> {
    body.as_ref()
        .and_then(|b| b.get("@odata.nextLink"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Our attribute names → Graph user properties.
const ATTRS: [(&str, &str); 8] = [
    ("display_name", "displayName"),
    ("given_name", "givenName"),
    ("family_name", "surname"),
    ("email", "mail"),
    ("department", "department"),
    ("job_title", "jobTitle"),
    ("mobile_phone", "mobilePhone"),
    ("office_location", "officeLocation"),
];

fn graph_attr(k: &str) -> String {
    ATTRS
        .iter()
        .find(|(ours, _)| *ours == k)
        .map(|(_, g)| g.to_string())
        .unwrap_or_else(|| k.to_string())
}

fn account_of(u: &Value) -> Account {
    let mut a = Account::new(str_of(u, "id").unwrap_or_default());
    a.identity_id = str_of(u, "employeeId").map(str::to_string);
    a.login = str_of(u, "userPrincipalName").map(str::to_string);
    a.display_name = str_of(u, "displayName").map(str::to_string);
    a.email = str_of(u, "mail").map(str::to_string);
    a.enabled = u
        .get("accountEnabled")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    for k in ["givenName", "surname", "department"] {
        if let Some(v) = u.get(k).filter(|v| !v.is_null()) {
            a.attributes.insert(k.to_string(), v.clone());
        }
    }
    a
}

fn assignment_of(member: &Value, e: EntitlementRef) -> Assignment {
    Assignment::new(
        str_of(member, "id").unwrap_or_default(),
        str_of(member, "employeeId").map(str::to_string),
        e,
    )
}

fn op_err(e: Error, op: &Operation) -> Error {
    e.with_connector(KIND)
        .with_operation(op.kind.as_str())
        .with_context("operation_id", &op.id)
}

fn password() -> String {
    let mut b = [0u8; 18];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("system random");
    format!(
        "{}aA1!",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

impl EntraAdapter {
    /// An adapter for `config` (validated; no I/O — call [`ProvisioningAdapter::check`]
    /// to test credentials).
    pub fn new(config: EntraConfig) -> Result<Self> {
        Self::with_clock(config, SystemClock::shared())
    }

    /// With an injected clock (token expiry, PIM schedule start).
    pub fn with_clock(config: EntraConfig, clock: SharedClock) -> Result<Self> {
        let client = GraphClient::new(&config, clock.clone())?;
        let mut caps = Capabilities::full(crate::target::supported_kinds());
        caps.list_page_max = config.page_size;
        caps.batch_max = config.batch_max;
        caps.asynchronous = true;
        caps.create_links_existing = true;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                instance: config.instance_label(),
                caps,
                clock,
                config,
                users: Mutex::default(),
                groups: Mutex::default(),
                containers: Mutex::default(),
            }),
        })
    }

    /// Request counters and throttling state.
    pub fn stats(&self) -> EntraStats {
        let c = &self.inner.client;
        EntraStats {
            requests: c.requests.load(Ordering::Relaxed),
            batch_requests: c.batch_requests.load(Ordering::Relaxed),
            throttle: c.throttle.lock().expect("throttle").clone(),
        }
    }

    pub(crate) fn client(&self) -> &GraphClient {
        &self.inner.client
    }

    /// The userPrincipalName of an identity: its login, with the configured domain
    /// appended when the login has no `@`.
    pub fn upn(&self, who: &Identity) -> Result<String> {
        let login = who.login();
        if login.contains('@') {
            return Ok(login.to_string());
        }
        match &self.inner.config.upn_domain {
            Some(d) => Ok(format!("{login}@{d}")),
            None => Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!(
                    "identity `{}` has login `{login}` without a domain and entra config `upn_domain` is not set",
                    who.id
                ),
            )
            .with_connector(KIND)),
        }
    }

    /// Execute a read command and follow `@odata.nextLink` to the end; returns
    /// every item of `value`. For commands that list (see the command table).
    pub async fn list_collection(&self, name: &str, params: &[(&str, &str)]) -> Result<Vec<Value>> {
        let mut params: Vec<(&str, &str)> = params.to_vec();
        let top = self.inner.config.page_size.to_string();
        if command(name).template.contains("{top}") && !params.iter().any(|(k, _)| *k == "top") {
            params.push(("top", &top));
        }
        let mut link = path(name, &params)?;
        let mut out = Vec::new();
        for _ in 0..100_000 {
            let body = self.client().call(Method::GET, &link, None).await?;
            out.extend(values(&body));
            match next_link(&body) {
                Some(n) => link = n,
                None => return Ok(out),
            }
        }
        Err(Error::new(ErrorKind::Unexpected, "paging did not terminate").with_connector(KIND))
    }

    /// Execute one command by name and return the response body (None for 204).
    /// For the commands the typed API does not cover (e.g. `user.restore`,
    /// `access_package.cancel_request`); errors are classified as usual.
    pub async fn execute(
        &self,
        name: &str,
        params: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Option<Value>> {
        let c = command(name);
        let method = Method::from_bytes(c.method.as_bytes()).expect("valid method");
        let p = c.path(params)?;
        self.client().call(method, &p, body).await
    }

    /// The object id for an operation's account: its native id, else the cached or
    /// looked-up id of its UPN. `None` when the user does not exist.
    pub(crate) async fn user_id(&self, op: &Operation) -> Result<Option<String>> {
        if let Some(n) = &op.native_id {
            return Ok(Some(n.clone()));
        }
        let upn = self.upn(&op.identity)?;
        if let Some(id) = self
            .inner
            .users
            .lock()
            .expect("users")
            .get(&upn.to_ascii_lowercase())
        {
            return Ok(Some(id.clone()));
        }
        let u = self.get_user(&upn).await?;
        Ok(u.map(|u| {
            let id = str_of(&u, "id").unwrap_or_default().to_string();
            self.remember_user(&upn, &id);
            id
        }))
    }

    pub(crate) fn remember_user(&self, upn: &str, id: &str) {
        self.inner
            .users
            .lock()
            .expect("users")
            .insert(upn.to_ascii_lowercase(), id.to_string());
    }

    pub(crate) fn cached_user(&self, upn: &str) -> Option<String> {
        self.inner
            .users
            .lock()
            .expect("users")
            .get(&upn.to_ascii_lowercase())
            .cloned()
    }

    fn forget_user(&self, id: &str) {
        self.inner
            .users
            .lock()
            .expect("users")
            .retain(|_, v| v != id);
    }

    async fn get_user(&self, id_or_upn: &str) -> Result<Option<Value>> {
        let r = self
            .client()
            .send(
                Method::GET,
                &path("user.get", &[("user", id_or_upn)])?,
                None,
                &[],
            )
            .await?;
        if r.status == 404 {
            return Ok(None);
        }
        r.into_result()
    }

    /// A group's object id: GUIDs pass through, names are looked up (and cached).
    pub(crate) async fn group_id(&self, id_or_name: &str) -> Result<String> {
        if is_guid(id_or_name) {
            return Ok(id_or_name.to_string());
        }
        let key = id_or_name.to_ascii_lowercase();
        if let Some(id) = self.inner.groups.lock().expect("groups").get(&key) {
            return Ok(id.clone());
        }
        let found = self
            .list_collection("group.find_by_name", &[("displayName", id_or_name)])
            .await?;
        match found.as_slice() {
            [g] => {
                let id = str_of(g, "id").unwrap_or_default().to_string();
                self.inner
                    .groups
                    .lock()
                    .expect("groups")
                    .insert(key, id.clone());
                self.inner
                    .containers
                    .lock()
                    .expect("containers")
                    .insert(id.clone());
                Ok(id)
            }
            [] => Err(Error::not_found(format!("no group named `{id_or_name}`"))
                .with_connector(KIND)
                .set_permanent()),
            _ => Err(Error::invalid_input(format!(
                "{} groups are named `{id_or_name}`; use the object id",
                found.len()
            ))
            .with_connector(KIND)),
        }
    }

    /// Whether a container (group or AU) exists; positive answers are cached.
    pub(crate) async fn container_exists(&self, container_path: &str) -> Result<bool> {
        if self
            .inner
            .containers
            .lock()
            .expect("containers")
            .contains(container_path)
        {
            return Ok(true);
        }
        let r = self
            .client()
            .send(Method::GET, container_path, None, &[])
            .await?;
        if r.status == 404 {
            return Ok(false);
        }
        r.into_result()?;
        self.inner
            .containers
            .lock()
            .expect("containers")
            .insert(container_path.to_string());
        Ok(true)
    }

    /// Create a security group (or return the id of the one with this name).
    pub async fn create_group(&self, display_name: &str) -> Result<String> {
        if let Ok(id) = self.group_id(display_name).await {
            return Ok(id);
        }
        let nick: String = display_name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let body = json!({"displayName": display_name, "mailNickname": nick,
            "mailEnabled": false, "securityEnabled": true});
        let g = self
            .client()
            .call(Method::POST, &path("group.create", &[])?, Some(&body))
            .await?
            .unwrap_or_default();
        let id = str_of(&g, "id").unwrap_or_default().to_string();
        self.inner
            .groups
            .lock()
            .expect("groups")
            .insert(display_name.to_ascii_lowercase(), id.clone());
        Ok(id)
    }

    async fn create(&self, op: &Operation) -> Result<Outcome> {
        let who = &op.identity;
        let upn = self.upn(who)?;
        let nick: String = upn
            .split('@')
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-' || *c == '_')
            .collect();
        let display = op
            .attributes
            .get("display_name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| who.display_name.clone())
            .or_else(|| match (&who.given_name, &who.family_name) {
                (Some(g), Some(f)) => Some(format!("{g} {f}")),
                _ => None,
            })
            .unwrap_or_else(|| who.login().to_string());
        let mut body = json!({
            "accountEnabled": true,
            "displayName": display,
            "mailNickname": nick,
            "userPrincipalName": upn,
            "employeeId": who.id,
            "passwordProfile": {"password": password(), "forceChangePasswordNextSignIn": true},
        });
        let m = body.as_object_mut().expect("object");
        for (k, v) in [
            ("givenName", &who.given_name),
            ("surname", &who.family_name),
            ("mail", &who.email),
            ("department", &who.department),
        ] {
            if let Some(v) = v {
                m.insert(k.to_string(), json!(v));
            }
        }
        for (k, v) in &op.attributes {
            if k != "display_name" && k != "manager" {
                m.insert(graph_attr(k), v.clone());
            }
        }
        let r = self
            .client()
            .send(Method::POST, &path("user.create", &[])?, Some(&body), &[])
            .await?;
        if r.ok() {
            let id = r
                .body
                .as_ref()
                .and_then(|b| str_of(b, "id"))
                .unwrap_or_default()
                .to_string();
            self.remember_user(&upn, &id);
            if let Some(mgr) = op.attributes.get("manager").and_then(Value::as_str) {
                self.set_manager(&id, mgr).await?;
            }
            return Ok(Outcome::Applied {
                native_id: Some(id),
            });
        }
        let g = r.error();
        if g.status == 400 && g.message.to_ascii_lowercase().contains("already exists") {
            // Match-then-link: the UPN is taken; link the existing account.
            if let Some(u) = self.get_user(&upn).await? {
                let id = str_of(&u, "id").unwrap_or_default().to_string();
                self.remember_user(&upn, &id);
                return Ok(Outcome::AlreadyInState {
                    reason: NoOpReason::LinkedExisting,
                    native_id: Some(id),
                });
            }
        }
        Err(g.to_error())
    }

    /// Set a user's manager (`PUT /users/{id}/manager/$ref`); `manager` is an object
    /// id or a UPN.
    pub async fn set_manager(&self, user_id: &str, manager: &str) -> Result<()> {
        let mid = if is_guid(manager) {
            manager.to_string()
        } else {
            let u = self.get_user(manager).await?.ok_or_else(|| {
                Error::not_found(format!("manager `{manager}` does not exist")).with_connector(KIND)
            })?;
            str_of(&u, "id").unwrap_or_default().to_string()
        };
        let body = json!({"@odata.id": self.client().object_ref("users", &mid)});
        self.client()
            .call(
                Method::PUT,
                &path("user.set_manager", &[("id", user_id)])?,
                Some(&body),
            )
            .await?;
        Ok(())
    }

    /// The manager's object id, if any.
    pub async fn manager_of(&self, user_id: &str) -> Result<Option<String>> {
        let r = self
            .client()
            .send(
                Method::GET,
                &path("user.get_manager", &[("id", user_id)])?,
                None,
                &[],
            )
            .await?;
        if r.status == 404 {
            return Ok(None);
        }
        let b = r.into_result()?;
        Ok(b.as_ref().and_then(|b| str_of(b, "id")).map(str::to_string))
    }

    /// Remove a user's manager; `Ok(false)` when there was none.
    pub async fn remove_manager(&self, user_id: &str) -> Result<bool> {
        let r = self
            .client()
            .send(
                Method::DELETE,
                &path("user.remove_manager", &[("id", user_id)])?,
                None,
                &[],
            )
            .await?;
        if r.status == 404 {
            return Ok(false);
        }
        r.into_result()?;
        Ok(true)
    }

    async fn require_user(&self, op: &Operation) -> Result<(String, Value)> {
        let id = self.user_id(op).await?;
        let u = match &id {
            Some(id) => self.get_user(id).await?,
            None => None,
        };
        match (id, u) {
            (Some(id), Some(u)) => Ok((id, u)),
            _ => Err(
                Error::not_found(format!("user `{}` does not exist", op.identity.id))
                    .with_connector(KIND)
                    .set_permanent(),
            ),
        }
    }

    async fn update(&self, op: &Operation) -> Result<Outcome> {
        let (id, u) = self.require_user(op).await?;
        let mut patch = serde_json::Map::new();
        let mut manager = None;
        for (k, v) in &op.attributes {
            if k == "manager" {
                manager = v.as_str().map(str::to_string);
                continue;
            }
            let g = graph_attr(k);
            if u.get(&g) != Some(v) {
                patch.insert(g, v.clone());
            }
        }
        let mut changed = false;
        if !patch.is_empty() {
            self.client()
                .call(
                    Method::PATCH,
                    &path("user.update", &[("id", &id)])?,
                    Some(&Value::Object(patch)),
                )
                .await?;
            changed = true;
        }
        if let Some(m) = manager {
            let current = self.manager_of(&id).await?;
            let wanted = if is_guid(&m) {
                Some(m.clone())
            } else {
                self.get_user(&m)
                    .await?
                    .and_then(|u| str_of(&u, "id").map(str::to_string))
            };
            if current != wanted {
                self.set_manager(&id, &m).await?;
                changed = true;
            }
        }
        Ok(if changed {
            Outcome::Applied {
                native_id: Some(id),
            }
        } else {
            Outcome::AlreadyInState {
                reason: NoOpReason::NoChange,
                native_id: Some(id),
            }
        })
    }

    async fn set_enabled(&self, op: &Operation, enabled: bool) -> Result<Outcome> {
        let (id, u) = self.require_user(op).await?;
        if u.get("accountEnabled").and_then(Value::as_bool) == Some(enabled) {
            return Ok(Outcome::AlreadyInState {
                reason: if enabled {
                    NoOpReason::AlreadyEnabled
                } else {
                    NoOpReason::AlreadyDisabled
                },
                native_id: Some(id),
            });
        }
        let name = if enabled {
            "user.enable"
        } else {
            "user.disable"
        };
        self.client()
            .call(
                Method::PATCH,
                &path(name, &[("id", &id)])?,
                Some(&json!({"accountEnabled": enabled})),
            )
            .await?;
        if !enabled && self.inner.config.revoke_sessions_on_disable {
            self.revoke_sessions(&id).await?;
        }
        Ok(Outcome::Applied {
            native_id: Some(id),
        })
    }

    /// `POST /users/{id}/revokeSignInSessions`.
    pub async fn revoke_sessions(&self, user_id: &str) -> Result<()> {
        self.client()
            .call(
                Method::POST,
                &path("user.revoke_sessions", &[("id", user_id)])?,
                None,
            )
            .await?;
        Ok(())
    }

    /// Restore a soft-deleted user (`POST /directory/deletedItems/{id}/restore`).
    pub async fn restore_user(&self, user_id: &str) -> Result<()> {
        self.client()
            .call(
                Method::POST,
                &path("user.restore", &[("id", user_id)])?,
                None,
            )
            .await?;
        Ok(())
    }

    async fn delete(&self, op: &Operation) -> Result<Outcome> {
        let Some(id) = self.user_id(op).await? else {
            return Ok(Outcome::no_op(NoOpReason::AccountAbsent));
        };
        let r = self
            .client()
            .send(
                Method::DELETE,
                &path("user.delete", &[("id", &id)])?,
                None,
                &[],
            )
            .await?;
        self.forget_user(&id);
        if r.status == 404 {
            return Ok(Outcome::AlreadyInState {
                reason: NoOpReason::AccountAbsent,
                native_id: Some(id),
            });
        }
        r.into_result()?;
        Ok(Outcome::Applied {
            native_id: Some(id),
        })
    }

    /// Add several directory objects to a group in one `PATCH` with
    /// `members@odata.bind` (at most 20). Graph applies it all-or-nothing: when any
    /// is already a member, the connector falls back to one `$ref` add per member.
    /// Returns one outcome per id.
    pub async fn add_members(&self, group: &str, ids: &[String]) -> Result<Vec<Outcome>> {
        if ids.len() > 20 {
            return Err(
                Error::invalid_input("at most 20 members per members@odata.bind")
                    .with_connector(KIND),
            );
        }
        let gid = self.group_id(group).await?;
        let refs: Vec<String> = ids
            .iter()
            .map(|i| self.client().object_ref("directoryObjects", i))
            .collect();
        let r = self
            .client()
            .send(
                Method::PATCH,
                &path("group.add_members", &[("groupId", &gid)])?,
                Some(&json!({"members@odata.bind": refs})),
                &[],
            )
            .await?;
        if r.ok() {
            return Ok(ids.iter().map(|_| Outcome::applied()).collect());
        }
        let g = r.error();
        if g.no_op(Direction::Add).is_none() {
            return Err(g.to_error());
        }
        let mut out = Vec::new();
        for id in ids {
            out.push(
                crate::grants::ref_add(self, "group.add_member", &gid, id, "directoryObjects")
                    .await?,
            );
        }
        Ok(out)
    }

    async fn apply_checked(&self, op: &Operation) -> Result<Outcome> {
        match op.kind {
            OperationKind::CreateAccount => self.create(op).await,
            OperationKind::UpdateAccount => self.update(op).await,
            OperationKind::DisableAccount => self.set_enabled(op, false).await,
            OperationKind::EnableAccount => self.set_enabled(op, true).await,
            OperationKind::DeleteAccount => self.delete(op).await,
            OperationKind::Grant | OperationKind::Revoke => {
                let e = op.entitlement.as_ref().expect("checked by capabilities");
                let t = Target::parse(e)?;
                crate::grants::apply(self, op, &t).await
            }
            other => Err(Error::unsupported(format!(
                "operation {other} is not supported"
            ))),
        }
    }

    fn decode_cursor(&self, cursor: &str) -> Result<Value> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .ok_or_else(|| bad_cursor(cursor))
    }

    fn encode_cursor(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    /// One page of a listing command: first page from the template, later pages
    /// from the opaque cursor (the `@odata.nextLink`, checked to be on our base).
    async fn page_of(
        &self,
        name: &str,
        params: &[(&str, &str)],
        page: &PageRequest,
    ) -> Result<(Vec<Value>, Option<String>)> {
        let link = match &page.cursor {
            Some(c) => {
                let v = self.decode_cursor(c)?;
                let l = str_of(&v, "l").ok_or_else(|| bad_cursor(c))?.to_string();
                self.client().url(&l).map_err(|_| bad_cursor(c))?;
                l
            }
            None => {
                let top = page
                    .limit
                    .min(self.inner.caps.list_page_max)
                    .max(1)
                    .to_string();
                let mut p = params.to_vec();
                p.push(("top", &top));
                path(name, &p)?
            }
        };
        let body = self.client().call(Method::GET, &link, None).await?;
        Ok((
            values(&body),
            next_link(&body).map(|l| Self::encode_cursor(&json!({ "l": l }))),
        ))
    }

    async fn assignments_all(&self, page: &PageRequest) -> Result<Page<Assignment>> {
        // Cursor: {"g": groups link or null, "gid": group, "m": members link}.
        let state = match &page.cursor {
            Some(c) => self.decode_cursor(c)?,
            None => json!({}),
        };
        let top = page
            .limit
            .min(self.inner.caps.list_page_max)
            .max(1)
            .to_string();
        let (gid, gnext, mlink) = match (str_of(&state, "gid"), str_of(&state, "m")) {
            (Some(gid), Some(m)) => (
                gid.to_string(),
                str_of(&state, "g").map(str::to_string),
                m.to_string(),
            ),
            _ => {
                let glink = match str_of(&state, "g") {
                    Some(g) => g.to_string(),
                    None => path("group.list", &[("top", "1")])?,
                };
                self.client().url(&glink)?;
                let body = self.client().call(Method::GET, &glink, None).await?;
                let Some(g) = values(&body).into_iter().next() else {
                    return Ok(Page::last(Vec::new()));
                };
                let gid = str_of(&g, "id").unwrap_or_default().to_string();
                let m = path("group.members", &[("groupId", &gid), ("top", &top)])?;
                (gid, next_link(&body), m)
            }
        };
        self.client().url(&mlink)?;
        let body = self.client().call(Method::GET, &mlink, None).await?;
        let e = EntitlementRef::group(&gid);
        let items = values(&body)
            .iter()
            .map(|m| assignment_of(m, e.clone()))
            .collect();
        let next = match (next_link(&body), gnext) {
            (Some(m), g) => Some(json!({"gid": gid, "m": m, "g": g})),
            (None, Some(g)) => Some(json!({ "g": g })),
            (None, None) => None,
        };
        Ok(Page {
            items,
            next: next.map(|n| Self::encode_cursor(&n)),
        })
    }
}

#[async_trait]
impl ProvisioningAdapter for EntraAdapter {
    fn info(&self) -> AdapterInfo {
        AdapterInfo::new(KIND, self.inner.instance.clone())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.inner.caps
    }

    async fn check(&self) -> Result<()> {
        self.client()
            .call(Method::GET, &path("organization.get", &[])?, None)
            .await
            .map(|_| ())
            .map_err(|e| e.with_operation("check"))
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.inner.caps.check(op)?;
        self.apply_checked(op).await.map_err(|e| op_err(e, op))
    }

    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        batch::apply_batch(self, ops).await
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        match object {
            ObjectRef::Account(a) => {
                let key = match (&a.native_id, &a.login) {
                    (Some(n), _) => n.clone(),
                    (None, Some(l)) if l.contains('@') => l.clone(),
                    (None, _) => {
                        let who = Identity::person(&a.identity_id)
                            .with_user_name(a.login.clone().unwrap_or(a.identity_id.clone()));
                        self.upn(&who)?
                    }
                };
                Ok(self
                    .get_user(&key)
                    .await?
                    .map(|u| Observed::Account(account_of(&u))))
            }
            ObjectRef::Entitlement(e) => match Target::parse(e)? {
                Target::Group(g) | Target::GroupOwner(g) => {
                    let gid = match self.group_id(&g).await {
                        Ok(id) => id,
                        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
                        Err(err) => return Err(err),
                    };
                    let r = self
                        .client()
                        .send(
                            Method::GET,
                            &path("group.get", &[("groupId", &gid)])?,
                            None,
                            &[],
                        )
                        .await?;
                    if r.status == 404 {
                        return Ok(None);
                    }
                    let g = r.into_result()?.unwrap_or_default();
                    let mut info = EntitlementInfo::new(
                        EntitlementRef::new(e.kind.clone(), gid)
                            .with_display_name(str_of(&g, "displayName").unwrap_or_default()),
                    );
                    info.description = str_of(&g, "description").map(str::to_string);
                    Ok(Some(Observed::Entitlement(info)))
                }
                _ => Err(Error::unsupported(format!(
                    "read of {} entitlements is not supported (groups only)",
                    e.kind
                ))
                .with_connector(KIND)),
            },
            _ => Err(Error::unsupported("unknown object reference").with_connector(KIND)),
        }
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        let (items, next) = self.page_of("user.list", &[], &page).await?;
        Ok(Page {
            items: items.iter().map(account_of).collect(),
            next,
        })
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        let (items, next) = self.page_of("group.list", &[], &page).await?;
        Ok(Page {
            items: items
                .iter()
                .map(|g| {
                    let mut i = EntitlementInfo::new(
                        EntitlementRef::group(str_of(g, "id").unwrap_or_default())
                            .with_display_name(str_of(g, "displayName").unwrap_or_default()),
                    );
                    i.description = str_of(g, "description").map(str::to_string);
                    i
                })
                .collect(),
            next,
        })
    }

    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>> {
        match scope {
            AssignmentScope::All => self.assignments_all(&page).await,
            AssignmentScope::Account(a) => {
                let op = Operation::new(
                    "",
                    "",
                    OperationKind::Grant,
                    Identity::person(&a.identity_id)
                        .with_user_name(a.login.clone().unwrap_or(a.identity_id.clone())),
                );
                let op = match &a.native_id {
                    Some(n) => op.with_native_id(n),
                    None => op,
                };
                let Some(uid) = self.user_id(&op).await? else {
                    return Ok(Page::last(Vec::new()));
                };
                let r = self.page_of("user.member_of", &[("id", &uid)], &page).await;
                let (items, next) = match r {
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Page::last(Vec::new())),
                    other => other?,
                };
                Ok(Page {
                    items: items
                        .iter()
                        .map(|g| {
                            Assignment::new(
                                uid.clone(),
                                Some(a.identity_id.clone()),
                                EntitlementRef::group(str_of(g, "id").unwrap_or_default())
                                    .with_display_name(
                                        str_of(g, "displayName").unwrap_or_default(),
                                    ),
                            )
                        })
                        .collect(),
                    next,
                })
            }
            AssignmentScope::Entitlement(e) => {
                let (name, key, id) = match Target::parse(e)? {
                    Target::Group(g) => ("group.members", "groupId", self.group_id(&g).await),
                    Target::GroupOwner(g) => ("group.owners", "groupId", self.group_id(&g).await),
                    Target::AdministrativeUnit(a) => ("au.members", "auId", Ok(a)),
                    _ => {
                        return Err(Error::unsupported(format!(
                            "listing holders of {} entitlements is not supported",
                            e.kind
                        ))
                        .with_connector(KIND));
                    }
                };
                let id = match id {
                    Ok(id) => id,
                    Err(err) if err.kind() == ErrorKind::NotFound => {
                        return Ok(Page::last(Vec::new()));
                    }
                    Err(err) => return Err(err),
                };
                let r = self.page_of(name, &[(key, &id)], &page).await;
                let (items, next) = match r {
                    Err(err) if err.kind() == ErrorKind::NotFound => {
                        return Ok(Page::last(Vec::new()));
                    }
                    other => other?,
                };
                let ent = EntitlementRef::new(e.kind.clone(), id);
                Ok(Page {
                    items: items
                        .iter()
                        .map(|m| assignment_of(m, ent.clone()))
                        .collect(),
                    next,
                })
            }
            _ => Err(Error::unsupported("unknown assignment scope").with_connector(KIND)),
        }
    }
}
