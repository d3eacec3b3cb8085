//! `impl ProvisioningAdapter for FlatFileAdapter`: operations change an in-memory copy
//! of the target file; every batch that changed something writes one new generation
//! (full file, change file, manifest) atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use async_trait::async_trait;
use iga_adapter::{
    Account, AccountRef, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo,
    Error, ErrorKind, NoOpReason, ObjectRef, Observed, Outcome, Page, PageRequest,
    ProvisioningAdapter, Result, bad_cursor,
};
use iga_directive::{EntitlementRef, Operation, OperationKind};

use crate::KIND;
use crate::config::{Encoding, FlatFileConfig, KeyFrom};
use crate::error::{ImportError, classify_io};
use crate::mapping::parse_bool;
use crate::store::{MANIFEST_FORMAT, Manifest, ManifestEntry, Table, csv_bytes, write_atomic};

/// The flat-file target adapter. Cheap to clone (shared state).
#[derive(Clone)]
pub struct FlatFileAdapter {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: FlatFileConfig,
    caps: Capabilities,
    state: Mutex<State>,
    io_calls: AtomicU64,
}

#[derive(Default)]
struct Cols {
    key: usize,
    login: Option<usize>,
    enabled: Option<usize>,
    ents: Option<usize>,
    display: Option<usize>,
    email: Option<usize>,
    /// canonical field → column
    canonical: BTreeMap<&'static str, usize>,
}

#[derive(Default)]
struct State {
    table: Table,
    cols: Cols,
    index: BTreeMap<String, usize>,
    catalog: BTreeSet<String>,
    fingerprint: Option<(u64, Option<SystemTime>)>,
    sequence: u64,
    loaded: bool,
    /// A write failed part-way: the next batch writes a generation even if it changes
    /// nothing, so the manifest matches the files again.
    needs_generation: bool,
}

/// One line of a change file.
struct Change {
    op_id: String,
    action: &'static str,
    account: String,
    entitlement: String,
    field: String,
    old: String,
    new: String,
}

impl fmt::Debug for FlatFileAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlatFileAdapter")
            .field("config", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for FlatFileAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "flatfile:{} ({})",
            self.inner.cfg.name, self.inner.cfg.file
        )
    }
}

fn cfg_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::ConfigInvalid, msg).with_connector(KIND)
}

fn import_err(e: ImportError) -> Error {
    match e {
        ImportError::Io { source, file } => classify_io(&source, &format!("read {file}")),
        other => Error::new(ErrorKind::InvalidInput, format!("target file: {other}"))
            .with_connector(KIND),
    }
}

fn encode_cursor(s: &str) -> String {
    hex::encode(s.as_bytes())
}

fn decode_cursor(c: &str) -> Result<String> {
    hex::decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| bad_cursor(c))
}

impl FlatFileAdapter {
    pub(crate) fn from_config(cfg: FlatFileConfig) -> Result<Self> {
        if cfg.mapping.account_id.is_empty() {
            return Err(cfg_err("mapping.account_id must name a column"));
        }
        std::fs::create_dir_all(&cfg.dir)
            .map_err(|e| classify_io(&e, "create target directory"))?;
        let m = &cfg.mapping;
        let mut caps =
            Capabilities::full([m.entitlement_kind.clone()]).with_batch_max(cfg.batch_max);
        caps.list_page_max = cfg.page_max.max(1);
        caps.disable_account = m.enabled.is_some();
        caps.enable_account = m.enabled.is_some();
        caps.grant = m.entitlements.is_some();
        caps.revoke = m.entitlements.is_some();
        if m.entitlements.is_none() {
            caps.entitlement_kinds.clear();
        }
        let a = Self {
            inner: Arc::new(Inner {
                cfg,
                caps,
                state: Mutex::new(State::default()),
                io_calls: AtomicU64::new(0),
            }),
        };
        // Load now so a header that lacks a mapped column fails at build time.
        {
            let mut st = a.lock();
            a.refresh(&mut st)?;
        }
        Ok(a)
    }

