//! A faithful in-process mock of the Directory API (feature `test-support`).
//!
//! Serves `/token` (RFC 7523 JWT bearer grant: the RS256 signature is verified
//! against the service account's public key, `iss`/`aud`/`exp`/`scope`/`sub` are
//! checked), `/admin/directory/v1/...` (users, groups, members) and the batch
//! endpoints `/batch/admin/directory_v1` and `/batch/admin/directory/v1` (≤ 1000
//! parts, else 400; parts executed in a shuffled order, answered in request order).
//! Error bodies use Google's envelope and reasons. Per-user quota (queries per
//! minute, each batch part counted) answers 403 `userRateLimitExceeded`; injected
//! faults answer 429 `rateLimitExceeded` (+ `Retry-After`), 503, 401 or 403.

// Handlers return a ready `Response` as their error value; size does not matter here.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey};
use serde_json::{Value, json};

use crate::auth::{JWT_BEARER, pem_to_der};
use crate::config::{GoogleConfig, ServiceAccountKey};
use crate::multipart::{self, Part};
use crate::{BATCH_LIMIT, SCOPES};

/// The throwaway RSA key of the mock's service account (test use only).
pub const TEST_KEY_PEM: &str = include_str!("test-service-account-key.pem");
/// The mock's service account.
pub const TEST_CLIENT_EMAIL: &str = "iga-test@iga-test.iam.gserviceaccount.com";
/// The mock's domain.
pub const TEST_DOMAIN: &str = "example.com";
/// The admin the mock accepts as delegation subject.
pub const TEST_ADMIN: &str = "admin@example.com";

const API: &str = "/admin/directory/v1";

/// A fault the mock answers the next Directory request (or batch) with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MockFault {
    /// 429 `rateLimitExceeded`, with `Retry-After` when given.
    RateLimited(Option<Duration>),
    /// 403 `userRateLimitExceeded`.
    UserRateLimited,
    /// 503 `backendError`.
    Unavailable,
    /// 401 `authError` (twice, so the client's refresh-and-retry also fails).
    Unauthorized,
    /// 403 `forbidden`.
    Forbidden,
}

#[derive(Debug, Clone)]
struct User {
    id: String,
    email: String,
    given: String,
    family: String,
    display: Option<String>,
    suspended: bool,
    external_ids: Value,
}

#[derive(Debug, Clone)]
struct Group {
    id: String,
    email: String,
    name: String,
    members: Vec<String>, // user ids, insertion order
}

#[derive(Debug, Default)]
struct Counters {
    http: u64,
    batch: u64,
    items: u64,
    token: u64,
    rejected_batches: u64,
}

struct State {
    public_key: Vec<u8>,
    token_aud: String,
    users: BTreeMap<String, User>,   // by lower-case email
    groups: BTreeMap<String, Group>, // by lower-case email
    tokens: HashMap<String, String>, // token -> subject
    next_id: u64,
    faults: VecDeque<MockFault>,
    quota_per_minute: u64,
    quota: HashMap<String, (Instant, u64)>,
    counters: Counters,
    shuffle_seed: u64,
}

type Shared = Arc<Mutex<State>>;

/// The running mock. Dropping it stops the server.
pub struct GoogleMock {
    addr: SocketAddr,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GoogleMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn gerr(status: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "message": message,
        "errors": [{"domain": "global", "reason": reason, "message": message}]}});
    json_resp(status, &body)
}

fn json_resp(status: StatusCode, v: &Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=UTF-8")
        .body(Body::from(v.to_string()))
        .expect("response")
}

