//! Secret handling: a [`Secret`] string type that never prints, and helpers that
//! decide which keys, headers and URL parameters are sensitive.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// What a redacted value is replaced with.
pub const MASK: &str = "***";

const SENSITIVE: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "apikey",
    "api_key",
    "api-key",
    "private",
    "credential",
    "signature",
    "sig",
    "key",
];

/// Whether a key (context key, header name, query parameter, config field) names
/// something that must never be shown. Case-insensitive, matches substrings such as
/// `client_secret`, `X-Api-Key`, `access_token`, `Set-Cookie`.
pub fn is_sensitive_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    // `key` alone would also match harmless words like `keycloak`; require it to be a
    // whole segment.
    SENSITIVE.iter().any(|s| {
        if *s == "key" || *s == "sig" {
            k.split(|c: char| !c.is_ascii_alphanumeric())
                .any(|seg| seg == *s)
        } else {
            k.contains(s)
        }
    })
}

/// A secret string (password, client secret, token, private key). `Debug` and
/// `Display` print `***`; it cannot be serialized; read it with
/// [`Secret::expose`] only where it is sent to the target.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret value. Call only to put it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({MASK})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// Replace every occurrence of each secret in `text` with [`MASK`]. A last line of
/// defence for messages built from target responses that may echo a credential.
pub fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.0.len() >= 4 {
            out = out.replace(&s.0, MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_keys() {
        for k in [
            "password",
            "client_secret",
            "Authorization",
            "X-Api-Key",
            "access_token",
            "Set-Cookie",
            "sig",
            "private_key",
            "bind_password",
        ] {
            assert!(is_sensitive_key(k), "{k}");
        }
        for k in [
            "status",
            "keycloak_realm",
            "user",
            "group",
            "design",
            "monkey",
        ] {
            assert!(!is_sensitive_key(k), "{k}");
        }
    }

    #[test]
    fn secret_never_prints() {
        let s: Secret = serde_json::from_str("\"s3cr3t-canary\"").unwrap();
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.expose(), "s3cr3t-canary");
        assert_eq!(scrub("token=s3cr3t-canary!", &[&s]), "token=***!");
    }
}
