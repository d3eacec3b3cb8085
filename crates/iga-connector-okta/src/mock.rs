//! A faithful in-process Okta Management API mock (axum), for tests
//! (feature `test-support`).
//!
//! What it reproduces (protocols.md §7.1, §0.2):
//! - `Authorization: SSWS <token>` or `Bearer <token>`; anything else is 401
//!   `E0000011`.
//! - Users: create with `?activate=true|false` (→ `PROVISIONED`/`ACTIVE` or `STAGED`);
//!   the base profile's required attributes (`login`, `email`, `firstName`,
//!   `lastName`), an e-mail shaped `login`, unique logins (case-insensitive) and only
//!   base-profile attributes are accepted (400 `E0000001` otherwise); `POST
//!   /users/{id}` merges, `PUT /users/{id}` replaces the whole profile; lifecycle
//!   `activate`/`deactivate`/`suspend`/`unsuspend` with status rules (403
//!   `E0000016`/`E0000038`); `DELETE` of a user that is not `DEPROVISIONED` only
//!   deactivates it, a second `DELETE` removes it. Deactivated users keep their groups.
//! - Groups: `PUT`/`DELETE /groups/{g}/users/{u}` are idempotent (204); `APP_GROUP`
//!   memberships are read-only (403 `E0000006`); unknown ids are 404 `E0000007`.
//! - App assignments: `POST /apps/{id}/users`, `GET`/`DELETE /apps/{id}/users/{u}`,
//!   `GET /apps?filter=user.id eq "<u>"`.
//! - Paging: `limit` (at most 200) and `after`, with `Link: <…>; rel="next"`.
//! - Rate limits: a bucket per endpoint family with `X-Rate-Limit-Limit`,
//!   `-Remaining` and `-Reset` (epoch seconds) and a `Date` header on every response;
//!   over the limit, 429 `E0000047`.
//! - Scripted faults ([`MockFault`]) and call counters.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// The base-profile attributes Okta accepts without a schema extension.
const BASE_PROFILE: &[&str] = &[
    "login",
    "email",
    "secondEmail",
    "firstName",
    "lastName",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
    "title",
    "displayName",
    "nickName",
    "profileUrl",
    "primaryPhone",
    "mobilePhone",
    "streetAddress",
    "city",
    "state",
    "zipCode",
    "countryCode",
    "postalAddress",
    "preferredLanguage",
    "locale",
    "timezone",
    "userType",
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "managerId",
    "manager",
];

/// A failure the mock produces on the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MockFault {
    /// 429 `E0000047` with `X-Rate-Limit-Remaining: 0` and a reset `reset_in` after
    /// the response's `Date`.
    RateLimited {
        /// Time until the window resets.
        reset_in: Duration,
    },
    /// 503 with an empty body.
    Unavailable,
    /// 401 `E0000011` (for this and the next request, so a client's one re-auth
    /// retry also fails).
    Unauthenticated,
    /// 403 `E0000006`.
    PermissionDenied,
}

/// Mock settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MockConfig {
    /// The API token clients must send.
    pub token: String,
    /// Requests per window and endpoint family (default 600).
    pub rate_limit: u64,
    /// The rate-limit window (default 60 s).
    pub window: Duration,
    /// A service app allowed to use `private_key_jwt` at `/oauth2/v1/token`.
    pub oauth_client: Option<MockOAuthClient>,
}

/// A service app registered for OAuth 2.0 client credentials (`private_key_jwt`).
#[derive(Debug, Clone)]
pub struct MockOAuthClient {
    /// The client id.
    pub client_id: String,
    /// Its public key, DER `RSAPublicKey`.
    pub public_key_der: Vec<u8>,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            token: "mock-okta-token".into(),
            rate_limit: 600,
            window: Duration::from_secs(60),
            oauth_client: None,
        }
    }
}

impl MockConfig {
    /// Set the token.
    pub fn token(mut self, t: impl Into<String>) -> Self {
        self.token = t.into();
        self
    }

    /// Register a service app for `private_key_jwt`.
    pub fn oauth_client(mut self, client: MockOAuthClient) -> Self {
        self.oauth_client = Some(client);
        self
    }

    /// Set the per-family limit and window.
    pub fn rate_limit(mut self, limit: u64, window: Duration) -> Self {
        self.rate_limit = limit;
        self.window = window;
        self
    }
}

