use thiserror::Error;

/// Why a compact JWS was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum JwsError {
    /// The token is not three base64url segments, or a segment does not decode.
    #[error("malformed JWS: {0}")]
    Malformed(String),
    /// The protected header is not acceptable (duplicate member, `none`, `crit`, ...).
    #[error("unacceptable JWS header: {0}")]
    Header(String),
    /// The header names no `kid`.
    #[error("JWS header has no `kid`; receipts are always signed with a kid")]
    MissingKid,
    /// The `kid` is not in the key ring.
    #[error("unknown key id `{0}` (not in the key ring / JWKS)")]
    UnknownKid(String),
    /// The header `alg` does not match the key the `kid` selects (algorithm pinning).
    #[error("key `{kid}` is a {key_type} key and does not accept alg `{alg}`")]
    AlgorithmMismatch {
        /// Key id.
        kid: String,
        /// The algorithm in the header.
        alg: String,
        /// The key type of the selected key.
        key_type: &'static str,
    },
    /// The signature does not verify with the selected key.
    #[error("signature does not verify with key `{kid}`")]
    BadSignature {
        /// Key id.
        kid: String,
    },
}

/// Errors of building, signing, loading and importing receipts.
///
/// Messages name the place (key file path, chain id, JSON-lines line number, field) and
/// never contain key material.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// A key could not be loaded, generated or used.
    #[error("key {context}: {reason}")]
    Key {
        /// Where the key came from (file path, `PKCS#8 DER`, `JWK`, ...).
        context: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key file could not be read.
    #[error("key file {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A JWS could not be produced or parsed.
    #[error(transparent)]
    Jws(#[from] JwsError),
    /// A value cannot be put in canonical JSON, or a receipt field is invalid.
    #[error("{context}: {reason}")]
    Invalid {
        /// Which value or field.
        context: String,
        /// What is wrong.
        reason: String,
    },
    /// A receipt does not fit the chain it is being appended to.
    #[error("chain {chain_id}: {reason}")]
    Chain {
        /// Chain id.
        chain_id: String,
        /// What does not fit.
        reason: String,
    },
    /// A JSON-lines import failed.
    #[error("{source_name} line {line}: {reason}")]
    Import {
        /// Name of the input (file name or `<input>`).
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },
}
