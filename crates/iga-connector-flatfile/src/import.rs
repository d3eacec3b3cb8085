//! The import pipeline: read → sample → infer → map → validate → emit records, with
//! located issues, a reject policy and a rejects report.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iga_directive::{EntitlementKind, EntitlementRef, Identity};
use serde::{Deserialize, Serialize};

use crate::config::{Format, SourceOptions};
use crate::delta::Snapshot;
use crate::error::{ImportError, Issue, IssueKind, Location};
use crate::infer::{Schema, infer};
use crate::mapping::{
    ColumnType, Mapping, Shape, excel_serial_date, is_integer, parse_bool, parse_date,
};
use crate::read::{self, RawRow, RowSource};

/// What to do with a file that has errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RejectPolicy {
    /// Any error rejects the whole file: the import returns
    /// [`ImportError::Rejected`] and its records must not be used.
    #[default]
    RejectFile,
    /// Import every good row; bad rows go to the rejects report.
    SkipBadRows,
}

/// Import settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImportOptions {
    /// How to read the file.
    pub source: SourceOptions,
    /// Column mapping; `None` uses the inferred suggestion.
    pub mapping: Option<Mapping>,
    /// Reject policy.
    pub policy: RejectPolicy,
    /// Where to write bad rows (CSV: location, error, then the row's own columns).
    pub rejects_path: Option<PathBuf>,
    /// Rows sampled for inference before the first record is emitted.
    pub sample_rows: usize,
    /// Accounts assignments may refer to (referential check); `None` skips the check
    /// for assignment files. Accounts files always check their own keys.
    pub known_accounts: Option<Arc<HashSet<String>>>,
    /// Largest number of issues kept in the report (all are counted and written to
    /// the rejects file).
    pub max_issues: usize,
    /// Apply inferred non-string types (integer, boolean, date) to unmapped columns
    /// too. Mapped `types` always apply.
    pub validate_inferred_types: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            source: SourceOptions::default(),
            mapping: None,
            policy: RejectPolicy::RejectFile,
            rejects_path: None,
            sample_rows: 1000,
            known_accounts: None,
            max_issues: 1000,
            validate_inferred_types: true,
        }
    }
}

impl ImportOptions {
    /// Set the mapping.
    pub fn mapping(mut self, m: Mapping) -> Self {
        self.mapping = Some(m);
        self
    }
    /// Set the source options.
    pub fn source(mut self, s: SourceOptions) -> Self {
        self.source = s;
        self
    }
    /// Set the policy.
    pub fn policy(mut self, p: RejectPolicy) -> Self {
        self.policy = p;
        self
    }
    /// Write rejects to this file.
    pub fn rejects(mut self, p: impl Into<PathBuf>) -> Self {
        self.rejects_path = Some(p.into());
        self
    }
    /// Set the known accounts for referential checks.
    pub fn known_accounts(mut self, a: impl IntoIterator<Item = String>) -> Self {
        self.known_accounts = Some(Arc::new(a.into_iter().collect()));
        self
    }
}

/// One account as imported.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AccountRecord {
    /// Row it came from.
    pub row: u64,
    /// Account key.
    pub key: String,
    /// Canonical identity (id = key; extra columns in `attributes`).
    pub identity: Identity,
    /// Enabled flag, when the file has one.
    pub enabled: Option<bool>,
    /// Entitlements held (from the multi-valued entitlement column).
    pub entitlements: Vec<EntitlementRef>,
}

/// One (account, entitlement) pair from an assignment file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssignmentRecord {
    /// Row it came from.
    pub row: u64,
    /// Account key.
    pub account: String,
    /// Entitlement held.
    pub entitlement: EntitlementRef,
}

