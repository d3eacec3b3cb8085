//! The outbound-webhook adapter.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use http::{HeaderMap, StatusCode};
use iga_adapter::{
    Account, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo, Error,
    ErrorKind, NoOpReason, ObjectRef, Observed, Outcome, Page, PageRequest, ProvisioningAdapter,
    Result, Secret,
};
use iga_directive::{EntitlementKind, Operation, OperationKind, SharedClock, SystemClock};
use serde::Deserialize;
use url::Url;

use crate::KIND;
use crate::callback::{CallbackStore, Completion, MemoryCallbackStore};
use crate::sign::WebhookSigner;

/// Header carrying the stable per-operation key (the operation id).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Configuration of one webhook target.
#[derive(Clone)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// The system name (instance label).
    pub system: String,
    /// Where operations are POSTed.
    pub url: Url,
    /// The shared `whsec_<base64>` signing secret.
    pub secret: Secret,
    /// Operation kinds the app handles (default: all).
    pub operations: Vec<OperationKind>,
    /// Entitlement kinds the app handles (default: group, role).
    pub kinds: Vec<EntitlementKind>,
    /// Whole-request timeout (default 30 s).
    pub timeout: Duration,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("system", &self.system)
            .field("url", &iga_http::redact_url(&self.url))
            .field("secret", &self.secret)
            .field("operations", &self.operations)
            .field("kinds", &self.kinds)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl WebhookConfig {
    /// A target at `url` (must be http or https) signed with `secret`.
    pub fn new(system: impl Into<String>, url: &str, secret: impl Into<Secret>) -> Result<Self> {
        let parsed = Url::parse(url).map_err(|e| {
            Error::new(ErrorKind::ConfigInvalid, format!("webhook url: {e}"))
                .with_connector(KIND)
                .with_context("field", "url")
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!("webhook url: scheme `{}` is not http(s)", parsed.scheme()),
            )
            .with_connector(KIND)
            .with_context("field", "url"));
        }
        Ok(Self {
            system: system.into(),
            url: parsed,
            secret: secret.into(),
            operations: OperationKind::ALL.to_vec(),
            kinds: vec![EntitlementKind::Group, EntitlementKind::Role],
            timeout: Duration::from_secs(30),
        })
    }

    /// Offer only these operation kinds.
    pub fn operations(mut self, kinds: &[OperationKind]) -> Self {
        self.operations = kinds.to_vec();
        self
    }

    /// Accept these entitlement kinds.
    pub fn entitlement_kinds(mut self, kinds: Vec<EntitlementKind>) -> Self {
        self.kinds = kinds;
        self
    }

    /// Set the request timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }
}

/// Request counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WebhookStats {
    /// POSTs sent.
    pub requests: u64,
}

/// Operations delivered to a homegrown app as signed POSTs.
///
/// Each operation is POSTed as its JSON ([`Operation`]) with the Standard Webhooks
/// headers (`webhook-id` fresh per delivery, `webhook-timestamp`, `webhook-signature`)
/// and `Idempotency-Key: <operation id>` (stable across retries). The answer maps to
/// the outcome ([`map_response`]); a `202` registers its `callback_id` in the
/// [`CallbackStore`], and once [`crate::callback_router`] has recorded the signed
/// callback, applying the operation again answers `Applied` (or the permanent
/// failure the app reported) without another POST.
///
/// The app offers no read API, so read and list are undeclared (`Unsupported`).
#[derive(Clone)]
pub struct WebhookAdapter {
    config: Arc<WebhookConfig>,
    signer: WebhookSigner,
    http: reqwest::Client,
    caps: Capabilities,
    callbacks: Arc<dyn CallbackStore>,
    clock: SharedClock,
    requests: Arc<AtomicU64>,
}

impl fmt::Debug for WebhookAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookAdapter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for WebhookAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "webhook({})", self.config.system)
    }
}

#[derive(Deserialize, Default)]
struct Answer {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    native_id: Option<String>,
    #[serde(default)]
    callback_id: Option<String>,
}

fn noop_reason(kind: OperationKind) -> NoOpReason {
    match kind {
        OperationKind::CreateAccount => NoOpReason::LinkedExisting,
        OperationKind::DisableAccount => NoOpReason::AlreadyDisabled,
        OperationKind::EnableAccount => NoOpReason::AlreadyEnabled,
        OperationKind::DeleteAccount => NoOpReason::AccountAbsent,
        OperationKind::Revoke => NoOpReason::AlreadyAbsent,
        OperationKind::Grant => NoOpReason::AlreadyGranted,
        _ => NoOpReason::NoChange,
    }
}

