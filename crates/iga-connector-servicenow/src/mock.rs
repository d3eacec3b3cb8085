//! A faithful in-process ServiceNow Table API mock (axum on loopback), for tests,
//! benchmarks and examples (feature `test-support`).
//!
//! What it reproduces (protocols.md §4): the `{"result": ...}` envelope and the
//! `{"error":{"message","detail"},"status":"failure"}` error envelope; string-typed
//! values (`"state":"3"`), glide date-times `yyyy-MM-dd HH:mm:ss` in UTC; reference
//! fields as `{"link","value"}` or plain sys_ids with
//! `sysparm_exclude_reference_link=true`, `""` when empty; dot-walked
//! `sysparm_fields` (`requested_for.user_name`,
//! `sc_item_option.item_option_new.name`); `sysparm_display_value=true|all`;
//! `sysparm_limit`/`sysparm_offset` with `X-Total-Count` (unless
//! `sysparm_no_count=true`) and `Link` headers; an encoded-query subset (`=`, `!=`,
//! `>`, `>=`, `<`, `<=`, `IN`, `NOT IN`, `LIKE`, `STARTSWITH`, `ISEMPTY`,
//! `ISNOTEMPTY`, `^`, `^OR`, `ORDERBY`, `ORDERBYDESC`, `javascript:gs.dateGenerate`);
//! journal semantics for `work_notes`/`comments` (a write appends a
//! `sys_journal_field` row, the field reads back empty); Basic auth and OAuth
//! client credentials (`/oauth_token.do`); a rate-limit rule with
//! `X-RateLimit-Limit`/`-Reset`/`-Rule` and 429 + `Retry-After`; a clock offset
//! (skew) and back-dated updates (late commits).
//!
//! What it rejects like the service: bad credentials (401), `sysparm_limit` above
//! the ceiling (400), a malformed `sysparm_query` or a query on an unknown field
//! (400; instances configured with `glide.invalid_query.returns_no_rows` answer
//! empty instead — rejecting is the stricter choice for a test double).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::time::format_glide;

/// The Table API `sysparm_limit` ceiling the mock enforces.
pub const MOCK_MAX_LIMIT: u32 = 10_000;

type Rec = Map<String, Value>;

/// Reference fields per table: field -> referenced table.
fn reference(table: &str, field: &str) -> Option<&'static str> {
    Some(match (table, field) {
        ("sc_req_item", "requested_for" | "opened_by") => "sys_user",
        ("sc_req_item", "cat_item") => "sc_cat_item",
        ("sc_req_item", "request") => "sc_request",
        ("sysapproval_approver", "approver") => "sys_user",
        ("sysapproval_approver", "sysapproval") => "sc_req_item",
        ("sc_item_option_mtom", "request_item") => "sc_req_item",
        ("sc_item_option_mtom", "sc_item_option") => "sc_item_option",
        ("sc_item_option", "item_option_new") => "item_option_new",
        ("sc_task", "request_item") => "sc_req_item",
        ("sc_task", "assigned_to") => "sys_user",
        _ => return None,
    })
}

/// Columns per table (anything else in a query is an unknown field).
fn columns(table: &str) -> &'static [&'static str] {
    const SYS: &[&str] = &[
        "sys_id",
        "sys_created_on",
        "sys_updated_on",
        "sys_mod_count",
    ];
    let _ = SYS;
    match table {
        "sc_req_item" => &[
            "sys_id",
            "sys_created_on",
            "sys_updated_on",
            "sys_mod_count",
            "number",
            "request",
            "cat_item",
            "requested_for",
            "opened_by",
            "approval",
            "approval_set",
            "stage",
            "state",
            "active",
            "work_notes",
            "comments",
            "short_description",
        ],
        "sysapproval_approver" => &[
            "sys_id",
            "sys_created_on",
            "sys_updated_on",
            "sys_mod_count",
            "approver",
            "state",
            "sysapproval",
            "source_table",
            "document_id",
            "comments",
        ],
        "sc_item_option_mtom" => &[
            "sys_id",
            "sys_created_on",
            "sys_updated_on",
            "sys_mod_count",
            "request_item",
            "sc_item_option",
        ],
        "sc_item_option" => &[
            "sys_id",
            "sys_created_on",
            "sys_updated_on",
            "sys_mod_count",
            "item_option_new",
            "value",
        ],
        "item_option_new" => &[
            "sys_id",
            "sys_created_on",
            "sys_updated_on",
            "sys_mod_count",
            "name",
            "question_text",
        ],
        "sc_task" => &[
            "sys_id",
            "sys_created_on",
            "sys_updated_on",
            "sys_mod_count",
            "number",
            "request_item",
            "state",
            "assignment_group",
            "assigned_to",
            "active",
            "work_notes",
            "close_notes",
            "short_description",
            "description",
            "correlation_id",
            "correlation_display",
        ],
        "sys_user" => &[
            "sys_id",
            "sys_created_on",
            "sys_updated_on",
            "sys_mod_count",
            "user_name",
            "email",
            "name",
        ],
        "sc_cat_item" => &[
            "sys_id",
            "sys_created_on",
            "sys_updated_on",
            "sys_mod_count",
            "name",
        ],
        "sys_journal_field" => &[
            "sys_id",
            "sys_created_on",
            "sys_updated_on",
            "sys_mod_count",
            "element_id",
            "element",
            "name",
            "value",
        ],
        _ => &[],
    }
}

