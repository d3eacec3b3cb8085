//! Manual tasks in the durable store: [`StoreTasks`] implements the manual
//! connector's [`TaskStore`] over [`LedgerStore`], so tasks survive restarts and show
//! in the store's manual-task queue (`open_manual_tasks`, what `iga tasks` lists).
//!
//! The queue row (`create_manual_task` / `close_manual_task`) is what owners see; the
//! full task (its operation and resolution) is a versioned document in namespace
//! [`TASK_NAMESPACE`], written create-only and then compare-and-set, so two workers
//! resolving the same task cannot both win.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use iga_adapter::{Error, ErrorKind, Result};
use iga_connector_manual::{Resolution, Task, TaskState, TaskStore, next_state, unknown_task};
use iga_directive::Timestamp;
use iga_ledger::{LedgerError, LedgerStore, ManualTask};

/// Document namespace of manual tasks.
pub const TASK_NAMESPACE: &str = "manual.task";

/// The manual connector's task store over the durable store.
#[derive(Clone)]
pub struct StoreTasks(pub Arc<dyn LedgerStore>);

impl fmt::Debug for StoreTasks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreTasks")
    }
}

fn store_err(e: LedgerError) -> Error {
    let kind = match &e {
        LedgerError::Invalid { .. } => ErrorKind::InvalidInput,
        LedgerError::VersionConflict { .. } => ErrorKind::Conflict,
        _ => ErrorKind::Unavailable,
    };
    Error::new(kind, format!("task store: {e}")).with_connector(iga_connector_manual::KIND)
}

fn decode(body: &str, id: &str) -> Result<Task> {
    serde_json::from_str(body).map_err(|e| {
        Error::new(
            ErrorKind::Unexpected,
            format!("stored manual task `{id}` is unreadable: {e}"),
        )
        .with_context("task_id", id)
    })
}

fn encode(t: &Task) -> String {
    serde_json::to_string(t).expect("task serializes")
}

impl StoreTasks {
    /// Tasks kept in `store`.
    pub fn new(store: Arc<dyn LedgerStore>) -> Self {
        Self(store)
    }

    async fn get_versioned(&self, id: &str) -> Result<Option<(Task, u64)>> {
        match self
            .0
            .get_document(TASK_NAMESPACE, id)
            .await
            .map_err(store_err)?
        {
            Some(d) => Ok(Some((decode(&d.body, id)?, d.version))),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl TaskStore for StoreTasks {
    async fn open(&self, task: Task) -> Result<Task> {
        if let Some((t, _)) = self.get_versioned(&task.id).await? {
            return Ok(t);
        }
        let row = ManualTask {
            id: task.id.clone(),
            job_id: Some(task.operation.directive_id.to_string()),
            tenant: task.operation.tenant.clone(),
            system: task.operation.system.clone(),
            owner: task.owner.clone(),
            summary: task.summary.clone(),
            detail_json: Some(
                serde_json::json!({"operation_id": task.operation.id.0, "kind": task.operation.kind})
                    .to_string(),
            ),
            created_at: task.created_at,
        };
        match self.0.create_manual_task(&row).await {
            Ok(()) => {}
            // The row exists (a crash between the row and the document, or a racing
            // worker): the document decides below.
            Err(LedgerError::Invalid { .. }) => {}
            Err(e) => return Err(store_err(e)),
        }
        match self
            .0
            .put_document(
                TASK_NAMESPACE,
                &task.id,
                &encode(&task),
                Some(0),
                task.created_at,
            )
            .await
        {
            Ok(_) => Ok(task),
            Err(LedgerError::VersionConflict { .. }) => Ok(self
                .get_versioned(&task.id)
                .await?
                .map(|(t, _)| t)
                .unwrap_or(task)),
            Err(e) => Err(store_err(e)),
        }
    }

    async fn get(&self, id: &str) -> Result<Option<Task>> {
        Ok(self.get_versioned(id).await?.map(|(t, _)| t))
    }

    async fn open_tasks(&self, system: Option<&str>, limit: usize) -> Result<Vec<Task>> {
        let rows = self
            .0
            .open_manual_tasks(system, limit)
            .await
            .map_err(store_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            if let Some((t, _)) = self.get_versioned(&r.id).await?
                && t.state == TaskState::Open
            {
                out.push(t);
            }
        }
        Ok(out)
    }

    async fn resolve(&self, id: &str, resolution: Resolution, at: Timestamp) -> Result<Task> {
        let (mut task, version) = self
            .get_versioned(id)
            .await?
            .ok_or_else(|| unknown_task(id))?;
        let Some(state) = next_state(&task, &resolution, at)? else {
            return Ok(task);
        };
        task.state = state;
        self.0
            .put_document(TASK_NAMESPACE, id, &encode(&task), Some(version), at)
            .await
            .map_err(store_err)?;
        self.0
            .close_manual_task(id, &resolution.describe(), at)
            .await
            .map_err(store_err)?;
        Ok(task)
    }

    async fn resolved(&self, system: &str) -> Result<Vec<Task>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .0
                .list_documents(TASK_NAMESPACE, after.as_deref(), 500)
                .await
                .map_err(store_err)?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            for d in &page {
                let t = decode(&d.body, &d.key)?;
                if t.operation.system == system && t.state != TaskState::Open {
                    out.push(t);
                }
            }
        }
        out.sort_by(|a, b| (a.state.resolved_at(), &a.id).cmp(&(b.state.resolved_at(), &b.id)));
        Ok(out)
    }
}
