//! Birthright rules and joiner / mover / leaver (JML) diffing.
//!
//! - [`RuleSet`] loads birthright rules from YAML (`serde_norway`): a condition on
//!   identity attributes ([`Condition`], e.g. `department == "Finance" and location in
//!   ["NYC", "LON"]`) grants entitlements on systems; per system an account template
//!   ([`AccountTemplate`]) maps canonical attributes to account attributes with
//!   transforms and unique-username generation. Everything is validated at load and
//!   errors name the rule and the field.
//! - [`Lifecycle`] turns an identity's previous snapshot and its new attributes into
//!   the exact directive set of the event: joiner, mover, leaver, rehire, with
//!   future-dated events carried by `AccessDirective::not_before`.
//! - [`canonical`] normalises raw HR records (full-name splitting, missing fields,
//!   non-ASCII names) into [`iga_directive::Identity`].
//!
//! No I/O: the HR source crate feeds it and persists the snapshots.

mod error;
mod expr;
mod jml;
mod rules;
mod template;

pub mod canonical;

pub use error::PolicyError;
pub use expr::{Condition, attribute_value};
pub use jml::{
    EventKind, HeldGrant, IdentitySnapshot, Lifecycle, LifecyclePolicy, ScheduledDirective,
    Transition,
};
pub use rules::{BirthrightGrant, Rule, RuleSet, SystemConfig};
pub use template::{AccountTemplate, AttributeSpec, Transform, UsernameRegistry};

/// Result alias of this crate.
pub type Result<T, E = PolicyError> = std::result::Result<T, E>;
