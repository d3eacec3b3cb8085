//! Signed-webhook verification (protocols.md §10): HMAC-SHA256 over a
//! profile-defined message, constant-time comparison, a replay window on signed
//! timestamps, delivery-id dedupe with TTL, and several active secrets at once for
//! rotation. Always over the **raw body bytes**, before any JSON parsing.
//!
//! Built-in [`Profile`]s: [Standard Webhooks](Profile::standard_webhooks),
//! [Stripe-style](Profile::stripe), [GitHub](Profile::github),
//! [Slack](Profile::slack), [BambooHR](Profile::bamboohr), and a
//! [generic](Profile::generic) configurable one.
//!
//! Use [`WebhookVerifier::verify`] directly, or in axum the [`VerifiedWebhook`]
//! extractor (verifier in the router state) or the [`verify_webhook`] middleware.

mod axum_glue;
mod dedupe;

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderName};
use iga_adapter::Secret;
use iga_directive::{SharedClock, SystemClock, Timestamp};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub use axum_glue::{VerifiedWebhook, WebhookRejection, verify_webhook};
pub use dedupe::{DedupeStore, MemoryDedupeStore};

type HmacSha256 = Hmac<Sha256>;

/// Default accepted clock difference between the sender's timestamp and ours
/// (both directions): 300 s.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Default time a delivery id is remembered: 24 h. For schemes without a signed
/// timestamp (GitHub) this bounds replay protection; for timestamped schemes it
/// only needs to exceed twice the tolerance.
pub const DEFAULT_DEDUPE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How signature bytes are written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureEncoding {
    /// Hexadecimal (either case).
    Hex,
    /// Standard base64 (padding optional).
    Base64,
}

/// How the signature header is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureFormat {
    /// One signature after a fixed prefix: `sha256=<hex>` (GitHub), `v0=<hex>`
    /// (Slack), or no prefix (BambooHR). Several header instances are all tried.
    Prefixed {
        /// The prefix, possibly empty.
        prefix: String,
    },
    /// Space-separated `version,signature` entries (Standard Webhooks:
    /// `v1,<b64> v1,<b64>`); entries of another version are ignored.
    VersionedList {
        /// The version to accept (`v1`).
        version: String,
    },
    /// Comma-separated `key=value` list carrying the timestamp and one or more
    /// signatures (Stripe: `t=<unix>,v1=<hex>,v1=<hex>`).
    KeyValueList {
        /// Key of the timestamp (`t`).
        timestamp_key: String,
        /// Key of each signature (`v1`).
        signature_key: String,
    },
}

/// Where the signed timestamp comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampSource {
    /// The scheme signs no timestamp (replay protection by dedupe only).
    None,
    /// A header.
    Header(HeaderName),
    /// Inside the signature header ([`SignatureFormat::KeyValueList`]).
    SignatureHeader,
}

/// How the timestamp is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampFormat {
    /// Unix epoch seconds.
    UnixSeconds,
    /// RFC 3339 / ISO 8601.
    Rfc3339,
    /// Either (BambooHR's format is reported both ways).
    UnixSecondsOrRfc3339,
}

/// One piece of the signed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessagePart {
    /// Fixed text.
    Literal(String),
    /// The raw request body.
    Body,
    /// The timestamp exactly as sent.
    Timestamp,
    /// The delivery id exactly as sent.
    DeliveryId,
}

impl MessagePart {
    /// Parse a template such as `"{id}.{timestamp}.{body}"` or `"v0:{timestamp}:{body}"`.
    /// Placeholders: `{body}`, `{timestamp}`, `{id}`; everything else is literal.
    /// An unknown placeholder is an error.
    pub fn parse_template(template: &str) -> Result<Vec<MessagePart>, WebhookConfigError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            lit.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let end = after.find('}').ok_or(WebhookConfigError(
                "unclosed placeholder in message template",
            ))?;
            let part = match &after[..end] {
                "body" => MessagePart::Body,
                "timestamp" => MessagePart::Timestamp,
                "id" => MessagePart::DeliveryId,
                _ => {
                    return Err(WebhookConfigError(
                        "unknown placeholder in message template",
                    ));
                }
            };
            if !lit.is_empty() {
                parts.push(MessagePart::Literal(std::mem::take(&mut lit)));
            }
            parts.push(part);
            rest = &after[end + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(MessagePart::Literal(lit));
        }
        if !parts.contains(&MessagePart::Body) {
            return Err(WebhookConfigError("message template must include {body}"));
        }
        Ok(parts)
    }
}

