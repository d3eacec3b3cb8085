//! A small JSON REST client for vendor management APIs (Okta, GitHub, ...): one
//! authenticated request at a time, every response's rate-limit headers fed to a
//! [`RatePacer`], a request counter, and the raw status/headers/body handed back so
//! each connector classifies its own vendor error envelope.
//!
//! [`RatePacer`] implements pre-emptive pacing from header families that announce a
//! window (`X-Rate-Limit-*` from Okta, `x-ratelimit-*` from GitHub): when a response
//! says the window is used up, the next request waits until the window resets. The
//! reset instant is computed against the response's own `Date` header
//! ([`server_reset_after`]), which is what both vendors recommend: it is immune to
//! clock skew between the client and the service.

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, Method, StatusCode};
use iga_adapter::{Error, ErrorKind, Result};
use serde_json::Value;

use crate::auth::{AuthProvider, send_with_auth};
use crate::classify::classify_reqwest_error;
use crate::rate_limit::RateLimitInfo;

/// The time until the rate-limit window of `headers` resets, measured on the
/// server's clock: epoch-second `*-Reset` minus the response `Date`. Falls back to
/// the local clock when the response has no `Date`. `None` without a reset header.
pub fn server_reset_after(headers: &HeaderMap) -> Option<Duration> {
    let now = headers
        .get(http::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .unwrap_or_else(SystemTime::now);
    RateLimitInfo::from_headers(headers, now).reset_after(now)
}

/// How long a throttled response asks the client to wait: `Retry-After` if present,
/// else the server-clock time to reset ([`server_reset_after`]) when the window is
/// exhausted or the status is 429.
pub fn throttle_wait(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    let now = SystemTime::now();
    let info = RateLimitInfo::from_headers(headers, now);
    if let Some(d) = info.retry_after {
        return Some(d);
    }
    if info.is_exhausted() || status == StatusCode::TOO_MANY_REQUESTS {
        return server_reset_after(headers);
    }
    None
}

/// Pre-emptive pacing from announced rate-limit windows.
///
/// [`observe`](Self::observe) every response; [`delay`](Self::delay) says how long
/// the next request should wait (None = go). It waits only when the last response
/// said `remaining` is at or below the configured floor (default 0), and never longer
/// than `max_wait` (default 60 s).
pub struct RatePacer {
    state: Mutex<Option<(u64, Instant)>>,
    floor: u64,
    max_wait: Duration,
}

impl fmt::Debug for RatePacer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RatePacer")
            .field("floor", &self.floor)
            .field("max_wait", &self.max_wait)
            .field("delay", &self.delay())
            .finish()
    }
}

impl Default for RatePacer {
    fn default() -> Self {
        Self::new()
    }
}

impl RatePacer {
    /// Wait only when the window is exhausted; at most 60 s.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(None),
            floor: 0,
            max_wait: Duration::from_secs(60),
        }
    }

    /// Wait when `remaining <= floor` (keep some headroom for other clients).
    pub fn with_floor(mut self, floor: u64) -> Self {
        self.floor = floor;
        self
    }

    /// Cap on a single wait.
    pub fn with_max_wait(mut self, d: Duration) -> Self {
        self.max_wait = d;
        self
    }

    /// Record the window a response announced (responses without the headers are
    /// ignored).
    pub fn observe(&self, headers: &HeaderMap) {
        let info = RateLimitInfo::from_headers(headers, SystemTime::now());
        let (Some(remaining), Some(reset)) = (info.remaining, server_reset_after(headers)) else {
            return;
        };
        *self.state.lock().expect("pacer lock") = Some((remaining, Instant::now() + reset));
    }

    /// How long the next request should wait, if at all.
    pub fn delay(&self) -> Option<Duration> {
        let (remaining, resume_at) = (*self.state.lock().expect("pacer lock"))?;
        if remaining > self.floor {
            return None;
        }
        let d = resume_at.checked_duration_since(Instant::now())?;
        (!d.is_zero()).then(|| d.min(self.max_wait))
    }

    /// Sleep for [`delay`](Self::delay), if any.
    pub async fn wait(&self) {
        if let Some(d) = self.delay() {
            tracing::debug!(
                wait_ms = d.as_millis() as u64,
                "rate-limit window exhausted, pacing"
            );
            tokio::time::sleep(d).await;
        }
    }
}

/// A response from [`RestClient::send`]: status, headers and the parsed JSON body
/// (None when empty). Non-success statuses are returned too, for the connector's
/// own classification.
#[derive(Debug, Clone)]
pub struct RestResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// Parsed JSON body; None for an empty body.
    pub body: Option<Value>,
    /// The raw body text when it was not JSON (error pages), else empty.
    pub raw: String,
}

impl RestResponse {
    /// The URL of the `Link: rel="next"` header, if any.
    pub fn next_link(&self) -> Option<String> {
        crate::pagination::next_link(&self.headers)
    }
}

/// A JSON REST client bound to one base URL and one [`AuthProvider`].
#[derive(Clone)]
pub struct RestClient {
    http: reqwest::Client,
    auth: Arc<dyn AuthProvider>,
    base: String,
    connector: &'static str,
    default_headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pacer: Arc<RatePacer>,
    requests: Arc<AtomicU64>,
}

impl fmt::Debug for RestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestClient")
            .field("connector", &self.connector)
            .field("base", &crate::redact::redact_url_str(&self.base))
            .field("auth", &self.auth)
            .field("requests", &self.requests.load(Ordering::Relaxed))
            .finish()
    }
}

