//! Bulk upload of catalog entries from CSV or XLSX through the flat-file parser
//! (`iga_connector_flatfile::Importer`): every problem is reported with file, sheet,
//! row and column, and a file with any problem writes nothing.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use iga_connector_flatfile::{
    ColumnType, HeaderMode, ImportError, ImportOptions, Importer, Mapping, Record, RejectPolicy,
    SourceOptions,
};
use iga_directive::{EntitlementKind, EntitlementRef, Timestamp};
use iga_resolver::Endpoint;
use serde::Serialize;

use crate::catalog::{Catalog, validate_entry};
use crate::error::{CatalogError, Result};
use crate::model::{Actor, CatalogEntry, EntryKey, Lifecycle, LinkedGroup, Origin, RiskLevel};

/// The columns of an upload file (header names, case-insensitive for the importer's
/// mapped ones). `entitlement` and `system` are required; see the crate README.
pub const UPLOAD_COLUMNS: [&str; 13] = [
    "system",
    "kind",
    "entitlement",
    "display_name",
    "description",
    "owners",
    "risk",
    "requestable",
    "certifiable",
    "prerequisites",
    "idp_system",
    "idp_group",
    "lifecycle",
];

/// One problem of an upload, located in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadIssue {
    /// File name as given.
    pub file: String,
    /// Worksheet (XLSX).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// Row (CSV: line; XLSX: Excel row); 0 for file-level problems.
    pub row: u64,
    /// Column, when the problem is in one column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for UploadIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(s) = &self.sheet {
            write!(f, " [sheet {s}]")?;
        }
        if self.row > 0 {
            write!(f, ": row {}", self.row)?;
        }
        if let Some(c) = &self.column {
            write!(f, ", column \"{c}\"")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The validation report of an upload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UploadReport {
    /// File name.
    pub file: String,
    /// Data rows read.
    pub rows_read: u64,
    /// Entries in the file.
    pub entries: usize,
    /// Entries created.
    pub created: usize,
    /// Entries updated.
    pub updated: usize,
    /// Entries already as given.
    pub unchanged: usize,
    /// Every problem found; when not empty nothing was written.
    pub issues: Vec<UploadIssue>,
}

fn parse_ref(s: &str) -> EntitlementRef {
    // `kind:id` (kind one of the named kinds) or a bare group id.
    if let Some((k, id)) = s.split_once(':')
        && EntitlementKind::NAMED.iter().any(|n| n.as_str() == k)
    {
        return EntitlementRef::new(EntitlementKind::parse(k), id.trim());
    }
    EntitlementRef::new(EntitlementKind::Group, s.trim())
}

/// Parse one prerequisite: `system` (the whole system) or `system/entitlement`
/// (`system/kind:id` for a kind other than group).
pub(crate) fn parse_prerequisite(s: &str) -> std::result::Result<Endpoint, String> {
    let s = s.trim();
    match s.split_once('/') {
        None if s.is_empty() => Err("empty prerequisite".into()),
        None => Ok(Endpoint::system(s)),
        Some((sys, ent)) if sys.trim().is_empty() || ent.trim().is_empty() => {
            Err(format!("{s:?}: expected `system` or `system/entitlement`"))
        }
        Some((sys, ent)) => Ok(Endpoint::entitlement(sys.trim(), parse_ref(ent))),
    }
}

fn text(r: &iga_connector_flatfile::AccountRecord, col: &str) -> Option<String> {
    match r.identity.attributes.get(col)? {
        serde_json::Value::String(s) if s.trim().is_empty() => None,
        serde_json::Value::String(s) => Some(s.trim().to_string()),
        serde_json::Value::Null => None,
        v => Some(v.to_string()),
    }
}

fn flag(r: &iga_connector_flatfile::AccountRecord, col: &str) -> Option<bool> {
    r.identity.attributes.get(col).and_then(|v| v.as_bool())
}

impl Catalog {
    /// Bulk upload (CSV or XLSX, by extension): validate the whole file — structure
    /// and types through the flat-file importer, then the catalog's own rules and the
    /// actor's authority for every row — and write all entries only when there is no
    /// problem at all. On any problem: `CatalogError::UploadRejected` with the report
    /// naming file, row and column of each issue, and nothing written.
    ///
    /// An entitlement id appears once per file (the importer's key); upload entries
    /// that share an id across systems in separate files.
    pub async fn bulk_upload(
        &self,
        actor: &Actor,
        path: impl AsRef<Path>,
        now: Timestamp,
    ) -> Result<UploadReport> {
        let path = path.as_ref();
        let mut mapping = Mapping::accounts("entitlement")
            .display_name("display_name")
            .require("system")
            .column_type("requestable", ColumnType::Boolean)
            .column_type("certifiable", ColumnType::Boolean);
        for c in UPLOAD_COLUMNS {
            if !matches!(c, "requestable" | "certifiable") {
                mapping = mapping.column_type(c, ColumnType::String);
            }
        }
        let mut source = SourceOptions::default();
        source.csv.header = HeaderMode::Present;
        let mut opts = ImportOptions::default()
            .mapping(mapping)
            .source(source)
            .policy(RejectPolicy::SkipBadRows);
        opts.validate_inferred_types = false;
        let mut records = Vec::new();
        let file = path.display().to_string();
        let mut report = UploadReport {
            file: file.clone(),
            ..UploadReport::default()
        };
        let imported = Importer::new(opts).import(path, &mut |r| {
            if let Record::Account(a) = r {
                records.push(a);
            }
        });
        let ir = match imported {
            Ok(ir) => ir,
            Err(e) => {
                let (row, column, message, sheet) = match &e {
                    ImportError::Syntax(i) => (
                        i.location.row,
                        i.column.clone(),
                        i.message.clone(),
                        i.location.sheet.clone(),
                    ),
                    other => (0, None, other.to_string(), None),
                };
                report.issues.push(UploadIssue {
                    file,
                    sheet,
                    row,
                    column,
                    message,
                });
                return Err(CatalogError::UploadRejected(Box::new(report)));
            }
        };
        report.rows_read = ir.rows_read;
        let sheet = ir.sheet.clone();
        let issue = |row: u64, column: Option<&str>, message: String| UploadIssue {
            file: file.clone(),
            sheet: sheet.clone(),
            row,
            column: column.map(str::to_string),
            message,
        };
        for c in &ir.columns {
            if !UPLOAD_COLUMNS.iter().any(|k| k.eq_ignore_ascii_case(c)) {
                report.issues.push(issue(
                    1,
                    Some(c),
                    format!("unknown column (expected: {})", UPLOAD_COLUMNS.join(", ")),
                ));
            }
        }
        for i in &ir.issues {
            report.issues.push(UploadIssue {
                file: i.location.file.clone(),
                sheet: i.location.sheet.clone(),
                row: i.location.row,
                column: i.column.clone(),
                message: format!("{} ({})", i.message, i.kind.as_str()),
            });
        }
        let existing: HashMap<EntryKey, CatalogEntry> = self
            .list()
            .await?
            .into_iter()
            .map(|s| (s.entry.key(), s.entry))
            .collect();
        let mut entries = Vec::with_capacity(records.len());
        let mut keys = BTreeSet::new();
        for r in &records {
            let row = r.row;
            let mut bad = false;
            let system = text(r, "system").unwrap_or_default();
            let kind =
                text(r, "kind").map_or(EntitlementKind::Group, |k| EntitlementKind::parse(&k));
            let mut ent = EntitlementRef::new(kind, r.key.trim());
            ent.display_name = r.identity.display_name.clone();
            let mut e = CatalogEntry::new(system, ent);
            e.origin = Origin::Upload;
            e.description = text(r, "description");
            e.owners = text(r, "owners")
                .map(|o| {
                    o.split(';')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if let Some(v) = text(r, "risk") {
                match RiskLevel::parse(&v) {
                    Some(x) => e.risk = x,
                    None => {
                        bad = true;
                        report.issues.push(issue(
                            row,
                            Some("risk"),
                            format!("{v:?} is not a risk level (low, medium, high, critical)"),
                        ));
                    }
                }
            }
            e.requestable = flag(r, "requestable").unwrap_or(false);
            e.certifiable = flag(r, "certifiable").unwrap_or(false);
            if let Some(v) = text(r, "lifecycle") {
                match Lifecycle::parse(&v) {
                    Some(x) => e.lifecycle = x,
                    None => {
                        bad = true;
                        report.issues.push(issue(
                            row,
                            Some("lifecycle"),
                            format!("{v:?} is not a lifecycle (draft, published, deprecated)"),
                        ));
                    }
                }
            }
            if let Some(v) = text(r, "prerequisites") {
                for p in v.split(';').filter(|p| !p.trim().is_empty()) {
                    match parse_prerequisite(p) {
                        Ok(ep) => e.prerequisites.push(ep),
                        Err(m) => {
                            bad = true;
                            report.issues.push(issue(row, Some("prerequisites"), m));
                        }
                    }
                }
            }
            match (text(r, "idp_system"), text(r, "idp_group")) {
                (Some(s), Some(g)) => {
                    e.linked_group = Some(LinkedGroup {
                        idp_system: s,
                        group: parse_ref(&g),
                    })
                }
                (None, None) => {}
                (Some(_), None) => {
                    bad = true;
                    report.issues.push(issue(
                        row,
                        Some("idp_group"),
                        "is required when idp_system is set".into(),
                    ));
                }
                (None, Some(_)) => {
                    bad = true;
                    report.issues.push(issue(
                        row,
                        Some("idp_system"),
                        "is required when idp_group is set".into(),
                    ));
                }
            }
            if bad {
                continue;
            }
            if let Err(err) = validate_entry(&e) {
                let column = match &err {
                    CatalogError::Invalid { field, .. } => {
                        Some(field.split(['.', '[']).next().unwrap_or(field).to_string())
                    }
                    _ => None,
                };
                let column = column.map(|c| {
                    if c == "entitlement" {
                        c
                    } else {
                        c.replace("linked_group", "idp_group")
                    }
                });
                report
                    .issues
                    .push(issue(row, column.as_deref(), err.to_string()));
                continue;
            }
            if !keys.insert(e.key()) {
                report.issues.push(issue(
                    row,
                    Some("entitlement"),
                    format!("{} is given twice", e.key()),
                ));
                continue;
            }
            let stored = existing.get(&e.key());
            if let Some(s) = stored
                && !s.lifecycle.can_move_to(e.lifecycle)
            {
                report.issues.push(issue(
                    row,
                    Some("lifecycle"),
                    format!(
                        "the catalog has it {:?}; cannot move to {:?}",
                        s.lifecycle, e.lifecycle
                    ),
                ));
                continue;
            }
            match self.authorize(actor, "upload", stored, &e, now).await {
                Ok(_) => entries.push(e),
                Err(err @ CatalogError::Forbidden { .. }) => {
                    report.issues.push(issue(row, None, err.to_string()));
                }
                Err(other) => return Err(other),
            }
        }
        report.entries = entries.len();
        if !report.issues.is_empty() {
            report.issues.sort_by_key(|i| i.row);
            return Err(CatalogError::UploadRejected(Box::new(report)));
        }
        let r = self.upsert_all(actor, entries, Origin::Upload, now).await?;
        report.created = r.created;
        report.updated = r.updated;
        report.unchanged = r.unchanged;
        Ok(report)
    }
}
