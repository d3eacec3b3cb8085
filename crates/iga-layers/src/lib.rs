//! # iga-layers — resilience as wrappers around any adapter
//!
//! Each layer is a pair: `XxxLayer` holds the configuration and implements
//! [`tower_layer::Layer`], `Xxx<A>` wraps an adapter and implements
//! [`ProvisioningAdapter`] itself, so a stack of layers is still an adapter. Wrappers
//! forward `capabilities()` (adjusted when the layer changes them) and print as
//! `Xxx(inner)`. One cargo feature per layer, all on by default.
//!
//! | layer | feature | what it does |
//! |---|---|---|
//! | [`Retry`] | `retry` | retries retryable failures **within one call** (exponential backoff, full jitter, Retry-After as a floor, bounded by attempts and elapsed time); `apply_batch` re-sends only failed items; exhausted errors are marked `Exhausted` |
//! | [`RateLimit`] | `rate-limit` | governor token bucket per target; a 429 pauses until its Retry-After and slows the rate for a while |
//! | [`ConcurrencyLimit`] | `concurrency-limit` | semaphore: at most N calls in flight |
//! | [`Timeout`] | `timeout` | deadline per attempt → temporary `Timeout` error |
//! | [`CapabilityCheck`] | `capability-check` | undeclared operations/calls fail with `Unsupported` before I/O |
//!
//! Recommended order, outermost first (style guide D7):
//! `CapabilityCheck → Retry → Timeout → RateLimit → ConcurrencyLimit → connector`,
//! so every attempt pays a rate-limit token and a concurrency slot, and the timeout
//! applies to each try rather than the whole retry loop.
//!
//! **Who retries what.** These layers and `iga-batch` retry only within one
//! fulfilment pass (seconds to a minute). Long backoff across passes belongs to the
//! orchestrator's durable job state.
//!
//! ```
//! use std::time::Duration;
//! use iga_adapter::{MemoryAdapter, ProvisioningAdapter};
//! use iga_layers::*;
//! use tower_layer::Layer;
//!
//! let target = MemoryAdapter::new("entra");
//! let stack = CapabilityCheckLayer.layer(
//!     RetryLayer::new(RetryPolicy::default()).layer(
//!         TimeoutLayer::new(Duration::from_secs(30)).layer(
//!             RateLimitLayer::new(RateLimitConfig::graph_writes())
//!                 .layer(ConcurrencyLimitLayer::new(4).layer(target)),
//!         ),
//!     ),
//! );
//! assert_eq!(
//!     stack.to_string(),
//!     "CapabilityCheck(Retry(Timeout(RateLimit(ConcurrencyLimit(Memory(entra))))))"
//! );
//! assert_eq!(stack.capabilities().max_concurrency, Some(4));
//! ```
#![deny(missing_docs)]

mod backoff;
#[cfg(feature = "capability-check")]
mod capability;
#[cfg(feature = "concurrency-limit")]
mod concurrency;
#[cfg(feature = "rate-limit")]
mod rate;
#[cfg(feature = "retry")]
mod retry;
#[cfg(feature = "timeout")]
mod timeout;

pub use backoff::{
    Backoff, BackoffConfig, Jitter, RetryPolicy, exhausted, safe_to_resend, should_retry,
};
#[cfg(feature = "capability-check")]
pub use capability::{CapabilityCheck, CapabilityCheckLayer};
#[cfg(feature = "concurrency-limit")]
pub use concurrency::{ConcurrencyLimit, ConcurrencyLimitLayer};
#[cfg(feature = "rate-limit")]
pub use rate::{RateLimit, RateLimitConfig, RateLimitLayer, TargetLimiter, TokioClock};
#[cfg(feature = "retry")]
pub use retry::{Retry, RetryEvent, RetryLayer, RetryObserver};
#[cfg(feature = "timeout")]
pub use timeout::{Timeout, TimeoutLayer};

#[doc(no_inline)]
pub use iga_adapter::ProvisioningAdapter;
