//! A faithful in-process OData v2 (SAP Gateway style) GRC mock, feature
//! `test-support`, after the model of protocols.md §6.2:
//! `GET <svc>/AccessRequestSet?$filter=…&$orderby=…&$expand=Lines&$format=json`
//! with a `$filter` subset (`Status`, `ReqNo`, `UserId` with `eq`/`ne`,
//! `UpdatedOn` with `datetime'…'` and `eq ne ge gt le lt`, `and`, `or`,
//! parentheses), `$orderby` on `UpdatedOn`/`CreatedOn`/`ReqNo`, client paging
//! (`$top` ≤ 1000, `$skip`) and server paging (100 per page, `d.__next` with an
//! opaque, expirable `$skiptoken`, stable under concurrent changes), unexpanded
//! `Lines` as `__deferred`, `/Date(ms)/` values, OData error bodies, unknown system
//! query options rejected, Basic auth, the CSRF handshake on writes (`403` +
//! `x-csrf-token: Required` without a fetched token), per-line result upserts that
//! change the line status and `UpdatedOn`, rate-limit headers and scripted 429s.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::NaiveDate;
use iga_adapter::Secret;
use iga_directive::Timestamp;
use serde_json::{Map, Value, json};

use crate::dialect::{GrcAuth, ODataConfig, format_odata_date};

/// The mock's technical user.
pub const USER: &str = "IGA_TECH";
/// Its password.
pub const PASSWORD: &str = "mock-password";
/// Service path.
pub const SERVICE: &str = "/sap/opu/odata/sap/GRAC_API_SRV";

/// A seeded line item.
#[derive(Debug, Clone)]
pub struct MockLine {
    /// System id.
    pub system: String,
    /// Role.
    pub role: String,
    /// `ASSIGN` / `REMOVE`.
    pub action: String,
    /// Validity start.
    pub valid_from: Option<NaiveDate>,
    /// Validity end.
    pub valid_to: Option<NaiveDate>,
    /// Line status.
    pub status: String,
}

impl MockLine {
    /// An approved, open-ended assignment of `role` in `system`.
    pub fn assign(system: &str, role: &str) -> Self {
        Self {
            system: system.into(),
            role: role.into(),
            action: "ASSIGN".into(),
            valid_from: None,
            valid_to: NaiveDate::from_ymd_opt(9999, 12, 31),
            status: "APPROVED".into(),
        }
    }

    /// With validity dates.
    pub fn valid(mut self, from: NaiveDate, to: NaiveDate) -> Self {
        self.valid_from = Some(from);
        self.valid_to = Some(to);
        self
    }

    /// With a line status.
    pub fn status(mut self, s: &str) -> Self {
        self.status = s.into();
        self
    }
}

#[derive(Debug, Clone)]
struct Req {
    req_no: String,
    status: String,
    created: Timestamp,
    updated: Timestamp,
    user_id: String,
    email: Option<String>,
    lines: Vec<MockLine>,
    raw_overrides: Map<String, Value>,
    line_overrides: BTreeMap<usize, Map<String, Value>>,
}

#[derive(Debug)]
struct St {
    now: Timestamp,
    reqs: Vec<Req>,
    next_no: u64,
    results: BTreeMap<(String, String, String), Value>,
    csrf: String,
    throttle: u32,
    retry_after: u64,
    epoch: u64,
    page: usize,
    requests: u64,
    throttled: u64,
}

/// A running mock; dropped → server stops.
#[derive(Debug)]
pub struct GrcMock {
    addr: SocketAddr,
    st: Arc<Mutex<St>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GrcMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Shared = Arc<Mutex<St>>;

impl GrcMock {
    /// Start on a random loopback port; panics if it cannot listen.
    pub async fn start() -> Self {
        let st = Arc::new(Mutex::new(St {
            now: chrono::DateTime::parse_from_rfc3339("2026-11-22T08:00:00Z")
                .expect("literal")
                .to_utc(),
            reqs: Vec::new(),
            next_no: 9_000_000_000,
            results: BTreeMap::new(),
            csrf: "c5rf-t0ken".into(),
            throttle: 0,
            retry_after: 1,
            epoch: 0,
            page: 100,
            requests: 0,
            throttled: 0,
        }));
        let app = Router::new()
            .route(&format!("{SERVICE}/"), get(service_doc))
            .route(&format!("{SERVICE}/{{set}}"), get(get_set).post(post_set))
            .with_state(st.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("grc mock: cannot bind a loopback port");
        let addr = listener.local_addr().expect("grc mock: local addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("grc mock: server failed");
        });
        Self { addr, st, task }
    }

