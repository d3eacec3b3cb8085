#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod auth;
pub mod classify;
pub mod client;
pub mod paged_cursor;
pub mod pagination;
pub mod rate_limit;
pub mod redact;
pub mod rest;
pub mod retry_after;
pub mod sigv4;
pub mod watermark;
pub mod webhook;

pub use auth::{
    ApiKeyAuth, AuthProvider, BasicAuth, BearerAuth, ClientAuthMethod, NoAuth,
    OAuth2ClientCredentials, OAuth2Config, send_with_auth,
};
pub use classify::{classify_reqwest_error, classify_status, classify_status_at};
pub use client::{HttpClientBuilder, USER_AGENT, default_client, install_ring_provider};
pub use pagination::{CursorPager, IndexPager, Link, find_rel, next_link, parse_link_header};
pub use rate_limit::RateLimitInfo;
pub use redact::{
    RedactedHeaders, RedactedRequest, redact_body_snippet, redact_headers, redact_url,
    redact_url_str,
};
pub use retry_after::{parse_retry_after, retry_after};
