//! OAuth 2.0 client credentials with `private_key_jwt` for Okta service apps
//! (RFC 7523 client assertion, RS256 signed with `ring`).

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use iga_adapter::{Error, ErrorKind, Result, Secret};
use iga_http::AuthProvider;
use reqwest::RequestBuilder;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};

use crate::KIND;

/// Renew the access token this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

fn config_err(msg: &str) -> Error {
    Error::new(ErrorKind::ConfigInvalid, msg.to_string())
        .with_connector(KIND)
        .with_context("field", "private_key_pem")
}

/// Parse a PEM RSA private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
/// The key's content never appears in an error.
pub fn parse_rsa_key(pem: &str) -> Result<RsaKeyPair> {
    let pem = pem.trim();
    let pkcs1 = pem.starts_with("-----BEGIN RSA PRIVATE KEY-----");
    if !pkcs1 && !pem.starts_with("-----BEGIN PRIVATE KEY-----") {
        return Err(config_err("the key is not a PEM RSA private key"));
    }
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD
        .decode(body.trim())
        .map_err(|_| config_err("the PEM body is not valid base64"))?;
    let key = if pkcs1 {
        RsaKeyPair::from_der(&der)
    } else {
        RsaKeyPair::from_pkcs8(&der)
    };
    key.map_err(|_| config_err("the key is not a usable RSA private key"))
}

/// [`AuthProvider`] for an Okta service app using `private_key_jwt`.
pub struct OktaPrivateKeyJwt {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    key_id: Option<String>,
    key: RsaKeyPair,
    scopes: String,
    cache: tokio::sync::Mutex<Option<(Secret, Instant)>>,
}

impl fmt::Debug for OktaPrivateKeyJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OktaPrivateKeyJwt")
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("private_key", &"***")
            .finish()
    }
}

impl OktaPrivateKeyJwt {
    /// An authenticator against `{org_url}/oauth2/v1/token`.
    pub fn new(
        http: reqwest::Client,
        org_url: &str,
        client_id: impl Into<String>,
        key_id: Option<String>,
        private_key_pem: &Secret,
        scopes: &[String],
    ) -> Result<Self> {
        Ok(Self {
            http,
            token_url: format!("{}/oauth2/v1/token", org_url.trim_end_matches('/')),
            client_id: client_id.into(),
            key_id,
            key: parse_rsa_key(private_key_pem.expose())?,
            scopes: scopes.join(" "),
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// The public key (DER `RSAPublicKey`), to register with the app or a mock.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }

    /// The client assertion for `now` (Unix seconds): `iss = sub = client id`,
    /// `aud = token URL`, five minutes of validity, a random `jti`.
    pub fn client_assertion(&self, now: u64) -> Result<Secret> {
        let rng = SystemRandom::new();
        let mut jti = [0u8; 16];
        rng.fill(&mut jti)
            .map_err(|_| Error::new(ErrorKind::Unexpected, "no randomness").with_connector(KIND))?;
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(k) = &self.key_id {
            header["kid"] = json!(k);
        }
        let claims = json!({"iss": self.client_id, "sub": self.client_id, "aud": self.token_url,
            "iat": now, "exp": now + 300,
            "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>()});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
            .map_err(|_| {
                Error::new(ErrorKind::Unexpected, "cannot sign the client assertion")
                    .with_connector(KIND)
            })?;
        Ok(Secret::new(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(&sig)
        )))
    }

    async fn mint(&self) -> Result<(Secret, Instant)> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let assertion = self.client_assertion(now)?;
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", self.scopes.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.expose()),
        ];
        let resp = self
            .http
            .post(&self.token_url)
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| iga_http::classify_reqwest_error(KIND, &e))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let code = body.get("error").and_then(Value::as_str).unwrap_or("");
            let kind = match (status.as_u16(), code) {
                (429, _) => ErrorKind::RateLimited,
                (s, _) if s >= 500 => ErrorKind::Unavailable,
                (_, "invalid_scope") => ErrorKind::PermissionDenied,
                _ => ErrorKind::Unauthenticated,
            };
            let mut e = Error::new(kind, format!("token endpoint answered {status}"))
                .with_connector(KIND)
                .with_operation("token")
                .with_context("error", code);
            e = if kind == ErrorKind::RateLimited || kind == ErrorKind::Unavailable {
                e.set_temporary(None)
            } else {
                e.set_permanent()
            };
            return Err(e);
        }
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::new(ErrorKind::Unexpected, "token response without access_token")
                    .with_connector(KIND)
            })?;
        let lifetime = Duration::from_secs(
            body.get("expires_in")
                .and_then(Value::as_u64)
                .unwrap_or(3600),
        );
        Ok((
            Secret::new(token.to_string()),
            Instant::now() + lifetime.saturating_sub(RENEW_BEFORE),
        ))
    }

    /// The current access token (fetched or renewed when needed).
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
impl AuthProvider for OktaPrivateKeyJwt {
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
