#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod catalog;
mod error;
pub mod intel;
mod model;
pub mod synthetic;
mod upload;

pub use catalog::{
    Catalog, DELEGATIONS_NS, DiscoveryReport, ENTRIES_NS, HISTORY_NS, PopulateReport, StoredEntry,
    validate_entry,
};
pub use error::{CatalogError, Result};
pub use model::{
    Actor, CatalogEntry, Delegation, DelegationScope, EntryKey, HistoryRecord, Lifecycle,
    LinkedGroup, Origin, RiskLevel,
};
pub use upload::{UPLOAD_COLUMNS, UploadIssue, UploadReport};
