//! The one place Jira errors are classified.
//!
//! Starts from [`iga_http::classify_status`] (429/503 with `Retry-After` → temporary
//! with the requested wait) and adds Jira's message: the body
//! `{"errorMessages":[...],"errors":{"field":"msg"}}` (platform API) or
//! `{"errorMessage":"..."}` (service-desk API), redacted and truncated.
//!
//! | status | kind | retry |
//! |---|---|---|
//! | 400 (bad JQL, invalid transition, non-ADF body, expired page token) | `InvalidInput` | permanent |
//! | 401 | `Unauthenticated` | permanent |
//! | 403 | `PermissionDenied` | permanent |
//! | 404 | `NotFound` | permanent |
//! | 409 | `Conflict` | permanent |
//! | 410 (removed legacy search) | `NotFound` | permanent |
//! | 429 | `RateLimited` | temporary, `Retry-After` |
//! | 503 | `Unavailable` | temporary, `Retry-After` |
//! | other 5xx | `Unexpected` / `Timeout` (504) | temporary |

use iga_adapter::Error;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::KIND;

/// Jira's error message(s) from a response body, joined, if any.
pub fn jira_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let mut parts: Vec<String> = Vec::new();
    if let Some(arr) = v.get("errorMessages").and_then(|m| m.as_array()) {
        parts.extend(arr.iter().filter_map(|m| m.as_str()).map(str::to_string));
    }
    if let Some(obj) = v.get("errors").and_then(|m| m.as_object()) {
        parts.extend(
            obj.iter()
                .map(|(k, m)| format!("{k}: {}", m.as_str().unwrap_or_default())),
        );
    }
    if let Some(m) = v.get("errorMessage").and_then(|m| m.as_str()) {
        parts.push(m.to_string());
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Classify a non-success response from its status, headers and raw body.
pub fn from_response(status: StatusCode, headers: &HeaderMap, body: &str) -> Error {
    let mut err = iga_http::classify_status(KIND, status, headers, "");
    if let Some(m) = jira_message(body) {
        let m = iga_http::redact_body_snippet(&m);
        if !m.is_empty() {
            err = err.with_context("jira", m);
        }
    }
    if let Some(reason) = headers
        .get("ratelimit-reason")
        .and_then(|v| v.to_str().ok())
    {
        err = err.with_context("ratelimit_reason", reason);
    }
    err
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use iga_adapter::{ErrorKind, RetryStatus};
    use reqwest::header::HeaderValue;

    #[test]
    fn table() {
        let cases: &[(u16, Option<&str>, ErrorKind, bool)] = &[
            (400, None, ErrorKind::InvalidInput, false),
            (401, None, ErrorKind::Unauthenticated, false),
            (403, None, ErrorKind::PermissionDenied, false),
            (404, None, ErrorKind::NotFound, false),
            (409, None, ErrorKind::Conflict, false),
            (410, None, ErrorKind::NotFound, false),
            (429, Some("7"), ErrorKind::RateLimited, true),
            (429, None, ErrorKind::RateLimited, true),
            (500, None, ErrorKind::Unexpected, true),
            (503, Some("2"), ErrorKind::Unavailable, true),
            (504, None, ErrorKind::Timeout, true),
        ];
        for (status, retry_after, kind, temporary) in cases {
            let mut h = HeaderMap::new();
            if let Some(ra) = retry_after {
                h.insert("retry-after", HeaderValue::from_static(ra));
            }
            let e = from_response(
                StatusCode::from_u16(*status).unwrap(),
                &h,
                r#"{"errorMessages":["Error in the JQL Query"],"errors":{}}"#,
            );
            assert_eq!(e.kind(), *kind, "status {status}");
            assert_eq!(e.is_retryable(), *temporary, "status {status}");
            if let Some(ra) = retry_after {
                assert_eq!(
                    e.retry(),
                    RetryStatus::Temporary {
                        retry_after: Some(Duration::from_secs(ra.parse().unwrap()))
                    }
                );
            }
            assert!(e.to_string().contains("Error in the JQL Query"), "{e}");
        }
    }

    #[test]
    fn messages_of_both_apis() {
        assert_eq!(
            jira_message(r#"{"errorMessages":[],"errors":{"comment":"must be ADF"}}"#).unwrap(),
            "comment: must be ADF"
        );
        assert_eq!(
            jira_message(r#"{"errorMessage":"Request not found"}"#).unwrap(),
            "Request not found"
        );
        assert!(jira_message("<html>").is_none());
    }
}
