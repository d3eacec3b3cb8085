//! `SlackAdapter`: the SCIM connector with Slack's dialect.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::DefaultClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use async_trait::async_trait;
use iga_adapter::{
    Account, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo, Error,
    ErrorKind, ObjectRef, Observed, Outcome, Page, PageRequest, ProvisioningAdapter, Result,
    Secret,
};
use iga_connector_scim::{ScimAdapter, ScimConfig};
use iga_directive::{Operation, OperationKind};

use crate::KIND;

/// Slack SCIM configuration. `Debug` never shows the token.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SlackConfig {
    /// SCIM base URL; default `https://api.slack.com/scim/v2`.
    pub base_url: String,
    /// Org-admin user token with the `admin` scope (Business+ / Enterprise Grid).
    pub token: Secret,
    /// Instance label for `AdapterInfo` (default `slack`). Never a secret.
    pub instance: String,
    /// Page size for list calls (Slack allows at most 1000). Default 100.
    pub page_size: usize,
    /// Client-side pacing of writes to Slack's per-method limits, as a fraction of
    /// them (default `Some(1.0)`; None turns pacing off). Slack's limits are shared
    /// by every SCIM app of the org: lower this when others write too.
    pub write_pacing: Option<f64>,
}

impl SlackConfig {
    /// The production SCIM v2 endpoint with `token`.
    pub fn new(token: impl Into<Secret>) -> Self {
        Self {
            base_url: "https://api.slack.com/scim/v2".into(),
            token: token.into(),
            instance: "slack".into(),
            page_size: 100,
            write_pacing: Some(1.0),
        }
    }

    /// Use another base URL (a mock, a proxy).
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Set the instance label.
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = instance.into();
        self
    }

    /// Pace writes at `fraction` of Slack's per-method limits (None: no pacing).
    pub fn with_write_pacing(mut self, fraction: Option<f64>) -> Self {
        self.write_pacing = fraction.filter(|f| *f > 0.0);
        self
    }

    /// Set the page size (1..=1000).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = n.clamp(1, 1000);
        self
    }
}

/// A Slack workspace or Enterprise Grid org through the Slack SCIM API.
///
/// Built on [`ScimAdapter`] (discovery, match-then-link, PATCH membership, index
/// paging); this type applies Slack's dialect on top:
/// - **no account deletion**: Slack's `DELETE /Users/{id}` only deactivates, so
///   `delete_account` is not declared — leavers are `disable_account`
///   (`active: false`);
/// - **no `/Bulk`** (`batch_max` 1);
/// - entitlements are user groups (SCIM Groups), membership by PATCH on the Group.
#[derive(Clone)]
pub struct SlackAdapter {
    scim: ScimAdapter,
    caps: Capabilities,
    instance: String,
    pacer: Option<Arc<WritePacer>>,
}

type Bucket = RateLimiter<NotKeyed, InMemoryState, DefaultClock, NoOpMiddleware>;

/// Token buckets mirroring Slack's published write limits (per minute, burst):
/// all writes 600/180; create, update and deactivate user 180/20 each; user-group
/// writes 60/20 (Slack does not publish these; an assumption).
struct WritePacer {
    writes: Bucket,
    create: Bucket,
    update: Bucket,
    groups: Bucket,
}

impl WritePacer {
    fn new(fraction: f64) -> Self {
        let bucket = |per_min: f64, burst: f64| {
            let per_min = (per_min * fraction).max(1.0);
            let burst = NonZeroU32::new((burst * fraction).max(1.0) as u32).expect("at least 1");
            let period = Duration::from_secs_f64(60.0 / per_min);
            RateLimiter::direct(
                Quota::with_period(period)
                    .expect("non-zero period")
                    .allow_burst(burst),
            )
        };
        Self {
            writes: bucket(600.0, 180.0),
            create: bucket(180.0, 20.0),
            update: bucket(180.0, 20.0),
            groups: bucket(60.0, 20.0),
        }
    }

    async fn before(&self, kind: OperationKind) {
        let method = match kind {
            OperationKind::CreateAccount => &self.create,
            OperationKind::UpdateAccount
            | OperationKind::DisableAccount
            | OperationKind::EnableAccount => &self.update,
            OperationKind::Grant | OperationKind::Revoke => &self.groups,
            _ => return,
        };
        method.until_ready().await;
        self.writes.until_ready().await;
    }
}

impl fmt::Debug for SlackAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackAdapter")
            .field("instance", &self.instance)
            .field("scim", &self.scim)
            .finish()
    }
}

