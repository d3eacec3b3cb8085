//! Configuration of the IAM adapter. `Debug` never shows a secret.

use std::time::Duration;

use iga_adapter::{Error, ErrorKind, Result};
use iga_http::sigv4::AwsCredentials;
use url::Url;

use crate::KIND;

/// IAM connector configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IamConfig {
    /// Query API endpoint, default `https://iam.amazonaws.com/`.
    pub endpoint: Url,
    /// Signing region (IAM is global and signs with `us-east-1`).
    pub region: String,
    /// Credentials (secret key redacted in `Debug`).
    pub credentials: AwsCredentials,
    /// Instance label (default `iam`). Never a secret.
    pub instance: Option<String>,
    /// `MaxItems` for list calls (1..=1000). Default 100.
    pub page_size: usize,
    /// Per-request timeout. Default 60 s.
    pub request_timeout: Duration,
}

impl IamConfig {
    /// A configuration against the public IAM endpoint.
    pub fn new(credentials: AwsCredentials) -> Result<Self> {
        if credentials.access_key_id.is_empty() || credentials.secret_access_key.is_empty() {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                "AWS credentials need an access key id and a secret access key",
            )
            .with_connector(KIND));
        }
        Ok(Self {
            endpoint: Url::parse("https://iam.amazonaws.com/").expect("static url"),
            region: "us-east-1".into(),
            credentials,
            instance: None,
            page_size: 100,
            request_timeout: Duration::from_secs(60),
        })
    }

    /// Use another endpoint (a mock, a VPC endpoint).
    pub fn with_endpoint(mut self, url: &str) -> Result<Self> {
        self.endpoint = Url::parse(url).map_err(|e| {
            Error::new(
                ErrorKind::ConfigInvalid,
                format!("invalid IAM endpoint: {e}"),
            )
            .with_connector(KIND)
        })?;
        if !matches!(self.endpoint.scheme(), "http" | "https") {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                "IAM endpoint must be http or https",
            )
            .with_connector(KIND));
        }
        Ok(self)
    }

    /// Set the instance label.
    pub fn with_instance(mut self, s: impl Into<String>) -> Self {
        self.instance = Some(s.into());
        self
    }

    /// Set the page size (clamped to 1..=1000).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = n.clamp(1, 1000);
        self
    }

    pub(crate) fn instance_label(&self) -> String {
        self.instance.clone().unwrap_or_else(|| "iam".into())
    }

    /// `host[:port]` as signed.
    pub(crate) fn host(&self) -> String {
        let h = self.endpoint.host_str().unwrap_or("iam.amazonaws.com");
        match self.endpoint.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted_and_bad_input_rejected() {
        let c = IamConfig::new(AwsCredentials::new("AKIDEXAMPLE", "canary-secret-9"))
            .unwrap()
            .with_endpoint("http://127.0.0.1:9/")
            .unwrap();
        assert!(!format!("{c:?}").contains("canary-secret-9"));
        assert_eq!(c.host(), "127.0.0.1:9");
        assert!(IamConfig::new(AwsCredentials::new("", "x")).is_err());
        assert!(c.clone().with_endpoint("ftp://x").is_err());
    }
}
