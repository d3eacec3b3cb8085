//! Bulk import ("quick populate") of existing access.

use std::collections::HashMap;
use std::fmt;
use std::io;

use iga_directive::{EntitlementKind, GrantSourceKind};
use rusqlite::{Connection, OptionalExtension, Statement, TransactionBehavior, params};
use sha2::{Digest, Sha256};

use super::{SqliteLedger, ts};
use crate::error::{ImportRejected, RowError};
use crate::import::{ImportOptions, ImportProgress, ImportReport, ImportRule, ProgressFn, RuleRow};
use crate::{FailPoint, LedgerError, Result};

/// The writing side of a running import; see [`SqliteLedger::import`].
pub struct ImportSink<'a> {
    conn: &'a Connection,
    batch_id: i64,
    default_tenant: String,
    ins_grant: Statement<'a>,
    ins_item: Statement<'a>,
    sel_ident: Statement<'a>,
    ins_ident: Statement<'a>,
    sel_ent: Statement<'a>,
    ins_ent: Statement<'a>,
    sel_src: Statement<'a>,
    ins_src: Statement<'a>,
    idents: HashMap<Box<str>, i64>,
    ents: HashMap<Box<str>, i64>,
    sources: HashMap<Box<str>, i64>,
    kinds: HashMap<Box<str>, Box<str>>,
    /// The maps hold every interned name (preloaded): a miss is a new name.
    complete: bool,
    items: Vec<u8>,
    chunk: i64,
    buf: String,
    digest: Sha256,
    progress: ImportProgress,
    progress_every: u64,
    progress_fn: Option<ProgressFn>,
    errors: Vec<RowError>,
    max_errors: usize,
}

impl fmt::Debug for ImportSink<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportSink")
            .field("batch_id", &self.batch_id)
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}

fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

