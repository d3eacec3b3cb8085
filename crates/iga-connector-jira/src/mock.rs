//! A faithful in-process Jira Cloud + JSM mock (feature `test-support`), after
//! protocols.md §5: enhanced search `POST /rest/api/3/search/jql` with opaque
//! `nextPageToken`s (search-after, stable under concurrent updates, last page
//! *without* the token key, tokens bound to the query and expirable), `fields`
//! default minimal, `maxResults` default 50 and capped at 100 when fields are
//! requested (0..=5000 accepted, anything else 400), a JQL subset with Jira's
//! error texts (unknown fields, invalid date literals in the API user's time zone),
//! legacy `/rest/api/3/search` answering 410, service-desk approvals with
//! `start`/`limit`/`isLastPage`, transitions per status (invalid → 400), comments
//! and descriptions validated as ADF (plain strings → 400), issue properties,
//! issue creation with label validation, Basic auth (401 otherwise),
//! `X-RateLimit-*` headers on every answer and scripted 429s with `Retry-After`
//! and `RateLimit-Reason`. Time is the mock's own clock (set it to model skew);
//! timestamps are written like Jira: `2026-11-22T10:15:30.000+0100`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::FixedOffset;
use iga_adapter::Secret;
use iga_directive::Timestamp;
use serde_json::{Map, Value, json};

use crate::adf;
use crate::config::{JiraAuth, JiraConnection};
use crate::time::format_jira_time;

/// The mock's account e-mail.
pub const EMAIL: &str = "provisioning@example.com";
/// The mock's API token.
pub const API_TOKEN: &str = "mock-api-token";

/// One seeded request.
#[derive(Debug, Clone)]
pub struct MockRequest {
    /// Project key.
    pub project: String,
    /// Summary.
    pub summary: String,
    /// Workflow status name (`Approved`, `Waiting for approval`, `Declined`).
    pub status: String,
    /// Approval `finalDecision` (`approved`, `declined`, `pending`); `None` = the
    /// issue is not a service-desk request (approvals API answers 404).
    pub decision: Option<String>,
    /// Custom and other fields, by id.
    pub fields: Map<String, Value>,
    /// Update time (default: the mock clock).
    pub updated: Option<Timestamp>,
}

impl MockRequest {
    /// An approved request in project `ACC` with `fields`.
    pub fn approved(fields: Value) -> Self {
        Self {
            project: "ACC".into(),
            summary: "Access request".into(),
            status: "Approved".into(),
            decision: Some("approved".into()),
            fields: fields.as_object().cloned().unwrap_or_default(),
            updated: None,
        }
    }

    /// The same request still waiting for its approval (status `Waiting for
    /// approval`, decision `pending`); see [`JiraMock::approve`].
    pub fn pending(mut self) -> Self {
        self.status = "Waiting for approval".into();
        self.decision = Some("pending".into());
        self
    }

    /// The same request declined.
    pub fn declined(mut self) -> Self {
        self.status = "Declined".into();
        self.decision = Some("declined".into());
        self
    }

    /// With an explicit update time.
    pub fn updated_at(mut self, t: Timestamp) -> Self {
        self.updated = Some(t);
        self
    }
}

#[derive(Debug, Clone)]
struct Issue {
    id: u64,
    key: String,
    project: String,
    summary: String,
    status: String,
    resolution: Option<String>,
    created: Timestamp,
    updated: Timestamp,
    fields: Map<String, Value>,
    labels: Vec<String>,
    decision: Option<String>,
    decided_at: Timestamp,
    comments: Vec<Value>,
    properties: BTreeMap<String, Value>,
}

#[derive(Debug)]
struct MockState {
    now: Timestamp,
    tz: FixedOffset,
    issues: Vec<Issue>,
    next_id: u64,
    throttle: u32,
    retry_after: u64,
    token_epoch: u64,
    requests: u64,
    searches: u64,
    rejected_429: u64,
}

/// A running mock; dropped → server stops.
#[derive(Debug)]
pub struct JiraMock {
    addr: SocketAddr,
    state: Arc<Mutex<MockState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JiraMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn category(status: &str) -> &'static str {
    match status.to_ascii_lowercase().as_str() {
        "done" | "declined" | "closed" | "resolved" | "won't do" => "done",
        "open" | "to do" | "waiting for approval" | "waiting for support" => "new",
        _ => "indeterminate",
    }
}

/// (id, name, target status, sets resolution) — the workflow's transitions.
const TRANSITIONS: &[(&str, &str, &str, Option<&str>)] = &[
    ("11", "Start progress", "In Progress", None),
    ("31", "Done", "Done", Some("Done")),
    ("41", "Escalate", "Escalated", None),
    ("51", "Won't Do", "Won't Do", Some("Won't Do")),
];

