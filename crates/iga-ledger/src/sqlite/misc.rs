//! Receipts, audit outbox, source cursors and coexistence modes.

use std::time::Duration;

use iga_directive::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteLedger, from_ts, ts};
use crate::types::{AuditRow, ChainHead, ReceiptRecord};
use crate::{CoexistenceMode, LedgerError, Result};

fn head_tx(c: &Connection, chain_id: &str) -> Result<Option<ChainHead>> {
    Ok(c.prepare_cached(
        "SELECT seq, receipt_id, payload_sha256 FROM rc_chain_head WHERE chain_id = ?1",
    )?
    .query_row([chain_id], |r| {
        Ok(ChainHead {
            chain_id: chain_id.to_string(),
            seq: r.get::<_, i64>(0)? as u64,
            receipt_id: r.get(1)?,
            payload_sha256: r.get(2)?,
        })
    })
    .optional()?)
}

pub(crate) fn append_receipt_tx(c: &Connection, r: &ReceiptRecord) -> Result<()> {
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
            return Err(LedgerError::invalid(
                format!("receipt.{field}"),
                "must not be empty",
            ));
        }
    }
    if r.seq > i64::MAX as u64 {
        return Err(chain_err(format!("seq {} out of range", r.seq)));
    }
    if let Some(h) = head_tx(c, &r.chain_id)? {
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
    c.prepare_cached(
        "INSERT INTO rc_receipt (receipt_id, chain_id, seq, directive_id, operation_id, jws,
                                 payload_sha256, prev_sha256, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        r.receipt_id,
        r.chain_id,
        r.seq as i64,
        r.directive_id,
        r.operation_id,
        r.jws,
        r.payload_sha256,
        r.prev_sha256,
        ts(r.created_at)
    ])
    .map_err(|e| match LedgerError::from(e) {
        LedgerError::Storage(m) if m.contains("UNIQUE") => {
            chain_err("a receipt with this id or chain position already exists".into())
        }
        other => other,
    })?;
    c.prepare_cached(
        "INSERT INTO rc_chain_head (chain_id, seq, receipt_id, payload_sha256)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (chain_id) DO UPDATE SET seq = excluded.seq,
             receipt_id = excluded.receipt_id, payload_sha256 = excluded.payload_sha256",
    )?
    .execute(params![
        r.chain_id,
        r.seq as i64,
        r.receipt_id,
        r.payload_sha256
    ])?;
    Ok(())
}

pub(crate) fn enqueue_audit_tx(c: &Connection, event_json: &str, now: Timestamp) -> Result<i64> {
    serde_json::from_str::<serde::de::IgnoredAny>(event_json)
        .map_err(|e| LedgerError::invalid("audit_event", format!("not a JSON document: {e}")))?;
    c.prepare_cached("INSERT INTO au_outbox (created_at, event_json) VALUES (?1, ?2)")?
        .execute(params![ts(now), event_json])?;
    Ok(c.last_insert_rowid())
}

pub(crate) fn set_cursor_tx(
    c: &Connection,
    source: &str,
    cursor: &str,
    now: Timestamp,
) -> Result<()> {
    if source.trim().is_empty() {
        return Err(LedgerError::invalid(
            "source",
            "cursor source name must not be empty",
        ));
    }
    c.prepare_cached(
        "INSERT INTO q_source_cursor (source, cursor, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
    )?
    .execute(params![source, cursor, ts(now)])?;
    Ok(())
}

fn receipt_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReceiptRecord> {
    Ok(ReceiptRecord {
        receipt_id: r.get(0)?,
        chain_id: r.get(1)?,
        seq: r.get::<_, i64>(2)? as u64,
        directive_id: r.get(3)?,
        operation_id: r.get(4)?,
        jws: r.get(5)?,
        payload_sha256: r.get(6)?,
        prev_sha256: r.get(7)?,
        created_at: from_ts(r.get(8)?),
    })
}

const RECEIPT_COLS: &str = "receipt_id, chain_id, seq, directive_id, operation_id, jws, \
                            payload_sha256, prev_sha256, created_at";

impl SqliteLedger {
    /// Append a receipt (checked against its chain head; see [`ReceiptRecord`]).
    /// Receipts cannot be updated or deleted: there is no API for it and the table's
    /// triggers reject both.
    pub fn append_receipt(&self, r: &ReceiptRecord) -> Result<()> {
        self.write(|tx| append_receipt_tx(tx, r))
    }

