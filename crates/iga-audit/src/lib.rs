//! # iga-audit — audit events for SIEMs
//!
//! [`AuditEvent`]s for every step of fulfilment (directive received, planned, staged,
//! released, executed, failed attempt, retried, escalated, ledger changed, receipt
//! written, source cursor advanced), each with correlation ids (directive, job,
//! operation, receipt, approval) and no secrets.
//!
//! Formats ([`Formatter`]): ArcSight CEF, QRadar LEEF 2.0, RFC 5424 syslog with
//! structured data, JSON lines. Sinks ([`AuditSink`]): [`FileSink`], [`UdpSink`],
//! [`TcpSink`] (RFC 6587 octet counting). Delivery: the orchestrator writes events to
//! a durable outbox in its store (the [`Outbox`] trait) in the same transaction as the
//! change; a [`DeliveryPump`] reads the outbox, formats per sink, sends, acknowledges,
//! retries with backoff while a SIEM is down and reports the backlog. Provisioning never
//! waits for a SIEM.
//!
//! ```
//! use iga_audit::*;
//! let at = chrono::Utc::now();
//! let e = AuditEvent::new(EventKind::ReceiptWritten, at, "receipt written")
//!     .directive("d-1").receipt("r-1").approval("servicenow:RITM0010001");
//! let line = Formatter::new(Format::Cef, FormatConfig::default()).format(&e);
//! assert!(line.starts_with("CEF:0|iga-connectors|iga|"));
//! assert!(line.contains("cs3Label=receiptId cs3=r-1"));
//! ```
#![deny(missing_docs)]

mod event;
mod format;
mod outbox;
mod pump;
mod sink;

pub use event::{AuditEvent, Correlation, EventKind, Severity, is_secret_key, redact_text};
pub use format::{
    Format, FormatConfig, Formatter, cef_escape_header, cef_escape_value, leef_clean_value,
    sd_escape,
};
pub use outbox::{MemoryOutbox, Outbox, OutboxEntry, OutboxError, OutboxFull};
pub use pump::{DeliveryPump, PumpConfig, PumpError, PumpStatus, SinkBinding};
pub use sink::{AuditSink, FileSink, Framing, SinkError, TcpSink, UdpSink, frame};
