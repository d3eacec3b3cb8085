//! The outbox the pump delivers from. The durable one lives in the store (iga-ledger)
//! and is written in the same transaction as the change it reports; [`MemoryOutbox`] is
//! the in-process, bounded version for tests and store-less embeddings.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use thiserror::Error;

use crate::event::AuditEvent;

/// One stored event and its outbox id (ids increase in insertion order).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxEntry {
    /// Outbox id.
    pub id: u64,
    /// The event.
    pub event: AuditEvent,
}

impl OutboxEntry {
    /// An entry.
    pub fn new(id: u64, event: AuditEvent) -> Self {
        Self { id, event }
    }
}

/// The outbox could not be read or written.
#[derive(Debug, Clone, Error)]
#[error("audit outbox: {0}")]
pub struct OutboxError(pub String);

/// Where undelivered events wait.
///
/// Contract: `claim(limit)` returns up to `limit` of the oldest un-acknowledged entries
/// in id order, without deleting them; entries claimed but never acknowledged become
/// claimable again (at once, or after a lease in a shared store), so a crash or a failed
/// delivery never loses one. `ack(ids)` removes them. The pump holds a claimed batch
/// until every sink took it and never claims again in between.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// The oldest un-acknowledged entries.
    async fn claim(&self, limit: usize) -> Result<Vec<OutboxEntry>, OutboxError>;
    /// Mark entries delivered.
    async fn ack(&self, ids: &[u64]) -> Result<(), OutboxError>;
    /// Number of un-acknowledged entries, when the outbox can count them cheaply.
    async fn backlog(&self) -> Result<Option<u64>, OutboxError> {
        Ok(None)
    }
}

/// The in-memory outbox is full; the event was not stored.
#[derive(Debug, Clone, Error)]
#[error("audit outbox full ({capacity} events waiting); event {event_id} ({kind}) dropped")]
pub struct OutboxFull {
    /// Capacity.
    pub capacity: usize,
    /// Id of the event that did not fit.
    pub event_id: String,
    /// Its kind.
    pub kind: String,
}

/// A bounded in-memory outbox. [`MemoryOutbox::push`] never blocks and never waits for
/// a sink: when full it refuses the event (and counts it) instead of slowing the caller.
#[derive(Debug)]
pub struct MemoryOutbox {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    entries: VecDeque<OutboxEntry>,
    next_id: u64,
    refused: u64,
}

impl MemoryOutbox {
    /// An outbox holding at most `capacity` undelivered events.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                next_id: 1,
                ..Default::default()
            }),
            capacity: capacity.max(1),
        }
    }

    /// Store an event; returns its id.
    pub fn push(&self, event: AuditEvent) -> Result<u64, OutboxFull> {
        let mut g = self.inner.lock().expect("outbox lock");
        if g.entries.len() >= self.capacity {
            g.refused += 1;
            return Err(OutboxFull {
                capacity: self.capacity,
                event_id: event.event_id,
                kind: event.kind.as_str().into(),
            });
        }
        let id = g.next_id;
        g.next_id += 1;
        g.entries.push_back(OutboxEntry { id, event });
        Ok(id)
    }

    /// Undelivered events.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("outbox lock").entries.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events refused because the outbox was full.
    pub fn refused(&self) -> u64 {
        self.inner.lock().expect("outbox lock").refused
    }
}

#[async_trait]
impl Outbox for MemoryOutbox {
    async fn claim(&self, limit: usize) -> Result<Vec<OutboxEntry>, OutboxError> {
        let g = self.inner.lock().expect("outbox lock");
        Ok(g.entries.iter().take(limit).cloned().collect())
    }

    async fn ack(&self, ids: &[u64]) -> Result<(), OutboxError> {
        let mut g = self.inner.lock().expect("outbox lock");
        g.entries.retain(|e| !ids.contains(&e.id));
        Ok(())
    }

    async fn backlog(&self) -> Result<Option<u64>, OutboxError> {
        Ok(Some(self.len() as u64))
    }
}
