//! A faithful in-process mock of the IAM Query API (feature `test-support`).
//!
//! Every request must carry a valid SigV4 signature (recomputed here with the
//! known secret: `MissingAuthenticationToken`, `InvalidClientTokenId`,
//! `IncompleteSignature`, `SignatureDoesNotMatch`, `RequestExpired` otherwise),
//! `Version=2010-05-08` and a known `Action`. State: users (tags), groups, managed
//! policies, access keys, login profiles. Real limits: 10 groups and 10 managed
//! policies per user (`LimitExceeded`), 2 access keys, user names `[\w+=,.@-]{1,64}`,
//! `DeleteConflict` while a user still has groups, policies, keys or a password.
//! Add-when-member and remove-when-not-member succeed silently, as IAM does.
//! Faults: `Throttling` (400, no `Retry-After`, as IAM sends it), 503, 403.

// Handlers return a ready `Response` as their error value; size does not matter here.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use iga_adapter::Secret;
use iga_http::sigv4::{self, AwsCredentials, SigningInput};

use crate::config::IamConfig;
use crate::xml::escape;

/// The mock's access key id.
pub const TEST_ACCESS_KEY_ID: &str = "AKIAIGATESTEXAMPLE01";
/// The mock's secret access key (test use only).
pub const TEST_SECRET: &str = "iga/TEST+secret/key/for/the/iam/mock/0001";
const NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// A fault the mock answers the next request with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MockFault {
    /// 400 `Throttling` "Rate exceeded".
    Throttling,
    /// 503 `ServiceUnavailable`.
    Unavailable,
    /// 403 `AccessDenied`.
    AccessDenied,
    /// 403 `InvalidClientTokenId`.
    InvalidClientTokenId,
}

#[derive(Debug, Clone, Default)]
struct User {
    id: String,
    tags: Vec<(String, String)>,
    groups: BTreeSet<String>,
    policies: BTreeSet<String>,
    keys: Vec<(String, String)>, // (id, status)
    login_profile: bool,
}

#[derive(Default)]
struct State {
    users: BTreeMap<String, User>,
    groups: BTreeSet<String>,
    policies: BTreeSet<String>,
    next: u64,
    faults: VecDeque<MockFault>,
    calls: u64,
    by_action: HashMap<String, u64>,
    rejected_signatures: u64,
}

type Shared = Arc<Mutex<State>>;

