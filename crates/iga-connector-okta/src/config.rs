//! Configuration. `Debug` never shows a secret (`Secret` redacts itself).

use std::time::Duration;

use iga_adapter::{Error, ErrorKind, Result, Secret};
use iga_http::OAuth2Config;
use url::Url;

/// How the connector authenticates to the Okta Management API.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum OktaAuth {
    /// `Authorization: SSWS <api token>` (legacy API token, still common).
    Ssws(Secret),
    /// `Authorization: Bearer <access token>` obtained elsewhere.
    Bearer(Secret),
    /// OAuth 2.0 client credentials (service app); the token is cached and refreshed
    /// by `iga-http`. Scopes: `okta.users.manage`, `okta.groups.manage`,
    /// `okta.apps.manage` (for app assignments).
    OAuth2(Box<OAuth2Config>),
    /// OAuth 2.0 client credentials with `private_key_jwt` client authentication,
    /// what Okta requires of service apps calling the management API: an RS256
    /// client assertion signed with the app's key is exchanged at
    /// `{org}/oauth2/v1/token` for a bearer access token (cached, renewed).
    PrivateKeyJwt {
        /// The service app's client id (`iss` and `sub` of the assertion).
        client_id: String,
        /// The key id registered with the app's public key (JWT `kid`), if any.
        key_id: Option<String>,
        /// The app's RSA private key, PEM (PKCS#8 or PKCS#1).
        private_key_pem: Secret,
        /// Scopes, e.g. `okta.users.manage okta.groups.manage okta.apps.manage`.
        scopes: Vec<String>,
    },
}

/// Connector configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OktaConfig {
    /// The org URL, e.g. `https://acme.okta.com` (the connector appends `/api/v1`).
    pub org_url: Url,
    /// Credentials.
    pub auth: OktaAuth,
    /// Instance label for `AdapterInfo` (default: the org host). Never a secret.
    pub instance: Option<String>,
    /// `POST /users?activate=true` on create (default true). With false, new users
    /// are `STAGED` and read back as disabled until an enable operation activates them.
    pub activate_on_create: bool,
    /// Profile attribute holding the identity id (the correlation key); default
    /// `employeeNumber`, a base-profile attribute. A custom attribute must exist in
    /// the org's user schema, or Okta rejects the create with `E0000001`.
    pub correlation_attribute: String,
    /// Largest page requested (`limit`); Okta's maximum for users is 200. Default 200.
    pub page_size: usize,
    /// Per-request timeout. Default 60 s.
    pub request_timeout: Duration,
    /// Pre-emptive pacing floor: wait for the window reset when
    /// `X-Rate-Limit-Remaining` is at or below this (default 0 = only when exhausted).
    pub rate_limit_floor: u64,
}

impl OktaConfig {
    /// A configuration for `org_url` with an SSWS API token.
    pub fn new(org_url: &str, api_token: impl Into<Secret>) -> Result<Self> {
        let mut org_url = Url::parse(org_url).map_err(|e| {
            Error::new(
                ErrorKind::ConfigInvalid,
                format!("invalid Okta org URL: {e}"),
            )
            .with_connector(crate::KIND)
            .with_context("field", "org_url")
        })?;
        if !matches!(org_url.scheme(), "http" | "https") {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                "Okta org URL must be http or https",
            )
            .with_connector(crate::KIND)
            .with_context("field", "org_url"));
        }
        if !org_url.username().is_empty() || org_url.password().is_some() {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                "put credentials in OktaAuth, not in the org URL",
            )
            .with_connector(crate::KIND)
            .with_context("field", "org_url"));
        }
        let trimmed = org_url
            .path()
            .trim_end_matches('/')
            .trim_end_matches("/api/v1")
            .to_string();
        org_url.set_path(&trimmed);
        Ok(Self {
            org_url,
            auth: OktaAuth::Ssws(api_token.into()),
            instance: None,
            activate_on_create: true,
            correlation_attribute: "employeeNumber".into(),
            page_size: 200,
            request_timeout: Duration::from_secs(60),
            rate_limit_floor: 0,
        })
    }

    /// Use a bearer access token instead of SSWS.
    pub fn bearer_token(mut self, token: impl Into<Secret>) -> Self {
        self.auth = OktaAuth::Bearer(token.into());
        self
    }

    /// Use OAuth 2.0 client credentials instead of SSWS.
    pub fn oauth2(mut self, config: OAuth2Config) -> Self {
        self.auth = OktaAuth::OAuth2(Box::new(config));
        self
    }

    /// Use OAuth 2.0 client credentials with `private_key_jwt` (Okta service apps).
    pub fn private_key_jwt(
        mut self,
        client_id: impl Into<String>,
        private_key_pem: impl Into<Secret>,
        scopes: &[&str],
    ) -> Self {
        self.auth = OktaAuth::PrivateKeyJwt {
            client_id: client_id.into(),
            key_id: None,
            private_key_pem: private_key_pem.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        };
        self
    }

    /// Set the instance label.
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Create users `STAGED` (false) or activated (true, the default).
    pub fn activate_on_create(mut self, activate: bool) -> Self {
        self.activate_on_create = activate;
        self
    }

    /// Set the correlation profile attribute.
    pub fn with_correlation_attribute(mut self, attr: impl Into<String>) -> Self {
        self.correlation_attribute = attr.into();
        self
    }

    /// Set the page size (1..=200).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = n.clamp(1, 200);
        self
    }

    /// Set the request timeout.
    pub fn with_request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// Set the pacing floor.
    pub fn with_rate_limit_floor(mut self, floor: u64) -> Self {
        self.rate_limit_floor = floor;
        self
    }

    pub(crate) fn instance_label(&self) -> String {
        self.instance.clone().unwrap_or_else(|| {
            let host = self.org_url.host_str().unwrap_or("okta");
            match self.org_url.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            }
        })
    }

    pub(crate) fn api_base(&self) -> String {
        format!("{}/api/v1", self.org_url.as_str().trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_url_is_validated() {
        let c = OktaConfig::new("https://acme.okta.com/api/v1/", "ssws-canary-123").unwrap();
        assert_eq!(c.api_base(), "https://acme.okta.com/api/v1");
        assert!(!format!("{c:?}").contains("ssws-canary-123"));
        assert_eq!(c.instance_label(), "acme.okta.com");
        let e = OktaConfig::new("ftp://acme/", "t").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
        assert!(e.to_string().contains("org_url"), "{e}");
        assert!(OktaConfig::new("https://u:p@acme.okta.com", "t").is_err());
        assert!(OktaConfig::new("not a url", "t").is_err());
        let b = c.bearer_token("bearer-canary");
        assert!(!format!("{b:?}").contains("bearer-canary"));
    }
}
