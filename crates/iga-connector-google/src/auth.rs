//! Service-account authentication: an RS256 JWT assertion (RFC 7523, signed with
//! ring) exchanged at the token endpoint for an access token, cached until a minute
//! before it expires and refreshed single-flight.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use iga_adapter::{Error, ErrorKind, Result, Secret};
use iga_http::AuthProvider;
use reqwest::RequestBuilder;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::json;

use crate::KIND;
use crate::config::GoogleConfig;

/// The grant type of a JWT bearer assertion (RFC 7523 §2.1).
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Decode a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) to DER.
pub(crate) fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::ConfigInvalid,
            format!("service account private_key: {why}"),
        )
        .with_connector(KIND)
    };
    let begin = "-----BEGIN PRIVATE KEY-----";
    let end = "-----END PRIVATE KEY-----";
    let start = pem
        .find(begin)
        .ok_or_else(|| bad("expected a PKCS#8 PEM (BEGIN PRIVATE KEY)"))?;
    let rest = &pem[start + begin.len()..];
    let stop = rest.find(end).ok_or_else(|| bad("PEM has no END line"))?;
    let b64: String = rest[..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD
        .decode(b64)
        .map_err(|_| bad("PEM body is not base64"))
}

/// Signs JWT assertions with the service account's RSA key.
pub(crate) struct JwtSigner {
    key: RsaKeyPair,
    kid: Option<String>,
    rng: SystemRandom,
}

impl fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSigner")
            .field("kid", &self.kid)
            .field("key", &"***")
            .finish()
    }
}

impl JwtSigner {
    pub(crate) fn new(pem: &Secret, kid: Option<String>) -> Result<Self> {
        let der = pem_to_der(pem.expose())?;
        let key = RsaKeyPair::from_pkcs8(&der).map_err(|_| {
            Error::new(
                ErrorKind::ConfigInvalid,
                "service account private_key is not an RSA PKCS#8 key ring accepts",
            )
            .with_connector(KIND)
        })?;
        Ok(Self {
            key,
            kid,
            rng: SystemRandom::new(),
        })
    }

    /// A compact JWS over `claims` (header `{"alg":"RS256","typ":"JWT"[,"kid"]}`).
    pub(crate) fn sign(&self, claims: &serde_json::Value) -> Result<String> {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(k) = &self.kid {
            header["kid"] = json!(k);
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, input.as_bytes(), &mut sig)
            .map_err(|_| {
                Error::new(ErrorKind::Unexpected, "RSA signing failed").with_connector(KIND)
            })?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// The claims of a domain-wide-delegation assertion (Google "Using OAuth 2.0 for
/// Server to Server Applications": iss, sub, scope, aud, iat, exp ≤ iat + 3600).
pub(crate) fn assertion_claims(config: &GoogleConfig, iat: u64) -> serde_json::Value {
    json!({
        "iss": config.key.client_email,
        "sub": config.subject,
        "scope": config.scopes.join(" "),
        "aud": config.token_url.as_str(),
        "iat": iat,
        "exp": iat + 3600,
    })
}

struct Cached {
    token: Secret,
    refresh_at: Instant,
}

/// [`AuthProvider`] for a service account with domain-wide delegation.
pub(crate) struct ServiceAccountAuth {
    http: reqwest::Client,
    signer: JwtSigner,
    config: GoogleConfig,
    cache: Mutex<Option<Cached>>,
    refresh: tokio::sync::Mutex<()>,
    pub(crate) token_requests: AtomicU64,
}

impl fmt::Debug for ServiceAccountAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountAuth")
            .field("client_email", &self.config.key.client_email)
            .field("subject", &self.config.subject)
            .field("token_url", &self.config.token_url.as_str())
            .finish()
    }
}

impl ServiceAccountAuth {
    pub(crate) fn new(http: reqwest::Client, config: &GoogleConfig) -> Result<Self> {
        Ok(Self {
            http,
            signer: JwtSigner::new(&config.key.private_key, config.key.private_key_id.clone())?,
            config: config.clone(),
            cache: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            token_requests: AtomicU64::new(0),
        })
    }

