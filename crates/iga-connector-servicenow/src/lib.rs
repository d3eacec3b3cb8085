#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod client;
mod config;
mod mapping;
mod source;
mod ticket;
mod time;
mod webhook;

#[cfg(feature = "test-support")]
pub mod mock;

pub use client::TableClient;
pub use config::{
    CatalogMapping, MAX_PAGE_SIZE, ServiceNowAuth, ServiceNowConfig, TicketConfig, WriteBackConfig,
};
pub use source::ServiceNowSource;
pub use ticket::ServiceNowTicketAdapter;
pub use time::{format_glide, parse_glide};
pub use webhook::{ApprovalEvent, WEBHOOK_PATH, WebhookReceiver, webhook_router};
