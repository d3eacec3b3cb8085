//! A faithful in-process Slack SCIM v2 mock (axum), for tests (feature
//! `test-support`).
//!
//! What it reproduces (protocols.md §7.3, §2):
//! - `Authorization: Bearer <token>`; anything else is 401 (SCIM error body).
//! - `/ServiceProviderConfig`: PATCH and filter supported, **no `/Bulk`**
//!   (`POST /Bulk` is 501), `count` at most 1000.
//! - Users: `userName` is normalised to Slack handle rules (lower case; characters
//!   outside `a-z 0-9 . _ -` become `_`) and must be at most 21 characters (400
//!   `invalidValue`); an e-mail is required (400 `invalidValue`); duplicate
//!   `userName` (after normalisation) or e-mail → 409 `uniqueness`. **`DELETE
//!   /Users/{id}` deactivates** (`active: false`); the user stays readable.
//! - Groups (user groups): `displayName` unique (409); membership by PATCH
//!   `add`/`remove` on `members`; members must be existing users (400
//!   `invalidValue`).
//! - Filters: `<attr> eq "<value>"` on `userName`, `externalId`, `id`,
//!   `displayName`, `emails.value`, and `members[value eq "<id>"]`; anything else is
//!   400 `invalidFilter`.
//! - Rate limits (token buckets, org-wide): writes 600/min (burst 180), reads
//!   1000/min, `GET /Users/{id}` 300/min, `POST /Users`, `PUT`/`PATCH /Users/{id}`,
//!   `DELETE /Users/{id}` 180/min each (burst 20), Group writes 60/min (burst 20,
//!   an assumption: Slack does not publish them). Over a limit: 429 with
//!   `Retry-After` (seconds).
//! - Scripted faults ([`MockFault`]) and call counters.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// A failure the mock produces on the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MockFault {
    /// 429 with `Retry-After: <seconds>`.
    RateLimited {
        /// The requested wait (whole seconds are sent).
        retry_after: Duration,
    },
    /// 503.
    Unavailable,
    /// 401 (for this and the next request, so a client's one re-auth retry also
    /// fails).
    Unauthenticated,
    /// 403.
    PermissionDenied,
}

/// Mock settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MockConfig {
    /// The bearer token clients must send.
    pub token: String,
    /// Multiplies every rate limit (1.0 = Slack's published limits).
    pub rate_scale: f64,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            token: "xoxp-mock-slack-token".into(),
            rate_scale: 1.0,
        }
    }
}

impl MockConfig {
    /// Set the token.
    pub fn token(mut self, t: impl Into<String>) -> Self {
        self.token = t.into();
        self
    }

    /// Scale every limit (e.g. 0.1 to provoke 429s quickly).
    pub fn rate_scale(mut self, scale: f64) -> Self {
        self.rate_scale = scale;
        self
    }
}

#[derive(Debug)]
struct Bucket {
    capacity: f64,
    tokens: f64,
    per_sec: f64,
    last: Instant,
}

impl Bucket {
    fn new(per_min: f64, burst: f64) -> Self {
        Self {
            capacity: burst,
            tokens: burst,
            per_sec: per_min / 60.0,
            last: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.per_sec)
            .min(self.capacity);
        self.last = now;
    }

    /// Seconds until one token is available (0 = available now).
    fn wait(&mut self) -> u64 {
        self.refill();
        if self.tokens >= 1.0 {
            0
        } else {
            ((1.0 - self.tokens) / self.per_sec).ceil().max(1.0) as u64
        }
    }
}