#[derive(Debug, Clone)]
struct User {
    status: String,
    profile: Map<String, Value>,
    has_password: bool,
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    kind: &'static str,
    members: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct App {
    label: String,
    users: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct State {
    users: BTreeMap<String, User>,
    groups: BTreeMap<String, Group>,
    apps: BTreeMap<String, App>,
    faults: VecDeque<MockFault>,
    buckets: HashMap<&'static str, (u64, u64)>,
    calls: u64,
    calls_by_route: BTreeMap<String, u64>,
    seq: u64,
    access_tokens: BTreeSet<String>,
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

fn okta_error(
    status: StatusCode,
    code: &str,
    summary: &str,
    causes: &[String],
) -> (StatusCode, Value) {
    let causes: Vec<Value> = causes.iter().map(|c| json!({"errorSummary": c})).collect();
    (
        status,
        json!({"errorCode": code, "errorSummary": summary, "errorLink": code,
               "errorId": "oae-mock", "errorCauses": causes}),
    )
}

fn not_found(what: &str) -> (StatusCode, Value) {
    okta_error(
        StatusCode::NOT_FOUND,
        "E0000007",
        &format!("Not found: Resource not found: {what}"),
        &[],
    )
}

fn validation(causes: Vec<String>) -> (StatusCode, Value) {
    okta_error(
        StatusCode::BAD_REQUEST,
        "E0000001",
        "Api validation failed: profile",
        &causes,
    )
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
            .expect("okta mock: cannot bind a loopback port");
        let addr = listener.local_addr().expect("okta mock: local addr");
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
            axum::serve(listener, app).await.expect("okta mock: serve");
        });
        Self {
            state,
            config,
            url,
            task,
        }
    }

    /// The org URL (give it to `OktaConfig::new`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The API token the mock accepts.
    pub fn token(&self) -> &str {
        &self.config.token
    }

    fn next_id(&self, prefix: &str) -> String {
        let mut s = self.state.lock().expect("mock state");
        s.seq += 1;
        format!("{prefix}{:017}", s.seq)
    }

    /// Add an `OKTA_GROUP`; returns its id.
    pub fn add_group(&self, name: &str) -> String {
        self.add_group_of_kind(name, "OKTA_GROUP")
    }

    /// Add an `APP_GROUP` (imported from an app or directory, read-only membership).
    pub fn add_app_group(&self, name: &str) -> String {
        self.add_group_of_kind(name, "APP_GROUP")
    }

    fn add_group_of_kind(&self, name: &str, kind: &'static str) -> String {
        let id = self.next_id("00g");
        self.state.lock().expect("mock state").groups.insert(
            id.clone(),
            Group {
                name: name.into(),
                kind,
                members: BTreeSet::new(),
            },
        );
        id
    }

    /// Add an app instance; returns its id.
    pub fn add_app(&self, label: &str) -> String {
        let id = self.next_id("0oa");
        self.state.lock().expect("mock state").apps.insert(
            id.clone(),
            App {
                label: label.into(),
                users: BTreeSet::new(),
            },
        );
        id
    }

    /// Fail the next request(s) so.
    pub fn inject(&self, fault: MockFault) {
        let mut s = self.state.lock().expect("mock state");
        if fault == MockFault::Unauthenticated {
            s.faults.push_back(fault.clone());
        }
        s.faults.push_back(fault);
    }

    /// Requests received so far.
    pub fn calls(&self) -> u64 {
        self.state.lock().expect("mock state").calls
    }

    /// Requests received per `METHOD /route` (ids replaced by `{id}`).
    pub fn calls_by_route(&self) -> BTreeMap<String, u64> {
        self.state
            .lock()
            .expect("mock state")
            .calls_by_route
            .clone()
    }

    /// The status of the user with this login, if it exists.
    pub fn user_status(&self, login: &str) -> Option<String> {
        let s = self.state.lock().expect("mock state");
        s.users
            .values()
            .find(|u| {
                u.profile
                    .get("login")
                    .and_then(Value::as_str)
                    .is_some_and(|l| l.eq_ignore_ascii_case(login))
            })
            .map(|u| u.status.clone())
    }

    /// The profile of the user with this id.
    pub fn user_profile(&self, id: &str) -> Option<Map<String, Value>> {
        self.state
            .lock()
            .expect("mock state")
            .users
            .get(id)
            .map(|u| u.profile.clone())
    }

