//! axum 0.8 glue: an extractor and a middleware around [`WebhookVerifier`].

use axum::body::Body;
use axum::extract::{FromRef, FromRequest, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::{VerifiedDelivery, WebhookError, WebhookVerifier};

/// A delivery whose signature, timestamp and id were verified, with its raw body.
/// Parse the body only after this (e.g. with [`VerifiedWebhook::json`]).
///
/// As an extractor it takes the verifier from router state (`WebhookVerifier:
/// FromRef<S>`) and must be the last extractor (it consumes the body; axum's body
/// limit applies). A failure answers 400 or 401 with an empty body; the reason is
/// logged at `warn` with the delivery id.
#[derive(Debug, Clone)]
pub struct VerifiedWebhook {
    /// What was verified.
    pub delivery: VerifiedDelivery,
    /// The raw body, exactly as signed.
    pub body: Bytes,
}

impl VerifiedWebhook {
    /// Deserialize the verified body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// The rejection: a bare 400 or 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRejection(pub WebhookError);

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        self.0.status().into_response()
    }
}

async fn run(
    verifier: &WebhookVerifier,
    req: Request,
) -> Result<(http::request::Parts, VerifiedWebhook), WebhookRejection> {
    let (parts, body) = req.into_parts();
    let id_for_log = verifier
        .profile()
        .delivery_id_header
        .as_ref()
        .and_then(|h| parts.headers.get(h))
        .and_then(|v| v.to_str().ok())
        .map(|s| crate::redact::truncate_chars(s, 80))
        .unwrap_or_default();
    let reject = |e: WebhookError| {
        tracing::warn!(
            profile = %verifier.profile().name,
            delivery_id = %id_for_log,
            reason = e.reason(),
            "webhook delivery rejected"
        );
        WebhookRejection(e)
    };
    let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), &())
        .await
        .map_err(|_| reject(WebhookError::BodyUnreadable))?;
    let delivery = verifier
        .verify(&parts.headers, &bytes)
        .await
        .map_err(reject)?;
    Ok((
        parts,
        VerifiedWebhook {
            delivery,
            body: bytes,
        },
    ))
}

impl<S> FromRequest<S> for VerifiedWebhook
where
    S: Send + Sync,
    WebhookVerifier: FromRef<S>,
{
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = WebhookVerifier::from_ref(state);
        run(&verifier, req).await.map(|(_, v)| v)
    }
}

/// Middleware form, for routes whose state is something else or when several
/// profiles share one router:
///
/// ```no_run
/// # use axum::{Router, routing::post, Extension, middleware};
/// # use iga_http::webhook::{verify_webhook, VerifiedDelivery, WebhookVerifier};
/// # fn app(v: WebhookVerifier) -> Router {
/// Router::new()
///     .route("/hooks/github", post(|Extension(d): Extension<VerifiedDelivery>, body: bytes::Bytes| async move {
///         let _ = (d, body);
///     }))
///     .layer(middleware::from_fn_with_state(v, verify_webhook))
/// # }
/// ```
///
/// On success the inner handler sees the same raw body (re-attached) and a
/// [`VerifiedDelivery`] in the request extensions; on failure it is not called. When
/// the inner handler answers anything but 2xx, the delivery is released from the
/// dedupe store ([`WebhookVerifier::release`]), so the sender's retry is processed.
pub async fn verify_webhook(
    State(verifier): State<WebhookVerifier>,
    req: Request,
    next: Next,
) -> Response {
    match run(&verifier, req).await {
        Ok((mut parts, v)) => {
            let delivery = v.delivery.clone();
            parts.extensions.insert(v.delivery);
            let resp = next
                .run(Request::from_parts(parts, Body::from(v.body)))
                .await;
            if !resp.status().is_success() {
                verifier.release(&delivery).await;
            }
            resp
        }
        Err(rej) => rej.into_response(),
    }
}