    /// The service root URL.
    pub fn service_url(&self) -> String {
        format!("http://{}{SERVICE}", self.addr)
    }

    /// An OData configuration with the mock's credentials.
    pub fn config(&self) -> ODataConfig {
        ODataConfig::new(
            &self.service_url(),
            GrcAuth::Basic {
                user: USER.into(),
                password: Secret::new(PASSWORD),
            },
        )
        .expect("mock url")
    }

    fn s(&self) -> std::sync::MutexGuard<'_, St> {
        self.st.lock().expect("mock lock")
    }

    /// The mock clock.
    pub fn now(&self) -> Timestamp {
        self.s().now
    }

    /// Set the mock clock (model skew).
    pub fn set_now(&self, t: Timestamp) {
        self.s().now = t;
    }

    /// Advance the mock clock.
    pub fn advance(&self, d: Duration) {
        self.s().now += chrono::Duration::from_std(d).expect("duration");
    }

    /// Server page size (default 100).
    pub fn set_server_page(&self, n: usize) {
        self.s().page = n.max(1);
    }

    /// Seed a request with `status` for `user`; returns its number.
    pub fn add_request(&self, user: &str, status: &str, lines: Vec<MockLine>) -> String {
        let mut s = self.s();
        s.next_no += 1;
        let no = s.next_no.to_string();
        let now = s.now;
        s.reqs.push(Req {
            req_no: no.clone(),
            status: status.into(),
            created: now,
            updated: now,
            user_id: user.into(),
            email: Some(format!("{}@example.com", user.to_ascii_lowercase())),
            lines,
            raw_overrides: Map::new(),
            line_overrides: BTreeMap::new(),
        });
        no
    }

    /// Replace a top-level field of a request's JSON (malformed payloads).
    pub fn corrupt(&self, req_no: &str, field: &str, value: Value) {
        let mut s = self.s();
        let r = s
            .reqs
            .iter_mut()
            .find(|r| r.req_no == req_no)
            .expect("request");
        r.raw_overrides.insert(field.into(), value);
    }

    /// Replace a field of line `index` (0-based) in a request's JSON.
    pub fn corrupt_line(&self, req_no: &str, index: usize, field: &str, value: Value) {
        let mut s = self.s();
        let r = s
            .reqs
            .iter_mut()
            .find(|r| r.req_no == req_no)
            .expect("request");
        r.line_overrides
            .entry(index)
            .or_default()
            .insert(field.into(), value);
    }

    /// The last MSMP stage approves: request and every `PENDING` line become
    /// `APPROVED`, `UpdatedOn` is the mock clock.
    pub fn approve(&self, req_no: &str) {
        let mut s = self.s();
        let now = s.now;
        let r = s
            .reqs
            .iter_mut()
            .find(|r| r.req_no == req_no)
            .expect("request");
        r.status = "APPROVED".into();
        for l in &mut r.lines {
            if l.status == "PENDING" {
                l.status = "APPROVED".into();
            }
        }
        r.updated = now;
    }

    /// Set `UpdatedOn` (models late visibility).
    pub fn set_updated(&self, req_no: &str, t: Timestamp) {
        let mut s = self.s();
        let r = s
            .reqs
            .iter_mut()
            .find(|r| r.req_no == req_no)
            .expect("request");
        r.updated = t;
    }

    /// Line statuses of a request.
    pub fn line_statuses(&self, req_no: &str) -> Vec<String> {
        let s = self.s();
        let r = s.reqs.iter().find(|r| r.req_no == req_no).expect("request");
        r.lines.iter().map(|l| l.status.clone()).collect()
    }

    /// Results written back, in key order: `(ReqNo, LineId, DirectiveId)` → body.
    pub fn results(&self) -> Vec<Value> {
        self.s().results.values().cloned().collect()
    }

    /// Answer the next `n` requests 429 with `Retry-After: secs`.
    pub fn throttle_next(&self, n: u32, secs: u64) {
        let mut s = self.s();
        s.throttle = n;
        s.retry_after = secs;
    }