/// How configured secret strings become HMAC keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretEncoding {
    /// The UTF-8 bytes of the secret string (Stripe, GitHub, Slack, BambooHR).
    Raw,
    /// Standard Webhooks: `whsec_<base64>`; the key is the base64-decoded part.
    StandardWebhooks,
}

/// A signing scheme: which headers, which bytes are signed, how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Name used in logs and dedupe keys.
    pub name: String,
    /// Header carrying the signature(s).
    pub signature_header: HeaderName,
    /// Layout of the signature header.
    pub signature_format: SignatureFormat,
    /// Encoding of each signature.
    pub encoding: SignatureEncoding,
    /// Where the signed timestamp is.
    pub timestamp: TimestampSource,
    /// How the timestamp is written.
    pub timestamp_format: TimestampFormat,
    /// Header with a unique delivery id; when set it is required and used for
    /// dedupe.
    pub delivery_id_header: Option<HeaderName>,
    /// The signed message.
    pub message: Vec<MessagePart>,
    /// How secrets are turned into keys.
    pub secret_encoding: SecretEncoding,
}

fn hn(s: &'static str) -> HeaderName {
    HeaderName::from_static(s)
}

impl Profile {
    /// [Standard Webhooks](https://www.standardwebhooks.com/) (Svix and others):
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64> ...`, over
    /// `"{id}.{timestamp}.{body}"`, secrets `whsec_<base64>`.
    pub fn standard_webhooks() -> Self {
        Self {
            name: "standard-webhooks".into(),
            signature_header: hn("webhook-signature"),
            signature_format: SignatureFormat::VersionedList {
                version: "v1".into(),
            },
            encoding: SignatureEncoding::Base64,
            timestamp: TimestampSource::Header(hn("webhook-timestamp")),
            timestamp_format: TimestampFormat::UnixSeconds,
            delivery_id_header: Some(hn("webhook-id")),
            message: vec![
                MessagePart::DeliveryId,
                MessagePart::Literal(".".into()),
                MessagePart::Timestamp,
                MessagePart::Literal(".".into()),
                MessagePart::Body,
            ],
            secret_encoding: SecretEncoding::StandardWebhooks,
        }
    }

    /// Stripe-style: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>]` over
    /// `"{t}.{body}"`. Dedupe uses the signature itself (no id header).
    pub fn stripe() -> Self {
        Self {
            name: "stripe".into(),
            signature_header: hn("stripe-signature"),
            signature_format: SignatureFormat::KeyValueList {
                timestamp_key: "t".into(),
                signature_key: "v1".into(),
            },
            encoding: SignatureEncoding::Hex,
            timestamp: TimestampSource::SignatureHeader,
            timestamp_format: TimestampFormat::UnixSeconds,
            delivery_id_header: None,
            message: vec![
                MessagePart::Timestamp,
                MessagePart::Literal(".".into()),
                MessagePart::Body,
            ],
            secret_encoding: SecretEncoding::Raw,
        }
    }

    /// GitHub: `X-Hub-Signature-256: sha256=<hex>` over the body; no timestamp, so
    /// replay protection is the dedupe on the required `X-GitHub-Delivery`.
    pub fn github() -> Self {
        Self {
            name: "github".into(),
            signature_header: hn("x-hub-signature-256"),
            signature_format: SignatureFormat::Prefixed {
                prefix: "sha256=".into(),
            },
            encoding: SignatureEncoding::Hex,
            timestamp: TimestampSource::None,
            timestamp_format: TimestampFormat::UnixSeconds,
            delivery_id_header: Some(hn("x-github-delivery")),
            message: vec![MessagePart::Body],
            secret_encoding: SecretEncoding::Raw,
        }
    }

