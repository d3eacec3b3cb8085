//! Configuration. `Debug` never shows a secret (`Secret` redacts itself).

use std::time::Duration;

use iga_adapter::{Error, ErrorKind, Result, Secret};
use iga_http::OAuth2Config;
use url::Url;

/// How the connector authenticates to the SCIM server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ScimAuth {
    /// No credentials (test servers only).
    None,
    /// `Authorization: Bearer <token>` (RFC 6750), the common case.
    Bearer(Secret),
    /// HTTP Basic.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
    /// OAuth2 client credentials; the token is cached and refreshed by `iga-http`.
    OAuth2(Box<OAuth2Config>),
}

/// Connector configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScimConfig {
    /// Base URL of the SCIM service, e.g. `https://host/scim/v2` (no trailing `/Users`).
    pub base_url: Url,
    /// Credentials.
    pub auth: ScimAuth,
    /// Instance label for `AdapterInfo` (default: the base URL's host and port). Never a secret.
    pub instance: Option<String>,
    /// Largest page requested from the server (clamped by `filter.maxResults`). Default 100.
    pub page_size: usize,
    /// Upper bound on operations per `/Bulk` request (clamped by `bulk.maxOperations`). Default 1000.
    pub bulk_max: usize,
    /// Per-request timeout. Default 60 s.
    pub request_timeout: Duration,
    /// Extra root CA (PEM) for private PKI targets.
    pub root_ca_pem: Option<Vec<u8>>,
}

impl ScimConfig {
    /// A configuration for `base_url` without credentials.
    pub fn new(base_url: &str) -> Result<Self> {
        let mut base_url = Url::parse(base_url).map_err(|e| {
            Error::new(
                ErrorKind::ConfigInvalid,
                format!("invalid SCIM base URL: {e}"),
            )
            .with_connector(crate::KIND)
        })?;
        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                "SCIM base URL must be http or https",
            )
            .with_connector(crate::KIND));
        }
        if !base_url.username().is_empty() || base_url.password().is_some() {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                "put credentials in ScimAuth, not in the base URL",
            )
            .with_connector(crate::KIND));
        }
        let trimmed = base_url.path().trim_end_matches('/').to_string();
        base_url.set_path(&trimmed);
        Ok(Self {
            base_url,
            auth: ScimAuth::None,
            instance: None,
            page_size: 100,
            bulk_max: 1000,
            request_timeout: Duration::from_secs(60),
            root_ca_pem: None,
        })
    }

    /// Use a bearer token.
    pub fn bearer_token(mut self, token: impl Into<Secret>) -> Self {
        self.auth = ScimAuth::Bearer(token.into());
        self
    }

    /// Use HTTP Basic.
    pub fn basic(mut self, username: impl Into<String>, password: impl Into<Secret>) -> Self {
        self.auth = ScimAuth::Basic {
            username: username.into(),
            password: password.into(),
        };
        self
    }

    /// Use OAuth2 client credentials.
    pub fn oauth2(mut self, config: OAuth2Config) -> Self {
        self.auth = ScimAuth::OAuth2(Box::new(config));
        self
    }

    /// Set the instance label.
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Set the page size (at least 1).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// Cap the operations per `/Bulk` request (1 disables Bulk).
    pub fn with_bulk_max(mut self, n: usize) -> Self {
        self.bulk_max = n.max(1);
        self
    }

    /// Set the request timeout.
    pub fn with_request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    pub(crate) fn instance_label(&self) -> String {
        self.instance.clone().unwrap_or_else(|| {
            let host = self.base_url.host_str().unwrap_or("scim");
            match self.base_url.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_url_is_validated() {
        let c = ScimConfig::new("http://127.0.0.1:9/v2/")
            .unwrap()
            .bearer_token("tok-canary-123");
        assert_eq!(c.base_url.as_str(), "http://127.0.0.1:9/v2");
        assert!(!format!("{c:?}").contains("tok-canary-123"));
        assert_eq!(c.instance_label(), "127.0.0.1:9");
        assert!(ScimConfig::new("ftp://x/").is_err());
        assert!(ScimConfig::new("https://u:p@x/").is_err());
        let b = ScimConfig::new("https://x/scim")
            .unwrap()
            .basic("u", "pw-canary");
        assert!(!format!("{b:?}").contains("pw-canary"));
    }
}