    /// Invalidate every `$skiptoken` handed out.
    pub fn expire_skiptokens(&self) {
        self.s().epoch += 1;
    }

    /// Requests answered.
    pub fn requests(&self) -> u64 {
        self.s().requests
    }

    /// 429s sent.
    pub fn throttled(&self) -> u64 {
        self.s().throttled
    }
}

fn odata_err(status: StatusCode, code: &str, msg: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": {"lang": "en", "value": msg}}})),
    )
        .into_response()
}

fn limits(mut r: Response) -> Response {
    r.headers_mut()
        .insert("x-ratelimit-limit", HeaderValue::from_static("600"));
    r.headers_mut()
        .insert("x-ratelimit-remaining", HeaderValue::from_static("599"));
    r
}

fn gate(st: &Shared, h: &HeaderMap) -> Result<(), Box<Response>> {
    let mut s = st.lock().expect("mock lock");
    s.requests += 1;
    let expected = format!("Basic {}", STANDARD.encode(format!("{USER}:{PASSWORD}")));
    if h.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        let mut r = odata_err(
            StatusCode::UNAUTHORIZED,
            "/IWFND/CM_CONSUMER/101",
            "Logon failed",
        );
        r.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"SAP NetWeaver Application Server\""),
        );
        return Err(Box::new(r));
    }
    if s.throttle > 0 {
        s.throttle -= 1;
        s.throttled += 1;
        let mut r = odata_err(
            StatusCode::TOO_MANY_REQUESTS,
            "429",
            "Rate limit quota violation. Quota limit exceeded.",
        );
        r.headers_mut().insert(
            "retry-after",
            HeaderValue::from_str(&s.retry_after.to_string()).expect("digits"),
        );
        r.headers_mut()
            .insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
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

async fn service_doc(State(st): State<Shared>, h: HeaderMap) -> Response {
    gate!(st, h);
    let mut r = limits(
        Json(json!({"d": {"EntitySets": ["AccessRequestSet", "ProvisioningResultSet"]}}))
            .into_response(),
    );
    if h.get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("fetch"))
    {
        let t = st.lock().expect("mock lock").csrf.clone();
        r.headers_mut()
            .insert("x-csrf-token", HeaderValue::from_str(&t).expect("ascii"));
    }
    r
}

fn date_str(d: Option<NaiveDate>) -> Value {
    match d {
        Some(d) => json!(format_odata_date(chrono::TimeZone::from_utc_datetime(
            &chrono::Utc,
            &d.and_hms_opt(0, 0, 0).expect("midnight")
        ))),
        None => Value::Null,
    }
}

fn entity(base: &str, r: &Req, expand: bool) -> Value {
    let mut v = json!({
        "__metadata": {"uri": format!("{base}/AccessRequestSet('{}')", r.req_no), "type": "GRAC_API_SRV.AccessRequest"},
        "ReqNo": r.req_no, "ReqId": format!("005056A1{}", &r.req_no[4..]), "ReqType": "001", "Priority": "HIGH",
        "Status": r.status, "CreatedOn": format_odata_date(r.created), "UpdatedOn": format_odata_date(r.updated),
        "UserId": r.user_id, "Email": r.email,
    });
    if expand {
        let lines: Vec<Value> = r.lines.iter().enumerate().map(|(i, l)| {
            let mut lv = json!({"__metadata": {"type": "GRAC_API_SRV.AccessRequestLine"},
                "ReqNo": r.req_no, "LineId": (i + 1).to_string(), "System": l.system, "Role": l.role, "Action": l.action,
                "ValidFrom": date_str(l.valid_from), "ValidTo": date_str(l.valid_to), "Status": l.status});
            if let Some(o) = r.line_overrides.get(&i) {
                for (k, x) in o {
                    lv[k] = x.clone();
                }
            }
            lv
        }).collect();
        v["Lines"] = json!({"results": lines});
    } else {
        v["Lines"] = json!({"__deferred": {"uri": format!("{base}/AccessRequestSet('{}')/Lines", r.req_no)}});
    }
    for (k, x) in &r.raw_overrides {
        v[k] = x.clone();
    }
    v
}

// ---- $filter subset ---------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum T {
    Id(String),
    Str(String),
    Dt(String),
    LP,
    RP,
}

