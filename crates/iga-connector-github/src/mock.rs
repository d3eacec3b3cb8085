//! A faithful in-process GitHub REST mock (axum), for tests (feature
//! `test-support`).
//!
//! What it reproduces (protocols.md §7.4, §0.2):
//! - Auth: `Authorization: Bearer <token>` (a configured token or an installation
//!   token it issued); otherwise 401 "Bad credentials". GitHub App flow: `POST
//!   /app/installations/{id}/access_tokens` with an RS256 app JWT, verified against
//!   the app's public key (`iss`, `exp` in the future and at most 10 minutes after
//!   `iat`), answering 201 `{token, expires_at}`.
//! - Organization membership: `PUT /orgs/{org}/memberships/{user}` invites a
//!   non-member (`state: pending` until [`MockServer::accept_invitation`]; or
//!   immediately active with [`MockConfig::auto_accept`]); unknown GitHub users are
//!   404; invalid roles 422; `DELETE` removes a member or cancels the invitation
//!   (404 for neither); members and invitations are listed apart.
//! - Team membership `PUT`/`DELETE /orgs/{org}/teams/{slug}/memberships/{user}`
//!   (pending while the org membership is pending); IdP-synchronised teams refuse
//!   manual changes (403).
//! - Repository collaborators: `PUT` adds an org member directly (204) and invites
//!   anyone else (201, a repository invitation); `GET …/collaborators/{user}` is
//!   204/404.
//! - Paging: `per_page` (at most 100) and `page`, `Link: rel="next"`/`"last"`.
//! - Primary rate limit: `x-ratelimit-limit/-remaining/-used/-reset/-resource` and
//!   `Date` on every response; exhausted → 403 "API rate limit exceeded" with
//!   `remaining: 0`. Secondary limit on writes per minute → 403 with
//!   `retry-after: 60`. Conditional GETs: `ETag`, `If-None-Match` → 304 (which does
//!   not count against the primary limit).
//! - Scripted faults ([`MockFault`]) and call counters.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// A failure the mock produces on the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MockFault {
    /// 429 "secondary rate limit" with `retry-after`.
    RateLimited {
        /// The requested wait (whole seconds are sent).
        retry_after: Duration,
    },
    /// 503.
    Unavailable,
    /// 401 "Bad credentials" (for this and the next request, so a client's one
    /// re-auth retry also fails).
    Unauthenticated,
    /// 403 "Must have admin rights".
    PermissionDenied,
}

/// A GitHub App the mock knows.
#[derive(Debug, Clone)]
pub struct MockApp {
    /// App id (the JWT `iss`).
    pub app_id: String,
    /// Installation id in the mock org.
    pub installation_id: u64,
    /// The app's public key, DER `RSAPublicKey`.
    pub public_key_der: Vec<u8>,
}

/// Mock settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MockConfig {
    /// The organization login.
    pub org: String,
    /// A token accepted as is (a PAT).
    pub token: String,
    /// A GitHub App whose installation tokens are accepted.
    pub app: Option<MockApp>,
    /// Primary limit per window (default 5000 per hour).
    pub primary_limit: u64,
    /// Primary window (default 1 h).
    pub primary_window: Duration,
    /// Secondary limit: writes per minute (default 80).
    pub writes_per_minute: u64,
    /// Invitations are accepted at once (default false: pending until
    /// [`MockServer::accept_invitation`]).
    pub auto_accept: bool,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            org: "acme".into(),
            token: "ghp_mocktoken".into(),
            app: None,
            primary_limit: 5000,
            primary_window: Duration::from_secs(3600),
            writes_per_minute: 80,
            auto_accept: false,
        }
    }
}

impl MockConfig {
    /// Set the token.
    pub fn token(mut self, t: impl Into<String>) -> Self {
        self.token = t.into();
        self
    }

    /// Register a GitHub App.
    pub fn app(mut self, app: MockApp) -> Self {
        self.app = Some(app);
        self
    }

    /// Set the primary limit and window.
    pub fn primary_limit(mut self, limit: u64, window: Duration) -> Self {
        self.primary_limit = limit;
        self.primary_window = window;
        self
    }

