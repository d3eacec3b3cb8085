#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod adf;
mod client;
mod config;
pub mod error;
mod mapping;
#[cfg(feature = "test-support")]
pub mod mock;
mod source;
mod ticket;
pub mod time;

pub use config::{FieldMapping, JiraAuth, JiraConnection, JiraSourceConfig, TicketConfig};
pub use source::{DELIVERY_ID_HEADER, JiraSource, WRITEBACK_PROPERTY, WebhookConfig};
pub use ticket::{JiraTicketAdapter, correlation_label};

/// Connector kind of this crate, as reported in errors and [`iga_adapter::AdapterInfo`].
pub const KIND: &str = "jira";
