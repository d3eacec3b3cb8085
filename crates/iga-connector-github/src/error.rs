//! The one place GitHub errors are classified.
//!
//! GitHub answers errors with `{"message": "...", "documentation_url": "..."}`
//! (422 adds `errors`). [`classify`] starts from [`iga_http::classify_status`] (which
//! already reads `x-ratelimit-remaining: 0` and `retry-after` on a 403 as
//! throttling) and refines:
//!
//! | status | signal | kind | retry |
//! |---|---|---|---|
//! | 401 | "Bad credentials" | `Unauthenticated` | permanent |
//! | 403 / 429 | `x-ratelimit-remaining: 0` (primary limit) | `RateLimited` | temporary, wait `x-ratelimit-reset − Date` |
//! | 403 / 429 | `retry-after` (secondary limit) | `RateLimited` | temporary, the given wait |
//! | 403 / 429 | message "secondary rate limit", no `retry-after` | `RateLimited` | temporary, 60 s |
//! | 403 | other (e.g. team synced with an IdP group, missing admin rights) | `PermissionDenied` | permanent |
//! | 404 | — | `NotFound` | permanent |
//! | 409 | — | `Conflict` | permanent |
//! | 422 | "Validation Failed" | `InvalidInput` | permanent |
//! | 500 | — | `Unexpected` | temporary |
//! | 502 / 503 | — | `Unavailable` | temporary |

use std::time::Duration;

use iga_adapter::{Error, ErrorKind};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::KIND;

/// Classify a non-success GitHub response (status, headers, parsed body).
pub fn classify(status: StatusCode, headers: &HeaderMap, body: Option<&Value>) -> Error {
    let message = body
        .and_then(|b| b.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let lower = message.to_ascii_lowercase();
    let secondary = lower.contains("secondary rate limit");
    let mut err = iga_http::classify_status(KIND, status, headers, message);
    if secondary && err.kind() != ErrorKind::RateLimited {
        err = Error::new(ErrorKind::RateLimited, "HTTP 403 secondary rate limit")
            .with_connector(KIND)
            .with_context("status", status.as_u16());
    }
    if err.kind() == ErrorKind::RateLimited {
        let wait = iga_http::rest::throttle_wait(status, headers).or_else(|| {
            // Secondary limit without retry-after: GitHub asks for at least a minute.
            secondary.then_some(Duration::from_secs(60))
        });
        err = err.set_temporary(wait);
    }
    err
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use reqwest::header::HeaderValue;
    use serde_json::json;

    fn h(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn classification_table() {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let date = || {
            (
                "date",
                httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(now)),
            )
        };
        let primary = h(&[
            date(),
            ("x-ratelimit-limit", "5000".into()),
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", (now + 30).to_string()),
        ]);
        let secondary = h(&[date(), ("retry-after", "17".into())]);
        let plenty = h(&[
            date(),
            ("x-ratelimit-remaining", "4000".into()),
            ("x-ratelimit-reset", (now + 30).to_string()),
        ]);
        let msg = |m: &str| json!({"message": m});
        let table: Vec<(u16, HeaderMap, Value, ErrorKind, bool, Option<u64>)> = vec![
            (
                401,
                plenty.clone(),
                msg("Bad credentials"),
                ErrorKind::Unauthenticated,
                false,
                None,
            ),
            (
                403,
                primary.clone(),
                msg("API rate limit exceeded for installation"),
                ErrorKind::RateLimited,
                true,
                Some(30),
            ),
            (
                429,
                primary,
                msg("API rate limit exceeded"),
                ErrorKind::RateLimited,
                true,
                Some(30),
            ),
            (
                403,
                secondary.clone(),
                msg("You have exceeded a secondary rate limit"),
                ErrorKind::RateLimited,
                true,
                Some(17),
            ),
            (
                429,
                secondary,
                msg("You have exceeded a secondary rate limit"),
                ErrorKind::RateLimited,
                true,
                Some(17),
            ),
            (
                403,
                plenty.clone(),
                msg("You have exceeded a secondary rate limit. Please wait"),
                ErrorKind::RateLimited,
                true,
                Some(60),
            ),
            (
                403,
                plenty.clone(),
                msg("This team is synchronized with an identity provider group"),
                ErrorKind::PermissionDenied,
                false,
                None,
            ),
            (
                404,
                plenty.clone(),
                msg("Not Found"),
                ErrorKind::NotFound,
                false,
                None,
            ),
            (
                409,
                plenty.clone(),
                msg("Conflict"),
                ErrorKind::Conflict,
                false,
                None,
            ),
            (
                422,
                plenty.clone(),
                msg("Validation Failed"),
                ErrorKind::InvalidInput,
                false,
                None,
            ),
            (
                500,
                plenty.clone(),
                Value::Null,
                ErrorKind::Unexpected,
                true,
                None,
            ),
            (
                502,
                plenty.clone(),
                Value::Null,
                ErrorKind::Unavailable,
                true,
                None,
            ),
            (503, plenty, Value::Null, ErrorKind::Unavailable, true, None),
        ];
        for (status, headers, body, kind, retry, wait) in table {
            let e = classify(StatusCode::from_u16(status).unwrap(), &headers, Some(&body));
            assert_eq!(e.kind(), kind, "{status} {body}");
            assert_eq!(e.is_retryable(), retry, "{status} {body}");
            assert_eq!(
                e.retry_after(),
                wait.map(Duration::from_secs),
                "{status} {body}"
            );
            assert_eq!(e.connector(), KIND);
        }
    }
}