fn lex(f: &str) -> Result<Vec<T>, String> {
    let cs: Vec<char> = f.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(T::LP);
            i += 1;
        } else if c == ')' {
            out.push(T::RP);
            i += 1;
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match cs.get(i) {
                    None => return Err(format!("Unterminated string literal at position {i}")),
                    Some('\'') if cs.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(T::Str(s));
        } else if c.is_alphanumeric() || c == '_' {
            let mut w = String::new();
            while let Some(ch) = cs.get(i).filter(|ch| ch.is_alphanumeric() || **ch == '_') {
                w.push(*ch);
                i += 1;
            }
            if w == "datetime" && cs.get(i) == Some(&'\'') {
                let Some(T::Str(s)) = lex(&cs[i..].iter().collect::<String>())?.into_iter().next()
                else {
                    return Err(format!("Invalid datetime literal at position {i}"));
                };
                i += s.len() + 2;
                out.push(T::Dt(s));
            } else {
                out.push(T::Id(w));
            }
        } else {
            return Err(format!("Invalid token '{c}' at position {i}"));
        }
    }
    Ok(out)
}

#[derive(Debug)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(String, String, T),
}

struct P {
    t: Vec<T>,
    i: usize,
}

impl P {
    fn expr(&mut self) -> Result<Expr, String> {
        let mut l = self.term()?;
        while matches!(self.t.get(self.i), Some(T::Id(w)) if w == "or") {
            self.i += 1;
            l = Expr::Or(Box::new(l), Box::new(self.term()?));
        }
        Ok(l)
    }
    fn term(&mut self) -> Result<Expr, String> {
        let mut l = self.factor()?;
        while matches!(self.t.get(self.i), Some(T::Id(w)) if w == "and") {
            self.i += 1;
            l = Expr::And(Box::new(l), Box::new(self.factor()?));
        }
        Ok(l)
    }
    fn factor(&mut self) -> Result<Expr, String> {
        if self.t.get(self.i) == Some(&T::LP) {
            self.i += 1;
            let e = self.expr()?;
            if self.t.get(self.i) != Some(&T::RP) {
                return Err("Missing closing parenthesis".into());
            }
            self.i += 1;
            return Ok(e);
        }
        let Some(T::Id(field)) = self.t.get(self.i).cloned() else {
            return Err(format!("Property expected at token {}", self.i));
        };
        if !["Status", "UpdatedOn", "ReqNo", "UserId"].contains(&field.as_str()) {
            return Err(format!(
                "Property '{field}' not found in type 'AccessRequest'"
            ));
        }
        let Some(T::Id(op)) = self.t.get(self.i + 1).cloned() else {
            return Err(format!("Operator expected after '{field}'"));
        };
        if !["eq", "ne", "ge", "gt", "le", "lt"].contains(&op.as_str()) {
            return Err(format!("Unknown operator '{op}'"));
        }
        let lit = self.t.get(self.i + 2).cloned().ok_or("Literal expected")?;
        match (&field[..], &lit) {
            ("UpdatedOn", T::Dt(s)) => {
                chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                    .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
                    .map_err(|_| {
                        format!("Invalid parametertype used at function 'datetime' ('{s}')")
                    })?;
            }
            ("UpdatedOn", _) => {
                return Err(
                    "Invalid parametertype used at function 'ge/le' for property 'UpdatedOn'"
                        .into(),
                );
            }
            (_, T::Str(_)) if op == "eq" || op == "ne" => {}
            _ => {
                return Err(format!(
                    "Operator '{op}' with this literal is not supported for '{field}'"
                ));
            }
        }
        self.i += 3;
        Ok(Expr::Cmp(field, op, lit))
    }
}

fn parse_filter(f: &str) -> Result<Expr, String> {
    let mut p = P { t: lex(f)?, i: 0 };
    let e = p.expr()?;
    if p.i != p.t.len() {
        return Err(format!("Unexpected token at {}", p.i));
    }
    Ok(e)
}