    /// Set the secondary write limit per minute.
    pub fn writes_per_minute(mut self, n: u64) -> Self {
        self.writes_per_minute = n;
        self
    }

    /// Accept invitations at once.
    pub fn auto_accept(mut self, yes: bool) -> Self {
        self.auto_accept = yes;
        self
    }
}

#[derive(Debug, Clone)]
struct Invitation {
    id: u64,
    role: String,
    teams: BTreeSet<String>,
}

#[derive(Debug, Clone, Default)]
struct Team {
    name: String,
    idp_synced: bool,
    members: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
struct Repo {
    collaborators: BTreeMap<String, String>,
    invitations: BTreeMap<String, (u64, String)>,
}

#[derive(Debug, Default)]
struct State {
    users: BTreeMap<String, u64>,
    members: BTreeMap<String, String>,
    invitations: BTreeMap<String, Invitation>,
    teams: BTreeMap<String, Team>,
    repos: BTreeMap<String, Repo>,
    installation_tokens: HashSet<String>,
    faults: VecDeque<MockFault>,
    primary: (u64, u64),
    writes: VecDeque<u64>,
    calls: u64,
    not_modified: u64,
    calls_by_route: BTreeMap<String, u64>,
    seq: u64,
}

/// A running mock. Dropping it stops the server.
pub struct MockServer {
    state: Arc<Mutex<State>>,
    config: MockConfig,
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("url", &self.url)
            .finish()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn msg(status: StatusCode, m: &str) -> (StatusCode, Value) {
    (
        status,
        json!({"message": m, "documentation_url": "https://docs.github.com/rest", "status": status.as_u16().to_string()}),
    )
}

fn not_found() -> (StatusCode, Value) {
    msg(StatusCode::NOT_FOUND, "Not Found")
}

impl MockServer {
    /// Start with default settings on a loopback port. Panics if it cannot bind.
    pub async fn start() -> Self {
        Self::start_with(MockConfig::default()).await
    }

    /// Start with `config`. Panics if it cannot bind.
    pub async fn start_with(config: MockConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("github mock: cannot bind a loopback port");
        let addr = listener.local_addr().expect("github mock: local addr");
        let url = format!("http://{addr}");
        let state = Arc::new(Mutex::new(State::default()));
        let app = {
            let state = state.clone();
            let config = config.clone();
            let url = url.clone();
            axum::Router::new().fallback(
                move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                    let state = state.clone();
                    let config = config.clone();
                    let url = url.clone();
                    async move { handle(&state, &config, &url, method, uri, headers, body) }
                },
            )
        };
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("github mock: serve");
        });
        Self {
            state,
            config,
            url,
            task,
        }
    }

    /// The API root (give it to `GithubConfig::with_api_url`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The organization login.
    pub fn org(&self) -> &str {
        &self.config.org
    }

    /// The token the mock accepts.
    pub fn token(&self) -> &str {
        &self.config.token
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("mock state"))
    }

    /// Register GitHub users (accounts exist on GitHub independently of the org).
    pub fn add_users<'a>(&self, logins: impl IntoIterator<Item = &'a str>) {
        self.with(|s| {
            for l in logins {
                s.seq += 1;
                let id = s.seq;
                s.users.insert(l.to_ascii_lowercase(), id);
            }
        })
    }

    /// Add a team.
    pub fn add_team(&self, slug: &str) {
        self.with(|s| {
            s.teams.insert(
                slug.into(),
                Team {
                    name: slug.into(),
                    ..Team::default()
                },
            )
        });
    }

    /// Add a team synchronised with an IdP group (manual changes are refused).
    pub fn add_idp_team(&self, slug: &str) {
        self.with(|s| {
            s.teams.insert(
                slug.into(),
                Team {
                    name: slug.into(),
                    idp_synced: true,
                    ..Team::default()
                },
            )
        });
    }

    /// Add a repository of the org.
    pub fn add_repo(&self, name: &str) {
        self.with(|s| s.repos.insert(name.into(), Repo::default()));
    }

    /// The user accepts the org invitation (and the team invitations in it).
    /// Returns false if there was none.
    pub fn accept_invitation(&self, login: &str) -> bool {
        self.with(|s| accept(s, &login.to_ascii_lowercase()))
    }

    /// The org membership state of a user: `active`, `pending` or None.
    pub fn membership_state(&self, login: &str) -> Option<&'static str> {
        let l = login.to_ascii_lowercase();
        self.with(|s| {
            if s.members.contains_key(&l) {
                Some("active")
            } else if s.invitations.contains_key(&l) {
                Some("pending")
            } else {
                None
            }
        })
    }

    /// Fail the next request(s) so.
    pub fn inject(&self, fault: MockFault) {
        self.with(|s| {
            if fault == MockFault::Unauthenticated {
                s.faults.push_back(fault.clone());
            }
            s.faults.push_back(fault);
        })
    }

    /// Requests received so far.
    pub fn calls(&self) -> u64 {
        self.with(|s| s.calls)
    }

    /// Conditional GETs answered 304.
    pub fn not_modified(&self) -> u64 {
        self.with(|s| s.not_modified)
    }

    /// Requests per `METHOD /path` with ids and names replaced by `{}`.
    pub fn calls_by_route(&self) -> BTreeMap<String, u64> {
        self.with(|s| s.calls_by_route.clone())
    }
}