impl JiraMock {
    /// Start on a random loopback port. Panics if it cannot listen: a test must
    /// not pass without its server.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(MockState {
            now: chrono::DateTime::parse_from_rfc3339("2026-11-22T09:15:30Z")
                .expect("literal")
                .to_utc(),
            tz: FixedOffset::east_opt(3600).expect("+01:00"),
            issues: Vec::new(),
            next_id: 10_000,
            throttle: 0,
            retry_after: 1,
            token_epoch: 0,
            requests: 0,
            searches: 0,
            rejected_429: 0,
        }));
        let app = Router::new()
            .route("/rest/api/3/search/jql", post(search))
            .route("/rest/api/3/search", get(gone).post(gone))
            .route("/rest/api/3/myself", get(myself))
            .route("/rest/api/3/issue", post(create_issue))
            .route("/rest/api/3/issue/{key}", get(get_issue))
            .route(
                "/rest/api/3/issue/{key}/transitions",
                get(list_transitions).post(do_transition),
            )
            .route("/rest/api/3/issue/{key}/comment", post(add_comment))
            .route(
                "/rest/api/3/issue/{key}/properties/{prop}",
                get(get_property).put(put_property),
            )
            .route(
                "/rest/servicedeskapi/request/{key}/approval",
                get(approvals),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("jira mock: cannot bind a loopback port");
        let addr = listener.local_addr().expect("jira mock: local addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("jira mock: server failed");
        });
        Self { addr, state, task }
    }

    /// Base URL (`http://127.0.0.1:<port>`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A connection with the mock's credentials.
    pub fn connection(&self) -> JiraConnection {
        JiraConnection::new(
            &self.base_url(),
            JiraAuth::Basic {
                email: EMAIL.into(),
                api_token: Secret::new(API_TOKEN),
            },
        )
        .expect("mock url")
    }

    fn st(&self) -> std::sync::MutexGuard<'_, MockState> {
        self.state.lock().expect("mock lock")
    }

    /// The mock clock.
    pub fn now(&self) -> Timestamp {
        self.st().now
    }

    /// Move the mock clock (negative skew: set it behind the client's).
    pub fn set_now(&self, t: Timestamp) {
        self.st().now = t;
    }

    /// Advance the mock clock.
    pub fn advance(&self, d: Duration) {
        self.st().now += chrono::Duration::from_std(d).expect("duration");
    }

    /// The API user's time zone (JQL literals and written timestamps). Default +01:00.
    pub fn set_user_timezone(&self, tz: FixedOffset) {
        self.st().tz = tz;
    }

    /// Seed a request; returns its key.
    pub fn add_request(&self, r: MockRequest) -> String {
        let mut st = self.st();
        st.next_id += 1;
        let id = st.next_id;
        let n = st.issues.iter().filter(|i| i.project == r.project).count() + 1;
        let key = format!("{}-{n}", r.project);
        let now = st.now;
        let updated = r.updated.unwrap_or(now);
        st.issues.push(Issue {
            id,
            key: key.clone(),
            project: r.project,
            summary: r.summary,
            status: r.status,
            resolution: None,
            created: updated,
            updated,
            fields: r.fields,
            labels: Vec::new(),
            decision: r.decision,
            decided_at: updated,
            comments: Vec::new(),
            properties: BTreeMap::new(),
        });
        key
    }

    fn with_issue<T>(&self, key: &str, f: impl FnOnce(&mut Issue, Timestamp) -> T) -> T {
        let mut st = self.st();
        let now = st.now;
        let i = st
            .issues
            .iter_mut()
            .find(|i| i.key == key)
            .unwrap_or_else(|| panic!("jira mock: no issue {key}"));
        f(i, now)
    }

    /// Set a field (touches `updated`).
    pub fn set_field(&self, key: &str, field: &str, value: Value) {
        self.with_issue(key, |i, now| {
            i.fields.insert(field.to_string(), value);
            i.updated = now;
        })
    }

    /// The approver approves: decision `approved` at the mock clock, status
    /// `Approved`, `updated` touched (what JSM does when the last approver answers).
    pub fn approve(&self, key: &str) {
        self.with_issue(key, |i, now| {
            i.decision = Some("approved".into());
            i.decided_at = now;
            i.status = "Approved".into();
            i.updated = now;
        })
    }

    /// Set `updated` to `t` without other change (models index lag).
    pub fn set_updated(&self, key: &str, t: Timestamp) {
        self.with_issue(key, |i, _| i.updated = t)
    }

    /// Resolve an issue: status `Done` (or `Won't Do`) with `resolution`.
    pub fn resolve(&self, key: &str, status: &str, resolution: &str) {
        self.with_issue(key, |i, now| {
            i.status = status.into();
            i.resolution = Some(resolution.into());
            i.updated = now;
        })
    }

    /// Status and resolution.
    pub fn status(&self, key: &str) -> (String, Option<String>) {
        self.with_issue(key, |i, _| (i.status.clone(), i.resolution.clone()))
    }

    /// Comments as plain text.
    pub fn comments(&self, key: &str) -> Vec<String> {
        self.with_issue(key, |i, _| {
            i.comments
                .iter()
                .map(|c| adf::plain_text(&c["body"]))
                .collect()
        })
    }

    /// An issue property.
    pub fn property(&self, key: &str, prop: &str) -> Option<Value> {
        self.with_issue(key, |i, _| i.properties.get(prop).cloned())
    }

    /// Keys of issues carrying `label`.
    pub fn issues_with_label(&self, label: &str) -> Vec<String> {
        self.st()
            .issues
            .iter()
            .filter(|i| i.labels.iter().any(|l| l == label))
            .map(|i| i.key.clone())
            .collect()
    }

    /// Summary and description (plain text) of an issue.
    pub fn issue_text(&self, key: &str) -> (String, String) {
        self.with_issue(key, |i, _| {
            (
                i.summary.clone(),
                i.fields
                    .get("description")
                    .map(adf::plain_text)
                    .unwrap_or_default(),
            )
        })
    }

    /// Answer the next `n` requests with 429, `Retry-After: <secs>` and
    /// `RateLimit-Reason: jira-burst-based`.
    pub fn throttle_next(&self, n: u32, retry_after_secs: u64) {
        let mut st = self.st();
        st.throttle = n;
        st.retry_after = retry_after_secs;
    }

    /// Invalidate every page token handed out so far (their 7-day expiry).
    pub fn expire_page_tokens(&self) {
        self.st().token_epoch += 1;
    }

    /// Requests answered (including rejected ones).
    pub fn requests(&self) -> u64 {
        self.st().requests
    }

    /// Search requests answered with 200.
    pub fn searches(&self) -> u64 {
        self.st().searches
    }

    /// 429s sent.
    pub fn throttled(&self) -> u64 {
        self.st().rejected_429
    }

    /// A `jira:issue_updated` webhook body for `key`.
    pub fn webhook_event(&self, key: &str) -> Value {
        let st = self.st();
        let i = st
            .issues
            .iter()
            .find(|i| i.key == key)
            .unwrap_or_else(|| panic!("jira mock: no issue {key}"));
        json!({
            "timestamp": st.now.timestamp_millis(),
            "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": "issue_generic",
            "issue": {"id": i.id.to_string(), "key": i.key, "self": format!("/rest/api/3/issue/{}", i.id),
                      "fields": {"status": {"name": i.status}, "updated": format_jira_time(i.updated, st.tz)}},
        })
    }
}

