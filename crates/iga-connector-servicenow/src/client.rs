//! Table API client: `iga_http::rest::RestClient` with ServiceNow's envelope,
//! error classification, `sysparm_limit`/`sysparm_offset` paging and 429 handling.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Method, StatusCode};
use iga_adapter::{Error, ErrorKind, Result};
use iga_http::rest::{RestClient, RestResponse, throttle_wait};
use iga_http::{AuthProvider, BasicAuth, HttpClientBuilder, OAuth2ClientCredentials, OAuth2Config};
use serde_json::{Map, Value};

use crate::config::{ServiceNowAuth, ServiceNowConfig};

pub(crate) const CONNECTOR: &str = "servicenow";

/// Throttled requests are retried this many times (each wait honouring
/// Retry-After, capped) before the 429 is returned as `RateLimited`.
const THROTTLE_RETRIES: u32 = 5;

/// One row of a Table API result.
pub(crate) type Row = Map<String, Value>;

/// A Table API client for one instance.
#[derive(Debug, Clone)]
pub struct TableClient {
    rest: RestClient,
    max_wait: Duration,
    throttled: Arc<AtomicU64>,
}

impl TableClient {
    /// A client for the configured instance and credentials.
    pub fn new(config: &ServiceNowConfig) -> Result<Self> {
        config.validate()?;
        let http = HttpClientBuilder::new().connector(CONNECTOR).build()?;
        let base = config.instance_url.trim_end_matches('/').to_string();
        let auth: Arc<dyn AuthProvider> = match &config.auth {
            ServiceNowAuth::Basic { username, password } => {
                Arc::new(BasicAuth::new(username.clone(), password.clone()))
            }
            ServiceNowAuth::OAuth {
                client_id,
                client_secret,
            } => {
                let token_url =
                    url::Url::parse(&format!("{base}/oauth_token.do")).map_err(|e| {
                        Error::new(ErrorKind::ConfigInvalid, format!("instance_url: {e}"))
                    })?;
                let mut oc = OAuth2Config::new(token_url, client_id.clone(), client_secret.clone());
                oc.connector = CONNECTOR;
                Arc::new(OAuth2ClientCredentials::new(http.clone(), oc))
            }
        };
        Ok(Self {
            rest: RestClient::new(CONNECTOR, http, auth, &base),
            max_wait: Duration::from_secs(config.max_throttle_wait_secs),
            throttled: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u64 {
        self.rest.requests()
    }

    /// 429 answers received (and waited out) so far.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// The instance URL.
    pub fn base(&self) -> &str {
        self.rest.base()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<RestResponse> {
        let mut tries = 0;
        loop {
            let r = self
                .rest
                .send(method.clone(), path, query, body, &[])
                .await?;
            if r.status == StatusCode::TOO_MANY_REQUESTS {
                self.throttled.fetch_add(1, Ordering::Relaxed);
                let wait = throttle_wait(r.status, &r.headers).unwrap_or(Duration::from_secs(1));
                if tries >= THROTTLE_RETRIES || wait > self.max_wait {
                    return Err(Error::rate_limited(Some(wait))
                        .with_connector(CONNECTOR)
                        .with_context("path", path.to_string()));
                }
                tries += 1;
                tracing::debug!(
                    path,
                    wait_ms = wait.as_millis() as u64,
                    "servicenow throttled"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            if !r.status.is_success() {
                return Err(classify(&r, path));
            }
            return Ok(r);
        }
    }

    /// One page of `table` rows matching `query`.
    pub(crate) async fn page(
        &self,
        table: &str,
        query: &str,
        fields: &str,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<Row>> {
        let q = [
            ("sysparm_query", query.to_string()),
            ("sysparm_fields", fields.to_string()),
            ("sysparm_limit", limit.to_string()),
            ("sysparm_offset", offset.to_string()),
            ("sysparm_exclude_reference_link", "true".to_string()),
            ("sysparm_no_count", "true".to_string()),
        ];
        let r = self
            .send(Method::GET, &format!("/api/now/table/{table}"), &q, None)
            .await?;
        match r.body.as_ref().and_then(|b| b.get("result")) {
            Some(Value::Array(rows)) => rows
                .iter()
                .map(|v| match v {
                    Value::Object(m) => Ok(m.clone()),
                    _ => Err(unexpected(table, "a result row is not an object")),
                })
                .collect(),
            _ => Err(unexpected(table, "no `result` array in the response")),
        }
    }

    /// Every row matching `query` (offset paging until a short page).
    pub(crate) async fn all(
        &self,
        table: &str,
        query: &str,
        fields: &str,
        limit: u32,
    ) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        loop {
            let page = self
                .page(table, query, fields, limit, out.len() as u64)
                .await?;
            let n = page.len();
            out.extend(page);
            if n < limit as usize {
                return Ok(out);
            }
        }
    }

    /// Create a record; returns it.
    pub(crate) async fn create(&self, table: &str, body: &Value) -> Result<Row> {
        let r = self
            .send(
                Method::POST,
                &format!("/api/now/table/{table}"),
                &[("sysparm_exclude_reference_link", "true".to_string())],
                Some(body),
            )
            .await?;
        record(r, table)
    }

    /// Update fields of a record; returns it.
    pub(crate) async fn patch(&self, table: &str, sys_id: &str, body: &Value) -> Result<Row> {
        let r = self
            .send(
                Method::PATCH,
                &format!("/api/now/table/{table}/{sys_id}"),
                &[("sysparm_exclude_reference_link", "true".to_string())],
                Some(body),
            )
            .await?;
        record(r, table)
    }
}

fn record(r: RestResponse, table: &str) -> Result<Row> {
    match r
        .body
        .and_then(|mut b| b.get_mut("result").map(Value::take))
    {
        Some(Value::Object(m)) => Ok(m),
        _ => Err(unexpected(table, "no `result` record in the response")),
    }
}

fn unexpected(table: &str, what: &str) -> Error {
    Error::new(ErrorKind::Unexpected, format!("servicenow {table}: {what}"))
        .with_connector(CONNECTOR)
}

/// Map a Table API error answer to an error kind (README error table).
pub(crate) fn classify(r: &RestResponse, path: &str) -> Error {
    let (message, detail) = r
        .body
        .as_ref()
        .and_then(|b| b.get("error"))
        .map(|e| {
            (
                e.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                e.get("detail")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .unwrap_or_default();
    let kind = match r.status.as_u16() {
        400 => ErrorKind::InvalidInput,
        401 => ErrorKind::Unauthenticated,
        403 if detail.contains("Data Policy") => ErrorKind::SchemaViolation,
        403 => ErrorKind::PermissionDenied,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        429 => ErrorKind::RateLimited,
        502..=504 => ErrorKind::Unavailable,
        _ => ErrorKind::Unexpected,
    };
    let text = iga_http::redact_body_snippet(&format!("{message} {detail}"));
    let mut e = Error::new(
        kind,
        format!("servicenow answered {}: {}", r.status.as_u16(), text.trim()),
    )
    .with_connector(CONNECTOR)
    .with_context("path", path.to_string());
    if kind == ErrorKind::Unavailable
        && let Some(w) = throttle_wait(r.status, &r.headers)
    {
        e = e.with_context("retry_after_ms", w.as_millis().to_string());
    }
    e
}

/// A field of a row as a string (`""` when absent or null).
pub(crate) fn field<'a>(row: &'a Row, name: &str) -> &'a str {
    match row.get(name) {
        Some(Value::String(s)) => s,
        _ => "",
    }
}

/// Quote-free value check for encoded queries (`^` and `,` would change meaning).
pub(crate) fn query_safe(v: &str) -> bool {
    !v.is_empty() && !v.contains('^') && !v.contains(',') && !v.contains('\n')
}
