//! Receipts, audit outbox, source cursors, coexistence modes, documents and imports.

use std::time::Duration;

use deadpool_postgres::Transaction;
use iga_directive::Timestamp;
use iga_ledger::{
    AssignmentKey, AuditRow, ChainHead, CoexistenceMode, Document, ImportOptions, ImportRejected,
    ImportReport, ImportRule, LedgerError, ReceiptRecord, Result, RowError,
};
use sha2::{Digest, Sha256};

use crate::db::{exec, from_ts, one, opt, read_opt, read_rows, rows, ts};
use crate::ledger::invalid;
use crate::{PgStore, pg};

fn head_row(chain_id: &str, r: &tokio_postgres::Row) -> ChainHead {
    ChainHead {
        chain_id: chain_id.to_string(),
        seq: r.get::<_, i64>(0) as u64,
        receipt_id: r.get(1),
        payload_sha256: r.get(2),
    }
}

pub(crate) async fn append_receipt_tx(tx: &Transaction<'_>, r: &ReceiptRecord) -> Result<()> {
    let chain_err = |reason: String| LedgerError::ReceiptChain {
        chain_id: r.chain_id.clone(),
        receipt_id: r.receipt_id.clone(),
        reason,
    };
    for (field, v) in [
        ("receipt_id", &r.receipt_id),
        ("chain_id", &r.chain_id),
        ("jws", &r.jws),
        ("payload_sha256", &r.payload_sha256),
    ] {
        if v.trim().is_empty() {
            return Err(invalid(format!("receipt.{field}"), "must not be empty"));
        }
    }
    if r.seq > i64::MAX as u64 {
        return Err(chain_err(format!("seq {} out of range", r.seq)));
    }
    // Lock the head (chains are per node, so this does not contend in practice).
    let head = opt(
        tx,
        "SELECT seq, receipt_id, payload_sha256 FROM rc_chain_head WHERE chain_id = $1 FOR UPDATE",
        &[&r.chain_id],
    )
    .await?
    .map(|row| head_row(&r.chain_id, &row));
    if let Some(h) = &head {
        if r.seq != h.seq + 1 {
            return Err(chain_err(format!(
                "seq {} does not follow the chain head seq {}",
                r.seq, h.seq
            )));
        }
        if r.prev_sha256.as_deref() != Some(h.payload_sha256.as_str()) {
            return Err(chain_err(format!(
                "prev_sha256 {:?} does not match the head's payload_sha256 {}",
                r.prev_sha256, h.payload_sha256
            )));
        }
    }
    let n = exec(
        tx,
        "INSERT INTO rc_receipt (receipt_id, chain_id, seq, directive_id, operation_id, jws,
                                 payload_sha256, prev_sha256, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        &[
            &r.receipt_id,
            &r.chain_id,
            &(r.seq as i64),
            &r.directive_id,
            &r.operation_id,
            &r.jws,
            &r.payload_sha256,
            &r.prev_sha256,
            &ts(r.created_at),
        ],
    )
    .await?;
    if n == 0 {
        return Err(chain_err(
            "a receipt with this id or chain position already exists".into(),
        ));
    }
    exec(
        tx,
        "INSERT INTO rc_chain_head (chain_id, seq, receipt_id, payload_sha256)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (chain_id) DO UPDATE SET seq = excluded.seq,
             receipt_id = excluded.receipt_id, payload_sha256 = excluded.payload_sha256",
        &[
            &r.chain_id,
            &(r.seq as i64),
            &r.receipt_id,
            &r.payload_sha256,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn enqueue_audit_tx(
    tx: &Transaction<'_>,
    event_json: &str,
    now: Timestamp,
) -> Result<i64> {
    serde_json::from_str::<serde::de::IgnoredAny>(event_json)
        .map_err(|e| invalid("audit_event", format!("not a JSON document: {e}")))?;
    Ok(one(
        tx,
        "INSERT INTO au_outbox (created_at, event_json) VALUES ($1, $2) RETURNING id",
        &[&ts(now), &event_json],
    )
    .await?
    .get(0))
}

pub(crate) async fn set_cursor_tx(
    tx: &Transaction<'_>,
    source: &str,
    cursor: &str,
    now: Timestamp,
) -> Result<()> {
    if source.trim().is_empty() {
        return Err(invalid("source", "cursor source name must not be empty"));
    }
    exec(
        tx,
        "INSERT INTO q_source_cursor (source, cursor, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor,
             updated_at = excluded.updated_at",
        &[&source, &cursor, &ts(now)],
    )
    .await?;
    Ok(())
}

fn receipt_from_row(r: &tokio_postgres::Row) -> ReceiptRecord {
    ReceiptRecord {
        receipt_id: r.get(0),
        chain_id: r.get(1),
        seq: r.get::<_, i64>(2) as u64,
        directive_id: r.get(3),
        operation_id: r.get(4),
        jws: r.get(5),
        payload_sha256: r.get(6),
        prev_sha256: r.get(7),
        created_at: from_ts(r.get(8)),
    }
}

pub(crate) async fn receipts(
    s: &PgStore,
    chain_id: &str,
    from_seq: u64,
    limit: usize,
) -> Result<Vec<ReceiptRecord>> {
    let c = s.conn().await?;
    Ok(read_rows(
        &c,
        "SELECT receipt_id, chain_id, seq, directive_id, operation_id, jws, payload_sha256,
                prev_sha256, created_at
         FROM rc_receipt WHERE chain_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
        &[
            &chain_id,
            &(from_seq.min(i64::MAX as u64) as i64),
            &(limit as i64),
        ],
    )
    .await?
    .iter()
    .map(receipt_from_row)
    .collect())
}

pub(crate) async fn chain_head(s: &PgStore, chain_id: &str) -> Result<Option<ChainHead>> {
    let c = s.conn().await?;
    Ok(read_opt(
        &c,
        "SELECT seq, receipt_id, payload_sha256 FROM rc_chain_head WHERE chain_id = $1",
        &[&chain_id],
    )
    .await?
    .map(|r| head_row(chain_id, &r)))
}

pub(crate) async fn claim_audit(
    s: &PgStore,
    limit: usize,
    worker: &str,
    lease: Duration,
    now: Timestamp,
) -> Result<Vec<AuditRow>> {
    let until = ts(now) + i64::try_from(lease.as_micros()).unwrap_or(i64::MAX / 2);
    let mut c = s.conn().await?;
    let tx = c.transaction().await.map_err(pg)?;
    let rs = rows(
        &tx,
        "WITH due AS (
             SELECT id FROM au_outbox WHERE claimed_until IS NULL OR claimed_until <= $1
             ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
         UPDATE au_outbox o SET claimed_by = $3, claimed_until = $4
         FROM due WHERE o.id = due.id RETURNING o.id, o.created_at, o.event_json",
        &[&ts(now), &(limit as i64), &worker, &until],
    )
    .await?;
    tx.commit().await.map_err(pg)?;
    let mut out: Vec<AuditRow> = rs
        .into_iter()
        .map(|r| AuditRow {
            id: r.get(0),
            created_at: from_ts(r.get(1)),
            event_json: r.get(2),
        })
        .collect();
    out.sort_by_key(|r| r.id);
    Ok(out)
}

pub(crate) async fn ack_audit(s: &PgStore, ids: &[i64]) -> Result<usize> {
    let c = s.conn().await?;
    let st = c
        .prepare_cached("DELETE FROM au_outbox WHERE id = ANY($1)")
        .await
        .map_err(pg)?;
    Ok(c.execute(&st, &[&ids]).await.map_err(pg)? as usize)
}

pub(crate) async fn cursor(s: &PgStore, source: &str) -> Result<Option<String>> {
    let c = s.conn().await?;
    Ok(read_opt(
        &c,
        "SELECT cursor FROM q_source_cursor WHERE source = $1",
        &[&source],
    )
    .await?
    .map(|r| r.get(0)))
}

pub(crate) async fn set_coexistence(
    s: &PgStore,
    system: &str,
    mode: CoexistenceMode,
    now: Timestamp,
) -> Result<()> {
    if system.trim().is_empty() {
        return Err(invalid("system", "must not be empty"));
    }
    let c = s.conn().await?;
    let st = c
        .prepare_cached(
            "INSERT INTO lg_coexistence (system, mode, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (system) DO UPDATE SET mode = excluded.mode,
                 updated_at = excluded.updated_at",
        )
        .await
        .map_err(pg)?;
    c.execute(&st, &[&system, &mode.as_str(), &ts(now)])
        .await
        .map_err(pg)?;
    Ok(())
}

pub(crate) async fn coexistence(s: &PgStore, system: &str) -> Result<CoexistenceMode> {
    let c = s.conn().await?;
    match read_opt(
        &c,
        "SELECT mode FROM lg_coexistence WHERE system = $1",
        &[&system],
    )
    .await?
    {
        None => Ok(CoexistenceMode::Native),
        Some(r) => {
            let m: String = r.get(0);
            CoexistenceMode::parse(&m).ok_or_else(|| {
                LedgerError::Storage(format!("unknown stored coexistence mode `{m}`"))
            })
        }
    }
}

pub(crate) async fn systems_in_mode(s: &PgStore, mode: CoexistenceMode) -> Result<Vec<String>> {
    let c = s.conn().await?;
    Ok(read_rows(
        &c,
        "SELECT system FROM lg_coexistence WHERE mode = $1 ORDER BY system COLLATE \"C\"",
        &[&mode.as_str()],
    )
    .await?
    .into_iter()
    .map(|r| r.get(0))
    .collect())
}

fn check_name(field: &str, v: &str) -> Result<()> {
    if v.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    Ok(())
}

fn conflict(namespace: &str, key: &str, expected: u64, found: u64) -> LedgerError {
    LedgerError::VersionConflict {
        namespace: namespace.to_string(),
        key: key.to_string(),
        expected,
        found,
    }
}

pub(crate) async fn put_document(
    s: &PgStore,
    namespace: &str,
    key: &str,
    body: &str,
    expected_version: Option<u64>,
    now: Timestamp,
) -> Result<u64> {
    check_name("document.namespace", namespace)?;
    check_name("document.key", key)?;
    serde_json::from_str::<serde::de::IgnoredAny>(body).map_err(|e| {
        invalid(
            format!("document {namespace}/{key}.body"),
            format!("not JSON: {e}"),
        )
    })?;
    let mut c = s.conn().await?;
    let tx = c.transaction().await.map_err(pg)?;
    // Serialize writers of one key, including the create of a missing document.
    exec(
        &tx,
        "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))",
        &[&namespace, &key],
    )
    .await?;
    let found = opt(
        &tx,
        "SELECT version FROM doc_document WHERE namespace = $1 AND key = $2",
        &[&namespace, &key],
    )
    .await?
    .map_or(0, |r| r.get::<_, i64>(0) as u64);
    if let Some(expected) = expected_version
        && expected != found
    {
        return Err(conflict(namespace, key, expected, found));
    }
    let version = found + 1;
    exec(
        &tx,
        "INSERT INTO doc_document (namespace, key, version, body, updated_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (namespace, key) DO UPDATE SET
           version = excluded.version, body = excluded.body, updated_at = excluded.updated_at",
        &[&namespace, &key, &(version as i64), &body, &ts(now)],
    )
    .await?;
    tx.commit().await.map_err(pg)?;
    Ok(version)
}

fn doc_row(namespace: &str, r: &tokio_postgres::Row) -> Document {
    Document {
        namespace: namespace.to_string(),
        key: r.get(0),
        version: r.get::<_, i64>(1) as u64,
        body: r.get(2),
        updated_at: from_ts(r.get(3)),
    }
}

pub(crate) async fn get_document(
    s: &PgStore,
    namespace: &str,
    key: &str,
) -> Result<Option<Document>> {
    let c = s.conn().await?;
    Ok(read_opt(
        &c,
        "SELECT key, version, body, updated_at FROM doc_document
         WHERE namespace = $1 AND key = $2",
        &[&namespace, &key],
    )
    .await?
    .map(|r| doc_row(namespace, &r)))
}

pub(crate) async fn list_documents(
    s: &PgStore,
    namespace: &str,
    after_key: Option<&str>,
    limit: usize,
) -> Result<Vec<Document>> {
    let c = s.conn().await?;
    Ok(read_rows(
        &c,
        "SELECT key, version, body, updated_at FROM doc_document
         WHERE namespace = $1 AND key COLLATE \"C\" > $2 ORDER BY key COLLATE \"C\" LIMIT $3",
        &[&namespace, &after_key.unwrap_or(""), &(limit as i64)],
    )
    .await?
    .iter()
    .map(|r| doc_row(namespace, r))
    .collect())
}

pub(crate) async fn delete_document(
    s: &PgStore,
    namespace: &str,
    key: &str,
    expected_version: Option<u64>,
) -> Result<bool> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await.map_err(pg)?;
    let found = opt(
        &tx,
        "SELECT version FROM doc_document WHERE namespace = $1 AND key = $2 FOR UPDATE",
        &[&namespace, &key],
    )
    .await?
    .map_or(0, |r| r.get::<_, i64>(0) as u64);
    if let Some(expected) = expected_version
        && expected != found
    {
        return Err(conflict(namespace, key, expected, found));
    }
    let n = exec(
        &tx,
        "DELETE FROM doc_document WHERE namespace = $1 AND key = $2",
        &[&namespace, &key],
    )
    .await?;
    tx.commit().await.map_err(pg)?;
    Ok(n > 0)
}

pub(crate) async fn close_manual_task(
    s: &PgStore,
    id: &str,
    resolution: &str,
    now: Timestamp,
) -> Result<bool> {
    let c = s.conn().await?;
    let st = c
        .prepare_cached(
            "UPDATE q_manual_task SET closed_at = $2, resolution = $3
             WHERE id = $1 AND closed_at IS NULL",
        )
        .await
        .map_err(pg)?;
    Ok(c.execute(&st, &[&id, &ts(now), &resolution])
        .await
        .map_err(pg)?
        == 1)
}

const TABLES: &[&str] = &[
    "lg_identity",
    "lg_entitlement",
    "lg_source",
    "lg_grant",
    "lg_history",
    "lg_import_batch",
    "lg_coexistence",
    "q_directive",
    "q_job",
    "q_manual_task",
    "q_source_cursor",
    "rc_receipt",
    "rc_chain_head",
    "au_outbox",
    "doc_document",
];

pub(crate) async fn table_count(s: &PgStore, table: &str) -> Result<u64> {
    if !TABLES.contains(&table) {
        return Err(invalid("table", format!("`{table}` is not a store table")));
    }
    let c = s.conn().await?;
    let r = read_opt(&c, &format!("SELECT count(*) FROM {table}"), &[])
        .await?
        .ok_or_else(|| LedgerError::Internal("count returned no row".into()))?;
    Ok(r.get::<_, i64>(0) as u64)
}

/// Bulk import in one transaction: every rule is validated first (all or nothing,
/// located errors by 1-based position), then applied with the import rule of
/// `iga_ledger::logic`; one `import` history record per changed row.
pub(crate) async fn import_rules(
    s: &PgStore,
    rules: Box<dyn Iterator<Item = ImportRule> + Send>,
    opts: ImportOptions,
) -> Result<ImportReport> {
    if opts.batch.trim().is_empty() {
        return Err(invalid("batch", "import batch name must not be empty"));
    }
    let rules: Vec<ImportRule> = rules.collect();
    let mut errors = Vec::new();
    let mut total_errors = 0u64;
    let mut digest = Sha256::new();
    let mut keyed = Vec::with_capacity(rules.len());
    for (i, r) in rules.into_iter().enumerate() {
        let row = i as u64 + 1;
        let tenant = if r.tenant.trim().is_empty() {
            opts.default_tenant.clone()
        } else {
            r.tenant.clone()
        };
        let bad = [
            ("identity", r.identity.trim().is_empty()),
            ("system", r.system.trim().is_empty()),
            ("entitlement", r.entitlement.id.trim().is_empty()),
            ("source", r.source.detail().trim().is_empty()),
        ]
        .into_iter()
        .find(|(_, b)| *b);
        if let Some((field, _)) = bad {
            total_errors += 1;
            if errors.len() < opts.max_reported_errors {
                errors.push(RowError {
                    row,
                    field,
                    reason: "must not be empty".into(),
                });
            }
            continue;
        }
        let kind = r.entitlement.kind.to_string();
        for part in [
            tenant.as_str(),
            &r.identity,
            &r.system,
            &kind,
            &r.entitlement.id,
            r.source.kind().as_str(),
        ] {
            digest.update(part.as_bytes());
            digest.update(b"\x1f");
        }
        digest.update(r.source.detail().as_bytes());
        digest.update(b"\n");
        keyed.push((
            AssignmentKey::new(tenant, &r.identity, &r.system, r.entitlement.clone()),
            r.source,
        ));
    }
    let rows_read = keyed.len() as u64 + total_errors;
    if total_errors > 0 {
        return Err(LedgerError::ImportRejected(ImportRejected {
            errors,
            total_errors,
            rows_read,
        }));
    }
    let mut c = s.conn().await?;
    let tx = c.transaction().await.map_err(pg)?;
    let batch_id: i64 = one(
        &tx,
        "INSERT INTO lg_import_batch (name, digest, rows_total, rows_changed, at, actor)
         VALUES ($1, '', 0, 0, $2, $3) RETURNING id",
        &[&opts.batch, &ts(opts.at), &opts.actor],
    )
    .await?
    .get(0);
    let mut changed = 0u64;
    for (key, source) in &keyed {
        if crate::ledger::apply_import(
            &tx,
            key,
            source,
            batch_id,
            ts(opts.at),
            opts.actor.as_deref(),
        )
        .await?
        {
            changed += 1;
        }
    }
    let digest = hex::encode(digest.finalize());
    let report = ImportReport {
        batch_id: (changed > 0).then_some(batch_id),
        rows_read,
        rows_changed: changed,
        rows_unchanged: rows_read - changed,
        digest: digest.clone(),
    };
    if changed == 0 {
        // Nothing changed: no batch is recorded.
        drop(tx);
        return Ok(report);
    }
    exec(
        &tx,
        "UPDATE lg_import_batch SET digest = $2, rows_total = $3, rows_changed = $4 WHERE id = $1",
        &[&batch_id, &digest, &(rows_read as i64), &(changed as i64)],
    )
    .await?;
    tx.commit().await.map_err(pg)?;
    Ok(report)
}
