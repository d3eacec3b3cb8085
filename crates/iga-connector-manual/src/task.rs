//! Tasks and where they are kept.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use iga_adapter::{Error, ErrorKind, Result};
use iga_directive::{Operation, Timestamp};
use serde::{Deserialize, Serialize};

/// Where a task stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskState {
    /// Waiting for its owner.
    Open,
    /// The owner did the work.
    Completed {
        /// Who completed it, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// When.
        at: Timestamp,
    },
    /// The owner refused (or could not do) the work.
    Rejected {
        /// Why (shown in the escalation; never a secret).
        reason: String,
        /// Who rejected it, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// When.
        at: Timestamp,
    },
}

impl TaskState {
    /// `open`, `completed` or `rejected`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Completed { .. } => "completed",
            Self::Rejected { .. } => "rejected",
        }
    }

    /// When the task was resolved (None while open).
    pub fn resolved_at(&self) -> Option<Timestamp> {
        match self {
            Self::Open => None,
            Self::Completed { at, .. } | Self::Rejected { at, .. } => Some(*at),
        }
    }
}

/// How an owner resolves a task.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resolution {
    /// Done.
    Complete {
        /// Who did it.
        by: Option<String>,
    },
    /// Refused.
    Reject {
        /// Why.
        reason: String,
        /// Who refused.
        by: Option<String>,
    },
}

impl Resolution {
    /// Completed by `by`.
    pub fn complete(by: Option<&str>) -> Self {
        Self::Complete {
            by: by.map(str::to_string),
        }
    }

    /// Rejected by `by` for `reason`.
    pub fn reject(reason: impl Into<String>, by: Option<&str>) -> Self {
        Self::Reject {
            reason: reason.into(),
            by: by.map(str::to_string),
        }
    }

    /// The state this resolution leads to at `at`.
    pub fn state(&self, at: Timestamp) -> TaskState {
        match self {
            Self::Complete { by } => TaskState::Completed { by: by.clone(), at },
            Self::Reject { reason, by } => TaskState::Rejected {
                reason: reason.clone(),
                by: by.clone(),
                at,
            },
        }
    }

    /// A one-line description (what durable stores record as the resolution).
    pub fn describe(&self) -> String {
        match self {
            Self::Complete { by: Some(b) } => format!("completed by {b}"),
            Self::Complete { by: None } => "completed".into(),
            Self::Reject {
                reason,
                by: Some(b),
            } => format!("rejected by {b}: {reason}"),
            Self::Reject { reason, by: None } => format!("rejected: {reason}"),
        }
    }
}

/// One task for a human owner: carry out `operation` on `operation.system`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Task {
    /// Task id, derived from the operation id ([`task_id`]): the same operation never
    /// opens two tasks.
    pub id: String,
    /// What to do.
    pub operation: Operation,
    /// Who must act (per-entitlement owner, else the system owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// One line for the owner's queue (no secrets: attribute values are not included).
    pub summary: String,
    /// Where it stands.
    #[serde(flatten)]
    pub state: TaskState,
    /// When it was opened.
    pub created_at: Timestamp,
}

impl Task {
    /// A new open task for `op`.
    pub fn open(op: &Operation, owner: Option<String>, summary: String, now: Timestamp) -> Self {
        Self {
            id: task_id(op),
            operation: op.clone(),
            owner,
            summary,
            state: TaskState::Open,
            created_at: now,
        }
    }
}

/// The task id of an operation: `mt-<operation id>`.
pub fn task_id(op: &Operation) -> String {
    format!("mt-{}", op.id)
}