// ---- plumbing -------------------------------------------------------------

type Shared = Arc<Mutex<MockState>>;

fn err(status: StatusCode, msgs: &[&str], errors: Value) -> Response {
    (
        status,
        Json(json!({"errorMessages": msgs, "errors": errors})),
    )
        .into_response()
}

fn with_limits(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from_static("100"));
    h.insert("x-ratelimit-remaining", HeaderValue::from_static("99"));
    r
}

/// Auth, request counting and scripted throttling. `Err` is the answer to send.
fn gate(st: &Shared, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let mut s = st.lock().expect("mock lock");
    s.requests += 1;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}:{API_TOKEN}"))
    );
    let ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !ok {
        return Err(Box::new(err(
            StatusCode::UNAUTHORIZED,
            &["Client must be authenticated to access this resource."],
            json!({}),
        )));
    }
    if s.throttle > 0 {
        s.throttle -= 1;
        s.rejected_429 += 1;
        let reset = (s.now + chrono::Duration::seconds(s.retry_after as i64))
            .format("%Y-%m-%dT%H:%MZ")
            .to_string();
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"errorMessages": ["Rate limit exceeded."], "errors": {}})),
        )
            .into_response();
        let h = r.headers_mut();
        h.insert(
            "retry-after",
            HeaderValue::from_str(&s.retry_after.to_string()).expect("digits"),
        );
        h.insert(
            "ratelimit-reason",
            HeaderValue::from_static("jira-burst-based"),
        );
        h.insert("x-ratelimit-limit", HeaderValue::from_static("100"));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-nearlimit", HeaderValue::from_static("true"));
        h.insert(
            "x-ratelimit-reset",
            HeaderValue::from_str(&reset).expect("ascii"),
        );
        return Err(Box::new(r));
    }
    Ok(())
}

macro_rules! gate {
    ($st:expr, $h:expr) => {
        if let Err(r) = gate(&$st, &$h) {
            return *r;
        }
    };
}