    /// Slack: `X-Slack-Signature: v0=<hex>`, `X-Slack-Request-Timestamp`, over
    /// `"v0:{timestamp}:{body}"`.
    pub fn slack() -> Self {
        Self {
            name: "slack".into(),
            signature_header: hn("x-slack-signature"),
            signature_format: SignatureFormat::Prefixed {
                prefix: "v0=".into(),
            },
            encoding: SignatureEncoding::Hex,
            timestamp: TimestampSource::Header(hn("x-slack-request-timestamp")),
            timestamp_format: TimestampFormat::UnixSeconds,
            delivery_id_header: None,
            message: vec![
                MessagePart::Literal("v0:".into()),
                MessagePart::Timestamp,
                MessagePart::Literal(":".into()),
                MessagePart::Body,
            ],
            secret_encoding: SecretEncoding::Raw,
        }
    }

    /// BambooHR: `X-BambooHR-Signature: <hex>`, `X-BambooHR-Timestamp`, over the
    /// body immediately followed by the timestamp (no separator). The timestamp is
    /// accepted as epoch seconds or ISO 8601.
    pub fn bamboohr() -> Self {
        Self {
            name: "bamboohr".into(),
            signature_header: hn("x-bamboohr-signature"),
            signature_format: SignatureFormat::Prefixed {
                prefix: String::new(),
            },
            encoding: SignatureEncoding::Hex,
            timestamp: TimestampSource::Header(hn("x-bamboohr-timestamp")),
            timestamp_format: TimestampFormat::UnixSecondsOrRfc3339,
            delivery_id_header: None,
            message: vec![MessagePart::Body, MessagePart::Timestamp],
            secret_encoding: SecretEncoding::Raw,
        }
    }

    /// A configurable profile: signature in `signature_header` (no prefix), HMAC
    /// over the body only, no timestamp, no id. Adjust with the `with_*` methods.
    ///
    /// ```
    /// use iga_http::webhook::{Profile, SignatureEncoding, TimestampFormat};
    /// let p = Profile::generic("acme", "x-acme-signature", SignatureEncoding::Base64)
    ///     .unwrap()
    ///     .with_prefix("sha256=")
    ///     .with_timestamp_header("x-acme-timestamp", TimestampFormat::UnixSeconds)
    ///     .unwrap()
    ///     .with_delivery_id_header("x-acme-delivery")
    ///     .unwrap()
    ///     .with_message_template("{timestamp}.{body}")
    ///     .unwrap();
    /// assert_eq!(p.name, "acme");
    /// ```
    pub fn generic(
        name: impl Into<String>,
        signature_header: &str,
        encoding: SignatureEncoding,
    ) -> Result<Self, WebhookConfigError> {
        Ok(Self {
            name: name.into(),
            signature_header: header_name(signature_header)?,
            signature_format: SignatureFormat::Prefixed {
                prefix: String::new(),
            },
            encoding,
            timestamp: TimestampSource::None,
            timestamp_format: TimestampFormat::UnixSeconds,
            delivery_id_header: None,
            message: vec![MessagePart::Body],
            secret_encoding: SecretEncoding::Raw,
        })
    }

    /// Expect a fixed prefix before the signature (`sha256=`).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.signature_format = SignatureFormat::Prefixed {
            prefix: prefix.into(),
        };
        self
    }

    /// Take the signed timestamp from a header.
    pub fn with_timestamp_header(
        mut self,
        header: &str,
        format: TimestampFormat,
    ) -> Result<Self, WebhookConfigError> {
        self.timestamp = TimestampSource::Header(header_name(header)?);
        self.timestamp_format = format;
        Ok(self)
    }

    /// Require a delivery-id header and dedupe on it.
    pub fn with_delivery_id_header(mut self, header: &str) -> Result<Self, WebhookConfigError> {
        self.delivery_id_header = Some(header_name(header)?);
        Ok(self)
    }

    /// Set the signed message from a template (see [`MessagePart::parse_template`]).
    pub fn with_message_template(mut self, template: &str) -> Result<Self, WebhookConfigError> {
        self.message = MessagePart::parse_template(template)?;
        Ok(self)
    }

    /// Set how secrets become keys.
    pub fn with_secret_encoding(mut self, enc: SecretEncoding) -> Self {
        self.secret_encoding = enc;
        self
    }

    fn validate(&self) -> Result<(), WebhookConfigError> {
        if !self.message.contains(&MessagePart::Body) {
            return Err(WebhookConfigError("signed message must include the body"));
        }
        if self.message.contains(&MessagePart::Timestamp) && self.timestamp == TimestampSource::None
        {
            return Err(WebhookConfigError(
                "signed message uses a timestamp but the profile has no timestamp source",
            ));
        }
        if self.message.contains(&MessagePart::DeliveryId) && self.delivery_id_header.is_none() {
            return Err(WebhookConfigError(
                "signed message uses a delivery id but the profile has no id header",
            ));
        }
        if self.timestamp == TimestampSource::SignatureHeader
            && !matches!(self.signature_format, SignatureFormat::KeyValueList { .. })
        {
            return Err(WebhookConfigError(
                "timestamp in the signature header needs the key=value signature format",
            ));
        }
        Ok(())
    }
}

