//! A faithful in-process mock of the IAM Identity Center SCIM endpoint (feature
//! `test-support`), following AWS's published limitations:
//!
//! - bearer token required (401 otherwise);
//! - filters: `attr eq "value"` joined by `and` only, on `userName`, `externalId`,
//!   `id` (Users) and `displayName`, `externalId`, `id and members` (Groups); any
//!   other operator or combination → 400 `ValidationException`;
//! - group reads never carry `members`; membership is read only through
//!   `filter=id eq "<g>" and members eq "<u>"`;
//! - group PATCH: only `displayName`, `externalId`, `members`; at most 100
//!   membership changes per request; `replace` of members or a value-less remove of
//!   all members → 400; users accept at most one e-mail; no `/Bulk`;
//! - `count` ≤ 100 per page; 409 on duplicate `userName`/`displayName`;
//! - injected faults: 429 `ThrottlingException` (+ `Retry-After`), 503, 401, 403.

// Handlers return a ready `Response` as their error value; size does not matter here.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use iga_connector_scim::ScimConfig;
use serde_json::{Map, Value, json};

/// The mock's bearer token (test use only).
pub const TEST_TOKEN: &str = "iga-identity-center-test-token-0001";
/// Most membership changes per group PATCH.
pub const MAX_MEMBER_CHANGES: usize = 100;
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// A fault the mock answers the next request with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MockFault {
    /// 429 `ThrottlingException`, with `Retry-After` when given.
    Throttling(Option<Duration>),
    /// 503.
    Unavailable,
    /// 401.
    Unauthorized,
    /// 403 `AccessDeniedException`.
    AccessDenied,
}

#[derive(Default)]
struct State {
    users: BTreeMap<String, Value>, // id → resource
    groups: BTreeMap<String, (Value, BTreeSet<String>)>,
    next: u64,
    faults: VecDeque<MockFault>,
    calls: u64,
    patches: u64,
    rejected: u64,
}

type Shared = Arc<Mutex<State>>;

/// The running mock. Dropping it stops the server.
pub struct IdentityCenterMock {
    addr: SocketAddr,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for IdentityCenterMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn resp(status: StatusCode, v: Option<&Value>) -> Response {
    let b = Response::builder().status(status);
    match v {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/scim+json")
            .body(Body::from(v.to_string())),
        None => b.body(Body::empty()),
    }
    .expect("response")
}

fn err(status: u16, exception: &str, detail: &str) -> Response {
    let v = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": status.to_string(), "detail": detail, "exceptionRequestId": "mock-req",
        "exception": exception, "timeStamp": "2025-01-01 00:00:00.000"});
    resp(StatusCode::from_u16(status).expect("status"), Some(&v))
}

fn validation(detail: &str) -> Response {
    err(400, "ValidationException", detail)
}

