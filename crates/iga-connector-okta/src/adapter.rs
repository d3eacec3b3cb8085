//! `impl ProvisioningAdapter for OktaAdapter`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use iga_adapter::{
    Account, AccountRef, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo,
    Error, ErrorKind, NoOpReason, ObjectRef, Observed, Outcome, Page, PageRequest,
    ProvisioningAdapter, Result, bad_cursor,
};
use iga_directive::{EntitlementKind, EntitlementRef, Identity, Operation, OperationKind};
use iga_http::rest::{RatePacer, RestClient, RestResponse};
use iga_http::{AuthProvider, BearerAuth, HttpClientBuilder, OAuth2ClientCredentials};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::config::{OktaAuth, OktaConfig};
use crate::{KIND, error};

/// An Okta org. Cheap to clone (shared client and caches).
///
/// Entitlements: `Group` (id = group name or Okta group id `00g…`) and `AppRole`
/// (id = app instance id `0oa…`: an app assignment).
#[derive(Clone)]
pub struct OktaAdapter {
    inner: Arc<Inner>,
}

struct Inner {
    rest: RestClient,
    caps: Capabilities,
    instance: String,
    activate: bool,
    correlation: String,
    /// Entitlement id → Okta group object.
    groups: Mutex<HashMap<String, Value>>,
}

impl fmt::Debug for OktaAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OktaAdapter")
            .field("instance", &self.inner.instance)
            .field("rest", &self.inner.rest)
            .finish()
    }
}

impl fmt::Display for OktaAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "okta({})", self.inner.instance)
    }
}

fn op_err(e: Error, op: &'static str) -> Error {
    e.with_connector(KIND).with_operation(op)
}

fn unexpected(msg: &str) -> Error {
    Error::new(ErrorKind::Unexpected, msg.to_string()).with_connector(KIND)
}

fn s(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().map(str::to_string)
}

