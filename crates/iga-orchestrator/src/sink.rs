//! The push path: [`Orchestrator`] as a [`DirectiveSink`] for webhook receivers and
//! other push sources.
//!
//! `accept` validates every directive first (all or nothing, the error names the
//! directive), then persists them — with the source's cursor, when given — in one
//! store transaction. `Ok` means durable: a webhook endpoint answers 2xx only after
//! it. Directive ids are derived from the decision, so an event delivered twice, or
//! detected by both a webhook and a poll, is stored once (the store ignores a known
//! id).

use std::sync::Arc;

use async_trait::async_trait;
use iga_adapter::{DirectiveSink, Error as AdapterError, ErrorKind, SourceCursor};
use iga_directive::AccessDirective;

use crate::{Orchestrator, OrchestratorError};

impl Orchestrator {
    /// This orchestrator as a [`DirectiveSink`] (a cheap handle sharing its state),
    /// for push sources: `source.run_push(orch.sink())` or a webhook router.
    pub fn sink(&self) -> Arc<dyn DirectiveSink> {
        Arc::new(self.clone())
    }

    /// Validate and durably persist pushed directives (and the cursor of `source`,
    /// if given) in one transaction. Returns how many were new (the rest were
    /// already known by id).
    pub async fn accept_pushed(
        &self,
        source: &str,
        directives: Vec<AccessDirective>,
        cursor: Option<SourceCursor>,
    ) -> crate::Result<usize> {
        self.validate(&directives)?;
        let now = self.now();
        let r = match &cursor {
            Some(c) => {
                self.store()
                    .persist_directives_with_cursor(&directives, source, &c.0, now)
                    .await?
            }
            None => self.store().persist_directives(&directives, now).await?,
        };
        self.remember(&directives);
        tracing::debug!(
            source,
            inserted = r.inserted,
            duplicates = r.duplicates,
            "pushed directives persisted"
        );
        Ok(r.inserted)
    }
}

#[async_trait]
impl DirectiveSink for Orchestrator {
    async fn accept(
        &self,
        source: &str,
        directives: Vec<AccessDirective>,
        cursor: Option<SourceCursor>,
    ) -> iga_adapter::Result<()> {
        self.accept_pushed(source, directives, cursor)
            .await
            .map(|_| ())
            .map_err(|e| to_adapter_error(source, e))
    }
}

/// Invalid input is permanent (the sender must fix it); anything else (the store)
/// is temporary, so the sender retries the delivery.
fn to_adapter_error(source: &str, e: OrchestratorError) -> AdapterError {
    let kind = match &e {
        OrchestratorError::InvalidDirective { .. } | OrchestratorError::UnknownSystem { .. } => {
            ErrorKind::InvalidInput
        }
        OrchestratorError::Adapter(a) => a.kind(),
        _ => ErrorKind::Unavailable,
    };
    AdapterError::new(kind, format!("pushed directives from `{source}`: {e}"))
}