/// Where tasks are kept. Connectors depend only on `iga-adapter`, so the durable
/// implementation lives with the store (`iga_orchestrator::StoreTasks`);
/// [`MemoryTaskStore`] is the in-process one.
///
/// # Contract
/// - `open` is create-if-absent: when a task with the same id exists it is returned
///   unchanged, so the same operation never opens two tasks.
/// - `resolve` moves an open task to completed or rejected; resolving again the same
///   way returns the task unchanged, resolving it the other way is `Conflict`, an
///   unknown id is `NotFound`.
/// - `resolved` lists the resolved tasks of a system in resolution order (ties by id):
///   the manual target's history, from which its current state is derived.
#[async_trait]
pub trait TaskStore: fmt::Debug + Send + Sync + 'static {
    /// Open a task unless one with its id exists; returns the stored task.
    async fn open(&self, task: Task) -> Result<Task>;
    /// One task.
    async fn get(&self, id: &str) -> Result<Option<Task>>;
    /// Open tasks (optionally of one system), oldest first, at most `limit`.
    async fn open_tasks(&self, system: Option<&str>, limit: usize) -> Result<Vec<Task>>;
    /// Complete or reject a task.
    async fn resolve(&self, id: &str, resolution: Resolution, at: Timestamp) -> Result<Task>;
    /// Resolved tasks of a system, in resolution order.
    async fn resolved(&self, system: &str) -> Result<Vec<Task>>;
}

/// Check a resolution against a task's current state (shared by stores): `Ok(None)`
/// when it is a repeat of the same resolution, `Ok(Some(state))` for the new state.
pub fn next_state(
    task: &Task,
    resolution: &Resolution,
    at: Timestamp,
) -> Result<Option<TaskState>> {
    match (&task.state, resolution) {
        (TaskState::Open, r) => Ok(Some(r.state(at))),
        (TaskState::Completed { .. }, Resolution::Complete { .. }) => Ok(None),
        (TaskState::Rejected { .. }, Resolution::Reject { .. }) => Ok(None),
        (s, r) => Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "task {} is already {}; cannot {}",
                task.id,
                s.name(),
                r.describe()
            ),
        )
        .with_context("task_id", &task.id)),
    }
}

/// Not-found error for a task id.
pub fn unknown_task(id: &str) -> Error {
    Error::not_found(format!("no manual task `{id}`")).with_context("task_id", id)
}

/// Tasks in memory (lost on restart; use the store-backed implementation in
/// production).
#[derive(Debug, Default)]
pub struct MemoryTaskStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    tasks: BTreeMap<String, Task>,
    order: Vec<String>,
}

impl MemoryTaskStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many tasks were ever opened.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("tasks").tasks.len()
    }

    /// Whether no task was ever opened.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl TaskStore for MemoryTaskStore {
    async fn open(&self, task: Task) -> Result<Task> {
        let mut g = self.inner.lock().expect("tasks");
        Ok(g.tasks.entry(task.id.clone()).or_insert(task).clone())
    }

    async fn get(&self, id: &str) -> Result<Option<Task>> {
        Ok(self.inner.lock().expect("tasks").tasks.get(id).cloned())
    }

    async fn open_tasks(&self, system: Option<&str>, limit: usize) -> Result<Vec<Task>> {
        let g = self.inner.lock().expect("tasks");
        let mut v: Vec<Task> = g
            .tasks
            .values()
            .filter(|t| t.state == TaskState::Open)
            .filter(|t| system.is_none_or(|s| t.operation.system == s))
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        v.truncate(limit);
        Ok(v)
    }

    async fn resolve(&self, id: &str, resolution: Resolution, at: Timestamp) -> Result<Task> {
        let mut g = self.inner.lock().expect("tasks");
        let task = g.tasks.get_mut(id).ok_or_else(|| unknown_task(id))?;
        if let Some(state) = next_state(task, &resolution, at)? {
            task.state = state;
            let t = task.clone();
            g.order.push(id.to_string());
            return Ok(t);
        }
        Ok(task.clone())
    }

    async fn resolved(&self, system: &str) -> Result<Vec<Task>> {
        let g = self.inner.lock().expect("tasks");
        Ok(g.order
            .iter()
            .filter_map(|id| g.tasks.get(id))
            .filter(|t| t.operation.system == system)
            .cloned()
            .collect())
    }
}