    /// Logins of the members of a group.
    pub fn group_members(&self, group_id: &str) -> Vec<String> {
        let s = self.state.lock().expect("mock state");
        s.groups
            .get(group_id)
            .map(|g| {
                g.members
                    .iter()
                    .filter_map(|u| s.users.get(u))
                    .filter_map(|u| u.profile.get("login")?.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn user_json(id: &str, u: &User) -> Value {
    json!({"id": id, "status": u.status, "profile": u.profile,
           "type": {"id": "oty-default"}, "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}}})
}

fn group_json(id: &str, g: &Group) -> Value {
    json!({"id": id, "type": g.kind, "profile": {"name": g.name, "description": null}})
}

fn app_json(id: &str, a: &App) -> Value {
    json!({"id": id, "label": a.label, "status": "ACTIVE", "signOnMode": "SAML_2_0"})
}

fn bucket_of(segs: &[&str]) -> &'static str {
    match segs {
        ["users"] => "users",
        ["users", ..] => "user",
        ["groups", ..] => "groups",
        ["apps", ..] => "apps",
        _ => "other",
    }
}

fn route_of(method: &Method, segs: &[&str]) -> String {
    let parts: Vec<&str> = segs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 1 && matches!(segs[i - 1], "users" | "groups" | "apps") {
                "{id}"
            } else {
                *p
            }
        })
        .collect();
    format!("{method} /{}", parts.join("/"))
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
    if path == "/oauth2/v1/token" && method == Method::POST {
        let mut s = state.lock().expect("mock state");
        s.calls += 1;
        *s.calls_by_route
            .entry("POST /oauth2/v1/token".into())
            .or_default() += 1;
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        let r = match token_grant(config, base, &form) {
            Ok(scope) => {
                s.seq += 1;
                let token = format!("okta-at-{:012}", s.seq);
                s.access_tokens.insert(token.clone());
                (
                    StatusCode::OK,
                    json!({"token_type": "Bearer", "expires_in": 3600,
                    "access_token": token, "scope": scope}),
                )
            }
            Err((status, code, desc)) => {
                (status, json!({"error": code, "error_description": desc}))
            }
        };
        return finish(r, &date, None, None);
    }
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return finish(not_found(&path), &date, None, None);
    };
    let decoded: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
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
    // Rate-limit bucket (counted before auth, like the real service).
    let bucket = bucket_of(&segs);
    let window = config.window.as_secs().max(1);
    let entry = s.buckets.entry(bucket).or_insert((now, 0));
    if now >= entry.0 + window {
        *entry = (now, 0);
    }
    entry.1 += 1;
    let (start, used) = *entry;
    let reset = start + window;
    let remaining = config.rate_limit.saturating_sub(used);
    let rl = |remaining: u64, reset: u64| Some((config.rate_limit, remaining, reset));
    if let Some(fault) = s.faults.pop_front() {
        let r = match fault {
            MockFault::RateLimited { reset_in } => {
                return finish(
                    okta_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "E0000047",
                        "API call exceeded rate limit due to too many requests.",
                        &[],
                    ),
                    &date,
                    rl(0, now + reset_in.as_secs()),
                    None,
                );
            }
            MockFault::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, Value::Null),
            MockFault::Unauthenticated => okta_error(
                StatusCode::UNAUTHORIZED,
                "E0000011",
                "Invalid token provided",
                &[],
            ),
            MockFault::PermissionDenied => okta_error(
                StatusCode::FORBIDDEN,
                "E0000006",
                "You do not have permission to perform the requested action",
                &[],
            ),
        };
        return finish(r, &date, rl(remaining, reset), None);
    }
    if used > config.rate_limit {
        return finish(
            okta_error(
                StatusCode::TOO_MANY_REQUESTS,
                "E0000047",
                "API call exceeded rate limit due to too many requests.",
                &[],
            ),
            &date,
            rl(0, reset),
            None,
        );
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let issued = auth
        .strip_prefix("Bearer ")
        .is_some_and(|t| s.access_tokens.contains(t));
    if !issued
        && auth != format!("SSWS {}", config.token)
        && auth != format!("Bearer {}", config.token)
    {
        return finish(
            okta_error(
                StatusCode::UNAUTHORIZED,
                "E0000011",
                "Invalid token provided",
                &[],
            ),
            &date,
            rl(remaining, reset),
            None,
        );
    }
    let body: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(_) => {
                return finish(
                    okta_error(
                        StatusCode::BAD_REQUEST,
                        "E0000003",
                        "The request body was not well-formed.",
                        &[],
                    ),
                    &date,
                    rl(remaining, reset),
                    None,
                );
            }
        }
    };
    let (result, link) = route(&mut s, base, &method, &segs, &query, body);
    finish(result, &date, rl(remaining, reset), link)
}