fn segment(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// Statuses in which a user cannot sign in.
const INACTIVE: [&str; 3] = ["STAGED", "DEPROVISIONED", "SUSPENDED"];

fn status(user: &Value) -> String {
    s(user, &["status"]).unwrap_or_default()
}

/// The `after` cursor of a `Link: rel="next"` URL.
fn after_param(link: &str) -> Option<String> {
    let u = url::Url::parse(link).ok()?;
    u.query_pairs()
        .find(|(k, _)| k == "after")
        .map(|(_, v)| v.into_owned())
}

/// Canonical update keys → Okta profile attributes; others pass through.
fn profile_attr(key: &str) -> &str {
    match key {
        "display_name" => "displayName",
        "given_name" => "firstName",
        "family_name" => "lastName",
        "email" => "email",
        "user_name" | "login" => "login",
        "department" => "department",
        "title" => "title",
        other => other,
    }
}

impl OktaAdapter {
    /// Build the adapter (no I/O; call [`ProvisioningAdapter::check`] to verify).
    pub fn new(config: OktaConfig) -> Result<Self> {
        let http = HttpClientBuilder::new()
            .connector(KIND)
            .user_agent_suffix("okta")
            .request_timeout(config.request_timeout)
            .build()?;
        let auth: Arc<dyn AuthProvider> = match &config.auth {
            OktaAuth::Ssws(t) => Arc::new(
                iga_http::ApiKeyAuth::new("authorization", t.clone())?.with_prefix("SSWS "),
            ),
            OktaAuth::Bearer(t) => Arc::new(BearerAuth::new(t.clone())),
            OktaAuth::OAuth2(c) => Arc::new(OAuth2ClientCredentials::new(
                http.clone(),
                (**c).clone().connector(KIND),
            )),
            OktaAuth::PrivateKeyJwt {
                client_id,
                key_id,
                private_key_pem,
                scopes,
            } => Arc::new(crate::oauth::OktaPrivateKeyJwt::new(
                http.clone(),
                config.org_url.as_str(),
                client_id.clone(),
                key_id.clone(),
                private_key_pem,
                scopes,
            )?),
        };
        let rest = RestClient::new(KIND, http, auth, &config.api_base())
            .with_pacer(RatePacer::new().with_floor(config.rate_limit_floor));
        let mut caps = Capabilities::full([EntitlementKind::Group, EntitlementKind::AppRole]);
        caps.list_page_max = config.page_size.clamp(1, 200);
        Ok(Self {
            inner: Arc::new(Inner {
                rest,
                caps,
                instance: config.instance_label(),
                activate: config.activate_on_create,
                correlation: config.correlation_attribute.clone(),
                groups: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// HTTP requests sent so far (the conformance I/O probe).
    pub fn requests(&self) -> u64 {
        self.inner.rest.requests()
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<RestResponse> {
        tracing::debug!(connector = KIND, %method, path, "okta request");
        let r = self
            .inner
            .rest
            .send(method.clone(), path, query, body, &[])
            .await?;
        if r.status.is_success() {
            Ok(r)
        } else {
            Err(error::classify(r.status, &r.headers, r.body.as_ref())
                .with_context("method", &method)
                .with_context("path", path))
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Option<Value>> {
        Ok(self.raw(method, path, query, body).await?.body)
    }

    /// GET; 404 → None.
    async fn get_opt(&self, path: &str) -> Result<Option<Value>> {
        match self.call(Method::GET, path, &[], None).await {
            Ok(v) => Ok(v),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The Okta user of an account: native id, then the correlation attribute, then
    /// the login (Okta logins are e-mail shaped).
    async fn find_user(&self, r: &AccountRef) -> Result<Option<Value>> {
        if let Some(id) = &r.native_id
            && let Some(u) = self.get_opt(&format!("/users/{}", segment(id))).await?
        {
            return Ok(Some(u));
        }
        let q = [(
            "search",
            format!(
                "profile.{} eq \"{}\"",
                self.inner.correlation,
                r.identity_id.replace('\\', "\\\\").replace('"', "\\\"")
            ),
        )];
        let found = self.call(Method::GET, "/users", &q, None).await?;
        if let Some(u) = found
            .as_ref()
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return Ok(Some(u.clone()));
        }
        match &r.login {
            Some(l) if l.contains('@') => self.get_opt(&format!("/users/{}", segment(l))).await,
            _ => Ok(None),
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

    /// The login Okta will accept: e-mail shaped (`login()` if it has an `@`, else the
    /// e-mail).
    fn okta_login(who: &Identity) -> Result<String> {
        let l = who.login();
        if l.contains('@') {
            return Ok(l.to_string());
        }
        who.email.clone().ok_or_else(|| {
            Error::invalid_input(
                "Okta logins are e-mail addresses: identity has neither an e-mail shaped user_name nor an email",
            )
            .with_connector(KIND)
            .with_context("field", "identity.email")
        })
    }

    fn profile_of(&self, who: &Identity) -> Result<Map<String, Value>> {
        let missing = |f: &str| {
            Error::invalid_input(format!("Okta requires profile.{f}"))
                .with_connector(KIND)
                .with_context("identity", &who.id)
        };
        let login = Self::okta_login(who)?;
        let mut p = Map::new();
        p.insert("login".into(), login.clone().into());
        p.insert("email".into(), who.email.clone().unwrap_or(login).into());
        p.insert(
            "firstName".into(),
            who.given_name
                .clone()
                .ok_or_else(|| missing("firstName"))?
                .into(),
        );
        p.insert(
            "lastName".into(),
            who.family_name
                .clone()
                .ok_or_else(|| missing("lastName"))?
                .into(),
        );
        if let Some(d) = &who.display_name {
            p.insert("displayName".into(), d.clone().into());
        }
        if let Some(d) = &who.department {
            p.insert("department".into(), d.clone().into());
        }
        p.insert(self.inner.correlation.clone(), who.id.clone().into());
        Ok(p)
    }

    async fn create(&self, op: &Operation) -> Result<Outcome> {
        let body = json!({"profile": self.profile_of(&op.identity)?});
        let q = [("activate", self.inner.activate.to_string())];
        match self.call(Method::POST, "/users", &q, Some(&body)).await {
            Ok(u) => Ok(Outcome::Applied {
                native_id: u.as_ref().and_then(|u| s(u, &["id"])),
            }),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let mut r = AccountRef::of_operation(op);
                r.login = Some(Self::okta_login(&op.identity)?);
                match self.find_user(&r).await?.and_then(|u| s(&u, &["id"])) {
                    Some(id) => Ok(Outcome::AlreadyInState {
                        reason: NoOpReason::LinkedExisting,
                        native_id: Some(id),
                    }),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn update(&self, op: &Operation) -> Result<Outcome> {
        let user = self.require_user(op).await?;
        let id = s(&user, &["id"]).ok_or_else(|| unexpected("user without id"))?;
        let wanted: Map<String, Value> = if op.attributes.is_empty() {
            self.profile_of(&op.identity)?
        } else {
            op.attributes
                .iter()
                .map(|(k, v)| (profile_attr(k).to_string(), v.clone()))
                .collect()
        };
        let current = user.get("profile").cloned().unwrap_or(json!({}));
        let changed: Map<String, Value> = wanted
            .into_iter()
            .filter(|(k, v)| current.get(k).unwrap_or(&Value::Null) != v)
            .collect();
        if changed.is_empty() {
            return Ok(Outcome::AlreadyInState {
                reason: NoOpReason::NoChange,
                native_id: Some(id),
            });
        }
        // POST is Okta's partial update; PUT would clear every omitted attribute.
        let body = json!({"profile": changed});
        self.call(Method::POST, &format!("/users/{id}"), &[], Some(&body))
            .await?;
        Ok(Outcome::Applied {
            native_id: Some(id),
        })
    }

    async fn lifecycle(&self, id: &str, action: &str) -> Result<()> {
        let q = [("sendEmail", "false".to_string())];
        self.call(
            Method::POST,
            &format!("/users/{id}/lifecycle/{action}"),
            &q,
            None,
        )
        .await
        .map(|_| ())
    }

    async fn disable(&self, op: &Operation) -> Result<Outcome> {
        let user = self.require_user(op).await?;
        let id = s(&user, &["id"]).ok_or_else(|| unexpected("user without id"))?;
        if status(&user) == "DEPROVISIONED" {
            return Ok(Outcome::AlreadyInState {
                reason: NoOpReason::AlreadyDisabled,
                native_id: Some(id),
            });
        }
        self.lifecycle(&id, "deactivate").await?;
        Ok(Outcome::Applied {
            native_id: Some(id),
        })
    }

    async fn enable(&self, op: &Operation) -> Result<Outcome> {
        let user = self.require_user(op).await?;
        let id = s(&user, &["id"]).ok_or_else(|| unexpected("user without id"))?;
        let action = match status(&user).as_str() {
            "STAGED" | "DEPROVISIONED" => "activate",
            "SUSPENDED" => "unsuspend",
            _ => {
                return Ok(Outcome::AlreadyInState {
                    reason: NoOpReason::AlreadyEnabled,
                    native_id: Some(id),
                });
            }
        };
        self.lifecycle(&id, action).await?;
        Ok(Outcome::Applied {
            native_id: Some(id),
        })
    }

    async fn delete(&self, op: &Operation) -> Result<Outcome> {
        let Some(user) = self.find_user(&AccountRef::of_operation(op)).await? else {
            return Ok(Outcome::no_op(NoOpReason::AccountAbsent));
        };
        let id = s(&user, &["id"]).ok_or_else(|| unexpected("user without id"))?;
        // Okta never hard-deletes an active user: the first DELETE only deactivates.
        // Deactivate explicitly, then delete.
        if status(&user) != "DEPROVISIONED" {
            self.lifecycle(&id, "deactivate").await?;
        }
        match self
            .call(
                Method::DELETE,
                &format!("/users/{id}"),
                &[("sendEmail", "false".into())],
                None,
            )
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

    /// Resolve a group by Okta id or exact name (cached).
    async fn find_group(&self, key: &str) -> Result<Option<Value>> {
        if let Some(g) = self.inner.groups.lock().expect("group cache").get(key) {
            return Ok(Some(g.clone()));
        }
        let mut found = None;
        if key.starts_with("00g") {
            found = self.get_opt(&format!("/groups/{}", segment(key))).await?;
        }
        if found.is_none() {
            let q = [("q", key.to_string()), ("limit", "200".to_string())];
            let list = self.call(Method::GET, "/groups", &q, None).await?;
            found = list.as_ref().and_then(Value::as_array).and_then(|a| {
                a.iter()
                    .find(|g| {
                        s(g, &["profile", "name"]).is_some_and(|n| n.eq_ignore_ascii_case(key))
                    })
                    .cloned()
            });
        }
        if let Some(g) = &found {
            self.inner
                .groups
                .lock()
                .expect("group cache")
                .insert(key.to_string(), g.clone());
        }
        Ok(found)
    }

    async fn require_group(&self, e: &EntitlementRef) -> Result<Value> {
        self.find_group(&e.id).await?.ok_or_else(|| {
            Error::not_found(format!("group {} not found", e.id))
                .with_connector(KIND)
                .with_context("entitlement", &e.id)
        })
    }

    /// Every group id of a user (follows `Link` pages).
    async fn user_group_ids(&self, uid: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let (items, next) = self
                .linked_page(&format!("/users/{uid}/groups"), &[], cursor.as_deref(), 200)
                .await?;
            out.extend(items.iter().filter_map(|g| s(g, &["id"])));
            match next {
                Some(n) => cursor = Some(n),
                None => return Ok(out),
            }
        }
    }

    async fn membership(&self, op: &Operation, add: bool) -> Result<Outcome> {
        let e = op
            .entitlement
            .as_ref()
            .ok_or_else(|| Error::invalid_input("grant/revoke needs an entitlement"))?;
        let user = match self.find_user(&AccountRef::of_operation(op)).await? {
            Some(u) => u,
            None if !add => return Ok(Outcome::no_op(NoOpReason::AlreadyAbsent)),
            None => return Err(Error::not_found("account not found").with_connector(KIND)),
        };
        let uid = s(&user, &["id"]).ok_or_else(|| unexpected("user without id"))?;
        let (held, path) = match e.kind {
            EntitlementKind::AppRole => {
                let app = segment(&e.id);
                if self.get_opt(&format!("/apps/{app}")).await?.is_none() {
                    return Err(Error::not_found(format!("app {} not found", e.id))
                        .with_connector(KIND)
                        .with_context("entitlement", &e.id));
                }
                let path = format!("/apps/{app}/users/{uid}");
                (self.get_opt(&path).await?.is_some(), path)
            }
            _ => {
                let group = self.require_group(e).await?;
                let gid = s(&group, &["id"]).ok_or_else(|| unexpected("group without id"))?;
                if s(&group, &["type"]).as_deref() != Some("OKTA_GROUP") {
                    return Err(Error::new(
                        ErrorKind::PermissionDenied,
                        "only OKTA_GROUP memberships are writable; this group is managed by its source",
                    )
                    .with_connector(KIND)
                    .with_context("entitlement", &e.id)
                    .set_permanent());
                }
                let held = self.user_group_ids(&uid).await?.contains(&gid);
                (held, format!("/groups/{gid}/users/{uid}"))
            }
        };
        if held == add {
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
        let r = match (add, &e.kind) {
            (true, EntitlementKind::AppRole) => {
                let app_users = format!("/apps/{}/users", segment(&e.id));
                let body = json!({"id": uid, "scope": "USER"});
                self.call(Method::POST, &app_users, &[], Some(&body)).await
            }
            (true, _) => self.call(Method::PUT, &path, &[], None).await,
            (false, _) => self.call(Method::DELETE, &path, &[], None).await,
        };
        match r {
            Ok(_) => Ok(Outcome::Applied {
                native_id: Some(uid),
            }),
            // Removed meanwhile by someone else: the desired state holds.
            Err(err) if !add && err.kind() == ErrorKind::NotFound => Ok(Outcome::AlreadyInState {
                reason: NoOpReason::AlreadyAbsent,
                native_id: Some(uid),
            }),
            Err(err) => Err(err),
        }
    }

    async fn apply_checked(&self, op: &Operation) -> Result<Outcome> {
        match op.kind {
            OperationKind::CreateAccount => self.create(op).await,
            OperationKind::UpdateAccount => self.update(op).await,
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

    /// One `Link`-paged list call: `(items, next after-cursor)`.
    async fn linked_page(
        &self,
        path: &str,
        extra: &[(&str, String)],
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Value>, Option<String>)> {
        let mut q: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        if let Some(a) = after {
            q.push(("after", a.to_string()));
        }
        q.extend(extra.iter().cloned());
        let r = self.raw(Method::GET, path, &q, None).await?;
        let next = r.next_link().and_then(|l| after_param(&l));
        let items = match r.body {
            Some(Value::Array(a)) => a,
            None => Vec::new(),
            Some(_) => return Err(unexpected("list response is not an array")),
        };
        Ok((items, next))
    }

    /// A list spread over several `Link`-paged endpoints, one after the other.
    /// Cursor: `<phase>:<after>`.
    async fn phased_page(
        &self,
        phases: &[(String, Vec<(&'static str, String)>)],
        page: &PageRequest,
    ) -> Result<(usize, Vec<Value>, Option<String>)> {
        let (idx, after) = match &page.cursor {
            None => (0usize, None),
            Some(c) => {
                let (i, a) = c.split_once(':').ok_or_else(|| bad_cursor(c))?;
                let i: usize = i.parse().map_err(|_| bad_cursor(c))?;
                if i >= phases.len() {
                    return Err(bad_cursor(c));
                }
                (i, (!a.is_empty()).then(|| a.to_string()))
            }
        };
        let limit = page.limit.clamp(1, self.inner.caps.list_page_max);
        let (path, extra) = &phases[idx];
        let (items, next) = self
            .linked_page(path, extra, after.as_deref(), limit)
            .await?;
        let next = match next {
            Some(a) => Some(format!("{idx}:{a}")),
            None if idx + 1 < phases.len() => Some(format!("{}:", idx + 1)),
            None => None,
        };
        Ok((idx, items, next))
    }

    fn account_of(&self, u: &Value) -> Option<Account> {
        let mut a = Account::new(s(u, &["id"])?);
        a.identity_id = s(u, &["profile", &self.inner.correlation]);
        a.login = s(u, &["profile", "login"]);
        a.email = s(u, &["profile", "email"]);
        a.display_name = s(u, &["profile", "displayName"]).or_else(|| {
            match (
                s(u, &["profile", "firstName"]),
                s(u, &["profile", "lastName"]),
            ) {
                (Some(f), Some(l)) => Some(format!("{f} {l}")),
                _ => None,
            }
        });
        let st = status(u);
        a.enabled = !INACTIVE.contains(&st.as_str());
        a.attributes.insert("status".into(), Value::from(st));
        Some(a)
    }
}

fn group_ref(g: &Value) -> Option<EntitlementRef> {
    let name = s(g, &["profile", "name"])?;
    let mut e = EntitlementRef::group(name.clone());
    e.display_name = Some(name);
    Some(e)
}

fn app_ref(a: &Value) -> Option<EntitlementRef> {
    let mut e = EntitlementRef::new(EntitlementKind::AppRole, s(a, &["id"])?);
    e.display_name = s(a, &["label"]);
    Some(e)
}

#[async_trait]
impl ProvisioningAdapter for OktaAdapter {
    fn info(&self) -> AdapterInfo {
        AdapterInfo::new(KIND, self.inner.instance.clone())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.inner.caps
    }

    async fn check(&self) -> Result<()> {
        self.call(Method::GET, "/users", &[("limit", "1".to_string())], None)
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
        // Okta has no batch endpoint.
        iga_adapter::batch::sequential(self, ops).await
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        self.inner.caps.check_call("read")?;
        let r = match object {
            ObjectRef::Account(a) => self
                .find_user(a)
                .await
                .map(|u| u.and_then(|u| self.account_of(&u)).map(Observed::Account)),
            ObjectRef::Entitlement(e) if e.kind == EntitlementKind::AppRole => self
                .get_opt(&format!("/apps/{}", segment(&e.id)))
                .await
                .map(|a| {
                    a.and_then(|a| app_ref(&a))
                        .map(|e| Observed::Entitlement(EntitlementInfo::new(e)))
                }),
            ObjectRef::Entitlement(e) => self.find_group(&e.id).await.map(|g| {
                g.and_then(|g| group_ref(&g))
                    .map(|e| Observed::Entitlement(EntitlementInfo::new(e)))
            }),
            _ => Err(Error::unsupported("unknown object kind")),
        };
        r.map_err(|e| op_err(e, "read"))
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        self.inner.caps.check_call("list_accounts")?;
        let phases = [("/users".to_string(), Vec::new())];
        let (_, items, next) = self
            .phased_page(&phases, &page)
            .await
            .map_err(|e| op_err(e, "list_accounts"))?;
        Ok(Page {
            items: items.iter().filter_map(|u| self.account_of(u)).collect(),
            next,
        })
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        self.inner.caps.check_call("list_entitlements")?;
        let phases = [
            ("/groups".to_string(), Vec::new()),
            ("/apps".to_string(), Vec::new()),
        ];
        let (idx, items, next) = self
            .phased_page(&phases, &page)
            .await
            .map_err(|e| op_err(e, "list_entitlements"))?;
        let map = if idx == 0 { group_ref } else { app_ref };
        Ok(Page {
            items: items
                .iter()
                .filter_map(map)
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
                    let uid = s(&user, &["id"]).ok_or_else(|| unexpected("user without id"))?;
                    let ident = s(&user, &["profile", &self.inner.correlation]);
                    let phases = [
                        (format!("/users/{uid}/groups"), Vec::new()),
                        (
                            "/apps".to_string(),
                            vec![("filter", format!("user.id eq \"{uid}\""))],
                        ),
                    ];
                    let (idx, items, next) = self.phased_page(&phases, &page).await?;
                    let map = if idx == 0 { group_ref } else { app_ref };
                    let items = items
                        .iter()
                        .filter_map(map)
                        .map(|e| Assignment::new(uid.clone(), ident.clone(), e))
                        .collect();
                    Ok(Page { items, next })
                }
                AssignmentScope::Entitlement(e) => {
                    let path = if e.kind == EntitlementKind::AppRole {
                        if self
                            .get_opt(&format!("/apps/{}", segment(&e.id)))
                            .await?
                            .is_none()
                        {
                            return Ok(Page::last(Vec::new()));
                        }
                        format!("/apps/{}/users", segment(&e.id))
                    } else {
                        let Some(g) = self.find_group(&e.id).await? else {
                            return Ok(Page::last(Vec::new()));
                        };
                        let gid = s(&g, &["id"]).ok_or_else(|| unexpected("group without id"))?;
                        format!("/groups/{gid}/users")
                    };
                    let (_, items, next) = self.phased_page(&[(path, Vec::new())], &page).await?;
                    let items = items
                        .iter()
                        .filter_map(|u| {
                            let id = s(u, &["id"])?;
                            // App users carry the profile under `_embedded.user` when
                            // expanded; group users carry it directly.
                            let ident = s(u, &["profile", &self.inner.correlation]).or_else(|| {
                                s(
                                    u,
                                    &["_embedded", "user", "profile", &self.inner.correlation],
                                )
                            });
                            Some(Assignment::new(id, ident, e.clone()))
                        })
                        .collect();
                    Ok(Page { items, next })
                }
                AssignmentScope::All => {
                    // Group by group: cursor "<group after>|<member cursor>".
                    let (gafter, mcur) = match &page.cursor {
                        None => (None, None),
                        Some(c) => {
                            let (g, m) = c.split_once('|').ok_or_else(|| bad_cursor(c))?;
                            (
                                (!g.is_empty()).then(|| g.to_string()),
                                (!m.is_empty()).then(|| m.to_string()),
                            )
                        }
                    };
                    let (groups, gnext) = self
                        .linked_page("/groups", &[], gafter.as_deref(), 1)
                        .await?;
                    let Some(group) = groups.first() else {
                        return Ok(Page::last(Vec::new()));
                    };
                    let e = group_ref(group).ok_or_else(|| unexpected("group without name"))?;
                    let gid = s(group, &["id"]).ok_or_else(|| unexpected("group without id"))?;
                    let inner = PageRequest {
                        cursor: mcur.map(|m| format!("0:{m}")),
                        limit: page.limit,
                    };
                    let (_, items, mnext) = self
                        .phased_page(&[(format!("/groups/{gid}/users"), Vec::new())], &inner)
                        .await?;
                    let items = items
                        .iter()
                        .filter_map(|u| {
                            Some(Assignment::new(
                                s(u, &["id"])?,
                                s(u, &["profile", &self.inner.correlation]),
                                e.clone(),
                            ))
                        })
                        .collect();
                    let g = gafter.unwrap_or_default();
                    let next = match (mnext, gnext) {
                        (Some(m), _) => Some(format!("{g}|{}", m.trim_start_matches("0:"))),
                        (None, Some(gn)) => Some(format!("{gn}|")),
                        (None, None) => None,
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
