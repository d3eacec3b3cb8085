//! The one error type at the adapter boundary.
//!
//! Every connector converts its native failures into [`Error`] in exactly one place
//! (its `error.rs`, backed by a table test). Engines decide what to do from
//! [`Error::kind`] and [`Error::retry`] only — never by parsing messages.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::redact;

/// What went wrong, independent of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The account, entitlement or object does not exist.
    NotFound,
    /// The object already exists and could not be linked (create conflict that is not
    /// the same identity).
    AlreadyExists,
    /// A concurrent modification or precondition failure (ETag mismatch, 409, 412).
    Conflict,
    /// The request was malformed or violated the target's rules.
    InvalidInput,
    /// The target rejected an attribute or value by schema.
    SchemaViolation,
    /// Authenticated, but not allowed.
    PermissionDenied,
    /// Credentials missing, wrong or expired.
    Unauthenticated,
    /// The adapter does not support this operation or entitlement kind.
    Unsupported,
    /// Throttled by the target (429 or vendor equivalent).
    RateLimited,
    /// The target is temporarily unavailable (503, connection refused, LDAP busy).
    Unavailable,
    /// The call did not answer in time. The change may or may not have happened.
    Timeout,
    /// The adapter's configuration is invalid.
    ConfigInvalid,
    /// Anything else.
    Unexpected,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 13] = [
        Self::NotFound,
        Self::AlreadyExists,
        Self::Conflict,
        Self::InvalidInput,
        Self::SchemaViolation,
        Self::PermissionDenied,
        Self::Unauthenticated,
        Self::Unsupported,
        Self::RateLimited,
        Self::Unavailable,
        Self::Timeout,
        Self::ConfigInvalid,
        Self::Unexpected,
    ];

    /// Canonical snake_case name (what job attempt records store).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::Conflict => "conflict",
            Self::InvalidInput => "invalid_input",
            Self::SchemaViolation => "schema_violation",
            Self::PermissionDenied => "permission_denied",
            Self::Unauthenticated => "unauthenticated",
            Self::Unsupported => "unsupported",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::ConfigInvalid => "config_invalid",
            Self::Unexpected => "unexpected",
        }
    }

    /// Parse the canonical name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The retry status a fresh error of this kind gets: `RateLimited`, `Unavailable`
    /// and `Timeout` are temporary, everything else permanent.
    pub fn default_retry(self) -> RetryStatus {
        match self {
            Self::RateLimited | Self::Unavailable | Self::Timeout => {
                RetryStatus::Temporary { retry_after: None }
            }
            _ => RetryStatus::Permanent,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryStatus {
    /// Retrying will not help.
    Permanent,
    /// Retrying may help, after `retry_after` when the target said so.
    Temporary {
        /// The target's requested wait (Retry-After), if any.
        retry_after: Option<Duration>,
    },
    /// It was temporary, but a retry layer already used up its attempts: nobody
    /// above should retry it again within this pass.
    Exhausted {
        /// How many attempts were made.
        attempts: u32,
    },
}

/// The adapter-boundary error: kind + retry status + redacted context.
///
/// `Display` prints `connector: kind: message (k=v, ...)`. Context values whose key
/// looks sensitive (`password`, `token`, `secret`, `authorization`, `cookie`, `key`)
/// are replaced by `***` when added, so neither `Display` nor `Debug` can leak them.
#[derive(Clone)]
pub struct Error(Box<ErrorInner>);

#[derive(Clone)]
struct ErrorInner {
    kind: ErrorKind,
    retry: RetryStatus,
    connector: Cow<'static, str>,
    operation: Option<Cow<'static, str>>,
    message: String,
    context: Vec<(String, String)>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with the adapter [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error; the retry status defaults from the kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self(Box::new(ErrorInner {
            kind,
            retry: kind.default_retry(),
            connector: Cow::Borrowed(""),
            operation: None,
            message: message.into(),
            context: Vec::new(),
            source: None,
        }))
    }

    /// Shorthand for an `Unsupported` error.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// Shorthand for a `NotFound` error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for an `InvalidInput` error.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for a `RateLimited` error with the target's requested wait.
    pub fn rate_limited(retry_after: Option<Duration>) -> Self {
        Self::new(ErrorKind::RateLimited, "throttled by target").set_temporary(retry_after)
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The retry status.
    pub fn retry(&self) -> RetryStatus {
        self.0.retry
    }

    /// True when the status is `Temporary` (not `Permanent`, not `Exhausted`).
    pub fn is_retryable(&self) -> bool {
        matches!(self.0.retry, RetryStatus::Temporary { .. })
    }

    /// The target's requested wait, when temporary and given.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.0.retry {
            RetryStatus::Temporary { retry_after } => retry_after,
            _ => None,
        }
    }

    /// The connector kind that produced the error (`ldap`, `scim`, `memory`, ...).
    pub fn connector(&self) -> &str {
        &self.0.connector
    }

    /// The operation or call during which it happened.
    pub fn operation(&self) -> Option<&str> {
        self.0.operation.as_deref()
    }

    /// The message (already redacted by construction).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Key/value context (sensitive values already redacted).
    pub fn context(&self) -> &[(String, String)] {
        &self.0.context
    }

    /// Set the connector kind.
    pub fn with_connector(mut self, connector: impl Into<Cow<'static, str>>) -> Self {
        self.0.connector = connector.into();
        self
    }

    /// Set the operation or call name.
    pub fn with_operation(mut self, op: impl Into<Cow<'static, str>>) -> Self {
        self.0.operation = Some(op.into());
        self
    }

    /// Add context. A value under a sensitive-looking key is stored as `***`.
    pub fn with_context(mut self, key: impl Into<String>, value: impl fmt::Display) -> Self {
        let key = key.into();
        let value = if redact::is_sensitive_key(&key) {
            redact::MASK.to_string()
        } else {
            value.to_string()
        };
        self.0.context.push((key, value));
        self
    }

    /// Attach the underlying error. Connectors must only attach sources whose
    /// `Display` carries no secret (redact URLs and headers first).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.0.source = Some(Arc::new(source));
        self
    }

    /// Mark temporary (with an optional wait).
    pub fn set_temporary(mut self, retry_after: Option<Duration>) -> Self {
        self.0.retry = RetryStatus::Temporary { retry_after };
        self
    }

    /// Mark permanent.
    pub fn set_permanent(mut self) -> Self {
        self.0.retry = RetryStatus::Permanent;
        self
    }

    /// Mark exhausted after `attempts` tries.
    pub fn set_exhausted(mut self, attempts: u32) -> Self {
        self.0.retry = RetryStatus::Exhausted { attempts };
        self
    }

    /// A one-line summary for attempt records: `kind: message`.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.0.kind, self.0.message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.connector.is_empty() {
            write!(f, "{}: ", self.0.connector)?;
        }
        write!(f, "{}: {}", self.0.kind, self.0.message)?;
        if let Some(op) = &self.0.operation {
            write!(f, " [during {op}]")?;
        }
        if !self.0.context.is_empty() {
            f.write_str(" (")?;
            for (i, (k, v)) in self.0.context.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{k}={v}")?;
            }
            f.write_str(")")?;
        }
        match self.0.retry {
            RetryStatus::Permanent => {}
            RetryStatus::Temporary {
                retry_after: Some(d),
            } => write!(f, " [temporary, retry after {}ms]", d.as_millis())?,
            RetryStatus::Temporary { retry_after: None } => f.write_str(" [temporary]")?,
            RetryStatus::Exhausted { attempts } => {
                write!(f, " [retries exhausted after {attempts} attempts]")?
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("retry", &self.0.retry)
            .field("connector", &self.0.connector)
            .field("operation", &self.0.operation)
            .field("message", &self.0.message)
            .field("context", &self.0.context)
            .field("source", &self.0.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_retry_follows_kind() {
        for k in ErrorKind::ALL {
            let e = Error::new(k, "x");
            let temp = matches!(
                k,
                ErrorKind::RateLimited | ErrorKind::Unavailable | ErrorKind::Timeout
            );
            assert_eq!(e.is_retryable(), temp, "{k}");
            assert_eq!(ErrorKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn retry_status_transitions() {
        let e = Error::rate_limited(Some(Duration::from_secs(3)));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        let e = e.set_exhausted(5);
        assert!(!e.is_retryable());
        assert_eq!(e.retry_after(), None);
        assert!(e.to_string().contains("exhausted after 5"), "{e}");
        let e = Error::new(ErrorKind::Conflict, "etag").set_temporary(None);
        assert!(e.is_retryable());
    }

    #[test]
    fn sensitive_context_is_masked_in_display_and_debug() {
        let e = Error::new(ErrorKind::Unauthenticated, "bad credentials")
            .with_connector("scim")
            .with_operation("check")
            .with_context("client_secret", "hunter2-canary")
            .with_context("Authorization", "Bearer abc.def")
            .with_context("status", 401);
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("hunter2-canary"), "{shown}");
        assert!(!shown.contains("abc.def"), "{shown}");
        assert!(shown.contains("status=401"));
        assert!(
            shown.starts_with("scim: unauthenticated: bad credentials [during check]"),
            "{shown}"
        );
    }
}