fn empty(status: StatusCode) -> Response {
    Response::builder()
        .status(status)
        .body(Body::empty())
        .expect("response")
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl GoogleMock {
    /// Start on a random loopback port. Panics if it cannot bind (tests must not skip).
    pub async fn start() -> Self {
        let der = pem_to_der(TEST_KEY_PEM).expect("test key");
        let pair = RsaKeyPair::from_pkcs8(&der).expect("test key");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("google mock: cannot bind a loopback port");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            public_key: pair.public_key().as_ref().to_vec(),
            token_aud: format!("http://{addr}/token"),
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            tokens: HashMap::new(),
            next_id: 100_000_000_000_000_000,
            faults: VecDeque::new(),
            quota_per_minute: 2400,
            quota: HashMap::new(),
            counters: Counters::default(),
            shuffle_seed: 0x9e37_79b9_7f4a_7c15,
        }));
        let st = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let st = st.clone();
                async move { route(&st, method, uri, headers, body) }
            },
        );
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("google mock server");
        });
        Self { addr, state, task }
    }

    /// Base URL (`http://127.0.0.1:<port>`), for [`GoogleConfig::with_root`].
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The test service account key.
    pub fn key() -> ServiceAccountKey {
        ServiceAccountKey::new(TEST_CLIENT_EMAIL, TEST_KEY_PEM)
    }

    /// A connector configuration pointed at this mock.
    pub fn config(&self) -> GoogleConfig {
        GoogleConfig::new(Self::key(), TEST_ADMIN, TEST_DOMAIN)
            .and_then(|c| c.with_root(&self.root_url()))
            .expect("mock config")
            .with_instance("google-mock")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("mock state")
    }

    /// Create a group directly in the mock's state.
    pub fn seed_group(&self, email: &str, name: &str) {
        let mut s = self.lock();
        s.next_id += 1;
        let id = format!("0{}", s.next_id);
        s.groups.insert(
            email.to_ascii_lowercase(),
            Group {
                id,
                email: email.to_ascii_lowercase(),
                name: name.into(),
                members: Vec::new(),
            },
        );
    }

    /// Create a user directly in the mock's state; returns its id.
    pub fn seed_user(&self, email: &str) -> String {
        let mut s = self.lock();
        s.next_id += 1;
        let id = s.next_id.to_string();
        s.users.insert(
            email.to_ascii_lowercase(),
            User {
                id: id.clone(),
                email: email.to_ascii_lowercase(),
                given: "Seed".into(),
                family: "User".into(),
                display: None,
                suspended: false,
                external_ids: json!([]),
            },
        );
        id
    }

    /// Member e-mails of a group (sorted).
    pub fn members(&self, group: &str) -> Vec<String> {
        let s = self.lock();
        let Some(g) = s.groups.get(&group.to_ascii_lowercase()) else {
            return Vec::new();
        };
        let mut out: Vec<String> = g
            .members
            .iter()
            .filter_map(|id| {
                s.users
                    .values()
                    .find(|u| &u.id == id)
                    .map(|u| u.email.clone())
            })
            .collect();
        out.sort();
        out
    }

    /// Whether a user exists and is suspended (`None` when absent).
    pub fn suspended(&self, email: &str) -> Option<bool> {
        self.lock()
            .users
            .get(&email.to_ascii_lowercase())
            .map(|u| u.suspended)
    }

    /// Answer the next Directory request (or batch request) with `fault`.
    pub fn inject(&self, fault: MockFault) {
        let mut s = self.lock();
        if fault == MockFault::Unauthorized {
            s.faults.push_back(fault.clone());
        }
        s.faults.push_back(fault);
    }

    /// Queries per minute allowed per delegated user (default 2400, as Google's default).
    pub fn set_user_quota_per_minute(&self, n: u64) {
        let mut s = self.lock();
        s.quota_per_minute = n;
        s.quota.clear();
    }

    /// HTTP requests to the Directory and batch endpoints (a batch counts once).
    pub fn http_calls(&self) -> u64 {
        self.lock().counters.http
    }

    /// Batch requests accepted.
    pub fn batch_calls(&self) -> u64 {
        self.lock().counters.batch
    }

    /// Batch requests rejected as a whole (over the limit, malformed).
    pub fn rejected_batches(&self) -> u64 {
        self.lock().counters.rejected_batches
    }

    /// Directory calls executed (each batch part counts).
    pub fn item_calls(&self) -> u64 {
        self.lock().counters.items
    }

    /// Token requests.
    pub fn token_calls(&self) -> u64 {
        self.lock().counters.token
    }
}