fn header_name(s: &str) -> Result<HeaderName, WebhookConfigError> {
    HeaderName::from_bytes(s.as_bytes()).map_err(|_| WebhookConfigError("invalid header name"))
}

/// A misconfigured profile or secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfigError(pub &'static str);

impl fmt::Display for WebhookConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "webhook configuration: {}", self.0)
    }
}

impl std::error::Error for WebhookConfigError {}

impl From<WebhookConfigError> for iga_adapter::Error {
    fn from(e: WebhookConfigError) -> Self {
        iga_adapter::Error::new(iga_adapter::ErrorKind::ConfigInvalid, e.to_string())
    }
}

/// One signing secret with a key id, optionally valid only until a given time
/// (keep the old secret active with `not_after` while the sender switches).
#[derive(Debug, Clone)]
pub struct WebhookSecret {
    /// Identifies the secret in logs and in [`VerifiedDelivery::key_id`].
    pub key_id: String,
    /// The secret as configured (e.g. `whsec_...` for Standard Webhooks).
    pub secret: Secret,
    /// After this instant the secret is no longer accepted.
    pub not_after: Option<Timestamp>,
}

impl WebhookSecret {
    /// A secret without expiry.
    pub fn new(key_id: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Self {
            key_id: key_id.into(),
            secret: secret.into(),
            not_after: None,
        }
    }

    /// Accept this secret only until `t`.
    pub fn valid_until(mut self, t: Timestamp) -> Self {
        self.not_after = Some(t);
        self
    }
}

struct Key {
    key_id: String,
    bytes: Vec<u8>,
    not_after: Option<Timestamp>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({}, ***)", self.key_id)
    }
}

fn decode_secret(enc: SecretEncoding, s: &WebhookSecret) -> Result<Key, WebhookConfigError> {
    let raw = s.secret.expose();
    let bytes = match enc {
        SecretEncoding::Raw => raw.as_bytes().to_vec(),
        SecretEncoding::StandardWebhooks => {
            let b64 = raw.strip_prefix("whsec_").unwrap_or(raw);
            STANDARD
                .decode(b64)
                .map_err(|_| WebhookConfigError("whsec_ secret is not valid base64"))?
        }
    };
    if bytes.is_empty() {
        return Err(WebhookConfigError("empty webhook secret"));
    }
    Ok(Key {
        key_id: s.key_id.clone(),
        bytes,
        not_after: s.not_after,
    })
}

/// Why a delivery was rejected. The HTTP answer carries none of this (see
/// [`WebhookError::status`]); log it with the delivery id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookError {
    /// A required header is missing or not ASCII.
    MissingHeader(&'static str),
    /// A header is present but unreadable (bad timestamp, undecodable signature).
    Malformed(&'static str),
    /// The signed timestamp is older than the tolerance.
    Stale,
    /// The signed timestamp is further in the future than the tolerance.
    FromTheFuture,
    /// No signature matched any active secret.
    BadSignature,
    /// The delivery was already accepted once.
    Replay,
    /// Every configured secret has expired.
    NoActiveSecret,
    /// The request body could not be read (too large, connection closed).
    BodyUnreadable,
}

impl WebhookError {
    /// The status to answer: 401 for signature problems, 400 for everything else.
    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::BadSignature | Self::NoActiveSecret => http::StatusCode::UNAUTHORIZED,
            _ => http::StatusCode::BAD_REQUEST,
        }
    }

    /// A short machine-readable reason for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::Malformed(_) => "malformed",
            Self::Stale => "stale_timestamp",
            Self::FromTheFuture => "future_timestamp",
            Self::BadSignature => "bad_signature",
            Self::Replay => "replay",
            Self::NoActiveSecret => "no_active_secret",
            Self::BodyUnreadable => "body_unreadable",
        }
    }
}