impl RestClient {
    /// A client for `base` (no trailing slash needed).
    pub fn new(
        connector: &'static str,
        http: reqwest::Client,
        auth: Arc<dyn AuthProvider>,
        base: &str,
    ) -> Self {
        Self {
            http,
            auth,
            base: base.trim_end_matches('/').to_string(),
            connector,
            default_headers: Vec::new(),
            pacer: Arc::new(RatePacer::new()),
            requests: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Send this header on every request (e.g. GitHub's `X-GitHub-Api-Version`); an
    /// `accept` header here replaces the default `application/json`.
    pub fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.default_headers.push((
            http::HeaderName::from_static(name),
            http::HeaderValue::from_static(value),
        ));
        self
    }

    /// Replace the pacer.
    pub fn with_pacer(mut self, pacer: RatePacer) -> Self {
        self.pacer = Arc::new(pacer);
        self
    }

    /// The pacer.
    pub fn pacer(&self) -> &RatePacer {
        &self.pacer
    }

    /// Requests sent so far (retries after a 401 count twice).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Send one request to `base + path` (or to `path` itself when it is an absolute
    /// URL on the same origin, e.g. a `Link` header), waiting first if the pacer
    /// says so. Transport failures are classified errors; any HTTP status is returned.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        extra_headers: &[(&'static str, String)],
    ) -> Result<RestResponse> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            if !path.starts_with(&self.base) {
                return Err(Error::new(
                    ErrorKind::Unexpected,
                    "the service sent a link to another origin",
                )
                .with_connector(self.connector)
                .with_context("link", crate::redact::redact_url_str(path)));
            }
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        };
        let payload = match body {
            Some(b) => Some(serde_json::to_vec(b).map_err(|e| {
                Error::invalid_input(format!("cannot serialise request: {e}"))
                    .with_connector(self.connector)
            })?),
            None => None,
        };
        self.pacer.wait().await;
        let counter = &self.requests;
        let resp = send_with_auth(self.connector, &*self.auth, || {
            counter.fetch_add(1, Ordering::Relaxed);
            let mut rb = self.http.request(method.clone(), &url);
            if !self
                .default_headers
                .iter()
                .any(|(k, _)| k == http::header::ACCEPT)
            {
                rb = rb.header(http::header::ACCEPT, "application/json");
            }
            for (k, v) in &self.default_headers {
                rb = rb.header(k.clone(), v.clone());
            }
            for (k, v) in extra_headers {
                rb = rb.header(*k, v.as_str());
            }
            if !query.is_empty() {
                rb = rb.query(query);
            }
            if let Some(p) = &payload {
                rb = rb
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(p.clone());
            }
            rb
        })
        .await
        .map_err(|e| e.with_context("path", crate::redact::redact_url_str(path)))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        self.pacer.observe(&headers);
        let text = resp
            .text()
            .await
            .map_err(|e| classify_reqwest_error(self.connector, &e))?;
        let (body, raw) = if text.trim().is_empty() {
            (None, String::new())
        } else {
            match serde_json::from_str::<Value>(&text) {
                Ok(v) => (Some(v), String::new()),
                Err(_) if !status.is_success() => (None, text),
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::Unexpected,
                        format!("response is not JSON: {e}"),
                    )
                    .with_connector(self.connector)
                    .with_context("path", crate::redact::redact_url_str(path)));
                }
            }
        };
        Ok(RestResponse {
            status,
            headers,
            body,
            raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn epoch(t: SystemTime) -> u64 {
        t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn reset_is_measured_on_the_server_clock() {
        // A server clock 1 hour behind ours: the wait is still reset - Date.
        let server_now = SystemTime::now() - Duration::from_secs(3600);
        let server_secs = epoch(server_now);
        let h = headers(&[
            (
                "date",
                httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(server_secs)),
            ),
            ("x-rate-limit-remaining", "0".into()),
            ("x-rate-limit-limit", "600".into()),
            ("x-rate-limit-reset", (server_secs + 7).to_string()),
        ]);
        assert_eq!(server_reset_after(&h), Some(Duration::from_secs(7)));
        assert_eq!(
            throttle_wait(StatusCode::TOO_MANY_REQUESTS, &h),
            Some(Duration::from_secs(7))
        );
        let mut with_ra = h.clone();
        with_ra.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(
            throttle_wait(StatusCode::FORBIDDEN, &with_ra),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            throttle_wait(StatusCode::FORBIDDEN, &HeaderMap::new()),
            None
        );
    }

    #[test]
    fn pacer_waits_only_when_exhausted() {
        let now = epoch(SystemTime::now());
        let date = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(now));
        let p = RatePacer::new().with_max_wait(Duration::from_secs(5));
        assert_eq!(p.delay(), None);
        p.observe(&headers(&[
            ("date", date.clone()),
            ("x-ratelimit-remaining", "10".into()),
            ("x-ratelimit-reset", (now + 30).to_string()),
        ]));
        assert_eq!(p.delay(), None, "window not exhausted");
        p.observe(&headers(&[
            ("date", date.clone()),
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", (now + 30).to_string()),
        ]));
        let d = p.delay().expect("exhausted window delays");
        assert!(
            d <= Duration::from_secs(5) && d > Duration::from_secs(4),
            "{d:?}"
        );
        let floor = RatePacer::new().with_floor(10);
        floor.observe(&headers(&[
            ("date", date),
            ("x-ratelimit-remaining", "10".into()),
            ("x-ratelimit-reset", (now + 2).to_string()),
        ]));
        assert!(floor.delay().is_some(), "at the floor");
    }
}
