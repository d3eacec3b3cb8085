#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod adapter;
pub mod config;
pub mod error;
pub mod escape;
pub mod mapping;
mod pool;
#[cfg(feature = "test-support")]
pub mod testing;

pub use adapter::LdapAdapter;
pub use config::{Dialect, DisableMode, GroupModel, LdapConfig, TlsConfig};

/// Connector kind reported in [`iga_adapter::AdapterInfo`] and errors.
pub const KIND: &str = "ldap";
