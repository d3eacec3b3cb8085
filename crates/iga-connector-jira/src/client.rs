//! Raw Jira calls (no directive knowledge): one request, throttling honoured,
//! classified result.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use iga_adapter::{Error, Result};
use iga_http::{
    AuthProvider, BasicAuth, BearerAuth, HttpClientBuilder, OAuth2ClientCredentials, RateLimitInfo,
};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::config::{JiraAuth, JiraConnection};
use crate::{KIND, error};

/// Counters for tests and metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) throttled: AtomicU64,
}

/// A thin Jira REST client.
pub(crate) struct Client {
    http: reqwest::Client,
    auth: Arc<dyn AuthProvider>,
    base: String,
    max_retries: u32,
    max_wait: Duration,
    pub(crate) counters: Counters,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &iga_http::redact_url_str(&self.base))
            .field("auth", &self.auth)
            .finish()
    }
}

/// A response: status and parsed body (None when empty).
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) body: Option<Value>,
}

impl Client {
    pub(crate) fn new(conn: &JiraConnection) -> Result<Self> {
        let http = HttpClientBuilder::new()
            .connector(KIND)
            .user_agent_suffix("jira")
            .request_timeout(conn.request_timeout)
            .build()?;
        let auth: Arc<dyn AuthProvider> = match &conn.auth {
            JiraAuth::Basic { email, api_token } => {
                Arc::new(BasicAuth::new(email.clone(), api_token.clone()))
            }
            JiraAuth::Bearer(t) => Arc::new(BearerAuth::new(t.clone())),
            JiraAuth::OAuth2(c) => {
                Arc::new(OAuth2ClientCredentials::new(http.clone(), (**c).clone()))
            }
        };
        Ok(Self {
            http,
            auth,
            base: conn.base_url.as_str().trim_end_matches('/').to_string(),
            max_retries: conn.max_throttle_retries,
            max_wait: conn.max_throttle_wait,
            counters: Counters::default(),
        })
    }

    /// One request to `base + path`; 404 is returned as a response (callers decide),
    /// other non-success statuses become classified errors. 429 and 503 are retried
    /// after their `Retry-After` (at most `max_throttle_retries` times, each wait at
    /// most `max_throttle_wait`).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Resp> {
        let url = format!("{}{}", self.base, path);
        let payload = match body {
            Some(b) => Some(serde_json::to_vec(b).map_err(|e| {
                Error::invalid_input(format!("cannot serialise request: {e}")).with_connector(KIND)
            })?),
            None => None,
        };
        let mut attempt = 0u32;
        loop {
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(connector = KIND, %method, path, "jira request");
            let resp = iga_http::send_with_auth(KIND, &*self.auth, || {
                let mut rb = self
                    .http
                    .request(method.clone(), &url)
                    .header(ACCEPT, "application/json");
                if !query.is_empty() {
                    rb = rb.query(query);
                }
                if let Some(p) = &payload {
                    rb = rb.header(CONTENT_TYPE, "application/json").body(p.clone());
                }
                rb
            })
            .await
            .map_err(|e| e.with_context("path", path))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let text = resp
                .text()
                .await
                .map_err(|e| iga_http::classify_reqwest_error(KIND, &e))?;
            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
            {
                self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                let info = RateLimitInfo::from_headers(&headers, SystemTime::now());
                let wait = info
                    .retry_after
                    .or_else(|| info.reset_after(SystemTime::now()))
                    .unwrap_or(Duration::from_secs(1 << attempt.min(5)));
                if attempt < self.max_retries && wait <= self.max_wait {
                    attempt += 1;
                    tracing::info!(
                        connector = KIND,
                        path,
                        status = status.as_u16(),
                        wait_ms = wait.as_millis() as u64,
                        attempt,
                        "jira throttled, waiting as asked"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            if !status.is_success() && status != StatusCode::NOT_FOUND {
                return Err(error::from_response(status, &headers, &text)
                    .with_context("method", &method)
                    .with_context("path", path));
            }
            let body = if text.trim().is_empty() {
                None
            } else {
                Some(serde_json::from_str(&text).map_err(|e| {
                    Error::new(
                        iga_adapter::ErrorKind::Unexpected,
                        format!("Jira answered with malformed JSON: {e}"),
                    )
                    .with_connector(KIND)
                    .with_context("path", path)
                })?)
            };
            return Ok(Resp { status, body });
        }
    }

    /// Like [`Client::call`] but 404 is an error too.
    pub(crate) async fn call_found(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Option<Value>> {
        let r = self.call(method.clone(), path, query, body).await?;
        if r.status == StatusCode::NOT_FOUND {
            let msg = r
                .body
                .as_ref()
                .and_then(|b| error::jira_message(&b.to_string()))
                .unwrap_or_else(|| "not found".into());
            return Err(Error::not_found(msg)
                .with_connector(KIND)
                .with_context("method", &method)
                .with_context("path", path));
        }
        Ok(r.body)
    }
}

/// Percent-encode one path segment (issue keys, property keys).
pub(crate) fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
