//! Configuration. `Debug` never shows a secret (`Secret` redacts itself).

use std::time::Duration;

use iga_adapter::{Error, ErrorKind, Result, Secret};
use url::Url;

/// How the connector authenticates.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum GithubAuth {
    /// A personal access token or an installation token obtained elsewhere
    /// (`Authorization: Bearer …`).
    Token(Secret),
    /// A GitHub App: an RS256 JWT signed with the app's private key is exchanged
    /// for an installation token (`POST /app/installations/{id}/access_tokens`,
    /// valid one hour, cached and renewed).
    App {
        /// The app id (the JWT `iss`).
        app_id: String,
        /// The installation id in the organization.
        installation_id: u64,
        /// The app's private key, PEM (PKCS#1 `RSA PRIVATE KEY` as GitHub issues it,
        /// or PKCS#8).
        private_key_pem: Secret,
    },
}

/// Connector configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GithubConfig {
    /// API root; default `https://api.github.com` (GitHub Enterprise Server:
    /// `https://<host>/api/v3`).
    pub api_url: Url,
    /// The organization login.
    pub org: String,
    /// Credentials.
    pub auth: GithubAuth,
    /// Instance label (default `github/<org>`). Never a secret.
    pub instance: Option<String>,
    /// Role for new org memberships: `member` (default) or `admin`.
    pub org_role: String,
    /// Role for new team memberships: `member` (default) or `maintainer`.
    pub team_role: String,
    /// Repository permission when an entitlement id names none (default `push`).
    pub default_repo_permission: String,
    /// `per_page` for lists (GitHub's maximum is 100). Default 100.
    pub page_size: usize,
    /// Per-request timeout. Default 60 s.
    pub request_timeout: Duration,
}

impl GithubConfig {
    /// A configuration for `org` on github.com with a token.
    pub fn new(org: &str, token: impl Into<Secret>) -> Result<Self> {
        Self::with_api_url("https://api.github.com", org, token)
    }

    /// A configuration for `org` on another API root (GitHub Enterprise Server, a
    /// mock).
    pub fn with_api_url(api_url: &str, org: &str, token: impl Into<Secret>) -> Result<Self> {
        let invalid = |msg: String, field: &str| {
            Error::new(ErrorKind::ConfigInvalid, msg)
                .with_connector(crate::KIND)
                .with_context("field", field)
        };
        let mut api_url = Url::parse(api_url)
            .map_err(|e| invalid(format!("invalid GitHub API URL: {e}"), "api_url"))?;
        if !matches!(api_url.scheme(), "http" | "https") {
            return Err(invalid(
                "GitHub API URL must be http or https".into(),
                "api_url",
            ));
        }
        if !api_url.username().is_empty() || api_url.password().is_some() {
            return Err(invalid(
                "put credentials in GithubAuth, not in the URL".into(),
                "api_url",
            ));
        }
        let trimmed = api_url.path().trim_end_matches('/').to_string();
        api_url.set_path(&trimmed);
        if org.is_empty() || !org.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(invalid(
                format!("organization `{org}` is not a GitHub login"),
                "org",
            ));
        }
        Ok(Self {
            api_url,
            org: org.to_string(),
            auth: GithubAuth::Token(token.into()),
            instance: None,
            org_role: "member".into(),
            team_role: "member".into(),
            default_repo_permission: "push".into(),
            page_size: 100,
            request_timeout: Duration::from_secs(60),
        })
    }

    /// Authenticate as a GitHub App installation instead of with a token.
    pub fn app(
        mut self,
        app_id: impl Into<String>,
        installation_id: u64,
        private_key_pem: impl Into<Secret>,
    ) -> Self {
        self.auth = GithubAuth::App {
            app_id: app_id.into(),
            installation_id,
            private_key_pem: private_key_pem.into(),
        };
        self
    }

    /// Set the instance label.
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Set the page size (1..=100).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = n.clamp(1, 100);
        self
    }

    pub(crate) fn instance_label(&self) -> String {
        self.instance
            .clone()
            .unwrap_or_else(|| format!("github/{}", self.org))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_input_is_validated() {
        let c = GithubConfig::new("acme", "ghp_canary123").unwrap();
        assert!(!format!("{c:?}").contains("ghp_canary123"));
        assert_eq!(c.instance_label(), "github/acme");
        let a = c
            .clone()
            .app("42", 7, "-----BEGIN RSA PRIVATE KEY-----canary");
        assert!(!format!("{a:?}").contains("canary"));
        let e = GithubConfig::new("acme corp", "t").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
        assert!(format!("{e}").contains("org"), "{e}");
        assert!(GithubConfig::with_api_url("ftp://x", "acme", "t").is_err());
        assert!(GithubConfig::with_api_url("https://u:p@x", "acme", "t").is_err());
    }
}