impl fmt::Display for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader(h) => write!(f, "missing header {h}"),
            Self::Malformed(what) => write!(f, "malformed {what}"),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for WebhookError {}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDelivery {
    /// The profile's name.
    pub profile: String,
    /// The delivery id header, if the profile has one.
    pub delivery_id: Option<String>,
    /// The key that matched.
    pub key_id: String,
    /// The signed timestamp, if the scheme has one.
    pub timestamp: Option<Timestamp>,
    /// The key recorded in the dedupe store (see [`WebhookVerifier::release`]).
    pub dedupe_key: String,
}

/// Builder for [`WebhookVerifier`].
pub struct WebhookVerifierBuilder {
    profile: Profile,
    secrets: Vec<WebhookSecret>,
    clock: SharedClock,
    dedupe: Arc<dyn DedupeStore>,
    tolerance: Duration,
    dedupe_ttl: Duration,
}

impl fmt::Debug for WebhookVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifierBuilder")
            .field("profile", &self.profile.name)
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl WebhookVerifierBuilder {
    /// Add a secret (call several times for rotation).
    pub fn secret(mut self, s: WebhookSecret) -> Self {
        self.secrets.push(s);
        self
    }

    /// Use this clock for the replay window, secret expiry and dedupe TTL.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Use this dedupe store (default: a fresh [`MemoryDedupeStore`]).
    pub fn dedupe_store(mut self, store: Arc<dyn DedupeStore>) -> Self {
        self.dedupe = store;
        self
    }

    /// Accepted timestamp skew in both directions (default [`DEFAULT_TOLERANCE`]).
    pub fn tolerance(mut self, d: Duration) -> Self {
        self.tolerance = d;
        self
    }

    /// How long delivery ids are remembered (default [`DEFAULT_DEDUPE_TTL`]; raised
    /// to at least twice the tolerance).
    pub fn dedupe_ttl(mut self, d: Duration) -> Self {
        self.dedupe_ttl = d;
        self
    }

    /// Validate the profile and decode the secrets.
    pub fn build(self) -> Result<WebhookVerifier, WebhookConfigError> {
        self.profile.validate()?;
        if self.secrets.is_empty() {
            return Err(WebhookConfigError(
                "at least one webhook secret is required",
            ));
        }
        let keys = self
            .secrets
            .iter()
            .map(|s| decode_secret(self.profile.secret_encoding, s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(WebhookVerifier {
            inner: Arc::new(Inner {
                dedupe_ttl: self.dedupe_ttl.max(self.tolerance * 2),
                profile: self.profile,
                keys: RwLock::new(keys),
                clock: self.clock,
                dedupe: self.dedupe,
                tolerance: self.tolerance,
            }),
        })
    }
}

struct Inner {
    profile: Profile,
    keys: RwLock<Vec<Key>>,
    clock: SharedClock,
    dedupe: Arc<dyn DedupeStore>,
    tolerance: Duration,
    dedupe_ttl: Duration,
}

/// Verifies deliveries of one [`Profile`]. Cheap to clone (shared state), so it
/// can live in axum router state.
#[derive(Clone)]
pub struct WebhookVerifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self
            .inner
            .keys
            .read()
            .map(|k| k.iter().map(|k| k.key_id.clone()).collect())
            .unwrap_or_default();
        f.debug_struct("WebhookVerifier")
            .field("profile", &self.inner.profile.name)
            .field("key_ids", &keys)
            .field("tolerance", &self.inner.tolerance)
            .finish()
    }
}

struct Parsed {
    timestamp_raw: Option<String>,
    signatures: Vec<Vec<u8>>,
}