fn route(st: &Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    if path == "/token" {
        return token(st, &method, &body);
    }
    let mut s = st.lock().expect("mock state");
    s.counters.http += 1;
    if path == "/batch/admin/directory_v1" || path == "/batch/admin/directory/v1" {
        if method != Method::POST {
            return gerr(
                StatusCode::METHOD_NOT_ALLOWED,
                "badRequest",
                "Batch requests must be POST",
            );
        }
        return batch(&mut s, &headers, &body);
    }
    if path == "/batch" {
        // The retired global batch endpoint.
        return gerr(
            StatusCode::NOT_FOUND,
            "notFound",
            "Global batch endpoint is not supported",
        );
    }
    let subject = match authorize(&mut s, &headers) {
        Ok(sub) => sub,
        Err(r) => return r,
    };
    if let Some(r) = quota(&mut s, &subject) {
        return r;
    }
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let json_body = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => Some(v),
            Err(_) => return gerr(StatusCode::BAD_REQUEST, "parseError", "Parse Error"),
        }
    };
    s.counters.items += 1;
    directory(&mut s, &method, &path, &query, json_body)
}

fn token(st: &Shared, method: &Method, body: &[u8]) -> Response {
    let mut s = st.lock().expect("mock state");
    s.counters.token += 1;
    let oauth = |e: &str, d: &str| {
        json_resp(
            StatusCode::BAD_REQUEST,
            &json!({"error": e, "error_description": d}),
        )
    };
    if method != Method::POST {
        return oauth("invalid_request", "token requests must be POST");
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some(JWT_BEARER) {
        return oauth("unsupported_grant_type", "Invalid grant_type");
    }
    let Some(jwt) = form.get("assertion") else {
        return oauth("invalid_request", "Missing required parameter: assertion");
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return oauth(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe",
        );
    }
    let header: Option<Value> = URL_SAFE_NO_PAD
        .decode(parts[0])
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if header
        .as_ref()
        .and_then(|h| h.get("alg"))
        .and_then(Value::as_str)
        != Some("RS256")
    {
        return oauth("invalid_grant", "Invalid JWT header: alg must be RS256");
    }
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default();
    let key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, s.public_key.clone());
    if key
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .is_err()
    {
        return oauth("invalid_grant", "Invalid JWT Signature.");
    }
    let claims: Value = match URL_SAFE_NO_PAD
        .decode(parts[1])
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(c) => c,
        None => return oauth("invalid_grant", "Invalid JWT claims"),
    };
    let str_claim = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or("");
    if str_claim("iss") != TEST_CLIENT_EMAIL {
        return oauth("invalid_client", "The OAuth client was not found.");
    }
    if str_claim("aud") != s.token_aud {
        return oauth(
            "invalid_grant",
            "Invalid JWT: aud does not match the token endpoint",
        );
    }
    let (iat, exp) = (
        claims.get("iat").and_then(Value::as_u64).unwrap_or(0),
        claims.get("exp").and_then(Value::as_u64).unwrap_or(0),
    );
    let now = now_secs();
    if exp <= now || exp < iat || exp - iat > 3600 || iat > now + 300 {
        return oauth(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
        );
    }
    let scopes: Vec<&str> = str_claim("scope").split(' ').collect();
    if !SCOPES.iter().all(|w| scopes.contains(w)) {
        return oauth(
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
        );
    }
    let sub = str_claim("sub").to_string();
    if sub != TEST_ADMIN {
        return oauth("invalid_grant", "Invalid email or User ID");
    }
    let token = format!("ya29.mock-{}", s.counters.token);
    s.tokens.insert(token.clone(), sub);
    json_resp(
        StatusCode::OK,
        &json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}),
    )
}

