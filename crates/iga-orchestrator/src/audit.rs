//! Delivery of the store's audit outbox to SIEM sinks.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use iga_audit::{AuditEvent, Outbox, OutboxEntry, OutboxError};
use iga_directive::SharedClock;
use iga_ledger::LedgerStore;

/// The store's durable audit outbox seen through `iga_audit::Outbox`: rows are claimed
/// with a lease (another pump does not get them meanwhile) and removed only when every
/// sink took them, so an event is never lost when the SIEM is down.
pub struct StoreOutbox {
    store: Arc<dyn LedgerStore>,
    clock: SharedClock,
    worker: String,
    lease: Duration,
}

impl std::fmt::Debug for StoreOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOutbox")
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

impl StoreOutbox {
    /// An outbox reader named `worker`, leasing claimed rows for `lease`.
    pub fn new(
        store: Arc<dyn LedgerStore>,
        clock: SharedClock,
        worker: impl Into<String>,
        lease: Duration,
    ) -> Self {
        Self {
            store,
            clock,
            worker: worker.into(),
            lease,
        }
    }
}

#[async_trait]
impl Outbox for StoreOutbox {
    async fn claim(&self, limit: usize) -> Result<Vec<OutboxEntry>, OutboxError> {
        let rows = self
            .store
            .claim_audit(limit, &self.worker, self.lease, self.clock.now())
            .await
            .map_err(|e| OutboxError(e.to_string()))?;
        rows.into_iter()
            .map(|r| {
                let e = AuditEvent::from_json(&r.event_json)
                    .map_err(|e| OutboxError(format!("outbox row {}: {e}", r.id)))?;
                Ok(OutboxEntry::new(r.id as u64, e))
            })
            .collect()
    }

    async fn ack(&self, ids: &[u64]) -> Result<(), OutboxError> {
        let ids: Vec<i64> = ids.iter().map(|i| *i as i64).collect();
        self.store
            .ack_audit(&ids)
            .await
            .map(|_| ())
            .map_err(|e| OutboxError(e.to_string()))
    }
}