/// What the app's answer means (the one classification table of this connector):
///
/// | answer | outcome |
/// |---|---|
/// | 2xx (not 202), body `{"status":"already"}` | `AlreadyInState` (reason by operation kind) |
/// | other 2xx | `Applied` (`native_id` from the body when present) |
/// | 202 with `{"callback_id": "..."}` | `Pending { external_ref: callback_id }` |
/// | 202 without a callback id | `Unexpected`, permanent |
/// | 4xx, 5xx | [`iga_http::classify_status_at`]: 4xx permanent (404 `NotFound`, 401, 403, 409 ...), 429 and 5xx temporary with `Retry-After` |
///
/// Returns the outcome and, for a 202, the callback id to register.
pub fn map_response(
    kind: OperationKind,
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    now: SystemTime,
) -> Result<Outcome> {
    if status.is_success() {
        let a: Answer = if body.trim().is_empty() {
            Answer::default()
        } else {
            serde_json::from_str(body).unwrap_or_default()
        };
        if status == StatusCode::ACCEPTED {
            return match a.callback_id.filter(|c| !c.trim().is_empty()) {
                Some(c) => Ok(Outcome::Pending { external_ref: c }),
                None => Err(Error::new(
                    ErrorKind::Unexpected,
                    "202 Accepted without a callback_id",
                )
                .with_connector(KIND)
                .set_permanent()),
            };
        }
        if a.status.as_deref() == Some("already") {
            return Ok(Outcome::AlreadyInState {
                reason: noop_reason(kind),
                native_id: a.native_id,
            });
        }
        return Ok(Outcome::Applied {
            native_id: a.native_id,
        });
    }
    Err(iga_http::classify_status_at(
        KIND, status, headers, body, now,
    ))
}

impl WebhookAdapter {
    /// An adapter with an in-memory callback store.
    pub fn new(config: WebhookConfig) -> Result<Self> {
        Self::with_callbacks(config, Arc::new(MemoryCallbackStore::new()))
    }