fn status_json(i: &Issue) -> Value {
    json!({"name": i.status, "statusCategory": {"key": category(&i.status)}})
}

fn field_json(i: &Issue, name: &str, tz: FixedOffset) -> Option<Value> {
    Some(match name {
        "status" => status_json(i),
        "updated" => json!(format_jira_time(i.updated, tz)),
        "created" => json!(format_jira_time(i.created, tz)),
        "summary" => json!(i.summary),
        "labels" => json!(i.labels),
        "resolution" => match &i.resolution {
            Some(r) => json!({"name": r}),
            None => Value::Null,
        },
        "project" => json!({"key": i.project}),
        other => return i.fields.get(other).cloned(),
    })
}

fn issue_json(i: &Issue, fields: &[String], tz: FixedOffset) -> Value {
    let mut v = json!({"id": i.id.to_string(), "key": i.key, "self": format!("/rest/api/3/issue/{}", i.id)});
    if fields.is_empty() {
        return v;
    }
    let all = fields.iter().any(|f| f == "*all" || f == "*navigable");
    let mut names: Vec<String> = if all {
        let mut n: Vec<String> = [
            "status",
            "updated",
            "created",
            "summary",
            "labels",
            "resolution",
            "project",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        n.extend(i.fields.keys().cloned());
        n
    } else {
        fields.to_vec()
    };
    names.dedup();
    let mut m = Map::new();
    for n in names {
        if let Some(val) = field_json(i, &n, tz) {
            m.insert(n, val);
        }
    }
    v["fields"] = Value::Object(m);
    v
}

// ---- JQL subset -------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Op(String),
    Comma,
}

fn lex(jql: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let cs: Vec<char> = jql.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() || c == '(' || c == ')' {
            // Parentheses group; the subset only has AND, so they do not change meaning.
            i += 1;
        } else if c == '"' || c == '\'' {
            let q = c;
            let mut s = String::new();
            i += 1;
            loop {
                match cs.get(i) {
                    None => {
                        return Err(format!(
                            "Error in the JQL Query: The quoted string '{s}' has not been completed."
                        ));
                    }
                    Some('\\') => {
                        if let Some(n) = cs.get(i + 1) {
                            s.push(*n);
                        }
                        i += 2;
                    }
                    Some(ch) if *ch == q => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(s));
        } else if c == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else if "=!<>~".contains(c) {
            let mut op = c.to_string();
            if cs.get(i + 1) == Some(&'=') {
                op.push('=');
                i += 1;
            }
            if op == "!" {
                return Err(
                    "Error in the JQL Query: The character '!' is a reserved JQL character.".into(),
                );
            }
            out.push(Tok::Op(op));
            i += 1;
        } else if c.is_alphanumeric() || "_.-*/:".contains(c) {
            let mut w = String::new();
            while let Some(ch) = cs.get(i) {
                if ch.is_alphanumeric() || "_.-*/:".contains(*ch) {
                    w.push(*ch);
                    i += 1;
                } else {
                    break;
                }
            }
            out.push(Tok::Word(w));
        } else {
            return Err(format!(
                "Error in the JQL Query: The character '{c}' is a reserved JQL character. You must enclose it in a string or use the escape '\\u{:04x}' instead.",
                c as u32
            ));
        }
    }
    Ok(out)
}

#[derive(Debug)]
struct Clause {
    field: String,
    op: String,
    value: String,
}

#[derive(Debug)]
struct Jql {
    clauses: Vec<Clause>,
    order: Vec<(String, bool)>,
}

const KNOWN_FIELDS: &[&str] = &[
    "project",
    "status",
    "statuscategory",
    "updated",
    "created",
    "labels",
    "key",
    "resolution",
    "summary",
];

fn date_literal(field: &str, v: &str, tz: FixedOffset) -> Result<Timestamp, String> {
    let naive = chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(v, "%Y/%m/%d %H:%M"))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .or_else(|_| chrono::NaiveDate::parse_from_str(v, "%Y/%m/%d"))
                .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight"))
        })
        .map_err(|_| {
            format!(
                "Date value '{v}' for field '{field}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
            )
        })?;
    naive
        .and_local_timezone(tz)
        .single()
        .map(|t| t.to_utc())
        .ok_or_else(|| format!("Date value '{v}' for field '{field}' is ambiguous."))
}

