//! # iga-directive — the data model of iga-connectors
//!
//! Everything that crosses a crate boundary or is persisted lives here: who
//! ([`Identity`]), what ([`EntitlementRef`]), why ([`GrantSource`], [`ApprovalRef`]),
//! the intended change ([`AccessDirective`]), what an adapter executes ([`Operation`]),
//! and the durable state of one directive's fulfilment ([`FulfillmentJob`], [`JobState`]).
//!
//! This crate does **no I/O**. Serialized directives are a compatibility boundary:
//! every [`AccessDirective`] carries a `schema_version`, and
//! [`AccessDirective::from_json`] upgrades older versions (see `docs/directive-schema.md`).
//!
//! ```
//! use iga_directive::*;
//! let d = AccessDirective::builder("acme", "entra", Identity::person("alice"), Action::Grant)
//!     .entitlement(EntitlementRef::group("Finance-Readers"))
//!     .source(GrantSource::request("servicenow", "RITM0010001"))
//!     .approval(ApprovalRef::new("servicenow", "RITM0010001").approver("carol"))
//!     .build()
//!     .unwrap();
//! let ops = d.operations(ExpandOptions::default());
//! assert_eq!(ops.len(), 1);
//! assert_eq!(ops[0].kind, OperationKind::Grant);
//! ```
#![deny(missing_docs)]

mod clock;
mod directive;
mod entitlement;
mod error;
mod identity;
mod job;
mod operation;
mod source;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use directive::{
    AccessDirective, Action, DirectiveBuilder, DirectiveId, ExpandOptions, SCHEMA_VERSION,
};
pub use entitlement::{EntitlementKind, EntitlementRef};
pub use error::ModelError;
pub use identity::{Identity, IdentityKind, IdentityStatus};
pub use job::{AttemptRecord, FulfillmentJob, JobState, JobStateName, TransitionError};
pub use operation::{Operation, OperationId, OperationKind};
pub use source::{ApprovalRef, GrantSource, GrantSourceKind};

/// Timestamps everywhere in the model are UTC.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
