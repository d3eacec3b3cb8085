//! `impl ProvisioningAdapter for GithubAdapter`.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use iga_adapter::{
    Account, AccountRef, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo,
    Error, ErrorKind, NoOpReason, ObjectRef, Observed, Outcome, Page, PageRequest,
    ProvisioningAdapter, Result, bad_cursor,
};
use iga_directive::{EntitlementKind, EntitlementRef, Operation, OperationKind};
use iga_http::rest::{RestClient, RestResponse};
use iga_http::{AuthProvider, BearerAuth, HttpClientBuilder};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::app_auth::GithubAppAuth;
use crate::config::{GithubAuth, GithubConfig};
use crate::{KIND, REPOSITORY_KIND, error};

/// Conditional-request cache entries kept at most.
const ETAG_CACHE_MAX: usize = 1024;

/// A GitHub organization. Cheap to clone (shared client and caches).
///
/// Accounts are organization memberships (an invitation while pending);
/// entitlements are teams (`Group`, id = team slug) and repository access
/// (`Generic("repository")`, id = `<repo>` or `<repo>:<permission>`).
#[derive(Clone)]
pub struct GithubAdapter {
    inner: Arc<Inner>,
}

struct Inner {
    rest: RestClient,
    caps: Capabilities,
    instance: String,
    org: String,
    org_role: String,
    team_role: String,
    repo_permission: String,
    etags: Mutex<HashMap<String, (String, RestResponse)>>,
    not_modified: AtomicU64,
}

impl fmt::Debug for GithubAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubAdapter")
            .field("instance", &self.inner.instance)
            .field("rest", &self.inner.rest)
            .finish()
    }
}

impl fmt::Display for GithubAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "github({})", self.inner.instance)
    }
}

fn op_err(e: Error, op: &'static str) -> Error {
    e.with_connector(KIND).with_operation(op)
}

fn unexpected(msg: &str) -> Error {
    Error::new(ErrorKind::Unexpected, msg.to_string()).with_connector(KIND)
}

