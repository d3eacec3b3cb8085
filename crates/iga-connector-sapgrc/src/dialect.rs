//! The request-fetch / write-back dialect: a trait, so the thinly documented GRC
//! interfaces (SOAP `GRAC_*_WS`, Gateway OData, Cloud IAG REST) can be swapped
//! without touching detection, cursor or mapping, and one OData v2 implementation.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chrono::{NaiveDate, TimeZone, Utc};
use iga_adapter::{Error, ErrorKind, Result, Secret};
use iga_directive::Timestamp;
use iga_http::{
    AuthProvider, BasicAuth, HttpClientBuilder, OAuth2ClientCredentials, OAuth2Config,
    RateLimitInfo,
};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use url::Url;

use crate::KIND;
use crate::model::{FetchPage, Fetched, GrcLine, GrcRequest, GrcUser, LineResult, Undecodable};

/// How requests are listed and results written back.
///
/// # Contract
/// - `fetch_approved(since, continuation)` lists requests whose status is approved
///   or partially approved and that changed at or after `since`, ordered by
///   (`updated_on`, `req_no`); `continuation` resumes a listing (an opaque value
///   from [`FetchPage::next`]). A continuation the server no longer accepts is
///   `InvalidInput` (the source then restarts from its watermark).
/// - Records that cannot be decoded are returned as [`Fetched::Undecodable`], not
///   dropped and not failing the page.
/// - `fetch_request` answers `Ok(None)` for an unknown request number.
/// - `write_back` is an upsert keyed by (request, line, directive id): repeating it
///   is harmless.
#[async_trait]
pub trait GrcDialect: fmt::Debug + Send + Sync + 'static {
    /// One page of approved requests changed at or after `since`.
    async fn fetch_approved(
        &self,
        since: Option<Timestamp>,
        continuation: Option<&str>,
    ) -> Result<FetchPage>;

    /// One request with its lines.
    async fn fetch_request(&self, req_no: &str) -> Result<Option<Fetched>>;

    /// Record a line's result in GRC.
    async fn write_back(&self, result: &LineResult) -> Result<()>;
}

/// Credentials for the OData dialect.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum GrcAuth {
    /// HTTP Basic with a technical user (on-prem Gateway).
    Basic {
        /// User.
        user: String,
        /// Password.
        password: Secret,
    },
    /// OAuth2 client credentials (Cloud IAG service key: `uaa.url + /oauth/token`).
    OAuth2(Box<OAuth2Config>),
}

/// Configuration of [`ODataDialect`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ODataConfig {
    /// Service root, e.g. `https://grc.example.com/sap/opu/odata/sap/GRAC_API_SRV`.
    pub service_url: Url,
    /// Credentials.
    pub auth: GrcAuth,
    /// Entity set of requests. Default `AccessRequestSet` (lines via `$expand=Lines`).
    pub request_set: String,
    /// Entity set receiving line results. Default `ProvisioningResultSet`.
    pub result_set: String,
    /// Request statuses that count as decided in favour. Default `APPROVED`,
    /// `PARTIALLY_APPROVED`.
    pub approved_statuses: Vec<String>,
    /// Per-request timeout. Default 30 s.
    pub request_timeout: Duration,
    /// 429/503 retried after `Retry-After` this many times. Default 3.
    pub max_throttle_retries: u32,
    /// Longest wait honoured in place. Default 60 s.
    pub max_throttle_wait: Duration,
}

impl ODataConfig {
    /// A configuration for the service at `service_url`.
    pub fn new(service_url: &str, auth: GrcAuth) -> Result<Self> {
        let mut url = Url::parse(service_url).map_err(|e| {
            Error::new(
                ErrorKind::ConfigInvalid,
                format!("invalid GRC service URL: {e}"),
            )
            .with_connector(KIND)
        })?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                "GRC service URL must be http(s) without credentials",
            )
            .with_connector(KIND));
        }
        let p = url.path().trim_end_matches('/').to_string();
        url.set_path(&p);
        Ok(Self {
            service_url: url,
            auth,
            request_set: "AccessRequestSet".into(),
            result_set: "ProvisioningResultSet".into(),
            approved_statuses: vec!["APPROVED".into(), "PARTIALLY_APPROVED".into()],
            request_timeout: Duration::from_secs(30),
            max_throttle_retries: 3,
            max_throttle_wait: Duration::from_secs(60),
        })
    }
}

