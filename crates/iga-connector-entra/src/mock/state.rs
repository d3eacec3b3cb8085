//! The mock's data and request handling.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, Method, Uri};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use super::{CLIENT_ID, DOMAIN, TENANT};
use crate::error::{ALREADY_EXISTS_MSG, APP_ROLE_EXISTS_MSG, UPN_TAKEN_MSG};

/// One request the mock saw.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Decoded path below `/v1.0` (e.g. `/groups/G/members/$ref`).
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// JSON body.
    pub body: Option<Value>,
    /// Whether it came inside a `$batch`.
    pub in_batch: bool,
    /// Status answered.
    pub status: u16,
}

pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Value>,
}

fn resp(status: u16, body: Option<Value>) -> Resp {
    Resp {
        status,
        headers: Vec::new(),
        body,
    }
}
fn ok(v: Value) -> Resp {
    resp(200, Some(v))
}
fn created(v: Value) -> Resp {
    resp(201, Some(v))
}
fn no_content() -> Resp {
    resp(204, None)
}
fn err(status: u16, code: &str, message: &str) -> Resp {
    resp(
        status,
        Some(
            json!({"error": {"code": code, "message": message, "innerError": {
            "date": "2026-01-01T00:00:00", "request-id": uuid::Uuid::new_v4().to_string(),
            "client-request-id": uuid::Uuid::new_v4().to_string()}}}),
        ),
    )
}
fn not_found(id: &str) -> Resp {
    err(
        404,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}
fn bad(msg: &str) -> Resp {
    err(400, "Request_BadRequest", msg)
}
fn unsupported_query(msg: &str) -> Resp {
    err(400, "Request_UnsupportedQuery", msg)
}

pub(crate) struct Group {
    obj: Value,
    pub(crate) members: BTreeSet<String>,
    pub(crate) owners: BTreeSet<String>,
}

/// A delta log entry: (seq, kind "users"/"groups", object id, member change).
type Change = (u64, &'static str, String, Option<(String, bool)>);

const USER_PROPS: [&str; 16] = [
    "accountEnabled",
    "displayName",
    "mailNickname",
    "userPrincipalName",
    "passwordProfile",
    "employeeId",
    "givenName",
    "surname",
    "mail",
    "department",
    "jobTitle",
    "mobilePhone",
    "officeLocation",
    "usageLocation",
    "city",
    "country",
];

pub(crate) struct State {
    origin: String,
    pub(crate) client_secret: Option<String>,
    pub(crate) cert_public_key: Option<Vec<u8>>,
    pub(crate) cert_thumbprint_hex: Option<String>,
    pub(crate) tokens: HashSet<String>,
    pub(crate) token_requests: u64,
    pub(crate) token_lifetime: u64,
    pub(crate) users: BTreeMap<String, Value>,
    deleted: BTreeMap<String, Value>,
    managers: BTreeMap<String, String>,
    pub(crate) groups: BTreeMap<String, Group>,
    pub(crate) aus: BTreeMap<String, (Value, BTreeSet<String>)>,
    pub(crate) sps: BTreeMap<String, Value>,
    pub(crate) app_roles: BTreeMap<String, Value>,
    role_defs: BTreeMap<String, Value>,
    pub(crate) role_assignments: BTreeMap<String, Value>,
    pim_requests: BTreeMap<String, Value>,
    pub(crate) pim_schedules: BTreeMap<(String, String), Value>,
    skus: BTreeMap<String, Value>,
    pub(crate) ca: BTreeMap<String, Value>,
    packages: BTreeMap<String, Value>,
    policies: BTreeMap<String, Value>,
    pub(crate) ap_requests: BTreeMap<String, Value>,
    pub(crate) ap_assignments: BTreeMap<String, Value>,
    pub(crate) seq: u64,
    changes: Vec<Change>,
    pub(crate) delta_page: usize,
    pub(crate) delta_min_valid: u64,
    pub(crate) delta_gone: bool,
    pub(crate) faults: VecDeque<(u16, Option<Duration>)>,
    pub(crate) throttle_next: u32,
    pub(crate) throttle_fraction: f64,
    pub(crate) throttle_secs: u64,
    pub(crate) inner_throttled: u64,
    rng: StdRng,
    pub(crate) calls: BTreeMap<String, u64>,
    pub(crate) recorded: Vec<Recorded>,
    pub(crate) membership_changes: BTreeMap<(String, String), u32>,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The object id at the end of an `@odata.id` reference to Graph.
fn ref_id(body: &Option<Value>, kinds: &[&str]) -> Result<String, Resp> {
    let r = body
        .as_ref()
        .and_then(|b| b.get("@odata.id"))
        .and_then(Value::as_str)
        .ok_or_else(|| bad("The request body must contain '@odata.id'."))?;
    let ok_prefix = r.starts_with("https://graph.microsoft.com/v1.0/")
        || r.starts_with("https://graph.microsoft.us/v1.0/")
        || r.starts_with("https://dod-graph.microsoft.us/v1.0/")
        || r.starts_with("https://microsoftgraph.chinacloudapi.cn/v1.0/");
    let mut parts = r.rsplitn(3, '/');
    let id = parts.next().unwrap_or_default();
    let coll = parts.next().unwrap_or_default();
    if !ok_prefix || !kinds.contains(&coll) || id.is_empty() {
        return Err(bad(&format!("Invalid object identifier '{r}'.")));
    }
    Ok(id.to_string())
}

fn q<'a>(query: &'a [(String, String)], k: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(x, _)| x.eq_ignore_ascii_case(k))
        .map(|(_, v)| v.as_str())
}

/// `$filter` with `a/b eq 'v'` clauses joined by `and`.
fn filter(items: Vec<Value>, expr: &str) -> Result<Vec<Value>, Resp> {
    let mut clauses = Vec::new();
    for c in expr.split(" and ") {
        let (lhs, rhs) = c
            .split_once(" eq ")
            .ok_or_else(|| unsupported_query("Unsupported query."))?;
        let rhs = rhs.trim();
        if !(rhs.starts_with('\'') && rhs.ends_with('\'') && rhs.len() >= 2) {
            return Err(unsupported_query("Unsupported query."));
        }
        let v = rhs[1..rhs.len() - 1].replace("''", "'");
        clauses.push((format!("/{}", lhs.trim()), v));
    }
    Ok(items
        .into_iter()
        .filter(|it| {
            clauses.iter().all(|(p, v)| {
                it.pointer(p)
                    .and_then(Value::as_str)
                    .is_some_and(|x| x.eq_ignore_ascii_case(v))
            })
        })
        .collect())
}

fn select(v: &Value, sel: Option<&str>) -> Value {
    let Some(sel) = sel else { return strip(v) };
    let mut m = Map::new();
    for k in sel.split(',').map(str::trim).chain(["id", "@odata.type"]) {
        if let Some(x) = v.get(k) {
            m.insert(k.to_string(), x.clone());
        }
    }
    Value::Object(m)
}

fn strip(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("passwordProfile");
    }
    v
}

impl State {
    pub(crate) fn new(origin: String) -> Self {
        Self {
            origin,
            client_secret: None,
            cert_public_key: None,
            cert_thumbprint_hex: None,
            tokens: HashSet::new(),
            token_requests: 0,
            token_lifetime: 3600,
            users: BTreeMap::new(),
            deleted: BTreeMap::new(),
            managers: BTreeMap::new(),
            groups: BTreeMap::new(),
            aus: BTreeMap::new(),
            sps: BTreeMap::new(),
            app_roles: BTreeMap::new(),
            role_defs: BTreeMap::new(),
            role_assignments: BTreeMap::new(),
            pim_requests: BTreeMap::new(),
            pim_schedules: BTreeMap::new(),
            skus: BTreeMap::new(),
            ca: BTreeMap::new(),
            packages: BTreeMap::new(),
            policies: BTreeMap::new(),
            ap_requests: BTreeMap::new(),
            ap_assignments: BTreeMap::new(),
            seq: 0,
            changes: Vec::new(),
            delta_page: 3,
            delta_min_valid: 0,
            delta_gone: false,
            faults: VecDeque::new(),
            throttle_next: 0,
            throttle_fraction: 0.0,
            throttle_secs: 1,
            inner_throttled: 0,
            rng: StdRng::seed_from_u64(12),
            calls: BTreeMap::new(),
            recorded: Vec::new(),
            membership_changes: BTreeMap::new(),
        }
    }