fn authorize(s: &mut State, headers: &HeaderMap) -> Result<String, Response> {
    if let Some(f) = s.faults.pop_front() {
        let r = match f {
            MockFault::RateLimited(after) => {
                let mut r = gerr(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rateLimitExceeded",
                    "Rate Limit Exceeded",
                );
                if let Some(a) = after {
                    r.headers_mut().insert(
                        header::RETRY_AFTER,
                        a.as_secs().to_string().parse().expect("header"),
                    );
                }
                r
            }
            MockFault::UserRateLimited => gerr(
                StatusCode::FORBIDDEN,
                "userRateLimitExceeded",
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'",
            ),
            MockFault::Unavailable => gerr(
                StatusCode::SERVICE_UNAVAILABLE,
                "backendError",
                "The service is currently unavailable.",
            ),
            MockFault::Unauthorized => {
                gerr(StatusCode::UNAUTHORIZED, "authError", "Invalid Credentials")
            }
            MockFault::Forbidden => gerr(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Not Authorized to access this resource/api",
            ),
        };
        return Err(r);
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token.and_then(|t| s.tokens.get(t)) {
        Some(sub) => Ok(sub.clone()),
        None => Err(gerr(
            StatusCode::UNAUTHORIZED,
            "authError",
            "Request had invalid authentication credentials.",
        )),
    }
}

fn quota(s: &mut State, subject: &str) -> Option<Response> {
    let limit = s.quota_per_minute;
    let now = Instant::now();
    let e = s.quota.entry(subject.to_string()).or_insert((now, 0));
    if now.duration_since(e.0) >= Duration::from_secs(60) {
        *e = (now, 0);
    }
    e.1 += 1;
    (e.1 > limit).then(|| {
        gerr(
            StatusCode::FORBIDDEN,
            "userRateLimitExceeded",
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'",
        )
    })
}

fn batch(s: &mut State, headers: &HeaderMap, body: &[u8]) -> Response {
    let subject = match authorize(s, headers) {
        Ok(sub) => sub,
        Err(r) => return r,
    };
    let Some(boundary) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(multipart::boundary_of)
    else {
        s.counters.rejected_batches += 1;
        return gerr(
            StatusCode::BAD_REQUEST,
            "badRequest",
            "Batch request must be multipart/mixed with a boundary",
        );
    };
    let text = String::from_utf8_lossy(body);
    let parts = match multipart::decode(&boundary, &text) {
        Ok(p) => p,
        Err(e) => {
            s.counters.rejected_batches += 1;
            return gerr(
                StatusCode::BAD_REQUEST,
                "badRequest",
                &format!("Malformed batch: {e}"),
            );
        }
    };
    if parts.len() > BATCH_LIMIT {
        s.counters.rejected_batches += 1;
        return gerr(
            StatusCode::BAD_REQUEST,
            "badRequest",
            &format!("A batch request cannot contain more than {BATCH_LIMIT} requests"),
        );
    }
    s.counters.batch += 1;
    // Execute in a shuffled order (Google does not guarantee order), answer in order.
    let mut order: Vec<usize> = (0..parts.len()).collect();
    for i in (1..order.len()).rev() {
        s.shuffle_seed = s
            .shuffle_seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (s.shuffle_seed >> 33) as usize % (i + 1);
        order.swap(i, j);
    }
    let mut answers: Vec<Option<(StatusCode, String)>> = vec![None; parts.len()];
    for i in order {
        let p = &parts[i];
        let resp = match p.method_and_path() {
            None => gerr(
                StatusCode::BAD_REQUEST,
                "badRequest",
                "Malformed inner request",
            ),
            Some((m, full)) => {
                let (path, q) = full.split_once('?').unwrap_or((full, ""));
                let m = Method::from_bytes(m.as_bytes()).unwrap_or(Method::GET);
                let query: HashMap<String, String> = url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect();
                let body = if p.body.trim().is_empty() {
                    Ok(None)
                } else {
                    serde_json::from_str::<Value>(&p.body).map(Some)
                };
                if let Some(r) = quota(s, &subject) {
                    r
                } else if !path.starts_with(API) {
                    gerr(
                        StatusCode::NOT_FOUND,
                        "notFound",
                        "All calls of a batch must go to the Directory API",
                    )
                } else {
                    match body {
                        Err(_) => gerr(StatusCode::BAD_REQUEST, "parseError", "Parse Error"),
                        Ok(b) => {
                            s.counters.items += 1;
                            directory(s, &m, path, &query, b)
                        }
                    }
                }
            }
        };
        answers[i] = Some(render(resp));
    }
    let out: Vec<Part> = answers
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let (status, body) = a.expect("every part answered");
            Part {
                content_id: Some(format!("response-item{}", i + 1)),
                start_line: format!(
                    "HTTP/1.1 {} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                ),
                headers: if body.is_empty() {
                    vec![]
                } else {
                    vec![(
                        "Content-Type".into(),
                        "application/json; charset=UTF-8".into(),
                    )]
                },
                body,
            }
        })
        .collect();
    let b = "batch_mockresp";
    Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/mixed; boundary={b}"),
        )
        .body(Body::from(multipart::encode(b, &out)))
        .expect("response")
}

