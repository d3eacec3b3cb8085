//! Connector configuration: tenant, cloud, credentials, limits.

use std::fmt;
use std::time::Duration;

use iga_adapter::{Error, ErrorKind, Result, Secret};

use crate::KIND;

/// A Microsoft cloud: where to get tokens and where Graph lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NationalCloud {
    /// The global service (`login.microsoftonline.com`, `graph.microsoft.com`).
    #[default]
    Global,
    /// US Government L4 / GCC High (`login.microsoftonline.us`, `graph.microsoft.us`).
    UsGovL4,
    /// US Government L5 / DoD (`login.microsoftonline.us`, `dod-graph.microsoft.us`).
    UsGovL5,
    /// Microsoft Azure operated by 21Vianet (`login.chinacloudapi.cn`,
    /// `microsoftgraph.chinacloudapi.cn`).
    China,
}

impl NationalCloud {
    /// The token authority, e.g. `https://login.microsoftonline.com`.
    pub fn authority(self) -> &'static str {
        match self {
            Self::Global => "https://login.microsoftonline.com",
            Self::UsGovL4 | Self::UsGovL5 => "https://login.microsoftonline.us",
            Self::China => "https://login.chinacloudapi.cn",
        }
    }

    /// The Graph root without version, e.g. `https://graph.microsoft.com`.
    pub fn graph_root(self) -> &'static str {
        match self {
            Self::Global => "https://graph.microsoft.com",
            Self::UsGovL4 => "https://graph.microsoft.us",
            Self::UsGovL5 => "https://dod-graph.microsoft.us",
            Self::China => "https://microsoftgraph.chinacloudapi.cn",
        }
    }

    /// Parse `global`, `usgov-l4` (`gcc-high`), `usgov-l5` (`dod`), `china`.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "global" | "public" => Self::Global,
            "usgov-l4" | "gcc-high" | "usgovl4" => Self::UsGovL4,
            "usgov-l5" | "dod" | "usgovl5" => Self::UsGovL5,
            "china" | "21vianet" => Self::China,
            other => {
                return Err(Error::new(
                    ErrorKind::ConfigInvalid,
                    format!(
                        "entra config `cloud`: unknown cloud `{other}` (expected global, usgov-l4, usgov-l5 or china)"
                    ),
                )
                .with_connector(KIND));
            }
        })
    }
}

/// How the application proves its identity to the token endpoint.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credential {
    /// A client secret (`client_secret` in the token request).
    ClientSecret(Secret),
    /// A certificate: a JWT client assertion signed RS256 with the certificate's
    /// private key (`client_assertion`). The thumbprint is the certificate's SHA-1
    /// thumbprint in hex, as the Azure portal shows it (sent as `x5t`).
    Certificate {
        /// PKCS#8 private key, PEM (`-----BEGIN PRIVATE KEY-----`).
        private_key_pem: Secret,
        /// SHA-1 thumbprint of the certificate, 40 hex digits.
        thumbprint_hex: String,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientSecret(_) => f.write_str("ClientSecret(***)"),
            Self::Certificate { thumbprint_hex, .. } => f
                .debug_struct("Certificate")
                .field("private_key_pem", &"***")
                .field("thumbprint_hex", thumbprint_hex)
                .finish(),
        }
    }
}

/// Configuration of [`crate::EntraAdapter`].
#[derive(Clone)]
#[non_exhaustive]
pub struct EntraConfig {
    /// Directory (tenant) id or verified domain.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// Client credential.
    pub credential: Credential,
    /// The cloud (token authority, Graph host, token scope).
    pub cloud: NationalCloud,
    /// Override of the Graph base URL including the version (tests, proxies);
    /// default `<cloud graph root>/v1.0`.
    pub graph_base: Option<String>,
    /// Override of the token authority (tests); default the cloud's.
    pub authority: Option<String>,
    /// Domain appended to logins without `@` to form the userPrincipalName.
    pub upn_domain: Option<String>,
    /// Page size for list calls (1..=999).
    pub page_size: usize,
    /// Requests per `$batch` (1..=20).
    pub batch_max: usize,
    /// How many times `apply_batch` re-sends inner requests answered 429 (each
    /// round waits the largest inner `Retry-After`). 0 leaves throttled items to the
    /// caller as `RateLimited` errors.
    pub inner_throttle_retries: u32,
    /// The longest inner `Retry-After` waited for inside `apply_batch`; longer ones
    /// are returned as `RateLimited` errors for the engine to schedule.
    pub max_inline_wait: Duration,
    /// Client-side rate layer per tenant: requests per second (None = off).
    pub requests_per_second: Option<u32>,
    /// Call `revokeSignInSessions` after disabling a user.
    pub revoke_sessions_on_disable: bool,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Instance label (no secret); default `<tenant_id>`.
    pub instance: Option<String>,
}

