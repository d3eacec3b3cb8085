#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod adapter;
mod callback;
mod sign;

pub use adapter::{IDEMPOTENCY_KEY, WebhookAdapter, WebhookConfig, WebhookStats, map_response};
pub use callback::{
    CallbackBody, CallbackState, CallbackStore, Completion, MemoryCallbackStore, callback_router,
};
pub use sign::{WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, WebhookSigner};

/// Connector kind of this crate, as reported in [`iga_adapter::AdapterInfo`] and errors.
pub const KIND: &str = "webhook";
