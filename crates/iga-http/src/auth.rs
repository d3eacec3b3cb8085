//! Authentication providers behind one small trait, [`AuthProvider`].
//!
//! Static credentials ([`BearerAuth`], [`BasicAuth`], [`ApiKeyAuth`]) just add a
//! header. [`OAuth2ClientCredentials`] fetches a token from the token endpoint,
//! caches it until shortly before `expires_in`, refreshes it when it expires or after
//! [`AuthProvider::invalidate`], and lets concurrent callers share one refresh.
//! [`send_with_auth`] sends a request and, on a 401, invalidates the credentials and
//! tries exactly once more.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use iga_adapter::{Error, ErrorKind, Result, Secret, redact};
use iga_directive::{SharedClock, SystemClock, Timestamp};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;

use crate::classify::{classify_reqwest_error, classify_status};
use crate::redact::truncate_chars;

/// Something that puts credentials on a request.
#[async_trait]
pub trait AuthProvider: fmt::Debug + Send + Sync {
    /// Add credentials to `req` (may fetch or refresh a token first).
    async fn apply(&self, req: RequestBuilder) -> Result<RequestBuilder>;

    /// Forget any cached credential so the next [`apply`](Self::apply) obtains a
    /// fresh one. Called after the target answered 401. Static credentials ignore it.
    fn invalidate(&self) {}
}

#[async_trait]
impl<T: AuthProvider + ?Sized> AuthProvider for Arc<T> {
    async fn apply(&self, req: RequestBuilder) -> Result<RequestBuilder> {
        (**self).apply(req).await
    }
    fn invalidate(&self) {
        (**self).invalidate()
    }
}

/// No credentials (public endpoints, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAuth;

#[async_trait]
impl AuthProvider for NoAuth {
    async fn apply(&self, req: RequestBuilder) -> Result<RequestBuilder> {
        Ok(req)
    }
}

/// `Authorization: Bearer <token>` with a fixed token.
#[derive(Debug, Clone)]
pub struct BearerAuth {
    token: Secret,
}

impl BearerAuth {
    /// A fixed bearer token.
    pub fn new(token: impl Into<Secret>) -> Self {
        Self {
            token: token.into(),
        }
    }
}

#[async_trait]
impl AuthProvider for BearerAuth {
    async fn apply(&self, req: RequestBuilder) -> Result<RequestBuilder> {
        Ok(req.bearer_auth(self.token.expose()))
    }
}

/// `Authorization: Basic base64(user:password)`.
#[derive(Debug, Clone)]
pub struct BasicAuth {
    username: String,
    password: Secret,
}

impl BasicAuth {
    /// Basic credentials.
    pub fn new(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }
}

#[async_trait]
impl AuthProvider for BasicAuth {
    async fn apply(&self, req: RequestBuilder) -> Result<RequestBuilder> {
        Ok(req.basic_auth(&self.username, Some(self.password.expose())))
    }
}

/// An API key in a header: `<header>: <prefix><key>`, e.g. `Authorization: SSWS
/// <token>` (Okta) or `X-Api-Key: <key>`.
#[derive(Debug, Clone)]
pub struct ApiKeyAuth {
    header: http::HeaderName,
    prefix: String,
    key: Secret,
}

impl ApiKeyAuth {
    /// `header: key`. An invalid header name is a `ConfigInvalid` error.
    pub fn new(header: &str, key: impl Into<Secret>) -> Result<Self> {
        let header = http::HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| Error::new(ErrorKind::ConfigInvalid, "API key header name is invalid"))?;
        Ok(Self {
            header,
            prefix: String::new(),
            key: key.into(),
        })
    }

    /// Put `prefix` before the key, verbatim (include the trailing space:
    /// `"SSWS "`).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

#[async_trait]
impl AuthProvider for ApiKeyAuth {
    async fn apply(&self, req: RequestBuilder) -> Result<RequestBuilder> {
        let mut v = http::HeaderValue::from_str(&format!("{}{}", self.prefix, self.key.expose()))
            .map_err(|_| {
            Error::new(
                ErrorKind::ConfigInvalid,
                "API key contains characters not allowed in a header",
            )
        })?;
        v.set_sensitive(true);
        Ok(req.header(self.header.clone(), v))
    }
}

/// How the OAuth2 client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuthMethod {
    /// `client_id` and `client_secret` in the form body (`client_secret_post`;
    /// what Entra ID and most vendors accept).
    #[default]
    RequestBody,
    /// HTTP Basic with the client id and secret (`client_secret_basic`).
    BasicHeader,
}

/// Configuration of [`OAuth2ClientCredentials`].
#[derive(Debug, Clone)]
pub struct OAuth2Config {
    /// Token endpoint, e.g. `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`.
    pub token_url: url::Url,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
    /// Scopes, sent space-separated as `scope` (omitted when empty).
    pub scopes: Vec<String>,
    /// Optional `audience` parameter (Auth0, Okta custom authorization servers).
    pub audience: Option<String>,
    /// Optional `resource` parameter (RFC 8707; Entra v1 endpoints).
    pub resource: Option<String>,
    /// How the client authenticates.
    pub auth_method: ClientAuthMethod,
    /// Refresh this long before the token's expiry (default 60 s). For tokens that
    /// live shorter than twice this, half the lifetime is used instead.
    pub refresh_skew: Duration,
    /// Lifetime assumed when the token response has no `expires_in` (default 300 s).
    pub default_lifetime: Duration,
    /// Connector name for errors.
    pub connector: &'static str,
}

