//! The delivery pump: outbox → formatters → sinks, with retry and backlog reporting.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::format::Formatter;
use crate::outbox::{Outbox, OutboxEntry};
use crate::sink::AuditSink;

/// A sink and the format it receives.
#[derive(Clone)]
pub struct SinkBinding {
    /// The format.
    pub formatter: Formatter,
    /// The sink.
    pub sink: Arc<dyn AuditSink>,
}

impl std::fmt::Debug for SinkBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkBinding")
            .field("format", &self.formatter.format_kind())
            .field("sink", &self.sink.name())
            .finish()
    }
}

impl SinkBinding {
    /// Bind a sink to a formatter.
    pub fn new(formatter: Formatter, sink: Arc<dyn AuditSink>) -> Self {
        Self { formatter, sink }
    }
}

/// Pump settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PumpConfig {
    /// Events claimed and sent per batch (bounds the pump's memory). Default 256.
    pub batch_size: usize,
    /// How long to wait for new events when the outbox is empty (a [`DeliveryPump::notifier`]
    /// wake-up ends the wait early). Default 500 ms.
    pub idle_poll: Duration,
    /// First retry delay after a failed delivery; doubles up to `retry_max`. Default 200 ms.
    pub retry_initial: Duration,
    /// Longest retry delay. Default 30 s.
    pub retry_max: Duration,
}

impl Default for PumpConfig {
    fn default() -> Self {
        Self {
            batch_size: 256,
            idle_poll: Duration::from_millis(500),
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// What the pump reports (read it with [`DeliveryPump::status`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PumpStatus {
    /// Undelivered events in the outbox after the last step (`None` when the outbox
    /// cannot count; see `pending`).
    pub backlog: Option<u64>,
    /// Events of the batch currently held by the pump (claimed, not yet acknowledged).
    pub pending: u64,
    /// Events delivered to every sink and acknowledged since start.
    pub delivered: u64,
    /// Failed delivery attempts since start.
    pub failures: u64,
    /// Failed attempts since the last success (0 when healthy).
    pub consecutive_failures: u32,
    /// The last error, cleared on success.
    pub last_error: Option<String>,
}

/// Delivers outbox events to sinks, in order, at least once.
///
/// A batch is acknowledged only after every sink took it; a sink that already took the
/// current batch is not sent it again while another sink is retried. Provisioning never
/// waits for the pump: it only writes to the outbox.
pub struct DeliveryPump {
    outbox: Arc<dyn Outbox>,
    sinks: Vec<SinkBinding>,
    config: PumpConfig,
    pending: Option<(Vec<OutboxEntry>, Vec<bool>)>,
    status: watch::Sender<PumpStatus>,
    notify: Arc<Notify>,
}

impl std::fmt::Debug for DeliveryPump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryPump")
            .field("sinks", &self.sinks)
            .field("config", &self.config)
            .field("status", &*self.status.borrow())
            .finish()
    }
}

/// A delivery step failed (the batch stays in the outbox).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct PumpError(pub String);

impl DeliveryPump {
    /// A pump from `outbox` to `sinks`.
    pub fn new(outbox: Arc<dyn Outbox>, sinks: Vec<SinkBinding>, config: PumpConfig) -> Self {
        Self {
            outbox,
            sinks,
            config,
            pending: None,
            status: watch::Sender::new(PumpStatus::default()),
            notify: Arc::new(Notify::new()),
        }
    }

    /// Status updates (backlog, delivered, failures, last error).
    pub fn status(&self) -> watch::Receiver<PumpStatus> {
        self.status.subscribe()
    }

    /// Call `notify_one()` on this after writing to the outbox to wake an idle pump.
    pub fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// One step: claim a batch (or continue the pending one), send it to every sink that
    /// has not taken it yet, acknowledge when all have. Returns the number of events
    /// acknowledged (0 when the outbox is empty).
    pub async fn run_once(&mut self) -> Result<usize, PumpError> {
        if self.pending.is_none() {
            let batch = self
                .outbox
                .claim(self.config.batch_size.max(1))
                .await
                .map_err(|e| self.failed(e.to_string()))?;
            if batch.is_empty() {
                self.update_backlog().await;
                return Ok(0);
            }
            self.pending = Some((batch, vec![false; self.sinks.len()]));
        }
        let (batch, done) = self.pending.as_mut().expect("set above");
        let mut first_err: Option<String> = None;
        for (i, b) in self.sinks.iter().enumerate() {
            if done[i] {
                continue;
            }
            let lines: Vec<String> = batch.iter().map(|e| b.formatter.format(&e.event)).collect();
            match b.sink.send(&lines).await {
                Ok(()) => done[i] = true,
                Err(e) => {
                    tracing::warn!(sink = b.sink.name(), error = %e, "audit delivery failed; will retry");
                    first_err.get_or_insert(e.to_string());
                }
            }
        }
        if let Some(e) = first_err {
            self.update_backlog().await;
            return Err(self.failed(e));
        }
        let ids: Vec<u64> = batch.iter().map(|e| e.id).collect();
        self.outbox
            .ack(&ids)
            .await
            .map_err(|e| self.failed(e.to_string()))?;
        self.pending = None;
        let n = ids.len();
        self.status.send_modify(|s| {
            s.delivered += n as u64;
            s.consecutive_failures = 0;
            s.last_error = None;
        });
        self.update_backlog().await;
        Ok(n)
    }

    /// Run until `shutdown` completes: deliver while there is work, wait `idle_poll` (or a
    /// notification) when empty, back off exponentially while a sink is down.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut delay = self.config.retry_initial;
        loop {
            let wait = match self.run_once().await {
                Ok(0) => {
                    delay = self.config.retry_initial;
                    self.config.idle_poll
                }
                Ok(_) => {
                    delay = self.config.retry_initial;
                    Duration::ZERO
                }
                Err(_) => {
                    let d = delay;
                    delay = (delay * 2).min(self.config.retry_max);
                    d
                }
            };
            let notify = self.notify.clone();
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
                _ = notify.notified(), if wait == self.config.idle_poll => {}
            }
        }
    }

    fn failed(&self, e: String) -> PumpError {
        self.status.send_modify(|s| {
            s.failures += 1;
            s.consecutive_failures += 1;
            s.last_error = Some(e.clone());
        });
        PumpError(e)
    }

    async fn update_backlog(&self) {
        let pending = self.pending.as_ref().map_or(0, |(b, _)| b.len() as u64);
        let backlog = self.outbox.backlog().await.ok().flatten();
        self.status.send_modify(|s| {
            s.backlog = backlog;
            s.pending = pending;
        });
    }
}