/// A validated, mapped record.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
// Records are handed to the sink by value one at a time and never stored in bulk, so
// boxing the account variant would only add an allocation per row.
#[allow(clippy::large_enum_variant)]
pub enum Record {
    /// An account row.
    Account(AccountRecord),
    /// An assignment row.
    Assignment(AssignmentRecord),
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ImportReport {
    /// File name.
    pub file: String,
    /// Format read.
    pub format: Format,
    /// Worksheet read (XLSX).
    pub sheet: Option<String>,
    /// Columns found.
    pub columns: Vec<String>,
    /// Inferred schema.
    pub schema: Schema,
    /// Mapping used (configured or suggested).
    pub mapping: Mapping,
    /// Records read (blank rows included).
    pub rows_read: u64,
    /// Records imported.
    pub rows_imported: u64,
    /// Records rejected.
    pub rows_rejected: u64,
    /// Blank rows skipped.
    pub blank_rows: u64,
    /// Number of issues found.
    pub issue_count: u64,
    /// The first `max_issues` issues.
    pub issues: Vec<Issue>,
    /// Rejects report written, if any.
    pub rejects_file: Option<PathBuf>,
    /// Entitlements discovered (ids, of `mapping.entitlement_kind`).
    pub entitlements: BTreeSet<String>,
}

/// Reads files into canonical records.
#[derive(Debug, Clone, Default)]
pub struct Importer {
    opts: ImportOptions,
}

#[derive(Clone, Copy)]
enum F {
    Login,
    Display,
    Given,
    Family,
    Email,
    Dept,
    Manager,
    EmpNo,
}

struct Plan {
    shape: Shape,
    key: usize,
    fields: Vec<(F, usize)>,
    enabled: Option<usize>,
    ents: Option<usize>,
    kind: EntitlementKind,
    sep: String,
    required: Vec<usize>,
    /// Per column: the type to check and convert (None = text).
    types: Vec<Option<ColumnType>>,
    fill_down: Vec<usize>,
    attrs: Vec<usize>,
}

fn resolve(columns: &[String], name: &str) -> Option<usize> {
    columns
        .iter()
        .position(|c| c == name)
        .or_else(|| columns.iter().position(|c| c.eq_ignore_ascii_case(name)))
}

impl Plan {
    fn new(
        file: &str,
        columns: &[String],
        m: &Mapping,
        schema: &Schema,
        inferred: bool,
    ) -> Result<Self, ImportError> {
        let col = |name: &str| {
            resolve(columns, name).ok_or_else(|| {
                ImportError::mapping(
                    file,
                    format!("mapping names column {name:?}, which is not in the file (columns: {columns:?})"),
                )
            })
        };
        let opt = |c: &Option<String>| c.as_deref().map(col).transpose();
        let key = col(&m.account_id)?;
        let mut fields = Vec::new();
        for (f, c) in [
            (F::Login, &m.login),
            (F::Display, &m.display_name),
            (F::Given, &m.given_name),
            (F::Family, &m.family_name),
            (F::Email, &m.email),
            (F::Dept, &m.department),
            (F::Manager, &m.manager),
            (F::EmpNo, &m.employee_id),
        ] {
            if let Some(i) = opt(c)? {
                fields.push((f, i));
            }
        }
        let enabled = opt(&m.enabled)?;
        let ents = opt(&m.entitlements)?;
        if m.shape == Shape::Assignments && ents.is_none() {
            return Err(ImportError::mapping(
                file,
                "an assignments mapping needs `entitlements`",
            ));
        }
        let mut required = vec![key];
        if m.shape == Shape::Assignments {
            required.extend(ents);
        }
        for r in &m.required {
            required.push(col(r)?);
        }
        let mut types: Vec<Option<ColumnType>> = vec![None; columns.len()];
        if inferred {
            for (i, c) in columns.iter().enumerate() {
                if let Some(t @ (ColumnType::Integer | ColumnType::Boolean | ColumnType::Date)) =
                    schema.column_type(c)
                {
                    types[i] = Some(t.clone());
                }
            }
        }
        if let Some(e) = enabled {
            types[e] = Some(ColumnType::Boolean);
        }
        for (c, t) in &m.types {
            let i = col(c)?;
            types[i] = match t {
                ColumnType::String => None,
                t => Some(t.clone()),
            };
        }
        // Keys and entitlements are text whatever they look like.
        types[key] = None;
        if let Some(e) = ents {
            types[e] = None;
        }
        let fill_down = m
            .fill_down
            .iter()
            .map(|c| col(c))
            .collect::<Result<Vec<_>, _>>()?;
        let mut used: HashSet<usize> = fields.iter().map(|(_, i)| *i).collect();
        used.insert(key);
        used.extend(enabled);
        used.extend(ents);
        for c in &m.ignore {
            used.extend(resolve(columns, c));
        }
        let attrs = (0..columns.len()).filter(|i| !used.contains(i)).collect();
        Ok(Self {
            shape: m.shape,
            key,
            fields,
            enabled,
            ents,
            kind: m.entitlement_kind.clone(),
            sep: m.separator.clone(),
            required,
            types,
            fill_down,
            attrs,
        })
    }
}

struct Run<'a> {
    opts: &'a ImportOptions,
    file: String,
    sheet: Option<String>,
    columns: Vec<String>,
    plan: Plan,
    numeric_cells: bool,
    report: ImportReport,
    seen: HashMap<Box<str>, u64>,
    prev: Vec<String>,
    rejects: Option<(csv::Writer<BufWriter<File>>, PathBuf, PathBuf)>,
    emitting: bool,
    ents_seen: HashSet<String>,
}

