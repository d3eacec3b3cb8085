//! The HTTP layer: one authenticated JSON request at a time, a per-tenant rate
//! layer, request counters and the last throttling headers Graph sent.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::{HeaderMap, Method};
use iga_adapter::{Error, ErrorKind, Result};
use iga_directive::SharedClock;
use iga_http::{AuthProvider, RateLimitInfo};
use serde_json::Value;

use crate::KIND;
use crate::config::EntraConfig;
use crate::error::GraphError;

/// A response: status, headers, parsed JSON body (None when empty).
#[derive(Debug, Clone)]
pub(crate) struct GraphResponse {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Value>,
}

impl GraphResponse {
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub(crate) fn error(&self) -> GraphError {
        GraphError::new(self.status, &self.headers, self.body.as_ref())
    }

    /// The body, or the classified error for a non-success status.
    pub(crate) fn into_result(self) -> Result<Option<Value>> {
        if self.ok() {
            Ok(self.body)
        } else {
            Err(self.error().to_error())
        }
    }
}

/// Throttling state Graph reported (protocols §1.3).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ThrottleState {
    /// The last `x-ms-resource-unit`.
    pub resource_units: Option<u64>,
    /// The last `x-ms-throttle-limit-percentage` (present once > 0.8 of budget).
    pub limit_percentage: Option<f64>,
    /// The last `x-ms-throttle-scope` of a 429.
    pub scope: Option<String>,
    /// 429 responses seen (outer and inner).
    pub throttled: u64,
}

type Limiters = Mutex<HashMap<(String, u32), Arc<DefaultDirectRateLimiter>>>;

fn tenant_limiter(tenant: &str, rps: u32) -> Arc<DefaultDirectRateLimiter> {
    static LIMITERS: OnceLock<Limiters> = OnceLock::new();
    let map = LIMITERS.get_or_init(Default::default);
    let mut m = map.lock().expect("limiters");
    m.entry((tenant.to_ascii_lowercase(), rps))
        .or_insert_with(|| {
            let n = NonZeroU32::new(rps).unwrap_or(NonZeroU32::MIN);
            Arc::new(RateLimiter::direct(Quota::per_second(n).allow_burst(n)))
        })
        .clone()
}

pub(crate) struct GraphClient {
    http: reqwest::Client,
    auth: Arc<dyn AuthProvider>,
    pub(crate) base: String,
    /// Canonical Graph root for `@odata.id` references.
    pub(crate) root: String,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    pub(crate) requests: AtomicU64,
    pub(crate) batch_requests: AtomicU64,
    pub(crate) throttle: Mutex<ThrottleState>,
}

impl fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphClient")
            .field("base", &self.base)
            .field("auth", &self.auth)
            .field("requests", &self.requests.load(Ordering::Relaxed))
            .finish()
    }
}

impl GraphClient {
    pub(crate) fn new(config: &EntraConfig, clock: SharedClock) -> Result<Self> {
        config.validate()?;
        let http = iga_http::HttpClientBuilder::new()
            .connector(KIND)
            .user_agent_suffix(KIND)
            .request_timeout(config.request_timeout)
            .build()?;
        let auth = crate::auth::provider(http.clone(), config, clock)?;
        Ok(Self {
            http,
            auth,
            base: config.graph_base_url(),
            root: config.cloud.graph_root().to_string(),
            limiter: config
                .requests_per_second
                .map(|r| tenant_limiter(&config.tenant_id, r)),
            requests: AtomicU64::new(0),
            batch_requests: AtomicU64::new(0),
            throttle: Mutex::new(ThrottleState::default()),
        })
    }

    /// `https://graph.microsoft.com/v1.0/directoryObjects/{id}` for `@odata.id`.
    pub(crate) fn object_ref(&self, collection: &str, id: &str) -> String {
        format!("{}/v1.0/{collection}/{id}", self.root)
    }

    /// A URL on this service (relative path or an absolute link Graph sent).
    pub(crate) fn url(&self, path: &str) -> Result<String> {
        if path.starts_with("http://") || path.starts_with("https://") {
            if !path.starts_with(&self.base) {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "link points outside the configured Graph base",
                )
                .with_connector(KIND)
                .with_context("link", iga_http::redact_url_str(path)));
            }
            Ok(path.to_string())
        } else {
            Ok(format!("{}{}", self.base, path))
        }
    }

    pub(crate) fn observe(&self, status: u16, headers: &HeaderMap) {
        let info = RateLimitInfo::from_headers(headers, SystemTime::now());
        let mut t = self.throttle.lock().expect("throttle");
        if info.resource_units.is_some() {
            t.resource_units = info.resource_units;
        }
        if info.throttle_limit_percentage.is_some() {
            t.limit_percentage = info.throttle_limit_percentage;
        }
        if status == 429 {
            t.throttled += 1;
            if info.throttle_scope.is_some() {
                t.scope = info.throttle_scope;
            }
        }
    }

    /// Send one request; any HTTP status comes back as a response, transport
    /// failures as classified errors.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&'static str, String)],
    ) -> Result<GraphResponse> {
        let url = self.url(path)?;
        if let Some(l) = &self.limiter {
            l.until_ready().await;
        }
        let payload = body.map(|b| b.to_string());
        let resp = iga_http::send_with_auth(KIND, &*self.auth, || {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut rb = self
                .http
                .request(method.clone(), &url)
                .header(http::header::ACCEPT, "application/json");
            for (k, v) in headers {
                rb = rb.header(*k, v.as_str());
            }
            if let Some(p) = &payload {
                rb = rb
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(p.clone());
            }
            rb
        })
        .await
        .map_err(|e| e.with_context("path", iga_http::redact_url_str(path)))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        self.observe(status, &headers);
        let text = resp
            .text()
            .await
            .map_err(|e| iga_http::classify_reqwest_error(KIND, &e))?;
        let body = if text.trim().is_empty() {
            None
        } else {
            match serde_json::from_str::<Value>(&text) {
                Ok(v) => Some(v),
                Err(_) if !(200..300).contains(&status) => None,
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::Unexpected,
                        format!("Graph response is not JSON: {e}"),
                    )
                    .with_connector(KIND)
                    .with_context("path", iga_http::redact_url_str(path)));
                }
            }
        };
        Ok(GraphResponse {
            status,
            headers,
            body,
        })
    }

    /// Send and turn a non-success status into a classified error.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>> {
        let r = self.send(method, path, body, &[]).await?;
        r.into_result()
    }
}