impl WebhookVerifier {
    /// Start building a verifier for `profile` (wall clock, in-memory dedupe,
    /// ±300 s tolerance, 24 h dedupe TTL).
    pub fn builder(profile: Profile) -> WebhookVerifierBuilder {
        WebhookVerifierBuilder {
            profile,
            secrets: Vec::new(),
            clock: SystemClock::shared(),
            dedupe: Arc::new(MemoryDedupeStore::default()),
            tolerance: DEFAULT_TOLERANCE,
            dedupe_ttl: DEFAULT_DEDUPE_TTL,
        }
    }

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.inner.profile
    }

    /// Replace the active secrets at runtime (rotation without a restart). On error
    /// the previous secrets stay active.
    pub fn set_secrets(&self, secrets: Vec<WebhookSecret>) -> Result<(), WebhookConfigError> {
        if secrets.is_empty() {
            return Err(WebhookConfigError(
                "at least one webhook secret is required",
            ));
        }
        let keys = secrets
            .iter()
            .map(|s| decode_secret(self.inner.profile.secret_encoding, s))
            .collect::<Result<Vec<_>, _>>()?;
        *self.inner.keys.write().expect("webhook keys lock") = keys;
        Ok(())
    }

    /// Verify one delivery from its headers and **raw** body. Order: headers parsed,
    /// timestamp window, signature (constant-time, every active secret), then the
    /// dedupe store, so unsigned junk never fills the store.
    pub async fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<VerifiedDelivery, WebhookError> {
        let p = &self.inner.profile;
        let now = self.inner.clock.now();
        let delivery_id = match &p.delivery_id_header {
            Some(h) => {
                let v = headers
                    .get(h)
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .ok_or(WebhookError::MissingHeader("delivery id"))?;
                Some(v.to_string())
            }
            None => None,
        };
        let parsed = self.parse_signature_headers(headers)?;
        let timestamp = match &parsed.timestamp_raw {
            Some(raw) => {
                let ts = parse_timestamp(raw, p.timestamp_format)
                    .ok_or(WebhookError::Malformed("timestamp"))?;
                let tol = chrono::Duration::from_std(self.inner.tolerance)
                    .unwrap_or(chrono::Duration::MAX / 2);
                if ts < now - tol {
                    return Err(WebhookError::Stale);
                }
                if ts > now + tol {
                    return Err(WebhookError::FromTheFuture);
                }
                Some(ts)
            }
            None => None,
        };
        let mut message = Vec::with_capacity(body.len() + 64);
        for part in &p.message {
            match part {
                MessagePart::Literal(s) => message.extend_from_slice(s.as_bytes()),
                MessagePart::Body => message.extend_from_slice(body),
                MessagePart::Timestamp => message
                    .extend_from_slice(parsed.timestamp_raw.as_deref().unwrap_or("").as_bytes()),
                MessagePart::DeliveryId => {
                    message.extend_from_slice(delivery_id.as_deref().unwrap_or("").as_bytes())
                }
            }
        }
        let (key_id, mac) = {
            let keys = self.inner.keys.read().expect("webhook keys lock");
            let mut active = keys
                .iter()
                .filter(|k| k.not_after.is_none_or(|t| now <= t))
                .peekable();
            if active.peek().is_none() {
                return Err(WebhookError::NoActiveSecret);
            }
            let mut found = None;
            for k in active {
                let mut m = <HmacSha256 as KeyInit>::new_from_slice(&k.bytes)
                    .expect("HMAC accepts keys of any length");
                m.update(&message);
                let expected = m.finalize().into_bytes();
                let mut ok = subtle::Choice::from(0u8);
                for sig in &parsed.signatures {
                    ok |= expected.as_slice().ct_eq(sig.as_slice());
                }
                if bool::from(ok) {
                    found = Some((k.key_id.clone(), expected.to_vec()));
                    break;
                }
            }
            found.ok_or(WebhookError::BadSignature)?
        };
        let dedupe_key = match &delivery_id {
            Some(id) => format!("{}:id:{id}", p.name),
            None => format!("{}:mac:{}", p.name, hex::encode(&mac[..16])),
        };
        if !self
            .inner
            .dedupe
            .check_and_insert(&dedupe_key, now, self.inner.dedupe_ttl)
            .await
        {
            return Err(WebhookError::Replay);
        }
        Ok(VerifiedDelivery {
            profile: p.name.clone(),
            delivery_id,
            key_id,
            timestamp,
            dedupe_key,
        })
    }

    /// Release a verified delivery that was not processed (storing it failed), so
    /// the sender's retry is accepted instead of being rejected as a replay. The
    /// [`verify_webhook`] middleware does this for every non-2xx answer of the inner
    /// handler; handlers using the [`VerifiedWebhook`] extractor call it themselves
    /// before answering an error.
    pub async fn release(&self, delivery: &VerifiedDelivery) {
        self.inner.dedupe.remove(&delivery.dedupe_key).await;
    }

    fn parse_signature_headers(&self, headers: &HeaderMap) -> Result<Parsed, WebhookError> {
        let p = &self.inner.profile;
        let values: Vec<&str> = headers
            .get_all(&p.signature_header)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return Err(WebhookError::MissingHeader("signature"));
        }
        let mut sig_texts: Vec<&str> = Vec::new();
        let mut timestamp_raw = None;
        match &p.signature_format {
            SignatureFormat::Prefixed { prefix } => {
                for v in &values {
                    if let Some(s) = v.trim().strip_prefix(prefix.as_str()) {
                        sig_texts.push(s);
                    }
                }
            }
            SignatureFormat::VersionedList { version } => {
                for v in &values {
                    for entry in v.split_whitespace() {
                        if let Some((ver, sig)) = entry.split_once(',')
                            && ver == version
                        {
                            sig_texts.push(sig);
                        }
                    }
                }
            }
            SignatureFormat::KeyValueList {
                timestamp_key,
                signature_key,
            } => {
                for v in &values {
                    for item in v.split(',') {
                        let Some((k, val)) = item.trim().split_once('=') else {
                            continue;
                        };
                        if k == timestamp_key {
                            if timestamp_raw.is_some() {
                                return Err(WebhookError::Malformed("signature header"));
                            }
                            timestamp_raw = Some(val.to_string());
                        } else if k == signature_key {
                            sig_texts.push(val);
                        }
                    }
                }
            }
        }
        if let TimestampSource::Header(h) = &p.timestamp {
            let v = headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or(WebhookError::MissingHeader("timestamp"))?;
            timestamp_raw = Some(v.to_string());
        }
        if p.timestamp == TimestampSource::SignatureHeader && timestamp_raw.is_none() {
            return Err(WebhookError::MissingHeader("timestamp"));
        }
        let signatures: Vec<Vec<u8>> = sig_texts
            .iter()
            .filter_map(|s| decode_sig(p.encoding, s))
            .collect();
        if signatures.is_empty() {
            return Err(WebhookError::Malformed("signature"));
        }
        Ok(Parsed {
            timestamp_raw,
            signatures,
        })
    }
}