impl Run<'_> {
    fn loc(&self, row: u64) -> Location {
        Location {
            file: self.file.clone(),
            sheet: self.sheet.clone(),
            row,
        }
    }

    fn issue(&self, row: u64, col: usize, kind: IssueKind, msg: String) -> Issue {
        Issue::new(
            self.loc(row),
            self.columns.get(col).map(String::as_str),
            kind,
            msg,
        )
    }

    fn process(&mut self, mut r: RawRow, sink: &mut dyn FnMut(Record)) -> Result<(), ImportError> {
        self.report.rows_read += 1;
        if r.issue.is_none() && r.is_blank() {
            self.report.blank_rows += 1;
            return Ok(());
        }
        let n = self.columns.len();
        if r.values.len() < n {
            r.values.resize(n, String::new());
        }
        for &c in &self.plan.fill_down {
            if r.values[c].trim().is_empty() {
                r.values[c] = self.prev.get(c).cloned().unwrap_or_default();
            }
        }
        if !self.plan.fill_down.is_empty() {
            self.prev.clone_from(&r.values);
        }
        let mut issues: Vec<Issue> = r.issue.take().into_iter().collect();
        if issues.iter().any(|i| i.kind == IssueKind::Syntax) {
            return self.reject(&r, issues);
        }
        for &c in &self.plan.required {
            if r.values[c].trim().is_empty() {
                issues.push(self.issue(
                    r.row,
                    c,
                    IssueKind::Required,
                    "required value is empty".into(),
                ));
            }
        }
        for c in 0..n {
            let Some(t) = &self.plan.types[c] else {
                continue;
            };
            let v = r.values[c].trim();
            if v.is_empty() {
                continue;
            }
            let (ok, replace) = match t {
                ColumnType::Integer => (is_integer(v) || v.parse::<i64>().is_ok(), None),
                ColumnType::Boolean => (parse_bool(v).is_some(), None),
                ColumnType::Date => {
                    if let Some(d) = parse_date(v) {
                        // Already ISO (the common case): keep the text, skip formatting.
                        let b = v.as_bytes();
                        let iso = b.len() == 10 && b[4] == b'-' && b[7] == b'-';
                        (true, (!iso).then(|| d.to_string()))
                    } else if let Some(d) = self
                        .numeric_cells
                        .then(|| v.parse::<f64>().ok())
                        .flatten()
                        .and_then(excel_serial_date)
                    {
                        (true, Some(d.to_string()))
                    } else {
                        (false, None)
                    }
                }
                _ => (true, None),
            };
            if !ok {
                let shown: String = v.chars().take(40).collect();
                issues.push(self.issue(
                    r.row,
                    c,
                    IssueKind::Type,
                    format!("{shown:?} is not a valid {}", t.name()),
                ));
            }
            if let Some(x) = replace {
                r.values[c] = x;
            }
        }
        let key = r.values[self.plan.key].trim();
        if !key.is_empty() {
            match self.plan.shape {
                Shape::Accounts => {
                    if let Some(first) = self.seen.get(key) {
                        issues.push(self.issue(
                            r.row,
                            self.plan.key,
                            IssueKind::Duplicate,
                            format!("duplicate account {key:?} (first at row {first})"),
                        ));
                    } else if issues.is_empty() {
                        self.seen.insert(key.into(), r.row);
                    }
                }
                Shape::Assignments => {
                    let e = self.plan.ents.map_or("", |i| r.values[i].trim());
                    let pair = format!("{key}\u{1f}{e}");
                    if let Some(first) = self.seen.get(pair.as_str()) {
                        issues.push(self.issue(
                            r.row,
                            self.plan.ents.unwrap_or(self.plan.key),
                            IssueKind::Duplicate,
                            format!("duplicate assignment {key:?} → {e:?} (first at row {first})"),
                        ));
                    } else if issues.is_empty() {
                        self.seen.insert(pair.into(), r.row);
                    }
                    if let Some(known) = &self.opts.known_accounts
                        && !known.contains(key)
                    {
                        issues.push(self.issue(
                            r.row,
                            self.plan.key,
                            IssueKind::UnknownAccount,
                            format!("assignment to unknown account {key:?}"),
                        ));
                    }
                }
            }
        }
        if !issues.is_empty() {
            return self.reject(&r, issues);
        }
        self.report.rows_imported += 1;
        let rec = self.map(r);
        if self.emitting {
            sink(rec);
        }
        Ok(())
    }

    fn note_entitlement(&mut self, id: &str) {
        if !self.ents_seen.contains(id) {
            self.ents_seen.insert(id.to_string());
            self.report.entitlements.insert(id.to_string());
        }
    }

    fn map(&mut self, r: RawRow) -> Record {
        let mut values = r.values;
        let key = values[self.plan.key].trim().to_string();
        if self.plan.shape == Shape::Assignments {
            let e = self
                .plan
                .ents
                .map_or(String::new(), |i| values[i].trim().to_string());
            self.note_entitlement(&e);
            return Record::Assignment(AssignmentRecord {
                row: r.row,
                account: key,
                entitlement: EntitlementRef::new(self.plan.kind.clone(), e),
            });
        }
        let mut id = Identity::person(key.clone());
        for &(f, c) in &self.plan.fields {
            let v = std::mem::take(&mut values[c]);
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            let v = Some(v.to_string());
            match f {
                F::Login => id.user_name = v,
                F::Display => id.display_name = v,
                F::Given => id.given_name = v,
                F::Family => id.family_name = v,
                F::Email => id.email = v,
                F::Dept => id.department = v,
                F::Manager => id.manager = v,
                F::EmpNo => id.employee_id = v,
            }
        }
        let enabled = self.plan.enabled.and_then(|c| parse_bool(&values[c]));
        let mut entitlements = Vec::new();
        if let Some(c) = self.plan.ents {
            let cell = std::mem::take(&mut values[c]);
            let sep = std::mem::take(&mut self.plan.sep);
            for e in cell.split(sep.as_str()) {
                let e = e.trim();
                if !e.is_empty() {
                    self.note_entitlement(e);
                    entitlements.push(EntitlementRef::new(self.plan.kind.clone(), e));
                }
            }
            self.plan.sep = sep;
        }
        for &c in &self.plan.attrs {
            let v = values[c].trim();
            if v.is_empty() {
                continue;
            }
            let jv = match &self.plan.types[c] {
                Some(ColumnType::Integer) => v
                    .parse::<i64>()
                    .map(serde_json::Value::from)
                    .unwrap_or_else(|_| v.into()),
                Some(ColumnType::Boolean) => parse_bool(v).map_or_else(|| v.into(), Into::into),
                Some(ColumnType::MultiValued { separator }) => serde_json::Value::Array(
                    v.split(separator.as_str())
                        .map(|s| s.trim())
                        .filter(|s| !s.is_empty())
                        .map(serde_json::Value::from)
                        .collect(),
                ),
                _ => v.into(),
            };
            id.attributes.insert(self.columns[c].clone(), jv);
        }
        Record::Account(AccountRecord {
            row: r.row,
            key,
            identity: id,
            enabled,
            entitlements,
        })
    }

    fn reject(&mut self, r: &RawRow, issues: Vec<Issue>) -> Result<(), ImportError> {
        self.report.rows_rejected += 1;
        self.report.issue_count += issues.len() as u64;
        if self.opts.policy == RejectPolicy::RejectFile {
            self.emitting = false;
        }
        if let Some(path) = &self.opts.rejects_path {
            if self.rejects.is_none() {
                let tmp = path.with_extension("rejects-tmp");
                let f = File::create(&tmp)
                    .map_err(|e| ImportError::io(&tmp.display().to_string(), e))?;
                let mut w = csv::WriterBuilder::new()
                    .flexible(true)
                    .from_writer(BufWriter::new(f));
                let mut header = vec!["file", "sheet", "row", "column", "kind", "error"];
                header.extend(self.columns.iter().map(String::as_str));
                w.write_record(&header)
                    .map_err(|e| ImportError::io(&path.display().to_string(), e.into()))?;
                self.rejects = Some((w, tmp, path.clone()));
            }
            let (w, _, path) = self.rejects.as_mut().expect("rejects writer");
            for i in &issues {
                let row = i.location.row.to_string();
                let mut rec = vec![
                    i.location.file.as_str(),
                    i.location.sheet.as_deref().unwrap_or(""),
                    row.as_str(),
                    i.column.as_deref().unwrap_or(""),
                    i.kind.as_str(),
                    i.message.as_str(),
                ];
                rec.extend(r.values.iter().map(String::as_str));
                w.write_record(&rec)
                    .map_err(|e| ImportError::io(&path.display().to_string(), e.into()))?;
            }
        }
        let room = self
            .opts
            .max_issues
            .saturating_sub(self.report.issues.len());
        self.report.issues.extend(issues.into_iter().take(room));
        Ok(())
    }
}

