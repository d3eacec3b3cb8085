//! Streaming readers: every format becomes a sequence of raw rows over named columns.

use std::path::Path;

use crate::config::{Format, SourceOptions};
use crate::error::{ImportError, Issue};

pub(crate) mod csv;
pub(crate) mod json;
pub(crate) mod ldif;
#[cfg(feature = "xlsx")]
pub(crate) mod xlsx;
#[cfg(feature = "yaml")]
pub(crate) mod yaml;

/// One record as read: its row number and one value per column ("" = empty).
#[derive(Debug, Clone, Default)]
pub(crate) struct RawRow {
    pub(crate) row: u64,
    pub(crate) values: Vec<String>,
    /// A problem found while reading (encoding, field count, syntax).
    pub(crate) issue: Option<Issue>,
    /// Column index of `issue`, when known before the column names are.
    pub(crate) issue_col: Option<usize>,
}

impl RawRow {
    pub(crate) fn is_blank(&self) -> bool {
        self.values.iter().all(|v| v.trim().is_empty())
    }
}

/// A streaming source of rows. Formats with per-record keys (JSON, YAML, LDIF) may add
/// columns as they go; rows are shorter than `columns()` then, missing = empty.
pub(crate) trait RowSource {
    fn columns(&self) -> &[String];
    fn sheet(&self) -> Option<&str> {
        None
    }
    /// Numeric cells are spreadsheet numbers (so a number in a date column is an
    /// Excel serial date).
    fn numeric_cells(&self) -> bool {
        false
    }
    fn next_row(&mut self) -> Option<Result<RawRow, ImportError>>;
}

pub(crate) fn detect_format(path: &Path, opts: &SourceOptions) -> Result<Format, ImportError> {
    opts.format
        .or_else(|| Format::from_path(path))
        .ok_or_else(|| {
            ImportError::mapping(
                &path.display().to_string(),
                "cannot tell the format from the extension; set `format`",
            )
        })
}

pub(crate) fn open(
    path: &Path,
    file: &str,
    format: Format,
    opts: &SourceOptions,
) -> Result<Box<dyn RowSource>, ImportError> {
    Ok(match format {
        Format::Csv => Box::new(csv::CsvSource::open(path, file, &opts.csv)?),
        Format::Json => Box::new(json::JsonSource::open(path, file)?),
        Format::Ldif => Box::new(ldif::LdifSource::open(path, file)?),
        #[cfg(feature = "yaml")]
        Format::Yaml => Box::new(yaml::open(path, file)?),
        #[cfg(feature = "xlsx")]
        Format::Xlsx => Box::new(xlsx::XlsxSource::open(path, file, &opts.xlsx)?),
        #[allow(unreachable_patterns)]
        other => {
            return Err(ImportError::Unsupported {
                file: file.to_string(),
                message: format!(
                    "format {} needs the `{}` cargo feature",
                    other.as_str(),
                    other.as_str()
                ),
            });
        }
    })
}

/// Column registry for formats whose records carry their own keys.
#[derive(Debug, Default)]
pub(crate) struct Columns {
    names: Vec<String>,
    index: std::collections::HashMap<String, usize>,
}

impl Columns {
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }
    pub(crate) fn slot(&mut self, name: &str) -> usize {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        let i = self.names.len();
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        i
    }
}

/// Convert one JSON value to cell text: arrays join with `;`, objects stay JSON.
pub(crate) fn json_cell(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => a.iter().map(json_cell).collect::<Vec<_>>().join(";"),
        Value::Object(_) => v.to_string(),
    }
}

/// Place an object's fields into a row.
pub(crate) fn object_row(
    cols: &mut Columns,
    obj: &serde_json::Map<String, serde_json::Value>,
    row: u64,
) -> RawRow {
    let mut values: Vec<String> = vec![String::new(); cols.names().len()];
    for (k, v) in obj {
        let i = cols.slot(k);
        if i >= values.len() {
            values.resize(i + 1, String::new());
        }
        values[i] = json_cell(v);
    }
    RawRow {
        row,
        values,
        issue: None,
        issue_col: None,
    }
}
