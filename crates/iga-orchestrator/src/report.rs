//! Reports returned by the orchestrator: pass/run summaries, dry-run plans, status.

use std::collections::BTreeMap;
use std::fmt;

use iga_directive::{DirectiveId, JobStateName};
use serde::Serialize;

/// What `submit` stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SubmitReport {
    /// New directives (each with a `Pending` job).
    pub accepted: usize,
    /// Directives already known (same id): ignored.
    pub duplicates: usize,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PassReport {
    /// Directives taken in from sources.
    pub intake: usize,
    /// Jobs planned for execution.
    pub planned: usize,
    /// Jobs skipped (no target change, shadow mode).
    pub skipped: usize,
    /// Jobs staged by a guardrail.
    pub staged: usize,
    /// Jobs executed (claimed and brought to a new state).
    pub executed: usize,
    /// Of those, succeeded.
    pub succeeded: usize,
    /// Of those, scheduled for a long retry.
    pub retrying: usize,
    /// Of those, escalated.
    pub escalated: usize,
    /// Of those, waiting for an external completion.
    pub awaiting: usize,
    /// Waiting jobs completed by polling.
    pub completed_external: usize,
    /// Receipts written.
    pub receipts: usize,
    /// Operations sent to adapters.
    pub operations: usize,
}

impl PassReport {
    /// Whether the pass changed any job.
    pub fn progressed(&self) -> bool {
        self.intake
            + self.planned
            + self.skipped
            + self.staged
            + self.executed
            + self.completed_external
            > 0
    }

    pub(crate) fn add(&mut self, o: &PassReport) {
        self.intake += o.intake;
        self.planned += o.planned;
        self.skipped += o.skipped;
        self.staged += o.staged;
        self.executed += o.executed;
        self.succeeded += o.succeeded;
        self.retrying += o.retrying;
        self.escalated += o.escalated;
        self.awaiting += o.awaiting;
        self.completed_external += o.completed_external;
        self.receipts += o.receipts;
        self.operations += o.operations;
    }
}

impl fmt::Display for PassReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "planned={} skipped={} staged={} executed={} succeeded={} retrying={} escalated={} awaiting={} receipts={} operations={}",
            self.planned,
            self.skipped,
            self.staged,
            self.executed,
            self.succeeded,
            self.retrying,
            self.escalated,
            self.awaiting,
            self.receipts,
            self.operations
        )
    }
}

/// One operation of a dry-run plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedOperation {
    /// The directive.
    pub directive_id: DirectiveId,
    /// Operation id.
    pub operation_id: String,
    /// Human description (`grant group:G to alice on entra@acme`).
    pub description: String,
    /// Target system.
    pub system: String,
}

/// A directive that would not change any target, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoOpDirective {
    /// The directive.
    pub directive_id: DirectiveId,
    /// Why nothing would be executed.
    pub reason: String,
}

/// A dry run: exactly what would happen, nothing persisted or executed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DryRunPlan {
    /// Operations in dependency waves (operations of one wave may run concurrently).
    pub waves: Vec<Vec<PlannedOperation>>,
    /// Directives that change nothing on a target (reference counts, shadow mode).
    pub no_ops: Vec<NoOpDirective>,
    /// Directives a guardrail would stage, with the reason.
    pub staged: Vec<NoOpDirective>,
}

impl DryRunPlan {
    /// Number of operations that would be executed.
    pub fn operation_count(&self) -> usize {
        self.waves.iter().map(Vec::len).sum()
    }

    /// A readable rendering.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (i, w) in self.waves.iter().enumerate() {
            s.push_str(&format!("wave {i}\n"));
            for op in w {
                s.push_str(&format!("  {}\n", op.description));
            }
        }
        if !self.no_ops.is_empty() {
            s.push_str("no target change\n");
            for n in &self.no_ops {
                s.push_str(&format!("  {}: {}\n", n.directive_id, n.reason));
            }
        }
        if !self.staged.is_empty() {
            s.push_str("would be staged\n");
            for n in &self.staged {
                s.push_str(&format!("  {}: {}\n", n.directive_id, n.reason));
            }
        }
        s
    }
}

/// Job counts by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusSummary {
    /// Count per state name.
    pub by_state: BTreeMap<String, usize>,
}

impl StatusSummary {
    /// Count in one state.
    pub fn count(&self, s: JobStateName) -> usize {
        self.by_state.get(s.as_str()).copied().unwrap_or(0)
    }
}
