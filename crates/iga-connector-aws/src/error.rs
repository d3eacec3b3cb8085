//! The one place AWS errors are classified.
//!
//! IAM answers `<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code>
//! <Message>...</Message></Error><RequestId>...</RequestId></ErrorResponse>`; the
//! `Code` decides (the status is a fallback through [`iga_http::classify_status`]):
//!
//! | code | kind | retry |
//! |---|---|---|
//! | `NoSuchEntity` | `NotFound` | permanent (revoke/delete map it to no-ops) |
//! | `EntityAlreadyExists` | `AlreadyExists` | permanent (create links) |
//! | `LimitExceeded`, `DeleteConflict` | `Conflict` | permanent |
//! | `ConcurrentModification` | `Conflict` | temporary |
//! | `InvalidInput`, `ValidationError`, `MalformedPolicyDocument`, `InvalidAction`, `MissingParameter` | `InvalidInput` | permanent |
//! | `Throttling`, `ThrottlingException`, `RequestLimitExceeded` | `RateLimited` | temporary |
//! | `SignatureDoesNotMatch`, `InvalidClientTokenId`, `IncompleteSignature`, `MissingAuthenticationToken`, `RequestExpired`, `ExpiredToken` | `Unauthenticated` | permanent |
//! | `AccessDenied`, `AccessDeniedException` | `PermissionDenied` | permanent |
//! | `ServiceFailure`, `ServiceUnavailable`, `InternalFailure` | `Unavailable` | temporary |

use iga_adapter::{Error, ErrorKind};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::{KIND, xml};

/// Kind and retryability of an AWS error code (None = unknown code).
pub fn code_kind(code: &str) -> Option<(ErrorKind, bool)> {
    Some(match code {
        "NoSuchEntity" => (ErrorKind::NotFound, false),
        "EntityAlreadyExists" => (ErrorKind::AlreadyExists, false),
        "LimitExceeded" | "DeleteConflict" => (ErrorKind::Conflict, false),
        "ConcurrentModification" => (ErrorKind::Conflict, true),
        "InvalidInput"
        | "ValidationError"
        | "MalformedPolicyDocument"
        | "InvalidAction"
        | "MissingParameter" => (ErrorKind::InvalidInput, false),
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => {
            (ErrorKind::RateLimited, true)
        }
        "SignatureDoesNotMatch"
        | "InvalidClientTokenId"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "RequestExpired"
        | "ExpiredToken" => (ErrorKind::Unauthenticated, false),
        "AccessDenied" | "AccessDeniedException" => (ErrorKind::PermissionDenied, false),
        "ServiceFailure" | "ServiceUnavailable" | "InternalFailure" => {
            (ErrorKind::Unavailable, true)
        }
        _ => return None,
    })
}

/// Classify an IAM error response.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &str) -> Error {
    let parsed = xml::parse(body).ok();
    let code = parsed.as_ref().and_then(|n| n.text_at(&["Error", "Code"]));
    let message = parsed
        .as_ref()
        .and_then(|n| n.text_at(&["Error", "Message"]));
    let mut err = match code.as_deref().and_then(code_kind) {
        Some((kind, temporary)) => {
            let e = Error::new(
                kind,
                format!("HTTP {} {}", status.as_u16(), code.as_deref().unwrap_or("")),
            )
            .with_connector(KIND)
            .with_context("status", status.as_u16());
            if temporary {
                e.set_temporary(iga_http::retry_after(headers, std::time::SystemTime::now()))
            } else {
                e.set_permanent()
            }
        }
        None => iga_http::classify_status(KIND, status, headers, ""),
    };
    if let Some(c) = code {
        err = err.with_context("code", c);
    }
    if let Some(m) = message {
        let m = iga_http::redact_body_snippet(&m);
        if !m.is_empty() {
            err = err.with_context("detail", m);
        }
    }
    err
}

/// The AWS error code of a classified error, if any.
pub fn code_of(err: &Error) -> Option<&str> {
    err.context()
        .iter()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str) -> String {
        format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>m</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        )
    }

    #[test]
    fn classification_table() {
        let cases: &[(u16, &str, ErrorKind, bool)] = &[
            (404, "NoSuchEntity", ErrorKind::NotFound, false),
            (409, "EntityAlreadyExists", ErrorKind::AlreadyExists, false),
            (409, "LimitExceeded", ErrorKind::Conflict, false),
            (409, "DeleteConflict", ErrorKind::Conflict, false),
            (409, "ConcurrentModification", ErrorKind::Conflict, true),
            (400, "ValidationError", ErrorKind::InvalidInput, false),
            (400, "InvalidInput", ErrorKind::InvalidInput, false),
            (400, "Throttling", ErrorKind::RateLimited, true),
            (
                403,
                "SignatureDoesNotMatch",
                ErrorKind::Unauthenticated,
                false,
            ),
            (
                403,
                "InvalidClientTokenId",
                ErrorKind::Unauthenticated,
                false,
            ),
            (400, "RequestExpired", ErrorKind::Unauthenticated, false),
            (403, "AccessDenied", ErrorKind::PermissionDenied, false),
            (500, "ServiceFailure", ErrorKind::Unavailable, true),
            (503, "ServiceUnavailable", ErrorKind::Unavailable, true),
            (418, "SomethingNew", ErrorKind::InvalidInput, false),
        ];
        for (status, code, kind, retry) in cases {
            let e = classify(
                StatusCode::from_u16(*status).unwrap(),
                &HeaderMap::new(),
                &body(code),
            );
            assert_eq!(e.kind(), *kind, "{code}: {e}");
            assert_eq!(e.is_retryable(), *retry, "{code}");
            assert_eq!(code_of(&e), Some(*code));
        }
        let e = classify(StatusCode::BAD_GATEWAY, &HeaderMap::new(), "not xml");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
    }
}
