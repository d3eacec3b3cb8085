//! Where directives come from: approval systems, HR feeds, webhooks, rules.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use iga_directive::{AccessDirective, ApprovalRef, DirectiveId};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// An opaque, durable position in a source (a timestamp watermark, a delta token, an
/// offset). The orchestrator stores it in the same transaction as the directives it
/// came with, so polling resumes without gaps or repeats.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SourceCursor(pub String);

/// One input a source could not turn into a directive. The source keeps going; the
/// rejection names the place so a person can fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RejectedInput {
    /// Where: `RITM0010001`, `hr.csv:17:department`, `webhook delivery 8f2c`.
    pub location: String,
    /// Why.
    pub reason: String,
}

impl RejectedInput {
    /// A rejection.
    pub fn new(location: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            reason: reason.into(),
        }
    }
}

/// The result of one poll.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PollBatch {
    /// New directives, in source order.
    pub directives: Vec<AccessDirective>,
    /// The cursor to store with them (None = unchanged).
    pub cursor: Option<SourceCursor>,
    /// More is available right away (poll again without waiting).
    pub more: bool,
    /// Inputs that were skipped, with the reason.
    pub rejected: Vec<RejectedInput>,
}

impl PollBatch {
    /// A batch.
    pub fn new(directives: Vec<AccessDirective>, cursor: Option<SourceCursor>) -> Self {
        Self {
            directives,
            cursor,
            more: false,
            rejected: Vec::new(),
        }
    }
}

/// How a source delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceMode {
    /// Call [`DirectiveSource::poll`] every `interval`.
    Poll {
        /// Suggested poll interval.
        interval: Duration,
    },
    /// The source pushes into a [`DirectiveSink`] from [`DirectiveSource::run_push`].
    Push,
}

/// What happened to a directive, reported back to the source (ticket write-back:
/// work note, closure, "needs attention").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FulfillmentReport {
    /// Every operation of the directive succeeded.
    Fulfilled {
        /// The directive.
        directive_id: DirectiveId,
        /// The approval it came from, if any.
        approval: Option<ApprovalRef>,
        /// Receipt ids proving it.
        receipt_ids: Vec<String>,
    },
    /// It failed permanently or exhausted its retries and was escalated.
    NeedsAttention {
        /// The directive.
        directive_id: DirectiveId,
        /// The approval it came from, if any.
        approval: Option<ApprovalRef>,
        /// A redacted summary of what went wrong.
        message: String,
    },
}

/// Receives pushed directives. The orchestrator implements it by persisting the
/// directives (and the cursor, if given) in one transaction; `Ok` means durable.
#[async_trait]
pub trait DirectiveSink: Send + Sync {
    /// Accept directives from source `source`.
    async fn accept(
        &self,
        source: &str,
        directives: Vec<AccessDirective>,
        cursor: Option<SourceCursor>,
    ) -> Result<()>;
}

/// A producer of directives: approval systems (ServiceNow, Jira, SAP GRC), HR feeds,
/// webhooks, birthright rules.
///
/// # Contract
/// - `poll(cursor)` returns what is new *after* `cursor`, plus the cursor to store;
///   polling again with the same cursor returns the same directives (with the same
///   ids) — the orchestrator relies on that for exactly-once intake after a crash.
/// - Directive ids are derived from the decision (see `DirectiveBuilder::build`), so a
///   re-detected approval never yields a second directive.
/// - Bad inputs are reported in `PollBatch::rejected` and do not stop the batch.
/// - `report` is idempotent (called again after a crash).
#[async_trait]
pub trait DirectiveSource: fmt::Debug + Send + Sync + 'static {
    /// A stable name, used as the cursor key.
    fn name(&self) -> &str;

    /// Poll or push.
    fn mode(&self) -> SourceMode;

    /// Fetch what is new after `cursor`. Push-only sources return `Unsupported`.
    async fn poll(&self, cursor: Option<&SourceCursor>) -> Result<PollBatch>;

    /// Run until cancelled, pushing into `sink`. Poll-only sources return
    /// `Unsupported` at once.
    async fn run_push(&self, sink: Arc<dyn DirectiveSink>) -> Result<()>;

    /// Tell the source what became of a directive (write-back to the ticket).
    async fn report(&self, report: &FulfillmentReport) -> Result<()>;
}

/// An in-memory poll source: directives are appended with [`MemorySource::push`],
/// the cursor is the offset. Reports are recorded for inspection. For tests and
/// embedding examples.
#[derive(Debug, Clone)]
pub struct MemorySource {
    name: String,
    inner: Arc<Mutex<MemorySourceState>>,
    page: usize,
}

#[derive(Debug, Default)]
struct MemorySourceState {
    items: Vec<AccessDirective>,
    reports: Vec<FulfillmentReport>,
}

impl MemorySource {
    /// An empty source that returns at most `page` directives per poll.
    pub fn new(name: impl Into<String>, page: usize) -> Self {
        Self {
            name: name.into(),
            inner: Arc::default(),
            page: page.max(1),
        }
    }

    /// Append a directive.
    pub fn push(&self, d: AccessDirective) {
        self.inner.lock().expect("source lock").items.push(d);
    }

    /// Reports received so far.
    pub fn reports(&self) -> Vec<FulfillmentReport> {
        self.inner.lock().expect("source lock").reports.clone()
    }
}

#[async_trait]
impl DirectiveSource for MemorySource {
    fn name(&self) -> &str {
        &self.name
    }

    fn mode(&self) -> SourceMode {
        SourceMode::Poll {
            interval: Duration::from_secs(1),
        }
    }

    async fn poll(&self, cursor: Option<&SourceCursor>) -> Result<PollBatch> {
        let start = match cursor {
            None => 0,
            Some(c) => {
                c.0.parse::<usize>()
                    .map_err(|_| crate::types::bad_cursor(&c.0))?
            }
        };
        let st = self.inner.lock().expect("source lock");
        let end = (start + self.page).min(st.items.len());
        let directives = st.items.get(start..end).unwrap_or_default().to_vec();
        Ok(PollBatch {
            more: end < st.items.len(),
            cursor: Some(SourceCursor(end.max(start).to_string())),
            directives,
            rejected: Vec::new(),
        })
    }

    async fn run_push(&self, _sink: Arc<dyn DirectiveSink>) -> Result<()> {
        Err(Error::unsupported("memory source is poll-only"))
    }

    async fn report(&self, report: &FulfillmentReport) -> Result<()> {
        let mut st = self.inner.lock().expect("source lock");
        if !st.reports.contains(report) {
            st.reports.push(report.clone());
        }
        Ok(())
    }
}