/// Status and body text of a response built by the handlers (bodies are in memory).
fn render(r: Response) -> (StatusCode, String) {
    let status = r.status();
    let body = r.into_body();
    let bytes = futures_lite_collect(body);
    (status, bytes)
}

fn futures_lite_collect(body: Body) -> String {
    // Handler bodies are built from in-memory strings; read them synchronously.
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    let fut = axum::body::to_bytes(body, usize::MAX);
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(b)) => String::from_utf8_lossy(&b).into_owned(),
        _ => String::new(),
    }
}

fn user_json(u: &User) -> Value {
    let mut name = json!({"givenName": u.given, "familyName": u.family,
        "fullName": format!("{} {}", u.given, u.family)});
    if let Some(d) = &u.display {
        name["displayName"] = json!(d);
    }
    json!({"kind": "admin#directory#user", "id": u.id, "primaryEmail": u.email,
        "name": name, "suspended": u.suspended, "externalIds": u.external_ids,
        "etag": format!("\"u{}\"", u.id)})
}

fn group_json(g: &Group) -> Value {
    json!({"kind": "admin#directory#group", "id": g.id, "email": g.email, "name": g.name,
        "directMembersCount": g.members.len().to_string()})
}

fn find_user_key(s: &State, key: &str) -> Option<String> {
    let k = key.to_ascii_lowercase();
    if s.users.contains_key(&k) {
        return Some(k);
    }
    s.users
        .iter()
        .find(|(_, u)| u.id == key)
        .map(|(k, _)| k.clone())
}

fn find_group_key(s: &State, key: &str) -> Option<String> {
    let k = key.to_ascii_lowercase();
    if s.groups.contains_key(&k) {
        return Some(k);
    }
    s.groups
        .iter()
        .find(|(_, g)| g.id == key)
        .map(|(k, _)| k.clone())
}

fn not_found(what: &str) -> Response {
    gerr(
        StatusCode::NOT_FOUND,
        "notFound",
        &format!("Resource Not Found: {what}"),
    )
}

/// Keyset paging over sorted keys: the token is the last key of the previous page.
fn page<T: Clone>(
    items: Vec<(String, T)>,
    q: &HashMap<String, String>,
    max: usize,
) -> Result<(Vec<T>, Option<String>), Response> {
    let n = match q.get("maxResults") {
        None => 100,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                return Err(gerr(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    &format!("Invalid value for maxResults: {v} (1..{max})"),
                ));
            }
        },
    };
    let after = match q.get("pageToken") {
        None => None,
        Some(t) => match URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        {
            Some(k) => Some(k),
            None => {
                return Err(gerr(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "Invalid page token",
                ));
            }
        },
    };
    let rest: Vec<(String, T)> = items
        .into_iter()
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
        .collect();
    let more = rest.len() > n;
    let page: Vec<(String, T)> = rest.into_iter().take(n).collect();
    let next = if more {
        page.last().map(|(k, _)| URL_SAFE_NO_PAD.encode(k))
    } else {
        None
    };
    Ok((page.into_iter().map(|(_, v)| v).collect(), next))
}

fn listed(field: &str, kind: &str, items: Vec<Value>, next: Option<String>) -> Response {
    let mut v = json!({"kind": kind, "etag": "\"list\""});
    v[field] = Value::Array(items);
    if let Some(n) = next {
        v["nextPageToken"] = json!(n);
    }
    json_resp(StatusCode::OK, &v)
}

