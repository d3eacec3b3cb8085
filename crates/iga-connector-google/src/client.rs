//! Raw Directory API calls (no directive knowledge): one request or one batch.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use iga_adapter::{Error, ErrorKind, Result};
use iga_http::HttpClientBuilder;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::auth::ServiceAccountAuth;
use crate::config::GoogleConfig;
use crate::multipart::{self, Part};
use crate::{KIND, error};

/// One call of a batch: method, path below the API root, optional JSON body.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) body: Option<Value>,
}

pub(crate) struct Client {
    http: reqwest::Client,
    pub(crate) auth: Arc<ServiceAccountAuth>,
    api_base: String,
    api_path: String,
    batch_url: String,
    pub(crate) requests: AtomicU64,
    pub(crate) batch_requests: AtomicU64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api_base", &iga_http::redact_url_str(&self.api_base))
            .field("auth", &self.auth)
            .finish()
    }
}

/// Percent-encode one path segment (user and group keys are e-mail addresses).
pub(crate) fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn parse_body(text: &str) -> Result<Option<Value>> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(text).map(Some).map_err(|e| {
        Error::new(ErrorKind::Unexpected, format!("response is not JSON: {e}")).with_connector(KIND)
    })
}

impl Client {
    pub(crate) fn new(config: &GoogleConfig) -> Result<Self> {
        let http = HttpClientBuilder::new()
            .connector(KIND)
            .user_agent_suffix("google")
            .request_timeout(config.request_timeout)
            .build()?;
        let auth = Arc::new(ServiceAccountAuth::new(http.clone(), config)?);
        Ok(Self {
            http,
            auth,
            api_base: config.api_base.as_str().trim_end_matches('/').to_string(),
            api_path: config.api_base.path().trim_end_matches('/').to_string(),
            batch_url: config.batch_url.as_str().to_string(),
            requests: AtomicU64::new(0),
            batch_requests: AtomicU64::new(0),
        })
    }

    /// One request to `api_base + path`. Non-success statuses become classified errors.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Option<Value>> {
        let url = format!("{}{}", self.api_base, path);
        self.requests.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(connector = KIND, %method, path, "google request");
        let resp = iga_http::send_with_auth(KIND, &*self.auth, || {
            let mut rb = self.http.request(method.clone(), &url);
            if !query.is_empty() {
                rb = rb.query(query);
            }
            if let Some(b) = body {
                rb = rb.json(b);
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
        if !status.is_success() {
            return Err(error::classify(status, &headers, &text)
                .with_context("method", &method)
                .with_context("path", path));
        }
        parse_body(&text).map_err(|e| e.with_context("path", path))
    }

    /// One HTTP batch request carrying `calls` (≤ 1000). Returns one result per call,
    /// in call order (the response parts come in request order; `Content-ID`
    /// `response-itemN` is checked). A failure of the batch request itself is `Err`.
    pub(crate) async fn batch(&self, calls: &[Call]) -> Result<Vec<Result<Option<Value>>>> {
        let boundary = format!("batch_iga_{:x}", rand_u64());
        let parts: Vec<Part> = calls
            .iter()
            .enumerate()
            .map(|(i, c)| Part {
                content_id: Some(format!("item{}", i + 1)),
                start_line: format!("{} {}{} HTTP/1.1", c.method, self.api_path, c.path),
                headers: if c.body.is_some() {
                    vec![("Content-Type".into(), "application/json".into())]
                } else {
                    vec![]
                },
                body: c.body.as_ref().map(|b| b.to_string()).unwrap_or_default(),
            })
            .collect();
        let payload = multipart::encode(&boundary, &parts);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.batch_requests.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            connector = KIND,
            calls = calls.len(),
            "google batch request"
        );
        let ct = format!("multipart/mixed; boundary={boundary}");
        let resp = iga_http::send_with_auth(KIND, &*self.auth, || {
            self.http
                .post(&self.batch_url)
                .header(CONTENT_TYPE, ct.as_str())
                .body(payload.clone())
        })
        .await
        .map_err(|e| e.with_context("path", "batch"))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp
            .text()
            .await
            .map_err(|e| iga_http::classify_reqwest_error(KIND, &e))?;
        if !status.is_success() {
            return Err(error::classify(status, &headers, &text).with_context("path", "batch"));
        }
        let bad = |why: String| {
            Error::new(ErrorKind::Unexpected, format!("batch response: {why}")).with_connector(KIND)
        };
        let rb = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(multipart::boundary_of)
            .ok_or_else(|| bad("not multipart/mixed".into()))?;
        let answers = multipart::decode(&rb, &text).map_err(bad)?;
        if answers.len() != calls.len() {
            return Err(bad(format!(
                "{} parts for {} calls",
                answers.len(),
                calls.len()
            )));
        }
        let mut out = Vec::with_capacity(calls.len());
        for (i, (a, c)) in answers.iter().zip(calls).enumerate() {
            let want = format!("response-item{}", i + 1);
            if a.content_id.as_deref().is_some_and(|id| id != want) {
                return Err(bad(format!(
                    "part {} has Content-ID {:?}",
                    i + 1,
                    a.content_id
                )));
            }
            let code = a
                .status()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .ok_or_else(|| bad(format!("part {} has no status line", i + 1)))?;
            let r = if code.is_success() {
                parse_body(&a.body)
            } else {
                let mut h = HeaderMap::new();
                for (k, v) in &a.headers {
                    if let (Ok(k), Ok(v)) = (
                        reqwest::header::HeaderName::from_bytes(k.as_bytes()),
                        reqwest::header::HeaderValue::from_str(v),
                    ) {
                        h.insert(k, v);
                    }
                }
                Err(error::classify(code, &h, &a.body)
                    .with_context("method", &c.method)
                    .with_context("path", &c.path))
            };
            out.push(r);
        }
        Ok(out)
    }
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("system randomness");
    u64::from_le_bytes(b)
}

/// A random password for new users (Google requires one on insert; users sign in
/// through SSO or a reset). Never logged or returned.
pub(crate) fn random_password() -> String {
    format!("{:016x}{:016x}Aa1!", rand_u64(), rand_u64())
}