impl ImportSink<'_> {
    fn reject(&mut self, row: u64, field: &'static str, reason: impl Into<String>) {
        self.progress.rows_rejected += 1;
        if self.errors.len() < self.max_errors {
            self.errors.push(RowError {
                row,
                field,
                reason: reason.into(),
            });
        }
    }

    /// Reject a row that could not be read at all (malformed CSV line, bad encoding).
    pub fn reject_malformed(&mut self, row: u64, reason: impl Into<String>) {
        self.progress.rows_read += 1;
        self.reject(row, "row", reason);
        self.tick();
    }

    /// Add the next row; its row number is its position (1-based).
    pub fn add(&mut self, r: &RuleRow<'_>) -> Result<()> {
        let n = self.progress.rows_read + 1;
        self.add_numbered(n, r)
    }

    /// Add a row with an explicit row number (e.g. its CSV line). Invalid rows are
    /// collected (the import then fails as a whole); `Err` is a storage failure.
    pub fn add_numbered(&mut self, row: u64, r: &RuleRow<'_>) -> Result<()> {
        self.progress.rows_read += 1;
        let res = self.add_inner(row, r);
        self.tick();
        res
    }

    fn tick(&mut self) {
        if self.progress.rows_read.is_multiple_of(self.progress_every)
            && let Some(f) = self.progress_fn.as_mut()
        {
            f(&self.progress);
        }
    }

    fn add_inner(&mut self, row: u64, r: &RuleRow<'_>) -> Result<()> {
        for (field, v) in [
            ("identity", r.identity),
            ("system", r.system),
            ("entitlement", r.entitlement_id),
            ("source", r.source_detail),
        ] {
            if blank(v) {
                let what = if field == "source" {
                    "missing source detail (expected kind:detail)"
                } else {
                    "missing value"
                };
                self.reject(row, field, what);
                return Ok(());
            }
        }
        for (field, v) in [
            ("tenant", r.tenant),
            ("identity", r.identity),
            ("system", r.system),
            ("entitlement_kind", r.entitlement_kind),
            ("entitlement", r.entitlement_id),
            ("source", r.source_detail),
        ] {
            if v.contains('\0') {
                self.reject(row, field, "contains a NUL character");
                return Ok(());
            }
        }
        let Some(skind) = GrantSourceKind::parse(r.source_kind) else {
            self.reject(
                row,
                "source",
                format!(
                    "unknown source kind `{}` (expected birthright, request, delegation or import)",
                    r.source_kind
                ),
            );
            return Ok(());
        };
        let default = std::mem::take(&mut self.default_tenant);
        let tenant = if blank(r.tenant) {
            default.as_str()
        } else {
            r.tenant
        };
        let kind = self.canonical_kind(r.entitlement_kind);
        let res = self.write_row(tenant, r, &kind, skind);
        self.default_tenant = default;
        res
    }

    fn flush_items(&mut self) -> Result<()> {
        if !self.items.is_empty() {
            self.ins_item
                .execute(params![self.batch_id, self.chunk, self.items])?;
            self.chunk += 1;
            self.items.clear();
        }
        Ok(())
    }

    fn canonical_kind(&mut self, raw: &str) -> Box<str> {
        let raw = if blank(raw) { "group" } else { raw };
        if let Some(k) = self.kinds.get(raw) {
            return k.clone();
        }
        let k: Box<str> = EntitlementKind::parse(raw).to_string().into_boxed_str();
        self.kinds.insert(raw.into(), k.clone());
        k
    }

    fn write_row(
        &mut self,
        tenant: &str,
        r: &RuleRow<'_>,
        kind: &str,
        skind: GrantSourceKind,
    ) -> Result<()> {
        let sk = skind.as_str();
        for part in [tenant, r.identity, r.system, kind, r.entitlement_id, sk] {
            self.digest.update(part.as_bytes());
            self.digest.update(b"\x1f");
        }
        self.digest.update(r.source_detail.as_bytes());
        self.digest.update(b"\n");

        // identity
        self.buf.clear();
        self.buf.push_str(tenant);
        self.buf.push('\0');
        self.buf.push_str(r.identity);
        let iid = match self.idents.get(self.buf.as_str()) {
            Some(&id) => id,
            None => {
                let found = if self.complete {
                    None
                } else {
                    self.sel_ident
                        .query_row(params![tenant, r.identity], |x| x.get(0))
                        .optional()?
                };
                let id = match found {
                    Some(id) => id,
                    None => {
                        self.ins_ident.execute(params![tenant, r.identity])?;
                        self.conn.last_insert_rowid()
                    }
                };
                self.idents.insert(self.buf.as_str().into(), id);
                id
            }
        };
        // entitlement
        self.buf.clear();
        self.buf.push_str(r.system);
        self.buf.push('\0');
        self.buf.push_str(kind);
        self.buf.push('\0');
        self.buf.push_str(r.entitlement_id);
        let eid = match self.ents.get(self.buf.as_str()) {
            Some(&id) => id,
            None => {
                let found = if self.complete {
                    None
                } else {
                    self.sel_ent
                        .query_row(params![r.system, kind, r.entitlement_id], |x| x.get(0))
                        .optional()?
                };
                let id = match found {
                    Some(id) => id,
                    None => {
                        self.ins_ent
                            .execute(params![r.system, kind, r.entitlement_id])?;
                        self.conn.last_insert_rowid()
                    }
                };
                self.ents.insert(self.buf.as_str().into(), id);
                id
            }
        };
        // source
        self.buf.clear();
        self.buf.push_str(sk);
        self.buf.push(':');
        self.buf.push_str(r.source_detail);
        let sid = match self.sources.get(self.buf.as_str()) {
            Some(&id) => id,
            None => {
                let found = if self.complete {
                    None
                } else {
                    self.sel_src
                        .query_row([self.buf.as_str()], |x| x.get(0))
                        .optional()?
                };
                let id = match found {
                    Some(id) => id,
                    None => {
                        self.ins_src.execute([self.buf.as_str()])?;
                        self.conn.last_insert_rowid()
                    }
                };
                self.sources.insert(self.buf.as_str().into(), id);
                id
            }
        };
        if self.progress.rows_rejected > 0 {
            // The import will be rolled back: only keep validating.
            return Ok(());
        }
        if self.ins_grant.execute(params![iid, eid, sid])? > 0 {
            for v in [iid, eid, sid] {
                crate::sqlite::leb128_put(&mut self.items, v);
            }
            if self.items.len() >= ITEM_CHUNK_BYTES {
                self.flush_items()?;
            }
            self.progress.rows_changed += 1;
        }
        Ok(())
    }
}