fn parse_jql(jql: &str, tz: FixedOffset) -> Result<Jql, String> {
    let toks = lex(jql)?;
    let mut i = 0;
    let mut clauses = Vec::new();
    let mut order = Vec::new();
    let word = |t: Option<&Tok>| match t {
        Some(Tok::Word(w)) => Some(w.clone()),
        _ => None,
    };
    while i < toks.len() {
        let w = word(toks.get(i));
        if w.as_deref()
            .is_some_and(|w| w.eq_ignore_ascii_case("order"))
            && word(toks.get(i + 1)).is_some_and(|w| w.eq_ignore_ascii_case("by"))
        {
            i += 2;
            loop {
                let f = word(toks.get(i))
                    .ok_or("Error in the JQL Query: Expecting a field name after 'ORDER BY'.")?;
                let lf = f.to_ascii_lowercase();
                if !["updated", "created", "key"].contains(&lf.as_str()) {
                    return Err(format!("Not able to sort using field '{f}'."));
                }
                i += 1;
                let mut asc = true;
                if let Some(d) = word(toks.get(i)) {
                    if d.eq_ignore_ascii_case("asc") {
                        i += 1;
                    } else if d.eq_ignore_ascii_case("desc") {
                        asc = false;
                        i += 1;
                    }
                }
                order.push((lf, asc));
                if toks.get(i) == Some(&Tok::Comma) {
                    i += 1;
                    continue;
                }
                break;
            }
            if i < toks.len() {
                return Err(
                    "Error in the JQL Query: Expecting end of query after ORDER BY.".into(),
                );
            }
            break;
        }
        if !clauses.is_empty() {
            match w.as_deref() {
                Some(a) if a.eq_ignore_ascii_case("and") => i += 1,
                Some(o) if o.eq_ignore_ascii_case("or") => {
                    return Err("Error in the JQL Query: OR is not supported by this mock.".into());
                }
                _ => return Err(
                    "Error in the JQL Query: Expecting either 'OR' or 'AND' but got more input."
                        .into(),
                ),
            }
        }
        let field = match toks.get(i) {
            Some(Tok::Word(f)) | Some(Tok::Str(f)) => f.clone(),
            _ => return Err("Error in the JQL Query: Expecting a field name.".into()),
        };
        let lf = field.to_ascii_lowercase();
        if !KNOWN_FIELDS.contains(&lf.as_str()) && !lf.starts_with("customfield_") {
            return Err(format!(
                "Field '{field}' does not exist or you do not have permission to view it."
            ));
        }
        let op = match toks.get(i + 1) {
            Some(Tok::Op(o)) => o.clone(),
            _ => {
                return Err(format!(
                    "Error in the JQL Query: Expecting operator but got end of query or other input after '{field}'."
                ));
            }
        };
        let value = match toks.get(i + 2) {
            Some(Tok::Word(v)) | Some(Tok::Str(v)) => v.clone(),
            _ => {
                return Err(format!(
                    "Error in the JQL Query: Expecting a value after '{field} {op}'."
                ));
            }
        };
        if lf == "updated" || lf == "created" {
            date_literal(&field, &value, tz)?;
        } else if !["=", "!="].contains(&op.as_str()) {
            return Err(format!(
                "The operator '{op}' is not supported by the '{field}' field."
            ));
        }
        clauses.push(Clause {
            field: lf,
            op,
            value,
        });
        i += 3;
    }
    if clauses.is_empty() && order.is_empty() {
        return Err("Error in the JQL Query: the query is empty.".into());
    }
    Ok(Jql { clauses, order })
}

fn matches(i: &Issue, c: &Clause, tz: FixedOffset) -> bool {
    let eq = |a: &str| a.eq_ignore_ascii_case(&c.value);
    let hit = match c.field.as_str() {
        "updated" | "created" => {
            let t = if c.field == "updated" {
                i.updated
            } else {
                i.created
            };
            let lit = date_literal(&c.field, &c.value, tz).expect("validated");
            return match c.op.as_str() {
                ">=" => t >= lit,
                ">" => t > lit,
                "<=" => t <= lit,
                "<" => t < lit,
                "=" => t == lit,
                "!=" => t != lit,
                _ => false,
            };
        }
        "project" => eq(&i.project),
        "status" => eq(&i.status),
        "statuscategory" => eq(category(&i.status)),
        "labels" => i.labels.iter().any(|l| eq(l)),
        "key" => eq(&i.key),
        "summary" => eq(&i.summary),
        "resolution" => {
            i.resolution.as_deref().is_some_and(eq)
                || (c.value.eq_ignore_ascii_case("empty") && i.resolution.is_none())
        }
        f => i
            .fields
            .get(f)
            .map(|v| match v {
                Value::String(s) => eq(s),
                Value::Object(o) => o.get("value").and_then(Value::as_str).is_some_and(eq),
                _ => false,
            })
            .unwrap_or(false),
    };
    if c.op == "!=" { !hit } else { hit }
}

