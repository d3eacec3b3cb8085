//! HTTP status and transport failures → [`iga_adapter::Error`], the one place every
//! HTTP connector starts its own classification from.
//!
//! | status | kind | retry |
//! |---|---|---|
//! | 400, 413, 414, 422, other 4xx | `InvalidInput` | permanent |
//! | 401 | `Unauthenticated` | permanent |
//! | 403 | `PermissionDenied` (or `RateLimited` when the target signals throttling: `Retry-After`, `remaining: 0`, Google `rateLimitExceeded`) | permanent (temporary when throttled) |
//! | 404, 410 | `NotFound` | permanent |
//! | 405, 501 | `Unsupported` | permanent |
//! | 408 | `Timeout` | temporary |
//! | 409, 412 | `Conflict` | permanent |
//! | 429 | `RateLimited` | temporary, `Retry-After` (else rate-limit reset when exhausted) |
//! | 500 and other 5xx | `Unexpected` | temporary (+ `Retry-After` if sent) |
//! | 502, 503 | `Unavailable` | temporary (+ `Retry-After`) |
//! | 504 | `Timeout` | temporary (+ `Retry-After`) |
//! | 1xx–3xx | `Unexpected` | permanent (classifying a success is a caller bug) |
//!
//! Errors carry `status=<code>`, the vendor reason if any, and a redacted, truncated
//! `body` snippet as context. Request headers, credentials and URLs are never
//! included.

use std::error::Error as _;
use std::time::SystemTime;

use http::{HeaderMap, StatusCode};
use iga_adapter::{Error, ErrorKind};

use crate::rate_limit::RateLimitInfo;
use crate::redact::{redact_body_snippet, redact_url};

/// Classify a non-success response, using the wall clock for HTTP-date
/// `Retry-After` values. See the module table.
pub fn classify_status(
    connector: &'static str,
    status: StatusCode,
    headers: &HeaderMap,
    body_snippet: &str,
) -> Error {
    classify_status_at(connector, status, headers, body_snippet, SystemTime::now())
}

/// [`classify_status`] with an explicit "now" (for HTTP-date `Retry-After` and
/// epoch-second rate-limit resets).
pub fn classify_status_at(
    connector: &'static str,
    status: StatusCode,
    headers: &HeaderMap,
    body_snippet: &str,
    now: SystemTime,
) -> Error {
    let rl = RateLimitInfo::from_headers(headers, now);
    let code = status.as_u16();
    let lower_body = body_snippet.to_ascii_lowercase();
    let throttled_403 = code == 403
        && (rl.retry_after.is_some()
            || rl.is_exhausted()
            || lower_body.contains("ratelimitexceeded")
            || lower_body.contains("rate limit"));
    let (kind, temporary, message) = match code {
        429 => (ErrorKind::RateLimited, true, "throttled by target"),
        403 if throttled_403 => (ErrorKind::RateLimited, true, "throttled by target (403)"),
        400 => (ErrorKind::InvalidInput, false, "bad request"),
        401 => (ErrorKind::Unauthenticated, false, "credentials rejected"),
        403 => (ErrorKind::PermissionDenied, false, "permission denied"),
        404 => (ErrorKind::NotFound, false, "not found"),
        405 => (ErrorKind::Unsupported, false, "method not allowed"),
        408 => (ErrorKind::Timeout, true, "request timeout"),
        409 => (ErrorKind::Conflict, false, "conflict"),
        410 => (ErrorKind::NotFound, false, "gone"),
        412 => (ErrorKind::Conflict, false, "precondition failed"),
        413 => (ErrorKind::InvalidInput, false, "payload too large"),
        422 => (ErrorKind::InvalidInput, false, "unprocessable entity"),
        _ if status.is_client_error() => (ErrorKind::InvalidInput, false, "client error"),
        500 => (ErrorKind::Unexpected, true, "internal server error"),
        501 => (ErrorKind::Unsupported, false, "not implemented"),
        502 => (ErrorKind::Unavailable, true, "bad gateway"),
        503 => (ErrorKind::Unavailable, true, "service unavailable"),
        504 => (ErrorKind::Timeout, true, "gateway timeout"),
        _ if status.is_server_error() => (ErrorKind::Unexpected, true, "server error"),
        _ => (ErrorKind::Unexpected, false, "unexpected status"),
    };
    let mut err = Error::new(kind, format!("HTTP {code} {message}"))
        .with_connector(connector)
        .with_context("status", code);
    err = if temporary {
        let wait = if kind == ErrorKind::RateLimited {
            rl.suggested_wait(now)
        } else {
            rl.retry_after
        };
        err.set_temporary(wait)
    } else {
        err.set_permanent()
    };
    if let Some(reason) = &rl.reason {
        err = err.with_context("reason", reason);
    }
    let snippet = redact_body_snippet(body_snippet);
    if !snippet.is_empty() {
        err = err.with_context("body", snippet);
    }
    err
}