/// Bulk loads into a ledger smaller than this rebuild lg_grant's secondary indexes at
/// the end instead of maintaining them per row.
const DEFER_INDEXES_BELOW: u64 = 200_000;
/// Changed rows are logged for replay in chunks of about this many bytes.
const ITEM_CHUNK_BYTES: usize = 256 * 1024;
/// Interning tables up to this size are loaded into memory at the start of an import.
const PRELOAD_NAMES_UP_TO: u64 = 2_000_000;

struct Preload {
    idents: HashMap<Box<str>, i64>,
    ents: HashMap<Box<str>, i64>,
    sources: HashMap<Box<str>, i64>,
    complete: bool,
    grants: u64,
}

impl Preload {
    fn load(c: &Connection) -> Result<Self> {
        let count = |t: &str| -> Result<u64> {
            Ok(c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
        };
        let grants = count("lg_grant")?;
        let names = count("lg_identity")? + count("lg_entitlement")? + count("lg_source")?;
        let mut p = Preload {
            idents: HashMap::new(),
            ents: HashMap::new(),
            sources: HashMap::new(),
            complete: names <= PRELOAD_NAMES_UP_TO,
            grants,
        };
        if !p.complete {
            return Ok(p);
        }
        let mut st = c.prepare("SELECT id, tenant, name FROM lg_identity")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let k = format!("{}\0{}", r.get::<_, String>(1)?, r.get::<_, String>(2)?);
            p.idents.insert(k.into(), r.get(0)?);
        }
        let mut st = c.prepare("SELECT id, system, kind, ext_id FROM lg_entitlement")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let k = format!(
                "{}\0{}\0{}",
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?
            );
            p.ents.insert(k.into(), r.get(0)?);
        }
        let mut st = c.prepare("SELECT id, skey FROM lg_source")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            p.sources
                .insert(r.get::<_, String>(1)?.into_boxed_str(), r.get(0)?);
        }
        Ok(p)
    }
}