/// Percent-decode one path segment (`%40` → `@`).
fn percent_decode(seg: &str) -> String {
    url::form_urlencoded::parse(format!("k={}", seg.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

type GrantError = (StatusCode, &'static str, &'static str);

/// Check a `client_credentials` grant with a `private_key_jwt` assertion.
fn token_grant(
    config: &MockConfig,
    base: &str,
    form: &HashMap<String, String>,
) -> Result<String, GrantError> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let invalid = |d| (StatusCode::UNAUTHORIZED, "invalid_client", d);
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return Err((
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        ));
    }
    if form.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return Err(invalid("client_assertion_type is invalid."));
    }
    let scope = form.get("scope").cloned().unwrap_or_default();
    if scope.trim().is_empty() || !scope.split(' ').all(|s| s.starts_with("okta.")) {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The authorization server resource does not have any configured default scopes, 'scope' must be provided.",
        ));
    }
    let Some(client) = &config.oauth_client else {
        return Err(invalid("The client_id is not registered."));
    };
    let jwt = form.get("client_assertion").cloned().unwrap_or_default();
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return Err(invalid("The client_assertion is malformed."));
    }
    let sig = URL_SAFE_NO_PAD
        .decode(parts[2])
        .map_err(|_| invalid("The client_assertion is malformed."))?;
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &client.public_key_der,
    )
    .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
    .map_err(|_| invalid("The client_assertion signature is invalid."))?;
    let claims: Value = URL_SAFE_NO_PAD
        .decode(parts[1])
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(invalid("The client_assertion is malformed."))?;
    let now = now_secs();
    let ok = claims["iss"] == client.client_id.as_str()
        && claims["sub"] == client.client_id.as_str()
        && claims["aud"] == format!("{base}/oauth2/v1/token").as_str()
        && claims["exp"].as_u64().is_some_and(|e| e > now)
        && claims["iat"].as_u64().is_some_and(|i| {
            claims["exp"]
                .as_u64()
                .is_some_and(|e| e.saturating_sub(i) <= 3600)
        })
        && claims["jti"].as_str().is_some_and(|j| !j.is_empty());
    if !ok {
        return Err(invalid("The client_assertion token is invalid."));
    }
    Ok(scope)
}

fn finish(
    (status, body): (StatusCode, Value),
    date: &str,
    rl: Option<(u64, u64, u64)>,
    link: Option<String>,
) -> Response {
    let mut resp = if body.is_null() {
        status.into_response()
    } else {
        (status, axum::Json(body)).into_response()
    };
    let h = resp.headers_mut();
    h.insert("date", HeaderValue::from_str(date).expect("date header"));
    if let Some((limit, remaining, reset)) = rl {
        h.insert("x-rate-limit-limit", limit.into());
        h.insert("x-rate-limit-remaining", remaining.into());
        h.insert("x-rate-limit-reset", reset.into());
    }
    if let Some(l) = link
        && let Ok(v) = HeaderValue::from_str(&l)
    {
        h.insert("link", v);
    }
    resp
}

type Routed = ((StatusCode, Value), Option<String>);

/// Page `items` (already in stable id order) by `limit`/`after`.
fn paged(
    items: Vec<(String, Value)>,
    query: &HashMap<String, String>,
    base: &str,
    path: &str,
) -> Routed {
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(200)
        .clamp(1, 200);
    let after = query.get("after");
    let start = match after {
        Some(a) => items
            .iter()
            .position(|(id, _)| id > a)
            .unwrap_or(items.len()),
        None => 0,
    };
    let page: Vec<(String, Value)> = items.iter().skip(start).take(limit).cloned().collect();
    let more = start + page.len() < items.len();
    let mut extra: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| *k != "after" && *k != "limit")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    extra.sort();
    let qs = |after: Option<&str>| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("limit", &limit.to_string());
        for (k, v) in &extra {
            q.append_pair(k, v);
        }
        if let Some(a) = after {
            q.append_pair("after", a);
        }
        q.finish()
    };
    let self_link = format!("<{base}/api/v1/{path}?{}>; rel=\"self\"", qs(None));
    let link = if more {
        let last = &page.last().expect("non-empty page").0;
        format!(
            "{self_link}, <{base}/api/v1/{path}?{}>; rel=\"next\"",
            qs(Some(last))
        )
    } else {
        self_link
    };
    let arr: Vec<Value> = page.into_iter().map(|(_, v)| v).collect();
    ((StatusCode::OK, Value::Array(arr)), Some(link))
}