fn accept(s: &mut State, login: &str) -> bool {
    let Some(inv) = s.invitations.remove(login) else {
        return false;
    };
    s.members.insert(login.to_string(), inv.role);
    for t in inv.teams {
        if let Some(team) = s.teams.get_mut(&t) {
            team.members.insert(login.to_string(), "member".into());
        }
    }
    true
}

fn route_of(method: &Method, segs: &[&str]) -> String {
    let fixed = [
        "orgs",
        "memberships",
        "members",
        "invitations",
        "teams",
        "repos",
        "collaborators",
        "app",
        "installations",
        "access_tokens",
    ];
    let parts: Vec<&str> = segs
        .iter()
        .map(|p| if fixed.contains(p) { *p } else { "{}" })
        .collect();
    format!("{method} /{}", parts.join("/"))
}

fn etag_of(v: &Value) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    format!("W/\"{:016x}\"", h.finish())
}

#[allow(clippy::too_many_arguments)]
fn handle(
    state: &Mutex<State>,
    config: &MockConfig,
    base: &str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = now_secs();
    let date = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(now));
    let path = uri.path().to_string();
    let decoded: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            url::form_urlencoded::parse(format!("k={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect();
    let segs: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let mut s = state.lock().expect("mock state");
    s.calls += 1;
    *s.calls_by_route
        .entry(route_of(&method, &segs))
        .or_default() += 1;
    let window = config.primary_window.as_secs().max(1);
    if now >= s.primary.0 + window {
        s.primary = (now, 0);
    }
    let reset = s.primary.0 + window;
    let rl = |used: u64| {
        Some((
            config.primary_limit,
            config.primary_limit.saturating_sub(used),
            used,
            reset,
        ))
    };
    if let Some(fault) = s.faults.pop_front() {
        let used = s.primary.1;
        let (r, retry) = match fault {
            MockFault::RateLimited { retry_after } => (
                msg(
                    StatusCode::TOO_MANY_REQUESTS,
                    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                ),
                Some(retry_after.as_secs().max(1)),
            ),
            MockFault::Unavailable => ((StatusCode::SERVICE_UNAVAILABLE, Value::Null), None),
            MockFault::Unauthenticated => (msg(StatusCode::UNAUTHORIZED, "Bad credentials"), None),
            MockFault::PermissionDenied => (
                msg(
                    StatusCode::FORBIDDEN,
                    "Must have admin rights to Repository.",
                ),
                None,
            ),
        };
        return finish(r, &date, rl(used), retry, None, None);
    }
    let body: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(_) => {
                return finish(
                    msg(StatusCode::BAD_REQUEST, "Problems parsing JSON"),
                    &date,
                    None,
                    None,
                    None,
                    None,
                );
            }
        }
    };
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .unwrap_or("")
        .to_string();
    // The app JWT exchange.
    if let (&Method::POST, ["app", "installations", id, "access_tokens"]) =
        (&method, segs.as_slice())
    {
        let r = match &config.app {
            Some(app) if id.parse::<u64>().ok() == Some(app.installation_id) => {
                match verify_jwt(&bearer, app, now) {
                    Ok(()) => {
                        s.seq += 1;
                        let token = format!("ghs_mockinstallation{:08}", s.seq);
                        s.installation_tokens.insert(token.clone());
                        let expires =
                            chrono::DateTime::<chrono::Utc>::from_timestamp((now + 3600) as i64, 0)
                                .expect("timestamp")
                                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                        (
                            StatusCode::CREATED,
                            json!({"token": token, "expires_at": expires, "permissions": {"members": "write"}}),
                        )
                    }
                    Err(m) => msg(StatusCode::UNAUTHORIZED, m),
                }
            }
            _ => not_found(),
        };
        return finish(r, &date, None, None, None, None);
    }
    if bearer != config.token && !s.installation_tokens.contains(&bearer) {
        let used = s.primary.1;
        return finish(
            msg(StatusCode::UNAUTHORIZED, "Bad credentials"),
            &date,
            rl(used),
            None,
            None,
            None,
        );
    }
    // Conditional GET: a 304 does not count against the primary limit.
    let if_none_match = headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let is_write = method != Method::GET;
    if s.primary.1 >= config.primary_limit {
        return finish(
            msg(
                StatusCode::FORBIDDEN,
                "API rate limit exceeded for installation.",
            ),
            &date,
            rl(config.primary_limit),
            None,
            None,
            None,
        );
    }
    if is_write {
        while s.writes.front().is_some_and(|t| *t + 60 <= now) {
            s.writes.pop_front();
        }
        if s.writes.len() as u64 >= config.writes_per_minute {
            let used = s.primary.1;
            return finish(
                msg(
                    StatusCode::FORBIDDEN,
                    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                ),
                &date,
                rl(used),
                Some(60),
                None,
                None,
            );
        }
        s.writes.push_back(now);
    }
    let (result, link) = route(&mut s, config, base, &method, &segs, &query, body);
    if method == Method::GET && result.0 == StatusCode::OK && !result.1.is_null() {
        let etag = etag_of(&result.1);
        if if_none_match.as_deref() == Some(etag.as_str()) {
            s.not_modified += 1;
            let used = s.primary.1;
            return finish(
                (StatusCode::NOT_MODIFIED, Value::Null),
                &date,
                rl(used),
                None,
                link,
                Some(etag),
            );
        }
        s.primary.1 += 1;
        let used = s.primary.1;
        return finish(result, &date, rl(used), None, link, Some(etag));
    }
    s.primary.1 += 1;
    let used = s.primary.1;
    finish(result, &date, rl(used), None, link, None)
}

