//! Errors: located import issues, import failures, and the one place where native
//! I/O errors become [`iga_adapter::Error`].

use std::fmt;
use std::io;

use iga_adapter::{Error, ErrorKind};
use serde::Serialize;

use crate::KIND;
use crate::import::ImportReport;

/// Where a record sits in its file.
///
/// `row` is the line where the record starts for text formats (CSV, JSON lines,
/// JSON arrays, LDIF), the Excel row number (1-based) for XLSX, and the 1-based item
/// index for YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// File name as given to the importer.
    pub file: String,
    /// Worksheet, for XLSX.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// Row (see the type docs).
    pub row: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(s) = &self.sheet {
            write!(f, " [sheet {s}]")?;
        }
        write!(f, ": row {}", self.row)
    }
}

/// What is wrong with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IssueKind {
    /// A required value is empty.
    Required,
    /// A value does not parse as the column's type.
    Type,
    /// A key (account id, or account + entitlement) appears twice.
    Duplicate,
    /// An assignment names an account the import does not know.
    UnknownAccount,
    /// The record has more non-empty fields than the header has columns.
    FieldCount,
    /// The bytes are not valid in the file's encoding.
    Encoding,
    /// The record is malformed (JSON, LDIF, spreadsheet error cell).
    Syntax,
}

impl IssueKind {
    /// Canonical snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Type => "type",
            Self::Duplicate => "duplicate",
            Self::UnknownAccount => "unknown_account",
            Self::FieldCount => "field_count",
            Self::Encoding => "encoding",
            Self::Syntax => "syntax",
        }
    }
}

/// One validation problem, naming file, row (and sheet) and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// File, sheet and row.
    pub location: Location,
    /// Column name, when the problem is in one column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Category.
    pub kind: IssueKind,
    /// Human-readable explanation.
    pub message: String,
}

impl Issue {
    pub(crate) fn new(
        location: Location,
        column: Option<&str>,
        kind: IssueKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            location,
            column: column.map(str::to_string),
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.location)?;
        if let Some(c) = &self.column {
            write!(f, ", column \"{c}\"")?;
        }
        write!(f, ": {} ({})", self.message, self.kind.as_str())
    }
}

/// Why an import failed as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be opened or read.
    #[error("{file}: {source}")]
    Io {
        /// File name.
        file: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is malformed beyond one record (not a workbook, broken JSON array, ...).
    #[error("{0}")]
    Syntax(Issue),
    /// The mapping does not fit the file (a named column is missing, no key column).
    #[error("{file}: mapping: {message}")]
    Mapping {
        /// File name.
        file: String,
        /// What does not fit.
        message: String,
    },
    /// Policy `RejectFile` and the file has errors: nothing was imported. The report
    /// lists every issue (up to the configured cap) and names the rejects file.
    #[error("{file}: rejected whole: {errors} error(s) in {rows} row(s); first: {first}")]
    Rejected {
        /// File name.
        file: String,
        /// Number of issues.
        errors: u64,
        /// Number of bad rows.
        rows: u64,
        /// The first issue.
        first: Box<Issue>,
        /// The full report.
        report: Box<ImportReport>,
    },
    /// The format needs a cargo feature that is not enabled.
    #[error("{file}: {message}")]
    Unsupported {
        /// File name.
        file: String,
        /// Which feature is missing.
        message: String,
    },
}

impl ImportError {
    pub(crate) fn io(file: &str, source: io::Error) -> Self {
        Self::Io {
            file: file.to_string(),
            source,
        }
    }
    pub(crate) fn mapping(file: &str, message: impl Into<String>) -> Self {
        Self::Mapping {
            file: file.to_string(),
            message: message.into(),
        }
    }
}

/// Classify an I/O error on the target directory: the connector's one mapping from
/// native failures to [`ErrorKind`] and retry status (see the README's error table).
pub(crate) fn classify_io(e: &io::Error, what: &str) -> Error {
    use io::ErrorKind as K;
    let kind = match e.kind() {
        K::NotFound => ErrorKind::NotFound,
        K::PermissionDenied | K::ReadOnlyFilesystem => ErrorKind::PermissionDenied,
        K::AlreadyExists => ErrorKind::Conflict,
        K::InvalidData | K::InvalidInput => ErrorKind::InvalidInput,
        K::TimedOut | K::WouldBlock => ErrorKind::Timeout,
        K::Interrupted | K::ResourceBusy | K::StorageFull | K::QuotaExceeded => {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Unexpected,
    };
    let mut err = Error::new(kind, format!("{what}: {e}")).with_connector(KIND);
    if kind == ErrorKind::Unavailable {
        // A full disk or a busy file may clear: worth retrying later.
        err = err.set_temporary(None);
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use iga_adapter::RetryStatus;

    #[test]
    fn io_error_table() {
        use io::ErrorKind as K;
        let table = [
            (K::NotFound, ErrorKind::NotFound, false),
            (K::PermissionDenied, ErrorKind::PermissionDenied, false),
            (K::ReadOnlyFilesystem, ErrorKind::PermissionDenied, false),
            (K::AlreadyExists, ErrorKind::Conflict, false),
            (K::InvalidData, ErrorKind::InvalidInput, false),
            (K::TimedOut, ErrorKind::Timeout, true),
            (K::WouldBlock, ErrorKind::Timeout, true),
            (K::Interrupted, ErrorKind::Unavailable, true),
            (K::ResourceBusy, ErrorKind::Unavailable, true),
            (K::StorageFull, ErrorKind::Unavailable, true),
            (K::QuotaExceeded, ErrorKind::Unavailable, true),
            (K::Other, ErrorKind::Unexpected, false),
        ];
        for (io_kind, kind, retryable) in table {
            let e = classify_io(&io::Error::new(io_kind, "x"), "write accounts.csv");
            assert_eq!(e.kind(), kind, "{io_kind:?}");
            assert_eq!(e.is_retryable(), retryable, "{io_kind:?}");
            assert_eq!(e.connector(), KIND);
            if !retryable {
                assert_eq!(e.retry(), RetryStatus::Permanent);
            }
        }
    }

    #[test]
    fn issue_display_names_file_sheet_row_column() {
        let i = Issue::new(
            Location {
                file: "roles.xlsx".into(),
                sheet: Some("Users".into()),
                row: 7,
            },
            Some("email"),
            IssueKind::Required,
            "required value is empty",
        );
        assert_eq!(
            i.to_string(),
            "roles.xlsx [sheet Users]: row 7, column \"email\": required value is empty (required)"
        );
    }
}
