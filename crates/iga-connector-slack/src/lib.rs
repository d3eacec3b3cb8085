#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod adapter;
#[cfg(feature = "test-support")]
pub mod mock;

pub use adapter::{SlackAdapter, SlackConfig};

/// Connector kind of this crate, as reported in [`iga_adapter::AdapterInfo`].
pub const KIND: &str = "slack";
