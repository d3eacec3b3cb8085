#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod client;
mod config;
pub mod error;
mod iam;
mod identity_center;
#[cfg(feature = "test-support")]
pub mod mock;
#[cfg(feature = "test-support")]
pub mod mock_scim;
mod xml;

pub use client::IAM_VERSION;
pub use config::IamConfig;
pub use iam::{DISABLED_TAG, IDENTITY_TAG, IamAdapter, managed_policy, policy_kind};
pub use identity_center::{IdentityCenterAdapter, MEMBERSHIP_CHANGES_PER_PATCH};
pub use iga_http::sigv4::AwsCredentials;
pub use xml::escape as xml_escape;

/// Connector kind of the IAM adapter, as reported in [`iga_adapter::AdapterInfo`] and errors.
pub const KIND: &str = "aws-iam";

/// Connector kind of the IAM Identity Center adapter.
pub const IDENTITY_CENTER_KIND: &str = "aws-identity-center";

/// `EntitlementKind::Generic` name of IAM managed policies.
pub const IAM_POLICY_KIND: &str = "iam_managed_policy";
