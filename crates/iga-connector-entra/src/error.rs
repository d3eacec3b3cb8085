//! The one place Microsoft Graph errors are classified.
//!
//! Graph answers every failure with the envelope
//! `{"error":{"code":"…","message":"…","innerError":{…}}}` (protocols §1.1). [`GraphError`]
//! holds the status, code, message and the throttling headers; [`GraphError::to_error`]
//! maps it to an [`iga_adapter::Error`] and [`GraphError::no_op`] recognises the
//! responses that mean "already in the desired state" (protocols §0.2), which the
//! adapter turns into `Outcome::AlreadyInState` instead of an error.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use iga_adapter::{Error, ErrorKind, NoOpReason};
use serde_json::Value;

use crate::KIND;

/// Message of the 400 Graph returns when a `$ref` add finds the reference present.
pub const ALREADY_EXISTS_MSG: &str = "One or more added object references already exist for the following modified properties: 'members'.";
/// Message of the 400 for a duplicate app role assignment.
pub const APP_ROLE_EXISTS_MSG: &str = "Permission being assigned already exists on the object";
/// Message of the 400 for a duplicate userPrincipalName.
pub const UPN_TAKEN_MSG: &str =
    "Another object with the same value for property userPrincipalName already exists.";
/// Message of the 400 Graph returns right after a create (replication lag).
pub const NOT_REPLICATED_MSG: &str =
    "The source resource object or one of the objects being referenced do not exist.";

/// Which way an operation moves state; the same status means different things in
/// each direction (a 404 on remove is "already gone", on add it is a failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Grant / add / assign.
    Add,
    /// Revoke / remove.
    Remove,
    /// Anything else (create, update, read).
    Other,
}

/// A Graph error response.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphError {
    /// HTTP status.
    pub status: u16,
    /// `error.code` (empty when the body had none).
    pub code: String,
    /// `error.message`, truncated and scrubbed of anything that looks secret.
    pub message: String,
    /// `Retry-After`, when sent.
    pub retry_after: Option<Duration>,
    /// `x-ms-throttle-scope`, when sent.
    pub throttle_scope: Option<String>,
    /// `x-ms-throttle-information`, when sent.
    pub throttle_information: Option<String>,
    /// `innerError.request-id`, when sent.
    pub request_id: Option<String>,
}