/// OData v2 (SAP Gateway) dialect: JSON (`$format=json`), `$filter` on `Status` and
/// `UpdatedOn ge datetime'…'`, `$orderby=UpdatedOn asc,ReqNo asc`, `$expand=Lines`,
/// server-driven paging through `d.__next`, `/Date(ms)/` values, OData error bodies,
/// and the Gateway CSRF handshake (`X-CSRF-Token: Fetch`) before each write.
pub struct ODataDialect {
    cfg: ODataConfig,
    http: reqwest::Client,
    auth: Arc<dyn AuthProvider>,
    csrf: Mutex<Option<String>>,
    requests: AtomicU64,
    throttled: AtomicU64,
}

impl fmt::Debug for ODataDialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ODataDialect")
            .field(
                "service",
                &iga_http::redact_url(&self.cfg.service_url).as_str(),
            )
            .field("auth", &self.auth)
            .finish()
    }
}

/// Parse an OData v2 `/Date(ms)/` or `/Date(ms+hhmm)/` value.
pub fn parse_odata_date(s: &str) -> Option<Timestamp> {
    let inner = s.strip_prefix("/Date(")?.strip_suffix(")/")?;
    let digits_end = inner
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == '+' || *c == '-')
        .map(|(i, _)| i)
        .unwrap_or(inner.len());
    let ms: i64 = inner[..digits_end].parse().ok()?;
    Utc.timestamp_millis_opt(ms).single()
}

/// Format as `/Date(ms)/`.
pub fn format_odata_date(t: Timestamp) -> String {
    format!("/Date({})/", t.timestamp_millis())
}

/// The OData v2 `datetime'…'` literal (UTC, second precision, rounded down).
pub fn datetime_literal(t: Timestamp) -> String {
    format!("datetime'{}'", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// The message of an OData error body `{"error":{"code":…,"message":{"value":…}}}`.
pub fn odata_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let e = v.get("error")?;
    let msg = e
        .pointer("/message/value")
        .or_else(|| e.get("message"))
        .and_then(Value::as_str)?;
    let code = e.get("code").and_then(Value::as_str).unwrap_or_default();
    Some(if code.is_empty() {
        msg.to_string()
    } else {
        format!("{code}: {msg}")
    })
}

/// Classify a non-success answer (see the README error table).
pub fn classify(status: StatusCode, headers: &reqwest::header::HeaderMap, body: &str) -> Error {
    let mut err = iga_http::classify_status(KIND, status, headers, "");
    if let Some(m) = odata_message(body) {
        let m = iga_http::redact_body_snippet(&m);
        if !m.is_empty() {
            err = err.with_context("grc", m);
        }
    }
    err
}

fn unexpected(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unexpected, msg).with_connector(KIND)
}