fn seg(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

fn s(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().map(str::to_string)
}

/// A GitHub login: 1–39 alphanumerics or single hyphens, not at either end.
fn valid_login(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 39
        && !l.starts_with('-')
        && !l.ends_with('-')
        && !l.contains("--")
        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn page_param(link: &str) -> Option<String> {
    let u = url::Url::parse(link).ok()?;
    u.query_pairs()
        .find(|(k, _)| k == "page")
        .map(|(_, v)| v.into_owned())
}

fn is_repo(e: &EntitlementRef) -> bool {
    matches!(&e.kind, EntitlementKind::Generic(k) if k == REPOSITORY_KIND)
}

impl GithubAdapter {
    /// Build the adapter (no I/O; call [`ProvisioningAdapter::check`] to verify).
    pub fn new(config: GithubConfig) -> Result<Self> {
        let http = HttpClientBuilder::new()
            .connector(KIND)
            .user_agent_suffix("github")
            .request_timeout(config.request_timeout)
            .build()?;
        let api = config.api_url.as_str().trim_end_matches('/').to_string();
        let auth: Arc<dyn AuthProvider> = match &config.auth {
            GithubAuth::Token(t) => Arc::new(BearerAuth::new(t.clone())),
            GithubAuth::App {
                app_id,
                installation_id,
                private_key_pem,
            } => Arc::new(GithubAppAuth::new(
                http.clone(),
                &api,
                app_id.clone(),
                *installation_id,
                private_key_pem,
            )?),
        };
        let rest = RestClient::new(KIND, http, auth, &api)
            .with_header("accept", "application/vnd.github+json")
            .with_header("x-github-api-version", "2022-11-28");
        let mut caps = Capabilities::none().with_operations(&[
            OperationKind::CreateAccount,
            OperationKind::DeleteAccount,
            OperationKind::Grant,
            OperationKind::Revoke,
        ]);
        caps.entitlement_kinds = vec![
            EntitlementKind::Group,
            EntitlementKind::Generic(REPOSITORY_KIND.into()),
        ];
        caps.create_links_existing = true;
        caps.read = true;
        caps.list_accounts = true;
        caps.list_entitlements = true;
        caps.list_assignments = true;
        caps.list_page_max = config.page_size.clamp(1, 100);
        // GitHub asks integrators to serialise mutations (secondary limits).
        caps.max_concurrency = Some(1);
        Ok(Self {
            inner: Arc::new(Inner {
                rest,
                caps,
                instance: config.instance_label(),
                org: config.org.clone(),
                org_role: config.org_role.clone(),
                team_role: config.team_role.clone(),
                repo_permission: config.default_repo_permission.clone(),
                etags: Mutex::new(HashMap::new()),
                not_modified: AtomicU64::new(0),
            }),
        })
    }

    /// HTTP requests sent so far.
    pub fn requests(&self) -> u64 {
        self.inner.rest.requests()
    }

    /// GET requests answered `304 Not Modified` from the ETag cache so far.
    pub fn not_modified(&self) -> u64 {
        self.inner.not_modified.load(Ordering::Relaxed)
    }

    fn org(&self) -> String {
        seg(&self.inner.org)
    }

    /// One request. GETs are conditional (`If-None-Match` with the cached ETag; a
    /// 304 answers from the cache and does not count against the primary limit).
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<RestResponse> {
        tracing::debug!(connector = KIND, %method, path, "github request");
        let key = format!("{path}?{query:?}");
        let cached = if method == Method::GET {
            self.inner
                .etags
                .lock()
                .expect("etag cache")
                .get(&key)
                .cloned()
        } else {
            None
        };
        let extra: Vec<(&'static str, String)> = cached
            .as_ref()
            .map(|(etag, _)| vec![("if-none-match", etag.clone())])
            .unwrap_or_default();
        let r = self
            .inner
            .rest
            .send(method.clone(), path, query, body, &extra)
            .await?;
        if r.status == StatusCode::NOT_MODIFIED
            && let Some((_, resp)) = cached
        {
            self.inner.not_modified.fetch_add(1, Ordering::Relaxed);
            return Ok(resp);
        }
        if !r.status.is_success() {
            return Err(error::classify(r.status, &r.headers, r.body.as_ref())
                .with_context("method", &method)
                .with_context("path", path));
        }
        if method == Method::GET {
            if let Some(etag) = r.headers.get("etag").and_then(|v| v.to_str().ok()) {
                let mut c = self.inner.etags.lock().expect("etag cache");
                if c.len() >= ETAG_CACHE_MAX {
                    c.clear();
                }
                c.insert(key, (etag.to_string(), r.clone()));
            }
        } else {
            // A write may change what earlier GETs returned.
            self.inner.etags.lock().expect("etag cache").clear();
        }
        Ok(r)
    }

    /// GET; 404 → None; 204 → Some(Null).
    async fn get_opt(&self, path: &str) -> Result<Option<Value>> {
        match self.send(Method::GET, path, &[], None).await {
            Ok(r) => Ok(Some(r.body.unwrap_or(Value::Null))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn login_of(r: &AccountRef) -> Result<String> {
        let l = r
            .native_id
            .clone()
            .or_else(|| r.login.clone())
            .unwrap_or_else(|| r.identity_id.clone());
        if !valid_login(&l) {
            return Err(Error::invalid_input(format!(
                "`{l}` is not a GitHub login (1-39 letters, digits or single hyphens)"
            ))
            .with_connector(KIND)
            .with_context("field", "identity.user_name"));
        }
        Ok(l)
    }

    async fn membership(&self, login: &str) -> Result<Option<Value>> {
        self.get_opt(&format!("/orgs/{}/memberships/{}", self.org(), seg(login)))
            .await
    }

    async fn create(&self, op: &Operation) -> Result<Outcome> {
        let login = Self::login_of(&AccountRef::of_operation(op))?;
        if self.membership(&login).await?.is_some() {
            return Ok(Outcome::AlreadyInState {
                reason: NoOpReason::LinkedExisting,
                native_id: Some(login),
            });
        }
        let body = json!({"role": self.inner.org_role});
        self.send(
            Method::PUT,
            &format!("/orgs/{}/memberships/{}", self.org(), seg(&login)),
            &[],
            Some(&body),
        )
        .await?;
        Ok(Outcome::Applied {
            native_id: Some(login),
        })
    }

    async fn delete(&self, op: &Operation) -> Result<Outcome> {
        let login = Self::login_of(&AccountRef::of_operation(op))?;
        // Removes a membership or cancels a pending invitation.
        match self
            .send(
                Method::DELETE,
                &format!("/orgs/{}/memberships/{}", self.org(), seg(&login)),
                &[],
                None,
            )
            .await
        {
            Ok(_) => Ok(Outcome::Applied {
                native_id: Some(login),
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Outcome::AlreadyInState {
                reason: NoOpReason::AccountAbsent,
                native_id: Some(login),
            }),
            Err(e) => Err(e),
        }
    }

    fn repo_of(&self, e: &EntitlementRef) -> (String, String) {
        match e.id.split_once(':') {
            Some((r, p)) => (r.to_string(), p.to_string()),
            None => (e.id.clone(), self.inner.repo_permission.clone()),
        }
    }

    /// The pending repository invitation id of `login`, if any.
    async fn repo_invitation(&self, repo: &str, login: &str) -> Result<Option<u64>> {
        let path = format!("/repos/{}/{}/invitations", self.org(), seg(repo));
        let mut page = 1u64;
        loop {
            let (items, next) = self.paged(&path, page, 100).await?;
            if let Some(i) = items.iter().find(|i| {
                s(i, &["invitee", "login"]).is_some_and(|l| l.eq_ignore_ascii_case(login))
            }) {
                return Ok(i.get("id").and_then(Value::as_u64));
            }
            match next {
                Some(n) => page = n,
                None => return Ok(None),
            }
        }
    }

    async fn repo_access(&self, repo: &str, login: &str) -> Result<bool> {
        let path = format!(
            "/repos/{}/{}/collaborators/{}",
            self.org(),
            seg(repo),
            seg(login)
        );
        if self.get_opt(&path).await?.is_some() {
            return Ok(true);
        }
        Ok(self.repo_invitation(repo, login).await?.is_some())
    }

    async fn grant_or_revoke(&self, op: &Operation, add: bool) -> Result<Outcome> {
        let e = op
            .entitlement
            .as_ref()
            .ok_or_else(|| Error::invalid_input("grant/revoke needs an entitlement"))?;
        let login = Self::login_of(&AccountRef::of_operation(op))?;
        let done = |held: bool| Outcome::AlreadyInState {
            reason: if held {
                NoOpReason::AlreadyGranted
            } else {
                NoOpReason::AlreadyAbsent
            },
            native_id: Some(login.clone()),
        };
        let applied = Outcome::Applied {
            native_id: Some(login.clone()),
        };
        if is_repo(e) {
            let (repo, permission) = self.repo_of(e);
            if self
                .get_opt(&format!("/repos/{}/{}", self.org(), seg(&repo)))
                .await?
                .is_none()
            {
                return Err(Error::not_found(format!("repository {repo} not found"))
                    .with_connector(KIND)
                    .with_context("entitlement", &e.id));
            }
            let collab = format!(
                "/repos/{}/{}/collaborators/{}",
                self.org(),
                seg(&repo),
                seg(&login)
            );
            let direct = self.get_opt(&collab).await?.is_some();
            let invitation = if direct {
                None
            } else {
                self.repo_invitation(&repo, &login).await?
            };
            let held = direct || invitation.is_some();
            if held == add {
                return Ok(done(held));
            }
            if add {
                let body = json!({"permission": permission});
                self.send(Method::PUT, &collab, &[], Some(&body)).await?;
            } else if direct {
                self.send(Method::DELETE, &collab, &[], None).await?;
            } else if let Some(id) = invitation {
                let path = format!("/repos/{}/{}/invitations/{id}", self.org(), seg(&repo));
                self.send(Method::DELETE, &path, &[], None).await?;
            }
            return Ok(applied);
        }
        // Team membership.
        let team = seg(&e.id);
        if self
            .get_opt(&format!("/orgs/{}/teams/{team}", self.org()))
            .await?
            .is_none()
        {
            return Err(Error::not_found(format!("team {} not found", e.id))
                .with_connector(KIND)
                .with_context("entitlement", &e.id));
        }
        if self.membership(&login).await?.is_none() {
            return if add {
                Err(
                    Error::not_found("account not found: no organization membership")
                        .with_connector(KIND)
                        .with_context("identity", &op.identity.id),
                )
            } else {
                Ok(done(false))
            };
        }
        let path = format!(
            "/orgs/{}/teams/{team}/memberships/{}",
            self.org(),
            seg(&login)
        );
        let held = self.get_opt(&path).await?.is_some();
        if held == add {
            return Ok(done(held));
        }
        if add {
            let body = json!({"role": self.inner.team_role});
            self.send(Method::PUT, &path, &[], Some(&body)).await?;
        } else {
            match self.send(Method::DELETE, &path, &[], None).await {
                Ok(_) => {}
                Err(err) if err.kind() == ErrorKind::NotFound => return Ok(done(false)),
                Err(err) => return Err(err),
            }
        }
        Ok(applied)
    }

    async fn apply_checked(&self, op: &Operation) -> Result<Outcome> {
        match op.kind {
            OperationKind::CreateAccount => self.create(op).await,
            OperationKind::DeleteAccount => self.delete(op).await,
            OperationKind::Grant => self.grant_or_revoke(op, true).await,
            OperationKind::Revoke => self.grant_or_revoke(op, false).await,
            _ => Err(Error::unsupported(format!(
                "operation {} is not supported",
                op.kind
            ))),
        }
    }

    /// One page of a `per_page`/`page` list: `(items, next page)`.
    async fn paged(
        &self,
        path: &str,
        page: u64,
        per_page: usize,
    ) -> Result<(Vec<Value>, Option<u64>)> {
        let q = [
            ("per_page", per_page.to_string()),
            ("page", page.to_string()),
        ];
        let r = self.send(Method::GET, path, &q, None).await?;
        let next = r
            .next_link()
            .and_then(|l| page_param(&l))
            .and_then(|p| p.parse().ok());
        let items = match r.body {
            Some(Value::Array(a)) => a,
            None => Vec::new(),
            Some(_) => return Err(unexpected("list response is not an array")),
        };
        Ok((items, next))
    }

    /// A list over several paged endpoints; cursor `<phase>:<page>`.
    async fn phased(
        &self,
        phases: &[String],
        page: &PageRequest,
    ) -> Result<(usize, Vec<Value>, Option<String>)> {
        let (idx, p) = match &page.cursor {
            None => (0usize, 1u64),
            Some(c) => {
                let (i, p) = c.split_once(':').ok_or_else(|| bad_cursor(c))?;
                let i: usize = i.parse().map_err(|_| bad_cursor(c))?;
                let p: u64 = p.parse().map_err(|_| bad_cursor(c))?;
                if i >= phases.len() || p == 0 {
                    return Err(bad_cursor(c));
                }
                (i, p)
            }
        };
        let limit = page.limit.clamp(1, self.inner.caps.list_page_max);
        let (items, next) = self.paged(&phases[idx], p, limit).await?;
        let next = match next {
            Some(n) => Some(format!("{idx}:{n}")),
            None if idx + 1 < phases.len() => Some(format!("{}:1", idx + 1)),
            None => None,
        };
        Ok((idx, items, next))
    }

    fn account_of(&self, login: &str, membership: &Value) -> Account {
        let mut a = Account::new(login.to_string());
        a.login = Some(login.to_string());
        // Pending (invited) members can sign in to GitHub; the membership exists.
        a.enabled = true;
        for k in ["state", "role"] {
            if let Some(v) = membership.get(k) {
                a.attributes.insert(k.into(), v.clone());
            }
        }
        a
    }
}

fn team_ref(t: &Value) -> Option<EntitlementRef> {
    let mut e = EntitlementRef::group(s(t, &["slug"])?);
    e.display_name = s(t, &["name"]);
    Some(e)
}

fn repo_ref(r: &Value) -> Option<EntitlementRef> {
    let name = s(r, &["name"])?;
    let mut e = EntitlementRef::new(
        EntitlementKind::Generic(REPOSITORY_KIND.into()),
        name.clone(),
    );
    e.display_name = Some(name);
    Some(e)
}

#[async_trait]
impl ProvisioningAdapter for GithubAdapter {
    fn info(&self) -> AdapterInfo {
        AdapterInfo::new(KIND, self.inner.instance.clone())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.inner.caps
    }

    async fn check(&self) -> Result<()> {
        self.send(Method::GET, &format!("/orgs/{}", self.org()), &[], None)
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
        // No batch endpoint; GitHub asks for serialised mutations anyway.
        iga_adapter::batch::sequential(self, ops).await
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        self.inner.caps.check_call("read")?;
        let r: Result<Option<Observed>> = async {
            match object {
                ObjectRef::Account(a) => {
                    let login = Self::login_of(a)?;
                    Ok(self
                        .membership(&login)
                        .await?
                        .map(|m| Observed::Account(self.account_of(&login, &m))))
                }
                ObjectRef::Entitlement(e) if is_repo(e) => {
                    let (repo, _) = self.repo_of(e);
                    Ok(self
                        .get_opt(&format!("/repos/{}/{}", self.org(), seg(&repo)))
                        .await?
                        .and_then(|r| repo_ref(&r))
                        .map(|e| Observed::Entitlement(EntitlementInfo::new(e))))
                }
                ObjectRef::Entitlement(e) => Ok(self
                    .get_opt(&format!("/orgs/{}/teams/{}", self.org(), seg(&e.id)))
                    .await?
                    .and_then(|t| team_ref(&t))
                    .map(|e| Observed::Entitlement(EntitlementInfo::new(e)))),
                _ => Err(Error::unsupported("unknown object kind")),
            }
        }
        .await;
        r.map_err(|e| op_err(e, "read"))
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        self.inner.caps.check_call("list_accounts")?;
        let phases = [
            format!("/orgs/{}/members", self.org()),
            format!("/orgs/{}/invitations", self.org()),
        ];
        let (idx, items, next) = self
            .phased(&phases, &page)
            .await
            .map_err(|e| op_err(e, "list_accounts"))?;
        let items = items
            .iter()
            .filter_map(|m| {
                let login = s(m, &["login"])?;
                let state = if idx == 0 { "active" } else { "pending" };
                Some(self.account_of(&login, &json!({"state": state})))
            })
            .collect();
        Ok(Page { items, next })
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        self.inner.caps.check_call("list_entitlements")?;
        let phases = [
            format!("/orgs/{}/teams", self.org()),
            format!("/orgs/{}/repos", self.org()),
        ];
        let (idx, items, next) = self
            .phased(&phases, &page)
            .await
            .map_err(|e| op_err(e, "list_entitlements"))?;
        let map = if idx == 0 { team_ref } else { repo_ref };
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
                    let login = Self::login_of(a)?;
                    // No org-membership precheck: outside collaborators hold
                    // repository access without one.
                    // GitHub has no "teams of a user" call for admins: walk the teams
                    // (then the repositories) a page at a time and ask per object.
                    let phases = [
                        format!("/orgs/{}/teams", self.org()),
                        format!("/orgs/{}/repos", self.org()),
                    ];
                    let (idx, objects, next) = self.phased(&phases, &page).await?;
                    let mut items = Vec::new();
                    for o in &objects {
                        let (e, held) = if idx == 0 {
                            let Some(e) = team_ref(o) else { continue };
                            let path = format!(
                                "/orgs/{}/teams/{}/memberships/{}",
                                self.org(),
                                seg(&e.id),
                                seg(&login)
                            );
                            let held = self.get_opt(&path).await?.is_some();
                            (e, held)
                        } else {
                            let Some(e) = repo_ref(o) else { continue };
                            let held = self.repo_access(&e.id, &login).await?;
                            (e, held)
                        };
                        if held {
                            items.push(Assignment::new(login.clone(), None, e));
                        }
                    }
                    Ok(Page { items, next })
                }
                AssignmentScope::Entitlement(e) => {
                    let phases = if is_repo(e) {
                        let (repo, _) = self.repo_of(e);
                        if self
                            .get_opt(&format!("/repos/{}/{}", self.org(), seg(&repo)))
                            .await?
                            .is_none()
                        {
                            return Ok(Page::last(Vec::new()));
                        }
                        [
                            format!("/repos/{}/{}/collaborators", self.org(), seg(&repo)),
                            format!("/repos/{}/{}/invitations", self.org(), seg(&repo)),
                        ]
                    } else {
                        if self
                            .get_opt(&format!("/orgs/{}/teams/{}", self.org(), seg(&e.id)))
                            .await?
                            .is_none()
                        {
                            return Ok(Page::last(Vec::new()));
                        }
                        [
                            format!("/orgs/{}/teams/{}/members", self.org(), seg(&e.id)),
                            format!("/orgs/{}/teams/{}/invitations", self.org(), seg(&e.id)),
                        ]
                    };
                    let (_, items, next) = self.phased(&phases, &page).await?;
                    let items = items
                        .iter()
                        .filter_map(|m| {
                            let login = s(m, &["login"]).or_else(|| s(m, &["invitee", "login"]))?;
                            Some(Assignment::new(login, None, e.clone()))
                        })
                        .collect();
                    Ok(Page { items, next })
                }
                AssignmentScope::All => {
                    // One entitlement at a time: teams, then repositories.
                    // Cursor `<phase>|<object page>|<holder cursor>`.
                    let (phase, obj, inner) = match &page.cursor {
                        None => (0usize, 1u64, None),
                        Some(c) => {
                            let mut it = c.splitn(3, '|');
                            let p = it.next().and_then(|x| x.parse::<usize>().ok());
                            let o = it.next().and_then(|x| x.parse::<u64>().ok());
                            let i = it.next().ok_or_else(|| bad_cursor(c))?;
                            match (p, o) {
                                (Some(p), Some(o)) if p < 2 && o >= 1 => {
                                    (p, o, (!i.is_empty()).then(|| i.to_string()))
                                }
                                _ => return Err(bad_cursor(c)),
                            }
                        }
                    };
                    let phases = [
                        format!("/orgs/{}/teams", self.org()),
                        format!("/orgs/{}/repos", self.org()),
                    ];
                    let (objects, next_obj) = self.paged(&phases[phase], obj, 1).await?;
                    let after_phase = (phase == 0).then(|| "1|1|".to_string());
                    let Some(o) = objects.first() else {
                        return Ok(Page {
                            items: Vec::new(),
                            next: after_phase,
                        });
                    };
                    let e = if phase == 0 { team_ref(o) } else { repo_ref(o) }
                        .ok_or_else(|| unexpected("team or repository without a name"))?;
                    let sub = self
                        .list_assignments(
                            &AssignmentScope::Entitlement(e),
                            PageRequest {
                                cursor: inner,
                                limit: page.limit,
                            },
                        )
                        .await?;
                    let next = match (sub.next, next_obj) {
                        (Some(c), _) => Some(format!("{phase}|{obj}|{c}")),
                        (None, Some(n)) => Some(format!("{phase}|{n}|")),
                        (None, None) => after_phase,
                    };
                    Ok(Page {
                        items: sub.items,
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