impl fmt::Debug for EntraConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraConfig")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .field("cloud", &self.cloud)
            .field("graph_base", &self.graph_base)
            .field("upn_domain", &self.upn_domain)
            .field("page_size", &self.page_size)
            .field("batch_max", &self.batch_max)
            .finish_non_exhaustive()
    }
}

impl EntraConfig {
    /// A configuration with a client secret and defaults for everything else.
    pub fn with_client_secret(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        secret: impl Into<Secret>,
    ) -> Self {
        Self::new(
            tenant_id,
            client_id,
            Credential::ClientSecret(secret.into()),
        )
    }

    /// A configuration with a certificate credential (see [`Credential::Certificate`]).
    pub fn with_certificate(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        private_key_pem: impl Into<Secret>,
        thumbprint_hex: impl Into<String>,
    ) -> Self {
        Self::new(
            tenant_id,
            client_id,
            Credential::Certificate {
                private_key_pem: private_key_pem.into(),
                thumbprint_hex: thumbprint_hex.into(),
            },
        )
    }

    fn new(tenant_id: impl Into<String>, client_id: impl Into<String>, c: Credential) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            credential: c,
            cloud: NationalCloud::Global,
            graph_base: None,
            authority: None,
            upn_domain: None,
            page_size: 100,
            batch_max: 20,
            inner_throttle_retries: 3,
            max_inline_wait: Duration::from_secs(30),
            requests_per_second: None,
            revoke_sessions_on_disable: false,
            request_timeout: Duration::from_secs(60),
            instance: None,
        }
    }

    /// Set the cloud.
    pub fn cloud(mut self, c: NationalCloud) -> Self {
        self.cloud = c;
        self
    }

    /// Point at another Graph base (with version) and token authority, e.g. the mock.
    pub fn endpoints(
        mut self,
        graph_base: impl Into<String>,
        authority: impl Into<String>,
    ) -> Self {
        self.graph_base = Some(graph_base.into());
        self.authority = Some(authority.into());
        self
    }

    /// Set the UPN domain.
    pub fn upn_domain(mut self, d: impl Into<String>) -> Self {
        self.upn_domain = Some(d.into());
        self
    }

    /// Set the page size.
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n;
        self
    }

    /// Set the batch size.
    pub fn batch_max(mut self, n: usize) -> Self {
        self.batch_max = n;
        self
    }

    /// Set the inner-429 retry rounds of `apply_batch`.
    pub fn inner_throttle_retries(mut self, n: u32) -> Self {
        self.inner_throttle_retries = n;
        self
    }

    /// Set the client-side rate per tenant.
    pub fn requests_per_second(mut self, n: u32) -> Self {
        self.requests_per_second = Some(n);
        self
    }

    /// Revoke sign-in sessions after disable.
    pub fn revoke_sessions_on_disable(mut self, on: bool) -> Self {
        self.revoke_sessions_on_disable = on;
        self
    }

    /// Set the instance label.
    pub fn instance(mut self, label: impl Into<String>) -> Self {
        self.instance = Some(label.into());
        self
    }

    /// The Graph base URL with version, without trailing slash.
    pub fn graph_base_url(&self) -> String {
        self.graph_base
            .clone()
            .unwrap_or_else(|| format!("{}/v1.0", self.cloud.graph_root()))
            .trim_end_matches('/')
            .to_string()
    }

    /// The token endpoint of the tenant.
    pub fn token_url(&self) -> String {
        let authority = self
            .authority
            .as_deref()
            .unwrap_or(self.cloud.authority())
            .trim_end_matches('/');
        format!("{authority}/{}/oauth2/v2.0/token", self.tenant_id)
    }

    /// The token scope: `<cloud graph root>/.default`.
    pub fn scope(&self) -> String {
        format!("{}/.default", self.cloud.graph_root())
    }

    /// The instance label.
    pub fn instance_label(&self) -> String {
        self.instance
            .clone()
            .unwrap_or_else(|| self.tenant_id.clone())
    }

    /// Check the configuration; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: &str| {
            Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!("entra config `{field}`: {why}"),
            )
            .with_connector(KIND))
        };
        if self.tenant_id.trim().is_empty() {
            return bad("tenant_id", "must not be empty");
        }
        if self.client_id.trim().is_empty() {
            return bad("client_id", "must not be empty");
        }
        if !(1..=999).contains(&self.page_size) {
            return bad(
                "page_size",
                "must be between 1 and 999 (Graph's $top maximum)",
            );
        }
        if !(1..=20).contains(&self.batch_max) {
            return bad(
                "batch_max",
                "must be between 1 and 20 (Graph's $batch limit)",
            );
        }
        if self.requests_per_second == Some(0) {
            return bad("requests_per_second", "must be at least 1");
        }
        if let Some(d) = &self.upn_domain
            && (d.is_empty() || d.contains('@') || d.contains(' '))
        {
            return bad("upn_domain", "must be a bare domain such as contoso.com");
        }
        if let Credential::Certificate { thumbprint_hex, .. } = &self.credential
            && (thumbprint_hex.len() != 40
                || !thumbprint_hex.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return bad(
                "credential.thumbprint_hex",
                "must be the certificate's SHA-1 thumbprint, 40 hex digits",
            );
        }
        for (field, v) in [
            ("graph_base", &self.graph_base),
            ("authority", &self.authority),
        ] {
            if let Some(v) = v
                && url::Url::parse(v).is_err()
            {
                return bad(field, "is not a valid URL");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clouds_and_urls() {
        let c = EntraConfig::with_client_secret("t1", "app", "s");
        assert_eq!(c.graph_base_url(), "https://graph.microsoft.com/v1.0");
        assert_eq!(
            c.token_url(),
            "https://login.microsoftonline.com/t1/oauth2/v2.0/token"
        );
        assert_eq!(c.scope(), "https://graph.microsoft.com/.default");
        let c = c.cloud(NationalCloud::parse("dod").unwrap());
        assert_eq!(c.graph_base_url(), "https://dod-graph.microsoft.us/v1.0");
        assert_eq!(
            c.token_url(),
            "https://login.microsoftonline.us/t1/oauth2/v2.0/token"
        );
        let c = c.cloud(NationalCloud::China);
        assert_eq!(
            c.scope(),
            "https://microsoftgraph.chinacloudapi.cn/.default"
        );
        assert_eq!(
            NationalCloud::parse("gcc-high").unwrap().graph_root(),
            "https://graph.microsoft.us"
        );
        let e = NationalCloud::parse("mars").unwrap_err();
        assert!(e.message().contains("`cloud`"), "{e}");
    }

    #[test]
    fn validation_names_the_field() {
        let ok = EntraConfig::with_client_secret("t", "c", "s");
        ok.validate().unwrap();
        for (cfg, field) in [
            (ok.clone().batch_max(21), "batch_max"),
            (ok.clone().page_size(1000), "page_size"),
            (ok.clone().upn_domain("a@b"), "upn_domain"),
            (EntraConfig::with_client_secret("", "c", "s"), "tenant_id"),
            (
                EntraConfig::with_certificate("t", "c", "pem", "zz"),
                "credential.thumbprint_hex",
            ),
        ] {
            let e = cfg.validate().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
            assert!(e.message().contains(&format!("`{field}`")), "{e}");
        }
    }

    #[test]
    fn debug_hides_credentials() {
        let c = EntraConfig::with_client_secret("t", "c", "very-secret-value");
        assert!(!format!("{c:?}").contains("very-secret-value"));
        let c = EntraConfig::with_certificate("t", "c", "PEM-SECRET", "a".repeat(40));
        assert!(!format!("{c:?}").contains("PEM-SECRET"));
    }
}
