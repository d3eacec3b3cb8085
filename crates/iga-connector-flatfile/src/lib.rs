#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod adapter;
mod builder;
mod config;
mod delta;
mod error;
mod import;
mod infer;
mod mapping;
mod read;
mod store;

pub use adapter::FlatFileAdapter;
pub use builder::FlatFileAdapterBuilder;
pub use config::{
    CsvOptions, Encoding, FlatFileConfig, Format, HeaderMode, KeyFrom, LineEnding, SourceOptions,
    XlsxOptions,
};
pub use delta::{AccountChange, Delta, FieldChange, Snapshot};
pub use error::{ImportError, Issue, IssueKind, Location};
pub use import::{
    AccountRecord, AssignmentRecord, ImportOptions, ImportReport, Importer, Record, RejectPolicy,
};
pub use infer::{ColumnProfile, Schema};
pub use mapping::{
    ColumnType, Mapping, Shape, excel_serial_date, is_integer, parse_bool, parse_date,
};
pub use store::{Manifest, ManifestEntry, ManifestError, verify_manifest, write_atomic};

/// Connector kind.
pub const KIND: &str = "flatfile";