fn verify_jwt(jwt: &str, app: &MockApp, now: u64) -> Result<(), &'static str> {
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return Err("A JSON web token could not be decoded");
    }
    let header: Value = URL_SAFE_NO_PAD
        .decode(parts[0])
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("A JSON web token could not be decoded")?;
    if header["alg"] != "RS256" {
        return Err("A JSON web token could not be decoded");
    }
    let sig = URL_SAFE_NO_PAD
        .decode(parts[2])
        .map_err(|_| "A JSON web token could not be decoded")?;
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &app.public_key_der,
    )
    .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
    .map_err(|_| "A JSON web token could not be decoded")?;
    let claims: Value = URL_SAFE_NO_PAD
        .decode(parts[1])
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("A JSON web token could not be decoded")?;
    let (Some(iat), Some(exp)) = (claims["iat"].as_u64(), claims["exp"].as_u64()) else {
        return Err(
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
        );
    };
    if claims["iss"].as_str() != Some(app.app_id.as_str())
        && claims["iss"].as_u64().map(|i| i.to_string()) != Some(app.app_id.clone())
    {
        return Err("Integration not found");
    }
    if exp <= now {
        return Err(
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        );
    }
    if exp.saturating_sub(iat) > 600 {
        return Err("'Expiration time' claim ('exp') is too far in the future");
    }
    Ok(())
}

