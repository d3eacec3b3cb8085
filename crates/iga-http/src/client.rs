//! Building a `reqwest::Client` the same way for every connector: rustls on the
//! `ring` provider only, timeouts, the project user agent, optional extra roots.

use std::time::Duration;

use iga_adapter::{Error, ErrorKind, Result};

/// The user agent every connector sends: `iga-connectors/<version>`.
pub const USER_AGENT: &str = concat!("iga-connectors/", env!("CARGO_PKG_VERSION"));

/// Default TCP/TLS connect timeout (10 s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default whole-request timeout (60 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Install rustls' `ring` crypto provider as the process default, once.
///
/// reqwest 0.13 with `rustls-no-provider` panics when it builds a client and no
/// default provider is installed. Calling this more than once, or after another
/// crate installed the same provider, is harmless: an already installed provider is
/// left in place.
pub fn install_ring_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Losing a race with another installer is fine: some provider is set.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

/// Builder for the HTTP client connectors use.
///
/// ```
/// let client = iga_http::HttpClientBuilder::new()
///     .connect_timeout(std::time::Duration::from_secs(5))
///     .user_agent_suffix("scim")
///     .build()
///     .unwrap();
/// # drop(client);
/// ```
#[derive(Clone)]
pub struct HttpClientBuilder {
    connect_timeout: Duration,
    request_timeout: Duration,
    user_agent: String,
    extra_roots_pem: Vec<Vec<u8>>,
    roots_only: bool,
    connector: &'static str,
}

impl std::fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClientBuilder")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("user_agent", &self.user_agent)
            .field("extra_roots", &self.extra_roots_pem.len())
            .field("roots_only", &self.roots_only)
            .finish()
    }
}

impl Default for HttpClientBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClientBuilder {
    /// Defaults: 10 s connect timeout, 60 s request timeout, user agent
    /// [`USER_AGENT`], platform roots.
    pub fn new() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            user_agent: USER_AGENT.to_string(),
            extra_roots_pem: Vec::new(),
            roots_only: false,
            connector: "http",
        }
    }

    /// The connector name used in errors from [`build`](Self::build).
    pub fn connector(mut self, connector: &'static str) -> Self {
        self.connector = connector;
        self
    }

    /// TCP + TLS connect timeout.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Whole-request timeout (connect, send, and read the full response).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// Append ` (<suffix>)` to the user agent, e.g. `iga-connectors/0.1.0 (scim)`.
    pub fn user_agent_suffix(mut self, suffix: &str) -> Self {
        self.user_agent = format!("{USER_AGENT} ({suffix})");
        self
    }

    /// Trust an extra root CA (PEM, may hold several certificates) in addition to
    /// the platform roots. Meant for tests and private CAs.
    pub fn add_root_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_roots_pem.push(pem.into());
        self
    }

    /// Trust only the roots added with [`add_root_ca_pem`](Self::add_root_ca_pem),
    /// not the platform store.
    pub fn only_added_roots(mut self, only: bool) -> Self {
        self.roots_only = only;
        self
    }

    /// Build the client. Installs the ring provider first ([`install_ring_provider`]).
    /// An unreadable PEM or a client that cannot be built is a `ConfigInvalid` error.
    pub fn build(self) -> Result<reqwest::Client> {
        install_ring_provider();
        let mut certs = Vec::new();
        for pem in &self.extra_roots_pem {
            let bundle = reqwest::Certificate::from_pem_bundle(pem).map_err(|_| {
                Error::new(ErrorKind::ConfigInvalid, "extra root CA is not valid PEM")
                    .with_connector(self.connector)
            })?;
            if bundle.is_empty() {
                return Err(Error::new(
                    ErrorKind::ConfigInvalid,
                    "extra root CA PEM holds no certificate",
                )
                .with_connector(self.connector));
            }
            certs.extend(bundle);
        }
        let mut b = reqwest::Client::builder()
            .tls_backend_rustls()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .user_agent(self.user_agent);
        if self.roots_only {
            b = b.tls_certs_only(certs);
        } else if !certs.is_empty() {
            b = b.tls_certs_merge(certs);
        }
        b.build().map_err(|e| {
            Error::new(
                ErrorKind::ConfigInvalid,
                format!("cannot build HTTP client: {}", e.without_url()),
            )
            .with_connector(self.connector)
        })
    }
}

/// A client with all defaults (see [`HttpClientBuilder::new`]).
pub fn default_client() -> Result<reqwest::Client> {
    HttpClientBuilder::new().build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_is_idempotent_and_build_works() {
        install_ring_provider();
        install_ring_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        default_client().unwrap();
    }

    #[test]
    fn bad_pem_is_config_invalid() {
        let e = HttpClientBuilder::new()
            .connector("scim")
            .add_root_ca_pem(b"not a pem".to_vec())
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
        assert_eq!(e.connector(), "scim");
    }

    #[test]
    fn user_agent_has_version() {
        assert!(USER_AGENT.starts_with("iga-connectors/0."));
        let b = HttpClientBuilder::new().user_agent_suffix("okta");
        assert_eq!(b.user_agent, format!("{USER_AGENT} (okta)"));
    }
}