fn sort_key(i: &Issue, order: &[(String, bool)]) -> Vec<i64> {
    let mut k: Vec<i64> = order
        .iter()
        .map(|(f, asc)| {
            let v = match f.as_str() {
                "updated" => i.updated.timestamp_millis(),
                "created" => i.created.timestamp_millis(),
                _ => i.id as i64,
            };
            if *asc { v } else { -v }
        })
        .collect();
    k.push(i.id as i64);
    k
}

fn query_hash(jql: &str, fields: &[String]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(jql.as_bytes());
    for f in fields {
        h.update(b"\0");
        h.update(f.as_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

// ---- handlers -----------------------------------------------------------------

async fn gone(State(st): State<Shared>, headers: HeaderMap) -> Response {
    gate!(st, headers);
    err(
        StatusCode::GONE,
        &["The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."],
        json!({}),
    )
}

async fn myself(State(st): State<Shared>, headers: HeaderMap) -> Response {
    gate!(st, headers);
    with_limits(
        Json(json!({"accountId": "mock-bot", "emailAddress": EMAIL, "active": true}))
            .into_response(),
    )
}

async fn search(State(st): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    gate!(st, headers);
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return err(
            StatusCode::BAD_REQUEST,
            &["Invalid request payload. Refer to the REST API documentation and try again."],
            json!({}),
        );
    };
    let Some(jql) = req.get("jql").and_then(Value::as_str) else {
        return err(
            StatusCode::BAD_REQUEST,
            &["The 'jql' parameter is required and must be bounded."],
            json!({}),
        );
    };
    let fields: Vec<String> = match req.get("fields") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(_) => {
            return err(
                StatusCode::BAD_REQUEST,
                &["Invalid request payload. 'fields' must be an array of strings."],
                json!({}),
            );
        }
    };
    let max = match req.get("maxResults") {
        None | Some(Value::Null) => 50,
        Some(v) => match v.as_u64() {
            Some(n) if n <= 5000 => n as usize,
            _ => {
                return err(
                    StatusCode::BAD_REQUEST,
                    &["maxResults: must be an integer between 0 and 5000."],
                    json!({}),
                );
            }
        },
    };
    let only_ids = fields.iter().all(|f| f == "id" || f == "key");
    let page = if only_ids { max } else { max.min(100) };
    let token = match req.get("nextPageToken") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return err(
                StatusCode::BAD_REQUEST,
                &["Invalid request payload. 'nextPageToken' must be a string."],
                json!({}),
            );
        }
    };
    let mut s = st.lock().expect("mock lock");
    let tz = s.tz;
    let q = match parse_jql(jql, tz) {
        Ok(q) => q,
        Err(m) => return err(StatusCode::BAD_REQUEST, &[&m], json!({})),
    };
    let qh = query_hash(jql, &fields);
    let after: Option<Vec<i64>> = match &token {
        None => None,
        Some(t) => {
            let decoded = URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
            let valid = decoded
                .as_ref()
                .filter(|d| d["q"].as_str() == Some(&qh) && d["e"].as_u64() == Some(s.token_epoch));
            match valid.and_then(|d| serde_json::from_value::<Vec<i64>>(d["a"].clone()).ok()) {
                Some(a) => Some(a),
                None => {
                    return err(
                        StatusCode::BAD_REQUEST,
                        &["The provided next page token is invalid or expired."],
                        json!({}),
                    );
                }
            }
        }
    };
    let mut hits: Vec<(Vec<i64>, &Issue)> = s
        .issues
        .iter()
        .filter(|i| q.clauses.iter().all(|c| matches(i, c, tz)))
        .map(|i| (sort_key(i, &q.order), i))
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
        .collect();
    hits.sort_by(|a, b| a.0.cmp(&b.0));
    let is_last = hits.len() <= page;
    let chosen: Vec<&(Vec<i64>, &Issue)> = hits.iter().take(page).collect();
    let issues: Vec<Value> = chosen
        .iter()
        .map(|(_, i)| issue_json(i, &fields, tz))
        .collect();
    let mut out = json!({"issues": issues, "isLast": is_last});
    if !is_last && let Some((k, _)) = chosen.last() {
        let tok = json!({"q": qh, "e": s.token_epoch, "a": k});
        out["nextPageToken"] = json!(URL_SAFE_NO_PAD.encode(tok.to_string()));
    }
    s.searches += 1;
    with_limits(Json(out).into_response())
}

#[derive(serde::Deserialize)]
struct FieldsQ {
    fields: Option<String>,
}

async fn get_issue(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(q): Query<FieldsQ>,
) -> Response {
    gate!(st, headers);
    let s = st.lock().expect("mock lock");
    let Some(i) = s
        .issues
        .iter()
        .find(|i| i.key == key || i.id.to_string() == key)
    else {
        return err(
            StatusCode::NOT_FOUND,
            &["Issue does not exist or you do not have permission to see it."],
            json!({}),
        );
    };
    let fields: Vec<String> = match q.fields {
        Some(f) => f
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        None => vec!["*all".into()],
    };
    with_limits(Json(issue_json(i, &fields, s.tz)).into_response())
}