#[derive(Debug, Default)]
struct State {
    users: BTreeMap<String, Value>,
    groups: BTreeMap<String, Value>,
    faults: VecDeque<MockFault>,
    buckets: HashMap<&'static str, Bucket>,
    calls: u64,
    calls_by_route: BTreeMap<String, u64>,
    throttled: u64,
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

fn scim_error(status: StatusCode, scim_type: Option<&str>, detail: &str) -> (StatusCode, Value) {
    let mut v =
        json!({"schemas": [ERROR_SCHEMA], "status": status.as_u16().to_string(), "detail": detail});
    if let Some(t) = scim_type {
        v["scimType"] = json!(t);
    }
    (status, v)
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
            .expect("slack mock: cannot bind a loopback port");
        let addr = listener.local_addr().expect("slack mock: local addr");
        let url = format!("http://{addr}/scim/v2");
        let state = Arc::new(Mutex::new(State::default()));
        let app = {
            let state = state.clone();
            let config = config.clone();
            axum::Router::new().fallback(
                move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                    let state = state.clone();
                    let config = config.clone();
                    async move { handle(&state, &config, method, uri, headers, body) }
                },
            )
        };
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("slack mock: serve");
        });
        Self {
            state,
            config,
            url,
            task,
        }
    }

    /// The SCIM base URL (give it to `SlackConfig::with_base_url`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The token the mock accepts.
    pub fn token(&self) -> &str {
        &self.config.token
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

    /// Requests answered 429 because a rate limit was exceeded (not injected faults).
    pub fn throttled(&self) -> u64 {
        self.state.lock().expect("mock state").throttled
    }

    /// Requests per `METHOD /Resource[/{id}]`.
    pub fn calls_by_route(&self) -> BTreeMap<String, u64> {
        self.state
            .lock()
            .expect("mock state")
            .calls_by_route
            .clone()
    }

    /// The stored user with this (normalised) userName.
    pub fn user(&self, user_name: &str) -> Option<Value> {
        let s = self.state.lock().expect("mock state");
        s.users
            .values()
            .find(|u| u["userName"] == user_name)
            .cloned()
    }
}

/// Slack handle rules: lower case; outside `a-z 0-9 . _ -` → `_`.
pub fn normalise_user_name(u: &str) -> String {
    u.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The buckets a request draws from, in order.
fn buckets_for(method: &Method, segs: &[&str]) -> Vec<(&'static str, f64, f64)> {
    let write = method != Method::GET;
    let mut out = vec![if write {
        ("writes", 600.0, 180.0)
    } else {
        ("reads", 1000.0, 1000.0)
    }];
    match (method.as_str(), segs) {
        ("GET", ["Users", _]) => out.push(("get_user", 300.0, 300.0)),
        ("POST", ["Users"]) => out.push(("create_user", 180.0, 20.0)),
        ("PUT" | "PATCH", ["Users", _]) => out.push(("update_user", 180.0, 20.0)),
        ("DELETE", ["Users", _]) => out.push(("delete_user", 180.0, 20.0)),
        (_, ["Groups", ..]) if write => out.push(("group_writes", 60.0, 20.0)),
        _ => {}
    }
    out
}

fn handle(
    state: &Mutex<State>,
    config: &MockConfig,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(rest) = uri.path().strip_prefix("/scim/v2") else {
        return finish(
            scim_error(StatusCode::NOT_FOUND, None, "no such endpoint"),
            None,
        );
    };
    let segs: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            url::form_urlencoded::parse(format!("k={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let mut s = state.lock().expect("mock state");
    s.calls += 1;
    let route = match segs.as_slice() {
        [r] => format!("{method} /{r}"),
        [r, ..] => format!("{method} /{r}/{{id}}"),
        [] => format!("{method} /"),
    };
    *s.calls_by_route.entry(route).or_default() += 1;
    if let Some(fault) = s.faults.pop_front() {
        let r = match fault {
            MockFault::RateLimited { retry_after } => {
                return finish(
                    scim_error(StatusCode::TOO_MANY_REQUESTS, None, "rate limited"),
                    Some(retry_after.as_secs().max(1)),
                );
            }
            MockFault::Unavailable => {
                scim_error(StatusCode::SERVICE_UNAVAILABLE, None, "service unavailable")
            }
            MockFault::Unauthenticated => {
                scim_error(StatusCode::UNAUTHORIZED, None, "invalid_authentication")
            }
            MockFault::PermissionDenied => scim_error(StatusCode::FORBIDDEN, None, "not_allowed"),
        };
        return finish(r, None);
    }
    // Rate limits: every bucket the request draws from must have a token.
    let mut wait = 0;
    let wanted = buckets_for(&method, &segs);
    for (name, per_min, burst) in &wanted {
        let scale = config.rate_scale;
        let b = s
            .buckets
            .entry(name)
            .or_insert_with(|| Bucket::new(per_min * scale, (burst * scale).max(1.0)));
        wait = wait.max(b.wait());
    }
    if wait > 0 {
        s.throttled += 1;
        return finish(
            scim_error(StatusCode::TOO_MANY_REQUESTS, None, "ratelimited"),
            Some(wait),
        );
    }
    for (name, _, _) in &wanted {
        if let Some(b) = s.buckets.get_mut(name) {
            b.tokens -= 1.0;
        }
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {}", config.token) {
        return finish(
            scim_error(StatusCode::UNAUTHORIZED, None, "invalid_authentication"),
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
                    scim_error(
                        StatusCode::BAD_REQUEST,
                        Some("invalidSyntax"),
                        "invalid JSON",
                    ),
                    None,
                );
            }
        }
    };
    finish(route_request(&mut s, &method, &segs, &query, body), None)
}

fn finish((status, body): (StatusCode, Value), retry_after: Option<u64>) -> Response {
    let mut resp = if body.is_null() {
        status.into_response()
    } else {
        let mut r = (status, axum::Json(body)).into_response();
        r.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("application/scim+json; charset=utf-8"),
        );
        r
    };
    if let Some(s) = retry_after {
        resp.headers_mut().insert("retry-after", s.into());
    }
    resp
}

