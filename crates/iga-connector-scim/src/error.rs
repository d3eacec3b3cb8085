//! The one place SCIM errors are classified.
//!
//! [`classify`] maps an HTTP status plus the SCIM error body's `scimType` and `detail`
//! (RFC 7644 §3.12) to an [`iga_adapter::Error`]. Responses with headers go through
//! [`from_response`], which starts from [`iga_http::classify_status`] so 429/503
//! `Retry-After` becomes a temporary error with the requested wait.

use iga_adapter::{Error, ErrorKind};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::KIND;

/// Classify a SCIM error: status, `scimType` (if any) and `detail` (if any).
///
/// `scimType` refines the status: `uniqueness` → `AlreadyExists`, `mutability` →
/// `SchemaViolation`, `invalidFilter`/`tooMany`/`invalidSyntax`/`invalidPath`/
/// `noTarget`/`invalidValue`/`invalidVers`/`sensitive` → `InvalidInput`; all permanent.
/// Without a `scimType` the status decides (see the README error table).
pub fn classify(status: u16, scim_type: Option<&str>, detail: Option<&str>) -> Error {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let base = iga_http::classify_status(KIND, code, &HeaderMap::new(), "");
    refine(base, status, scim_type, detail)
}

/// Classify a non-success response from its status, headers and raw body.
pub fn from_response(status: StatusCode, headers: &HeaderMap, body: &str) -> Error {
    let base = iga_http::classify_status(KIND, status, headers, "");
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let scim_type = parsed
        .as_ref()
        .and_then(|v| v.get("scimType"))
        .and_then(|v| v.as_str());
    let detail = parsed
        .as_ref()
        .and_then(|v| v.get("detail"))
        .and_then(|v| v.as_str());
    refine(base, status.as_u16(), scim_type, detail)
}

fn scim_kind(scim_type: &str) -> Option<ErrorKind> {
    Some(match scim_type.to_ascii_lowercase().as_str() {
        "uniqueness" => ErrorKind::AlreadyExists,
        "mutability" => ErrorKind::SchemaViolation,
        "invalidfilter" | "toomany" | "invalidsyntax" | "invalidpath" | "notarget"
        | "invalidvalue" | "invalidvers" | "sensitive" => ErrorKind::InvalidInput,
        _ => return None,
    })
}

fn refine(base: Error, status: u16, scim_type: Option<&str>, detail: Option<&str>) -> Error {
    let refined = scim_type.and_then(scim_kind);
    let mut err = match refined {
        Some(kind) if kind != base.kind() => Error::new(
            kind,
            format!("HTTP {status} {}", scim_type.unwrap_or_default()),
        )
        .with_connector(KIND)
        .with_context("status", status)
        .set_permanent(),
        _ => base,
    };
    if let Some(t) = scim_type {
        err = err.with_context("scim_type", t);
    }
    if let Some(d) = detail {
        let d = iga_http::redact_body_snippet(d);
        if !d.is_empty() {
            err = err.with_context("detail", d);
        }
    }
    err
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    #[test]
    fn classification_table() {
        let table: &[(u16, Option<&str>, ErrorKind, bool)] = &[
            (400, None, ErrorKind::InvalidInput, false),
            (400, Some("invalidFilter"), ErrorKind::InvalidInput, false),
            (400, Some("tooMany"), ErrorKind::InvalidInput, false),
            (400, Some("invalidSyntax"), ErrorKind::InvalidInput, false),
            (400, Some("invalidPath"), ErrorKind::InvalidInput, false),
            (400, Some("noTarget"), ErrorKind::InvalidInput, false),
            (400, Some("invalidValue"), ErrorKind::InvalidInput, false),
            (400, Some("invalidVers"), ErrorKind::InvalidInput, false),
            (400, Some("mutability"), ErrorKind::SchemaViolation, false),
            (403, Some("sensitive"), ErrorKind::InvalidInput, false),
            (401, None, ErrorKind::Unauthenticated, false),
            (403, None, ErrorKind::PermissionDenied, false),
            (404, None, ErrorKind::NotFound, false),
            (409, Some("uniqueness"), ErrorKind::AlreadyExists, false),
            (409, None, ErrorKind::Conflict, false),
            (412, None, ErrorKind::Conflict, false),
            (413, None, ErrorKind::InvalidInput, false),
            (429, None, ErrorKind::RateLimited, true),
            (500, None, ErrorKind::Unexpected, true),
            (501, None, ErrorKind::Unsupported, false),
            (502, None, ErrorKind::Unavailable, true),
            (503, None, ErrorKind::Unavailable, true),
            (504, None, ErrorKind::Timeout, true),
            (400, Some("someVendorType"), ErrorKind::InvalidInput, false),
        ];
        for (status, t, kind, retry) in table {
            let e = classify(*status, *t, Some("detail text"));
            assert_eq!(e.kind(), *kind, "{status} {t:?}");
            assert_eq!(e.is_retryable(), *retry, "{status} {t:?}");
            assert_eq!(e.connector(), KIND);
        }
    }

    #[test]
    fn response_body_and_retry_after() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let e = from_response(StatusCode::TOO_MANY_REQUESTS, &h, "");
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let e = from_response(StatusCode::SERVICE_UNAVAILABLE, &h, "");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness","detail":"taken"}"#;
        let e = from_response(StatusCode::CONFLICT, &HeaderMap::new(), body);
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert!(
            e.context()
                .iter()
                .any(|(k, v)| k == "detail" && v == "taken")
        );
        let e = from_response(StatusCode::BAD_REQUEST, &HeaderMap::new(), "not json");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
