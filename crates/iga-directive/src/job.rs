use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{AccessDirective, DirectiveId, Timestamp};

/// One failed (or externally pending) attempt at executing a job, kept for escalation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AttemptRecord {
    /// 1-based attempt number.
    pub attempt: u32,
    /// When the attempt ended.
    pub at: Timestamp,
    /// The error kind (`rate_limited`, `unavailable`, ...), as the adapter classified it.
    pub error_kind: String,
    /// The (redacted) error message.
    pub message: String,
    /// A short, redacted summary of the target's response (status, vendor code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_summary: Option<String>,
}

impl AttemptRecord {
    /// A record.
    pub fn new(
        attempt: u32,
        at: Timestamp,
        error_kind: impl Into<String>,
        message: impl Into<String>,
        response_summary: Option<String>,
    ) -> Self {
        Self {
            attempt,
            at,
            error_kind: error_kind.into(),
            message: message.into(),
            response_summary,
        }
    }
}

/// The durable state of one directive's fulfilment.
///
/// ```text
///  Pending ──► Planned ──► InFlight ──► Succeeded
///    │  │        │  ▲         │ │ │
///    │  │        │  │         │ │ └──► AwaitingExternal ──► Succeeded / Retrying / Escalated / Cancelled
///    │  │        │  └─────────┘ └────► Retrying ──► InFlight / Escalated / Cancelled
///    │  └► Staged ◄┘ (guardrail)   └──► Escalated ──► Planned (operator re-queue)
///    └──► Skipped / Cancelled
/// ```
/// The full table is [`JobStateName::can_transition_to`]; anything else is a
/// [`TransitionError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobState {
    /// Persisted, not yet planned.
    Pending,
    /// Ordered by the resolver, waiting for its wave.
    Planned,
    /// Held by a guardrail (mass-deletion threshold) until released or cancelled.
    Staged {
        /// Why it was staged.
        reason: String,
    },
    /// Being executed now.
    InFlight,
    /// Accepted by a target that completes later (ticket, manual task, async API).
    AwaitingExternal {
        /// The target's reference (ticket number, request id).
        external_ref: String,
    },
    /// Failed transiently; will be retried at `next_at`.
    Retrying {
        /// Number of attempts made so far.
        attempt: u32,
        /// When the next attempt is due.
        next_at: Timestamp,
    },
    /// Done (applied, or already in state). Terminal.
    Succeeded,
    /// Given up: needs a human. Carries the full attempt history.
    Escalated {
        /// Why it was escalated (permanent error, retries exhausted, rejected).
        reason: String,
        /// Every attempt's time, error kind, message and response summary.
        attempts: Vec<AttemptRecord>,
    },
    /// Nothing to execute (reference count says no target change, coexistence mode, a
    /// failed relaxed dependency). Terminal.
    Skipped {
        /// Why.
        reason: String,
    },
    /// Withdrawn (staged item rejected, directive superseded). Terminal.
    Cancelled {
        /// Why.
        reason: String,
    },
}

/// The name of a [`JobState`] without its data; the transition table is defined on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStateName {
    /// [`JobState::Pending`]
    Pending,
    /// [`JobState::Planned`]
    Planned,
    /// [`JobState::Staged`]
    Staged,
    /// [`JobState::InFlight`]
    InFlight,
    /// [`JobState::AwaitingExternal`]
    AwaitingExternal,
    /// [`JobState::Retrying`]
    Retrying,
    /// [`JobState::Succeeded`]
    Succeeded,
    /// [`JobState::Escalated`]
    Escalated,
    /// [`JobState::Skipped`]
    Skipped,
    /// [`JobState::Cancelled`]
    Cancelled,
}

impl JobStateName {
    /// Every state.
    pub const ALL: [JobStateName; 10] = [
        Self::Pending,
        Self::Planned,
        Self::Staged,
        Self::InFlight,
        Self::AwaitingExternal,
        Self::Retrying,
        Self::Succeeded,
        Self::Escalated,
        Self::Skipped,
        Self::Cancelled,
    ];