fn finish(
    (status, body): (StatusCode, Value),
    date: &str,
    rl: Option<(u64, u64, u64, u64)>,
    retry_after: Option<u64>,
    link: Option<String>,
    etag: Option<String>,
) -> Response {
    let mut resp = if body.is_null() {
        status.into_response()
    } else {
        (status, axum::Json(body)).into_response()
    };
    let h = resp.headers_mut();
    h.insert("date", HeaderValue::from_str(date).expect("date"));
    if let Some((limit, remaining, used, reset)) = rl {
        h.insert("x-ratelimit-limit", limit.into());
        h.insert("x-ratelimit-remaining", remaining.into());
        h.insert("x-ratelimit-used", used.into());
        h.insert("x-ratelimit-reset", reset.into());
        h.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
    }
    if let Some(r) = retry_after {
        h.insert("retry-after", r.into());
    }
    if let Some(l) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        h.insert("link", l);
    }
    if let Some(e) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        h.insert("etag", e);
    }
    resp
}

type Routed = ((StatusCode, Value), Option<String>);

fn paged(items: Vec<Value>, query: &HashMap<String, String>, base: &str, path: &str) -> Routed {
    let per_page = query
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = query
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let link =
        |p: usize, rel: &str| format!("<{base}{path}?per_page={per_page}&page={p}>; rel=\"{rel}\"");
    let mut links = Vec::new();
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(page - 1, "prev"));
        links.push(link(1, "first"));
    }
    (
        (StatusCode::OK, Value::Array(slice)),
        (!links.is_empty()).then(|| links.join(", ")),
    )
}

fn user_json(s: &State, login: &str) -> Value {
    json!({"login": login, "id": s.users.get(login).copied().unwrap_or(0), "type": "User"})
}