impl ODataDialect {
    /// A dialect over `cfg`.
    pub fn new(cfg: ODataConfig) -> Result<Self> {
        let http = HttpClientBuilder::new()
            .connector(KIND)
            .user_agent_suffix("sapgrc")
            .request_timeout(cfg.request_timeout)
            .build()?;
        let auth: Arc<dyn AuthProvider> = match &cfg.auth {
            GrcAuth::Basic { user, password } => {
                Arc::new(BasicAuth::new(user.clone(), password.clone()))
            }
            GrcAuth::OAuth2(c) => {
                Arc::new(OAuth2ClientCredentials::new(http.clone(), (**c).clone()))
            }
        };
        Ok(Self {
            cfg,
            http,
            auth,
            csrf: Mutex::new(None),
            requests: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
        })
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Throttled answers received so far.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    fn url(&self, rel: &str) -> String {
        format!(
            "{}/{}",
            self.cfg.service_url.as_str().trim_end_matches('/'),
            rel.trim_start_matches('/')
        )
    }

    /// One call; 429/503 waited per `Retry-After`; returns status, headers, body.
    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        extra: &[(&str, String)],
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, String)> {
        let payload = body.map(|b| b.to_string());
        let mut attempt = 0u32;
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let resp = iga_http::send_with_auth(KIND, &*self.auth, || {
                let mut rb = self
                    .http
                    .request(method.clone(), url)
                    .header(ACCEPT, "application/json");
                for (k, v) in extra {
                    rb = rb.header(*k, v.as_str());
                }
                if let Some(p) = &payload {
                    rb = rb.header(CONTENT_TYPE, "application/json").body(p.clone());
                }
                rb
            })
            .await?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let text = resp
                .text()
                .await
                .map_err(|e| iga_http::classify_reqwest_error(KIND, &e))?;
            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
            {
                self.throttled.fetch_add(1, Ordering::Relaxed);
                let info = RateLimitInfo::from_headers(&headers, SystemTime::now());
                let wait = info
                    .retry_after
                    .or_else(|| info.reset_after(SystemTime::now()))
                    .unwrap_or(Duration::from_secs(1 << attempt.min(5)));
                if attempt < self.cfg.max_throttle_retries && wait <= self.cfg.max_throttle_wait {
                    attempt += 1;
                    tracing::info!(
                        connector = KIND,
                        wait_ms = wait.as_millis() as u64,
                        attempt,
                        "GRC throttled, waiting as asked"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Ok((status, headers, text));
        }
    }

    async fn get_json(&self, url: &str) -> Result<Option<Value>> {
        let (status, headers, text) = self.send(Method::GET, url, None, &[]).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(classify(status, &headers, &text));
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| unexpected(format!("GRC answered with malformed JSON: {e}")))
    }

    async fn csrf_token(&self, refresh: bool) -> Result<String> {
        let mut g = self.csrf.lock().await;
        if !refresh && let Some(t) = g.as_ref() {
            return Ok(t.clone());
        }
        let (status, headers, text) = self
            .send(
                Method::GET,
                &self.url(""),
                None,
                &[("x-csrf-token", "Fetch".into())],
            )
            .await?;
        if !status.is_success() {
            return Err(classify(status, &headers, &text));
        }
        let t = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unexpected("GRC did not hand out a CSRF token"))?
            .to_string();
        *g = Some(t.clone());
        Ok(t)
    }

    fn filter(&self, since: Option<Timestamp>) -> String {
        let statuses: Vec<String> = self
            .cfg
            .approved_statuses
            .iter()
            .map(|s| format!("Status eq '{}'", s.replace('\'', "''")))
            .collect();
        let mut f = format!("({})", statuses.join(" or "));
        if let Some(t) = since {
            f.push_str(&format!(" and UpdatedOn ge {}", datetime_literal(t)));
        }
        f
    }

    /// The next link must stay on the service (credentials are sent to it).
    fn next_url(&self, next: &str) -> Result<String> {
        let base = &self.cfg.service_url;
        let u = base.join(next).map_err(|e| {
            Error::invalid_input(format!("GRC __next link is not a URL: {e}")).with_connector(KIND)
        })?;
        if u.origin() != base.origin() || !u.path().starts_with(base.path()) {
            return Err(
                Error::invalid_input("GRC __next link leaves the service; not followed")
                    .with_connector(KIND),
            );
        }
        Ok(u.to_string())
    }
}

fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn date_of(v: &Value, k: &str) -> std::result::Result<Option<NaiveDate>, ()> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if let Some(t) = parse_odata_date(s) {
                Ok(Some(t.date_naive()))
            } else {
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map(Some)
                    .map_err(|_| ())
            }
        }
        Some(_) => Err(()),
    }
}