    /// Canonical snake_case name (what the store persists).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Planned => "planned",
            Self::Staged => "staged",
            Self::InFlight => "in_flight",
            Self::AwaitingExternal => "awaiting_external",
            Self::Retrying => "retrying",
            Self::Succeeded => "succeeded",
            Self::Escalated => "escalated",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parse the canonical name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == s)
    }

    /// States with no automatic way out. (`Escalated` can still be re-queued by an
    /// operator, to `Planned`.)
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Escalated | Self::Skipped | Self::Cancelled
        )
    }

    /// The legal transition table.
    pub fn can_transition_to(self, to: JobStateName) -> bool {
        use JobStateName::*;
        matches!(
            (self, to),
            (Pending, Planned | Staged | Skipped | Cancelled)
                | (Planned, InFlight | Staged | Skipped | Cancelled)
                | (Staged, Planned | Cancelled)
                // InFlight -> Planned: crash recovery re-queues work that was in flight.
                | (InFlight, Succeeded | AwaitingExternal | Retrying | Escalated | Planned)
                | (AwaitingExternal, Succeeded | Retrying | Escalated | Cancelled)
                | (Retrying, InFlight | Escalated | Cancelled)
                // An operator re-queues an escalated job after fixing its cause.
                | (Escalated, Planned)
        )
    }
}

impl fmt::Display for JobStateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl JobState {
    /// The state's name.
    pub fn name(&self) -> JobStateName {
        match self {
            Self::Pending => JobStateName::Pending,
            Self::Planned => JobStateName::Planned,
            Self::Staged { .. } => JobStateName::Staged,
            Self::InFlight => JobStateName::InFlight,
            Self::AwaitingExternal { .. } => JobStateName::AwaitingExternal,
            Self::Retrying { .. } => JobStateName::Retrying,
            Self::Succeeded => JobStateName::Succeeded,
            Self::Escalated { .. } => JobStateName::Escalated,
            Self::Skipped { .. } => JobStateName::Skipped,
            Self::Cancelled { .. } => JobStateName::Cancelled,
        }
    }

    /// Whether the state is terminal ([`JobStateName::is_terminal`]).
    pub fn is_terminal(&self) -> bool {
        self.name().is_terminal()
    }
}

/// An illegal state change.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("job {job}: illegal transition {from} -> {to}")]
pub struct TransitionError {
    /// The job.
    pub job: String,
    /// Current state.
    pub from: JobStateName,
    /// Requested state.
    pub to: JobStateName,
}

/// The durable state of one directive's fulfilment (one job per directive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FulfillmentJob {
    /// Job id (equal to the directive id).
    pub id: String,
    /// The directive.
    pub directive_id: DirectiveId,
    /// Tenant of the directive.
    pub tenant: String,
    /// Target system of the directive.
    pub system: String,
    /// Current state.
    pub state: JobState,
    /// Failed attempts so far (kept across retries; copied into `Escalated`).
    #[serde(default)]
    pub attempts: Vec<AttemptRecord>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last state change.
    pub updated_at: Timestamp,
}

impl FulfillmentJob {
    /// A new `Pending` job for a directive.
    pub fn new(d: &AccessDirective, now: Timestamp) -> Self {
        Self {
            id: d.id.0.clone(),
            directive_id: d.id.clone(),
            tenant: d.tenant.clone(),
            system: d.system.clone(),
            state: JobState::Pending,
            attempts: Vec::new(),
            created_at: now,
            updated_at: now,
        }
    }

    /// Move to `to` if the table allows it.
    pub fn transition(&mut self, to: JobState, now: Timestamp) -> Result<(), TransitionError> {
        let (from, to_name) = (self.state.name(), to.name());
        if !from.can_transition_to(to_name) {
            return Err(TransitionError {
                job: self.id.clone(),
                from,
                to: to_name,
            });
        }
        self.state = to;
        self.updated_at = now;
        Ok(())
    }

    /// Record a failed attempt.
    pub fn record_attempt(&mut self, a: AttemptRecord) {
        self.attempts.push(a);
    }

    /// Escalate with the full attempt history.
    pub fn escalate(
        &mut self,
        reason: impl Into<String>,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        let attempts = self.attempts.clone();
        self.transition(
            JobState::Escalated {
                reason: reason.into(),
                attempts,
            },
            now,
        )
    }
}