const JOURNAL_FIELDS: [&str; 2] = ["work_notes", "comments"];

fn choice_label(table: &str, field: &str, v: &str) -> Option<&'static str> {
    Some(match (table, field, v) {
        ("sc_task" | "sc_req_item", "state", "-5") => "Pending",
        ("sc_task" | "sc_req_item", "state", "1") => "Open",
        ("sc_task" | "sc_req_item", "state", "2") => "Work in Progress",
        ("sc_task" | "sc_req_item", "state", "3") => "Closed Complete",
        ("sc_task" | "sc_req_item", "state", "4") => "Closed Incomplete",
        ("sc_task" | "sc_req_item", "state", "7") => "Closed Skipped",
        (_, "approval" | "state", "approved") => "Approved",
        (_, "approval" | "state", "rejected") => "Rejected",
        (_, "approval" | "state", "requested") => "Requested",
        (_, "approval" | "state", "not requested") => "Not Yet Requested",
        _ => return None,
    })
}

/// A per-window request limit (the mock's `sys_rate_limit_rules` row).
#[derive(Debug, Clone, Copy)]
struct RateRule {
    limit: u32,
    window: Duration,
}

#[derive(Debug, Default)]
struct Db {
    tables: HashMap<String, Vec<Rec>>,
    seq: u64,
    numbers: HashMap<&'static str, u64>,
    skew_secs: i64,
    rule: Option<RateRule>,
    window_start: Option<SystemTime>,
    window_count: u32,
    throttle_next: u32,
    throttle_after: u64,
    requests: u64,
    throttled: u64,
    tokens: Vec<String>,
    fail_next: Vec<u16>,
}

/// Credentials the mock accepts.
#[derive(Debug, Clone)]
pub struct MockAuth {
    /// Basic user.
    pub username: String,
    /// Basic password.
    pub password: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
}

impl Default for MockAuth {
    fn default() -> Self {
        Self {
            username: "svc_iga".into(),
            password: "mock-password".into(),
            client_id: "iga-client".into(),
            client_secret: "mock-client-secret".into(),
        }
    }
}

#[derive(Clone)]
struct AppState {
    db: Arc<Mutex<Db>>,
    auth: MockAuth,
    base: String,
}