fn decode_sig(enc: SignatureEncoding, s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    let bytes = match enc {
        SignatureEncoding::Hex => hex::decode(s).ok()?,
        SignatureEncoding::Base64 => STANDARD
            .decode(s)
            .or_else(|_| STANDARD_NO_PAD.decode(s))
            .ok()?,
    };
    // HMAC-SHA256 output is 32 bytes; anything else cannot match.
    (bytes.len() == 32).then_some(bytes)
}

fn parse_timestamp(raw: &str, fmt: TimestampFormat) -> Option<Timestamp> {
    let unix = || {
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let secs: i64 = raw.parse().ok()?;
        chrono::DateTime::from_timestamp(secs, 0)
    };
    let rfc = || {
        chrono::DateTime::parse_from_rfc3339(raw)
            .ok()
            .map(|d| d.with_timezone(&chrono::Utc))
    };
    match fmt {
        TimestampFormat::UnixSeconds => unix(),
        TimestampFormat::Rfc3339 => rfc(),
        TimestampFormat::UnixSecondsOrRfc3339 => unix().or_else(rfc),
    }
}

/// Sign `message` with HMAC-SHA256 (for tests and for senders built on this crate,
/// such as the webhook provisioning method).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(message);
    m.finalize().into_bytes().into()
}