fn find_user_id(s: &State, key: &str) -> Option<String> {
    if s.users.contains_key(key) {
        return Some(key.to_string());
    }
    s.users
        .iter()
        .find(|(_, u)| {
            u.profile
                .get("login")
                .and_then(Value::as_str)
                .is_some_and(|l| l.eq_ignore_ascii_case(key))
        })
        .map(|(id, _)| id.clone())
}

fn validate_profile(
    s: &State,
    profile: &Map<String, Value>,
    self_id: Option<&str>,
    full: bool,
) -> Result<(), (StatusCode, Value)> {
    let mut causes = Vec::new();
    for k in profile.keys() {
        if !BASE_PROFILE.contains(&k.as_str()) {
            causes.push(format!("Property name '{k}' is not defined in profile"));
        }
    }
    if full {
        for req in ["login", "email", "firstName", "lastName"] {
            if profile
                .get(req)
                .and_then(Value::as_str)
                .is_none_or(|v| v.trim().is_empty())
            {
                causes.push(format!("{req}: The field cannot be left blank"));
            }
        }
    }
    if let Some(login) = profile.get("login").and_then(Value::as_str) {
        let (local, domain) = login.split_once('@').unwrap_or(("", ""));
        if local.is_empty() || !domain.contains('.') {
            causes.push("login: Username must be in the form of an email address".into());
        }
        if s.users.iter().any(|(id, u)| {
            Some(id.as_str()) != self_id
                && u.profile
                    .get("login")
                    .and_then(Value::as_str)
                    .is_some_and(|l| l.eq_ignore_ascii_case(login))
        }) {
            causes.push(
                "login: An object with this field already exists in the current organization"
                    .into(),
            );
        }
    }
    if let Some(email) = profile.get("email").and_then(Value::as_str)
        && !email.contains('@')
    {
        causes.push("email: Does not match required pattern".into());
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(validation(causes))
    }
}

fn forbidden_status(summary: &str, code: &str) -> (StatusCode, Value) {
    okta_error(StatusCode::FORBIDDEN, code, summary, &[])
}