    /// The configuration.
    pub fn config(&self) -> &FlatFileConfig {
        &self.inner.cfg
    }

    /// Path of the full target file.
    pub fn file_path(&self) -> PathBuf {
        self.inner.cfg.dir.join(&self.inner.cfg.file)
    }

    /// Path of the manifest (`<file>.manifest.json`).
    pub fn manifest_path(&self) -> PathBuf {
        self.inner
            .cfg
            .dir
            .join(format!("{}.manifest.json", self.inner.cfg.file))
    }

    /// Path of the change file of generation `sequence`.
    pub fn change_file_path(&self, sequence: u64) -> PathBuf {
        self.inner.cfg.dir.join(self.change_file_name(sequence))
    }

    fn change_file_name(&self, sequence: u64) -> String {
        let f = &self.inner.cfg.file;
        let stem = f.rsplit_once('.').map_or(f.as_str(), |(s, _)| s);
        format!("{stem}.changes.{sequence:06}.csv")
    }

    /// Current generation number (0 before the first write).
    pub fn sequence(&self) -> u64 {
        self.lock().sequence
    }

    /// File-system calls made so far (stat, read, write): an I/O probe for tests.
    pub fn io_calls(&self) -> u64 {
        self.inner.io_calls.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn io(&self) {
        self.inner.io_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Reload the file if it changed on disk since we last read or wrote it.
    fn refresh(&self, st: &mut State) -> Result<()> {
        let cfg = &self.inner.cfg;
        let path = self.file_path();
        self.io();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(classify_io(&e, "stat target file")),
        };
        let fp = meta.as_ref().map(|m| (m.len(), m.modified().ok()));
        if st.loaded && fp == st.fingerprint {
            return Ok(());
        }
        let table = match &meta {
            Some(_) => {
                self.io();
                Table::load(&path, &cfg.csv).map_err(import_err)?
            }
            None => Table {
                header: if cfg.columns.is_empty() {
                    cfg.mapping
                        .fields()
                        .into_iter()
                        .map(|(_, c)| c.to_string())
                        .collect()
                } else {
                    cfg.columns.clone()
                },
                rows: Vec::new(),
            },
        };
        let col = |name: &str| -> Result<usize> {
            table
                .header
                .iter()
                .position(|h| h == name)
                .or_else(|| {
                    table
                        .header
                        .iter()
                        .position(|h| h.eq_ignore_ascii_case(name))
                })
                .ok_or_else(|| {
                    cfg_err(format!(
                        "{}: mapped column {name:?} is not in the header {:?}",
                        cfg.file, table.header
                    ))
                })
        };
        let mut cols = Cols {
            key: col(&cfg.mapping.account_id)?,
            ..Cols::default()
        };
        for (field, c) in cfg.mapping.fields() {
            let i = col(c)?;
            cols.canonical.insert(field, i);
            match field {
                "login" => cols.login = Some(i),
                "enabled" => cols.enabled = Some(i),
                "entitlements" => cols.ents = Some(i),
                "display_name" => cols.display = Some(i),
                "email" => cols.email = Some(i),
                _ => {}
            }
        }
        let mut index = BTreeMap::new();
        for (i, r) in table.rows.iter().enumerate() {
            let k = r[cols.key].trim();
            if !k.is_empty() {
                index.entry(k.to_string()).or_insert(i);
            }
        }
        let mut catalog: BTreeSet<String> = cfg.roles.iter().cloned().collect();
        if let Some(rf) = &cfg.roles_file {
            self.io();
            let text =
                std::fs::read_to_string(rf).map_err(|e| classify_io(&e, "read roles file"))?;
            for (n, line) in text.lines().enumerate() {
                let first = line
                    .split([',', ';', '\t'])
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches('"');
                let header = n == 0
                    && ["role", "roles", "group", "id", "name"]
                        .iter()
                        .any(|h| first.eq_ignore_ascii_case(h));
                if !first.is_empty() && !header {
                    catalog.insert(first.to_string());
                }
            }
        }
        if let Some(e) = cols.ents {
            for r in &table.rows {
                for role in split(&r[e], &cfg.mapping.separator) {
                    catalog.insert(role.to_string());
                }
            }
        }
        if !st.loaded {
            self.io();
            if let Ok(b) = std::fs::read(self.manifest_path())
                && let Ok(m) = serde_json::from_slice::<Manifest>(&b)
            {
                st.sequence = m.sequence;
            }
        }
        st.table = table;
        st.cols = cols;
        st.index = index;
        st.catalog = catalog;
        st.fingerprint = fp;
        st.loaded = true;
        Ok(())
    }

    fn key_of(&self, op: &Operation) -> String {
        op.native_id
            .clone()
            .unwrap_or_else(|| match self.inner.cfg.key_from {
                KeyFrom::IdentityId => op.identity.id.clone(),
                KeyFrom::Login => op.identity.login().to_string(),
            })
    }

    fn find(&self, st: &State, r: &AccountRef) -> Option<usize> {
        if let Some(n) = &r.native_id
            && let Some(i) = st.index.get(n)
        {
            return Some(*i);
        }
        let by_id = match self.inner.cfg.key_from {
            KeyFrom::IdentityId => Some(&r.identity_id),
            KeyFrom::Login => r.login.as_ref(),
        };
        if let Some(i) = by_id.and_then(|k| st.index.get(k)) {
            return Some(*i);
        }
        let (Some(login), Some(lc)) = (&r.login, st.cols.login) else {
            return None;
        };
        st.table
            .rows
            .iter()
            .position(|row| row[lc].trim().eq_ignore_ascii_case(login))
    }

    fn account(&self, st: &State, i: usize) -> Account {
        let row = &st.table.rows[i];
        let key = row[st.cols.key].trim().to_string();
        let get = |c: Option<usize>| {
            c.map(|c| row[c].trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let mut a = Account::new(key.clone());
        a.identity_id = (self.inner.cfg.key_from == KeyFrom::IdentityId).then_some(key);
        a.login = get(st.cols.login)
            .or_else(|| (self.inner.cfg.key_from == KeyFrom::Login).then(|| a.native_id.clone()));
        a.display_name = get(st.cols.display);
        a.email = get(st.cols.email);
        a.enabled = st
            .cols
            .enabled
            .and_then(|c| parse_bool(&row[c]))
            .unwrap_or(true);
        let skip: BTreeSet<usize> = st
            .cols
            .canonical
            .values()
            .copied()
            .chain([st.cols.key])
            .collect();
        for (c, h) in st.table.header.iter().enumerate() {
            if !skip.contains(&c) && !row[c].trim().is_empty() {
                a.attributes.insert(h.clone(), row[c].clone().into());
            }
        }
        a
    }

    fn rebuild_index(st: &mut State) {
        st.index.clear();
        for (i, r) in st.table.rows.iter().enumerate() {
            let k = r[st.cols.key].trim();
            if !k.is_empty() {
                st.index.entry(k.to_string()).or_insert(i);
            }
        }
    }

    /// The column an attribute name addresses.
    fn attr_column(&self, st: &State, name: &str) -> Result<usize> {
        let canonical = match name {
            "user_name" => "login",
            other => other,
        };
        if canonical == "enabled" || canonical == "entitlements" || canonical == "account_id" {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("attribute {name:?} cannot be set by update; use the dedicated operation"),
            )
            .with_connector(KIND));
        }
        if let Some(c) = st.cols.canonical.get(canonical) {
            return Ok(*c);
        }
        st.table
            .header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::SchemaViolation,
                    format!("the target file has no column for attribute {name:?}"),
                )
                .with_connector(KIND)
            })
    }

    fn value_text(&self, v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| self.value_text(x))
                .collect::<Vec<_>>()
                .join(&self.inner.cfg.mapping.separator),
            other => other.to_string(),
        }
    }

    fn bool_text(&self, b: bool) -> String {
        if b {
            self.inner.cfg.true_value.clone()
        } else {
            self.inner.cfg.false_value.clone()
        }
    }

    /// Apply one operation to the in-memory table (no I/O).
    fn apply_mem(&self, st: &mut State, op: &Operation, out: &mut Vec<Change>) -> Result<Outcome> {
        self.inner
            .caps
            .check(op)
            .map_err(|e| e.with_connector(KIND))?;
        let aref = AccountRef::of_operation(op);
        let found = self.find(st, &aref);
        let change = |action: &'static str, account: &str| Change {
            op_id: op.id.to_string(),
            action,
            account: account.to_string(),
            entitlement: String::new(),
            field: String::new(),
            old: String::new(),
            new: String::new(),
        };
        let not_found = || {
            Error::not_found(format!(
                "account {} does not exist in the target file",
                aref.identity_id
            ))
            .with_connector(KIND)
            .with_context("operation_id", &op.id)
        };
        match op.kind {
            OperationKind::CreateAccount => {
                if let Some(i) = found {
                    let native = st.table.rows[i][st.cols.key].trim().to_string();
                    return Ok(Outcome::AlreadyInState {
                        reason: NoOpReason::LinkedExisting,
                        native_id: Some(native),
                    });
                }
                let key = self.key_of(op);
                if key.trim().is_empty() {
                    return Err(Error::invalid_input("account key is empty").with_connector(KIND));
                }
                let mut row = vec![String::new(); st.table.header.len()];
                row[st.cols.key] = key.clone();
                let id = &op.identity;
                let fields: [(&str, Option<&str>); 8] = [
                    ("login", Some(id.login())),
                    ("display_name", id.display_name.as_deref()),
                    ("given_name", id.given_name.as_deref()),
                    ("family_name", id.family_name.as_deref()),
                    ("email", id.email.as_deref()),
                    ("department", id.department.as_deref()),
                    ("manager", id.manager.as_deref()),
                    ("employee_id", id.employee_id.as_deref()),
                ];
                for (f, v) in fields {
                    if let (Some(c), Some(v)) = (st.cols.canonical.get(f), v) {
                        row[*c] = v.to_string();
                    }
                }
                if let Some(c) = st.cols.enabled {
                    row[c] = self.bool_text(true);
                }
                for (k, v) in &op.attributes {
                    let c = self.attr_column(st, k)?;
                    row[c] = self.value_text(v);
                }
                st.table.rows.push(row);
                st.index.insert(key.clone(), st.table.rows.len() - 1);
                out.push(change("create", &key));
                Ok(Outcome::Applied {
                    native_id: Some(key),
                })
            }
            OperationKind::UpdateAccount => {
                let i = found.ok_or_else(not_found)?;
                let mut sets = Vec::new();
                for (k, v) in &op.attributes {
                    sets.push((self.attr_column(st, k)?, self.value_text(v)));
                }
                let key = st.table.rows[i][st.cols.key].trim().to_string();
                let mut changed = false;
                for (c, v) in sets {
                    let old = std::mem::replace(&mut st.table.rows[i][c], v.clone());
                    if old != v {
                        changed = true;
                        let mut ch = change("update", &key);
                        ch.field = st.table.header[c].clone();
                        ch.old = old;
                        ch.new = v;
                        out.push(ch);
                    }
                }
                Ok(if changed {
                    Outcome::Applied {
                        native_id: Some(key),
                    }
                } else {
                    Outcome::AlreadyInState {
                        reason: NoOpReason::NoChange,
                        native_id: Some(key),
                    }
                })
            }
            OperationKind::DisableAccount | OperationKind::EnableAccount => {
                let i = found.ok_or_else(not_found)?;
                let c = st
                    .cols
                    .enabled
                    .ok_or_else(|| Error::unsupported("no enabled column"))?;
                let want = op.kind == OperationKind::EnableAccount;
                let key = st.table.rows[i][st.cols.key].trim().to_string();
                let now = parse_bool(&st.table.rows[i][c]).unwrap_or(true);
                if now == want {
                    let reason = if want {
                        NoOpReason::AlreadyEnabled
                    } else {
                        NoOpReason::AlreadyDisabled
                    };
                    return Ok(Outcome::AlreadyInState {
                        reason,
                        native_id: Some(key),
                    });
                }
                let old = std::mem::replace(&mut st.table.rows[i][c], self.bool_text(want));
                let mut ch = change(if want { "enable" } else { "disable" }, &key);
                ch.field = st.table.header[c].clone();
                ch.old = old;
                ch.new = self.bool_text(want);
                out.push(ch);
                Ok(Outcome::Applied {
                    native_id: Some(key),
                })
            }
            OperationKind::DeleteAccount => {
                let Some(i) = found else {
                    return Ok(Outcome::no_op(NoOpReason::AccountAbsent));
                };
                let row = st.table.rows.remove(i);
                let key = row[st.cols.key].trim().to_string();
                Self::rebuild_index(st);
                out.push(change("delete", &key));
                Ok(Outcome::Applied {
                    native_id: Some(key),
                })
            }
            OperationKind::Grant | OperationKind::Revoke => {
                let e = op.entitlement.as_ref().expect("checked by capabilities");
                let grant = op.kind == OperationKind::Grant;
                let c = st
                    .cols
                    .ents
                    .ok_or_else(|| Error::unsupported("no entitlement column"))?;
                if grant && !st.catalog.contains(&e.id) {
                    return Err(Error::not_found(format!(
                        "entitlement {e} does not exist in the target"
                    ))
                    .with_connector(KIND)
                    .with_context("operation_id", &op.id));
                }
                let Some(i) = found else {
                    if grant {
                        return Err(not_found());
                    }
                    return Ok(Outcome::no_op(NoOpReason::AlreadyAbsent));
                };
                let sep = self.inner.cfg.mapping.separator.clone();
                let key = st.table.rows[i][st.cols.key].trim().to_string();
                let mut roles: Vec<String> = split(&st.table.rows[i][c], &sep)
                    .map(str::to_string)
                    .collect();
                let held = roles.iter().any(|r| r == &e.id);
                if grant == held {
                    let reason = if grant {
                        NoOpReason::AlreadyGranted
                    } else {
                        NoOpReason::AlreadyAbsent
                    };
                    return Ok(Outcome::AlreadyInState {
                        reason,
                        native_id: Some(key),
                    });
                }
                if grant {
                    roles.push(e.id.clone());
                } else {
                    roles.retain(|r| r != &e.id);
                }
                let old = std::mem::replace(&mut st.table.rows[i][c], roles.join(&sep));
                let mut ch = change(if grant { "grant" } else { "revoke" }, &key);
                ch.entitlement = e.id.clone();
                ch.field = st.table.header[c].clone();
                ch.new = st.table.rows[i][c].clone();
                ch.old = old;
                out.push(ch);
                Ok(Outcome::Applied {
                    native_id: Some(key),
                })
            }
            _ => Err(Error::unsupported(format!(
                "operation {} is not supported",
                op.kind
            ))),
        }
    }

    /// Write one generation: full file, change file, manifest (in that order).
    fn write_generation(&self, st: &mut State, changes: &[Change]) -> Result<()> {
        let cfg = &self.inner.cfg;
        let delimiter = cfg
            .csv
            .delimiter
            .and_then(|d| u8::try_from(d).ok())
            .unwrap_or(b',');
        let latin1 = cfg.csv.encoding == Encoding::Latin1;
        let seq = st.sequence + 1;
        let full = csv_bytes(
            &st.table.header,
            &st.table.rows,
            delimiter,
            cfg.line_ending,
            latin1,
        )
        .map_err(|m| Error::invalid_input(m).with_connector(KIND))?;
        let mut manifest = Manifest {
            format: MANIFEST_FORMAT.into(),
            sequence: seq,
            generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            full: ManifestEntry::of(&cfg.file, st.table.rows.len() as u64, &full),
            changes: None,
            hmac_sha256: None,
        };
        let change_file = if cfg.change_files {
            let header: Vec<String> = [
                "sequence",
                "operation_id",
                "action",
                "account_id",
                "entitlement",
                "field",
                "old_value",
                "new_value",
            ]
            .map(String::from)
            .to_vec();
            let rows: Vec<Vec<String>> = changes
                .iter()
                .map(|c| {
                    vec![
                        seq.to_string(),
                        c.op_id.clone(),
                        c.action.to_string(),
                        c.account.clone(),
                        c.entitlement.clone(),
                        c.field.clone(),
                        c.old.clone(),
                        c.new.clone(),
                    ]
                })
                .collect();
            let bytes = csv_bytes(&header, &rows, delimiter, cfg.line_ending, latin1)
                .map_err(|m| Error::invalid_input(m).with_connector(KIND))?;
            let name = self.change_file_name(seq);
            manifest.changes = Some(ManifestEntry::of(&name, rows.len() as u64, &bytes));
            Some((name, bytes))
        } else {
            None
        };
        let manifest = manifest.sign(cfg.manifest_key.as_ref());
        let mbytes = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
        self.io();
        write_atomic(&self.file_path(), &full).map_err(|e| classify_io(&e, "write target file"))?;
        // From here on the disk differs from the last manifest until it is rewritten.
        st.needs_generation = true;
        if let Some((name, bytes)) = change_file {
            self.io();
            write_atomic(&cfg.dir.join(name), &bytes)
                .map_err(|e| classify_io(&e, "write change file"))?;
        }
        self.io();
        write_atomic(&self.manifest_path(), &mbytes)
            .map_err(|e| classify_io(&e, "write manifest"))?;
        st.sequence = seq;
        st.needs_generation = false;
        self.io();
        st.fingerprint = std::fs::metadata(self.file_path())
            .ok()
            .map(|m| (m.len(), m.modified().ok()));
        tracing::debug!(target: "iga_connector_flatfile", file = %cfg.file, sequence = seq, changes = changes.len(), "wrote generation");
        Ok(())
    }

    fn run_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        let mut st = self.lock();
        // Capability problems are answered before any I/O.
        let pre: Vec<Option<Error>> = ops
            .iter()
            .map(|op| {
                self.inner
                    .caps
                    .check(op)
                    .err()
                    .map(|e| e.with_connector(KIND))
            })
            .collect();
        if pre.iter().all(Option::is_some) {
            return pre.into_iter().map(|e| Err(e.expect("checked"))).collect();
        }
        if let Err(e) = self.refresh(&mut st) {
            return ops.iter().map(|_| Err(e.clone())).collect();
        }
        let mut changes = Vec::new();
        let mut results = Vec::with_capacity(ops.len());
        let mut changed_items = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            if let Some(e) = &pre[i] {
                results.push(Err(e.clone()));
                continue;
            }
            let before = changes.len();
            let r = self.apply_mem(&mut st, op, &mut changes);
            if changes.len() > before {
                changed_items.push(i);
            }
            results.push(r);
        }
        if changes.is_empty() && !st.needs_generation {
            return results;
        }
        match self.write_generation(&mut st, &changes) {
            Ok(()) => {}
            Err(e) => {
                // Forget the in-memory edits: the next call reloads whatever reached
                // the disk, and writes a fresh generation (manifest included).
                st.loaded = false;
                st.fingerprint = None;
                for i in changed_items {
                    results[i] = Err(e.clone().with_context("operation_id", &ops[i].id));
                }
            }
        }
        results
    }

    fn page<T: Clone>(
        &self,
        items: impl Iterator<Item = (String, T)>,
        page: &PageRequest,
    ) -> Result<Page<T>> {
        let after = page.cursor.as_deref().map(decode_cursor).transpose()?;
        let limit = page.limit.clamp(1, self.inner.caps.list_page_max);
        let mut out = Vec::new();
        let mut last = None;
        let mut more = false;
        for (k, v) in items {
            if after.as_ref().is_some_and(|a| k.as_str() <= a.as_str()) {
                continue;
            }
            if out.len() == limit {
                more = true;
                break;
            }
            last = Some(k);
            out.push(v);
        }
        Ok(Page {
            items: out,
            next: if more {
                last.map(|k| encode_cursor(&k))
            } else {
                None
            },
        })
    }

    fn assignments_of(&self, st: &State, scope: &AssignmentScope) -> Vec<(String, Assignment)> {
        let Some(c) = st.cols.ents else {
            return Vec::new();
        };
        let kind = &self.inner.cfg.mapping.entitlement_kind;
        let sep = &self.inner.cfg.mapping.separator;
        let rows: Vec<usize> = match scope {
            AssignmentScope::Account(r) => self.find(st, r).into_iter().collect(),
            _ => st.index.values().copied().collect(),
        };
        let mut out = Vec::new();
        for i in rows {
            let acc = self.account(st, i);
            let mut roles: Vec<&str> = split(&st.table.rows[i][c], sep).collect();
            roles.sort_unstable();
            roles.dedup();
            for role in roles {
                if let AssignmentScope::Entitlement(e) = scope
                    && (&e.kind != kind || e.id != role)
                {
                    continue;
                }
                out.push((
                    format!("{}\u{1f}{role}", acc.native_id),
                    Assignment::new(
                        acc.native_id.clone(),
                        acc.identity_id.clone(),
                        EntitlementRef::new(kind.clone(), role),
                    ),
                ));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

fn split<'a>(cell: &'a str, sep: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    cell.split(sep).map(str::trim).filter(|s| !s.is_empty())
}

#[async_trait]
impl ProvisioningAdapter for FlatFileAdapter {
    fn info(&self) -> AdapterInfo {
        AdapterInfo::new(KIND, self.inner.cfg.name.clone())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.inner.caps
    }

    async fn check(&self) -> Result<()> {
        let mut st = self.lock();
        self.refresh(&mut st)?;
        self.io();
        let md = std::fs::metadata(&self.inner.cfg.dir)
            .map_err(|e| classify_io(&e, "stat target directory"))?;
        if md.permissions().readonly() {
            return Err(
                Error::new(ErrorKind::PermissionDenied, "target directory is read-only")
                    .with_connector(KIND),
            );
        }
        Ok(())
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.run_batch(std::slice::from_ref(op))
            .pop()
            .expect("one result per operation")
    }

    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        if ops.len() > self.inner.caps.batch_max {
            let mut out = Vec::with_capacity(ops.len());
            for chunk in ops.chunks(self.inner.caps.batch_max) {
                out.extend(self.run_batch(chunk));
            }
            return out;
        }
        self.run_batch(ops)
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        let mut st = self.lock();
        self.refresh(&mut st)?;
        Ok(match object {
            ObjectRef::Account(r) => self
                .find(&st, r)
                .map(|i| Observed::Account(self.account(&st, i))),
            ObjectRef::Entitlement(e) => (e.kind == self.inner.cfg.mapping.entitlement_kind
                && st.catalog.contains(&e.id))
            .then(|| Observed::Entitlement(EntitlementInfo::new(e.clone()))),
            _ => None,
        })
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        let mut st = self.lock();
        self.refresh(&mut st)?;
        let st = &*st;
        self.page(st.index.iter().map(|(k, i)| (k.clone(), *i)), &page)
            .map(|p| Page {
                items: p.items.into_iter().map(|i| self.account(st, i)).collect(),
                next: p.next,
            })
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        let mut st = self.lock();
        self.refresh(&mut st)?;
        let kind = self.inner.cfg.mapping.entitlement_kind.clone();
        if st.cols.ents.is_none() {
            return Ok(Page::last(Vec::new()));
        }
        self.page(
            st.catalog.iter().map(|r| {
                (
                    r.clone(),
                    EntitlementInfo::new(EntitlementRef::new(kind.clone(), r.clone())),
                )
            }),
            &page,
        )
    }

    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>> {
        let mut st = self.lock();
        self.refresh(&mut st)?;
        let items = self.assignments_of(&st, scope);
        self.page(items.into_iter(), &page)
    }
}