async fn create_issue(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    gate!(st, headers);
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return err(
            StatusCode::BAD_REQUEST,
            &["Invalid request payload."],
            json!({}),
        );
    };
    let f = &req["fields"];
    let mut errors = Map::new();
    let project = f
        .pointer("/project/key")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if project.is_empty() {
        errors.insert("project".into(), json!("Specify a valid project ID or key"));
    }
    if f.pointer("/issuetype/name")
        .and_then(Value::as_str)
        .is_none()
        && f.pointer("/issuetype/id").is_none()
    {
        errors.insert("issuetype".into(), json!("Specify an issue type"));
    }
    let summary = f
        .get("summary")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if summary.trim().is_empty() {
        errors.insert(
            "summary".into(),
            json!("You must specify a summary of the issue."),
        );
    } else if summary.chars().count() > 255 {
        errors.insert(
            "summary".into(),
            json!("Summary must be less than 255 characters."),
        );
    }
    if let Some(d) = f.get("description")
        && !adf::is_valid_doc(d)
    {
        errors.insert(
            "description".into(),
            json!(
                "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
            ),
        );
    }
    let labels: Vec<String> = f
        .get("labels")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if labels
        .iter()
        .any(|l| l.contains(' ') || l.chars().count() > 255)
    {
        errors.insert("labels".into(), json!("The label can't contain spaces."));
    }
    if !errors.is_empty() {
        return err(StatusCode::BAD_REQUEST, &[], Value::Object(errors));
    }
    let mut s = st.lock().expect("mock lock");
    s.next_id += 1;
    let id = s.next_id;
    let n = s.issues.iter().filter(|i| i.project == project).count() + 1;
    let key = format!("{project}-{n}");
    let now = s.now;
    let mut fields = Map::new();
    if let Some(d) = f.get("description") {
        fields.insert("description".into(), d.clone());
    }
    s.issues.push(Issue {
        id,
        key: key.clone(),
        project,
        summary,
        status: "Open".into(),
        resolution: None,
        created: now,
        updated: now,
        fields,
        labels,
        decision: None,
        decided_at: now,
        comments: Vec::new(),
        properties: BTreeMap::new(),
    });
    with_limits((StatusCode::CREATED, Json(json!({"id": id.to_string(), "key": key, "self": format!("/rest/api/3/issue/{id}")}))).into_response())
}

fn find_mut<'a>(s: &'a mut MockState, key: &str) -> Option<&'a mut Issue> {
    s.issues
        .iter_mut()
        .find(|i| i.key == key || i.id.to_string() == key)
}

fn not_found() -> Response {
    err(
        StatusCode::NOT_FOUND,
        &["Issue does not exist or you do not have permission to see it."],
        json!({}),
    )
}

async fn list_transitions(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    gate!(st, headers);
    let s = st.lock().expect("mock lock");
    let Some(i) = s.issues.iter().find(|i| i.key == key) else {
        return not_found();
    };
    let list: Vec<Value> = TRANSITIONS
        .iter()
        .filter(|(_, _, to, _)| !to.eq_ignore_ascii_case(&i.status))
        .map(|(id, name, to, _)| {
            json!({"id": id, "name": name, "hasScreen": false,
            "to": {"name": to, "statusCategory": {"key": category(to)}}})
        })
        .collect();
    with_limits(Json(json!({"transitions": list})).into_response())
}

fn comment_body_ok(body: &Value) -> bool {
    adf::is_valid_doc(body)
}

