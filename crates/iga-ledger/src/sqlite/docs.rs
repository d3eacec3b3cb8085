//! Versioned JSON documents (`doc_document`).

use rusqlite::{OptionalExtension, params};

use super::{SqliteLedger, from_ts, ts};
use crate::{Document, LedgerError, Result};
use iga_directive::Timestamp;

fn check_name(field: &str, v: &str) -> Result<()> {
    if v.trim().is_empty() {
        return Err(LedgerError::invalid(field, "must not be empty"));
    }
    Ok(())
}

impl SqliteLedger {
    /// Write a document. `expected_version`: `None` writes unconditionally; `Some(0)`
    /// creates only (the document must not exist); `Some(v)` replaces only if the
    /// stored version is `v`. A lost condition is [`LedgerError::VersionConflict`].
    /// Returns the new version (1 for a new document). `body` must be JSON.
    pub fn put_document(
        &self,
        namespace: &str,
        key: &str,
        body: &str,
        expected_version: Option<u64>,
        now: Timestamp,
    ) -> Result<u64> {
        check_name("document.namespace", namespace)?;
        check_name("document.key", key)?;
        serde_json::from_str::<serde::de::IgnoredAny>(body).map_err(|e| {
            LedgerError::invalid(
                format!("document {namespace}/{key}.body"),
                format!("not JSON: {e}"),
            )
        })?;
        self.write(|tx| {
            let found: u64 = tx
                .prepare_cached(
                    "SELECT version FROM doc_document WHERE namespace = ?1 AND key = ?2",
                )?
                .query_row(params![namespace, key], |r| r.get::<_, i64>(0))
                .optional()?
                .map_or(0, |v| v as u64);
            if let Some(expected) = expected_version
                && expected != found
            {
                return Err(LedgerError::VersionConflict {
                    namespace: namespace.to_string(),
                    key: key.to_string(),
                    expected,
                    found,
                });
            }
            let version = found + 1;
            tx.prepare_cached(
                "INSERT INTO doc_document (namespace, key, version, body, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (namespace, key) DO UPDATE SET
                   version = excluded.version, body = excluded.body,
                   updated_at = excluded.updated_at",
            )?
            .execute(params![namespace, key, version as i64, body, ts(now)])?;
            Ok(version)
        })
    }

    /// A document, if present.
    pub fn get_document(&self, namespace: &str, key: &str) -> Result<Option<Document>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT key, version, body, updated_at FROM doc_document
                     WHERE namespace = ?1 AND key = ?2",
            )?
            .query_row(params![namespace, key], |r| row_doc(namespace, r))
            .optional()?)
        })
    }

    /// Documents of a namespace in key order, after `after_key` (exclusive), at most
    /// `limit` — keyset pagination.
    pub fn list_documents(
        &self,
        namespace: &str,
        after_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Document>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT key, version, body, updated_at FROM doc_document
                 WHERE namespace = ?1 AND key > ?2 ORDER BY key LIMIT ?3",
            )?;
            let rows = st.query_map(
                params![namespace, after_key.unwrap_or(""), limit as i64],
                |r| row_doc(namespace, r),
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Delete a document. `expected_version` as in [`SqliteLedger::put_document`]
    /// (`Some(v)`: only if the stored version is `v`). Returns whether it existed.
    pub fn delete_document(
        &self,
        namespace: &str,
        key: &str,
        expected_version: Option<u64>,
    ) -> Result<bool> {
        self.write(|tx| {
            let found: u64 = tx
                .prepare_cached(
                    "SELECT version FROM doc_document WHERE namespace = ?1 AND key = ?2",
                )?
                .query_row(params![namespace, key], |r| r.get::<_, i64>(0))
                .optional()?
                .map_or(0, |v| v as u64);
            if let Some(expected) = expected_version
                && expected != found
            {
                return Err(LedgerError::VersionConflict {
                    namespace: namespace.to_string(),
                    key: key.to_string(),
                    expected,
                    found,
                });
            }
            let n = tx
                .prepare_cached("DELETE FROM doc_document WHERE namespace = ?1 AND key = ?2")?
                .execute(params![namespace, key])?;
            Ok(n > 0)
        })
    }
}

fn row_doc(namespace: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<Document> {
    Ok(Document {
        namespace: namespace.to_string(),
        key: r.get(0)?,
        version: r.get::<_, i64>(1)? as u64,
        body: r.get(2)?,
        updated_at: from_ts(r.get(3)?),
    })
}