fn route(
    s: &mut State,
    base: &str,
    method: &Method,
    segs: &[&str],
    query: &HashMap<String, String>,
    body: Option<Value>,
) -> Routed {
    let ok = |v: Value| ((StatusCode::OK, v), None);
    let no_content = || ((StatusCode::NO_CONTENT, Value::Null), None);
    let err = |e: (StatusCode, Value)| (e, None);
    match (method.as_str(), segs) {
        ("GET", ["users"]) => {
            if let Some(search) = query.get("search") {
                // Only `profile.<attr> eq "<value>"` is supported here.
                let parsed = search
                    .strip_prefix("profile.")
                    .and_then(|r| r.split_once(" eq "))
                    .and_then(|(a, v)| {
                        Some((
                            a.to_string(),
                            v.strip_prefix('"')?
                                .strip_suffix('"')?
                                .replace("\\\"", "\""),
                        ))
                    });
                let Some((attr, value)) = parsed else {
                    return err(okta_error(
                        StatusCode::BAD_REQUEST,
                        "E0000031",
                        "Invalid search criteria.",
                        &[],
                    ));
                };
                let items = s
                    .users
                    .iter()
                    .filter(|(_, u)| {
                        u.profile.get(&attr).and_then(Value::as_str) == Some(value.as_str())
                    })
                    .map(|(id, u)| (id.clone(), user_json(id, u)))
                    .collect();
                return paged(items, query, base, "users");
            }
            let items = s
                .users
                .iter()
                .map(|(id, u)| (id.clone(), user_json(id, u)))
                .collect();
            paged(items, query, base, "users")
        }
        ("POST", ["users"]) => {
            let body = body.unwrap_or(Value::Null);
            let Some(profile) = body.get("profile").and_then(Value::as_object).cloned() else {
                return err(validation(vec![
                    "profile: The field cannot be left blank".into(),
                ]));
            };
            if let Err(e) = validate_profile(s, &profile, None, true) {
                return err(e);
            }
            let has_password = body
                .pointer("/credentials/password/value")
                .and_then(Value::as_str)
                .is_some();
            let activate = query.get("activate").is_none_or(|a| a != "false");
            let status = match (activate, has_password) {
                (false, _) => "STAGED",
                (true, true) => "ACTIVE",
                (true, false) => "PROVISIONED",
            };
            s.seq += 1;
            let id = format!("00u{:017}", s.seq);
            let u = User {
                status: status.into(),
                profile,
                has_password,
            };
            let j = user_json(&id, &u);
            s.users.insert(id, u);
            ok(j)
        }
        ("GET", ["users", key]) => match find_user_id(s, key) {
            Some(id) => ok(user_json(&id, &s.users[&id])),
            None => err(not_found(&format!("{key} (User)"))),
        },
        ("POST" | "PUT", ["users", key]) => {
            let Some(id) = find_user_id(s, key) else {
                return err(not_found(&format!("{key} (User)")));
            };
            let Some(profile) = body
                .as_ref()
                .and_then(|b| b.get("profile"))
                .and_then(Value::as_object)
                .cloned()
            else {
                return err(validation(vec![
                    "profile: The field cannot be left blank".into(),
                ]));
            };
            let full = method == Method::PUT;
            let merged = if full {
                profile
            } else {
                let mut m = s.users[&id].profile.clone();
                m.extend(profile);
                m
            };
            if let Err(e) = validate_profile(s, &merged, Some(&id), true) {
                return err(e);
            }
            let u = s.users.get_mut(&id).expect("user");
            u.profile = merged;
            ok(user_json(&id, u))
        }
        ("DELETE", ["users", key]) => {
            let Some(id) = find_user_id(s, key) else {
                return err(not_found(&format!("{key} (User)")));
            };
            if s.users[&id].status != "DEPROVISIONED" {
                s.users.get_mut(&id).expect("user").status = "DEPROVISIONED".into();
                return no_content();
            }
            s.users.remove(&id);
            for g in s.groups.values_mut() {
                g.members.remove(&id);
            }
            for a in s.apps.values_mut() {
                a.users.remove(&id);
            }
            no_content()
        }
        ("POST", ["users", key, "lifecycle", action]) => {
            let Some(id) = find_user_id(s, key) else {
                return err(not_found(&format!("{key} (User)")));
            };
            let u = s.users.get_mut(&id).expect("user");
            let not_allowed = || {
                forbidden_status(
                    "This operation is not allowed in the user's current status.",
                    "E0000038",
                )
            };
            match *action {
                "deactivate" => {
                    if u.status == "DEPROVISIONED" {
                        return err(not_allowed());
                    }
                    u.status = "DEPROVISIONED".into();
                }
                "activate" => {
                    if !matches!(u.status.as_str(), "STAGED" | "DEPROVISIONED") {
                        return err(forbidden_status(
                            "Activation failed because the user is already active",
                            "E0000016",
                        ));
                    }
                    u.status = if u.has_password {
                        "ACTIVE"
                    } else {
                        "PROVISIONED"
                    }
                    .into();
                }
                "suspend" => {
                    if u.status != "ACTIVE" {
                        return err(not_allowed());
                    }
                    u.status = "SUSPENDED".into();
                }
                "unsuspend" => {
                    if u.status != "SUSPENDED" {
                        return err(not_allowed());
                    }
                    u.status = "ACTIVE".into();
                }
                other => return err(not_found(&format!("lifecycle/{other}"))),
            }
            ok(json!({}))
        }
        ("GET", ["users", key, "groups"]) => {
            let Some(id) = find_user_id(s, key) else {
                return err(not_found(&format!("{key} (User)")));
            };
            let items = s
                .groups
                .iter()
                .filter(|(_, g)| g.members.contains(&id))
                .map(|(gid, g)| (gid.clone(), group_json(gid, g)))
                .collect();
            paged(items, query, base, &format!("users/{id}/groups"))
        }
        ("GET", ["groups"]) => {
            let q = query.get("q").map(|q| q.to_ascii_lowercase());
            let items = s
                .groups
                .iter()
                .filter(|(_, g)| {
                    q.as_ref()
                        .is_none_or(|q| g.name.to_ascii_lowercase().starts_with(q))
                })
                .map(|(id, g)| (id.clone(), group_json(id, g)))
                .collect();
            paged(items, query, base, "groups")
        }
        ("GET", ["groups", gid]) => match s.groups.get(*gid) {
            Some(g) => ok(group_json(gid, g)),
            None => err(not_found(&format!("{gid} (UserGroup)"))),
        },
        ("GET", ["groups", gid, "users"]) => {
            let Some(g) = s.groups.get(*gid) else {
                return err(not_found(&format!("{gid} (UserGroup)")));
            };
            let items = g
                .members
                .iter()
                .filter_map(|u| Some((u.clone(), user_json(u, s.users.get(u)?))))
                .collect();
            paged(items, query, base, &format!("groups/{gid}/users"))
        }
        ("PUT" | "DELETE", ["groups", gid, "users", uid]) => {
            if !s.users.contains_key(*uid) {
                return err(not_found(&format!("{uid} (User)")));
            }
            let Some(g) = s.groups.get_mut(*gid) else {
                return err(not_found(&format!("{gid} (UserGroup)")));
            };
            if g.kind != "OKTA_GROUP" {
                return err(okta_error(
                    StatusCode::FORBIDDEN,
                    "E0000006",
                    "You do not have permission to perform the requested action",
                    &["Memberships of an APP_GROUP are managed by its source".into()],
                ));
            }
            if method == Method::PUT {
                g.members.insert(uid.to_string());
            } else {
                g.members.remove(*uid);
            }
            no_content()
        }
        ("GET", ["apps"]) => {
            let user = match query.get("filter") {
                None => None,
                Some(f) => match f
                    .strip_prefix("user.id eq \"")
                    .and_then(|r| r.strip_suffix('"'))
                {
                    Some(u) => Some(u.to_string()),
                    None => {
                        return err(okta_error(
                            StatusCode::BAD_REQUEST,
                            "E0000031",
                            "Invalid search criteria.",
                            &[],
                        ));
                    }
                },
            };
            let items = s
                .apps
                .iter()
                .filter(|(_, a)| user.as_ref().is_none_or(|u| a.users.contains(u)))
                .map(|(id, a)| (id.clone(), app_json(id, a)))
                .collect();
            paged(items, query, base, "apps")
        }
        ("GET", ["apps", aid]) => match s.apps.get(*aid) {
            Some(a) => ok(app_json(aid, a)),
            None => err(not_found(&format!("{aid} (AppInstance)"))),
        },
        ("GET", ["apps", aid, "users"]) => {
            let Some(a) = s.apps.get(*aid) else {
                return err(not_found(&format!("{aid} (AppInstance)")));
            };
            let items = a
                .users
                .iter()
                .map(|u| {
                    (
                        u.clone(),
                        json!({"id": u, "scope": "USER", "status": "ACTIVE", "profile": {}}),
                    )
                })
                .collect();
            paged(items, query, base, &format!("apps/{aid}/users"))
        }
        ("POST", ["apps", aid, "users"]) => {
            let uid = body
                .as_ref()
                .and_then(|b| b.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let Some(uid) = uid else {
                return err(validation(vec![
                    "id: The field cannot be left blank".into(),
                ]));
            };
            if !s.users.contains_key(&uid) {
                return err(not_found(&format!("{uid} (User)")));
            }
            let Some(a) = s.apps.get_mut(*aid) else {
                return err(not_found(&format!("{aid} (AppInstance)")));
            };
            a.users.insert(uid.clone());
            ok(json!({"id": uid, "scope": "USER", "status": "ACTIVE", "profile": {}}))
        }
        ("GET" | "DELETE", ["apps", aid, "users", uid]) => {
            let Some(a) = s.apps.get_mut(*aid) else {
                return err(not_found(&format!("{aid} (AppInstance)")));
            };
            if !a.users.contains(*uid) {
                return err(not_found(&format!("{uid} (AppUser)")));
            }
            if method == Method::DELETE {
                a.users.remove(*uid);
                return no_content();
            }
            ok(json!({"id": uid, "scope": "USER", "status": "ACTIVE", "profile": {}}))
        }
        _ => err(not_found(&format!("/api/v1/{}", segs.join("/")))),
    }
}
