//! GitHub App authentication: an RS256 JWT signed with the app's private key (ring)
//! is exchanged for an installation access token, which is cached until shortly
//! before it expires (one hour) and renewed after a 401.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use iga_adapter::{Error, ErrorKind, Result, Secret};
use iga_http::AuthProvider;
use reqwest::RequestBuilder;
use ring::rand::SystemRandom;
use ring::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};

use crate::KIND;

/// Renew the installation token this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

/// [`AuthProvider`] for a GitHub App installation.
pub struct GithubAppAuth {
    http: reqwest::Client,
    api: String,
    app_id: String,
    installation_id: u64,
    key: Arc<RsaKeyPair>,
    cache: tokio::sync::Mutex<Option<(Secret, Instant)>>,
}

impl fmt::Debug for GithubAppAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubAppAuth")
            .field("app_id", &self.app_id)
            .field("installation_id", &self.installation_id)
            .field("private_key", &"***")
            .finish()
    }
}

fn config_err(msg: &str) -> Error {
    Error::new(ErrorKind::ConfigInvalid, msg.to_string())
        .with_connector(KIND)
        .with_context("field", "private_key_pem")
}

/// Parse a PEM RSA private key: PKCS#1 (`RSA PRIVATE KEY`, GitHub's format) or
/// PKCS#8 (`PRIVATE KEY`).
pub fn parse_private_key(pem: &str) -> Result<RsaKeyPair> {
    let pem = pem.trim();
    let (label, pkcs1) = if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
        ("RSA PRIVATE KEY", true)
    } else if pem.starts_with("-----BEGIN PRIVATE KEY-----") {
        ("PRIVATE KEY", false)
    } else {
        return Err(config_err(
            "the GitHub App key is not a PEM RSA private key (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)",
        ));
    };
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = STANDARD
        .decode(body.trim())
        .map_err(|_| config_err(&format!("the {label} PEM body is not valid base64")))?;
    let key = if pkcs1 {
        RsaKeyPair::from_der(&der)
    } else {
        RsaKeyPair::from_pkcs8(&der)
    };
    key.map_err(|_| config_err("the GitHub App key is not a usable RSA private key"))
}

impl GithubAppAuth {
    /// An app authenticator. A malformed key is a `ConfigInvalid` error (its content
    /// is never echoed).
    pub fn new(
        http: reqwest::Client,
        api_url: &str,
        app_id: impl Into<String>,
        installation_id: u64,
        private_key_pem: &Secret,
    ) -> Result<Self> {
        let key = parse_private_key(private_key_pem.expose())?;
        Ok(Self {
            http,
            api: api_url.trim_end_matches('/').to_string(),
            app_id: app_id.into(),
            installation_id,
            key: Arc::new(key),
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// The app's public key (DER `RSAPublicKey`), e.g. for a mock to verify JWTs.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }

    /// The app JWT for `now` (Unix seconds): `iat = now - 60` (clock drift), `exp =
    /// now + 540` (GitHub refuses more than 10 minutes), `iss = app id`, RS256.
    pub fn jwt(&self, now: u64) -> Result<Secret> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = json!({"iat": now.saturating_sub(60), "exp": now + 540, "iss": self.app_id});
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes());
        let signing_input = format!("{header}.{payload}");
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| {
                Error::new(ErrorKind::Unexpected, "cannot sign the GitHub App JWT")
                    .with_connector(KIND)
            })?;
        Ok(Secret::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(&sig)
        )))
    }

    async fn mint(&self) -> Result<(Secret, Instant)> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let jwt = self.jwt(now)?;
        let url = format!(
            "{}/app/installations/{}/access_tokens",
            self.api, self.installation_id
        );
        let resp = self
            .http
            .post(&url)
            .bearer_auth(jwt.expose())
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .send()
            .await
            .map_err(|e| iga_http::classify_reqwest_error(KIND, &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body: Option<Value> = resp.json().await.ok();
        if !status.is_success() {
            return Err(crate::error::classify(status, &headers, body.as_ref())
                .with_operation("installation_token"));
        }
        let body = body.unwrap_or(Value::Null);
        let token = body.get("token").and_then(Value::as_str).ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                "installation token response without a token",
            )
            .with_connector(KIND)
        })?;
        let lifetime = body
            .get("expires_at")
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .and_then(|t| {
                (t.with_timezone(&chrono::Utc) - chrono::Utc::now())
                    .to_std()
                    .ok()
            })
            .unwrap_or(Duration::from_secs(3600));
        let valid_for = lifetime.saturating_sub(RENEW_BEFORE);
        Ok((Secret::new(token.to_string()), Instant::now() + valid_for))
    }

    /// The current installation token (minted or renewed when needed; concurrent
    /// callers share one exchange).
    pub async fn token(&self) -> Result<Secret> {
        let mut cache = self.cache.lock().await;
        if let Some((t, until)) = &*cache
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let (t, until) = self.mint().await?;
        *cache = Some((t.clone(), until));
        Ok(t)
    }
}

#[async_trait]
impl AuthProvider for GithubAppAuth {
    async fn apply(&self, req: RequestBuilder) -> Result<RequestBuilder> {
        let t = self.token().await?;
        Ok(req.bearer_auth(t.expose()))
    }

    fn invalidate(&self) {
        if let Ok(mut c) = self.cache.try_lock() {
            *c = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../tests/fixtures/test-app-key.pem");

    #[test]
    fn jwt_is_rs256_and_verifies_with_the_public_key() {
        let auth = GithubAppAuth::new(
            iga_http::default_client().unwrap(),
            "http://127.0.0.1:1",
            "4242",
            7,
            &Secret::new(KEY.to_string()),
        )
        .unwrap();
        let jwt = auth.jwt(1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "4242");
        assert_eq!(claims["iat"], 1_700_000_000 - 60);
        assert_eq!(claims["exp"], 1_700_000_000 + 540);
        let pk = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            auth.public_key_der(),
        );
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        pk.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .expect("signature verifies");
        assert!(!format!("{auth:?}").contains("PRIVATE"));
    }

    #[test]
    fn bad_keys_are_config_errors_without_echo() {
        for bad in [
            "not a key",
            "-----BEGIN RSA PRIVATE KEY-----\n!!!!\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        ] {
            let e = parse_private_key(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
            assert!(!format!("{e:?}").contains("!!!!"));
        }
    }
}
