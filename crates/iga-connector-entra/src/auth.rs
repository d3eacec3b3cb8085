//! Credentials for Microsoft Graph.
//!
//! A client secret goes through [`iga_http::OAuth2ClientCredentials`] unchanged. A
//! certificate goes through [`CertificateCredentials`], which composes the same
//! pattern (cached token refreshed before expiry, single-flight refresh, 401 →
//! invalidate) around a JWT client assertion (RFC 7523) signed RS256 with `ring`.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use iga_adapter::{Error, ErrorKind, Result, Secret, redact};
use iga_directive::{SharedClock, SystemClock, Timestamp};
use iga_http::{AuthProvider, OAuth2ClientCredentials, OAuth2Config};
use reqwest::RequestBuilder;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde_json::json;

use crate::KIND;
use crate::config::{Credential, EntraConfig};

/// `client_assertion_type` of a JWT bearer client assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Build the auth provider for `config`'s credential.
pub(crate) fn provider(
    http: reqwest::Client,
    config: &EntraConfig,
    clock: SharedClock,
) -> Result<Arc<dyn AuthProvider>> {
    let token_url = url::Url::parse(&config.token_url()).map_err(|_| {
        Error::new(
            ErrorKind::ConfigInvalid,
            "entra config `authority`: invalid token URL",
        )
        .with_connector(KIND)
    })?;
    Ok(match &config.credential {
        Credential::ClientSecret(secret) => {
            let oc = OAuth2Config::new(token_url, config.client_id.clone(), secret.clone())
                .scope(config.scope())
                .connector(KIND);
            Arc::new(OAuth2ClientCredentials::with_clock(http, oc, clock))
        }
        Credential::Certificate {
            private_key_pem,
            thumbprint_hex,
        } => Arc::new(CertificateCredentials::new(
            http,
            token_url,
            config.client_id.clone(),
            config.scope(),
            private_key_pem,
            thumbprint_hex,
            clock,
        )?),
    })
}

struct Cached {
    token: Secret,
    refresh_at: Timestamp,
}

/// OAuth2 client credentials with a certificate: each token request carries a fresh
/// JWT client assertion (`aud` = token endpoint, `iss` = `sub` = client id, 10 minute
/// lifetime, `x5t` = certificate thumbprint) signed RS256 with the private key.
pub struct CertificateCredentials {
    http: reqwest::Client,
    token_url: url::Url,
    client_id: String,
    scope: String,
    key: RsaKeyPair,
    x5t: String,
    clock: SharedClock,
    cache: Mutex<Option<Cached>>,
    refresh: tokio::sync::Mutex<()>,
    refresh_skew: Duration,
}

impl fmt::Debug for CertificateCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredentials")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("x5t", &self.x5t)
            .field("private_key", &"***")
            .finish()
    }
}

impl CertificateCredentials {
    /// A provider. The key must be an RSA key (2048 bits or more) in PKCS#8 PEM; the
    /// thumbprint is the certificate's SHA-1 thumbprint in hex.
    pub fn new(
        http: reqwest::Client,
        token_url: url::Url,
        client_id: String,
        scope: String,
        private_key_pem: &Secret,
        thumbprint_hex: &str,
        clock: SharedClock,
    ) -> Result<Self> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::ConfigInvalid,
                format!("entra config `credential.private_key_pem`: {why}"),
            )
            .with_connector(KIND)
        };
        let der = PrivatePkcs8KeyDer::from_pem_slice(private_key_pem.expose().as_bytes())
            .map_err(|_| bad("no PKCS#8 private key (BEGIN PRIVATE KEY) found"))?;
        let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|_| bad("not an RSA key ring accepts (2048-8192 bits)"))?;
        let thumb = hex::decode(thumbprint_hex).map_err(|_| {
            Error::new(
                ErrorKind::ConfigInvalid,
                "entra config `credential.thumbprint_hex`: not hex",
            )
            .with_connector(KIND)
        })?;
        Ok(Self {
            http,
            token_url,
            client_id,
            scope,
            key,
            x5t: URL_SAFE_NO_PAD.encode(thumb),
            clock,
            cache: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            refresh_skew: Duration::from_secs(300),
        })
    }

    /// With the wall clock.
    pub fn system_clock(self) -> Self {
        Self {
            clock: SystemClock::shared(),
            ..self
        }
    }

    /// A signed client assertion for the token endpoint, valid 10 minutes from now.
    pub fn assertion(&self) -> Result<String> {
        let now = self.clock.now().timestamp();
        let header = json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t});
        let claims = json!({
            "aud": self.token_url.as_str(),
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + 600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| {
                Error::new(ErrorKind::Unexpected, "cannot sign client assertion")
                    .with_connector(KIND)
            })?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    fn cached(&self) -> Option<Secret> {
        let now = self.clock.now();
        let c = self.cache.lock().expect("token cache");
        c.as_ref()
            .filter(|c| now < c.refresh_at)
            .map(|c| c.token.clone())
    }

    /// The current token, fetching a new one when none is cached or it is close to
    /// expiry.
    pub async fn token(&self) -> Result<Secret> {
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        let _g = self.refresh.lock().await;
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        let started = self.clock.now();
        let assertion = Secret::new(self.assertion()?);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("scope", self.scope.as_str()),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.expose()),
        ];
        let op = |e: Error| e.with_operation("oauth2 token");
        let resp = self
            .http
            .post(self.token_url.clone())
            .header(http::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| op(iga_http::classify_reqwest_error(KIND, &e)))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .text()
            .await
            .map_err(|e| op(iga_http::classify_reqwest_error(KIND, &e)))?;
        let body = redact::scrub(&body, &[&assertion]);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if !status.is_success() {
            let code = v.get("error").and_then(|e| e.as_str()).unwrap_or_default();
            let kind = match code {
                "invalid_client" | "unauthorized_client" | "invalid_grant" => {
                    Some(ErrorKind::Unauthenticated)
                }
                "invalid_scope" => Some(ErrorKind::PermissionDenied),
                "invalid_request" => Some(ErrorKind::ConfigInvalid),
                _ => None,
            };
            return Err(op(match kind {
                Some(k) if status.is_client_error() && status.as_u16() != 429 => {
                    Error::new(k, format!("token request rejected: {code}"))
                        .with_connector(KIND)
                        .with_context("status", status.as_u16())
                }
                _ => iga_http::classify_status(KIND, status, &headers, &body),
            }));
        }
        let token = v
            .get("access_token")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                op(Error::new(
                    ErrorKind::Unexpected,
                    "token endpoint returned no access_token",
                )
                .with_connector(KIND))
            })?;
        let lifetime = v
            .get("expires_in")
            .and_then(|e| e.as_u64().or_else(|| e.as_str()?.parse().ok()))
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(300));
        let skew = if lifetime >= self.refresh_skew * 2 {
            self.refresh_skew
        } else {
            lifetime / 2
        };
        let refresh_at = started + chrono::Duration::from_std(lifetime - skew).unwrap_or_default();
        let token = Secret::new(token);
        *self.cache.lock().expect("token cache") = Some(Cached {
            token: token.clone(),
            refresh_at,
        });
        Ok(token)
    }
}

#[async_trait]
impl AuthProvider for CertificateCredentials {
    async fn apply(&self, req: RequestBuilder) -> Result<RequestBuilder> {
        let t = self.token().await?;
        Ok(req.bearer_auth(t.expose()))
    }

    fn invalidate(&self) {
        *self.cache.lock().expect("token cache") = None;
    }
}