/// Classify a transport-level `reqwest::Error` (no response, or failure reading it):
///
/// - timeout → `Timeout`, temporary (the call may have landed: read back before
///   retrying a create);
/// - connect failure → `Unavailable`, temporary;
/// - a status error (from `error_for_status`) → [`classify_status`] without headers;
/// - builder errors → `ConfigInvalid`; body/decode errors → `Unexpected`
///   (temporary for body read failures, permanent for decode failures).
///
/// The message includes the error chain without the URL; the URL is added as
/// redacted `url` context.
pub fn classify_reqwest_error(connector: &'static str, err: &reqwest::Error) -> Error {
    if let Some(status) = err.status() {
        return classify_status(connector, status, &HeaderMap::new(), "");
    }
    let (kind, temporary, what) = if err.is_timeout() {
        (ErrorKind::Timeout, true, "request timed out")
    } else if err.is_connect() {
        (ErrorKind::Unavailable, true, "cannot connect")
    } else if err.is_builder() {
        (ErrorKind::ConfigInvalid, false, "invalid request")
    } else if err.is_decode() {
        (ErrorKind::Unexpected, false, "cannot decode response")
    } else if err.is_body() {
        (ErrorKind::Unexpected, true, "failed reading response body")
    } else if err.is_redirect() {
        (ErrorKind::Unexpected, false, "redirect error")
    } else {
        (ErrorKind::Unavailable, true, "request failed")
    };
    // Walk the chain below reqwest's own message (which embeds the URL).
    let mut chain = Vec::new();
    let mut src = err.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !chain.contains(&text) {
            chain.push(text);
        }
        src = s.source();
    }
    let message = if chain.is_empty() {
        what.to_string()
    } else {
        format!(
            "{what}: {}",
            crate::redact::truncate_chars(&chain.join(": "), 300)
        )
    };
    let mut e = Error::new(kind, message).with_connector(connector);
    e = if temporary {
        e.set_temporary(None)
    } else {
        e.set_permanent()
    };
    if let Some(url) = err.url() {
        e = e.with_context("url", redact_url(url));
    }
    e
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use iga_adapter::RetryStatus;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    const NOW: u64 = 1_767_225_600;

    #[test]
    fn status_table() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
        let temp = |s: u64| RetryStatus::Temporary {
            retry_after: Some(Duration::from_secs(s)),
        };
        let temp_none = RetryStatus::Temporary { retry_after: None };
        let perm = RetryStatus::Permanent;
        type Case<'a> = (
            u16,
            Vec<(&'a str, &'a str)>,
            &'a str,
            ErrorKind,
            RetryStatus,
        );
        #[rustfmt::skip]
        let cases: Vec<Case<'_>> = vec![
            (400, vec![], "", ErrorKind::InvalidInput, perm),
            (401, vec![], "", ErrorKind::Unauthenticated, perm),
            (403, vec![], "", ErrorKind::PermissionDenied, perm),
            (403, vec![("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1767225630")], "", ErrorKind::RateLimited, temp(30)),
            (403, vec![("retry-after", "61")], "", ErrorKind::RateLimited, temp(61)),
            (403, vec![], r#"{"error":{"errors":[{"reason":"userRateLimitExceeded"}]}}"#, ErrorKind::RateLimited, temp_none),
            (404, vec![], "", ErrorKind::NotFound, perm),
            (405, vec![], "", ErrorKind::Unsupported, perm),
            (408, vec![], "", ErrorKind::Timeout, temp_none),
            (409, vec![], "", ErrorKind::Conflict, perm),
            (410, vec![], "", ErrorKind::NotFound, perm),
            (412, vec![], "", ErrorKind::Conflict, perm),
            (418, vec![], "", ErrorKind::InvalidInput, perm),
            (422, vec![], "", ErrorKind::InvalidInput, perm),
            (429, vec![("retry-after", "7")], "", ErrorKind::RateLimited, temp(7)),
            (429, vec![("retry-after", "Thu, 01 Jan 2026 00:00:20 GMT")], "", ErrorKind::RateLimited, temp(20)),
            (429, vec![], "", ErrorKind::RateLimited, temp_none),
            (429, vec![("X-Rate-Limit-Remaining", "0"), ("X-Rate-Limit-Reset", "1767225645")], "", ErrorKind::RateLimited, temp(45)),
            (429, vec![("retry-after", "garbage")], "", ErrorKind::RateLimited, temp_none),
            (500, vec![], "", ErrorKind::Unexpected, temp_none),
            (501, vec![], "", ErrorKind::Unsupported, perm),
            (502, vec![], "", ErrorKind::Unavailable, temp_none),
            (503, vec![("retry-after", "120")], "", ErrorKind::Unavailable, temp(120)),
            (503, vec![], "", ErrorKind::Unavailable, temp_none),
            (504, vec![], "", ErrorKind::Timeout, temp_none),
            (599, vec![], "", ErrorKind::Unexpected, temp_none),
            (302, vec![], "", ErrorKind::Unexpected, perm),
        ];
        for (code, hs, body, kind, retry) in cases {
            let e = classify_status_at(
                "test",
                StatusCode::from_u16(code).unwrap(),
                &headers(&hs),
                body,
                now,
            );
            assert_eq!(e.kind(), kind, "{code} {hs:?}");
            assert_eq!(e.retry(), retry, "{code} {hs:?}");
            assert_eq!(e.connector(), "test");
            assert!(
                e.context()
                    .iter()
                    .any(|(k, v)| k == "status" && v == &code.to_string()),
                "{e}"
            );
        }
    }

    #[test]
    fn context_is_redacted_and_has_reason() {
        let e = classify_status_at(
            "jira",
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[
                ("retry-after", "1"),
                ("RateLimit-Reason", "jira-burst-based"),
            ]),
            r#"{"message":"slow down","access_token":"CANARY-123"}"#,
            SystemTime::now(),
        );
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("CANARY-123"), "{shown}");
        assert!(shown.contains("reason=jira-burst-based"), "{shown}");
        assert!(shown.contains("slow down"), "{shown}");
    }
}
