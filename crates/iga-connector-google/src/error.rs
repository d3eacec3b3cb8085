//! The one place Directory API errors are classified.
//!
//! Google answers `{"error":{"code":409,"message":"...","errors":[{"domain":"global",
//! "reason":"duplicate","message":"..."}]}}`. [`classify`] starts from
//! [`iga_http::classify_status`] (so `Retry-After` is honoured) and refines by `reason`:
//!
//! | status | reason | kind | retry |
//! |---|---|---|---|
//! | 400 | `invalid`, `required`, `badRequest`, ... | `InvalidInput` | permanent |
//! | 401 | `authError` | `Unauthenticated` | permanent |
//! | 403 | `userRateLimitExceeded`, `rateLimitExceeded`, `quotaExceeded` | `RateLimited` | temporary |
//! | 403 | `forbidden`, other | `PermissionDenied` | permanent |
//! | 404 | `notFound` | `NotFound` | permanent (callers map member/user 404 to no-ops) |
//! | 409 | `duplicate` | `AlreadyExists` | permanent (callers map to no-ops / links) |
//! | 412 | `conditionNotMet` | `Conflict` | permanent |
//! | 429 | `rateLimitExceeded` | `RateLimited` | temporary (+ `Retry-After`) |
//! | 500 | `backendError` | `Unavailable` | temporary |
//! | 502, 503 | any | `Unavailable` | temporary |

use iga_adapter::{Error, ErrorKind};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::KIND;

/// The `reason` of the first entry of `error.errors` and the `error.message`.
pub fn reason_and_message(body: &str) -> (Option<String>, Option<String>) {
    let v: Option<Value> = serde_json::from_str(body).ok();
    let err = v.as_ref().and_then(|v| v.get("error"));
    let reason = err
        .and_then(|e| e.get("errors"))
        .and_then(|e| e.get(0))
        .and_then(|e| e.get("reason"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let message = err
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string);
    (reason, message)
}

/// Classify a non-success Directory API response.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &str) -> Error {
    let (reason, message) = reason_and_message(body);
    let base = iga_http::classify_status(KIND, status, headers, "");
    let code = status.as_u16();
    let r = reason.as_deref().unwrap_or("");
    let refined = match (code, r) {
        (403, "userRateLimitExceeded" | "rateLimitExceeded" | "quotaExceeded") => {
            Some((ErrorKind::RateLimited, true))
        }
        (403, _) if base.kind() == ErrorKind::RateLimited => None,
        (403, _) => Some((ErrorKind::PermissionDenied, false)),
        (409, "duplicate") => Some((ErrorKind::AlreadyExists, false)),
        (500, _) => Some((ErrorKind::Unavailable, true)),
        _ => None,
    };
    let mut err = match refined {
        Some((kind, temporary)) if kind != base.kind() || temporary != base.is_retryable() => {
            let e = Error::new(kind, format!("HTTP {code} {r}"))
                .with_connector(KIND)
                .with_context("status", code);
            if temporary {
                e.set_temporary(iga_http::retry_after(headers, std::time::SystemTime::now()))
            } else {
                e.set_permanent()
            }
        }
        _ => base,
    };
    if !r.is_empty() {
        err = err.with_context("reason", r);
    }
    if let Some(m) = message {
        let m = iga_http::redact_body_snippet(&m);
        if !m.is_empty() {
            err = err.with_context("detail", m);
        }
    }
    err
}

/// Whether a 404 names the member (not the group): `Resource Not Found: memberKey`.
pub(crate) fn names_member(err: &Error) -> bool {
    err.context()
        .iter()
        .any(|(k, v)| k == "detail" && v.contains("memberKey"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    fn body(code: u16, reason: &str, msg: &str) -> String {
        serde_json::json!({"error": {"code": code, "message": msg,
            "errors": [{"domain": "global", "reason": reason, "message": msg}]}})
        .to_string()
    }

    #[test]
    fn classification_table() {
        let cases: &[(u16, &str, ErrorKind, bool)] = &[
            (400, "invalid", ErrorKind::InvalidInput, false),
            (400, "required", ErrorKind::InvalidInput, false),
            (401, "authError", ErrorKind::Unauthenticated, false),
            (403, "userRateLimitExceeded", ErrorKind::RateLimited, true),
            (403, "rateLimitExceeded", ErrorKind::RateLimited, true),
            (403, "quotaExceeded", ErrorKind::RateLimited, true),
            (403, "forbidden", ErrorKind::PermissionDenied, false),
            (404, "notFound", ErrorKind::NotFound, false),
            (409, "duplicate", ErrorKind::AlreadyExists, false),
            (409, "conflict", ErrorKind::Conflict, false),
            (412, "conditionNotMet", ErrorKind::Conflict, false),
            (429, "rateLimitExceeded", ErrorKind::RateLimited, true),
            (500, "backendError", ErrorKind::Unavailable, true),
            (503, "backendError", ErrorKind::Unavailable, true),
        ];
        for (status, reason, kind, retry) in cases {
            let e = classify(
                StatusCode::from_u16(*status).unwrap(),
                &HeaderMap::new(),
                &body(*status, reason, "m"),
            );
            assert_eq!(e.kind(), *kind, "{status} {reason}: {e}");
            assert_eq!(e.is_retryable(), *retry, "{status} {reason}");
        }
    }

    #[test]
    fn retry_after_and_member_404() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let e = classify(
            StatusCode::TOO_MANY_REQUESTS,
            &h,
            &body(429, "rateLimitExceeded", "x"),
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let e = classify(
            StatusCode::FORBIDDEN,
            &h,
            &body(403, "userRateLimitExceeded", "x"),
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let m = classify(
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            &body(404, "notFound", "Resource Not Found: memberKey"),
        );
        assert!(names_member(&m));
        let g = classify(
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            &body(404, "notFound", "Resource Not Found: groupKey"),
        );
        assert!(!names_member(&g));
    }
}
