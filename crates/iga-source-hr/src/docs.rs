use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use iga_adapter::{Error, ErrorKind, Result};
use iga_directive::Timestamp;
use iga_ledger::LedgerStore;
use tokio::sync::Mutex;

/// A stored document: its version (an ETag) and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// Key within the namespace.
    pub key: String,
    /// Version: 1 on creation, +1 per write.
    pub version: u64,
    /// JSON body.
    pub body: String,
}

/// Versioned documents (compare-and-set by version), the state store of this crate.
#[async_trait]
pub trait DocumentStore: Send + Sync + std::fmt::Debug {
    /// Write; `expected`: `None` unconditional, `Some(0)` create-only, `Some(v)` only
    /// if the stored version is `v` (else a `Conflict` error). Returns the new version.
    async fn put(
        &self,
        namespace: &str,
        key: &str,
        body: &str,
        expected: Option<u64>,
        now: Timestamp,
    ) -> Result<u64>;
    /// Read.
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<StoredDocument>>;
    /// Up to `limit` documents after `after` in key order.
    async fn list(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredDocument>>;
}

/// (namespace, key) → (version, body).
type DocMap = BTreeMap<(String, String), (u64, String)>;

/// In-memory documents (tests, embedding without a store).
#[derive(Debug, Default, Clone)]
pub struct MemoryDocuments {
    inner: Arc<Mutex<DocMap>>,
}

impl MemoryDocuments {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl DocumentStore for MemoryDocuments {
    async fn put(
        &self,
        namespace: &str,
        key: &str,
        body: &str,
        expected: Option<u64>,
        _now: Timestamp,
    ) -> Result<u64> {
        let mut m = self.inner.lock().await;
        let k = (namespace.to_string(), key.to_string());
        let current = m.get(&k).map_or(0, |(v, _)| *v);
        if let Some(e) = expected
            && e != current
        {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("{namespace}/{key}: version {current}, expected {e}"),
            ));
        }
        m.insert(k, (current + 1, body.to_string()));
        Ok(current + 1)
    }

    async fn get(&self, namespace: &str, key: &str) -> Result<Option<StoredDocument>> {
        let m = self.inner.lock().await;
        Ok(m.get(&(namespace.to_string(), key.to_string()))
            .map(|(v, b)| StoredDocument {
                key: key.to_string(),
                version: *v,
                body: b.clone(),
            }))
    }

    async fn list(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredDocument>> {
        let m = self.inner.lock().await;
        Ok(m.iter()
            .filter(|((n, k), _)| n == namespace && after.is_none_or(|a| k.as_str() > a))
            .take(limit)
            .map(|((_, k), (v, b))| StoredDocument {
                key: k.clone(),
                version: *v,
                body: b.clone(),
            })
            .collect())
    }
}

/// Documents in the `iga_ledger` store (same database as the ledger and job queue).
#[derive(Clone)]
pub struct LedgerDocuments(pub Arc<dyn LedgerStore>);

impl std::fmt::Debug for LedgerDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LedgerDocuments")
    }
}

fn store_err(e: iga_ledger::LedgerError) -> Error {
    let kind = if matches!(e, iga_ledger::LedgerError::VersionConflict { .. }) {
        ErrorKind::Conflict
    } else {
        ErrorKind::Unavailable
    };
    Error::new(kind, e.to_string())
}

#[async_trait]
impl DocumentStore for LedgerDocuments {
    async fn put(
        &self,
        namespace: &str,
        key: &str,
        body: &str,
        expected: Option<u64>,
        now: Timestamp,
    ) -> Result<u64> {
        self.0
            .put_document(namespace, key, body, expected, now)
            .await
            .map_err(store_err)
    }

    async fn get(&self, namespace: &str, key: &str) -> Result<Option<StoredDocument>> {
        Ok(self
            .0
            .get_document(namespace, key)
            .await
            .map_err(store_err)?
            .map(|d| StoredDocument {
                key: d.key,
                version: d.version,
                body: d.body,
            }))
    }

    async fn list(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredDocument>> {
        Ok(self
            .0
            .list_documents(namespace, after, limit)
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|d| StoredDocument {
                key: d.key,
                version: d.version,
                body: d.body,
            })
            .collect())
    }
}
