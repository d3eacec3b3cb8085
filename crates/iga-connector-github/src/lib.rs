#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod adapter;
pub mod app_auth;
mod config;
pub mod error;
#[cfg(feature = "test-support")]
pub mod mock;

pub use adapter::GithubAdapter;
pub use app_auth::GithubAppAuth;
pub use config::{GithubAuth, GithubConfig};

/// Connector kind of this crate, as reported in [`iga_adapter::AdapterInfo`] and errors.
pub const KIND: &str = "github";

/// Entitlement kind of repository access (outside collaborators):
/// `EntitlementKind::Generic("repository")`, id `<repo>` or `<repo>:<permission>`.
pub const REPOSITORY_KIND: &str = "repository";