    /// Receipts of a chain from `from_seq` on, in chain order.
    pub fn receipts(
        &self,
        chain_id: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<ReceiptRecord>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {RECEIPT_COLS} FROM rc_receipt WHERE chain_id = ?1 AND seq >= ?2
                 ORDER BY seq LIMIT ?3"
            ))?;
            let rows = st.query_map(
                params![chain_id, from_seq.min(i64::MAX as u64) as i64, limit as i64],
                receipt_from_row,
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Receipts of one directive, in append order.
    pub fn receipts_for_directive(&self, directive_id: &str) -> Result<Vec<ReceiptRecord>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {RECEIPT_COLS} FROM rc_receipt WHERE directive_id = ?1 ORDER BY rowid"
            ))?;
            let rows = st.query_map([directive_id], receipt_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The last receipt of a chain.
    pub fn chain_head(&self, chain_id: &str) -> Result<Option<ChainHead>> {
        self.read(|c| head_tx(c, chain_id))
    }

    /// Write one audit event (JSON) to the outbox on its own. Outcomes write theirs in
    /// the unit of work ([`SqliteLedger::commit_outcome`]).
    pub fn enqueue_audit(&self, event_json: &str, now: Timestamp) -> Result<i64> {
        self.write(|tx| enqueue_audit_tx(tx, event_json, now))
    }

    /// Claim up to `limit` undelivered outbox rows for a delivery pump, in id order.
    /// Claimed rows are invisible to other claims until `now + lease`; a pump that
    /// crashes without acknowledging loses its lease and the rows are delivered again
    /// (at-least-once).
    pub fn claim_audit(
        &self,
        limit: usize,
        worker: &str,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<AuditRow>> {
        let until = ts(now) + i64::try_from(lease.as_micros()).unwrap_or(i64::MAX / 2);
        self.write(|tx| {
            let rows: Vec<AuditRow> = {
                let mut st = tx.prepare_cached(
                    "SELECT id, created_at, event_json FROM au_outbox
                     WHERE claimed_until IS NULL OR claimed_until <= ?1 ORDER BY id LIMIT ?2",
                )?;
                st.query_map(params![ts(now), limit as i64], |r| {
                    Ok(AuditRow {
                        id: r.get(0)?,
                        created_at: from_ts(r.get(1)?),
                        event_json: r.get(2)?,
                    })
                })?
                .collect::<Result<_, _>>()?
            };
            for r in &rows {
                tx.prepare_cached(
                    "UPDATE au_outbox SET claimed_by = ?2, claimed_until = ?3 WHERE id = ?1",
                )?
                .execute(params![r.id, worker, until])?;
            }
            Ok(rows)
        })
    }

    /// Acknowledge delivered outbox rows (they are removed). Returns how many existed.
    pub fn ack_audit(&self, ids: &[i64]) -> Result<usize> {
        self.write(|tx| {
            let mut n = 0;
            for id in ids {
                n += tx
                    .prepare_cached("DELETE FROM au_outbox WHERE id = ?1")?
                    .execute([id])?;
            }
            Ok(n)
        })
    }

    /// Rows in the outbox (claimed or not).
    pub fn audit_backlog(&self) -> Result<u64> {
        self.table_count("au_outbox")
    }

    /// The stored cursor of a directive source.
    pub fn cursor(&self, source: &str) -> Result<Option<String>> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT cursor FROM q_source_cursor WHERE source = ?1")?
                    .query_row([source], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    /// Store a source's cursor on its own (prefer
    /// [`SqliteLedger::persist_directives_with_cursor`]).
    pub fn set_cursor(&self, source: &str, cursor: &str, now: Timestamp) -> Result<()> {
        self.write(|tx| set_cursor_tx(tx, source, cursor, now))
    }

    /// Set the coexistence mode of a system.
    pub fn set_coexistence(
        &self,
        system: &str,
        mode: CoexistenceMode,
        now: Timestamp,
    ) -> Result<()> {
        if system.trim().is_empty() {
            return Err(LedgerError::invalid("system", "must not be empty"));
        }
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO lg_coexistence (system, mode, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (system) DO UPDATE SET mode = excluded.mode,
                     updated_at = excluded.updated_at",
            )?
            .execute(params![system, mode.as_str(), ts(now)])?;
            Ok(())
        })
    }

    /// The coexistence mode of a system ([`CoexistenceMode::Native`] when never set).
    pub fn coexistence(&self, system: &str) -> Result<CoexistenceMode> {
        self.read(|c| {
            let m: Option<String> = c
                .prepare_cached("SELECT mode FROM lg_coexistence WHERE system = ?1")?
                .query_row([system], |r| r.get(0))
                .optional()?;
            match m {
                None => Ok(CoexistenceMode::Native),
                Some(m) => CoexistenceMode::parse(&m).ok_or_else(|| {
                    LedgerError::Storage(format!("unknown stored coexistence mode `{m}`"))
                }),
            }
        })
    }

    /// Systems explicitly set to `mode`, sorted. (Systems never set are `NATIVE` but
    /// are not listed: the store does not know them.)
    pub fn systems_in_mode(&self, mode: CoexistenceMode) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT system FROM lg_coexistence WHERE mode = ?1 ORDER BY system",
            )?;
            let rows = st.query_map([mode.as_str()], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}