    /// An adapter recording asynchronous completions in `callbacks` (share it with
    /// [`crate::callback_router`]).
    pub fn with_callbacks(
        config: WebhookConfig,
        callbacks: Arc<dyn CallbackStore>,
    ) -> Result<Self> {
        let signer = WebhookSigner::new(&config.secret)?;
        let http = iga_http::HttpClientBuilder::new()
            .connector(KIND)
            .request_timeout(config.timeout)
            .build()?;
        let mut caps = Capabilities::none().with_operations(&config.operations);
        caps.entitlement_kinds = config.kinds.clone();
        caps.create_links_existing = true;
        caps.asynchronous = true;
        Ok(Self {
            config: Arc::new(config),
            signer,
            http,
            caps,
            callbacks,
            clock: SystemClock::shared(),
            requests: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Use this clock for signature timestamps.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The callback store.
    pub fn callbacks(&self) -> &Arc<dyn CallbackStore> {
        &self.callbacks
    }

    /// Request counters.
    pub fn stats(&self) -> WebhookStats {
        WebhookStats {
            requests: self.requests.load(Ordering::Relaxed),
        }
    }

    async fn post(&self, op: &Operation) -> Result<Outcome> {
        let body = serde_json::to_vec(op).map_err(|e| {
            Error::new(ErrorKind::InvalidInput, format!("operation JSON: {e}")).with_connector(KIND)
        })?;
        let mut headers = self.signer.headers(self.clock.now(), &body);
        headers.insert(
            IDEMPOTENCY_KEY,
            http::HeaderValue::from_str(&op.id.0).map_err(|_| {
                Error::invalid_input("operation id is not a valid header value")
                    .with_connector(KIND)
                    .with_context("operation_id", &op.id)
            })?,
        );
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        self.requests.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .http
            .post(self.config.url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| iga_http::classify_reqwest_error(KIND, &e))?;
        let status = resp.status();
        let rh = resp.headers().clone();
        let text = resp
            .text()
            .await
            .map_err(|e| iga_http::classify_reqwest_error(KIND, &e))?;
        let outcome = map_response(op.kind, status, &rh, &text, SystemTime::now())
            .map_err(|e| e.with_context("operation_id", &op.id))?;
        if let Outcome::Pending { external_ref } = &outcome {
            self.callbacks.register(external_ref, &op.id.0).await?;
        }
        Ok(outcome)
    }
}

#[async_trait]
impl ProvisioningAdapter for WebhookAdapter {
    fn info(&self) -> AdapterInfo {
        AdapterInfo::new(KIND, self.config.system.clone())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// No side effect is possible without an operation, so `check` validates only the
    /// configuration (the signer and the client were built at construction).
    async fn check(&self) -> Result<()> {
        Ok(())
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.caps.check(op)?;
        match self.callbacks.completion(&op.id.0).await? {
            Some(Completion::Completed) => Ok(Outcome::applied()),
            Some(Completion::Failed { reason }) => Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("the app reported failure: {reason}"),
            )
            .with_connector(KIND)
            .with_context("operation_id", &op.id)
            .set_permanent()),
            None => self.post(op).await,
        }
    }

    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        iga_adapter::batch::sequential(self, ops).await
    }

    async fn read(&self, _: &ObjectRef) -> Result<Option<Observed>> {
        Err(self.caps.check_call("read").expect_err("read undeclared"))
    }

    async fn list_accounts(&self, _: PageRequest) -> Result<Page<Account>> {
        Err(self
            .caps
            .check_call("list_accounts")
            .expect_err("list undeclared"))
    }

    async fn list_entitlements(&self, _: PageRequest) -> Result<Page<EntitlementInfo>> {
        Err(self
            .caps
            .check_call("list_entitlements")
            .expect_err("list undeclared"))
    }

    async fn list_assignments(
        &self,
        _: &AssignmentScope,
        _: PageRequest,
    ) -> Result<Page<Assignment>> {
        Err(self
            .caps
            .check_call("list_assignments")
            .expect_err("list undeclared"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn map(status: u16, body: &str, headers: &[(&str, &str)]) -> Result<Outcome> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map_response(
            OperationKind::Grant,
            StatusCode::from_u16(status).unwrap(),
            &h,
            body,
            SystemTime::now(),
        )
    }

    #[test]
    fn response_table() {
        assert_eq!(map(200, "", &[]).unwrap(), Outcome::applied());
        assert_eq!(
            map(201, r#"{"native_id":"u-1"}"#, &[]).unwrap(),
            Outcome::Applied {
                native_id: Some("u-1".into())
            }
        );
        assert_eq!(
            map(200, r#"{"status":"already"}"#, &[]).unwrap(),
            Outcome::no_op(NoOpReason::AlreadyGranted)
        );
        assert_eq!(map(204, "", &[]).unwrap(), Outcome::applied());
        assert_eq!(
            map(202, r#"{"callback_id":"cb-9"}"#, &[]).unwrap(),
            Outcome::Pending {
                external_ref: "cb-9".into()
            }
        );
        let e = map(202, "{}", &[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unexpected);
        assert!(!e.is_retryable());
        let cases: [(u16, ErrorKind, bool); 8] = [
            (400, ErrorKind::InvalidInput, false),
            (401, ErrorKind::Unauthenticated, false),
            (403, ErrorKind::PermissionDenied, false),
            (404, ErrorKind::NotFound, false),
            (409, ErrorKind::Conflict, false),
            (500, ErrorKind::Unexpected, true),
            (503, ErrorKind::Unavailable, true),
            (504, ErrorKind::Timeout, true),
        ];
        for (status, kind, retry) in cases {
            let e = map(status, "", &[]).unwrap_err();
            assert_eq!((e.kind(), e.is_retryable()), (kind, retry), "{status}");
        }
        let e = map(429, "", &[("retry-after", "7")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn config_rejects_bad_urls_and_secrets_without_echoing_them() {
        let e = WebhookConfig::new("app", "ftp://x", "whsec_AAAA").unwrap_err();
        assert!(e.to_string().contains("url"), "{e}");
        let cfg = WebhookConfig::new("app", "http://127.0.0.1:1/hook", "whsec_!!not-b64").unwrap();
        let e = WebhookAdapter::new(cfg).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
        assert!(!e.to_string().contains("not-b64"), "{e}");
    }
}
