//! `FlatFileAdapterBuilder`: new / from_env / with_* / build.

use std::path::PathBuf;

use iga_adapter::{Error, ErrorKind, Result, Secret};
use iga_directive::EntitlementKind;

use crate::KIND;
use crate::adapter::FlatFileAdapter;
use crate::config::{CsvOptions, Encoding, FlatFileConfig, KeyFrom, LineEnding};
use crate::mapping::Mapping;

/// Builds a [`FlatFileAdapter`].
///
/// ```
/// use iga_connector_flatfile::FlatFileAdapterBuilder;
/// let dir = tempfile::tempdir().unwrap();
/// let adapter = FlatFileAdapterBuilder::new(dir.path())
///     .with_name("racf-prod")
///     .with_roles(["PAYROLL", "SYSPROG"])
///     .build()
///     .unwrap();
/// assert_eq!(adapter.config().file, "accounts.csv");
/// ```
#[derive(Debug, Clone, Default)]
pub struct FlatFileAdapterBuilder {
    cfg: FlatFileConfig,
}

impl FlatFileAdapterBuilder {
    /// A builder for a target in `dir` with the default layout (`accounts.csv` with
    /// `account_id, login, display_name, email, department, enabled, roles`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            cfg: FlatFileConfig {
                dir: dir.into(),
                ..FlatFileConfig::default()
            },
        }
    }

    /// From a full configuration.
    pub fn from_config(cfg: FlatFileConfig) -> Self {
        Self { cfg }
    }

    /// From the environment: `IGA_FLATFILE_DIR` (required), `IGA_FLATFILE_FILE`,
    /// `IGA_FLATFILE_NAME`, `IGA_FLATFILE_ROLES` (comma-separated),
    /// `IGA_FLATFILE_MANIFEST_KEY`.
    pub fn from_env() -> Result<Self> {
        let dir = std::env::var("IGA_FLATFILE_DIR").map_err(|_| {
            Error::new(ErrorKind::ConfigInvalid, "IGA_FLATFILE_DIR is not set").with_connector(KIND)
        })?;
        let mut b = Self::new(dir);
        if let Ok(f) = std::env::var("IGA_FLATFILE_FILE") {
            b = b.with_file(f);
        }
        if let Ok(n) = std::env::var("IGA_FLATFILE_NAME") {
            b = b.with_name(n);
        }
        if let Ok(r) = std::env::var("IGA_FLATFILE_ROLES") {
            b = b.with_roles(r.split(',').map(str::trim).filter(|s| !s.is_empty()));
        }
        if let Ok(k) = std::env::var("IGA_FLATFILE_MANIFEST_KEY") {
            b = b.with_manifest_key(k);
        }
        Ok(b)
    }

    /// Instance label.
    pub fn with_name(mut self, n: impl Into<String>) -> Self {
        self.cfg.name = n.into();
        self
    }

    /// Full file name.
    pub fn with_file(mut self, f: impl Into<String>) -> Self {
        self.cfg.file = f.into();
        self
    }

    /// Column mapping of the target file.
    pub fn with_mapping(mut self, m: Mapping) -> Self {
        self.cfg.mapping = m;
        self
    }

    /// Column order for a file that does not exist yet.
    pub fn with_columns<S: Into<String>>(mut self, cols: impl IntoIterator<Item = S>) -> Self {
        self.cfg.columns = cols.into_iter().map(Into::into).collect();
        self
    }

    /// Entitlement kind of the entitlement column.
    pub fn with_entitlement_kind(mut self, k: EntitlementKind) -> Self {
        self.cfg.mapping.entitlement_kind = k;
        self
    }

    /// Entitlements that exist besides those in the file.
    pub fn with_roles<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> Self {
        self.cfg.roles.extend(roles.into_iter().map(Into::into));
        self
    }

    /// A file listing further entitlements.
    pub fn with_roles_file(mut self, p: impl Into<PathBuf>) -> Self {
        self.cfg.roles_file = Some(p.into());
        self
    }

    /// CSV dialect.
    pub fn with_csv(mut self, c: CsvOptions) -> Self {
        self.cfg.csv = c;
        self
    }

    /// Delimiter.
    pub fn with_delimiter(mut self, d: char) -> Self {
        self.cfg.csv.delimiter = Some(d);
        self
    }

    /// Write ISO-8859-1.
    pub fn with_latin1(mut self) -> Self {
        self.cfg.csv.encoding = Encoding::Latin1;
        self
    }

    /// Line terminator.
    pub fn with_line_ending(mut self, l: LineEnding) -> Self {
        self.cfg.line_ending = l;
        self
    }

    /// Literals for enabled / disabled.
    pub fn with_bool_literals(mut self, t: impl Into<String>, f: impl Into<String>) -> Self {
        self.cfg.true_value = t.into();
        self.cfg.false_value = f.into();
        self
    }

    /// How new account keys are chosen.
    pub fn with_key_from(mut self, k: KeyFrom) -> Self {
        self.cfg.key_from = k;
        self
    }

    /// Write change files (default on).
    pub fn with_change_files(mut self, on: bool) -> Self {
        self.cfg.change_files = on;
        self
    }

    /// Sign manifests with HMAC-SHA256.
    pub fn with_manifest_key(mut self, k: impl Into<Secret>) -> Self {
        self.cfg.manifest_key = Some(k.into());
        self
    }

    /// Largest batch written as one generation.
    pub fn with_batch_max(mut self, n: usize) -> Self {
        self.cfg.batch_max = n.max(1);
        self
    }

    /// Largest list page.
    pub fn with_page_max(mut self, n: usize) -> Self {
        self.cfg.page_max = n.max(1);
        self
    }

    /// Validate the configuration, create the directory if needed and load the file.
    /// A header lacking a mapped column is `ConfigInvalid`.
    pub fn build(self) -> Result<FlatFileAdapter> {
        FlatFileAdapter::from_config(self.cfg)
    }
}