impl SqliteLedger {
    /// Bulk-import rules fed by `feed` into one transaction: **all or nothing**. Rows
    /// are validated as they stream; if any row is invalid the whole import is rolled
    /// back and [`LedgerError::ImportRejected`] lists the row numbers and reasons.
    ///
    /// Imported rules are existing access (intended and confirmed). A rule already in
    /// the ledger for the same source changes nothing, so re-importing the same rules is
    /// a no-op (nothing at all is written, not even a history record). Otherwise one
    /// history record is written for the batch with the batch's content digest, and the
    /// rows that changed the ledger are kept with it, so history replay reproduces the
    /// state.
    pub fn import<F>(&self, mut opts: ImportOptions, feed: F) -> Result<ImportReport>
    where
        F: FnOnce(&mut ImportSink<'_>) -> Result<()>,
    {
        if blank(&opts.batch) {
            return Err(LedgerError::invalid(
                "batch",
                "import batch name must not be empty",
            ));
        }
        let mut conn = self.lock()?;
        let tx = conn
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO lg_import_batch (name, digest, rows_total, rows_changed, at, actor)
             VALUES (?1, '', 0, 0, ?2, ?3)",
            params![opts.batch, ts(opts.at), opts.actor],
        )?;
        let batch_id = tx.last_insert_rowid();
        let preload = Preload::load(&tx)?;
        // Secondary indexes of lg_grant are rebuilt after a bulk load into a small
        // table (much faster than maintaining them row by row); in the same
        // transaction, from their stored definitions.
        let deferred: Vec<(String, String)> = if preload.grants < DEFER_INDEXES_BELOW {
            let defs: Vec<(String, String)> = tx
                .prepare(
                    "SELECT name, sql FROM sqlite_master
                     WHERE type = 'index' AND tbl_name = 'lg_grant' AND sql IS NOT NULL",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            for (name, _) in &defs {
                tx.execute_batch(&format!("DROP INDEX \"{name}\""))?;
            }
            defs
        } else {
            Vec::new()
        };
        let (progress, errors, digest, progress_fn) = {
            let mut sink = ImportSink {
                conn: &tx,
                batch_id,
                default_tenant: opts.default_tenant.clone(),
                ins_grant: tx.prepare(
                    "INSERT INTO lg_grant (identity_id, entitlement_id, source_id, intended, confirmed)
                     VALUES (?1, ?2, ?3, 1, 1)
                     ON CONFLICT (identity_id, entitlement_id, source_id)
                     DO UPDATE SET intended = 1, confirmed = 1 WHERE intended = 0 OR confirmed = 0",
                )?,
                ins_item: tx.prepare(
                    "INSERT INTO lg_import_item (batch_id, chunk, items) VALUES (?1, ?2, ?3)",
                )?,
                sel_ident: tx
                    .prepare("SELECT id FROM lg_identity WHERE tenant = ?1 AND name = ?2")?,
                ins_ident: tx.prepare("INSERT INTO lg_identity (tenant, name) VALUES (?1, ?2)")?,
                sel_ent: tx.prepare(
                    "SELECT id FROM lg_entitlement WHERE system = ?1 AND kind = ?2 AND ext_id = ?3",
                )?,
                ins_ent: tx.prepare(
                    "INSERT INTO lg_entitlement (system, kind, ext_id) VALUES (?1, ?2, ?3)",
                )?,
                sel_src: tx.prepare("SELECT id FROM lg_source WHERE skey = ?1")?,
                ins_src: tx.prepare("INSERT INTO lg_source (skey) VALUES (?1)")?,
                idents: preload.idents,
                ents: preload.ents,
                sources: preload.sources,
                kinds: HashMap::new(),
                complete: preload.complete,
                items: Vec::with_capacity(ITEM_CHUNK_BYTES + 64),
                chunk: 0,
                buf: String::with_capacity(256),
                digest: Sha256::new(),
                progress: ImportProgress::default(),
                progress_every: opts.progress_every.max(1),
                progress_fn: opts.progress.take(),
                errors: Vec::new(),
                max_errors: opts.max_reported_errors,
            };
            feed(&mut sink)?;
            if sink.progress.rows_rejected == 0 {
                sink.flush_items()?;
            }
            (
                sink.progress,
                std::mem::take(&mut sink.errors),
                hex::encode(sink.digest.clone().finalize()),
                sink.progress_fn.take(),
            )
        };
        let report_progress = |p: &ImportProgress| {
            if let Some(mut f) = progress_fn {
                f(p);
            }
        };
        if progress.rows_rejected > 0 {
            drop(tx);
            return Err(LedgerError::ImportRejected(ImportRejected {
                errors,
                total_errors: progress.rows_rejected,
                rows_read: progress.rows_read,
            }));
        }
        let mut report = ImportReport {
            batch_id: None,
            rows_read: progress.rows_read,
            rows_changed: progress.rows_changed,
            rows_unchanged: progress.rows_read - progress.rows_changed,
            digest,
        };
        if progress.rows_changed == 0 {
            drop(tx);
            report_progress(&progress);
            return Ok(report);
        }
        for (_, sql) in &deferred {
            tx.execute_batch(sql)?;
        }
        // Imported access is confirmed: so is every other intended source of the same
        // assignments (the target has the access).
        tx.execute(
            "UPDATE lg_grant SET confirmed = 1
             WHERE intended = 1 AND confirmed = 0 AND EXISTS (
                 SELECT 1 FROM lg_grant g2
                 WHERE g2.identity_id = lg_grant.identity_id
                   AND g2.entitlement_id = lg_grant.entitlement_id AND g2.confirmed = 1)",
            [],
        )?;
        tx.execute(
            "UPDATE lg_import_batch SET digest = ?2, rows_total = ?3, rows_changed = ?4
             WHERE id = ?1",
            params![
                batch_id,
                report.digest,
                progress.rows_read as i64,
                progress.rows_changed as i64
            ],
        )?;
        tx.execute(
            "INSERT INTO lg_history (at, event, batch_id, actor) VALUES (?1, 'import', ?2, ?3)",
            params![ts(opts.at), batch_id, opts.actor],
        )?;
        self.fail(FailPoint::BeforeCommit)?;
        tx.commit()?;
        report.batch_id = Some(batch_id);
        report_progress(&progress);
        Ok(report)
    }

