//! IAM Query API calls: form-encoded POST, SigV4-signed, XML answers.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use iga_adapter::Result;
use iga_http::HttpClientBuilder;
use iga_http::sigv4::{self, SigningInput};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

use crate::config::IamConfig;
use crate::xml::{self, Node};
use crate::{KIND, error};

/// IAM API version.
pub const IAM_VERSION: &str = "2010-05-08";
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

pub(crate) struct IamClient {
    http: reqwest::Client,
    config: IamConfig,
    host: String,
    pub(crate) requests: AtomicU64,
}

impl fmt::Debug for IamClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IamClient")
            .field("endpoint", &self.config.endpoint.as_str())
            .field("credentials", &self.config.credentials)
            .finish()
    }
}

impl IamClient {
    pub(crate) fn new(config: &IamConfig) -> Result<Self> {
        let http = HttpClientBuilder::new()
            .connector(KIND)
            .user_agent_suffix("aws-iam")
            .request_timeout(config.request_timeout)
            .build()?;
        Ok(Self {
            http,
            host: config.host(),
            config: config.clone(),
            requests: AtomicU64::new(0),
        })
    }

    /// Call `action` with `params`; returns the parsed response document.
    pub(crate) async fn call(&self, action: &str, params: &[(&str, String)]) -> Result<Node> {
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("Action", action);
            for (k, v) in params {
                form.append_pair(k, v);
            }
            form.append_pair("Version", IAM_VERSION);
            form.finish()
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let amz_date = sigv4::amz_date(now);
        let creds = &self.config.credentials;
        let mut headers = vec![
            ("content-type".to_string(), FORM.to_string()),
            ("host".to_string(), self.host.clone()),
            ("x-amz-date".to_string(), amz_date.clone()),
        ];
        if let Some(t) = &creds.session_token {
            headers.push(("x-amz-security-token".into(), t.expose().to_string()));
        }
        let path = self.config.endpoint.path().to_string();
        let input = SigningInput {
            method: "POST",
            path: &path,
            query: &[],
            headers: &headers,
            payload: body.as_bytes(),
            region: &self.config.region,
            service: "iam",
            amz_date: &amz_date,
        };
        let auth = sigv4::authorization(creds, &input);
        self.requests.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(connector = KIND, action, "iam request");
        let mut rb = self
            .http
            .post(self.config.endpoint.clone())
            .header(CONTENT_TYPE, FORM)
            .header("x-amz-date", &amz_date)
            .header(AUTHORIZATION, auth)
            .body(body);
        if let Some(t) = &creds.session_token {
            rb = rb.header("x-amz-security-token", t.expose());
        }
        let resp = rb.send().await.map_err(|e| {
            iga_http::classify_reqwest_error(KIND, &e).with_context("action", action)
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp
            .text()
            .await
            .map_err(|e| iga_http::classify_reqwest_error(KIND, &e))?;
        if !status.is_success() {
            return Err(error::classify(status, &headers, &text).with_context("action", action));
        }
        xml::parse(&text).map_err(|e| e.with_context("action", action))
    }
}