impl fmt::Display for SlackAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slack({})", self.instance)
    }
}

impl SlackAdapter {
    /// Connect: reads `/ServiceProviderConfig` once (through the SCIM connector)
    /// and applies Slack's dialect to the capabilities.
    pub async fn connect(config: SlackConfig) -> Result<Self> {
        let scim_config = ScimConfig::new(&config.base_url)
            .map_err(|e| e.with_connector(KIND).with_context("field", "base_url"))?
            .bearer_token(config.token.clone())
            .with_instance(config.instance.clone())
            .with_page_size(config.page_size)
            .with_bulk_max(1);
        let scim = ScimAdapter::connect(scim_config)
            .await
            .map_err(|e| e.with_connector(KIND))?;
        let mut caps = scim.capabilities().clone();
        caps.delete_account = false;
        caps.batch_max = 1;
        Ok(Self {
            scim,
            caps,
            instance: config.instance,
            pacer: config.write_pacing.map(|f| Arc::new(WritePacer::new(f))),
        })
    }

    /// HTTP requests sent so far (the conformance I/O probe).
    pub fn requests(&self) -> u64 {
        self.scim.stats().requests
    }

    /// Create a user group (fixtures and set-up); returns its SCIM id.
    pub async fn create_group(&self, name: &str) -> Result<String> {
        self.scim.create_group(name).await
    }

    fn check_op(&self, op: &Operation) -> Result<()> {
        self.caps.check(op).map_err(|e| {
            if op.kind == OperationKind::DeleteAccount {
                Error::new(
                    ErrorKind::Unsupported,
                    "Slack does not delete accounts (DELETE only deactivates): use disable_account",
                )
                .with_connector(KIND)
                .with_context("operation_id", &op.id)
            } else {
                e.with_connector(KIND)
            }
        })
    }
}

#[async_trait]
impl ProvisioningAdapter for SlackAdapter {
    fn info(&self) -> AdapterInfo {
        AdapterInfo::new(KIND, self.instance.clone())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    async fn check(&self) -> Result<()> {
        self.scim.check().await.map_err(|e| e.with_connector(KIND))
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.check_op(op)?;
        if let Some(p) = &self.pacer {
            // Every operation writes at most once (after its reads decide).
            p.before(op.kind).await;
        }
        self.scim
            .apply(op)
            .await
            .map_err(|e| e.with_connector(KIND))
    }

    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        iga_adapter::batch::sequential(self, ops).await
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        self.caps.check_call("read")?;
        self.scim
            .read(object)
            .await
            .map_err(|e| e.with_connector(KIND))
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        self.caps.check_call("list_accounts")?;
        self.scim
            .list_accounts(page)
            .await
            .map_err(|e| e.with_connector(KIND))
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        self.caps.check_call("list_entitlements")?;
        self.scim
            .list_entitlements(page)
            .await
            .map_err(|e| e.with_connector(KIND))
    }

    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>> {
        self.caps.check_call("list_assignments")?;
        self.scim
            .list_assignments(scope, page)
            .await
            .map_err(|e| e.with_connector(KIND))
    }
}

#[cfg(test)]
mod tests {
    use iga_adapter::ErrorKind;
    use iga_connector_scim::error::classify;

    /// Slack answers with the SCIM error schema; classification is the SCIM
    /// connector's, checked here for every answer Slack gives.
    #[test]
    fn slack_error_table() {
        let table: &[(u16, Option<&str>, ErrorKind, bool)] = &[
            (400, Some("invalidValue"), ErrorKind::InvalidInput, false),
            (400, Some("invalidFilter"), ErrorKind::InvalidInput, false),
            (400, Some("invalidPath"), ErrorKind::InvalidInput, false),
            (401, None, ErrorKind::Unauthenticated, false),
            (403, None, ErrorKind::PermissionDenied, false),
            (404, None, ErrorKind::NotFound, false),
            (409, Some("uniqueness"), ErrorKind::AlreadyExists, false),
            (429, None, ErrorKind::RateLimited, true),
            (501, None, ErrorKind::Unsupported, false),
            (503, None, ErrorKind::Unavailable, true),
        ];
        for (status, t, kind, retry) in table {
            let e = classify(*status, *t, Some("detail"));
            assert_eq!(e.kind(), *kind, "{status} {t:?}");
            assert_eq!(e.is_retryable(), *retry, "{status} {t:?}");
        }
    }
}