#[allow(clippy::too_many_arguments)]
fn route(
    s: &mut State,
    config: &MockConfig,
    base: &str,
    method: &Method,
    segs: &[&str],
    query: &HashMap<String, String>,
    body: Option<Value>,
) -> Routed {
    let ok = |v: Value| ((StatusCode::OK, v), None);
    let empty = |st: StatusCode| ((st, Value::Null), None);
    let err = |e: (StatusCode, Value)| (e, None);
    let org = config.org.as_str();
    let role_in = |allowed: &[&str], default: &str| -> Result<String, (StatusCode, Value)> {
        let r = body
            .as_ref()
            .and_then(|b| b.get("role").or_else(|| b.get("permission")))
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string();
        if allowed.contains(&r.as_str()) {
            Ok(r)
        } else {
            Err(msg(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed"))
        }
    };
    match (method.as_str(), segs) {
        ("GET", ["orgs", o]) if *o == org => {
            ok(json!({"login": org, "id": 1, "type": "Organization"}))
        }
        (_, ["orgs", o, ..]) | (_, ["repos", o, ..]) if *o != org => err(not_found()),
        ("GET", ["orgs", _, "memberships", u]) => {
            let l = u.to_ascii_lowercase();
            if let Some(role) = s.members.get(&l) {
                ok(json!({"state": "active", "role": role, "user": user_json(s, &l)}))
            } else if let Some(inv) = s.invitations.get(&l) {
                ok(json!({"state": "pending", "role": inv.role, "user": user_json(s, &l)}))
            } else {
                err(not_found())
            }
        }
        ("PUT", ["orgs", _, "memberships", u]) => {
            let l = u.to_ascii_lowercase();
            if !s.users.contains_key(&l) {
                return err(not_found());
            }
            let role = match role_in(&["member", "admin"], "member") {
                Ok(r) => r,
                Err(e) => return err(e),
            };
            if s.members.contains_key(&l) {
                s.members.insert(l.clone(), role.clone());
                return ok(json!({"state": "active", "role": role, "user": user_json(s, &l)}));
            }
            s.seq += 1;
            let id = s.seq;
            let inv = s.invitations.entry(l.clone()).or_insert(Invitation {
                id,
                role: role.clone(),
                teams: BTreeSet::new(),
            });
            inv.role = role.clone();
            if config.auto_accept {
                accept(s, &l);
                return ok(json!({"state": "active", "role": role, "user": user_json(s, &l)}));
            }
            ok(json!({"state": "pending", "role": role, "user": user_json(s, &l)}))
        }
        ("DELETE", ["orgs", _, "memberships", u]) | ("DELETE", ["orgs", _, "members", u]) => {
            let l = u.to_ascii_lowercase();
            let was = s.members.remove(&l).is_some() | s.invitations.remove(&l).is_some();
            if !was {
                return err(not_found());
            }
            for t in s.teams.values_mut() {
                t.members.remove(&l);
            }
            empty(StatusCode::NO_CONTENT)
        }
        ("GET", ["orgs", _, "members"]) => {
            let items = s.members.keys().map(|l| user_json(s, l)).collect();
            paged(items, query, base, &format!("/orgs/{org}/members"))
        }
        ("GET", ["orgs", _, "invitations"]) => {
            let items = s
                .invitations
                .iter()
                .map(|(l, i)| json!({"id": i.id, "login": l, "role": if i.role == "admin" { "admin" } else { "direct_member" }}))
                .collect();
            paged(items, query, base, &format!("/orgs/{org}/invitations"))
        }
        ("GET", ["orgs", _, "teams"]) => {
            let items = s
                .teams
                .iter()
                .map(|(slug, t)| json!({"slug": slug, "name": t.name}))
                .collect();
            paged(items, query, base, &format!("/orgs/{org}/teams"))
        }
        ("GET", ["orgs", _, "teams", slug]) => match s.teams.get(*slug) {
            Some(t) => ok(json!({"slug": slug, "name": t.name})),
            None => err(not_found()),
        },
        ("GET", ["orgs", _, "teams", slug, "members"]) => {
            let Some(t) = s.teams.get(*slug) else {
                return err(not_found());
            };
            let items = t.members.keys().map(|l| user_json(s, l)).collect();
            paged(
                items,
                query,
                base,
                &format!("/orgs/{org}/teams/{slug}/members"),
            )
        }
        ("GET", ["orgs", _, "teams", slug, "invitations"]) => {
            if !s.teams.contains_key(*slug) {
                return err(not_found());
            }
            let items = s
                .invitations
                .iter()
                .filter(|(_, i)| i.teams.contains(*slug))
                .map(|(l, i)| json!({"id": i.id, "login": l}))
                .collect();
            paged(
                items,
                query,
                base,
                &format!("/orgs/{org}/teams/{slug}/invitations"),
            )
        }
        ("GET", ["orgs", _, "teams", slug, "memberships", u]) => {
            let l = u.to_ascii_lowercase();
            let Some(t) = s.teams.get(*slug) else {
                return err(not_found());
            };
            if let Some(role) = t.members.get(&l) {
                ok(json!({"state": "active", "role": role}))
            } else if s
                .invitations
                .get(&l)
                .is_some_and(|i| i.teams.contains(*slug))
            {
                ok(json!({"state": "pending", "role": "member"}))
            } else {
                err(not_found())
            }
        }
        ("PUT", ["orgs", _, "teams", slug, "memberships", u]) => {
            let l = u.to_ascii_lowercase();
            let Some(t) = s.teams.get(*slug) else {
                return err(not_found());
            };
            if t.idp_synced {
                return err(msg(
                    StatusCode::FORBIDDEN,
                    "This team is synchronized with an identity provider group: team membership must be changed in the identity provider.",
                ));
            }
            if !s.users.contains_key(&l) {
                return err(not_found());
            }
            let role = match role_in(&["member", "maintainer"], "member") {
                Ok(r) => r,
                Err(e) => return err(e),
            };
            if s.members.contains_key(&l) {
                s.teams
                    .get_mut(*slug)
                    .expect("team")
                    .members
                    .insert(l, role.clone());
                return ok(json!({"state": "active", "role": role}));
            }
            s.seq += 1;
            let id = s.seq;
            s.invitations
                .entry(l)
                .or_insert(Invitation {
                    id,
                    role: "member".into(),
                    teams: BTreeSet::new(),
                })
                .teams
                .insert(slug.to_string());
            ok(json!({"state": "pending", "role": role}))
        }
        ("DELETE", ["orgs", _, "teams", slug, "memberships", u]) => {
            let l = u.to_ascii_lowercase();
            let Some(t) = s.teams.get_mut(*slug) else {
                return err(not_found());
            };
            if t.idp_synced {
                return err(msg(
                    StatusCode::FORBIDDEN,
                    "This team is synchronized with an identity provider group.",
                ));
            }
            let was = t.members.remove(&l).is_some()
                | s.invitations
                    .get_mut(&l)
                    .is_some_and(|i| i.teams.remove(*slug));
            if was {
                empty(StatusCode::NO_CONTENT)
            } else {
                err(not_found())
            }
        }
        ("GET", ["orgs", _, "repos"]) => {
            let items = s
                .repos
                .keys()
                .map(|r| json!({"name": r, "full_name": format!("{org}/{r}")}))
                .collect();
            paged(items, query, base, &format!("/orgs/{org}/repos"))
        }
        ("GET", ["repos", _, r]) => match s.repos.get(*r) {
            Some(_) => ok(json!({"name": r, "full_name": format!("{org}/{r}")})),
            None => err(not_found()),
        },
        ("GET", ["repos", _, r, "collaborators"]) => {
            let Some(repo) = s.repos.get(*r) else {
                return err(not_found());
            };
            let items = repo
                .collaborators
                .iter()
                .map(|(l, p)| {
                    let mut u = user_json(s, l);
                    u["role_name"] = json!(p);
                    u
                })
                .collect();
            paged(
                items,
                query,
                base,
                &format!("/repos/{org}/{r}/collaborators"),
            )
        }
        ("GET", ["repos", _, r, "collaborators", u]) => {
            let l = u.to_ascii_lowercase();
            match s.repos.get(*r) {
                Some(repo) if repo.collaborators.contains_key(&l) => empty(StatusCode::NO_CONTENT),
                _ => err(not_found()),
            }
        }
        ("PUT", ["repos", _, r, "collaborators", u]) => {
            let l = u.to_ascii_lowercase();
            if !s.users.contains_key(&l) || !s.repos.contains_key(*r) {
                return err(not_found());
            }
            let perm = match role_in(&["pull", "triage", "push", "maintain", "admin"], "push") {
                Ok(p) => p,
                Err(e) => return err(e),
            };
            let is_member = s.members.contains_key(&l);
            s.seq += 1;
            let id = s.seq;
            let repo = s.repos.get_mut(*r).expect("repo");
            if repo.collaborators.contains_key(&l) || is_member || config.auto_accept {
                repo.collaborators.insert(l, perm);
                return empty(StatusCode::NO_CONTENT);
            }
            let inv = repo
                .invitations
                .entry(l.clone())
                .or_insert((id, perm.clone()));
            inv.1 = perm.clone();
            let inv_id = inv.0;
            (
                (
                    StatusCode::CREATED,
                    json!({"id": inv_id, "invitee": user_json(s, &l), "permissions": perm}),
                ),
                None,
            )
        }
        ("DELETE", ["repos", _, r, "collaborators", u]) => {
            let l = u.to_ascii_lowercase();
            let removed = s
                .repos
                .get_mut(*r)
                .is_some_and(|repo| repo.collaborators.remove(&l).is_some());
            if removed {
                empty(StatusCode::NO_CONTENT)
            } else {
                err(not_found())
            }
        }
        ("GET", ["repos", _, r, "invitations"]) => {
            let Some(repo) = s.repos.get(*r) else {
                return err(not_found());
            };
            let items = repo
                .invitations
                .iter()
                .map(|(l, (id, p))| json!({"id": id, "invitee": user_json(s, l), "permissions": p}))
                .collect();
            paged(items, query, base, &format!("/repos/{org}/{r}/invitations"))
        }
        ("DELETE", ["repos", _, r, "invitations", id]) => {
            let Some(repo) = s.repos.get_mut(*r) else {
                return err(not_found());
            };
            let id: u64 = id.parse().unwrap_or(0);
            let before = repo.invitations.len();
            repo.invitations.retain(|_, (i, _)| *i != id);
            if repo.invitations.len() < before {
                empty(StatusCode::NO_CONTENT)
            } else {
                err(not_found())
            }
        }
        _ => err(not_found()),
    }
}