/// The running mock. Dropping it stops the server.
pub struct IamMock {
    addr: SocketAddr,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for IamMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn xml_resp(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/xml")
        .body(Body::from(body))
        .expect("response")
}

fn err(status: u16, code: &str, message: &str) -> Response {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    xml_resp(
        StatusCode::from_u16(status).expect("status"),
        format!(
            "<ErrorResponse xmlns=\"{NS}\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>mock-req</RequestId></ErrorResponse>",
            escape(message)
        ),
    )
}

fn ok(action: &str, result: &str) -> Response {
    let inner = if result.is_empty() {
        String::new()
    } else {
        format!("<{action}Result>{result}</{action}Result>")
    };
    xml_resp(
        StatusCode::OK,
        format!(
            "<{action}Response xmlns=\"{NS}\">{inner}<ResponseMetadata><RequestId>mock-req</RequestId></ResponseMetadata></{action}Response>"
        ),
    )
}

impl IamMock {
    /// Start on a random loopback port. Panics if it cannot bind (tests must not skip).
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("iam mock: cannot bind a loopback port");
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
            axum::serve(listener, app).await.expect("iam mock server");
        });
        Self { addr, state, task }
    }

    /// Endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The mock's credentials.
    pub fn credentials() -> AwsCredentials {
        AwsCredentials::new(TEST_ACCESS_KEY_ID, TEST_SECRET)
    }

    /// A connector configuration pointed at this mock.
    pub fn config(&self) -> IamConfig {
        IamConfig::new(Self::credentials())
            .and_then(|c| c.with_endpoint(&self.endpoint()))
            .expect("mock config")
            .with_instance("iam-mock")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("mock state")
    }

    /// Create a group.
    pub fn seed_group(&self, name: &str) {
        self.lock().groups.insert(name.to_string());
    }

    /// Create a managed policy; returns its ARN.
    pub fn seed_policy(&self, name: &str) -> String {
        let arn = format!("arn:aws:iam::123456789012:policy/{name}");
        self.lock().policies.insert(arn.clone());
        arn
    }

    /// Give a user an active access key and a console password; returns the key id.
    pub fn seed_credentials(&self, user: &str) -> Option<String> {
        let mut s = self.lock();
        s.next += 1;
        let id = format!("AKIAMOCK{:012}", s.next);
        let u = s.users.get_mut(user)?;
        u.keys.push((id.clone(), "Active".into()));
        u.login_profile = true;
        Some(id)
    }

    /// Status of each access key of a user.
    pub fn key_statuses(&self, user: &str) -> Vec<String> {
        self.lock()
            .users
            .get(user)
            .map(|u| u.keys.iter().map(|(_, s)| s.clone()).collect())
            .unwrap_or_default()
    }

    /// Whether the user has a console password.
    pub fn has_login_profile(&self, user: &str) -> bool {
        self.lock().users.get(user).is_some_and(|u| u.login_profile)
    }

    /// Groups of a user (None when the user does not exist).
    pub fn groups_of(&self, user: &str) -> Option<Vec<String>> {
        self.lock()
            .users
            .get(user)
            .map(|u| u.groups.iter().cloned().collect())
    }

    /// Answer the next request with `fault`.
    pub fn inject(&self, fault: MockFault) {
        self.lock().faults.push_back(fault);
    }

    /// Requests received (including rejected ones).
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// Requests of one action that passed authentication.
    pub fn calls_of(&self, action: &str) -> u64 {
        self.lock().by_action.get(action).copied().unwrap_or(0)
    }

    /// Requests rejected for their signature.
    pub fn rejected_signatures(&self) -> u64 {
        self.lock().rejected_signatures
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn parse_amz_date(s: &str) -> Option<u64> {
    // YYYYMMDDTHHMMSSZ → Unix seconds (days from civil, H. Hinnant).
    if s.len() != 16 {
        return None;
    }
    let n = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, m, d) = (n(0, 4)?, n(4, 6)?, n(6, 8)?);
    let (hh, mm, ss) = (n(9, 11)?, n(11, 13)?, n(13, 15)?);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

fn verify(
    s: &mut State,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Response> {
    let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(err(
            403,
            "MissingAuthenticationToken",
            "Request is missing Authentication Token",
        ));
    };
    let Some(p) = sigv4::parse_authorization(auth) else {
        return Err(err(
            400,
            "IncompleteSignature",
            "Authorization header requires Credential, SignedHeaders and Signature",
        ));
    };
    if p.access_key_id != TEST_ACCESS_KEY_ID {
        return Err(err(
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ));
    }
    let Some(date) = headers.get("x-amz-date").and_then(|v| v.to_str().ok()) else {
        return Err(err(
            400,
            "IncompleteSignature",
            "Date must be in ISO-8601 'basic format'. Got no x-amz-date",
        ));
    };
    let Some(t) = parse_amz_date(date) else {
        return Err(err(
            400,
            "IncompleteSignature",
            "Date must be in ISO-8601 'basic format'",
        ));
    };
    if t.abs_diff(now_secs()) > 15 * 60 {
        return Err(err(400, "RequestExpired", "Request has expired."));
    }
    let want_scope = format!("{}/us-east-1/iam/aws4_request", &date[..8]);
    if p.scope != want_scope {
        s.rejected_signatures += 1;
        return Err(err(
            403,
            "SignatureDoesNotMatch",
            &format!("Credential should be scoped to a valid region and service: {want_scope}"),
        ));
    }
    if !p.signed_headers.iter().any(|h| h == "host")
        || !p.signed_headers.iter().any(|h| h == "x-amz-date")
    {
        return Err(err(
            400,
            "IncompleteSignature",
            "host and x-amz-date must be signed",
        ));
    }
    let mut signed = Vec::new();
    for h in &p.signed_headers {
        let v = headers
            .get_all(h.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        signed.push((h.clone(), v));
    }
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let input = SigningInput {
        method: method.as_str(),
        path: uri.path(),
        query: &query,
        headers: &signed,
        payload: body,
        region: "us-east-1",
        service: "iam",
        amz_date: date,
    };
    let expected = sigv4::signature(&Secret::new(TEST_SECRET), &input);
    if expected != p.signature {
        s.rejected_signatures += 1;
        return Err(err(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    Ok(())
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

fn handle(st: &Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = st.lock().expect("mock state");
    s.calls += 1;
    if let Some(f) = s.faults.pop_front() {
        return match f {
            MockFault::Throttling => err(400, "Throttling", "Rate exceeded"),
            MockFault::Unavailable => err(503, "ServiceUnavailable", "Service is unavailable"),
            MockFault::AccessDenied => err(
                403,
                "AccessDenied",
                "User: arn:aws:iam::123456789012:user/iga is not authorized to perform this action",
            ),
            MockFault::InvalidClientTokenId => err(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            ),
        };
    }
    if let Err(r) = verify(&mut s, &method, &uri, &headers, &body) {
        return r;
    }
    if method != Method::POST {
        return err(
            400,
            "InvalidAction",
            "The IAM Query API takes POST with a form body here",
        );
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if form.get("Version").map(String::as_str) != Some("2010-05-08") {
        return err(400, "InvalidAction", "Could not find operation for version");
    }
    let action = form.get("Action").cloned().unwrap_or_default();
    *s.by_action.entry(action.clone()).or_default() += 1;
    action_of(&mut s, &action, &form)
}

fn page(
    items: Vec<String>,
    form: &HashMap<String, String>,
) -> Result<(Vec<String>, Option<String>), Response> {
    let max = match form.get("MaxItems") {
        None => 100,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(err(
                    400,
                    "ValidationError",
                    "1 validation error detected: Value at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000",
                ));
            }
        },
    };
    let start = match form.get("Marker") {
        None => 0,
        Some(m) => match m.strip_prefix("mk-").and_then(|x| x.parse::<usize>().ok()) {
            Some(n) if n <= items.len() => n,
            _ => return Err(err(400, "InvalidInput", "Invalid Marker")),
        },
    };
    let end = (start + max).min(items.len());
    let next = (end < items.len()).then(|| format!("mk-{end}"));
    Ok((items[start..end].to_vec(), next))
}

fn listed(action: &str, field: &str, members: &[String], next: Option<String>) -> Response {
    let mut r = format!("<{field}>");
    for m in members {
        r.push_str(&format!("<member>{m}</member>"));
    }
    r.push_str(&format!(
        "</{field}><IsTruncated>{}</IsTruncated>",
        next.is_some()
    ));
    if let Some(n) = next {
        r.push_str(&format!("<Marker>{n}</Marker>"));
    }
    ok(action, &r)
}

fn user_xml(name: &str, u: &User, with_tags: bool) -> String {
    let mut x = format!(
        "<Path>/</Path><UserName>{}</UserName><UserId>{}</UserId><Arn>arn:aws:iam::123456789012:user/{}</Arn><CreateDate>2025-01-01T00:00:00Z</CreateDate>",
        escape(name),
        u.id,
        escape(name)
    );
    if with_tags && !u.tags.is_empty() {
        x.push_str("<Tags>");
        for (k, v) in &u.tags {
            x.push_str(&format!(
                "<member><Key>{}</Key><Value>{}</Value></member>",
                escape(k),
                escape(v)
            ));
        }
        x.push_str("</Tags>");
    }
    x
}

fn no_user(name: &str) -> Response {
    err(
        404,
        "NoSuchEntity",
        &format!("The user with name {name} cannot be found."),
    )
}

fn action_of(s: &mut State, action: &str, f: &HashMap<String, String>) -> Response {
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let user_name = get("UserName");
    match action {
        "ListUsers" => {
            let names: Vec<String> = s.users.iter().map(|(n, u)| user_xml(n, u, false)).collect();
            match page(names, f) {
                Ok((p, n)) => listed(action, "Users", &p, n),
                Err(r) => r,
            }
        }
        "CreateUser" => {
            if !valid_name(&user_name) {
                return err(
                    400,
                    "ValidationError",
                    "1 validation error detected: Value at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+",
                );
            }
            if s.users.contains_key(&user_name) {
                return err(
                    409,
                    "EntityAlreadyExists",
                    &format!("User with name {user_name} already exists."),
                );
            }
            s.next += 1;
            let mut u = User {
                id: format!("AIDAMOCK{:012}", s.next),
                ..User::default()
            };
            let mut i = 1;
            while let Some(k) = f.get(&format!("Tags.member.{i}.Key")) {
                u.tags.push((
                    k.clone(),
                    f.get(&format!("Tags.member.{i}.Value"))
                        .cloned()
                        .unwrap_or_default(),
                ));
                i += 1;
            }
            let x = user_xml(&user_name, &u, true);
            s.users.insert(user_name, u);
            ok(action, &format!("<User>{x}</User>"))
        }
        "GetUser" => match s.users.get(&user_name) {
            Some(u) => ok(
                action,
                &format!("<User>{}</User>", user_xml(&user_name, u, true)),
            ),
            None => no_user(&user_name),
        },
        "DeleteUser" => {
            let Some(u) = s.users.get(&user_name) else {
                return no_user(&user_name);
            };
            if !u.groups.is_empty()
                || !u.policies.is_empty()
                || !u.keys.is_empty()
                || u.login_profile
            {
                return err(
                    409,
                    "DeleteConflict",
                    "Cannot delete entity, must remove users from group first / detach all policies first / delete access keys and login profile first.",
                );
            }
            s.users.remove(&user_name);
            ok(action, "")
        }
        "TagUser" | "UntagUser" => {
            let Some(u) = s.users.get_mut(&user_name) else {
                return no_user(&user_name);
            };
            let mut i = 1;
            if action == "TagUser" {
                while let Some(k) = f.get(&format!("Tags.member.{i}.Key")) {
                    let v = f
                        .get(&format!("Tags.member.{i}.Value"))
                        .cloned()
                        .unwrap_or_default();
                    u.tags.retain(|(x, _)| x != k);
                    u.tags.push((k.clone(), v));
                    i += 1;
                }
                if u.tags.len() > 50 {
                    return err(
                        409,
                        "LimitExceeded",
                        "Cannot exceed quota for TagsPerUser: 50",
                    );
                }
            } else {
                while let Some(k) = f.get(&format!("TagKeys.member.{i}")) {
                    u.tags.retain(|(x, _)| x != k);
                    i += 1;
                }
            }
            ok(action, "")
        }
        "CreateGroup" => {
            let g = get("GroupName");
            if !valid_name(&g) {
                return err(400, "ValidationError", "Invalid GroupName");
            }
            if !s.groups.insert(g.clone()) {
                return err(
                    409,
                    "EntityAlreadyExists",
                    &format!("Group with name {g} already exists."),
                );
            }
            ok(
                action,
                &format!("<Group><GroupName>{}</GroupName></Group>", escape(&g)),
            )
        }
        "ListGroups" => {
            let names: Vec<String> = s
                .groups
                .iter()
                .map(|g| format!("<GroupName>{}</GroupName>", escape(g)))
                .collect();
            match page(names, f) {
                Ok((p, n)) => listed(action, "Groups", &p, n),
                Err(r) => r,
            }
        }
        "GetGroup" => {
            let g = get("GroupName");
            if !s.groups.contains(&g) {
                return err(
                    404,
                    "NoSuchEntity",
                    &format!("The group with name {g} cannot be found."),
                );
            }
            let users: Vec<String> = s
                .users
                .iter()
                .filter(|(_, u)| u.groups.contains(&g))
                .map(|(n, u)| user_xml(n, u, false))
                .collect();
            match page(users, f) {
                Ok((p, n)) => {
                    let mut r = format!(
                        "<Group><GroupName>{}</GroupName></Group><Users>",
                        escape(&g)
                    );
                    for m in &p {
                        r.push_str(&format!("<member>{m}</member>"));
                    }
                    r.push_str(&format!(
                        "</Users><IsTruncated>{}</IsTruncated>",
                        n.is_some()
                    ));
                    if let Some(n) = n {
                        r.push_str(&format!("<Marker>{n}</Marker>"));
                    }
                    ok(action, &r)
                }
                Err(r) => r,
            }
        }
        "AddUserToGroup" | "RemoveUserFromGroup" => {
            let g = get("GroupName");
            if !s.groups.contains(&g) {
                return err(
                    404,
                    "NoSuchEntity",
                    &format!("The group with name {g} cannot be found."),
                );
            }
            let Some(u) = s.users.get_mut(&user_name) else {
                return no_user(&user_name);
            };
            if action == "AddUserToGroup" {
                if !u.groups.contains(&g) && u.groups.len() >= 10 {
                    return err(
                        409,
                        "LimitExceeded",
                        "Cannot exceed quota for GroupsPerUser: 10",
                    );
                }
                u.groups.insert(g);
            } else {
                u.groups.remove(&g);
            }
            ok(action, "")
        }
        "ListGroupsForUser" => {
            let Some(u) = s.users.get(&user_name) else {
                return no_user(&user_name);
            };
            let names: Vec<String> = u
                .groups
                .iter()
                .map(|g| format!("<GroupName>{}</GroupName>", escape(g)))
                .collect();
            match page(names, f) {
                Ok((p, n)) => listed(action, "Groups", &p, n),
                Err(r) => r,
            }
        }
        "AttachUserPolicy" | "DetachUserPolicy" => {
            let arn = get("PolicyArn");
            if !arn.starts_with("arn:aws:iam::") {
                return err(400, "InvalidInput", &format!("ARN {arn} is not valid."));
            }
            if !s.policies.contains(&arn) {
                return err(
                    404,
                    "NoSuchEntity",
                    &format!("Policy {arn} does not exist or is not attachable."),
                );
            }
            let Some(u) = s.users.get_mut(&user_name) else {
                return no_user(&user_name);
            };
            if action == "AttachUserPolicy" {
                if !u.policies.contains(&arn) && u.policies.len() >= 10 {
                    return err(
                        409,
                        "LimitExceeded",
                        "Cannot exceed quota for PoliciesPerUser: 10",
                    );
                }
                u.policies.insert(arn);
            } else if !u.policies.remove(&arn) {
                return err(404, "NoSuchEntity", &format!("Policy {arn} was not found."));
            }
            ok(action, "")
        }
        "ListAttachedUserPolicies" => {
            let Some(u) = s.users.get(&user_name) else {
                return no_user(&user_name);
            };
            let arns: Vec<String> = u
                .policies
                .iter()
                .map(|a| {
                    format!(
                        "<PolicyArn>{}</PolicyArn><PolicyName>{}</PolicyName>",
                        escape(a),
                        escape(a.rsplit('/').next().unwrap_or(a))
                    )
                })
                .collect();
            match page(arns, f) {
                Ok((p, n)) => listed(action, "AttachedPolicies", &p, n),
                Err(r) => r,
            }
        }
        "GetPolicy" => {
            let arn = get("PolicyArn");
            if s.policies.contains(&arn) {
                ok(
                    action,
                    &format!("<Policy><Arn>{}</Arn></Policy>", escape(&arn)),
                )
            } else {
                err(404, "NoSuchEntity", &format!("Policy {arn} was not found."))
            }
        }
        "ListEntitiesForPolicy" => {
            let arn = get("PolicyArn");
            if !s.policies.contains(&arn) {
                return err(404, "NoSuchEntity", &format!("Policy {arn} was not found."));
            }
            let users: Vec<String> = s
                .users
                .iter()
                .filter(|(_, u)| u.policies.contains(&arn))
                .map(|(n, u)| {
                    format!(
                        "<UserName>{}</UserName><UserId>{}</UserId>",
                        escape(n),
                        u.id
                    )
                })
                .collect();
            match page(users, f) {
                Ok((p, n)) => listed(action, "PolicyUsers", &p, n),
                Err(r) => r,
            }
        }
        "ListAccessKeys" => {
            let Some(u) = s.users.get(&user_name) else {
                return no_user(&user_name);
            };
            let keys: Vec<String> = u
                .keys
                .iter()
                .map(|(k, st)| format!("<UserName>{}</UserName><AccessKeyId>{k}</AccessKeyId><Status>{st}</Status>", escape(&user_name)))
                .collect();
            match page(keys, f) {
                Ok((p, n)) => listed(action, "AccessKeyMetadata", &p, n),
                Err(r) => r,
            }
        }
        "UpdateAccessKey" | "DeleteAccessKey" => {
            let id = get("AccessKeyId");
            let status = get("Status");
            if action == "UpdateAccessKey" && !matches!(status.as_str(), "Active" | "Inactive") {
                return err(400, "ValidationError", "Status must be Active or Inactive");
            }
            let Some(u) = s.users.get_mut(&user_name) else {
                return no_user(&user_name);
            };
            let Some(pos) = u.keys.iter().position(|(k, _)| *k == id) else {
                return err(
                    404,
                    "NoSuchEntity",
                    &format!("The Access Key with id {id} cannot be found."),
                );
            };
            if action == "UpdateAccessKey" {
                u.keys[pos].1 = status;
            } else {
                u.keys.remove(pos);
            }
            ok(action, "")
        }
        "DeleteLoginProfile" => {
            let Some(u) = s.users.get_mut(&user_name) else {
                return no_user(&user_name);
            };
            if !u.login_profile {
                return err(
                    404,
                    "NoSuchEntity",
                    &format!("Login Profile for User {user_name} cannot be found."),
                );
            }
            u.login_profile = false;
            ok(action, "")
        }
        "" => err(400, "MissingAction", "Missing Action"),
        other => err(
            400,
            "InvalidAction",
            &format!("Could not find operation {other} for version 2010-05-08"),
        ),
    }
}
