//! The one place Okta errors are classified.
//!
//! Okta answers errors with `{"errorCode":"E00000xx","errorSummary":"...",
//! "errorCauses":[{"errorSummary":"..."}]}`. [`classify`] starts from
//! [`iga_http::classify_status`] and refines by `errorCode`:
//!
//! | status | errorCode | kind | retry |
//! |---|---|---|---|
//! | 400 | `E0000001` (validation), cause "already exists" | `AlreadyExists` | permanent |
//! | 400 | `E0000001` other | `InvalidInput` | permanent |
//! | 401 | `E0000011` (invalid token) | `Unauthenticated` | permanent |
//! | 403 | `E0000006` (no permission) | `PermissionDenied` | permanent |
//! | 403 | `E0000038` (not allowed in the user's status), `E0000016` (already active) | `Conflict` | permanent |
//! | 404 | `E0000007` | `NotFound` | permanent |
//! | 429 | `E0000047` (rate limit, also concurrency limit) | `RateLimited` | temporary, wait = `X-Rate-Limit-Reset` − `Date` |
//! | 500 | `E0000009` | `Unexpected` | temporary |
//! | 502/503 | — | `Unavailable` | temporary |

use iga_adapter::{Error, ErrorKind};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::KIND;

/// Okta's `errorCode` of an error body, if any.
pub fn error_code(body: Option<&Value>) -> Option<&str> {
    body?.get("errorCode")?.as_str()
}

fn causes(body: Option<&Value>) -> String {
    body.and_then(|b| b.get("errorCauses"))
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter_map(|x| x.get("errorSummary").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// Classify a non-success Okta response (status, headers, parsed body).
pub fn classify(status: StatusCode, headers: &HeaderMap, body: Option<&Value>) -> Error {
    let base = iga_http::classify_status(KIND, status, headers, "");
    let code = error_code(body);
    let causes = causes(body);
    let refined = match (status.as_u16(), code) {
        (400, Some("E0000001")) if causes.to_ascii_lowercase().contains("already exists") => {
            Some(ErrorKind::AlreadyExists)
        }
        (403, Some("E0000038" | "E0000016")) => Some(ErrorKind::Conflict),
        (_, Some("E0000047")) => Some(ErrorKind::RateLimited),
        _ => None,
    };
    let mut err = match refined {
        Some(kind) if kind != base.kind() => Error::new(
            kind,
            format!("HTTP {} {}", status.as_u16(), code.unwrap_or("")),
        )
        .with_connector(KIND)
        .with_context("status", status.as_u16())
        .set_permanent(),
        _ => base,
    };
    if err.kind() == ErrorKind::RateLimited {
        err = err.set_temporary(iga_http::rest::throttle_wait(status, headers));
    }
    if let Some(c) = code {
        err = err.with_context("error_code", c);
    }
    if let Some(s) = body
        .and_then(|b| b.get("errorSummary"))
        .and_then(Value::as_str)
    {
        err = err.with_context("summary", iga_http::redact_body_snippet(s));
    }
    if !causes.is_empty() {
        err = err.with_context("causes", iga_http::redact_body_snippet(&causes));
    }
    err
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use reqwest::header::HeaderValue;
    use serde_json::json;

    #[test]
    fn classification_table() {
        let dup = json!({"errorCode":"E0000001","errorSummary":"Api validation failed: login",
            "errorCauses":[{"errorSummary":"login: An object with this field already exists in the current organization"}]});
        let table: &[(u16, Value, ErrorKind, bool)] = &[
            (400, dup, ErrorKind::AlreadyExists, false),
            (
                400,
                json!({"errorCode":"E0000001","errorSummary":"Api validation failed: profile"}),
                ErrorKind::InvalidInput,
                false,
            ),
            (
                401,
                json!({"errorCode":"E0000011","errorSummary":"Invalid token provided"}),
                ErrorKind::Unauthenticated,
                false,
            ),
            (
                403,
                json!({"errorCode":"E0000006","errorSummary":"You do not have permission"}),
                ErrorKind::PermissionDenied,
                false,
            ),
            (
                403,
                json!({"errorCode":"E0000038","errorSummary":"This operation is not allowed in the user's current status."}),
                ErrorKind::Conflict,
                false,
            ),
            (
                403,
                json!({"errorCode":"E0000016","errorSummary":"Activation failed because the user is already active"}),
                ErrorKind::Conflict,
                false,
            ),
            (
                404,
                json!({"errorCode":"E0000007","errorSummary":"Not found: Resource not found: x (User)"}),
                ErrorKind::NotFound,
                false,
            ),
            (
                429,
                json!({"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests."}),
                ErrorKind::RateLimited,
                true,
            ),
            (
                500,
                json!({"errorCode":"E0000009","errorSummary":"Internal Server Error"}),
                ErrorKind::Unexpected,
                true,
            ),
            (502, Value::Null, ErrorKind::Unavailable, true),
            (503, Value::Null, ErrorKind::Unavailable, true),
            (504, Value::Null, ErrorKind::Timeout, true),
        ];
        for (status, body, kind, retry) in table {
            let e = classify(
                StatusCode::from_u16(*status).unwrap(),
                &HeaderMap::new(),
                Some(body),
            );
            assert_eq!(e.kind(), *kind, "{status} {body}");
            assert_eq!(e.is_retryable(), *retry, "{status} {body}");
            assert_eq!(e.connector(), KIND);
        }
    }

    #[test]
    fn rate_limit_wait_uses_reset_minus_date() {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut h = HeaderMap::new();
        let date = httpdate_string(now);
        h.insert("date", HeaderValue::from_str(&date).unwrap());
        h.insert("x-rate-limit-limit", HeaderValue::from_static("600"));
        h.insert("x-rate-limit-remaining", HeaderValue::from_static("0"));
        h.insert(
            "x-rate-limit-reset",
            HeaderValue::from_str(&(now + 12).to_string()).unwrap(),
        );
        let body = json!({"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests."});
        let e = classify(StatusCode::TOO_MANY_REQUESTS, &h, Some(&body));
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(12)));
        assert!(e.to_string().contains("E0000047") || format!("{e:?}").contains("E0000047"));
    }

    fn httpdate_string(secs: u64) -> String {
        httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
    }
}