fn eval(e: &Expr, r: &Req) -> bool {
    match e {
        Expr::And(a, b) => eval(a, r) && eval(b, r),
        Expr::Or(a, b) => eval(a, r) || eval(b, r),
        Expr::Cmp(f, op, lit) => {
            if f == "UpdatedOn" {
                let T::Dt(s) = lit else { return false };
                let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                    .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
                    .expect("validated")
                    .and_utc();
                let u = r.updated;
                return match op.as_str() {
                    "eq" => u == t,
                    "ne" => u != t,
                    "ge" => u >= t,
                    "gt" => u > t,
                    "le" => u <= t,
                    _ => u < t,
                };
            }
            let T::Str(v) = lit else { return false };
            let have = match f.as_str() {
                "Status" => &r.status,
                "ReqNo" => &r.req_no,
                _ => &r.user_id,
            };
            (have == v) == (op == "eq")
        }
    }
}

fn parse_query(raw: &str) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        if k.starts_with('$')
            && ![
                "$filter",
                "$orderby",
                "$expand",
                "$format",
                "$top",
                "$skip",
                "$skiptoken",
                "$select",
                "$inlinecount",
            ]
            .contains(&k.as_ref())
        {
            return Err(format!("System query option '{k}' is not supported"));
        }
        m.insert(k.into_owned(), v.into_owned());
    }
    Ok(m)
}

fn bad(msg: &str) -> Response {
    odata_err(StatusCode::BAD_REQUEST, "/IWBEP/CM_MGW_RT/022", msg)
}

async fn get_set(
    State(st): State<Shared>,
    h: HeaderMap,
    Path(set): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    gate!(st, h);
    let q = match parse_query(q.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(m) => return bad(&m),
    };
    let expand = match q.get("$expand").map(String::as_str) {
        None => false,
        Some("Lines") => true,
        Some(other) => return bad(&format!("Navigation property '{other}' not found")),
    };
    if q.get("$format").is_some_and(|f| f != "json")
        && !h
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("json"))
    {
        return bad("Only $format=json is supported by this service");
    }
    let base = format!(
        "http://{}{SERVICE}",
        h.get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost")
    );
    if let Some(key) = set
        .strip_prefix("AccessRequestSet('")
        .and_then(|k| k.strip_suffix("')"))
    {
        let s = st.lock().expect("mock lock");
        return match s.reqs.iter().find(|r| r.req_no == key) {
            Some(r) => limits(Json(json!({"d": entity(&base, r, expand)})).into_response()),
            None => odata_err(
                StatusCode::NOT_FOUND,
                "/IWBEP/CM_MGW_RT/020",
                &format!("Resource not found for segment 'AccessRequest' with key '{key}'"),
            ),
        };
    }
    if set != "AccessRequestSet" {
        return odata_err(
            StatusCode::NOT_FOUND,
            "/IWBEP/CM_MGW_RT/021",
            &format!("Resource not found for segment '{set}'"),
        );
    }
    let filter = match q.get("$filter").map(|f| parse_filter(f)) {
        None => None,
        Some(Ok(e)) => Some(e),
        Some(Err(m)) => return bad(&m),
    };
    let mut order: Vec<(String, bool)> = Vec::new();
    if let Some(o) = q.get("$orderby") {
        for part in o.split(',') {
            let mut it = part.split_whitespace();
            let f = it.next().unwrap_or_default();
            if !["UpdatedOn", "CreatedOn", "ReqNo"].contains(&f) {
                return bad(&format!("Property '{f}' cannot be used in $orderby"));
            }
            let asc = match it.next() {
                None | Some("asc") => true,
                Some("desc") => false,
                Some(x) => return bad(&format!("Invalid sort direction '{x}'")),
            };
            order.push((f.to_string(), asc));
        }
    }
    let num = |k: &str, max: u64| -> Result<Option<u64>, String> {
        match q.get(k) {
            None => Ok(None),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n <= max => Ok(Some(n)),
                _ => Err(format!("Invalid value '{v}' for {k} (0..{max})")),
            },
        }
    };
    let top = match num("$top", 1000) {
        Ok(t) => t,
        Err(m) => return bad(&m),
    };
    let skip = match num("$skip", u64::MAX) {
        Ok(t) => t.unwrap_or(0) as usize,
        Err(m) => return bad(&m),
    };
    let s = st.lock().expect("mock lock");
    let shape = format!("{:?}|{:?}|{expand}", q.get("$filter"), order);
    let after: Option<Vec<i64>> = match q.get("$skiptoken") {
        None => None,
        Some(t) => {
            let d = URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
            match d
                .filter(|d| {
                    d["e"].as_u64() == Some(s.epoch) && d["s"].as_str() == Some(shape.as_str())
                })
                .and_then(|d| serde_json::from_value::<Vec<i64>>(d["a"].clone()).ok())
            {
                Some(a) => Some(a),
                None => return bad("The $skiptoken is invalid or has expired"),
            }
        }
    };
    let key = |r: &Req| -> Vec<i64> {
        let mut k: Vec<i64> = order
            .iter()
            .map(|(f, asc)| {
                let v = match f.as_str() {
                    "UpdatedOn" => r.updated.timestamp_millis(),
                    "CreatedOn" => r.created.timestamp_millis(),
                    _ => r.req_no.parse().unwrap_or(0),
                };
                if *asc { v } else { -v }
            })
            .collect();
        k.push(r.req_no.parse().unwrap_or(0));
        k
    };
    let mut hits: Vec<(Vec<i64>, &Req)> = s
        .reqs
        .iter()
        .filter(|r| filter.as_ref().is_none_or(|f| eval(f, r)))
        .map(|r| (key(r), r))
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
        .collect();
    hits.sort_by(|a, b| a.0.cmp(&b.0));
    let hits: Vec<(Vec<i64>, &Req)> = hits.into_iter().skip(skip).collect();
    let (take, server_paged) = match top {
        Some(t) => (t as usize, false),
        None => (s.page, true),
    };
    let page: Vec<&(Vec<i64>, &Req)> = hits.iter().take(take).collect();
    let results: Vec<Value> = page.iter().map(|(_, r)| entity(&base, r, expand)).collect();
    let mut d = json!({"results": results});
    if server_paged
        && hits.len() > take
        && let Some((k, _)) = page.last()
    {
        let tok = URL_SAFE_NO_PAD.encode(json!({"e": s.epoch, "s": shape, "a": k}).to_string());
        let mut next = url::Url::parse(&format!("{base}/AccessRequestSet")).expect("url");
        {
            let mut qp = next.query_pairs_mut();
            for k in ["$filter", "$orderby", "$expand", "$format"] {
                if let Some(v) = q.get(k) {
                    qp.append_pair(k, v);
                }
            }
            qp.append_pair("$skiptoken", &tok);
        }
        d["__next"] = json!(next.to_string());
    }
    limits(Json(json!({"d": d})).into_response())
}