impl OAuth2Config {
    /// A configuration with defaults for everything but the endpoint and the client.
    pub fn new(
        token_url: url::Url,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
    ) -> Self {
        Self {
            token_url,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scopes: Vec::new(),
            audience: None,
            resource: None,
            auth_method: ClientAuthMethod::RequestBody,
            refresh_skew: Duration::from_secs(60),
            default_lifetime: Duration::from_secs(300),
            connector: "oauth2",
        }
    }

    /// Add a scope.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Set the `audience` parameter.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Set the `resource` parameter.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Set the client authentication method.
    pub fn auth_method(mut self, m: ClientAuthMethod) -> Self {
        self.auth_method = m;
        self
    }

    /// Set the connector name used in errors.
    pub fn connector(mut self, connector: &'static str) -> Self {
        self.connector = connector;
        self
    }
}

#[derive(Clone)]
struct CachedToken {
    token: Secret,
    refresh_at: Timestamp,
}

/// OAuth2 client-credentials grant (RFC 6749 §4.4) with a cached, shared token.
///
/// - The token is cached until `expires_in - refresh_skew` (by the injected clock).
/// - [`invalidate`](AuthProvider::invalidate) drops it; the next call fetches anew.
/// - Concurrent callers that find no valid token wait on one refresh (single
///   flight): N callers, one token request.
/// - Token endpoint failures are classified: `invalid_client`/`unauthorized_client`
///   /`invalid_grant` and 401 → `Unauthenticated`; `invalid_scope`/`invalid_target`
///   → `PermissionDenied`; other 4xx → `ConfigInvalid`; 429/5xx/transport →
///   temporary, as [`classify_status`]. The client secret never appears.
pub struct OAuth2ClientCredentials {
    http: reqwest::Client,
    config: OAuth2Config,
    clock: SharedClock,
    cache: Mutex<Option<CachedToken>>,
    refresh: tokio::sync::Mutex<()>,
}

