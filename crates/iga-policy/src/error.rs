use thiserror::Error;

/// A policy error. Load errors name the rule (or system) and the field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The YAML document does not parse.
    #[error("rules document: {0}")]
    Yaml(String),
    /// A rule or system entry is invalid.
    #[error("{place}: field `{field}`: {reason}")]
    Invalid {
        /// `rule finance-nyc` or `system ldap`.
        place: String,
        /// The field (`when`, `grants[0].system`, `account.attributes.uid`).
        field: String,
        /// Why.
        reason: String,
    },
    /// A condition expression does not parse.
    #[error("condition at column {column}: {reason}")]
    Condition {
        /// 1-based column in the expression.
        column: usize,
        /// Why.
        reason: String,
    },
    /// An account attribute could not be produced for an identity.
    #[error("identity {identity}: system {system}: attribute `{attribute}`: {reason}")]
    Mapping {
        /// Identity id.
        identity: String,
        /// System.
        system: String,
        /// Account attribute.
        attribute: String,
        /// Why.
        reason: String,
    },
    /// A directive could not be built.
    #[error("identity {identity}: {reason}")]
    Directive {
        /// Identity id.
        identity: String,
        /// Why.
        reason: String,
    },
}