fn directory(
    s: &mut State,
    method: &Method,
    path: &str,
    q: &HashMap<String, String>,
    body: Option<Value>,
) -> Response {
    let Some(rest) = path.strip_prefix(API) else {
        return gerr(StatusCode::NOT_FOUND, "notFound", "Not Found");
    };
    let segs: Vec<String> = rest
        .split('/')
        .filter(|x| !x.is_empty())
        .map(|x| {
            url::form_urlencoded::parse(format!("k={x}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let scoped = q.contains_key("customer") || q.contains_key("domain");
    match (method.clone(), segs.as_slice()) {
        (Method::GET, ["users"]) => {
            if !scoped {
                return gerr(
                    StatusCode::BAD_REQUEST,
                    "badRequest",
                    "Bad Request: customer or domain is required",
                );
            }
            let items: Vec<(String, Value)> = s
                .users
                .iter()
                .map(|(k, u)| (k.clone(), user_json(u)))
                .collect();
            match page(items, q, 500) {
                Ok((p, n)) => listed("users", "admin#directory#users", p, n),
                Err(r) => r,
            }
        }
        (Method::POST, ["users"]) => {
            let b = body.unwrap_or_default();
            let email = b
                .get("primaryEmail")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase();
            let given = b
                .pointer("/name/givenName")
                .and_then(Value::as_str)
                .unwrap_or("");
            let family = b
                .pointer("/name/familyName")
                .and_then(Value::as_str)
                .unwrap_or("");
            let pw = b.get("password").and_then(Value::as_str).unwrap_or("");
            if email.is_empty() || given.is_empty() || family.is_empty() || pw.is_empty() {
                return gerr(
                    StatusCode::BAD_REQUEST,
                    "required",
                    "Invalid Input: primaryEmail, name.givenName, name.familyName and password are required",
                );
            }
            if pw.len() < 8 {
                return gerr(StatusCode::BAD_REQUEST, "invalid", "Invalid Password");
            }
            if !email.ends_with(&format!("@{TEST_DOMAIN}")) {
                return gerr(StatusCode::BAD_REQUEST, "invalid", "Domain not found.");
            }
            if s.users.contains_key(&email) {
                return gerr(StatusCode::CONFLICT, "duplicate", "Entity already exists.");
            }
            s.next_id += 1;
            let u = User {
                id: s.next_id.to_string(),
                email: email.clone(),
                given: given.into(),
                family: family.into(),
                display: b
                    .pointer("/name/displayName")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                suspended: b.get("suspended").and_then(Value::as_bool).unwrap_or(false),
                external_ids: b.get("externalIds").cloned().unwrap_or(json!([])),
            };
            let out = user_json(&u);
            s.users.insert(email, u);
            json_resp(StatusCode::OK, &out)
        }
        (m, ["users", key]) => {
            let Some(k) = find_user_key(s, key) else {
                return not_found("userKey");
            };
            match m {
                Method::GET => json_resp(StatusCode::OK, &user_json(&s.users[&k])),
                Method::DELETE => {
                    let u = s.users.remove(&k).expect("present");
                    for g in s.groups.values_mut() {
                        g.members.retain(|m| m != &u.id);
                    }
                    empty(StatusCode::NO_CONTENT)
                }
                Method::PATCH | Method::PUT => {
                    let b = body.unwrap_or_default();
                    if b.get("password")
                        .is_some_and(|p| p.as_str().is_none_or(|p| p.len() < 8))
                    {
                        return gerr(StatusCode::BAD_REQUEST, "invalid", "Invalid Password");
                    }
                    let u = s.users.get_mut(&k).expect("present");
                    if let Some(v) = b.get("suspended").and_then(Value::as_bool) {
                        u.suspended = v;
                    }
                    if let Some(v) = b.pointer("/name/givenName").and_then(Value::as_str) {
                        u.given = v.into();
                    }
                    if let Some(v) = b.pointer("/name/familyName").and_then(Value::as_str) {
                        u.family = v.into();
                    }
                    if let Some(v) = b.pointer("/name/displayName").and_then(Value::as_str) {
                        u.display = Some(v.into());
                    }
                    if let Some(v) = b.get("externalIds") {
                        u.external_ids = v.clone();
                    }
                    json_resp(StatusCode::OK, &user_json(u))
                }
                _ => gerr(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "badRequest",
                    "Method not allowed",
                ),
            }
        }
        (Method::GET, ["groups"]) => {
            let member = match q.get("userKey") {
                Some(k) => match find_user_key(s, k) {
                    Some(uk) => Some(s.users[&uk].id.clone()),
                    None => return not_found("userKey"),
                },
                None if !scoped => {
                    return gerr(
                        StatusCode::BAD_REQUEST,
                        "badRequest",
                        "Bad Request: customer, domain or userKey is required",
                    );
                }
                None => None,
            };
            let items: Vec<(String, Value)> = s
                .groups
                .iter()
                .filter(|(_, g)| member.as_ref().is_none_or(|m| g.members.contains(m)))
                .map(|(k, g)| (k.clone(), group_json(g)))
                .collect();
            match page(items, q, 200) {
                Ok((p, n)) => listed("groups", "admin#directory#groups", p, n),
                Err(r) => r,
            }
        }
        (Method::POST, ["groups"]) => {
            let b = body.unwrap_or_default();
            let email = b
                .get("email")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase();
            if email.is_empty() {
                return gerr(
                    StatusCode::BAD_REQUEST,
                    "required",
                    "Missing required field: email",
                );
            }
            if s.groups.contains_key(&email) {
                return gerr(StatusCode::CONFLICT, "duplicate", "Entity already exists.");
            }
            s.next_id += 1;
            let g = Group {
                id: format!("0{}", s.next_id),
                email: email.clone(),
                name: b
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or(&email)
                    .to_string(),
                members: Vec::new(),
            };
            let out = group_json(&g);
            s.groups.insert(email, g);
            json_resp(StatusCode::OK, &out)
        }
        (Method::GET, ["groups", g]) => match find_group_key(s, g) {
            Some(k) => json_resp(StatusCode::OK, &group_json(&s.groups[&k])),
            None => not_found("groupKey"),
        },
        (m, ["groups", g, "members", rest @ ..]) => {
            let Some(gk) = find_group_key(s, g) else {
                return not_found("groupKey");
            };
            let member_json = |u: &User| {
                json!({"kind": "admin#directory#member", "id": u.id, "email": u.email,
                    "role": "MEMBER", "type": "USER", "status": "ACTIVE",
                    "etag": format!("\"m{}\"", u.id)})
            };
            match (m, rest) {
                (Method::GET, []) => {
                    let ids = s.groups[&gk].members.clone();
                    let mut items: Vec<(String, Value)> = ids
                        .iter()
                        .filter_map(|id| s.users.values().find(|u| &u.id == id))
                        .map(|u| (u.email.clone(), member_json(u)))
                        .collect();
                    items.sort_by(|a, b| a.0.cmp(&b.0));
                    match page(items, q, 200) {
                        Ok((p, n)) => listed("members", "admin#directory#members", p, n),
                        Err(r) => r,
                    }
                }
                (Method::POST, []) => {
                    let b = body.unwrap_or_default();
                    let Some(email) = b.get("email").and_then(Value::as_str) else {
                        return gerr(
                            StatusCode::BAD_REQUEST,
                            "required",
                            "Missing required field: memberKey",
                        );
                    };
                    let role = b.get("role").and_then(Value::as_str).unwrap_or("MEMBER");
                    if !matches!(role, "MEMBER" | "MANAGER" | "OWNER") {
                        return gerr(StatusCode::BAD_REQUEST, "invalid", "Invalid role");
                    }
                    let Some(uk) = find_user_key(s, email) else {
                        return not_found("memberKey");
                    };
                    let u = s.users[&uk].clone();
                    let g = s.groups.get_mut(&gk).expect("present");
                    if g.members.contains(&u.id) {
                        return gerr(StatusCode::CONFLICT, "duplicate", "Member already exists.");
                    }
                    g.members.push(u.id.clone());
                    json_resp(StatusCode::OK, &member_json(&u))
                }
                (m @ (Method::GET | Method::DELETE), [mk]) => {
                    let uid = find_user_key(s, mk).map(|k| s.users[&k].clone());
                    let g = s.groups.get_mut(&gk).expect("present");
                    let Some(u) = uid.filter(|u| g.members.contains(&u.id)) else {
                        return not_found("memberKey");
                    };
                    if m == Method::DELETE {
                        g.members.retain(|x| x != &u.id);
                        empty(StatusCode::NO_CONTENT)
                    } else {
                        json_resp(StatusCode::OK, &member_json(&u))
                    }
                }
                _ => gerr(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "badRequest",
                    "Method not allowed",
                ),
            }
        }
        (Method::GET, ["groups", g, "hasMember", mk]) => {
            let Some(gk) = find_group_key(s, g) else {
                return not_found("groupKey");
            };
            let Some(uk) = find_user_key(s, mk) else {
                return not_found("memberKey");
            };
            let is = s.groups[&gk].members.contains(&s.users[&uk].id);
            json_resp(StatusCode::OK, &json!({"isMember": is}))
        }
        _ => gerr(StatusCode::NOT_FOUND, "notFound", "Not Found"),
    }
}
