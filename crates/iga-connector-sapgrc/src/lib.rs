#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod dialect;
#[cfg(feature = "test-support")]
pub mod mock;
pub mod model;
mod source;

pub use dialect::{GrcAuth, GrcDialect, ODataConfig, ODataDialect};
pub use model::{
    FetchPage, Fetched, GrcLine, GrcRequest, GrcUser, LineResult, LineStatus, Undecodable,
};
pub use source::{SapGrcSource, SapGrcSourceConfig};

/// Connector kind of this crate, as reported in errors.
pub const KIND: &str = "sapgrc";
