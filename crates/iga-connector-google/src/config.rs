//! Configuration. `Debug` never shows a secret (`Secret` redacts itself).

use std::time::Duration;

use iga_adapter::{Error, ErrorKind, Result, Secret};
use serde::Deserialize;
use url::Url;

use crate::{BATCH_LIMIT, KIND, SCOPES};

fn config_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::ConfigInvalid, msg).with_connector(KIND)
}

/// A service account key (the JSON file Google issues), reduced to what the connector
/// needs. The private key is a PKCS#8 PEM and is held as a [`Secret`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServiceAccountKey {
    /// `client_email` — the JWT issuer.
    pub client_email: String,
    /// `private_key` (PKCS#8 PEM, RSA).
    pub private_key: Secret,
    /// `private_key_id` — sent as the JWT `kid` when present.
    pub private_key_id: Option<String>,
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
}

impl ServiceAccountKey {
    /// A key from its parts.
    pub fn new(client_email: impl Into<String>, private_key_pem: impl Into<Secret>) -> Self {
        Self {
            client_email: client_email.into(),
            private_key: private_key_pem.into(),
            private_key_id: None,
        }
    }

    /// Parse the service account JSON key file. Errors name the missing field and
    /// never echo the file.
    pub fn from_json(json: &str) -> Result<Self> {
        let f: KeyFile = serde_json::from_str(json).map_err(|e| {
            config_err(format!(
                "service account key is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if let Some(k) = &f.kind
            && k != "service_account"
        {
            return Err(config_err(format!(
                "service account key: `type` is `{k}`, expected `service_account`"
            )));
        }
        let client_email = f
            .client_email
            .ok_or_else(|| config_err("service account key: missing `client_email`"))?;
        let pem = f
            .private_key
            .ok_or_else(|| config_err("service account key: missing `private_key`"))?;
        Ok(Self {
            client_email,
            private_key: Secret::new(pem),
            private_key_id: f.private_key_id,
        })
    }
}

/// Connector configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GoogleConfig {
    /// Directory API root, default `https://admin.googleapis.com/admin/directory/v1`.
    pub api_base: Url,
    /// Batch endpoint, default `https://www.googleapis.com/batch/admin/directory_v1`.
    pub batch_url: Url,
    /// OAuth token endpoint, default `https://oauth2.googleapis.com/token` (also the JWT `aud`).
    pub token_url: Url,
    /// Service account key.
    pub key: ServiceAccountKey,
    /// Admin user the service account impersonates (domain-wide delegation, JWT `sub`).
    pub subject: String,
    /// Scopes requested (default [`SCOPES`]).
    pub scopes: Vec<String>,
    /// Primary domain: logins without `@` become `<login>@<domain>`.
    pub domain: String,
    /// Customer id for list calls (default `my_customer`).
    pub customer: String,
    /// Instance label for `AdapterInfo` (default: the domain). Never a secret.
    pub instance: Option<String>,
    /// Page size for list calls (Directory API caps users at 500, groups and members at 200). Default 100.
    pub page_size: usize,
    /// Calls per HTTP batch request (1..=1000). Default 1000.
    pub batch_max: usize,
    /// Per-request timeout. Default 60 s.
    pub request_timeout: Duration,
}

impl GoogleConfig {
    /// A configuration against Google's public endpoints.
    pub fn new(
        key: ServiceAccountKey,
        subject: impl Into<String>,
        domain: impl Into<String>,
    ) -> Result<Self> {
        let subject = subject.into();
        let domain = domain.into();
        if !subject.contains('@') {
            return Err(config_err(
                "subject must be the e-mail of the admin to impersonate",
            ));
        }
        if domain.is_empty() || domain.contains('@') || domain.contains('/') {
            return Err(config_err(format!("invalid domain `{domain}`")));
        }
        if key.client_email.is_empty() {
            return Err(config_err("service account key has an empty client_email"));
        }
        Ok(Self {
            api_base: Url::parse("https://admin.googleapis.com/admin/directory/v1")
                .expect("static url"),
            batch_url: Url::parse("https://www.googleapis.com/batch/admin/directory_v1")
                .expect("static url"),
            token_url: Url::parse("https://oauth2.googleapis.com/token").expect("static url"),
            key,
            subject,
            scopes: SCOPES.iter().map(|s| s.to_string()).collect(),
            domain,
            customer: "my_customer".into(),
            instance: None,
            page_size: 100,
            batch_max: BATCH_LIMIT,
            request_timeout: Duration::from_secs(60),
        })
    }

    /// Point the API, batch and token endpoints at `root` (a mock or a proxy):
    /// `<root>/admin/directory/v1`, `<root>/batch/admin/directory_v1`, `<root>/token`.
    pub fn with_root(mut self, root: &str) -> Result<Self> {
        let root = root.trim_end_matches('/');
        let parse = |s: String| {
            Url::parse(&s).map_err(|e| config_err(format!("invalid endpoint root: {e}")))
        };
        self.api_base = parse(format!("{root}/admin/directory/v1"))?;
        self.batch_url = parse(format!("{root}/batch/admin/directory_v1"))?;
        self.token_url = parse(format!("{root}/token"))?;
        Ok(self)
    }

    /// Set the instance label.
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Set the page size (clamped to 1..=200 so it is valid for every list call).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = n.clamp(1, 200);
        self
    }

    /// Set the calls per batch request (clamped to 1..=[`BATCH_LIMIT`]; 1 disables batching).
    pub fn with_batch_max(mut self, n: usize) -> Self {
        self.batch_max = n.clamp(1, BATCH_LIMIT);
        self
    }

    /// Set the request timeout.
    pub fn with_request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    pub(crate) fn instance_label(&self) -> String {
        self.instance.clone().unwrap_or_else(|| self.domain.clone())
    }

    /// The Google user key of a login: the login when it is an address, else `login@domain`.
    pub fn user_key(&self, login: &str) -> String {
        if login.contains('@') {
            login.to_ascii_lowercase()
        } else {
            format!("{}@{}", login.to_ascii_lowercase(), self.domain)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_parsed_and_redacted() {
        let k = ServiceAccountKey::from_json(
            r#"{"type":"service_account","client_email":"sa@p.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\ncanary-pem\n-----END PRIVATE KEY-----\n","private_key_id":"k1"}"#,
        )
        .unwrap();
        assert_eq!(k.private_key_id.as_deref(), Some("k1"));
        let c = GoogleConfig::new(k, "admin@example.com", "example.com").unwrap();
        assert!(!format!("{c:?}").contains("canary-pem"));
        assert_eq!(c.user_key("Ada"), "ada@example.com");
        assert_eq!(c.user_key("ada@other.org"), "ada@other.org");
        let e = ServiceAccountKey::from_json(r#"{"type":"service_account","client_email":"x"}"#)
            .unwrap_err();
        assert!(e.message().contains("private_key"), "{e}");
        let e = ServiceAccountKey::from_json(r#"{"type":"authorized_user"}"#).unwrap_err();
        assert!(e.message().contains("authorized_user"), "{e}");
        assert!(ServiceAccountKey::from_json("{").is_err());
        let k = ServiceAccountKey::new("sa@x", "pem");
        assert!(GoogleConfig::new(k.clone(), "admin", "example.com").is_err());
        assert!(GoogleConfig::new(k, "admin@example.com", "a/b").is_err());
    }
}