impl GraphError {
    /// Parse a status, headers and JSON body (None or non-JSON bodies are fine).
    pub fn new(status: u16, headers: &HeaderMap, body: Option<&Value>) -> Self {
        let err = body.and_then(|b| b.get("error"));
        let s = |k: &str| {
            err.and_then(|e| e.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let h = |k: &str| {
            headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Self {
            status,
            code: s("code"),
            message: iga_http::redact_body_snippet(&s("message")),
            retry_after: iga_http::retry_after(headers, SystemTime::now()),
            throttle_scope: h("x-ms-throttle-scope"),
            throttle_information: h("x-ms-throttle-information"),
            request_id: err
                .and_then(|e| e.get("innerError"))
                .and_then(|i| i.get("request-id"))
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }

    /// From a `$batch` inner response (`status`, `headers` object, `body`).
    pub fn from_inner(status: u16, headers: Option<&Value>, body: Option<&Value>) -> Self {
        let mut h = HeaderMap::new();
        if let Some(Value::Object(m)) = headers {
            for (k, v) in m {
                if let (Ok(name), Some(val)) = (
                    http::HeaderName::from_bytes(k.as_bytes()),
                    v.as_str().and_then(|s| http::HeaderValue::from_str(s).ok()),
                ) {
                    h.insert(name, val);
                }
            }
        }
        Self::new(status, &h, body)
    }

    fn msg_has(&self, needle: &str) -> bool {
        self.message
            .to_ascii_lowercase()
            .contains(&needle.to_ascii_lowercase())
    }

    /// Whether this response means the desired state already holds, and why.
    ///
    /// - add: 400 "…added object references already exist…" (group/AU members and
    ///   owners), 400 "Permission being assigned already exists" (app roles), 400
    ///   `RoleAssignmentExists` (PIM, directory roles) → `AlreadyGranted`;
    /// - remove: 404 `Request_ResourceNotFound` on a `$ref` delete, 400/404
    ///   `RoleAssignmentDoesNotExist` → `AlreadyAbsent` (callers of a `$ref` delete
    ///   must check the container exists before trusting a 404).
    pub fn no_op(&self, dir: Direction) -> Option<NoOpReason> {
        match dir {
            Direction::Add => {
                let exists = (self.status == 400
                    && (self.msg_has("added object references already exist")
                        || self.msg_has(APP_ROLE_EXISTS_MSG)))
                    || self.code == "RoleAssignmentExists";
                exists.then_some(NoOpReason::AlreadyGranted)
            }
            Direction::Remove => {
                let absent = (self.status == 404 && self.code == "Request_ResourceNotFound")
                    || self.code == "RoleAssignmentDoesNotExist";
                absent.then_some(NoOpReason::AlreadyAbsent)
            }
            Direction::Other => None,
        }
    }

    /// Whether the service asks for a full delta resync (410 Gone or an expired
    /// `syncStateNotFound` token).
    pub fn needs_resync(&self) -> bool {
        self.status == 410 || self.code.eq_ignore_ascii_case("syncStateNotFound")
    }

    /// Classify into the adapter error (see the README error table).
    pub fn to_error(&self) -> Error {
        use ErrorKind::*;
        let code = self.code.as_str();
        let (kind, temporary) = match (self.status, code) {
            (_, "TooManyRequests" | "activityLimitReached") | (429, _) => (RateLimited, true),
            (_, "serviceNotAvailable") | (503, _) => (Unavailable, true),
            (504, _) | (_, "timeout") => (Timeout, true),
            (424, _) => (Conflict, true),
            (_, "InvalidAuthenticationToken" | "Authentication_ExpiredToken") | (401, _) => {
                (Unauthenticated, false)
            }
            (_, "Authorization_RequestDenied" | "Forbidden" | "accessDenied") | (403, _) => {
                (PermissionDenied, false)
            }
            (_, "RoleAssignmentExists") => (AlreadyExists, false),
            (_, "RoleAssignmentDoesNotExist") => (NotFound, false),
            (_, "syncStateNotFound") | (410, _) => (Conflict, false),
            (400, "Request_BadRequest") if self.msg_has("already exist") => (AlreadyExists, false),
            (400, "Request_BadRequest")
                if self.msg_has("objects being referenced do not exist") =>
            {
                // Replication lag right after a create (protocols §1.1): retry shortly.
                (NotFound, true)
            }
            (_, "Request_ResourceNotFound" | "ResourceNotFound") | (404, _) => (NotFound, false),
            (_, "Request_UnsupportedQuery" | "BadRequest" | "invalidRequest")
            | (400 | 405 | 413 | 415, _) => (InvalidInput, false),
            (409 | 412, _) => (Conflict, false),
            (501, _) => (Unsupported, false),
            (500 | 502, _) | (_, "generalException" | "UnknownError") => (Unavailable, true),
            _ => (Unexpected, false),
        };
        let mut e = Error::new(
            kind,
            if self.code.is_empty() {
                format!("Graph answered HTTP {}", self.status)
            } else {
                format!("Graph answered HTTP {} {}", self.status, self.code)
            },
        )
        .with_connector(KIND)
        .with_context("status", self.status);
        e = if temporary {
            e.set_temporary(self.retry_after)
        } else {
            e.set_permanent()
        };
        if !self.code.is_empty() {
            e = e.with_context("code", &self.code);
        }
        if !self.message.is_empty() {
            e = e.with_context("message", &self.message);
        }
        if let Some(s) = &self.throttle_scope {
            e = e.with_context("throttle_scope", s);
        }
        if let Some(s) = &self.throttle_information {
            e = e.with_context("throttle_information", s);
        }
        if let Some(r) = &self.request_id {
            e = e.with_context("request_id", r);
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ge(status: u16, code: &str, message: &str) -> GraphError {
        GraphError::new(
            status,
            &HeaderMap::new(),
            Some(&json!({"error": {"code": code, "message": message,
                "innerError": {"request-id": "r-1", "date": "2025-02-13T10:17:06"}}})),
        )
    }

    /// Every Graph error code protocols.md §1 lists, plus the status-only cases.
    #[test]
    fn classification_table() {
        use ErrorKind::*;
        let table: &[(u16, &str, &str, ErrorKind, bool)] = &[
            (
                400,
                "Request_BadRequest",
                "Invalid value",
                InvalidInput,
                false,
            ),
            (
                400,
                "Request_BadRequest",
                ALREADY_EXISTS_MSG,
                AlreadyExists,
                false,
            ),
            (
                400,
                "Request_BadRequest",
                UPN_TAKEN_MSG,
                AlreadyExists,
                false,
            ),
            (
                400,
                "Request_BadRequest",
                NOT_REPLICATED_MSG,
                NotFound,
                true,
            ),
            (
                400,
                "Request_BadRequest",
                APP_ROLE_EXISTS_MSG,
                AlreadyExists,
                false,
            ),
            (
                404,
                "Request_ResourceNotFound",
                "Resource 'x' does not exist",
                NotFound,
                false,
            ),
            (429, "TooManyRequests", "throttled", RateLimited, true),
            (
                400,
                "RoleAssignmentExists",
                "The Role assignment already exists.",
                AlreadyExists,
                false,
            ),
            (
                400,
                "RoleAssignmentDoesNotExist",
                "The Role assignment does not exist.",
                NotFound,
                false,
            ),
            (
                400,
                "syncStateNotFound",
                "sync state generation is not found",
                Conflict,
                false,
            ),
            (410, "", "", Conflict, false),
            (424, "", "Failed Dependency", Conflict, true),
            (
                400,
                "Request_UnsupportedQuery",
                "Unsupported query.",
                InvalidInput,
                false,
            ),
            (
                401,
                "InvalidAuthenticationToken",
                "Access token has expired",
                Unauthenticated,
                false,
            ),
            (
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges",
                PermissionDenied,
                false,
            ),
            (503, "serviceNotAvailable", "busy", Unavailable, true),
            (500, "generalException", "boom", Unavailable, true),
            (504, "", "", Timeout, true),
            (409, "", "", Conflict, false),
            (412, "", "", Conflict, false),
            (501, "", "", Unsupported, false),
            (418, "", "", Unexpected, false),
        ];
        for (status, code, msg, kind, retry) in table {
            let e = ge(*status, code, msg).to_error();
            assert_eq!(e.kind(), *kind, "{status} {code} {msg}");
            assert_eq!(e.is_retryable(), *retry, "{status} {code} {msg}");
            assert_eq!(e.connector(), KIND);
            if !code.is_empty() {
                assert!(e.context().iter().any(|(k, v)| k == "code" && v == code));
                assert!(
                    e.context()
                        .iter()
                        .any(|(k, v)| k == "request_id" && v == "r-1")
                );
            }
        }
    }

    #[test]
    fn already_in_state_is_direction_sensitive() {
        let add_dup = ge(400, "Request_BadRequest", ALREADY_EXISTS_MSG);
        assert_eq!(
            add_dup.no_op(Direction::Add),
            Some(NoOpReason::AlreadyGranted)
        );
        assert_eq!(add_dup.no_op(Direction::Remove), None);
        let gone = ge(404, "Request_ResourceNotFound", "does not exist");
        assert_eq!(
            gone.no_op(Direction::Remove),
            Some(NoOpReason::AlreadyAbsent)
        );
        assert_eq!(gone.no_op(Direction::Add), None, "404 on add is a failure");
        let pim = ge(400, "RoleAssignmentExists", "x");
        assert_eq!(pim.no_op(Direction::Add), Some(NoOpReason::AlreadyGranted));
        let pim = ge(400, "RoleAssignmentDoesNotExist", "x");
        assert_eq!(
            pim.no_op(Direction::Remove),
            Some(NoOpReason::AlreadyAbsent)
        );
        let app = ge(400, "Request_BadRequest", APP_ROLE_EXISTS_MSG);
        assert_eq!(app.no_op(Direction::Add), Some(NoOpReason::AlreadyGranted));
        let other = ge(400, "Request_BadRequest", "Invalid value");
        assert_eq!(other.no_op(Direction::Add), None);
        assert_eq!(other.no_op(Direction::Other), None);
    }

    #[test]
    fn throttle_headers_are_surfaced() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        h.insert(
            "x-ms-throttle-scope",
            "Tenant_Application/ReadWrite/app/tenant".parse().unwrap(),
        );
        h.insert(
            "x-ms-throttle-information",
            "ResourceUnitLimitExceeded".parse().unwrap(),
        );
        let g = GraphError::new(
            429,
            &h,
            Some(&json!({"error":{"code":"TooManyRequests","message":"m"}})),
        );
        let e = g.to_error();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(
            e.context()
                .iter()
                .any(|(k, v)| k == "throttle_information" && v == "ResourceUnitLimitExceeded")
        );
        assert!(e.context().iter().any(|(k, _)| k == "throttle_scope"));
        let inner = GraphError::from_inner(
            429,
            Some(&json!({"Retry-After": "3", "Content-Type": "application/json"})),
            Some(&json!({"error":{"code":"TooManyRequests","message":"m"}})),
        );
        assert_eq!(inner.retry_after, Some(Duration::from_secs(3)));
        assert!(GraphError::new(410, &HeaderMap::new(), None).needs_resync());
        assert!(ge(400, "syncStateNotFound", "x").needs_resync());
    }
}
