//! Cluster-wide singletons: a session advisory lock held on a dedicated connection,
//! and [`LeaderSource`], which polls its source only on the worker holding the lock.

use std::sync::Arc;

use async_trait::async_trait;
use iga_adapter::{
    DirectiveSink, DirectiveSource, FulfillmentReport, PollBatch, SourceCursor, SourceMode,
};
use iga_ledger::Result;
use tokio::sync::Mutex;

use crate::{PgStore, pg, pool_err};

/// Holding a cluster-wide role (see [`PgStore::try_lead`]). The lock lives on a
/// connection of its own, taken out of the pool; dropping this closes it, which
/// releases the lock — and so does the process dying.
pub struct Leadership {
    name: String,
    client: deadpool_postgres::ClientWrapper,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("name", &self.name)
            .field("alive", &self.is_alive())
            .finish()
    }
}

impl Leadership {
    /// The role's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the connection holding the lock is still open (a lost connection means
    /// the lock is gone and another worker may hold it).
    pub fn is_alive(&self) -> bool {
        !self.client.is_closed()
    }
}

pub(crate) async fn try_lead(s: &PgStore, name: &str) -> Result<Option<Leadership>> {
    let obj = s.inner.pool.get().await.map_err(pool_err)?;
    let got: bool = obj
        .query_one(
            "SELECT pg_try_advisory_lock(hashtextextended('iga.leader.' || $1, 0))",
            &[&name],
        )
        .await
        .map_err(pg)?
        .get(0);
    // Detach the connection from the pool: the lock is tied to its session.
    let client = deadpool_postgres::Object::take(obj);
    if got {
        Ok(Some(Leadership {
            name: name.to_string(),
            client,
        }))
    } else {
        Ok(None)
    }
}

/// A [`DirectiveSource`] that polls the wrapped source only while this worker holds
/// the cluster-wide leadership of `iga.leader.source.<name>`; the other workers see an
/// empty batch. When the leader dies its connection closes, the lock is released and
/// the next worker to poll takes over (resuming from the stored cursor).
#[derive(Debug)]
pub struct LeaderSource<S> {
    inner: S,
    store: PgStore,
    lead: Mutex<Option<Leadership>>,
}

impl<S: DirectiveSource> LeaderSource<S> {
    /// Wrap `inner`.
    pub fn new(inner: S, store: PgStore) -> Self {
        Self {
            inner,
            store,
            lead: Mutex::new(None),
        }
    }

    /// Whether this worker currently leads this source.
    pub async fn is_leader(&self) -> bool {
        self.lead
            .lock()
            .await
            .as_ref()
            .is_some_and(Leadership::is_alive)
    }
}

#[async_trait]
impl<S: DirectiveSource> DirectiveSource for LeaderSource<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn mode(&self) -> SourceMode {
        self.inner.mode()
    }

    async fn poll(&self, cursor: Option<&SourceCursor>) -> iga_adapter::Result<PollBatch> {
        let mut lead = self.lead.lock().await;
        if !lead.as_ref().is_some_and(Leadership::is_alive) {
            *lead = match self
                .store
                .try_lead(&format!("source.{}", self.inner.name()))
                .await
            {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(source = self.inner.name(), error = %e, "leadership check failed");
                    None
                }
            };
        }
        if lead.is_none() {
            return Ok(PollBatch::new(Vec::new(), None));
        }
        self.inner.poll(cursor).await
    }

    async fn run_push(&self, sink: Arc<dyn DirectiveSink>) -> iga_adapter::Result<()> {
        self.inner.run_push(sink).await
    }

    async fn report(&self, report: &FulfillmentReport) -> iga_adapter::Result<()> {
        self.inner.report(report).await
    }
}
