#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod adapter;
mod config;
pub mod error;
#[cfg(feature = "test-support")]
pub mod mock;

pub use adapter::OktaAdapter;
pub use config::{OktaAuth, OktaConfig};

/// Connector kind of this crate, as reported in [`iga_adapter::AdapterInfo`] and errors.
pub const KIND: &str = "okta";
