//! The target directory: reading the full file, writing files atomically (temp +
//! fsync + rename + directory fsync), change files and the manifest.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use iga_adapter::Secret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{CsvOptions, HeaderMode, LineEnding};
use crate::error::ImportError;
use crate::read::RowSource;
use crate::read::csv::CsvSource;

/// Write `bytes` to `path` atomically: a temporary file in the same directory, fsync,
/// rename over the target, fsync of the directory. Readers see the old or the new
/// content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".{name}.tmp-{}-{nanos}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A CSV table: header and rows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub(crate) header: Vec<String>,
    pub(crate) rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn load(path: &Path, opts: &CsvOptions) -> Result<Self, ImportError> {
        let mut o = opts.clone();
        o.header = HeaderMode::Present;
        let file = path.display().to_string();
        let mut src = CsvSource::open(path, &file, &o)?;
        let header = src.columns().to_vec();
        let mut rows = Vec::new();
        while let Some(r) = src.next_row() {
            let mut r = r?;
            if let Some(i) = r.issue {
                return Err(ImportError::Syntax(i));
            }
            if r.is_blank() {
                continue;
            }
            r.values.resize(header.len(), String::new());
            rows.push(r.values);
        }
        Ok(Self { header, rows })
    }
}

/// Serialize rows as CSV bytes in the target's dialect.
pub(crate) fn csv_bytes(
    header: &[String],
    rows: &[Vec<String>],
    delimiter: u8,
    line_ending: LineEnding,
    latin1: bool,
) -> Result<Vec<u8>, String> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(match line_ending {
            LineEnding::Lf => csv::Terminator::Any(b'\n'),
            LineEnding::CrLf => csv::Terminator::CRLF,
        })
        .from_writer(Vec::with_capacity(64 * (rows.len() + 1)));
    let err = |e: csv::Error| e.to_string();
    w.write_record(header).map_err(err)?;
    for r in rows {
        w.write_record(r).map_err(err)?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    if !latin1 {
        return Ok(bytes);
    }
    let text = String::from_utf8(bytes).map_err(|e| e.to_string())?;
    text.chars()
        .map(|c| {
            u8::try_from(u32::from(c))
                .map_err(|_| format!("character {c:?} cannot be written in Latin-1"))
        })
        .collect()
}

/// One file listed in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// File name (in the manifest's directory).
    pub file: String,
    /// Data rows (header excluded).
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
}

impl ManifestEntry {
    pub(crate) fn of(file: &str, rows: u64, content: &[u8]) -> Self {
        Self {
            file: file.to_string(),
            rows,
            bytes: content.len() as u64,
            sha256: hex::encode(Sha256::digest(content)),
        }
    }
}

/// The manifest written after every generation, last, so a legacy job that sees it
/// can trust the files it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// `iga-flatfile-manifest/1`.
    pub format: String,
    /// Generation number, +1 per write.
    pub sequence: u64,
    /// UTC time of the write (RFC 3339).
    pub generated_at: String,
    /// The full file.
    pub full: ManifestEntry,
    /// The change file of this generation, if change files are on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<ManifestEntry>,
    /// HMAC-SHA256 (hex) over the manifest serialized without this field, when a
    /// manifest key is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_sha256: Option<String>,
}

pub(crate) const MANIFEST_FORMAT: &str = "iga-flatfile-manifest/1";

fn mac(key: &Secret, body: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose().as_bytes())
        .expect("HMAC accepts any key length");
    m.update(body);
    m
}

impl Manifest {
    pub(crate) fn sign(mut self, key: Option<&Secret>) -> Self {
        self.hmac_sha256 = None;
        if let Some(k) = key {
            let body = serde_json::to_vec(&self).expect("manifest serializes");
            self.hmac_sha256 = Some(hex::encode(mac(k, &body).finalize().into_bytes()));
        }
        self
    }
}

/// Why a manifest does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// A file could not be read.
    #[error("{0}: {1}")]
    Io(PathBuf, io::Error),
    /// The manifest is not valid JSON of the expected format.
    #[error("manifest {0}: {1}")]
    Malformed(PathBuf, String),
    /// A listed file's size, hash or row count differs.
    #[error("{file}: {what} mismatch (manifest {expected}, actual {actual})")]
    Mismatch {
        /// File.
        file: String,
        /// `sha256`, `bytes` or `rows`.
        what: &'static str,
        /// Manifest value.
        expected: String,
        /// Actual value.
        actual: String,
    },
    /// The signature is missing or wrong.
    #[error("manifest signature does not verify")]
    BadSignature,
}

/// Verify a manifest the way a legacy job should: every listed file's size, SHA-256
/// and row count, and the HMAC when `key` is given.
pub fn verify_manifest(
    manifest_path: &Path,
    key: Option<&Secret>,
) -> Result<Manifest, ManifestError> {
    let bytes = fs::read(manifest_path).map_err(|e| ManifestError::Io(manifest_path.into(), e))?;
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| ManifestError::Malformed(manifest_path.into(), e.to_string()))?;
    if m.format != MANIFEST_FORMAT {
        return Err(ManifestError::Malformed(
            manifest_path.into(),
            format!("format {:?}", m.format),
        ));
    }
    if let Some(k) = key {
        let given = m
            .hmac_sha256
            .as_deref()
            .ok_or(ManifestError::BadSignature)?;
        let given = hex::decode(given).map_err(|_| ManifestError::BadSignature)?;
        let mut unsigned = m.clone();
        unsigned.hmac_sha256 = None;
        let body = serde_json::to_vec(&unsigned).expect("manifest serializes");
        mac(k, &body)
            .verify_slice(&given)
            .map_err(|_| ManifestError::BadSignature)?;
    }
    let dir = manifest_path.parent().unwrap_or(Path::new("."));
    for e in std::iter::once(&m.full).chain(m.changes.as_ref()) {
        let p = dir.join(&e.file);
        let content = fs::read(&p).map_err(|err| ManifestError::Io(p.clone(), err))?;
        let actual = ManifestEntry::of(&e.file, 0, &content);
        let mismatch = |what, expected: String, actual: String| ManifestError::Mismatch {
            file: e.file.clone(),
            what,
            expected,
            actual,
        };
        if actual.bytes != e.bytes {
            return Err(mismatch(
                "bytes",
                e.bytes.to_string(),
                actual.bytes.to_string(),
            ));
        }
        if actual.sha256 != e.sha256 {
            return Err(mismatch("sha256", e.sha256.clone(), actual.sha256));
        }
        let rows = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .from_reader(&content[..])
            .byte_records()
            .count() as u64;
        if rows != e.rows {
            return Err(mismatch("rows", e.rows.to_string(), rows.to_string()));
        }
    }
    Ok(m)
}
