#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod adapter;
mod auth;
mod client;
mod config;
pub mod error;
#[cfg(feature = "test-support")]
pub mod mock;
pub mod multipart;

pub use adapter::{GoogleAdapter, GoogleStats};
pub use config::{GoogleConfig, ServiceAccountKey};

/// Connector kind of this crate, as reported in [`iga_adapter::AdapterInfo`] and errors.
pub const KIND: &str = "google";

/// Most calls one HTTP batch request may carry (Google "Sending batch requests": 1000).
pub const BATCH_LIMIT: usize = 1000;

/// OAuth scopes the connector asks for (users and group members).
pub const SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/admin.directory.user",
    "https://www.googleapis.com/auth/admin.directory.group.member",
];
