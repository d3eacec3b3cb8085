//! Raw SCIM calls (no directive knowledge): one request, classified result.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use iga_adapter::Result;
use iga_http::{
    AuthProvider, BasicAuth, BearerAuth, HttpClientBuilder, NoAuth, OAuth2ClientCredentials,
};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;

use crate::config::{ScimAuth, ScimConfig};
use crate::{KIND, error};

pub(crate) const SCIM_JSON: &str = "application/scim+json";

/// A successful response's parsed body (None for 204 / empty body).
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) body: Option<Value>,
}

pub(crate) struct Client {
    http: reqwest::Client,
    auth: Arc<dyn AuthProvider>,
    base: String,
    pub(crate) requests: AtomicU64,
    pub(crate) bulk_requests: AtomicU64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &iga_http::redact_url_str(&self.base))
            .field("auth", &self.auth)
            .finish()
    }
}

impl Client {
    pub(crate) fn new(config: &ScimConfig) -> Result<Self> {
        let mut b = HttpClientBuilder::new()
            .connector(KIND)
            .user_agent_suffix("scim")
            .request_timeout(config.request_timeout);
        if let Some(pem) = &config.root_ca_pem {
            b = b.add_root_ca_pem(pem.clone());
        }
        let http = b.build()?;
        let auth: Arc<dyn AuthProvider> = match &config.auth {
            ScimAuth::None => Arc::new(NoAuth),
            ScimAuth::Bearer(t) => Arc::new(BearerAuth::new(t.clone())),
            ScimAuth::Basic { username, password } => {
                Arc::new(BasicAuth::new(username.clone(), password.clone()))
            }
            ScimAuth::OAuth2(c) => {
                Arc::new(OAuth2ClientCredentials::new(http.clone(), (**c).clone()))
            }
        };
        Ok(Self {
            http,
            auth,
            base: config.base_url.as_str().trim_end_matches('/').to_string(),
            requests: AtomicU64::new(0),
            bulk_requests: AtomicU64::new(0),
        })
    }

    /// One request to `base + path`. Non-success statuses become classified errors.
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
                iga_adapter::Error::invalid_input(format!("cannot serialise request: {e}"))
                    .with_connector(KIND)
            })?),
            None => None,
        };
        if path == "/Bulk" {
            self.bulk_requests.fetch_add(1, Ordering::Relaxed);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(connector = KIND, %method, path, "scim request");
        let resp = iga_http::send_with_auth(KIND, &*self.auth, || {
            let mut rb = self
                .http
                .request(method.clone(), &url)
                .header(ACCEPT, SCIM_JSON);
            if !query.is_empty() {
                rb = rb.query(query);
            }
            if let Some(p) = &payload {
                rb = rb.header(CONTENT_TYPE, SCIM_JSON).body(p.clone());
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
            return Err(error::from_response(status, &headers, &text)
                .with_context("method", &method)
                .with_context("path", path));
        }
        let body = if text.trim().is_empty() {
            None
        } else {
            Some(serde_json::from_str(&text).map_err(|e| {
                iga_adapter::Error::new(
                    iga_adapter::ErrorKind::Unexpected,
                    format!("response is not JSON: {e}"),
                )
                .with_connector(KIND)
                .with_context("path", path)
            })?)
        };
        Ok(Resp { body })
    }
}