/// A running mock instance. Dropping it stops the server.
#[derive(Debug)]
pub struct MockServiceNow {
    db: Arc<Mutex<Db>>,
    addr: SocketAddr,
    auth: MockAuth,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockServiceNow {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A requested item created by [`MockServiceNow::create_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockRequest {
    /// RITM sys_id.
    pub sys_id: String,
    /// RITM number (`RITM0010001`).
    pub number: String,
}

impl MockServiceNow {
    /// Start on a random loopback port. Panics (loudly) if the server cannot start.
    pub async fn start() -> Self {
        Self::start_with(MockAuth::default()).await
    }

    /// Start with specific credentials.
    pub async fn start_with(auth: MockAuth) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("mock servicenow: cannot bind a loopback port");
        let addr = listener.local_addr().expect("mock servicenow: local addr");
        let db = Arc::new(Mutex::new(Db::default()));
        let state = AppState {
            db: db.clone(),
            auth: auth.clone(),
            base: format!("http://{addr}"),
        };
        let app = Router::new()
            .route("/oauth_token.do", post(token))
            .route("/api/now/table/{table}", get(list).post(create))
            .route("/api/now/v2/table/{table}", get(list).post(create))
            .route(
                "/api/now/table/{table}/{sys_id}",
                get(get_one).patch(update).put(update),
            )
            .with_state(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("mock servicenow: server failed");
        });
        Self {
            db,
            addr,
            auth,
            task,
        }
    }

    /// The instance URL (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The accepted credentials.
    pub fn auth(&self) -> &MockAuth {
        &self.auth
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Db> {
        self.db.lock().expect("mock db")
    }

    /// The mock's clock (wall clock plus the configured skew).
    pub fn now(&self) -> DateTime<Utc> {
        self.db().now()
    }

    /// Shift the instance clock by `secs` relative to ours (clock skew).
    pub fn set_skew(&self, secs: i64) {
        self.db().skew_secs = secs;
    }

    /// Enforce a rate-limit rule: `limit` requests per `window`; every answer carries
    /// the `X-RateLimit-*` headers; over the limit -> 429 + `Retry-After`.
    pub fn set_rate_limit(&self, limit: u32, window: Duration) {
        let mut db = self.db();
        db.rule = Some(RateRule { limit, window });
        db.window_start = None;
        db.window_count = 0;
    }

    /// Answer the next `n` API requests with 429 and `Retry-After: secs`.
    pub fn throttle_next(&self, n: u32, retry_after_secs: u64) {
        let mut db = self.db();
        db.throttle_next = n;
        db.throttle_after = retry_after_secs;
    }

    /// Answer the next API requests with these statuses (e.g. 503), in order.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.db().fail_next = statuses.to_vec();
    }

    /// API requests served (including rejected ones).
    pub fn requests(&self) -> u64 {
        self.db().requests
    }

    /// 429 answers sent.
    pub fn throttled(&self) -> u64 {
        self.db().throttled
    }

    /// Add a user; returns its sys_id.
    pub fn add_user(&self, user_name: &str, email: &str) -> String {
        let mut db = self.db();
        db.insert(
            "sys_user",
            json!({"user_name": user_name, "email": email, "name": user_name}),
        )
    }

    /// Add a catalog item; returns its sys_id.
    pub fn add_catalog_item(&self, name: &str) -> String {
        self.db().insert("sc_cat_item", json!({"name": name}))
    }

    /// Submit a request: a RITM awaiting approval from `approver` (a sys_user
    /// sys_id), with catalog variables.
    pub fn create_request(
        &self,
        cat_item: &str,
        requested_for: &str,
        approver: &str,
        variables: &[(&str, &str)],
    ) -> MockRequest {
        let mut db = self.db();
        let number = db.next_number("RITM");
        let sys_id = db.insert(
            "sc_req_item",
            json!({"number": number, "cat_item": cat_item, "requested_for": requested_for,
                   "opened_by": requested_for, "approval": "requested", "approval_set": "",
                   "stage": "waiting_for_approval", "state": "1", "active": "true",
                   "request": "", "short_description": "Access request"}),
        );
        db.insert(
            "sysapproval_approver",
            json!({"approver": approver, "state": "requested", "sysapproval": sys_id,
                   "source_table": "sc_req_item", "document_id": sys_id}),
        );
        for (name, value) in variables {
            let def = match db.find("item_option_new", |r| str_of(r, "name") == *name) {
                Some(r) => str_of(&r, "sys_id").to_string(),
                None => db.insert(
                    "item_option_new",
                    json!({"name": name, "question_text": name}),
                ),
            };
            let opt = db.insert(
                "sc_item_option",
                json!({"item_option_new": def, "value": value}),
            );
            db.insert(
                "sc_item_option_mtom",
                json!({"request_item": sys_id, "sc_item_option": opt}),
            );
        }
        MockRequest { sys_id, number }
    }

    /// The approver decides: approval rows and the RITM's aggregate `approval`
    /// change, `approval_set` and `sys_updated_on` are stamped. `backdate_secs`
    /// stamps the update that much earlier than now (a late commit).
    pub fn decide(&self, number: &str, approve: bool, backdate_secs: i64) {
        let mut db = self.db();
        let at = format_glide(db.now() - chrono::Duration::seconds(backdate_secs));
        let decision = if approve { "approved" } else { "rejected" };
        let ritm = db
            .find("sc_req_item", |r| str_of(r, "number") == number)
            .unwrap_or_else(|| panic!("mock servicenow: no RITM {number}"));
        let sys_id = str_of(&ritm, "sys_id").to_string();
        db.modify(
            "sysapproval_approver",
            |r| str_of(r, "sysapproval") == sys_id,
            &at,
            |r| {
                r.insert("state".into(), decision.into());
            },
        );
        db.modify(
            "sc_req_item",
            |r| str_of(r, "sys_id") == sys_id,
            &at,
            |r| {
                r.insert("approval".into(), decision.into());
                r.insert("approval_set".into(), at.clone().into());
                r.insert(
                    "stage".into(),
                    if approve {
                        "request_approved"
                    } else {
                        "closed_incomplete"
                    }
                    .into(),
                );
            },
        );
    }

    /// Approve now.
    pub fn approve(&self, number: &str) {
        self.decide(number, true, 0);
    }

    /// A record of `table` by `number` (raw values).
    pub fn record(&self, table: &str, number: &str) -> Option<Value> {
        self.db()
            .find(table, |r| str_of(r, "number") == number)
            .map(Value::Object)
    }

    /// Records of `table`.
    pub fn records(&self, table: &str) -> Vec<Value> {
        self.db()
            .tables
            .get(table)
            .map(|t| t.iter().cloned().map(Value::Object).collect())
            .unwrap_or_default()
    }

    /// Journal entries (`work_notes`) of a record, oldest first.
    pub fn work_notes(&self, table: &str, number: &str) -> Vec<String> {
        let db = self.db();
        let Some(r) = db.find(table, |r| str_of(r, "number") == number) else {
            return Vec::new();
        };
        let id = str_of(&r, "sys_id").to_string();
        db.tables
            .get("sys_journal_field")
            .map(|t| {
                t.iter()
                    .filter(|j| {
                        str_of(j, "element_id") == id && str_of(j, "element") == "work_notes"
                    })
                    .map(|j| str_of(j, "value").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Set a task's state (a fulfiller closing it: `3` complete, `4` incomplete).
    pub fn set_task_state(&self, number: &str, state: &str) {
        let mut db = self.db();
        let at = format_glide(db.now());
        let active = if matches!(state, "3" | "4" | "7") {
            "false"
        } else {
            "true"
        };
        db.modify(
            "sc_task",
            |r| str_of(r, "number") == number,
            &at,
            |r| {
                r.insert("state".into(), state.into());
                r.insert("active".into(), active.into());
            },
        );
    }
}

fn str_of<'a>(r: &'a Rec, f: &str) -> &'a str {
    r.get(f).and_then(Value::as_str).unwrap_or("")
}

impl Db {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(self.skew_secs)
    }

    fn next_number(&mut self, prefix: &'static str) -> String {
        let n = self.numbers.entry(prefix).or_insert(10_000);
        *n += 1;
        format!("{prefix}{:07}", *n)
    }

    fn insert(&mut self, table: &str, v: Value) -> String {
        self.seq += 1;
        let sys_id = format!("{:032x}", 0x5a5a_0000_0000_u64 + self.seq);
        let now = format_glide(self.now());
        let mut rec = match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        rec.insert("sys_id".into(), sys_id.clone().into());
        rec.insert("sys_created_on".into(), now.clone().into());
        rec.insert("sys_updated_on".into(), now.into());
        rec.insert("sys_mod_count".into(), "0".into());
        self.tables.entry(table.to_string()).or_default().push(rec);
        sys_id
    }

    fn find(&self, table: &str, pred: impl Fn(&Rec) -> bool) -> Option<Rec> {
        self.tables.get(table)?.iter().find(|r| pred(r)).cloned()
    }

    fn modify(&mut self, table: &str, pred: impl Fn(&Rec) -> bool, at: &str, f: impl Fn(&mut Rec)) {
        if let Some(t) = self.tables.get_mut(table) {
            for r in t.iter_mut().filter(|r| pred(r)) {
                f(r);
                let mc = str_of(r, "sys_mod_count").parse::<u64>().unwrap_or(0) + 1;
                r.insert("sys_mod_count".into(), mc.to_string().into());
                r.insert("sys_updated_on".into(), at.into());
            }
        }
    }

    /// Resolve a (dot-walked) field of a record to its raw value.
    fn resolve(&self, table: &str, rec: &Rec, path: &str) -> Option<(String, String)> {
        let (head, rest) = match path.split_once('.') {
            Some((h, r)) => (h, Some(r)),
            None => (path, None),
        };
        let v = rec.get(head).and_then(Value::as_str)?.to_string();
        match rest {
            None => Some((table.to_string(), v)),
            Some(rest) => {
                let rt = reference(table, head)?;
                let target = self.find(rt, |r| str_of(r, "sys_id") == v)?;
                self.resolve(rt, &target, rest)
            }
        }
    }

    fn display(&self, table: &str, field: &str, raw: &str) -> String {
        if let Some(rt) = reference(table, field) {
            if raw.is_empty() {
                return String::new();
            }
            return self
                .find(rt, |r| str_of(r, "sys_id") == raw)
                .map(|r| {
                    ["number", "name", "user_name", "value"]
                        .iter()
                        .map(|f| str_of(&r, f))
                        .find(|s| !s.is_empty())
                        .unwrap_or("")
                        .to_string()
                })
                .unwrap_or_default();
        }
        choice_label(table, field, raw)
            .map(str::to_string)
            .unwrap_or_else(|| raw.to_string())
    }
}

// ---------------------------------------------------------------- encoded queries

#[derive(Debug, Clone)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    In,
    NotIn,
    Like,
    StartsWith,
    IsEmpty,
    IsNotEmpty,
}

#[derive(Debug, Clone)]
struct Cond {
    field: String,
    op: Op,
    value: String,
}

#[derive(Debug, Default)]
struct ParsedQuery {
    /// AND of OR-groups.
    groups: Vec<Vec<Cond>>,
    order: Vec<(String, bool)>,
}

fn parse_query(table: &str, q: &str) -> Result<ParsedQuery, String> {
    let mut pq = ParsedQuery::default();
    if q.trim().is_empty() {
        return Ok(pq);
    }
    let cols = columns(table);
    let check_field = |f: &str| -> Result<(), String> {
        let head = f.split('.').next().unwrap_or("");
        if cols.contains(&head) {
            Ok(())
        } else {
            Err(format!("unknown field `{f}` in table {table}"))
        }
    };
    for term in q.split('^') {
        if term.is_empty() {
            return Err("empty query term".into());
        }
        if term == "EQ" {
            continue;
        }
        if term.starts_with("NQ") {
            return Err("^NQ is not supported by this mock".into());
        }
        if let Some(f) = term.strip_prefix("ORDERBYDESC") {
            check_field(f)?;
            pq.order.push((f.to_string(), true));
            continue;
        }
        if let Some(f) = term.strip_prefix("ORDERBY") {
            check_field(f)?;
            pq.order.push((f.to_string(), false));
            continue;
        }
        let (is_or, body) = match term.strip_prefix("OR") {
            Some(b) => (true, b),
            None => (false, term),
        };
        let flen = body
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'))
            .unwrap_or(body.len());
        let (field, rest) = body.split_at(flen);
        if field.is_empty() {
            return Err(format!("malformed query term `{term}`"));
        }
        check_field(field)?;
        let ops: [(&str, Op); 12] = [
            ("ISNOTEMPTY", Op::IsNotEmpty),
            ("ISEMPTY", Op::IsEmpty),
            ("NOT IN", Op::NotIn),
            ("STARTSWITH", Op::StartsWith),
            ("LIKE", Op::Like),
            ("IN", Op::In),
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("!=", Op::Ne),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("=", Op::Eq),
        ];
        let Some((op, value)) = ops
            .iter()
            .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (op.clone(), v)))
        else {
            return Err(format!("malformed query term `{term}`: no operator"));
        };
        if matches!(op, Op::IsEmpty | Op::IsNotEmpty) && !value.is_empty() {
            return Err(format!("malformed query term `{term}`"));
        }
        let value = date_generate(value)?;
        let c = Cond {
            field: field.to_string(),
            op,
            value,
        };
        match (is_or, pq.groups.last_mut()) {
            (true, Some(g)) => g.push(c),
            (true, None) => return Err(format!("`{term}`: ^OR without a preceding condition")),
            (false, _) => pq.groups.push(vec![c]),
        }
    }
    Ok(pq)
}

/// `javascript:gs.dateGenerate('2025-05-01','10:00:00')` -> `2025-05-01 10:00:00`.
fn date_generate(v: &str) -> Result<String, String> {
    let Some(args) = v.strip_prefix("javascript:gs.dateGenerate(") else {
        return Ok(v.to_string());
    };
    let args = args
        .strip_suffix(')')
        .ok_or_else(|| format!("malformed `{v}`"))?;
    let parts: Vec<&str> = args
        .split(',')
        .map(|s| s.trim().trim_matches('\''))
        .collect();
    match parts.as_slice() {
        [d, t] => Ok(format!("{d} {t}")),
        _ => Err(format!("malformed `{v}`")),
    }
}

fn cmp_values(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

fn matches(db: &Db, table: &str, rec: &Rec, c: &Cond) -> bool {
    let v = db
        .resolve(table, rec, &c.field)
        .map(|(_, v)| v)
        .unwrap_or_default();
    use std::cmp::Ordering::*;
    match c.op {
        Op::Eq => v == c.value,
        Op::Ne => v != c.value,
        Op::Gt => !v.is_empty() && cmp_values(&v, &c.value) == Greater,
        Op::Ge => !v.is_empty() && cmp_values(&v, &c.value) != Less,
        Op::Lt => !v.is_empty() && cmp_values(&v, &c.value) == Less,
        Op::Le => !v.is_empty() && cmp_values(&v, &c.value) != Greater,
        Op::In => c.value.split(',').any(|x| x == v),
        Op::NotIn => !c.value.split(',').any(|x| x == v),
        Op::Like => v.to_lowercase().contains(&c.value.to_lowercase()),
        Op::StartsWith => v.starts_with(&c.value),
        Op::IsEmpty => v.is_empty(),
        Op::IsNotEmpty => !v.is_empty(),
    }
}

// ---------------------------------------------------------------- handlers

fn error(status: StatusCode, message: &str, detail: &str) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "detail": detail}, "status": "failure"})),
    )
        .into_response()
}

/// Auth, rate limiting and scripted failures. `Err` is the answer to send (a
/// response, large by nature; this runs once per request).
#[allow(clippy::result_large_err)]
fn gate(st: &AppState, headers: &HeaderMap) -> Result<HeaderMap, Response> {
    let mut db = st.db.lock().expect("mock db");
    db.requests += 1;
    let authz = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ok = if let Some(b) = authz.strip_prefix("Basic ") {
        base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .is_some_and(|s| s == format!("{}:{}", st.auth.username, st.auth.password))
    } else if let Some(t) = authz.strip_prefix("Bearer ") {
        db.tokens.iter().any(|k| k == t.trim())
    } else {
        false
    };
    if !ok {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "User Not Authenticated",
            "Required to provide Auth information",
        ));
    }
    let mut out = HeaderMap::new();
    if db.throttle_next > 0 {
        db.throttle_next -= 1;
        db.throttled += 1;
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit exceeded",
            "Too many requests",
        );
        r.headers_mut()
            .insert("retry-after", HeaderValue::from(db.throttle_after));
        return Err(r);
    }
    if let Some(&s) = db.fail_next.first() {
        db.fail_next.remove(0);
        return Err(error(
            StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "Service unavailable",
            "scripted failure",
        ));
    }
    if let Some(rule) = db.rule {
        let now = SystemTime::now();
        let start = match db.window_start {
            Some(s) if now.duration_since(s).unwrap_or_default() < rule.window => s,
            _ => {
                db.window_start = Some(now);
                db.window_count = 0;
                now
            }
        };
        let reset = start + rule.window;
        let reset_unix = reset
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            + 1;
        out.insert("x-ratelimit-limit", HeaderValue::from(rule.limit));
        out.insert("x-ratelimit-reset", HeaderValue::from(reset_unix));
        out.insert(
            "x-ratelimit-rule",
            HeaderValue::from_static("b1a5e0d2c3f44a1b9c8d7e6f5a4b3c2d"),
        );
        if db.window_count >= rule.limit {
            db.throttled += 1;
            let wait = reset.duration_since(now).unwrap_or_default().as_secs() + 1;
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit exceeded",
                "Rate limit rule exceeded for this user",
            );
            r.headers_mut().extend(out);
            r.headers_mut()
                .insert("retry-after", HeaderValue::from(wait));
            return Err(r);
        }
        db.window_count += 1;
    }
    Ok(out)
}

async fn token(State(st): State<AppState>, Form(f): Form<HashMap<String, String>>) -> Response {
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    if get("grant_type") != "client_credentials"
        || get("client_id") != st.auth.client_id
        || get("client_secret") != st.auth.client_secret
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "access_denied", "error_description": "access_denied"})),
        )
            .into_response();
    }
    let mut db = st.db.lock().expect("mock db");
    db.seq += 1;
    let t = format!("mock-token-{}", db.seq);
    db.tokens.push(t.clone());
    Json(json!({"access_token": t, "token_type": "Bearer", "expires_in": 1799, "scope": "useraccount"}))
        .into_response()
}

fn render(
    db: &Db,
    st: &AppState,
    table: &str,
    rec: &Rec,
    fields: Option<&[String]>,
    exclude_links: bool,
    display: &str,
) -> Value {
    let names: Vec<String> = match fields {
        Some(f) => f.to_vec(),
        None => {
            let mut v: Vec<String> = rec.keys().cloned().collect();
            v.sort();
            v
        }
    };
    let mut out = Map::new();
    for name in names {
        let resolved = db.resolve(table, rec, &name);
        let (owner, raw) = resolved
            .clone()
            .unwrap_or_else(|| (table.to_string(), String::new()));
        let leaf = name.rsplit('.').next().unwrap_or(&name).to_string();
        let raw = if JOURNAL_FIELDS.contains(&leaf.as_str()) {
            String::new()
        } else {
            raw
        };
        let disp = db.display(&owner, &leaf, &raw);
        let value = match display {
            "true" => Value::String(disp),
            "all" => json!({"display_value": disp, "value": raw}),
            _ => match reference(&owner, &leaf) {
                Some(rt) if !exclude_links && !raw.is_empty() => json!({
                    "link": format!("{}/api/now/table/{rt}/{raw}", st.base),
                    "value": raw,
                }),
                _ => Value::String(raw),
            },
        };
        if resolved.is_some() || fields.is_some() {
            out.insert(name, value);
        }
    }
    Value::Object(out)
}

async fn list(
    State(st): State<AppState>,
    Path(table): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let extra = match gate(&st, &headers) {
        Ok(h) => h,
        Err(r) => return r,
    };
    if columns(&table).is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "Invalid table",
            &format!("Invalid table {table}"),
        );
    }
    let limit = match q.get("sysparm_limit").map(|s| s.parse::<u32>()) {
        None => MOCK_MAX_LIMIT,
        Some(Ok(n)) if n > 0 && n <= MOCK_MAX_LIMIT => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "Invalid sysparm_limit",
                &format!("sysparm_limit must be between 1 and {MOCK_MAX_LIMIT}"),
            );
        }
    };
    let offset = match q.get("sysparm_offset").map(|s| s.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "Invalid sysparm_offset",
                "not a number",
            );
        }
    };
    let pq = match parse_query(
        &table,
        q.get("sysparm_query").map(String::as_str).unwrap_or(""),
    ) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, "Invalid query", &e),
    };
    let fields: Option<Vec<String>> = q
        .get("sysparm_fields")
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(|f| f.trim().to_string()).collect());
    let exclude = q
        .get("sysparm_exclude_reference_link")
        .is_some_and(|v| v == "true");
    let display = q
        .get("sysparm_display_value")
        .cloned()
        .unwrap_or_else(|| "false".into());
    let db = st.db.lock().expect("mock db");
    let rows = db.tables.get(&table).cloned().unwrap_or_default();
    let mut hits: Vec<Rec> = rows
        .into_iter()
        .filter(|r| {
            pq.groups
                .iter()
                .all(|g| g.iter().any(|c| matches(&db, &table, r, c)))
        })
        .collect();
    if pq.order.is_empty() {
        hits.sort_by(|a, b| str_of(a, "sys_id").cmp(str_of(b, "sys_id")));
    } else {
        hits.sort_by(|a, b| {
            for (f, desc) in &pq.order {
                let x = db.resolve(&table, a, f).map(|v| v.1).unwrap_or_default();
                let y = db.resolve(&table, b, f).map(|v| v.1).unwrap_or_default();
                let o = cmp_values(&x, &y);
                let o = if *desc { o.reverse() } else { o };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    let total = hits.len();
    let page: Vec<Value> = hits
        .iter()
        .skip(offset)
        .take(limit as usize)
        .map(|r| render(&db, &st, &table, r, fields.as_deref(), exclude, &display))
        .collect();
    let mut resp = Json(json!({"result": page})).into_response();
    let h = resp.headers_mut();
    h.extend(extra);
    if q.get("sysparm_no_count").is_none_or(|v| v != "true") {
        h.insert("x-total-count", HeaderValue::from(total));
    }
    let link = |off: usize, rel: &str| {
        format!(
            "<{}/api/now/table/{table}?sysparm_limit={limit}&sysparm_offset={off}>;rel=\"{rel}\"",
            st.base
        )
    };
    let mut links = vec![link(0, "first")];
    if offset + (limit as usize) < total {
        links.push(link(offset + limit as usize, "next"));
    }
    let last = total.saturating_sub(1) / (limit as usize) * (limit as usize);
    links.push(link(last, "last"));
    if let Ok(v) = HeaderValue::from_str(&links.join(",")) {
        h.insert("link", v);
    }
    resp
}

async fn get_one(
    State(st): State<AppState>,
    Path((table, sys_id)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = gate(&st, &headers) {
        return r;
    }
    let db = st.db.lock().expect("mock db");
    let exclude = q
        .get("sysparm_exclude_reference_link")
        .is_some_and(|v| v == "true");
    match db.find(&table, |r| str_of(r, "sys_id") == sys_id) {
        Some(r) => Json(json!({"result": render(&db, &st, &table, &r, None, exclude, "false")}))
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "No Record found",
            "Record doesn't exist or ACL restricts the record retrieval",
        ),
    }
}

fn apply_write(db: &mut Db, table: &str, rec: &mut Rec, body: &Map<String, Value>) {
    let now = format_glide(db.now());
    for (k, v) in body {
        if !columns(table).contains(&k.as_str()) || k.starts_with("sys_") {
            continue; // the Table API ignores unknown and system fields on write
        }
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        if JOURNAL_FIELDS.contains(&k.as_str()) {
            if !s.is_empty() {
                let id = str_of(rec, "sys_id").to_string();
                db.insert(
                    "sys_journal_field",
                    json!({"element_id": id, "element": k, "name": table, "value": s}),
                );
            }
            continue;
        }
        rec.insert(k.clone(), s.into());
    }
    if matches!(str_of(rec, "state"), "3" | "4" | "7") {
        rec.insert("active".into(), "false".into());
    }
    let mc = str_of(rec, "sys_mod_count").parse::<u64>().unwrap_or(0) + 1;
    rec.insert("sys_mod_count".into(), mc.to_string().into());
    rec.insert("sys_updated_on".into(), now.into());
}

async fn create(
    State(st): State<AppState>,
    Path(table): Path<String>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if let Err(r) = gate(&st, &headers) {
        return r;
    }
    let Some(Json(Value::Object(body))) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "body must be a JSON object",
        );
    };
    if columns(&table).is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "Invalid table",
            &format!("Invalid table {table}"),
        );
    }
    let mut db = st.db.lock().expect("mock db");
    let mut init = json!({});
    if table == "sc_task" {
        let n = db.next_number("SCTASK");
        init = json!({"number": n, "state": "1", "active": "true"});
    }
    let sys_id = db.insert(&table, init);
    let mut rec = db
        .find(&table, |r| str_of(r, "sys_id") == sys_id)
        .expect("inserted");
    apply_write(&mut db, &table, &mut rec, &body);
    rec.insert("sys_mod_count".into(), "0".into());
    if let Some(t) = db.tables.get_mut(&table)
        && let Some(r) = t.iter_mut().find(|r| str_of(r, "sys_id") == sys_id)
    {
        *r = rec.clone();
    }
    let v = render(&db, &st, &table, &rec, None, true, "false");
    (StatusCode::CREATED, Json(json!({"result": v}))).into_response()
}

async fn update(
    State(st): State<AppState>,
    Path((table, sys_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if let Err(r) = gate(&st, &headers) {
        return r;
    }
    let Some(Json(Value::Object(body))) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "body must be a JSON object",
        );
    };
    let mut db = st.db.lock().expect("mock db");
    let Some(mut rec) = db.find(&table, |r| str_of(r, "sys_id") == sys_id) else {
        return error(
            StatusCode::NOT_FOUND,
            "No Record found",
            "Record doesn't exist or ACL restricts the record retrieval",
        );
    };
    apply_write(&mut db, &table, &mut rec, &body);
    if let Some(t) = db.tables.get_mut(&table)
        && let Some(r) = t.iter_mut().find(|r| str_of(r, "sys_id") == sys_id)
    {
        *r = rec.clone();
    }
    let v = render(&db, &st, &table, &rec, None, true, "false");
    Json(json!({"result": v})).into_response()
}

/// Headers of a [Standard Webhooks](https://www.standardwebhooks.com/) delivery
/// signed with `key` (the raw bytes behind a `whsec_<base64>` secret): what a
/// ServiceNow outbound REST message configured with that scheme sends.
pub fn standard_webhook_headers(
    key: &[u8],
    delivery_id: &str,
    unix_ts: i64,
    body: &[u8],
) -> HeaderMap {
    let mut msg = format!("{delivery_id}.{unix_ts}.").into_bytes();
    msg.extend_from_slice(body);
    let sig =
        base64::engine::general_purpose::STANDARD.encode(iga_http::webhook::hmac_sha256(key, &msg));
    let mut h = HeaderMap::new();
    h.insert(
        "webhook-id",
        HeaderValue::from_str(delivery_id).expect("ascii id"),
    );
    h.insert("webhook-timestamp", HeaderValue::from(unix_ts));
    h.insert(
        "webhook-signature",
        HeaderValue::from_str(&format!("v1,{sig}")).expect("ascii signature"),
    );
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h
}

/// The `whsec_<base64>` form of `key`, as configured on both sides.
pub fn whsec(key: &[u8]) -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parser_accepts_the_subset_and_rejects_junk() {
        let q = parse_query(
            "sc_req_item",
            "approval=approved^sys_updated_on>=javascript:gs.dateGenerate('2026-05-01','10:00:00')^ORDERBYsys_updated_on^ORDERBYsys_id",
        )
        .unwrap();
        assert_eq!(q.groups.len(), 2);
        assert_eq!(q.groups[1][0].value, "2026-05-01 10:00:00");
        assert_eq!(q.order.len(), 2);
        let q = parse_query(
            "sc_task",
            "state=1^ORstate=2^request_item.numberSTARTSWITHRITM",
        )
        .unwrap();
        assert_eq!(q.groups[0].len(), 2);
        for bad in [
            "approval",
            "approval=approved^",
            "nosuchfield=1",
            "^ORstate=1",
            "APPROVAL=x",
            "approvalISEMPTYx",
        ] {
            assert!(parse_query("sc_req_item", bad).is_err(), "{bad}");
        }
    }
}