    /// Import typed rules (see [`SqliteLedger::import`]); row numbers are positions.
    pub fn import_rules<I>(&self, rules: I, opts: ImportOptions) -> Result<ImportReport>
    where
        I: IntoIterator<Item = ImportRule>,
    {
        self.import(opts, |sink| {
            for r in rules {
                sink.add(&RuleRow {
                    tenant: &r.tenant,
                    identity: &r.identity,
                    system: &r.system,
                    entitlement_kind: r.entitlement.kind.as_str(),
                    entitlement_id: &r.entitlement.id,
                    source_kind: r.source.kind().as_str(),
                    source_detail: r.source.detail(),
                })?;
            }
            Ok(())
        })
    }

    /// Import rules from CSV (see [`SqliteLedger::import`]); row numbers are CSV line
    /// numbers (the header is line 1).
    ///
    /// Columns, by header name: `identity`, `system`, `entitlement` (or
    /// `entitlement_id`) and `source` (a grant source key `kind:detail`, e.g.
    /// `import:2026-q1` or `request:servicenow:RITM0010001`) are required; `tenant`
    /// and `entitlement_kind` (default `group`) are optional.
    pub fn import_csv<R: io::Read>(&self, reader: R, opts: ImportOptions) -> Result<ImportReport> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(reader);
        let headers = rdr
            .headers()
            .map_err(|e| header_error(format!("unreadable header: {e}")))?
            .clone();
        let col = |names: &[&str]| {
            headers
                .iter()
                .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
        };
        let need = |names: &[&str]| {
            col(names).ok_or_else(|| header_error(format!("missing column `{}`", names[0])))
        };
        let c_identity = need(&["identity"])?;
        let c_system = need(&["system"])?;
        let c_ent = need(&["entitlement", "entitlement_id"])?;
        let c_source = need(&["source"])?;
        let c_tenant = col(&["tenant"]);
        let c_kind = col(&["entitlement_kind"]);
        self.import(opts, |sink| {
            let mut rec = csv::StringRecord::new();
            loop {
                match rdr.read_record(&mut rec) {
                    Ok(false) => break,
                    Ok(true) => {
                        let line = rec.position().map_or(0, |p| p.line());
                        let get = |i: Option<usize>| i.and_then(|i| rec.get(i)).unwrap_or("");
                        let source = get(Some(c_source));
                        let (source_kind, source_detail) =
                            source.split_once(':').unwrap_or((source, ""));
                        sink.add_numbered(
                            line,
                            &RuleRow {
                                tenant: get(c_tenant),
                                identity: get(Some(c_identity)),
                                system: get(Some(c_system)),
                                entitlement_kind: get(c_kind),
                                entitlement_id: get(Some(c_ent)),
                                source_kind,
                                source_detail,
                            },
                        )?;
                    }
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line());
                        if let csv::ErrorKind::Io(io) = e.kind() {
                            return Err(LedgerError::Storage(format!(
                                "reading CSV at line {line}: {io}"
                            )));
                        }
                        sink.reject_malformed(line, format!("malformed CSV row: {e}"));
                    }
                }
            }
            Ok(())
        })
    }
}

fn header_error(reason: String) -> LedgerError {
    LedgerError::ImportRejected(ImportRejected {
        errors: vec![RowError {
            row: 1,
            field: "header",
            reason,
        }],
        total_errors: 1,
        rows_read: 0,
    })
}