impl Importer {
    /// An importer.
    pub fn new(opts: ImportOptions) -> Self {
        Self { opts }
    }

    /// The options.
    pub fn options(&self) -> &ImportOptions {
        &self.opts
    }

    /// Infer the schema from the first `sample_rows` rows only.
    pub fn infer(&self, path: impl AsRef<Path>) -> Result<Schema, ImportError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let format = read::detect_format(path, &self.opts.source)?;
        let mut src = read::open(path, &file, format, &self.opts.source)?;
        let sample = sample(&mut *src, self.opts.sample_rows)?;
        let sep = self
            .opts
            .mapping
            .as_ref()
            .map_or(";", |m| m.separator.as_str());
        Ok(infer(src.columns(), &sample, sep))
    }

    /// Stream `path` through inference, mapping and validation, handing every good
    /// record to `sink` as it goes. Memory grows with the number of distinct keys
    /// (duplicate detection), not with the file (XLSX and YAML excepted: their reader
    /// holds one sheet / document).
    ///
    /// With [`RejectPolicy::RejectFile`], records given to `sink` before the first
    /// error are provisional: on `Err(Rejected)` discard them.
    pub fn import(
        &self,
        path: impl AsRef<Path>,
        sink: &mut dyn FnMut(Record),
    ) -> Result<ImportReport, ImportError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let format = read::detect_format(path, &self.opts.source)?;
        let mut src = read::open(path, &file, format, &self.opts.source)?;
        let sample = sample(&mut *src, self.opts.sample_rows)?;
        let columns = src.columns().to_vec();
        let sep = self
            .opts
            .mapping
            .as_ref()
            .map_or(";", |m| m.separator.as_str());
        let schema = infer(&columns, &sample, sep);
        let mapping = match (&self.opts.mapping, &schema.suggested) {
            (Some(m), _) => m.clone(),
            (None, Some(m)) => m.clone(),
            (None, None) if columns.is_empty() => Mapping::accounts(""),
            (None, None) => {
                return Err(ImportError::mapping(
                    &file,
                    format!(
                        "no account key column could be inferred from {columns:?}; configure a mapping"
                    ),
                ));
            }
        };
        let empty = columns.is_empty();
        let plan = if empty {
            None
        } else {
            Some(Plan::new(
                &file,
                &columns,
                &mapping,
                &schema,
                self.opts.validate_inferred_types,
            )?)
        };
        let mut report = ImportReport {
            file: file.clone(),
            format,
            sheet: src.sheet().map(str::to_string),
            columns: columns.clone(),
            schema,
            mapping,
            rows_read: 0,
            rows_imported: 0,
            rows_rejected: 0,
            blank_rows: 0,
            issue_count: 0,
            issues: Vec::new(),
            rejects_file: None,
            entitlements: BTreeSet::new(),
        };
        let Some(plan) = plan else {
            return Ok(report);
        };
        report.sheet = src.sheet().map(str::to_string);
        let mut run = Run {
            opts: &self.opts,
            file,
            sheet: report.sheet.clone(),
            columns,
            plan,
            numeric_cells: src.numeric_cells(),
            report,
            seen: HashMap::new(),
            prev: Vec::new(),
            rejects: None,
            emitting: true,
            ents_seen: HashSet::new(),
        };
        for r in sample {
            run.process(r, sink)?;
        }
        while let Some(r) = src.next_row() {
            run.process(r?, sink)?;
        }
        if let Some((mut w, tmp, path)) = run.rejects.take() {
            let name = path.display().to_string();
            w.flush().map_err(|e| ImportError::io(&name, e))?;
            let f = w
                .into_inner()
                .map_err(|e| ImportError::io(&name, e.into_error()))?
                .into_inner()
                .map_err(|e| ImportError::io(&name, e.into_error()))?;
            f.sync_all().map_err(|e| ImportError::io(&name, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| ImportError::io(&name, e))?;
            run.report.rejects_file = Some(path);
        }
        let report = run.report;
        if self.opts.policy == RejectPolicy::RejectFile && report.issue_count > 0 {
            let first = report
                .issues
                .first()
                .cloned()
                .expect("an issue was recorded");
            return Err(ImportError::Rejected {
                file: report.file.clone(),
                errors: report.issue_count,
                rows: report.rows_rejected,
                first: Box::new(first),
                report: Box::new(report),
            });
        }
        Ok(report)
    }

    /// Import into a [`Snapshot`] (for delta computation and ledger import).
    pub fn import_snapshot(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<(ImportReport, Snapshot), ImportError> {
        let mut snap = Snapshot::default();
        let report = self.import(path, &mut |r| snap.add(&r))?;
        snap.note_entitlements(&report.mapping.entitlement_kind, &report.entitlements);
        Ok((report, snap))
    }
}

fn sample(src: &mut dyn RowSource, n: usize) -> Result<Vec<RawRow>, ImportError> {
    let mut v = Vec::with_capacity(n.min(4096));
    while v.len() < n {
        match src.next_row() {
            Some(r) => v.push(r?),
            None => break,
        }
    }
    Ok(v)
}
