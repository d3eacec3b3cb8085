#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod adapter;
mod config;
pub mod error;
#[cfg(feature = "test-support")]
pub mod mock;
pub mod oauth;

pub use adapter::OktaAdapter;
pub use config::{OktaAuth, OktaConfig};
pub use oauth::OktaPrivateKeyJwt;

/// Connector kind of this crate, as reported in [`iga_adapter::AdapterInfo`] and errors.
pub const KIND: &str = "okta";