async fn do_transition(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    gate!(st, headers);
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return err(
            StatusCode::BAD_REQUEST,
            &["Invalid request payload."],
            json!({}),
        );
    };
    let mut s = st.lock().expect("mock lock");
    let now = s.now;
    let Some(i) = find_mut(&mut s, &key) else {
        return not_found();
    };
    let id = req
        .pointer("/transition/id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some((_, _, to, res)) = TRANSITIONS
        .iter()
        .find(|(tid, _, to, _)| *tid == id && !to.eq_ignore_ascii_case(&i.status))
    else {
        return err(
            StatusCode::BAD_REQUEST,
            &[&format!(
                "Transition id '{id}' is not valid for this issue."
            )],
            json!({}),
        );
    };
    if let Some(cs) = req.pointer("/update/comment").and_then(Value::as_array) {
        for c in cs {
            let b = c.pointer("/add/body").cloned().unwrap_or(Value::Null);
            if !comment_body_ok(&b) {
                return err(
                    StatusCode::BAD_REQUEST,
                    &[],
                    json!({"comment": "Operation value must be an Atlassian Document (see the Atlassian Document Format)"}),
                );
            }
            i.comments.push(json!({"body": b}));
        }
    }
    i.status = to.to_string();
    i.resolution = req
        .pointer("/fields/resolution/name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(res.map(str::to_string));
    i.updated = now;
    with_limits(StatusCode::NO_CONTENT.into_response())
}

async fn add_comment(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    gate!(st, headers);
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return err(
            StatusCode::BAD_REQUEST,
            &["Invalid request payload."],
            json!({}),
        );
    };
    if !comment_body_ok(&req["body"]) {
        return err(
            StatusCode::BAD_REQUEST,
            &[],
            json!({"comment": "Operation value must be an Atlassian Document (see the Atlassian Document Format)"}),
        );
    }
    let mut s = st.lock().expect("mock lock");
    let now = s.now;
    let Some(i) = find_mut(&mut s, &key) else {
        return not_found();
    };
    let id = i.comments.len() + 1;
    i.comments.push(json!({"id": id.to_string(), "body": req["body"], "properties": req.get("properties").cloned().unwrap_or(json!([]))}));
    i.updated = now;
    with_limits(
        (
            StatusCode::CREATED,
            Json(json!({"id": id.to_string(), "body": req["body"]})),
        )
            .into_response(),
    )
}

async fn get_property(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path((key, prop)): Path<(String, String)>,
) -> Response {
    gate!(st, headers);
    let s = st.lock().expect("mock lock");
    let Some(i) = s.issues.iter().find(|i| i.key == key) else {
        return not_found();
    };
    match i.properties.get(&prop) {
        Some(v) => with_limits(Json(json!({"key": prop, "value": v})).into_response()),
        None => err(
            StatusCode::NOT_FOUND,
            &[&format!("The property with key '{prop}' does not exist.")],
            json!({}),
        ),
    }
}

async fn put_property(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path((key, prop)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    gate!(st, headers);
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return err(
            StatusCode::BAD_REQUEST,
            &["The property value must be valid JSON."],
            json!({}),
        );
    };
    if body.len() > 32_768 {
        return err(
            StatusCode::BAD_REQUEST,
            &["The property value is too long (32768 bytes max)."],
            json!({}),
        );
    }
    let mut s = st.lock().expect("mock lock");
    let Some(i) = find_mut(&mut s, &key) else {
        return not_found();
    };
    let existed = i.properties.insert(prop, v).is_some();
    with_limits(
        if existed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        }
        .into_response(),
    )
}

#[derive(serde::Deserialize)]
struct ApprovalQ {
    start: Option<String>,
    limit: Option<String>,
}

async fn approvals(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(q): Query<ApprovalQ>,
) -> Response {
    gate!(st, headers);
    let parse =
        |v: &Option<String>, d: u64| v.as_deref().map_or(Some(d), |s| s.parse::<u64>().ok());
    let (Some(start), Some(limit)) = (parse(&q.start, 0), parse(&q.limit, 50)) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"errorMessage": "start and limit must be non-negative integers"})),
        )
            .into_response();
    };
    if limit == 0 || limit > 100 {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"errorMessage": "limit must be between 1 and 100"})),
        )
            .into_response();
    }
    let s = st.lock().expect("mock lock");
    let Some(i) = s.issues.iter().find(|i| i.key == key) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"errorMessage": "The request could not be found."})),
        )
            .into_response();
    };
    let Some(decision) = &i.decision else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"errorMessage": "This issue is not a service desk request."})),
        )
            .into_response();
    };
    let iso = |t: Timestamp| {
        t.with_timezone(&s.tz)
            .format("%Y-%m-%dT%H:%M:%S%z")
            .to_string()
    };
    let created = i.created - chrono::Duration::minutes(30);
    let mut v = json!({"id": "7", "name": "Manager approval", "finalDecision": decision, "canAnswerApproval": false,
        "approvers": [{"approver": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "emailAddress": "bo.manager@example.com", "displayName": "Bo"},
                       "approverDecision": if decision == "pending" { "pending" } else { decision.as_str() }}],
        "createdDate": {"iso8601": iso(created), "epochMillis": created.timestamp_millis()}});
    if decision != "pending" {
        v["completedDate"] =
            json!({"iso8601": iso(i.decided_at), "epochMillis": i.decided_at.timestamp_millis()});
    }
    let all = [v];
    let page: Vec<&Value> = all
        .iter()
        .skip(start as usize)
        .take(limit as usize)
        .collect();
    let is_last = start as usize + page.len() >= all.len();
    with_limits(Json(json!({"size": page.len(), "start": start, "limit": limit, "isLastPage": is_last, "values": page})).into_response())
}
