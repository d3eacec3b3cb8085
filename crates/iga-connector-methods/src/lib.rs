#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod linked;
mod multistep;

pub use linked::{LinkedAdapter, LinkedEntitlement};
pub use multistep::{MultiStepAdapter, StepRecord};

/// Connector kind of the linked-entitlement adapter.
pub const LINKED_KIND: &str = "linked";
/// Connector kind of the multi-step adapter.
pub const MULTISTEP_KIND: &str = "multistep";
