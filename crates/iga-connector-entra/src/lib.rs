#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod adapter;
pub mod auth;
mod batch;
mod client;
pub mod commands;
pub mod config;
pub mod delta;
pub mod error;
mod grants;
pub mod target;

#[cfg(feature = "test-support")]
pub mod mock;

pub use adapter::{EntraAdapter, EntraStats};
pub use client::ThrottleState;
pub use config::{Credential, EntraConfig, NationalCloud};
pub use delta::{DeltaChange, DeltaKind, DeltaSync, Removed};
pub use grants::{PimExpiration, PimRequest, PimResponse, PimSurface};
pub use target::{CaList, PimScope, Target};

/// Connector kind of this crate, as reported in [`iga_adapter::AdapterInfo`] and errors.
pub const KIND: &str = "entra";