impl fmt::Debug for OAuth2ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self.cache.lock().map(|c| c.is_some()).unwrap_or(false);
        f.debug_struct("OAuth2ClientCredentials")
            .field(
                "token_url",
                &crate::redact::redact_url(&self.config.token_url).as_str(),
            )
            .field("client_id", &self.config.client_id)
            .field("client_secret", &self.config.client_secret)
            .field("scopes", &self.config.scopes)
            .field("token_cached", &cached)
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl OAuth2ClientCredentials {
    /// A provider using `http` to reach the token endpoint and the wall clock.
    pub fn new(http: reqwest::Client, config: OAuth2Config) -> Self {
        Self::with_clock(http, config, SystemClock::shared())
    }

    /// A provider with an injected clock (tests advance a `ManualClock` to expire
    /// tokens).
    pub fn with_clock(http: reqwest::Client, config: OAuth2Config, clock: SharedClock) -> Self {
        Self {
            http,
            config,
            clock,
            cache: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// The current access token, fetching or refreshing it if needed.
    pub async fn token(&self) -> Result<Secret> {
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        let _guard = self.refresh.lock().await;
        // Someone else may have refreshed while we waited.
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        let fetched = self.fetch().await?;
        let token = fetched.token.clone();
        *self.cache.lock().expect("token cache lock") = Some(fetched);
        Ok(token)
    }

    fn cached(&self) -> Option<Secret> {
        let now = self.clock.now();
        let cache = self.cache.lock().expect("token cache lock");
        cache
            .as_ref()
            .filter(|c| now < c.refresh_at)
            .map(|c| c.token.clone())
    }

    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> Error {
        Error::new(kind, msg)
            .with_connector(self.config.connector)
            .with_operation("oauth2 token")
    }

    async fn fetch(&self) -> Result<CachedToken> {
        let c = &self.config;
        let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        let scope = c.scopes.join(" ");
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        if let Some(a) = &c.audience {
            form.push(("audience", a));
        }
        if let Some(r) = &c.resource {
            form.push(("resource", r));
        }
        let mut req = self
            .http
            .post(c.token_url.clone())
            .header(http::header::ACCEPT, "application/json");
        match c.auth_method {
            ClientAuthMethod::RequestBody => {
                form.push(("client_id", &c.client_id));
                form.push(("client_secret", c.client_secret.expose()));
            }
            ClientAuthMethod::BasicHeader => {
                req = req.basic_auth(&c.client_id, Some(c.client_secret.expose()));
            }
        }
        let started = self.clock.now();
        let resp =
            req.form(&form).send().await.map_err(|e| {
                classify_reqwest_error(c.connector, &e).with_operation("oauth2 token")
            })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .text()
            .await
            .map_err(|e| classify_reqwest_error(c.connector, &e).with_operation("oauth2 token"))?;
        let body = redact::scrub(&body, &[&c.client_secret]);
        if !status.is_success() {
            return Err(self.classify_token_error(status, &headers, &body));
        }
        let parsed: TokenResponse = serde_json::from_str(&body).map_err(|_| {
            self.err(
                ErrorKind::Unexpected,
                "token endpoint returned no access_token",
            )
        })?;
        if parsed.access_token.is_empty() {
            return Err(self.err(
                ErrorKind::Unexpected,
                "token endpoint returned an empty access_token",
            ));
        }
        if let Some(tt) = &parsed.token_type
            && !tt.eq_ignore_ascii_case("bearer")
        {
            return Err(self.err(
                ErrorKind::Unsupported,
                format!("unsupported token_type {}", truncate_chars(tt, 32)),
            ));
        }
        let lifetime = parsed
            .expires_in
            .as_ref()
            .and_then(|v| match v {
                serde_json::Value::Number(n) => n.as_u64(),
                serde_json::Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .map(Duration::from_secs)
            .unwrap_or(c.default_lifetime);
        let skew = if lifetime >= c.refresh_skew * 2 {
            c.refresh_skew
        } else {
            lifetime / 2
        };
        let usable = lifetime - skew;
        let refresh_at =
            started + chrono::Duration::from_std(usable).unwrap_or(chrono::Duration::MAX / 2);
        Ok(CachedToken {
            token: Secret::new(parsed.access_token),
            refresh_at,
        })
    }

    fn classify_token_error(
        &self,
        status: StatusCode,
        headers: &http::HeaderMap,
        body: &str,
    ) -> Error {
        let parsed = serde_json::from_str::<TokenError>(body).ok();
        let kind = match parsed.as_ref().map(|e| e.error.as_str()) {
            Some("invalid_client" | "unauthorized_client" | "invalid_grant") => {
                Some(ErrorKind::Unauthenticated)
            }
            Some("invalid_scope" | "invalid_target") => Some(ErrorKind::PermissionDenied),
            Some("invalid_request" | "unsupported_grant_type") => Some(ErrorKind::ConfigInvalid),
            _ => None,
        };
        let base = classify_status(self.config.connector, status, headers, body)
            .with_operation("oauth2 token");
        match (kind, parsed) {
            (Some(kind), Some(p))
                if !status.is_server_error() && status != StatusCode::TOO_MANY_REQUESTS =>
            {
                let mut e = self
                    .err(
                        kind,
                        format!("token request rejected: {}", truncate_chars(&p.error, 64)),
                    )
                    .with_context("status", status.as_u16());
                if let Some(d) = p.error_description {
                    e = e.with_context("description", truncate_chars(&d, 200));
                }
                e
            }
            _ if status.is_client_error()
                && status != StatusCode::TOO_MANY_REQUESTS
                && status != StatusCode::UNAUTHORIZED
                && status != StatusCode::FORBIDDEN =>
            {
                // Some other 4xx from the token endpoint: the configuration is wrong.
                let mut e = self
                    .err(
                        ErrorKind::ConfigInvalid,
                        format!("token endpoint answered HTTP {}", status.as_u16()),
                    )
                    .with_context("status", status.as_u16());
                for (k, v) in base.context() {
                    if k == "body" {
                        e = e.with_context("body", v);
                    }
                }
                e
            }
            _ => base,
        }
    }
}

#[async_trait]
impl AuthProvider for OAuth2ClientCredentials {
    async fn apply(&self, req: RequestBuilder) -> Result<RequestBuilder> {
        let token = self.token().await?;
        Ok(req.bearer_auth(token.expose()))
    }

    fn invalidate(&self) {
        *self.cache.lock().expect("token cache lock") = None;
    }
}

/// Send a request with credentials; if the target answers 401, invalidate the
/// credentials and send it once more (built anew by `build`).
///
/// Returns the final response whatever its status (classify non-success yourself
/// with [`classify_status`]); transport failures are classified with
/// [`classify_reqwest_error`] under `connector`.
pub async fn send_with_auth<A, F>(connector: &'static str, auth: &A, build: F) -> Result<Response>
where
    A: AuthProvider + ?Sized,
    F: Fn() -> RequestBuilder,
{
    let resp = send_once(connector, auth, &build).await?;
    if resp.status() != StatusCode::UNAUTHORIZED {
        return Ok(resp);
    }
    tracing::debug!(
        connector,
        "target answered 401, refreshing credentials and retrying once"
    );
    auth.invalidate();
    send_once(connector, auth, &build).await
}

async fn send_once<A, F>(connector: &'static str, auth: &A, build: &F) -> Result<Response>
where
    A: AuthProvider + ?Sized,
    F: Fn() -> RequestBuilder,
{
    let req = auth.apply(build()).await?;
    req.send()
        .await
        .map_err(|e| classify_reqwest_error(connector, &e))
}