async fn post_set(
    State(st): State<Shared>,
    h: HeaderMap,
    Path(set): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    gate!(st, h);
    let mut s = st.lock().expect("mock lock");
    if h.get("x-csrf-token").and_then(|v| v.to_str().ok()) != Some(s.csrf.as_str()) {
        let mut r = (StatusCode::FORBIDDEN, "CSRF token validation failed").into_response();
        r.headers_mut()
            .insert("x-csrf-token", HeaderValue::from_static("Required"));
        return r;
    }
    if set != "ProvisioningResultSet" {
        return odata_err(
            StatusCode::METHOD_NOT_ALLOWED,
            "/IWBEP/CM_MGW_RT/021",
            &format!("Create is not supported for '{set}'"),
        );
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return bad("Malformed request body: JSON expected");
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(req_no), Some(line_id), Some(status)) =
        (text("ReqNo"), text("LineId"), text("Status"))
    else {
        return bad("ReqNo, LineId and Status are mandatory");
    };
    if !["PROVISIONED", "REVOKED", "ERROR"].contains(&status.as_str()) {
        return bad(&format!("Status '{status}' is not a provisioning status"));
    }
    if text("Message").is_some_and(|m| m.chars().count() > 255) {
        return bad("Message exceeds 255 characters");
    }
    let now = s.now;
    let Some(r) = s.reqs.iter_mut().find(|r| r.req_no == req_no) else {
        return odata_err(
            StatusCode::NOT_FOUND,
            "/IWBEP/CM_MGW_RT/020",
            &format!("Request '{req_no}' not found"),
        );
    };
    let Some(line) = line_id
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| r.lines.get_mut(i))
    else {
        return odata_err(
            StatusCode::NOT_FOUND,
            "/IWBEP/CM_MGW_RT/020",
            &format!("Line '{line_id}' of request '{req_no}' not found"),
        );
    };
    line.status = status;
    r.updated = now;
    let directive = text("DirectiveId").unwrap_or_default();
    s.results.insert((req_no, line_id, directive), v.clone());
    limits((StatusCode::CREATED, Json(json!({"d": v}))).into_response())
}