enum Filter {
    Eq(String, String),
    Member(String),
}

fn unquote(v: &str) -> Option<String> {
    serde_json::from_str::<String>(v.trim()).ok()
}

fn parse_filter(f: &str) -> Option<Filter> {
    let f = f.trim();
    if let Some(inner) = f
        .strip_prefix("members[value eq ")
        .and_then(|r| r.strip_suffix(']'))
    {
        return Some(Filter::Member(unquote(inner)?));
    }
    let (attr, value) = f.split_once(" eq ")?;
    let attr = attr.trim();
    let ok = [
        "userName",
        "externalId",
        "id",
        "displayName",
        "emails.value",
    ]
    .iter()
    .any(|a| a.eq_ignore_ascii_case(attr));
    ok.then(|| Some(Filter::Eq(attr.to_string(), unquote(value)?)))?
}

fn attr_value(r: &Value, attr: &str) -> Vec<String> {
    if attr.eq_ignore_ascii_case("emails.value") {
        return r["emails"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["value"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
    }
    let key = r
        .as_object()
        .and_then(|o| o.keys().find(|k| k.eq_ignore_ascii_case(attr)).cloned());
    key.and_then(|k| r[&k].as_str().map(str::to_string))
        .into_iter()
        .collect()
}

fn matches(r: &Value, f: &Filter) -> bool {
    match f {
        Filter::Eq(attr, v) => {
            let ci =
                attr.eq_ignore_ascii_case("userName") || attr.eq_ignore_ascii_case("emails.value");
            attr_value(r, attr).iter().any(|x| {
                if ci {
                    x.eq_ignore_ascii_case(v)
                } else {
                    x == v
                }
            })
        }
        Filter::Member(id) => r["members"]
            .as_array()
            .is_some_and(|m| m.iter().any(|x| x["value"] == id.as_str())),
    }
}

fn list(
    items: Vec<Value>,
    query: &HashMap<String, String>,
    exclude_members: bool,
) -> (StatusCode, Value) {
    let filter = match query.get("filter") {
        None => None,
        Some(f) => match parse_filter(f) {
            Some(p) => Some(p),
            None => {
                return scim_error(
                    StatusCode::BAD_REQUEST,
                    Some("invalidFilter"),
                    "unsupported filter",
                );
            }
        },
    };
    let hits: Vec<Value> = items
        .into_iter()
        .filter(|r| filter.as_ref().is_none_or(|f| matches(r, f)))
        .collect();
    let start = query
        .get("startIndex")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let count = query
        .get("count")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(100)
        .min(1000);
    let page: Vec<Value> = hits
        .iter()
        .skip(start - 1)
        .take(count)
        .map(|r| {
            let mut r = r.clone();
            if exclude_members && let Some(o) = r.as_object_mut() {
                o.remove("members");
            }
            r
        })
        .collect();
    (
        StatusCode::OK,
        json!({"schemas": [LIST_SCHEMA], "totalResults": hits.len(), "startIndex": start,
               "itemsPerPage": page.len(), "Resources": page}),
    )
}

fn email_of(u: &Value) -> Option<String> {
    u["emails"]
        .as_array()?
        .iter()
        .find_map(|e| e["value"].as_str().map(str::to_lowercase))
}

/// Validate and normalise a user resource for `self_id` (None = create).
fn check_user(
    s: &State,
    mut u: Value,
    self_id: Option<&str>,
) -> Result<Value, (StatusCode, Value)> {
    let Some(name) = u["userName"].as_str().map(normalise_user_name) else {
        return Err(scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            "userName is required",
        ));
    };
    if name.is_empty() || name.chars().count() > 21 {
        return Err(scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            "userName must be 1 to 21 characters",
        ));
    }
    let Some(email) = email_of(&u) else {
        return Err(scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            "No valid email address: emails is required",
        ));
    };
    for (id, other) in &s.users {
        if Some(id.as_str()) == self_id {
            continue;
        }
        if other["userName"] == name.as_str() || email_of(other).as_deref() == Some(email.as_str())
        {
            return Err(scim_error(
                StatusCode::CONFLICT,
                Some("uniqueness"),
                "userName or email already taken",
            ));
        }
    }
    u["userName"] = json!(name);
    Ok(u)
}

