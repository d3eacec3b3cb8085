//! The push path: a signed webhook endpoint (axum) that a ServiceNow business rule
//! or flow calls when a requested item is approved.
//!
//! The event only names the item (`{"sys_id": "..."}`); the receiver reads the item
//! back through the Table API (the authoritative, ACL-checked view, and the same
//! mapping code as polling), so a forged or stale payload cannot inject access.
//! Order of work: signature (401 on failure, nothing stored) -> duplicate delivery
//! id (200, nothing stored again) -> fetch and map -> durable store through the
//! [`DirectiveSink`] -> 200. A store or ServiceNow failure answers 503, so the
//! sender retries; the delivery id is remembered only after the store succeeded.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use iga_adapter::{DirectiveSink, DirectiveSource, ErrorKind};
use iga_directive::SharedClock;
use iga_http::webhook::{DedupeStore, Profile, WebhookConfigError, WebhookSecret, WebhookVerifier};
use serde::Deserialize;
use serde_json::json;

use crate::source::ServiceNowSource;

/// The path [`webhook_router`] serves.
pub const WEBHOOK_PATH: &str = "/webhooks/servicenow/approvals";

/// Remembered delivery ids (most recent), for duplicate detection.
const REMEMBERED: usize = 100_000;

/// The event body: the approved requested item's sys_id. Other keys (number,
/// table, ...) are accepted and ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct ApprovalEvent {
    /// `sc_req_item` sys_id.
    pub sys_id: String,
    /// The table, if the sender says (must be `sc_req_item` when present).
    #[serde(default)]
    pub table: Option<String>,
}

/// Signature checks happen in the verifier; duplicates are decided here, after the
/// store succeeded, so the verifier's own store lets every signed delivery through.
#[derive(Debug)]
struct PassThrough;

#[async_trait::async_trait]
impl DedupeStore for PassThrough {
    async fn check_and_insert(
        &self,
        _key: &str,
        _now: iga_directive::Timestamp,
        _ttl: std::time::Duration,
    ) -> bool {
        true
    }
}

#[derive(Debug, Default)]
struct Processed {
    set: HashSet<String>,
    order: VecDeque<String>,
}

/// The webhook receiver: verifier, source (for read-back and mapping) and sink.
pub struct WebhookReceiver {
    source: ServiceNowSource,
    verifier: WebhookVerifier,
    sink: Arc<dyn DirectiveSink>,
    processed: Mutex<Processed>,
}

impl std::fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookReceiver")
            .field("source", &self.source)
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

impl WebhookReceiver {
    /// A receiver verifying `profile` signatures (e.g.
    /// [`Profile::standard_webhooks`], which carries a delivery id) with `secrets`.
    pub fn new(
        source: ServiceNowSource,
        profile: Profile,
        secrets: Vec<WebhookSecret>,
        sink: Arc<dyn DirectiveSink>,
        clock: Option<SharedClock>,
    ) -> Result<Self, WebhookConfigError> {
        let mut b = WebhookVerifier::builder(profile).dedupe_store(Arc::new(PassThrough));
        for s in secrets {
            b = b.secret(s);
        }
        if let Some(c) = clock {
            b = b.clock(c);
        }
        Ok(Self {
            source,
            verifier: b.build()?,
            sink,
            processed: Mutex::new(Processed::default()),
        })
    }

    fn seen(&self, id: &str) -> bool {
        self.processed
            .lock()
            .expect("processed ids")
            .set
            .contains(id)
    }

    fn remember(&self, id: String) {
        let mut p = self.processed.lock().expect("processed ids");
        if p.set.insert(id.clone()) {
            p.order.push_back(id);
            while p.order.len() > REMEMBERED {
                if let Some(old) = p.order.pop_front() {
                    p.set.remove(&old);
                }
            }
        }
    }

    /// Handle one delivery (what the router calls): status and a small JSON body.
    pub async fn handle(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (StatusCode, serde_json::Value) {
        let delivery = match self.verifier.verify(headers, body).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(reason = e.reason(), "servicenow webhook rejected");
                return (e.status(), json!({"status": "rejected"}));
            }
        };
        let id = delivery.delivery_id.clone();
        if let Some(id) = &id
            && self.seen(id)
        {
            return (StatusCode::OK, json!({"status": "duplicate"}));
        }
        let event: ApprovalEvent = match serde_json::from_slice(body) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(delivery = ?id, error = %e, "servicenow webhook: malformed event");
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"status": "malformed", "reason": format!("event body: {e}")}),
                );
            }
        };
        if event.table.as_deref().is_some_and(|t| t != "sc_req_item") {
            return (
                StatusCode::BAD_REQUEST,
                json!({"status": "malformed", "reason": "event.table must be sc_req_item"}),
            );
        }
        let detected = match self.source.detect_one(&event.sys_id).await {
            Ok(d) => d,
            Err(e) if e.kind() == ErrorKind::InvalidInput => {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"status": "malformed", "reason": e.message()}),
                );
            }
            Err(e) => {
                tracing::warn!(delivery = ?id, error = %e, "servicenow webhook: read-back failed");
                return (StatusCode::SERVICE_UNAVAILABLE, json!({"status": "retry"}));
            }
        };
        let status = match detected {
            None => json!({"status": "ignored", "reason": "the item is not approved"}),
            Some(Err(rej)) => {
                tracing::warn!(location = %rej.location, reason = %rej.reason, "servicenow webhook: input rejected");
                json!({"status": "rejected", "location": rej.location, "reason": rej.reason})
            }
            Some(Ok(d)) => {
                let did = d.id.to_string();
                if let Err(e) = self.sink.accept(self.source.name(), vec![d], None).await {
                    tracing::warn!(delivery = ?id, error = %e, "servicenow webhook: store failed");
                    let code = if e.kind() == ErrorKind::InvalidInput {
                        StatusCode::UNPROCESSABLE_ENTITY
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    return (code, json!({"status": "not_stored", "reason": e.message()}));
                }
                json!({"status": "stored", "directive_id": did})
            }
        };
        if let Some(id) = id {
            self.remember(id);
        }
        (StatusCode::OK, status)
    }
}

/// An axum router serving `POST` [`WEBHOOK_PATH`] with `receiver`.
pub fn webhook_router(receiver: Arc<WebhookReceiver>) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(handler))
        .with_state(receiver)
}

async fn handler(
    State(r): State<Arc<WebhookReceiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (code, v) = r.handle(&headers, &body).await;
    (code, axum::Json(v)).into_response()
}
