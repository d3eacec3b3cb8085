//! Configuration: how to read a file ([`SourceOptions`]) and how the adapter writes its
//! target ([`FlatFileConfig`]).

use std::fmt;
use std::path::PathBuf;

use iga_adapter::Secret;
use serde::{Deserialize, Serialize};

use crate::mapping::Mapping;

/// File format. Usually detected from the extension ([`Format::from_path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Format {
    /// Delimited text.
    Csv,
    /// A JSON array of objects, or JSON lines (one object per line); detected.
    Json,
    /// A YAML sequence of mappings (or a mapping holding one sequence).
    Yaml,
    /// An Excel workbook (feature `xlsx`).
    Xlsx,
    /// LDIF content records.
    Ldif,
}

impl Format {
    /// From a file extension: csv/txt/tsv, json/jsonl/ndjson, yaml/yml, xlsx/xlsm, ldif.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "csv" | "txt" | "tsv" | "dat" => Self::Csv,
            "json" | "jsonl" | "ndjson" => Self::Json,
            "yaml" | "yml" => Self::Yaml,
            "xlsx" | "xlsm" => Self::Xlsx,
            "ldif" => Self::Ldif,
            _ => return None,
        })
    }

    /// Name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Yaml => "yaml",
            Self::Xlsx => "xlsx",
            Self::Ldif => "ldif",
        }
    }
}

/// Text encoding of CSV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Encoding {
    /// UTF-8 when the first 64 KiB are valid UTF-8 (or start with a BOM), else Latin-1.
    #[default]
    Auto,
    /// UTF-8 (a leading BOM is skipped).
    Utf8,
    /// ISO-8859-1: every byte is the code point of the same value.
    Latin1,
}

/// Whether the first CSV record is a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HeaderMode {
    /// A header when every cell is non-empty, distinct, and none looks like data
    /// (number, date, boolean, e-mail address).
    #[default]
    Auto,
    /// Always a header.
    Present,
    /// No header: columns are named `column1`, `column2`, ...
    Absent,
}

/// Line terminator the adapter writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LineEnding {
    /// `\n`.
    #[default]
    Lf,
    /// `\r\n` (Windows, many mainframe transfer jobs).
    CrLf,
}

/// CSV dialect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CsvOptions {
    /// Field delimiter; `None` sniffs `,` `;` `\t` `|` from the first line.
    pub delimiter: Option<char>,
    /// Quote character.
    pub quote: char,
    /// Encoding.
    pub encoding: Encoding,
    /// Header detection.
    pub header: HeaderMode,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            delimiter: None,
            quote: '"',
            encoding: Encoding::Auto,
            header: HeaderMode::Auto,
        }
    }
}

/// XLSX options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct XlsxOptions {
    /// Worksheet name; `None` takes the first sheet.
    pub sheet: Option<String>,
    /// 1-based header row; `None` takes the first non-blank row.
    pub header_row: Option<u32>,
    /// Copy the value of a merged region's top-left cell into every cell of the region.
    pub fill_merged: bool,
}

impl Default for XlsxOptions {
    fn default() -> Self {
        Self {
            sheet: None,
            header_row: None,
            fill_merged: true,
        }
    }
}

/// How to read one file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SourceOptions {
    /// Format; `None` detects it from the extension.
    pub format: Option<Format>,
    /// CSV dialect.
    pub csv: CsvOptions,
    /// XLSX options.
    pub xlsx: XlsxOptions,
}

impl SourceOptions {
    /// Force a format.
    pub fn format(mut self, f: Format) -> Self {
        self.format = Some(f);
        self
    }
    /// Set the CSV delimiter.
    pub fn delimiter(mut self, d: char) -> Self {
        self.csv.delimiter = Some(d);
        self
    }
    /// Set the CSV encoding.
    pub fn encoding(mut self, e: Encoding) -> Self {
        self.csv.encoding = e;
        self
    }
    /// Set the CSV header mode.
    pub fn header(mut self, h: HeaderMode) -> Self {
        self.csv.header = h;
        self
    }
    /// Select a worksheet.
    pub fn sheet(mut self, s: impl Into<String>) -> Self {
        self.xlsx.sheet = Some(s.into());
        self
    }
    /// Set the 1-based XLSX header row.
    pub fn header_row(mut self, r: u32) -> Self {
        self.xlsx.header_row = Some(r);
        self
    }
}

/// How the key of a new account is chosen from an operation (when the operation
/// carries no `native_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyFrom {
    /// `Identity::id`.
    #[default]
    IdentityId,
    /// `Identity::login()` (user name, else e-mail, else id), as RACF user ids are.
    Login,
}

/// Configuration of a [`crate::FlatFileAdapter`]: one target file in one directory.
///
/// `Debug` redacts `manifest_key`.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FlatFileConfig {
    /// Instance label (the target system's name, e.g. `racf-prod`).
    pub name: String,
    /// Directory holding the target file, its change files and manifest.
    pub dir: PathBuf,
    /// The full file's name (`accounts.csv`).
    pub file: String,
    /// Columns of the target file. `entitlements` enables grant/revoke, `enabled`
    /// enables disable/enable.
    pub mapping: Mapping,
    /// Column order when the file does not exist yet; default: the mapped columns.
    pub columns: Vec<String>,
    /// Dialect of the target file (`delimiter` defaults to `,`, `encoding` `auto`
    /// reads either and writes UTF-8; `latin1` writes ISO-8859-1).
    pub csv: CsvOptions,
    /// Line terminator written.
    pub line_ending: LineEnding,
    /// Literal written for an enabled account.
    pub true_value: String,
    /// Literal written for a disabled account.
    pub false_value: String,
    /// How new account keys are chosen.
    pub key_from: KeyFrom,
    /// Entitlements that exist in the target besides those present in the file.
    pub roles: Vec<String>,
    /// A file listing further entitlements (first column; header optional).
    pub roles_file: Option<PathBuf>,
    /// Write a change file (adds/removes) next to every updated full file.
    pub change_files: bool,
    /// HMAC-SHA256 key signing the manifest, so the legacy job can check it came
    /// from us. Never printed.
    #[serde(skip_serializing)]
    pub manifest_key: Option<Secret>,
    /// Largest `apply_batch` slice (all written in one file generation).
    pub batch_max: usize,
    /// Largest page `list_*` returns.
    pub page_max: usize,
}

impl Default for FlatFileConfig {
    fn default() -> Self {
        Self {
            name: "flatfile".into(),
            dir: PathBuf::from("."),
            file: "accounts.csv".into(),
            mapping: Mapping::accounts("account_id")
                .login("login")
                .display_name("display_name")
                .email("email")
                .department("department")
                .enabled("enabled")
                .entitlements("roles"),
            columns: Vec::new(),
            csv: CsvOptions::default(),
            line_ending: LineEnding::Lf,
            true_value: "true".into(),
            false_value: "false".into(),
            key_from: KeyFrom::IdentityId,
            roles: Vec::new(),
            roles_file: None,
            change_files: true,
            manifest_key: None,
            batch_max: 500,
            page_max: 500,
        }
    }
}

impl fmt::Debug for FlatFileConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlatFileConfig")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .field("file", &self.file)
            .field("mapping", &self.mapping)
            .field("csv", &self.csv)
            .field("line_ending", &self.line_ending)
            .field("key_from", &self.key_from)
            .field("roles", &self.roles.len())
            .field("roles_file", &self.roles_file)
            .field("change_files", &self.change_files)
            .field("manifest_key", &self.manifest_key.as_ref().map(|_| "***"))
            .field("batch_max", &self.batch_max)
            .field("page_max", &self.page_max)
            .finish()
    }
}