    pub(crate) fn reseed(&mut self, seed: u64) {
        self.rng = StdRng::seed_from_u64(seed);
    }

    fn base(&self) -> String {
        format!("{}/v1.0", self.origin)
    }

    fn log(&mut self, kind: &'static str, id: &str, member: Option<(String, bool)>) {
        self.seq += 1;
        self.changes.push((self.seq, kind, id.to_string(), member));
    }

    // ---------------------------------------------------------------- seeding

    pub(crate) fn seed_user(&mut self, login: &str, employee_id: &str) -> String {
        let id = new_id();
        let upn = if login.contains('@') {
            login.to_string()
        } else {
            format!("{login}@{DOMAIN}")
        };
        self.users.insert(
            id.clone(),
            json!({"id": id, "userPrincipalName": upn, "displayName": login,
                "mailNickname": login.split('@').next().unwrap_or(login), "accountEnabled": true,
                "employeeId": employee_id, "assignedLicenses": []}),
        );
        self.log("users", &id, None);
        id
    }

    pub(crate) fn find_user(&self, key: &str) -> Option<String> {
        if self.users.contains_key(key) {
            return Some(key.to_string());
        }
        self.users
            .values()
            .find(|u| {
                u["userPrincipalName"]
                    .as_str()
                    .is_some_and(|x| x.eq_ignore_ascii_case(key))
            })
            .and_then(|u| u["id"].as_str().map(str::to_string))
    }

    pub(crate) fn seed_group(&mut self, name: &str) -> String {
        let id = new_id();
        self.groups.insert(
            id.clone(),
            Group {
                obj: json!({"id": id, "displayName": name, "mailEnabled": false,
                    "securityEnabled": true, "mailNickname": name}),
                members: BTreeSet::new(),
                owners: BTreeSet::new(),
            },
        );
        self.log("groups", &id, None);
        id
    }

    pub(crate) fn add_member_raw(&mut self, g: &str, m: &str) {
        if let Some(gr) = self.groups.get_mut(g) {
            gr.members.insert(m.to_string());
            self.log("groups", g, Some((m.to_string(), true)));
        }
    }

    pub(crate) fn seed_au(&mut self, name: &str) -> String {
        let id = new_id();
        self.aus.insert(
            id.clone(),
            (json!({"id": id, "displayName": name}), BTreeSet::new()),
        );
        id
    }

    pub(crate) fn seed_sp(&mut self, name: &str, roles: &[&str]) -> (String, Vec<String>) {
        let id = new_id();
        let ids: Vec<String> = roles.iter().map(|_| new_id()).collect();
        let app_roles: Vec<Value> = roles
            .iter()
            .zip(&ids)
            .map(|(r, i)| json!({"id": i, "value": r, "displayName": r, "isEnabled": true}))
            .collect();
        self.sps.insert(
            id.clone(),
            json!({"id": id, "appId": new_id(), "displayName": name, "appRoles": app_roles}),
        );
        (id, ids)
    }

    pub(crate) fn seed_role_definition(&mut self, name: &str) -> String {
        let id = new_id();
        self.role_defs
            .insert(id.clone(), json!({"id": id, "displayName": name}));
        id
    }

    pub(crate) fn seed_sku(&mut self, part: &str, plans: &[&str]) -> (String, Vec<String>) {
        let id = new_id();
        let pids: Vec<String> = plans.iter().map(|_| new_id()).collect();
        let sp: Vec<Value> = plans
            .iter()
            .zip(&pids)
            .map(|(p, i)| json!({"servicePlanId": i, "servicePlanName": p}))
            .collect();
        self.skus.insert(
            id.clone(),
            json!({"skuId": id, "skuPartNumber": part, "servicePlans": sp}),
        );
        (id, pids)
    }