    fn cached(&self) -> Option<Secret> {
        let c = self.cache.lock().expect("token cache");
        c.as_ref()
            .filter(|c| Instant::now() < c.refresh_at)
            .map(|c| c.token.clone())
    }

    pub(crate) async fn token(&self) -> Result<Secret> {
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        let _guard = self.refresh.lock().await;
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let assertion = self.signer.sign(&assertion_claims(&self.config, iat))?;
        self.token_requests.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .http
            .post(self.config.token_url.clone())
            .form(&[
                ("grant_type", JWT_BEARER),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| iga_http::classify_reqwest_error(KIND, &e).with_operation("token"))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp
            .text()
            .await
            .map_err(|e| iga_http::classify_reqwest_error(KIND, &e))?;
        let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if !status.is_success() {
            // RFC 6749 §5.2: invalid_grant (bad signature, unknown subject, clock skew)
            // and invalid_client are credential problems, not retryable.
            let code = body.get("error").and_then(|v| v.as_str()).unwrap_or("");
            let err = if status.as_u16() == 400 || status.as_u16() == 401 {
                Error::new(
                    ErrorKind::Unauthenticated,
                    format!("token endpoint refused the service account assertion ({code})"),
                )
                .with_connector(KIND)
                .with_context("status", status.as_u16())
                .set_permanent()
            } else {
                iga_http::classify_status(KIND, status, &headers, "")
            };
            return Err(err.with_operation("token"));
        }
        let token = body
            .get("access_token")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                Error::new(ErrorKind::Unexpected, "token response without access_token")
                    .with_connector(KIND)
            })?;
        let expires_in = body
            .get("expires_in")
            .and_then(|v| v.as_u64())
            .unwrap_or(3600);
        let token = Secret::new(token);
        *self.cache.lock().expect("token cache") = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + Duration::from_secs(expires_in.saturating_sub(60)),
        });
        Ok(token)
    }
}

#[async_trait]
impl AuthProvider for ServiceAccountAuth {
    async fn apply(&self, req: RequestBuilder) -> Result<RequestBuilder> {
        let t = self.token().await?;
        Ok(req.bearer_auth(t.expose()))
    }

    fn invalidate(&self) {
        *self.cache.lock().expect("token cache") = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServiceAccountKey;
    use ring::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    const PEM: &str = include_str!("test-service-account-key.pem");

    #[test]
    fn assertion_is_a_verifiable_rs256_jwt_with_delegation_claims() {
        let key = ServiceAccountKey::new("sa@p.iam.gserviceaccount.com", PEM);
        let config = GoogleConfig::new(key, "admin@example.com", "example.com").unwrap();
        let signer = JwtSigner::new(&config.key.private_key, Some("kid-1".into())).unwrap();
        let jwt = signer
            .sign(&assertion_claims(&config, 1_700_000_000))
            .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "kid-1");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "sa@p.iam.gserviceaccount.com");
        assert_eq!(claims["sub"], "admin@example.com");
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        assert_eq!(claims["exp"], 1_700_003_600u64);
        assert!(
            claims["scope"]
                .as_str()
                .unwrap()
                .contains("admin.directory.user")
        );
        let der = pem_to_der(PEM).unwrap();
        let pair = RsaKeyPair::from_pkcs8(&der).unwrap();
        let public =
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref());
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        public
            .verify(input.as_bytes(), &sig)
            .expect("signature verifies");
        let mut tampered = input.into_bytes();
        tampered[5] ^= 1;
        assert!(public.verify(&tampered, &sig).is_err());
    }

    #[test]
    fn bad_pem_is_a_config_error_without_the_key() {
        let e = JwtSigner::new(&Secret::new("not a pem canary-x"), None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
        assert!(!e.to_string().contains("canary-x"));
        let e = JwtSigner::new(
            &Secret::new("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"),
            None,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    }
}