fn set_attr(obj: &mut Map<String, Value>, path: &str, value: Value) {
    // `urn:...:User:attr` → the extension object; `a.b` → nested.
    let lower = path.to_ascii_lowercase();
    if lower.starts_with("urn:")
        && let Some(i) = path.rfind(':')
    {
        let ext = obj
            .entry(path[..i].to_string())
            .or_insert_with(|| json!({}));
        if let Some(o) = ext.as_object_mut() {
            o.insert(path[i + 1..].to_string(), value);
        }
        return;
    }
    match path.split_once('.') {
        Some((a, b)) => {
            let inner = obj.entry(a.to_string()).or_insert_with(|| json!({}));
            if !inner.is_object() {
                *inner = json!({});
            }
            set_attr(inner.as_object_mut().expect("object"), b, value);
        }
        None => {
            let key = obj
                .keys()
                .find(|k| k.eq_ignore_ascii_case(path))
                .cloned()
                .unwrap_or_else(|| path.to_string());
            obj.insert(key, value);
        }
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn route_request(
    s: &mut State,
    method: &Method,
    segs: &[&str],
    query: &HashMap<String, String>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let not_found = || scim_error(StatusCode::NOT_FOUND, None, "Resource not found");
    match (method.as_str(), segs) {
        ("GET", ["ServiceProviderConfig"]) => (
            StatusCode::OK,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                   "patch": {"supported": true}, "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
                   "filter": {"supported": true, "maxResults": 1000}, "changePassword": {"supported": false},
                   "sort": {"supported": false}, "etag": {"supported": false},
                   "authenticationSchemes": [{"type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": true}]}),
        ),
        ("POST", ["Bulk"]) => {
            scim_error(StatusCode::NOT_IMPLEMENTED, None, "Bulk is not supported")
        }
        ("GET", ["Users"]) => list(s.users.values().cloned().collect(), query, false),
        ("POST", ["Users"]) => {
            let u = match check_user(s, body.unwrap_or(Value::Null), None) {
                Ok(u) => u,
                Err(e) => return e,
            };
            s.seq += 1;
            let id = format!("U{:08}", s.seq);
            let mut u = u;
            u["id"] = json!(id);
            u["schemas"] = json!([USER_SCHEMA]);
            if u.get("active").is_none() {
                u["active"] = json!(true);
            }
            u["groups"] = json!([]);
            u["meta"] = json!({"resourceType": "User", "location": format!("/scim/v2/Users/{id}")});
            s.users.insert(id, u.clone());
            (StatusCode::CREATED, u)
        }
        ("GET", ["Users", id]) => match s.users.get(*id) {
            Some(u) => (StatusCode::OK, u.clone()),
            None => not_found(),
        },
        ("PUT", ["Users", id]) => {
            let Some(old) = s.users.get(*id).cloned() else {
                return not_found();
            };
            let mut u = match check_user(s, body.unwrap_or(Value::Null), Some(id)) {
                Ok(u) => u,
                Err(e) => return e,
            };
            for k in ["id", "meta", "groups", "schemas"] {
                u[k] = old[k].clone();
            }
            s.users.insert(id.to_string(), u.clone());
            (StatusCode::OK, u)
        }
        ("PATCH", ["Users", id]) => {
            let Some(mut u) = s.users.get(*id).cloned() else {
                return not_found();
            };
            let ops = body
                .as_ref()
                .and_then(|b| b["Operations"].as_array().cloned())
                .unwrap_or_default();
            if ops.is_empty() {
                return scim_error(
                    StatusCode::BAD_REQUEST,
                    Some("invalidSyntax"),
                    "Operations is required",
                );
            }
            for op in ops {
                let kind = op["op"].as_str().unwrap_or("").to_ascii_lowercase();
                if kind != "replace" && kind != "add" {
                    return scim_error(
                        StatusCode::BAD_REQUEST,
                        Some("invalidValue"),
                        "only add/replace on users",
                    );
                }
                let obj = u.as_object_mut().expect("user object");
                match op["path"].as_str() {
                    Some(p) if p.eq_ignore_ascii_case("active") => {
                        let Some(b) = as_bool(&op["value"]) else {
                            return scim_error(
                                StatusCode::BAD_REQUEST,
                                Some("invalidValue"),
                                "active must be a boolean",
                            );
                        };
                        obj.insert("active".into(), json!(b));
                    }
                    Some(p) => set_attr(obj, p, op["value"].clone()),
                    None => {
                        let Some(m) = op["value"].as_object() else {
                            return scim_error(
                                StatusCode::BAD_REQUEST,
                                Some("invalidValue"),
                                "value must be an object",
                            );
                        };
                        for (k, v) in m {
                            set_attr(obj, k, v.clone());
                        }
                    }
                }
            }
            let u = match check_user(s, u, Some(id)) {
                Ok(u) => u,
                Err(e) => return e,
            };
            s.users.insert(id.to_string(), u.clone());
            (StatusCode::OK, u)
        }
        ("DELETE", ["Users", id]) => match s.users.get_mut(*id) {
            // Slack deactivates instead of deleting.
            Some(u) => {
                u["active"] = json!(false);
                (StatusCode::NO_CONTENT, Value::Null)
            }
            None => not_found(),
        },
        ("GET", ["Groups"]) => {
            let exclude = query.get("excludedAttributes").is_some_and(|e| {
                e.split(',')
                    .any(|a| a.trim().eq_ignore_ascii_case("members"))
            });
            list(s.groups.values().cloned().collect(), query, exclude)
        }
        ("GET", ["Groups", id]) => match s.groups.get(*id) {
            Some(g) => (StatusCode::OK, g.clone()),
            None => not_found(),
        },
        ("POST", ["Groups"]) => {
            let Some(name) = body
                .as_ref()
                .and_then(|b| b["displayName"].as_str())
                .map(str::to_string)
            else {
                return scim_error(
                    StatusCode::BAD_REQUEST,
                    Some("invalidValue"),
                    "displayName is required",
                );
            };
            if s.groups.values().any(|g| {
                g["displayName"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(&name))
            }) {
                return scim_error(
                    StatusCode::CONFLICT,
                    Some("uniqueness"),
                    "a user group with this name exists",
                );
            }
            s.seq += 1;
            let id = format!("S{:08}", s.seq);
            let g = json!({"schemas": [GROUP_SCHEMA], "id": id, "displayName": name, "members": [],
                           "meta": {"resourceType": "Group"}});
            s.groups.insert(id, g.clone());
            (StatusCode::CREATED, g)
        }
        ("PATCH", ["Groups", id]) => {
            let Some(mut g) = s.groups.get(*id).cloned() else {
                return not_found();
            };
            let ops = body
                .as_ref()
                .and_then(|b| b["Operations"].as_array().cloned())
                .unwrap_or_default();
            for op in ops {
                let kind = op["op"].as_str().unwrap_or("").to_ascii_lowercase();
                let path = op["path"].as_str().unwrap_or("");
                let mut members: Vec<Value> = g["members"].as_array().cloned().unwrap_or_default();
                match (kind.as_str(), path) {
                    ("add", "members") => {
                        for m in op["value"].as_array().cloned().unwrap_or_default() {
                            let Some(uid) = m["value"].as_str() else {
                                return scim_error(
                                    StatusCode::BAD_REQUEST,
                                    Some("invalidValue"),
                                    "member value missing",
                                );
                            };
                            if !s.users.contains_key(uid) {
                                return scim_error(
                                    StatusCode::BAD_REQUEST,
                                    Some("invalidValue"),
                                    "member is not a user",
                                );
                            }
                            if !members.iter().any(|x| x["value"] == uid) {
                                members.push(json!({"value": uid}));
                            }
                        }
                    }
                    ("remove", p) if p.starts_with("members[value eq ") => {
                        let Some(Filter::Member(uid)) = parse_filter(p) else {
                            return scim_error(
                                StatusCode::BAD_REQUEST,
                                Some("invalidPath"),
                                "bad member path",
                            );
                        };
                        members.retain(|x| x["value"] != uid.as_str());
                    }
                    ("replace", "displayName") => {
                        g["displayName"] = op["value"].clone();
                    }
                    _ => {
                        return scim_error(
                            StatusCode::BAD_REQUEST,
                            Some("invalidPath"),
                            "unsupported group patch",
                        );
                    }
                }
                g["members"] = json!(members);
            }
            s.groups.insert(id.to_string(), g);
            (StatusCode::NO_CONTENT, Value::Null)
        }
        ("DELETE", ["Groups", id]) => match s.groups.remove(*id) {
            Some(_) => (StatusCode::NO_CONTENT, Value::Null),
            None => not_found(),
        },
        _ => scim_error(StatusCode::NOT_FOUND, None, "no such endpoint"),
    }
}