    pub(crate) fn seed_ca(&mut self, name: &str) -> String {
        let id = new_id();
        self.ca.insert(
            id.clone(),
            json!({"id": id, "displayName": name, "state": "enabled",
                "conditions": {
                    "applications": {"includeApplications": ["All"], "excludeApplications": []},
                    "clientAppTypes": ["all"],
                    "platforms": {"includePlatforms": ["android", "iOS"]},
                    "users": {"includeUsers": ["None"], "excludeUsers": [], "includeGroups": [],
                              "excludeGroups": [], "includeRoles": [], "excludeRoles": []}},
                "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}),
        );
        id
    }

    pub(crate) fn seed_access_package(&mut self, name: &str, approval: bool) -> (String, String) {
        let p = new_id();
        let pol = new_id();
        self.packages
            .insert(p.clone(), json!({"id": p, "displayName": name}));
        self.policies.insert(
            pol.clone(),
            json!({"id": pol, "displayName": format!("{name} policy"),
                "accessPackage": {"id": p}, "requiresApproval": approval}),
        );
        (p, pol)
    }

    pub(crate) fn approve_all(&mut self) {
        for r in self.ap_requests.values_mut() {
            if r["state"] == "pendingApproval" {
                r["state"] = json!("delivering");
                r["status"] = json!("Delivering");
            }
        }
    }

    pub(crate) fn delete_user(&mut self, id: &str) {
        if let Some(u) = self.users.remove(id) {
            self.deleted.insert(id.to_string(), u);
            for g in self.groups.values_mut() {
                g.members.remove(id);
            }
            self.log("users", id, None);
        }
    }

    // ---------------------------------------------------------------- HTTP

    pub(crate) fn handle_http(
        &mut self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Resp {
        let raw_path = uri.path().to_string();
        let path = decode(&raw_path);
        *self.calls.entry(path.clone()).or_default() += 1;
        if path == format!("/{TENANT}/oauth2/v2.0/token") && method == Method::POST {
            let r = self.token(body);
            let form: Map<String, Value> = url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), json!(v.into_owned())))
                .collect();
            self.record(
                "POST",
                &path,
                &[],
                &Some(Value::Object(form)),
                false,
                r.status,
            );
            return r;
        }
        let Some(rest) = path.strip_prefix("/v1.0") else {
            return err(404, "NotFound", "unknown endpoint");
        };
        let authz = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !self.tokens.contains(authz) {
            return err(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty or invalid.",
            );
        }
        let query: Vec<(String, String)> = uri
            .query()
            .map(|qs| {
                url::form_urlencoded::parse(qs.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let body: Option<Value> = if body.is_empty() {
            None
        } else {
            match serde_json::from_slice(body) {
                Ok(v) => Some(v),
                Err(_) => return bad("Invalid JSON body."),
            }
        };
        if let Some((status, ra)) = self.faults.pop_front() {
            let mut r = err(
                status,
                match status {
                    429 => "TooManyRequests",
                    503 => "serviceNotAvailable",
                    401 => "InvalidAuthenticationToken",
                    403 => "Authorization_RequestDenied",
                    _ => "generalException",
                },
                "scripted fault",
            );
            if let Some(d) = ra {
                r.headers
                    .push(("Retry-After".into(), d.as_secs().max(1).to_string()));
            }
            if status == 429 {
                r.headers.push((
                    "x-ms-throttle-scope".into(),
                    format!("Tenant_Application/ReadWrite/{CLIENT_ID}/{TENANT}"),
                ));
                r.headers.push((
                    "x-ms-throttle-information".into(),
                    "ResourceUnitLimitExceeded".into(),
                ));
            }
            self.record(method.as_str(), rest, &query, &body, false, status);
            return r;
        }
        let mut r = if rest == "/$batch" && method == Method::POST {
            self.batch(body.clone())
        } else {
            self.route(method.as_str(), rest, &query, &body)
        };
        self.record(method.as_str(), rest, &query, &body, false, r.status);
        r.headers.push(("x-ms-resource-unit".into(), "1".into()));
        r
    }

    fn record(
        &mut self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: &Option<Value>,
        in_batch: bool,
        status: u16,
    ) {
        self.recorded.push(Recorded {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_vec(),
            body: body.clone(),
            in_batch,
            status,
        });
    }

    fn token(&mut self, body: &[u8]) -> Resp {
        let form: BTreeMap<String, String> = url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let f = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        let oauth = |status: u16, code: &str, d: &str| {
            resp(status, Some(json!({"error": code, "error_description": d})))
        };
        if f("grant_type") != "client_credentials" {
            return oauth(400, "unsupported_grant_type", "AADSTS70003");
        }
        if !f("scope").ends_with("/.default") {
            return oauth(
                400,
                "invalid_scope",
                "AADSTS1002012: scope must end with /.default",
            );
        }
        if f("client_id") != CLIENT_ID {
            return oauth(
                400,
                "unauthorized_client",
                "AADSTS700016: application not found",
            );
        }
        let authenticated = if !f("client_secret").is_empty() {
            self.client_secret.as_deref() == Some(f("client_secret"))
        } else if !f("client_assertion").is_empty() {
            if f("client_assertion_type") != crate::auth::JWT_BEARER {
                return oauth(
                    400,
                    "invalid_request",
                    "AADSTS50027: bad client_assertion_type",
                );
            }
            self.verify_assertion(f("client_assertion"))
        } else {
            false
        };
        if !authenticated {
            return oauth(
                401,
                "invalid_client",
                "AADSTS7000215: Invalid client secret provided.",
            );
        }
        self.token_requests += 1;
        let t = format!("tok-{}", new_id());
        self.tokens.insert(t.clone());
        ok(json!({"token_type": "Bearer", "expires_in": self.token_lifetime, "access_token": t}))
    }

    fn verify_assertion(&self, jwt: &str) -> bool {
        let (Some(pk), Some(thumb)) = (&self.cert_public_key, &self.cert_thumbprint_hex) else {
            return false;
        };
        let parts: Vec<&str> = jwt.split('.').collect();
        if parts.len() != 3 {
            return false;
        }
        let dec = |s: &str| {
            URL_SAFE_NO_PAD
                .decode(s)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        };
        let (Some(h), Some(c), Ok(sig)) = (
            dec(parts[0]),
            dec(parts[1]),
            URL_SAFE_NO_PAD.decode(parts[2]),
        ) else {
            return false;
        };
        let x5t = hex::decode(thumb)
            .map(|t| URL_SAFE_NO_PAD.encode(t))
            .unwrap_or_default();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let aud = format!("{}/{TENANT}/oauth2/v2.0/token", self.origin);
        h["alg"] == "RS256"
            && h["x5t"] == x5t.as_str()
            && c["aud"] == aud.as_str()
            && c["iss"] == CLIENT_ID
            && c["sub"] == CLIENT_ID
            && c["exp"].as_i64().is_some_and(|e| e > now)
            && ring::signature::UnparsedPublicKey::new(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                pk,
            )
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .is_ok()
    }

    // ---------------------------------------------------------------- $batch

    fn batch(&mut self, body: Option<Value>) -> Resp {
        let Some(reqs) = body
            .as_ref()
            .and_then(|b| b.get("requests"))
            .and_then(Value::as_array)
            .cloned()
        else {
            return err(400, "BadRequest", "Invalid batch payload format.");
        };
        if reqs.is_empty() {
            return err(400, "BadRequest", "Invalid batch payload format.");
        }
        if reqs.len() > 20 {
            return err(
                400,
                "BadRequest",
                "Number of requests exceeds the limit of 20.",
            );
        }
        let mut ids: Vec<String> = Vec::new();
        for r in &reqs {
            let Some(id) = r
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            else {
                return err(400, "BadRequest", "Batch request id is required.");
            };
            if ids.iter().any(|x| x.eq_ignore_ascii_case(id)) {
                return err(
                    400,
                    "BadRequest",
                    "Batch request contains duplicate request ids.",
                );
            }
            ids.push(id.to_string());
            if r.get("method").and_then(Value::as_str).is_none()
                || r.get("url").and_then(Value::as_str).is_none()
            {
                return err(
                    400,
                    "BadRequest",
                    "Batch request method and url are required.",
                );
            }
            if r.get("body").is_some() {
                let ct = r.get("headers").and_then(|h| h.as_object()).and_then(|h| {
                    h.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                        .and_then(|(_, v)| v.as_str())
                });
                if ct.is_none() {
                    return err(
                        400,
                        "BadRequest",
                        "Content-Type header must be specified when a body is present.",
                    );
                }
            }
        }
        for r in &reqs {
            for d in r
                .get("dependsOn")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let known = d
                    .as_str()
                    .is_some_and(|d| ids.iter().any(|x| x.eq_ignore_ascii_case(d)));
                if !known {
                    return err(
                        400,
                        "BadRequest",
                        "dependsOn refers to an id not in the batch.",
                    );
                }
            }
        }
        // Execute in dependency order (ids before their dependents).
        let mut status_of: BTreeMap<String, u16> = BTreeMap::new();
        let mut out: Vec<Value> = Vec::new();
        let mut remaining: Vec<Value> = reqs;
        let mut guard = 0;
        while !remaining.is_empty() {
            guard += 1;
            if guard > 25 {
                return err(400, "BadRequest", "dependsOn forms a cycle.");
            }
            let mut next = Vec::new();
            for r in remaining {
                let id = r["id"].as_str().unwrap_or_default().to_ascii_lowercase();
                let deps: Vec<String> = r
                    .get("dependsOn")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.as_str().map(str::to_ascii_lowercase))
                    .collect();
                if deps.iter().any(|d| !status_of.contains_key(d)) {
                    next.push(r);
                    continue;
                }
                let failed_dep = deps.iter().any(|d| !(200..300).contains(&status_of[d]));
                let resp = if failed_dep {
                    err(
                        424,
                        "FailedDependency",
                        "The request depends on a request that failed.",
                    )
                } else {
                    self.inner(&r)
                };
                status_of.insert(id, resp.status);
                let mut v = json!({"id": r["id"], "status": resp.status});
                let mut h = Map::new();
                for (k, val) in &resp.headers {
                    h.insert(k.clone(), json!(val));
                }
                if resp.body.is_some() {
                    h.insert("Content-Type".into(), json!("application/json"));
                }
                v["headers"] = Value::Object(h);
                if let Some(b) = resp.body {
                    v["body"] = b;
                }
                out.push(v);
            }
            remaining = next;
        }
        out.shuffle(&mut self.rng);
        ok(json!({ "responses": out }))
    }

    fn inner(&mut self, r: &Value) -> Resp {
        let method = r["method"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let url = r["url"].as_str().unwrap_or_default();
        let url = if url.starts_with('/') {
            url.to_string()
        } else {
            format!("/{url}")
        };
        let (p, qs) = url.split_once('?').unwrap_or((&url, ""));
        let path = decode(p);
        let query: Vec<(String, String)> = url::form_urlencoded::parse(qs.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let body = r.get("body").cloned();
        let throttle = if self.throttle_next > 0 {
            self.throttle_next -= 1;
            true
        } else {
            self.throttle_fraction > 0.0 && self.rng.random_bool(self.throttle_fraction)
        };
        let resp = if throttle {
            self.inner_throttled += 1;
            let mut t = err(429, "TooManyRequests", "Too many requests.");
            t.headers = vec![
                ("Retry-After".into(), self.throttle_secs.to_string()),
                (
                    "x-ms-throttle-scope".into(),
                    format!("Tenant_Application/Write/{CLIENT_ID}/{TENANT}"),
                ),
                (
                    "x-ms-throttle-information".into(),
                    "WriteLimitExceeded".into(),
                ),
            ];
            t
        } else {
            self.route(&method, &path, &query, &body)
        };
        self.record(&method, &path, &query, &body, true, resp.status);
        resp
    }

    // ---------------------------------------------------------------- paging

    fn page(&mut self, path: &str, items: Vec<Value>, query: &[(String, String)]) -> Resp {
        let top = match q(query, "$top") {
            Some(t) => match t.parse::<usize>() {
                Ok(n) if (1..=999).contains(&n) => n,
                _ => return bad("Invalid page size specified: '$top' must be between 1 and 999."),
            },
            None => 100,
        };
        let items = match q(query, "$filter") {
            Some(f) => match filter(items, f) {
                Ok(v) => v,
                Err(e) => return e,
            },
            None => items,
        };
        let skip = match q(query, "$skiptoken") {
            Some(t) => match URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| {
                    s.strip_prefix("skip:")
                        .and_then(|n| n.parse::<usize>().ok())
                }) {
                Some(n) => n,
                None => return bad("Invalid skip token."),
            },
            None => 0,
        };
        let sel = q(query, "$select").map(str::to_string);
        let page: Vec<Value> = items
            .iter()
            .skip(skip)
            .take(top)
            .map(|v| select(v, sel.as_deref()))
            .collect();
        let mut body = json!({ "value": page });
        if skip + top < items.len() {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in query.iter().filter(|(k, _)| k != "$skiptoken") {
                ser.append_pair(k, v);
            }
            ser.append_pair(
                "$skiptoken",
                &URL_SAFE_NO_PAD.encode(format!("skip:{}", skip + top)),
            );
            body["@odata.nextLink"] = json!(format!("{}{path}?{}", self.base(), ser.finish()));
        }
        ok(body)
    }

    fn one(&self, v: Option<&Value>, id: &str, query: &[(String, String)]) -> Resp {
        match v {
            Some(v) => ok(select(v, q(query, "$select"))),
            None => not_found(id),
        }
    }

    fn directory_object(&self, id: &str) -> Option<Value> {
        if let Some(u) = self.users.get(id) {
            let mut u = strip(u);
            u["@odata.type"] = json!("#microsoft.graph.user");
            return Some(u);
        }
        self.groups.get(id).map(|g| {
            let mut o = g.obj.clone();
            o["@odata.type"] = json!("#microsoft.graph.group");
            o
        })
    }

    // ---------------------------------------------------------------- routing

    pub(crate) fn route(
        &mut self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: &Option<Value>,
    ) -> Resp {
        let segs: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .map(str::to_string)
            .collect();
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        match (method, s.as_slice()) {
            ("GET", ["organization"]) => ok(json!({"value": [{"id": TENANT}]})),
            ("GET", ["subscribedSkus"]) => {
                let v: Vec<Value> = self.skus.values().cloned().collect();
                self.page(path, v, query)
            }
            // ------------------------------------------------------------ users
            ("GET", ["users"]) => {
                let v: Vec<Value> = self.users.values().cloned().collect();
                self.page(path, v, query)
            }
            ("POST", ["users"]) => self.create_user(body),
            ("GET", ["users", "delta"]) => self.delta("users", path, query),
            ("GET", ["users", id]) => {
                let id = self.find_user(id).unwrap_or_else(|| id.to_string());
                let v = self.users.get(&id).cloned();
                self.one(v.as_ref(), &id, query)
            }
            ("PATCH", ["users", id]) => self.patch_user(id, body),
            ("DELETE", ["users", id]) => match self.find_user(id) {
                Some(uid) => {
                    self.delete_user(&uid);
                    no_content()
                }
                None => not_found(id),
            },
            ("POST", ["users", id, "revokeSignInSessions"]) => match self.find_user(id) {
                Some(_) => ok(json!({"value": true})),
                None => not_found(id),
            },
            ("PUT", ["users", id, "manager", "$ref"]) => {
                let Some(uid) = self.find_user(id) else {
                    return not_found(id);
                };
                let m = match ref_id(body, &["users", "directoryObjects"]) {
                    Ok(m) => m,
                    Err(e) => return e,
                };
                if !self.users.contains_key(&m) {
                    return not_found(&m);
                }
                self.managers.insert(uid, m);
                no_content()
            }
            ("DELETE", ["users", id, "manager", "$ref"]) => match self.managers.remove(*id) {
                Some(_) => no_content(),
                None => not_found(id),
            },
            ("GET", ["users", id, "manager"]) => {
                match self
                    .managers
                    .get(*id)
                    .and_then(|m| self.directory_object(m))
                {
                    Some(m) => ok(select(&m, q(query, "$select"))),
                    None => not_found(id),
                }
            }
            (
                "GET",
                [
                    "users",
                    id,
                    "memberOf" | "transitiveMemberOf",
                    "microsoft.graph.group",
                ],
            ) => {
                let Some(uid) = self.find_user(id) else {
                    return not_found(id);
                };
                let v: Vec<Value> = self
                    .groups
                    .values()
                    .filter(|g| g.members.contains(&uid))
                    .map(|g| g.obj.clone())
                    .collect();
                self.page(path, v, query)
            }
            ("POST", ["users", id, "assignLicense"]) => self.assign_license(id, body),
            ("GET", ["users", id, "appRoleAssignments"]) => {
                let v: Vec<Value> = self
                    .app_roles
                    .values()
                    .filter(|a| a["principalId"] == *id)
                    .cloned()
                    .collect();
                self.page(path, v, query)
            }
            ("POST", ["directoryObjects", id, "checkMemberGroups"]) => {
                let ids: Vec<String> = body
                    .as_ref()
                    .and_then(|b| b.get("groupIds"))
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                if ids.len() > 20 {
                    return bad("groupIds: at most 20 values.");
                }
                let v: Vec<String> = ids
                    .into_iter()
                    .filter(|g| self.groups.get(g).is_some_and(|g| g.members.contains(*id)))
                    .collect();
                ok(json!({ "value": v }))
            }
            ("GET", ["directory", "deletedItems", "microsoft.graph.user"]) => {
                let v: Vec<Value> = self.deleted.values().cloned().collect();
                self.page(path, v, query)
            }
            ("POST", ["directory", "deletedItems", id, "restore"]) => {
                match self.deleted.remove(*id) {
                    Some(u) => {
                        self.users.insert(id.to_string(), u.clone());
                        self.log("users", id, None);
                        ok(strip(&u))
                    }
                    None => not_found(id),
                }
            }
            // ------------------------------------------------------------ AUs
            ("GET", ["directory", "administrativeUnits"]) => {
                let v: Vec<Value> = self.aus.values().map(|a| a.0.clone()).collect();
                self.page(path, v, query)
            }
            ("GET", ["directory", "administrativeUnits", au]) => {
                let v = self.aus.get(*au).map(|a| a.0.clone());
                self.one(v.as_ref(), au, query)
            }
            ("GET", ["directory", "administrativeUnits", au, "members"]) => {
                let Some(a) = self.aus.get(*au) else {
                    return not_found(au);
                };
                let v: Vec<Value> =
                    a.1.iter()
                        .filter_map(|m| self.directory_object(m))
                        .collect();
                self.page(path, v, query)
            }
            ("POST", ["directory", "administrativeUnits", au, "members", "$ref"]) => {
                let m = match ref_id(body, &["users", "directoryObjects", "groups"]) {
                    Ok(m) => m,
                    Err(e) => return e,
                };
                if self.directory_object(&m).is_none() {
                    return not_found(&m);
                }
                match self.aus.get_mut(*au) {
                    None => not_found(au),
                    Some(a) if a.1.contains(&m) => bad(ALREADY_EXISTS_MSG),
                    Some(a) => {
                        a.1.insert(m);
                        no_content()
                    }
                }
            }
            ("DELETE", ["directory", "administrativeUnits", au, "members", m, "$ref"]) => {
                match self.aus.get_mut(*au).map(|a| a.1.remove(*m)) {
                    Some(true) => no_content(),
                    Some(false) => not_found(m),
                    None => not_found(au),
                }
            }
            // ------------------------------------------------------------ groups
            ("GET", ["groups"]) => {
                let v: Vec<Value> = self.groups.values().map(|g| g.obj.clone()).collect();
                self.page(path, v, query)
            }
            ("POST", ["groups"]) => {
                let b = body.clone().unwrap_or_default();
                for k in [
                    "displayName",
                    "mailNickname",
                    "mailEnabled",
                    "securityEnabled",
                ] {
                    if b.get(k).is_none() {
                        return bad(&format!("Property '{k}' is required."));
                    }
                }
                let id = self.seed_group(b["displayName"].as_str().unwrap_or_default());
                created(self.groups[&id].obj.clone())
            }
            ("GET", ["groups", "delta"]) => self.delta("groups", path, query),
            ("GET", ["groups", g]) => {
                let v = self.groups.get(*g).map(|g| g.obj.clone());
                self.one(v.as_ref(), g, query)
            }
            ("PATCH", ["groups", g]) => self.patch_group(g, body),
            (
                "GET",
                [
                    "groups",
                    g,
                    rel @ ("members" | "owners" | "transitiveMembers"),
                ],
            ) => {
                let Some(gr) = self.groups.get(*g) else {
                    return not_found(g);
                };
                let set = if *rel == "owners" {
                    &gr.owners
                } else {
                    &gr.members
                };
                let v: Vec<Value> = set
                    .iter()
                    .filter_map(|m| self.directory_object(m))
                    .collect();
                self.page(path, v, query)
            }
            ("POST", ["groups", g, rel @ ("members" | "owners"), "$ref"]) => {
                let m = match ref_id(body, &["directoryObjects", "users", "groups"]) {
                    Ok(m) => m,
                    Err(e) => return e,
                };
                if !self.groups.contains_key(*g) {
                    return not_found(g);
                }
                if self.directory_object(&m).is_none() {
                    return not_found(&m);
                }
                let owners = *rel == "owners";
                let gr = self.groups.get_mut(*g).expect("checked");
                let set = if owners {
                    &mut gr.owners
                } else {
                    &mut gr.members
                };
                if !set.insert(m.clone()) {
                    return bad(&ALREADY_EXISTS_MSG.replace("'members'", &format!("'{rel}'")));
                }
                if !owners {
                    *self
                        .membership_changes
                        .entry((g.to_string(), m.clone()))
                        .or_default() += 1;
                    self.log("groups", g, Some((m, true)));
                }
                no_content()
            }
            ("DELETE", ["groups", g, rel @ ("members" | "owners"), m, "$ref"]) => {
                let owners = *rel == "owners";
                let Some(gr) = self.groups.get_mut(*g) else {
                    return not_found(g);
                };
                let set = if owners {
                    &mut gr.owners
                } else {
                    &mut gr.members
                };
                if !set.remove(*m) {
                    return not_found(m);
                }
                if !owners {
                    *self
                        .membership_changes
                        .entry((g.to_string(), m.to_string()))
                        .or_default() += 1;
                    self.log("groups", g, Some((m.to_string(), false)));
                }
                no_content()
            }
            // ------------------------------------------------------------ app roles
            ("GET", [sp]) if sp.starts_with("servicePrincipals(appId='") => {
                let app = sp
                    .trim_start_matches("servicePrincipals(appId='")
                    .trim_end_matches("')");
                let v = self.sps.values().find(|s| s["appId"] == app).cloned();
                self.one(v.as_ref(), app, query)
            }
            ("GET", ["servicePrincipals", sp, "appRoleAssignedTo"]) => {
                let v: Vec<Value> = self
                    .app_roles
                    .values()
                    .filter(|a| a["resourceId"] == *sp)
                    .cloned()
                    .collect();
                self.page(path, v, query)
            }
            ("POST", ["servicePrincipals", sp, "appRoleAssignedTo"]) => {
                self.assign_app_role(sp, body)
            }
            ("DELETE", ["servicePrincipals", sp, "appRoleAssignedTo", a]) => {
                match self.app_roles.get(*a) {
                    Some(x) if x["resourceId"] == *sp => {
                        self.app_roles.remove(*a);
                        no_content()
                    }
                    _ => not_found(a),
                }
            }
            // ------------------------------------------------------------ CA
            ("GET", ["identity", "conditionalAccess", "policies"]) => {
                let v: Vec<Value> = self.ca.values().cloned().collect();
                self.page(path, v, query)
            }
            ("GET", ["identity", "conditionalAccess", "policies", id]) => {
                let v = self.ca.get(*id).cloned();
                self.one(v.as_ref(), id, query)
            }
            ("PATCH", ["identity", "conditionalAccess", "policies", id]) => self.patch_ca(id, body),
            // ------------------------------------------------------------ roles
            ("GET", ["roleManagement", "directory", "roleDefinitions"]) => {
                let v: Vec<Value> = self.role_defs.values().cloned().collect();
                self.page(path, v, query)
            }
            ("GET", ["roleManagement", "directory", "roleAssignments"]) => {
                let v: Vec<Value> = self.role_assignments.values().cloned().collect();
                self.page(path, v, query)
            }
            ("POST", ["roleManagement", "directory", "roleAssignments"]) => {
                let b = body.clone().unwrap_or_default();
                let (Some(p), Some(r)) =
                    (b["principalId"].as_str(), b["roleDefinitionId"].as_str())
                else {
                    return bad("principalId and roleDefinitionId are required.");
                };
                let scope = b["directoryScopeId"].as_str().unwrap_or("/");
                if !self.role_defs.contains_key(r) {
                    return not_found(r);
                }
                if !self.users.contains_key(p) {
                    return not_found(p);
                }
                let dup = self.role_assignments.values().any(|a| {
                    a["principalId"] == p
                        && a["roleDefinitionId"] == r
                        && a["directoryScopeId"] == scope
                });
                if dup {
                    return bad(
                        "A conflicting object with one or more of the specified property values is present in the directory.",
                    );
                }
                let id = new_id();
                let v = json!({"id": id, "principalId": p, "roleDefinitionId": r, "directoryScopeId": scope});
                self.role_assignments.insert(id, v.clone());
                created(v)
            }
            ("DELETE", ["roleManagement", "directory", "roleAssignments", id]) => {
                match self.role_assignments.remove(*id) {
                    Some(_) => no_content(),
                    None => not_found(id),
                }
            }
            ("POST", ["roleManagement", "directory", coll])
                if coll.ends_with("ScheduleRequests") =>
            {
                let surface = if coll.starts_with("roleEligibility") {
                    "roleEligibility"
                } else {
                    "roleAssignment"
                };
                self.pim_post(surface, body)
            }
            ("GET", ["roleManagement", "directory", coll, id])
                if coll.ends_with("ScheduleRequests") =>
            {
                let v = self.pim_requests.get(*id).cloned();
                self.one(v.as_ref(), id, query)
            }
            ("GET", ["roleManagement", "directory", coll]) if coll.ends_with("Schedules") => {
                let surface = if coll.starts_with("roleEligibility") {
                    "roleEligibility"
                } else {
                    "roleAssignment"
                };
                let v = self.pim_list(surface);
                self.page(path, v, query)
            }
            ("POST", ["identityGovernance", "privilegedAccess", "group", coll])
                if coll.ends_with("ScheduleRequests") =>
            {
                let surface = if coll.starts_with("eligibility") {
                    "groupEligibility"
                } else {
                    "groupAssignment"
                };
                self.pim_post(surface, body)
            }
            ("GET", ["identityGovernance", "privilegedAccess", "group", coll, id])
                if coll.ends_with("ScheduleRequests") =>
            {
                let v = self.pim_requests.get(*id).cloned();
                self.one(v.as_ref(), id, query)
            }
            ("GET", ["identityGovernance", "privilegedAccess", "group", coll])
                if coll.ends_with("Schedules") =>
            {
                let surface = if coll.starts_with("eligibility") {
                    "groupEligibility"
                } else {
                    "groupAssignment"
                };
                let v = self.pim_list(surface);
                self.page(path, v, query)
            }
            // ------------------------------------------------------------ access packages
            (
                "GET",
                [
                    "identityGovernance",
                    "entitlementManagement",
                    "accessPackages",
                ],
            ) => {
                let v: Vec<Value> = self.packages.values().cloned().collect();
                self.page(path, v, query)
            }
            (
                "GET",
                [
                    "identityGovernance",
                    "entitlementManagement",
                    "assignmentPolicies",
                ],
            ) => {
                let v: Vec<Value> = self.policies.values().cloned().collect();
                self.page(path, v, query)
            }
            ("GET", ["identityGovernance", "entitlementManagement", "assignments"]) => {
                let v: Vec<Value> = self.ap_assignments.values().cloned().collect();
                self.page(path, v, query)
            }
            (
                "GET",
                [
                    "identityGovernance",
                    "entitlementManagement",
                    "assignmentRequests",
                ],
            ) => {
                let ids: Vec<String> = self.ap_requests.keys().cloned().collect();
                for id in &ids {
                    self.ap_advance(id);
                }
                let v: Vec<Value> = self.ap_requests.values().cloned().collect();
                self.page(path, v, query)
            }
            (
                "POST",
                [
                    "identityGovernance",
                    "entitlementManagement",
                    "assignmentRequests",
                ],
            ) => self.ap_post(body),
            (
                "GET",
                [
                    "identityGovernance",
                    "entitlementManagement",
                    "assignmentRequests",
                    id,
                ],
            ) => {
                self.ap_advance(id);
                let v = self.ap_requests.get(*id).cloned();
                self.one(v.as_ref(), id, query)
            }
            (
                "POST",
                [
                    "identityGovernance",
                    "entitlementManagement",
                    "assignmentRequests",
                    id,
                    "cancel",
                ],
            ) => match self.ap_requests.get_mut(*id) {
                None => not_found(id),
                Some(r)
                    if matches!(
                        r["state"].as_str(),
                        Some("submitted" | "pendingApproval" | "scheduled")
                    ) =>
                {
                    r["state"] = json!("canceled");
                    r["status"] = json!("Canceled");
                    no_content()
                }
                Some(_) => bad("The request cannot be canceled in its current state."),
            },
            _ => err(
                400,
                "BadRequest",
                &format!("Resource not found for the segment '{path}'."),
            ),
        }
    }

    fn create_user(&mut self, body: &Option<Value>) -> Resp {
        let b = body.clone().unwrap_or_default();
        let Some(m) = b.as_object() else {
            return bad("Invalid user payload.");
        };
        for k in m.keys() {
            if !USER_PROPS.contains(&k.as_str()) {
                return bad(&format!(
                    "Property '{k}' does not exist on type 'microsoft.graph.user'."
                ));
            }
        }
        for k in [
            "accountEnabled",
            "displayName",
            "mailNickname",
            "userPrincipalName",
            "passwordProfile",
        ] {
            if m.get(k).is_none_or(Value::is_null) {
                return bad(&format!("Property '{k}' is required."));
            }
        }
        let pw = b["passwordProfile"]["password"]
            .as_str()
            .unwrap_or_default();
        if pw.len() < 8 {
            return bad(
                "The specified password does not comply with password complexity requirements.",
            );
        }
        let upn = b["userPrincipalName"].as_str().unwrap_or_default();
        if !upn.contains('@') {
            return bad("Property userPrincipalName is invalid.");
        }
        if self.find_user(upn).is_some() {
            return bad(UPN_TAKEN_MSG);
        }
        let id = new_id();
        let mut u = b.clone();
        u["id"] = json!(id);
        u["assignedLicenses"] = json!([]);
        self.users.insert(id.clone(), u.clone());
        self.log("users", &id, None);
        created(strip(&u))
    }

    fn patch_user(&mut self, id: &str, body: &Option<Value>) -> Resp {
        let Some(uid) = self.find_user(id) else {
            return not_found(id);
        };
        let Some(m) = body.as_ref().and_then(Value::as_object) else {
            return bad("Invalid user payload.");
        };
        for k in m.keys() {
            if !USER_PROPS.contains(&k.as_str()) {
                return bad(&format!(
                    "Property '{k}' does not exist on type 'microsoft.graph.user'."
                ));
            }
        }
        let u = self.users.get_mut(&uid).expect("exists");
        for (k, v) in m {
            u[k] = v.clone();
        }
        self.log("users", &uid, None);
        no_content()
    }

    fn patch_group(&mut self, g: &str, body: &Option<Value>) -> Resp {
        if !self.groups.contains_key(g) {
            return not_found(g);
        }
        let b = body.clone().unwrap_or_default();
        if let Some(binds) = b.get("members@odata.bind") {
            let Some(list) = binds.as_array() else {
                return bad("members@odata.bind must be an array.");
            };
            if list.len() > 20 {
                return bad("A maximum of 20 members can be added in a single request.");
            }
            let mut ids = Vec::new();
            for r in list {
                match ref_id(
                    &Some(json!({"@odata.id": r})),
                    &["directoryObjects", "users", "groups"],
                ) {
                    Ok(id) => ids.push(id),
                    Err(e) => return e,
                }
            }
            for id in &ids {
                if self.directory_object(id).is_none() {
                    return not_found(id);
                }
                if self.groups[g].members.contains(id) {
                    return bad(ALREADY_EXISTS_MSG);
                }
            }
            for id in ids {
                self.groups
                    .get_mut(g)
                    .expect("exists")
                    .members
                    .insert(id.clone());
                *self
                    .membership_changes
                    .entry((g.to_string(), id.clone()))
                    .or_default() += 1;
                self.log("groups", g, Some((id, true)));
            }
        }
        for (k, v) in b.as_object().into_iter().flatten() {
            if k != "members@odata.bind" {
                self.groups.get_mut(g).expect("exists").obj[k] = v.clone();
            }
        }
        no_content()
    }

    fn assign_license(&mut self, id: &str, body: &Option<Value>) -> Resp {
        let Some(uid) = self.find_user(id) else {
            return not_found(id);
        };
        let b = body.clone().unwrap_or_default();
        let (Some(add), Some(remove)) =
            (b["addLicenses"].as_array(), b["removeLicenses"].as_array())
        else {
            return bad("addLicenses and removeLicenses are required.");
        };
        let mut held: Vec<Value> = self.users[&uid]["assignedLicenses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for r in remove {
            let sku = r.as_str().unwrap_or_default();
            let before = held.len();
            held.retain(|h| h["skuId"] != sku);
            if held.len() == before {
                return bad("User does not have a corresponding license.");
            }
        }
        for a in add {
            let sku = a["skuId"].as_str().unwrap_or_default();
            let Some(s) = self.skus.get(sku) else {
                return bad(&format!(
                    "License {sku} does not correspond to a valid company License."
                ));
            };
            let plans: Vec<&str> = s["servicePlans"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["servicePlanId"].as_str())
                .collect();
            let disabled = a["disabledPlans"].as_array().cloned().unwrap_or_default();
            if disabled
                .iter()
                .any(|d| !d.as_str().is_some_and(|d| plans.contains(&d)))
            {
                return bad("Invalid disabled plan for the license.");
            }
            held.retain(|h| h["skuId"] != sku);
            held.push(json!({"skuId": sku, "disabledPlans": disabled}));
        }
        let u = self.users.get_mut(&uid).expect("exists");
        u["assignedLicenses"] = json!(held);
        ok(strip(u))
    }

    fn assign_app_role(&mut self, sp: &str, body: &Option<Value>) -> Resp {
        let b = body.clone().unwrap_or_default();
        let (Some(p), Some(r), Some(role)) = (
            b["principalId"].as_str(),
            b["resourceId"].as_str(),
            b["appRoleId"].as_str(),
        ) else {
            return bad("principalId, resourceId and appRoleId are required.");
        };
        let Some(s) = self.sps.get(sp) else {
            return not_found(sp);
        };
        if r != sp {
            return bad("resourceId must match the service principal in the URL.");
        }
        let role_ok = role == "00000000-0000-0000-0000-000000000000"
            || s["appRoles"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|x| x["id"] == role);
        if !role_ok {
            return bad("Permission entry does not exist on the application.");
        }
        if self.directory_object(p).is_none() {
            return not_found(p);
        }
        if self
            .app_roles
            .values()
            .any(|a| a["principalId"] == p && a["resourceId"] == r && a["appRoleId"] == role)
        {
            return bad(&format!("{APP_ROLE_EXISTS_MSG}."));
        }
        let id = URL_SAFE_NO_PAD.encode(new_id().as_bytes());
        let v = json!({"id": id, "principalId": p, "resourceId": r, "appRoleId": role,
            "principalType": "User", "createdDateTime": "2026-01-01T00:00:00Z"});
        self.app_roles.insert(id, v.clone());
        created(v)
    }

    fn patch_ca(&mut self, id: &str, body: &Option<Value>) -> Resp {
        if !self.ca.contains_key(id) {
            return not_found(id);
        }
        let b = body.clone().unwrap_or_default();
        let Some(m) = b.as_object() else {
            return bad("Invalid policy payload.");
        };
        for k in m.keys() {
            if ![
                "displayName",
                "state",
                "conditions",
                "grantControls",
                "sessionControls",
            ]
            .contains(&k.as_str())
            {
                return bad(&format!(
                    "Property '{k}' does not exist on type 'microsoft.graph.conditionalAccessPolicy'."
                ));
            }
        }
        if let Some(c) = m.get("conditions") {
            // Complex properties are replaced as a whole: validate the new object.
            if c.get("applications").is_none() {
                return bad("conditions.applications is required.");
            }
            let nonempty = |k: &str| {
                c.pointer(&format!("/users/{k}"))
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
            };
            if !(nonempty("includeUsers") || nonempty("includeGroups") || nonempty("includeRoles"))
            {
                return bad("conditions.users must include users, groups or roles.");
            }
        }
        let p = self.ca.get_mut(id).expect("exists");
        for (k, v) in m {
            p[k] = v.clone();
        }
        no_content()
    }

    fn pim_key(surface: &str, b: &Value) -> Option<String> {
        let p = b["principalId"].as_str()?;
        if surface.starts_with("group") {
            Some(format!(
                "{p}|{}|{}",
                b["groupId"].as_str()?,
                b["accessId"].as_str()?
            ))
        } else {
            Some(format!(
                "{p}|{}|{}",
                b["roleDefinitionId"].as_str()?,
                b["directoryScopeId"].as_str().unwrap_or("/")
            ))
        }
    }

    fn pim_list(&self, surface: &str) -> Vec<Value> {
        self.pim_schedules
            .iter()
            .filter(|((s, _), _)| s == surface)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn pim_post(&mut self, surface: &str, body: &Option<Value>) -> Resp {
        let b = body.clone().unwrap_or_default();
        let action = b["action"].as_str().unwrap_or_default();
        let allowed: &[&str] = if surface.ends_with("Eligibility") {
            &crate::commands::ELIGIBILITY_ACTIONS
        } else {
            &crate::commands::ASSIGNMENT_ACTIONS
        };
        if !allowed.contains(&action) {
            return bad(&format!("Invalid action '{action}'."));
        }
        let Some(key) = Self::pim_key(surface, &b) else {
            return bad(
                "principalId and the target (roleDefinitionId/directoryScopeId or groupId/accessId) are required.",
            );
        };
        if surface.starts_with("group") {
            if !matches!(b["accessId"].as_str(), Some("member" | "owner")) {
                return bad("accessId must be member or owner.");
            }
            if !self
                .groups
                .contains_key(b["groupId"].as_str().unwrap_or_default())
            {
                return not_found(b["groupId"].as_str().unwrap_or_default());
            }
        } else if !self
            .role_defs
            .contains_key(b["roleDefinitionId"].as_str().unwrap_or_default())
        {
            return not_found(b["roleDefinitionId"].as_str().unwrap_or_default());
        }
        if b["justification"].as_str().is_none_or(str::is_empty) {
            return err(
                400,
                "RoleAssignmentRequestPolicyValidationFailed",
                "JustificationRule: justification is required.",
            );
        }
        let removes = crate::commands::action_removes(action);
        if !removes && b.pointer("/scheduleInfo/expiration/type").is_none() {
            return bad("scheduleInfo.expiration is required.");
        }
        let sk = (surface.to_string(), key.clone());
        let exists = self.pim_schedules.contains_key(&sk);
        let eligible_surface = if surface.starts_with("group") {
            "groupEligibility"
        } else {
            "roleEligibility"
        };
        let status = match action {
            "adminAssign" if exists => {
                return err(
                    400,
                    "RoleAssignmentExists",
                    "The Role assignment already exists.",
                );
            }
            "selfActivate" if exists => {
                return err(
                    400,
                    "RoleAssignmentExists",
                    "The Role assignment already exists.",
                );
            }
            "selfActivate"
                if !self
                    .pim_schedules
                    .contains_key(&(eligible_surface.to_string(), key.clone())) =>
            {
                return err(
                    400,
                    "RoleAssignmentDoesNotExist",
                    "The principal is not eligible for the role.",
                );
            }
            "adminAssign" | "selfActivate" => {
                self.pim_schedules.insert(
                    sk,
                    json!({"id": new_id(), "principalId": b["principalId"], "roleDefinitionId": b["roleDefinitionId"],
                        "directoryScopeId": b["directoryScopeId"], "groupId": b["groupId"], "accessId": b["accessId"],
                        "memberType": "Direct", "status": "Provisioned", "scheduleInfo": b["scheduleInfo"]}),
                );
                if action == "selfActivate" {
                    "Granted"
                } else {
                    "Provisioned"
                }
            }
            _ if !exists => {
                return err(
                    400,
                    "RoleAssignmentDoesNotExist",
                    "The Role assignment does not exist.",
                );
            }
            "adminRemove" | "selfDeactivate" => {
                self.pim_schedules.remove(&sk);
                "Revoked"
            }
            _ => {
                if let Some(s) = self.pim_schedules.get_mut(&sk) {
                    s["scheduleInfo"] = b["scheduleInfo"].clone();
                }
                "Provisioned"
            }
        };
        let id = new_id();
        let mut v = b.clone();
        v["id"] = json!(id);
        v["status"] = json!(status);
        v["isValidationOnly"] = json!(false);
        v["createdDateTime"] = json!("2026-01-01T00:00:00Z");
        self.pim_requests.insert(id, v.clone());
        created(v)
    }

    fn ap_post(&mut self, body: &Option<Value>) -> Resp {
        let b = body.clone().unwrap_or_default();
        let rt = b["requestType"].as_str().unwrap_or_default();
        let id = new_id();
        let req = match rt {
            "adminAdd" => {
                let a = &b["assignment"];
                let (Some(t), Some(pol), Some(p)) = (
                    a["targetId"].as_str(),
                    a["assignmentPolicyId"].as_str(),
                    a["accessPackageId"].as_str(),
                ) else {
                    return bad(
                        "assignment.targetId, assignmentPolicyId and accessPackageId are required.",
                    );
                };
                if !self.packages.contains_key(p) {
                    return not_found(p);
                }
                match self.policies.get(pol) {
                    Some(x) if x["accessPackage"]["id"] == p => {}
                    _ => return bad("The policy does not belong to the access package."),
                }
                if !self.users.contains_key(t) {
                    return not_found(t);
                }
                let held = self
                    .ap_assignments
                    .values()
                    .any(|x| x["target"]["objectId"] == t && x["accessPackage"]["id"] == p);
                if held {
                    return bad(
                        "The target already has an active assignment for this access package.",
                    );
                }
                let approval = self.policies[pol]["requiresApproval"] == true;
                json!({"id": id, "requestType": rt, "state": if approval {"pendingApproval"} else {"submitted"},
                    "status": "Accepted", "createdDateTime": "2026-01-01T00:00:00Z",
                    "accessPackage": {"id": p}, "assignmentPolicy": {"id": pol}, "target": {"objectId": t},
                    "assignment": a})
            }
            "adminRemove" => {
                let Some(aid) = b["assignment"]["id"].as_str() else {
                    return bad("assignment.id is required.");
                };
                let Some(asg) = self.ap_assignments.get(aid) else {
                    return not_found(aid);
                };
                json!({"id": id, "requestType": rt, "state": "submitted", "status": "Accepted",
                    "createdDateTime": "2026-01-01T00:00:00Z",
                    "accessPackage": asg["accessPackage"], "target": asg["target"],
                    "assignment": {"id": aid}})
            }
            "" => return bad("requestType is required."),
            other => {
                return bad(&format!(
                    "requestType '{other}' is not allowed for an application."
                ));
            }
        };
        self.ap_requests.insert(id, req.clone());
        created(req)
    }

    /// One step of the asynchronous life of a request, per observation.
    fn ap_advance(&mut self, id: &str) {
        let Some(r) = self.ap_requests.get(id).cloned() else {
            return;
        };
        let next = match r["state"].as_str() {
            Some("submitted") => "delivering",
            Some("delivering") => "delivered",
            _ => return,
        };
        let r = self.ap_requests.get_mut(id).expect("exists");
        r["state"] = json!(next);
        r["status"] = json!(if next == "delivered" {
            "Delivered"
        } else {
            "Delivering"
        });
        if next == "delivered" {
            let r = r.clone();
            if r["requestType"] == "adminAdd" {
                let aid = new_id();
                self.ap_assignments.insert(
                    aid.clone(),
                    json!({"id": aid, "state": "delivered", "target": r["target"],
                        "accessPackage": r["accessPackage"], "assignmentPolicy": r["assignmentPolicy"]}),
                );
            } else if let Some(aid) = r["assignment"]["id"].as_str() {
                self.ap_assignments.remove(aid);
            }
        }
    }

    // ---------------------------------------------------------------- delta

    fn delta(&mut self, kind: &'static str, path: &str, query: &[(String, String)]) -> Resp {
        if q(query, "$top").is_some() || q(query, "$orderby").is_some() {
            return unsupported_query("$top and $orderby are not supported with delta.");
        }
        let initial = format!("{}{path}", self.base());
        if self.delta_gone {
            self.delta_gone = false;
            let mut r = err(410, "SyncStateInvalid", "Resync required.");
            r.headers.push(("Location".into(), initial));
            return r;
        }
        let link = |tok: String, next: bool| {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            ser.append_pair(if next { "$skiptoken" } else { "$deltatoken" }, &tok);
            format!("{initial}?{}", ser.finish())
        };
        let enc = |s: String| URL_SAFE_NO_PAD.encode(s);
        if q(query, "$deltatoken") == Some("latest") {
            return ok(
                json!({"value": [], "@odata.deltaLink": link(enc(format!("{kind}:{}", self.seq)), false)}),
            );
        }
        // Decode the token: skip:<since>:<upto>:<offset> or <since>.
        let tok = q(query, "$skiptoken").or(q(query, "$deltatoken"));
        let (since, upto, offset) = match tok {
            None => (0u64, self.seq, 0usize),
            Some(t) => {
                let s = URL_SAFE_NO_PAD
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_default();
                let parts: Vec<&str> = s.split(':').collect();
                match parts.as_slice() {
                    [k, "skip", a, b, o] if *k == kind => match (a.parse(), b.parse(), o.parse()) {
                        (Ok(a), Ok(b), Ok(o)) => (a, b, o),
                        _ => return bad("Invalid delta token."),
                    },
                    [k, a] if *k == kind => match a.parse::<u64>() {
                        Ok(a) if a < self.delta_min_valid => {
                            return err(
                                400,
                                "syncStateNotFound",
                                "The sync state generation is not found.",
                            );
                        }
                        Ok(a) => (a, self.seq, 0),
                        _ => return bad("Invalid delta token."),
                    },
                    _ => return bad("Invalid delta token."),
                }
            }
        };
        // Entries: one per object (users) or one per (group, member chunk).
        let entries = self.delta_entries(kind, since, upto);
        let page = self.delta_page;
        let slice: Vec<Value> = entries.iter().skip(offset).take(page).cloned().collect();
        let mut body = json!({ "value": slice });
        if offset + page < entries.len() {
            body["@odata.nextLink"] = json!(link(
                enc(format!("{kind}:skip:{since}:{upto}:{}", offset + page)),
                true
            ));
        } else {
            body["@odata.deltaLink"] = json!(link(enc(format!("{kind}:{upto}")), false));
        }
        ok(body)
    }

    fn delta_entries(&self, kind: &str, since: u64, upto: u64) -> Vec<Value> {
        let changed: BTreeSet<&String> = self
            .changes
            .iter()
            .filter(|(s, k, _, _)| *k == kind && *s > since && *s <= upto)
            .map(|(_, _, id, _)| id)
            .collect();
        let mut out = Vec::new();
        for id in changed {
            if kind == "users" {
                match self.users.get(id) {
                    Some(u) => out.push(select(
                        u,
                        Some("displayName,accountEnabled,userPrincipalName,employeeId"),
                    )),
                    None => {
                        let reason = if self.deleted.contains_key(id) {
                            "changed"
                        } else {
                            "deleted"
                        };
                        out.push(json!({"id": id, "@removed": {"reason": reason}}));
                    }
                }
                continue;
            }
            let Some(g) = self.groups.get(id) else {
                out.push(json!({"id": id, "@removed": {"reason": "deleted"}}));
                continue;
            };
            let members: Vec<Value> = if since == 0 {
                g.members
                    .iter()
                    .map(|m| json!({"@odata.type": "#microsoft.graph.user", "id": m}))
                    .collect()
            } else {
                let mut last: BTreeMap<&String, bool> = BTreeMap::new();
                for (s, k, gid, m) in &self.changes {
                    if *k == "groups"
                        && gid == id
                        && *s > since
                        && *s <= upto
                        && let Some((mid, added)) = m
                    {
                        last.insert(mid, *added);
                    }
                }
                last.into_iter()
                    .map(|(m, added)| {
                        if added {
                            json!({"@odata.type": "#microsoft.graph.user", "id": m})
                        } else {
                            json!({"@odata.type": "#microsoft.graph.user", "id": m, "@removed": {"reason": "deleted"}})
                        }
                    })
                    .collect()
            };
            // Large groups are split: the same group id appears on several entries.
            let chunks: Vec<Vec<Value>> = if members.is_empty() {
                vec![Vec::new()]
            } else {
                members
                    .chunks(self.delta_page)
                    .map(<[Value]>::to_vec)
                    .collect()
            };
            for c in chunks {
                out.push(
                    json!({"id": id, "displayName": g.obj["displayName"], "members@delta": c}),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_parses_eq_clauses_and_rejects_others() {
        let items = vec![
            json!({"id": "1", "target": {"objectId": "u1"}, "accessPackage": {"id": "p"}}),
            json!({"id": "2", "target": {"objectId": "u2"}, "accessPackage": {"id": "p"}}),
        ];
        let r = filter(
            items.clone(),
            "target/objectId eq 'u2' and accessPackage/id eq 'p'",
        )
        .ok()
        .unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["id"], "2");
        assert!(filter(items.clone(), "startswith(displayName,'a')").is_err());
        assert!(filter(items, "id ne '1'").is_err());
    }
}
