//! Signing outbound deliveries the way [`iga_http::webhook::WebhookVerifier`] with
//! [`Profile::standard_webhooks`](iga_http::webhook::Profile::standard_webhooks)
//! verifies them.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue};
use iga_adapter::{Error, ErrorKind, Result, Secret};
use iga_directive::Timestamp;

/// Header carrying the delivery id (unique per delivery attempt).
pub const WEBHOOK_ID: &str = "webhook-id";
/// Header carrying the signed Unix timestamp.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying `v1,<base64 HMAC-SHA256>`.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// Signs deliveries with one `whsec_<base64>` secret (Standard Webhooks): the
/// signature is HMAC-SHA256 over `"{webhook-id}.{webhook-timestamp}.{body}"`.
#[derive(Clone)]
pub struct WebhookSigner {
    key: Vec<u8>,
}

impl fmt::Debug for WebhookSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSigner(***)")
    }
}

impl WebhookSigner {
    /// From a Standard Webhooks secret (`whsec_` prefix optional, then base64).
    /// An undecodable or empty secret is `ConfigInvalid` (the secret is not echoed).
    pub fn new(secret: &Secret) -> Result<Self> {
        let raw = secret.expose();
        let b64 = raw.strip_prefix("whsec_").unwrap_or(raw);
        let key = STANDARD.decode(b64).map_err(|_| {
            Error::new(
                ErrorKind::ConfigInvalid,
                "webhook secret is not a whsec_<base64> value",
            )
            .with_connector(crate::KIND)
        })?;
        if key.is_empty() {
            return Err(
                Error::new(ErrorKind::ConfigInvalid, "webhook secret is empty")
                    .with_connector(crate::KIND),
            );
        }
        Ok(Self { key })
    }

    /// The `v1,<base64>` signature of one delivery.
    pub fn signature(&self, delivery_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut msg = Vec::with_capacity(body.len() + 64);
        msg.extend_from_slice(delivery_id.as_bytes());
        msg.push(b'.');
        msg.extend_from_slice(timestamp.to_string().as_bytes());
        msg.push(b'.');
        msg.extend_from_slice(body);
        let mac = iga_http::webhook::hmac_sha256(&self.key, &msg);
        format!("v1,{}", STANDARD.encode(mac))
    }

    /// The three signature headers of a delivery with a fresh random id, signed at
    /// `now`.
    pub fn headers(&self, now: Timestamp, body: &[u8]) -> HeaderMap {
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        self.headers_with_id(&id, now, body)
    }

    /// The signature headers with a given delivery id.
    pub fn headers_with_id(&self, delivery_id: &str, now: Timestamp, body: &[u8]) -> HeaderMap {
        let ts = now.timestamp();
        let mut h = HeaderMap::new();
        let v = |s: String| HeaderValue::from_str(&s).expect("ASCII header value");
        h.insert(WEBHOOK_ID, v(delivery_id.to_string()));
        h.insert(WEBHOOK_TIMESTAMP, v(ts.to_string()));
        h.insert(WEBHOOK_SIGNATURE, v(self.signature(delivery_id, ts, body)));
        h
    }
}
