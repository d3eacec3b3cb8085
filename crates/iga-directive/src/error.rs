use thiserror::Error;

/// A model-level validation or decoding error. Always names the field (or JSON path)
/// at fault so a caller can point the user at the place.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A required field is missing or empty.
    #[error("{field}: required for {context}")]
    Missing {
        /// The field name (dotted path).
        field: &'static str,
        /// What required it.
        context: String,
    },
    /// A field has a value that is not allowed.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field name (dotted path).
        field: String,
        /// Why the value is rejected.
        reason: String,
    },
    /// The JSON document could not be decoded.
    #[error("invalid directive JSON: {0}")]
    Json(String),
    /// The document's `schema_version` is newer than this library understands.
    #[error("schema_version {found} is newer than supported version {supported}")]
    UnsupportedSchema {
        /// Version found in the document.
        found: u64,
        /// Highest version this build decodes.
        supported: u32,
    },
}
