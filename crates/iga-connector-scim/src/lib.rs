#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod adapter;
mod bulk;
mod client;
mod config;
pub mod error;
mod mapping;

pub use adapter::{ScimAdapter, ScimStats, ServerFeatures};
pub use config::{ScimAuth, ScimConfig};

/// Connector kind of this crate, as reported in [`iga_adapter::AdapterInfo`] and errors.
pub const KIND: &str = "scim";
