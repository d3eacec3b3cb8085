//! # iga-adapter — where every connector and every engine meet
//!
//! - [`ProvisioningAdapter`]: the operation-centric, object-safe trait every target
//!   connector implements (LDAP, SCIM, Microsoft Graph, flat files, tickets, ...).
//!   Read its per-method **Contract** sections before writing a connector.
//! - [`ProvisioningAdapterExt`]: typed conveniences (`create_user`, `add_to_group`,
//!   `get_user_groups`, ...) for every adapter.
//! - [`Error`] / [`ErrorKind`] / [`RetryStatus`]: the one error type, classified once
//!   per connector.
//! - [`Capabilities`]: what an adapter supports, as data.
//! - [`DirectiveSource`]: the trait approval systems and HR feeds implement.
//! - [`MemoryAdapter`]: the in-memory (and file-backed) reference target, with latency,
//!   concurrency caps and fault injection for tests and benchmarks.
//!
//! ```
//! use iga_adapter::{MemoryAdapter, ProvisioningAdapterExt, Outcome, NoOpReason};
//! use iga_directive::{EntitlementRef, Identity};
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let target = MemoryAdapter::new("corp");
//! target.seed_entitlement(&EntitlementRef::group("Finance-Readers"));
//! let alice = Identity::person("alice").with_email("alice@corp.test");
//! target.create_user(&alice, Default::default()).await.unwrap();
//! let first = target.add_to_group(&alice, "Finance-Readers").await.unwrap();
//! let again = target.add_to_group(&alice, "Finance-Readers").await.unwrap();
//! assert!(first.changed());
//! assert_eq!(again, Outcome::AlreadyInState {
//!     reason: NoOpReason::AlreadyGranted,
//!     native_id: first.native_id().map(str::to_string),
//! });
//! # });
//! ```
#![deny(missing_docs)]

mod adapter;
pub mod batch;
mod error;
mod ext;
pub mod memory;
pub mod redact;
mod source;
mod types;

pub use adapter::ProvisioningAdapter;
pub use error::{Error, ErrorKind, Result, RetryStatus};
pub use ext::ProvisioningAdapterExt;
pub use memory::{Fault, FaultConfig, MemoryAdapter, MemoryConfig, MemoryStats, Mutation};
pub use redact::Secret;
pub use source::{
    DirectiveSink, DirectiveSource, FulfillmentReport, MemorySource, PollBatch, RejectedInput,
    SourceCursor, SourceMode,
};
pub use types::{
    Account, AccountRef, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo,
    NoOpReason, ObjectRef, Observed, Outcome, Page, PageRequest, bad_cursor,
};

/// Re-export of the model crate, so an embedder can depend on `iga-adapter` alone.
pub use iga_directive as model;