/// Decode one OData request entity (with expanded `Lines`).
pub fn decode_request(v: &Value) -> Fetched {
    let req_no = text(v, "ReqNo");
    let lines_raw: Vec<Value> = v
        .pointer("/Lines/results")
        .or_else(|| v.get("Lines"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let line_ids: Vec<String> = lines_raw.iter().filter_map(|l| text(l, "LineId")).collect();
    let updated = v
        .get("UpdatedOn")
        .and_then(Value::as_str)
        .and_then(parse_odata_date);
    let bad = |location: String, reason: String| {
        Fetched::Undecodable(Undecodable {
            req_no: req_no.clone(),
            line_ids: line_ids.clone(),
            updated_on: updated,
            location,
            reason,
        })
    };
    let Some(rn) = req_no.clone() else {
        return bad("request without ReqNo".into(), "ReqNo is missing".into());
    };
    let Some(updated_on) = updated else {
        return bad(
            format!("{rn}:UpdatedOn"),
            "UpdatedOn is missing or not /Date(ms)/".into(),
        );
    };
    let Some(status) = text(v, "Status") else {
        return bad(format!("{rn}:Status"), "Status is missing".into());
    };
    let Some(user_id) = text(v, "UserId") else {
        return bad(format!("{rn}:UserId"), "UserId is missing".into());
    };
    if v.pointer("/Lines/results")
        .or_else(|| v.get("Lines"))
        .and_then(Value::as_array)
        .is_none()
    {
        return bad(
            format!("{rn}:Lines"),
            "Lines were not expanded or are not a list".into(),
        );
    }
    let mut lines = Vec::new();
    for (i, l) in lines_raw.iter().enumerate() {
        let lid = text(l, "LineId").unwrap_or_else(|| format!("#{}", i + 1));
        let loc = |f: &str| format!("{rn}/{lid}:{f}");
        let need = |f: &str| text(l, f).ok_or_else(|| (loc(f), format!("{f} is missing")));
        let parsed = (|| {
            let line_id = need("LineId")?;
            let system = need("System")?;
            let role = need("Role")?;
            let action = need("Action")?;
            let status = need("Status")?;
            let valid_from = date_of(l, "ValidFrom")
                .map_err(|()| (loc("ValidFrom"), "ValidFrom is not a date".to_string()))?;
            let valid_to = date_of(l, "ValidTo")
                .map_err(|()| (loc("ValidTo"), "ValidTo is not a date".to_string()))?;
            Ok::<_, (String, String)>(GrcLine {
                line_id,
                system,
                role,
                action,
                valid_from,
                valid_to,
                status,
            })
        })();
        match parsed {
            Ok(line) => lines.push(line),
            Err((location, reason)) => return bad(location, reason),
        }
    }
    Fetched::Request(GrcRequest {
        req_no: rn,
        status,
        updated_on,
        requested_for: GrcUser {
            user_id,
            email: text(v, "Email"),
        },
        lines,
    })
}

#[async_trait]
impl GrcDialect for ODataDialect {
    async fn fetch_approved(
        &self,
        since: Option<Timestamp>,
        continuation: Option<&str>,
    ) -> Result<FetchPage> {
        let url = match continuation {
            Some(next) => self.next_url(next)?,
            None => {
                let mut u = Url::parse(&self.url(&self.cfg.request_set))
                    .map_err(|e| unexpected(format!("bad request-set URL: {e}")))?;
                u.query_pairs_mut()
                    .append_pair("$filter", &self.filter(since))
                    .append_pair("$orderby", "UpdatedOn asc,ReqNo asc")
                    .append_pair("$expand", "Lines")
                    .append_pair("$format", "json");
                u.to_string()
            }
        };
        let (status, headers, text) = self.send(Method::GET, &url, None, &[]).await?;
        if !status.is_success() {
            return Err(
                classify(status, &headers, &text).with_context("set", &self.cfg.request_set)
            );
        }
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| unexpected(format!("GRC answered with malformed JSON: {e}")))?;
        let results = v
            .pointer("/d/results")
            .and_then(Value::as_array)
            .ok_or_else(|| unexpected("GRC answer without d.results"))?;
        let next = v.pointer("/d/__next").and_then(Value::as_str).map(|n| {
            // Keep path and query only; it is resolved against the service again.
            Url::parse(n)
                .map(|u| format!("{}?{}", u.path(), u.query().unwrap_or_default()))
                .unwrap_or_else(|_| n.to_string())
        });
        Ok(FetchPage::new(
            results.iter().map(decode_request).collect(),
            next,
        ))
    }

    async fn fetch_request(&self, req_no: &str) -> Result<Option<Fetched>> {
        let key = req_no.replace('\'', "''");
        let mut u = Url::parse(&self.url(&format!("{}('{key}')", self.cfg.request_set)))
            .map_err(|e| unexpected(format!("bad request URL: {e}")))?;
        u.query_pairs_mut()
            .append_pair("$expand", "Lines")
            .append_pair("$format", "json");
        Ok(self
            .get_json(u.as_str())
            .await?
            .map(|v| decode_request(v.get("d").unwrap_or(&v))))
    }

    async fn write_back(&self, r: &LineResult) -> Result<()> {
        let body = json!({
            "ReqNo": r.req_no,
            "LineId": r.line_id,
            "DirectiveId": r.directive_id,
            "Status": r.status.as_str(),
            "Message": r.message.chars().take(255).collect::<String>(),
            "ReceiptIds": r.receipt_ids.join(","),
        });
        let url = self.url(&self.cfg.result_set);
        let mut refreshed = false;
        loop {
            let token = self.csrf_token(refreshed).await?;
            let (status, headers, text) = self
                .send(Method::POST, &url, Some(&body), &[("x-csrf-token", token)])
                .await?;
            if status == StatusCode::FORBIDDEN
                && !refreshed
                && headers
                    .get("x-csrf-token")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.eq_ignore_ascii_case("required"))
            {
                refreshed = true;
                continue;
            }
            if !status.is_success() {
                return Err(classify(status, &headers, &text)
                    .with_context("request", &r.req_no)
                    .with_context("line", &r.line_id));
            }
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odata_dates() {
        let t = parse_odata_date("/Date(1746086400000)/").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-05-01T08:00:00+00:00");
        assert_eq!(parse_odata_date("/Date(1746086400000+0000)/"), Some(t));
        assert_eq!(parse_odata_date("/Date(-1000)/").unwrap().timestamp(), -1);
        assert!(parse_odata_date("2025-05-01").is_none());
        assert_eq!(format_odata_date(t), "/Date(1746086400000)/");
        assert_eq!(datetime_literal(t), "datetime'2025-05-01T08:00:00'");
    }

    #[test]
    fn error_table() {
        let h = reqwest::header::HeaderMap::new();
        let body = r#"{"error":{"code":"/IWBEP/CM_MGW_RT/022","message":{"lang":"en","value":"Invalid filter"}}}"#;
        for (s, kind, temp) in [
            (400, ErrorKind::InvalidInput, false),
            (401, ErrorKind::Unauthenticated, false),
            (403, ErrorKind::PermissionDenied, false),
            (404, ErrorKind::NotFound, false),
            (429, ErrorKind::RateLimited, true),
            (500, ErrorKind::Unexpected, true),
            (503, ErrorKind::Unavailable, true),
        ] {
            let e = classify(StatusCode::from_u16(s).unwrap(), &h, body);
            assert_eq!((e.kind(), e.is_retryable()), (kind, temp), "{s}");
            assert!(e.to_string().contains("Invalid filter"), "{e}");
        }
    }

    #[test]
    fn decode_reports_the_place() {
        let ok = json!({"ReqNo":"9000000001","Status":"APPROVED","UpdatedOn":"/Date(1746086400000)/","UserId":"ADA",
            "Lines":{"results":[{"LineId":"1","System":"PRD","Role":"Z_R","Action":"ASSIGN","Status":"APPROVED",
            "ValidFrom":"/Date(1746057600000)/","ValidTo":"/Date(253402214400000)/"}]}});
        let Fetched::Request(r) = decode_request(&ok) else {
            panic!()
        };
        assert_eq!(r.lines[0].valid_to, NaiveDate::from_ymd_opt(9999, 12, 31));
        let mut bad = ok.clone();
        bad["Lines"]["results"][0]["ValidTo"] = json!("31.12.9999");
        let Fetched::Undecodable(u) = decode_request(&bad) else {
            panic!()
        };
        assert_eq!(u.location, "9000000001/1:ValidTo");
        assert_eq!(u.line_ids, vec!["1".to_string()]);
        let mut bad = ok;
        bad.as_object_mut().unwrap().remove("UpdatedOn");
        let Fetched::Undecodable(u) = decode_request(&bad) else {
            panic!()
        };
        assert_eq!(u.location, "9000000001:UpdatedOn");
    }
}
