//! Strict base64url without padding (RFC 7515 §2).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encode bytes as base64url without padding.
pub fn b64url_encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decode strict base64url without padding: `=`, whitespace, characters outside the
/// URL-safe alphabet and non-canonical trailing bits are rejected.
pub fn b64url_decode(s: &str) -> Result<Vec<u8>, String> {
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "character {c:?} is not in the base64url alphabet (padding and whitespace are not allowed)"
        ));
    }
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|e| format!("invalid base64url: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_decoding() {
        assert_eq!(b64url_decode("JC4wMg").unwrap(), b"$.02");
        assert_eq!(b64url_encode(b"$.02"), "JC4wMg");
        assert!(b64url_decode("JC4wMg==").is_err());
        assert!(b64url_decode("JC4w Mg").is_err());
        assert!(b64url_decode("JC4w+g").is_err());
        assert!(b64url_decode("JC4w/g").is_err());
        // non-canonical trailing bits (last char of a 2-byte group must have low bits 0)
        assert!(b64url_decode("JC4wMh").is_err());
    }
}