impl IdentityCenterMock {
    /// Start on a random loopback port. Panics if it cannot bind (tests must not skip).
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("identity center mock: cannot bind a loopback port");
        let addr = listener.local_addr().expect("local addr");
        let state: Shared = Arc::default();
        let st = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let st = st.clone();
                async move { handle(&st, method, uri, headers, body) }
            },
        );
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("identity center mock server");
        });
        Self { addr, state, task }
    }

    /// Base URL, shaped like `https://scim.<region>.amazonaws.com/<tenant>/scim/v2`.
    pub fn base_url(&self) -> String {
        format!("http://{}/d-9067000000/scim/v2", self.addr)
    }

    /// A SCIM configuration pointed at this mock.
    pub fn config(&self) -> ScimConfig {
        ScimConfig::new(&self.base_url())
            .expect("mock config")
            .bearer_token(TEST_TOKEN)
            .with_instance("identity-center-mock")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("mock state")
    }

    /// Create a group; returns its id.
    pub fn seed_group(&self, name: &str) -> String {
        let mut s = self.lock();
        s.next += 1;
        let id = format!("g-{:08}", s.next);
        s.groups.insert(
            id.clone(),
            (json!({"id": id, "displayName": name, "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]}), BTreeSet::new()),
        );
        id
    }

    /// Members (user ids) of a group.
    pub fn members(&self, gid: &str) -> Vec<String> {
        self.lock()
            .groups
            .get(gid)
            .map(|(_, m)| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Answer the next request with `fault`.
    pub fn inject(&self, fault: MockFault) {
        self.lock().faults.push_back(fault);
    }

    /// Requests received.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// Group PATCH requests accepted.
    pub fn patches(&self) -> u64 {
        self.lock().patches
    }

    /// Requests rejected with 400 for an Identity Center limitation.
    pub fn rejected(&self) -> u64 {
        self.lock().rejected
    }
}

/// `[(attr, value)]` of an `eq`-only filter joined by `and`; None when unsupported.
fn parse_filter(f: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = f.trim();
    loop {
        let (attr, after) = rest.split_once(char::is_whitespace)?;
        let after = after.trim_start();
        let (op, after) = after.split_once(char::is_whitespace)?;
        if !op.eq_ignore_ascii_case("eq") || attr.contains('[') {
            return None;
        }
        let after = after.trim_start();
        let value: String = serde_json::Deserializer::from_str(after)
            .into_iter::<Value>()
            .next()?
            .ok()?
            .as_str()?
            .to_string();
        let consumed = serde_json::to_string(&value).ok()?.len();
        // Re-find the literal end (JSON escapes may differ); scan for the closing quote.
        let end = literal_end(after).unwrap_or(consumed);
        out.push((attr.to_string(), value));
        rest = after[end..].trim_start();
        if rest.is_empty() {
            return Some(out);
        }
        let (kw, r) = rest.split_once(char::is_whitespace)?;
        if !kw.eq_ignore_ascii_case("and") {
            return None;
        }
        rest = r.trim_start();
    }
}

fn literal_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

fn list(items: Vec<Value>, q: &HashMap<String, String>) -> Result<Response, Response> {
    let start = q
        .get("startIndex")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let count = match q.get("count").map(|v| v.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if n <= 100 => n,
        _ => return Err(validation("count must be between 0 and 100")),
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start - 1).take(count).collect();
    Ok(resp(
        StatusCode::OK,
        Some(
            &json!({"schemas": [LIST], "totalResults": total, "itemsPerPage": page.len(),
            "startIndex": start, "Resources": page}),
        ),
    ))
}

fn handle(st: &Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = st.lock().expect("mock state");
    s.calls += 1;
    if let Some(f) = s.faults.pop_front() {
        return match f {
            MockFault::Throttling(after) => {
                let mut r = err(429, "ThrottlingException", "Rate exceeded");
                if let Some(a) = after {
                    r.headers_mut().insert(
                        header::RETRY_AFTER,
                        a.as_secs().to_string().parse().expect("header"),
                    );
                }
                r
            }
            MockFault::Unavailable => {
                err(503, "ServiceUnavailableException", "Service unavailable")
            }
            MockFault::Unauthorized => err(401, "UnauthorizedException", "Unauthorized"),
            MockFault::AccessDenied => err(403, "AccessDeniedException", "Access denied"),
        };
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TEST_TOKEN}")) {
        return err(
            401,
            "UnauthorizedException",
            "The bearer token is missing or invalid",
        );
    }
    let Some(path) = uri.path().strip_prefix("/d-9067000000/scim/v2") else {
        return err(404, "ResourceNotFoundException", "Not found");
    };
    let q: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let body: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(_) => return validation("Request body is not valid JSON"),
        }
    };
    let segs: Vec<&str> = path.split('/').filter(|x| !x.is_empty()).collect();
    let r = route(&mut s, &method, &segs, &q, body);
    if r.status() == StatusCode::BAD_REQUEST {
        s.rejected += 1;
    }
    r
}

fn route(
    s: &mut State,
    method: &Method,
    segs: &[&str],
    q: &HashMap<String, String>,
    body: Option<Value>,
) -> Response {
    match (method.clone(), segs) {
        (Method::GET, ["ServiceProviderConfig"]) => resp(
            StatusCode::OK,
            Some(
                &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                "patch": {"supported": true}, "bulk": {"supported": false, "maxOperations": 1, "maxPayloadSize": 1048576},
                "filter": {"supported": true, "maxResults": 100}, "changePassword": {"supported": false},
                "sort": {"supported": false}, "etag": {"supported": false},
                "authenticationSchemes": [{"type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": true}]}),
            ),
        ),
        (_, ["Bulk"]) | (_, ["Me"]) | (_, [".search"]) | (_, [_, ".search"]) => err(
            501,
            "NotImplementedException",
            "Not supported by IAM Identity Center",
        ),
        (Method::GET, ["Users"]) => {
            let mut items: Vec<Value> = s.users.values().cloned().collect();
            if let Some(f) = q.get("filter") {
                let Some(terms) = parse_filter(f) else {
                    return validation("Unsupported filter: only eq (with and) is supported");
                };
                for (attr, v) in &terms {
                    if !["userName", "externalId", "id"]
                        .iter()
                        .any(|a| a.eq_ignore_ascii_case(attr))
                    {
                        return validation(&format!("Filtering on {attr} is not supported"));
                    }
                    items.retain(|u| {
                        u.get(attr.as_str())
                            .and_then(Value::as_str)
                            .is_some_and(|x| {
                                if attr.eq_ignore_ascii_case("userName") {
                                    x.eq_ignore_ascii_case(v)
                                } else {
                                    x == v
                                }
                            })
                    });
                }
            }
            list(items, q).unwrap_or_else(|r| r)
        }
        (Method::POST, ["Users"]) => {
            let Some(Value::Object(mut u)) = body else {
                return validation("Request body must be a User");
            };
            let name = u
                .get("userName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if name.is_empty()
                || u.get("displayName").and_then(Value::as_str).is_none()
                || u.get("name").and_then(|n| n.get("givenName")).is_none()
                || u.get("name").and_then(|n| n.get("familyName")).is_none()
            {
                return validation(
                    "userName, displayName, name.givenName and name.familyName are required",
                );
            }
            if let Some(e) = u.get("emails").and_then(Value::as_array)
                && e.len() > 1
            {
                return validation("Only one email is supported");
            }
            if s.users.values().any(|x| {
                x["userName"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(&name))
            }) {
                return err(409, "ConflictException", "Duplicate userName");
            }
            s.next += 1;
            let id = format!("u-{:08}", s.next);
            u.insert("id".into(), json!(id));
            u.insert("meta".into(), json!({"resourceType": "User"}));
            u.remove("password");
            let v = Value::Object(u);
            s.users.insert(id, v.clone());
            resp(StatusCode::CREATED, Some(&v))
        }
        (m, ["Users", id]) => {
            let id = id.to_string();
            if !s.users.contains_key(&id) {
                return err(404, "ResourceNotFoundException", "User not found");
            }
            match m {
                Method::GET => resp(StatusCode::OK, Some(&s.users[&id])),
                Method::DELETE => {
                    s.users.remove(&id);
                    for (_, m) in s.groups.values_mut() {
                        m.remove(&id);
                    }
                    resp(StatusCode::NO_CONTENT, None)
                }
                Method::PATCH => {
                    let ops = body
                        .as_ref()
                        .and_then(|b| b.get("Operations"))
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    let mut u = s.users[&id].as_object().cloned().unwrap_or_default();
                    for op in ops {
                        let kind = op
                            .get("op")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_ascii_lowercase();
                        if kind != "replace" && kind != "add" {
                            return validation("Only add and replace are supported on users");
                        }
                        match (op.get("path").and_then(Value::as_str), op.get("value")) {
                            (Some(p), Some(v)) => {
                                if p == "emails" && v.as_array().is_some_and(|a| a.len() > 1) {
                                    return validation("Only one email is supported");
                                }
                                set_path(&mut u, p, v.clone());
                            }
                            (None, Some(Value::Object(m))) => {
                                for (k, v) in m {
                                    set_path(&mut u, k, v.clone());
                                }
                            }
                            _ => return validation("Invalid PATCH operation"),
                        }
                    }
                    let v = Value::Object(u);
                    s.users.insert(id, v.clone());
                    resp(StatusCode::OK, Some(&v))
                }
                Method::PUT => {
                    let Some(Value::Object(mut u)) = body else {
                        return validation("Request body must be a User");
                    };
                    u.insert("id".into(), json!(id));
                    let v = Value::Object(u);
                    s.users.insert(id, v.clone());
                    resp(StatusCode::OK, Some(&v))
                }
                _ => err(405, "ValidationException", "Method not allowed"),
            }
        }
        (Method::GET, ["Groups"]) => {
            let mut items: Vec<(String, Value)> = s
                .groups
                .iter()
                .map(|(k, (g, _))| (k.clone(), g.clone()))
                .collect();
            if let Some(f) = q.get("filter") {
                let Some(terms) = parse_filter(f) else {
                    return validation("Unsupported filter: only eq (with and) is supported");
                };
                let attrs: Vec<String> =
                    terms.iter().map(|(a, _)| a.to_ascii_lowercase()).collect();
                let ok = matches!(
                    attrs
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .as_slice(),
                    ["displayname"]
                        | ["externalid"]
                        | ["id"]
                        | ["id", "members"]
                        | ["members", "id"]
                );
                if !ok {
                    return validation(
                        "Supported group filters: displayName, externalId, id, or id and members",
                    );
                }
                for (attr, v) in &terms {
                    let attr = attr.to_ascii_lowercase();
                    items.retain(|(gid, g)| match attr.as_str() {
                        "members" => s.groups[gid].1.contains(v),
                        "id" => gid == v,
                        "displayname" => g["displayName"].as_str() == Some(v),
                        _ => g["externalId"].as_str() == Some(v),
                    });
                }
            }
            list(items.into_iter().map(|(_, g)| g).collect(), q).unwrap_or_else(|r| r)
        }
        (Method::POST, ["Groups"]) => {
            let b = body.unwrap_or_default();
            let Some(name) = b.get("displayName").and_then(Value::as_str) else {
                return validation("displayName is required");
            };
            if b.get("members")
                .and_then(Value::as_array)
                .is_some_and(|m| m.len() > 100)
            {
                return validation("CreateGroup accepts at most 100 members");
            }
            if s.groups
                .values()
                .any(|(g, _)| g["displayName"].as_str() == Some(name))
            {
                return err(409, "ConflictException", "Duplicate GroupDisplayName");
            }
            let name = name.to_string();
            let gid = {
                s.next += 1;
                format!("g-{:08}", s.next)
            };
            let g = json!({"id": gid, "displayName": name, "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]});
            s.groups.insert(gid, (g.clone(), BTreeSet::new()));
            resp(StatusCode::CREATED, Some(&g))
        }
        (m, ["Groups", gid]) => {
            let gid = gid.to_string();
            if !s.groups.contains_key(&gid) {
                return err(404, "ResourceNotFoundException", "Group not found");
            }
            match m {
                // Identity Center never returns members on a group read.
                Method::GET => resp(StatusCode::OK, Some(&s.groups[&gid].0)),
                Method::DELETE => {
                    s.groups.remove(&gid);
                    resp(StatusCode::NO_CONTENT, None)
                }
                Method::PATCH => patch_group(s, &gid, body),
                _ => err(405, "ValidationException", "Method not allowed"),
            }
        }
        _ => err(404, "ResourceNotFoundException", "Not found"),
    }
}

fn set_path(u: &mut Map<String, Value>, path: &str, v: Value) {
    if let Some((urn, attr)) = path.rsplit_once(':')
        && urn.starts_with("urn:")
    {
        let ext = u.entry(urn.to_string()).or_insert_with(|| json!({}));
        if let Some(o) = ext.as_object_mut() {
            o.insert(attr.to_string(), v);
        }
        return;
    }
    match path.split_once('.') {
        Some((a, b)) => {
            let e = u.entry(a.to_string()).or_insert_with(|| json!({}));
            if let Some(o) = e.as_object_mut() {
                o.insert(b.to_string(), v);
            }
        }
        None => {
            u.insert(path.to_string(), v);
        }
    }
}

fn member_filter_value(path: &str) -> Option<String> {
    let inner = path.strip_prefix("members[")?.strip_suffix(']')?;
    let terms = parse_filter(inner)?;
    match terms.as_slice() {
        [(a, v)] if a == "value" => Some(v.clone()),
        _ => None,
    }
}

fn patch_group(s: &mut State, gid: &str, body: Option<Value>) -> Response {
    let ops = body
        .as_ref()
        .and_then(|b| b.get("Operations"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if ops.is_empty() {
        return validation("PATCH needs Operations");
    }
    // Validate everything first: the PATCH is atomic.
    let mut changes: Vec<(bool, String)> = Vec::new();
    let mut rename: Option<Value> = None;
    for op in &ops {
        let kind = op
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let path = op.get("path").and_then(Value::as_str);
        let values = || -> Option<Vec<String>> {
            op.get("value")?
                .as_array()?
                .iter()
                .map(|m| m.get("value").and_then(Value::as_str).map(str::to_string))
                .collect()
        };
        match (kind.as_str(), path) {
            ("add", Some("members")) => match values() {
                Some(v) => changes.extend(v.into_iter().map(|u| (true, u))),
                None => return validation("members value must be a list of {value}"),
            },
            ("remove", Some("members")) => match values() {
                Some(v) if !v.is_empty() => changes.extend(v.into_iter().map(|u| (false, u))),
                _ => return validation("Removing all members is not supported"),
            },
            ("remove", Some(p)) if p.starts_with("members[") => match member_filter_value(p) {
                Some(u) => changes.push((false, u)),
                None => return validation("Unsupported member filter"),
            },
            ("replace", Some(p)) if p.starts_with("members") => {
                return validation("Replacing members is not supported");
            }
            ("replace", Some("displayName")) | ("replace", Some("externalId")) => {
                rename = Some(
                    json!({path.unwrap_or_default(): op.get("value").cloned().unwrap_or_default()}),
                );
            }
            ("replace", None) => match op.get("value") {
                Some(Value::Object(m))
                    if m.keys()
                        .all(|k| k == "displayName" || k == "externalId" || k == "id") =>
                {
                    rename = Some(Value::Object(m.clone()));
                }
                _ => return validation("Only displayName, externalId and members can be patched"),
            },
            _ => return validation("Only displayName, externalId and members can be patched"),
        }
    }
    if changes.len() > MAX_MEMBER_CHANGES {
        return validation(&format!(
            "A request can add or remove at most {MAX_MEMBER_CHANGES} members"
        ));
    }
    for (_, u) in &changes {
        if !s.users.contains_key(u) {
            return err(
                404,
                "ResourceNotFoundException",
                &format!("Member {u} not found"),
            );
        }
    }
    let (g, members) = s.groups.get_mut(gid).expect("present");
    for (add, u) in changes {
        if add {
            members.insert(u);
        } else {
            members.remove(&u);
        }
    }
    if let Some(Value::Object(m)) = rename {
        for (k, v) in m {
            if k != "id" {
                g[k] = v;
            }
        }
    }
    s.patches += 1;
    resp(StatusCode::NO_CONTENT, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_parser_is_eq_and_only() {
        assert_eq!(
            parse_filter(r#"id eq "g-1" and members eq "u \"2""#).unwrap(),
            vec![
                ("id".into(), "g-1".into()),
                ("members".into(), "u \"2".into())
            ]
        );
        assert!(parse_filter(r#"userName sw "a""#).is_none());
        assert!(parse_filter(r#"userName eq "a" or userName eq "b""#).is_none());
        assert!(parse_filter(r#"members[value eq "u"]"#).is_none());
        assert_eq!(
            member_filter_value(r#"members[value eq "u-1"]"#).as_deref(),
            Some("u-1")
        );
    }
}
