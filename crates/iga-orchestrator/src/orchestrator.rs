//! The orchestrator: builder, intake, planning, execution, long retries, guardrails,
//! coexistence, receipts, reconciliation.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use iga_adapter::{
    AssignmentScope, DirectiveSource, Error as AdapterError, ErrorKind, FulfillmentReport, Outcome,
    ProvisioningAdapter, ProvisioningAdapterExt, RetryStatus, SourceCursor,
};
use iga_audit::{AuditEvent, EventKind, Severity};
use iga_directive::{
    AccessDirective, Action, AttemptRecord, FulfillmentJob, GrantSource, JobState, JobStateName,
    Operation, SharedClock, SystemClock, Timestamp,
};
use iga_ledger::{
    AssignmentKey, ChangeContext, ClaimedJob, CoexistenceMode, Confirmation, Decision,
    LedgerChange, LedgerStore, OutcomeCommit,
};
use iga_receipt::{
    ChainId, ChainReport, ChainState, KeyRing, ReceiptDraft, ReceiptSigner, VerifyingKey,
};
use iga_resolver::{Resolver, ResolverConfig};
use rand::SeedableRng;
use tokio::sync::Mutex;

use crate::exec::{self, ItemResult};
use crate::reconcile::{self, DriftReport};
use crate::report::{
    DryRunPlan, NoOpDirective, PassReport, PlannedOperation, StatusSummary, SubmitReport,
};
use crate::{OrchestratorError, Result, SystemSettings};

/// How many jobs one planning or execution step takes at once.
const STEP: usize = 5000;
/// How many pending jobs one planning step takes (smaller than STEP so execution can
/// start while the rest is planned).
const PLAN_STEP: usize = 5000;

struct System {
    adapter: Arc<dyn ProvisioningAdapter>,
    settings: SystemSettings,
}

/// Builds an [`Orchestrator`].
pub struct OrchestratorBuilder {
    store: Option<Arc<dyn LedgerStore>>,
    systems: BTreeMap<String, System>,
    signer: Option<ReceiptSigner>,
    old_keys: Vec<VerifyingKey>,
    sources: Vec<Arc<dyn DirectiveSource>>,
    clock: SharedClock,
    node: String,
    resolver: ResolverConfig,
    coexistence: Vec<(String, CoexistenceMode)>,
    external_poll: Duration,
    seed: u64,
    batch: iga_batch::BatchConfig,
}

impl fmt::Debug for OrchestratorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrchestratorBuilder")
            .field("systems", &self.systems.keys().collect::<Vec<_>>())
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Default for OrchestratorBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl OrchestratorBuilder {
    /// An empty builder: wall clock, node `node-1`.
    pub fn new() -> Self {
        Self {
            store: None,
            systems: BTreeMap::new(),
            signer: None,
            old_keys: Vec::new(),
            sources: Vec::new(),
            clock: SystemClock::shared(),
            node: "node-1".into(),
            resolver: ResolverConfig::default(),
            coexistence: Vec::new(),
            external_poll: Duration::from_secs(30),
            seed: 0x1ca,
            batch: iga_batch::BatchConfig::default(),
        }
    }

    /// The batch engine's configuration: in-pass retries (default 5 attempts within
    /// 60 s, honouring Retry-After), per-target concurrency, per-system rate limits.
    pub fn batch(mut self, config: iga_batch::BatchConfig) -> Self {
        self.batch = config;
        self
    }

    /// The durable store (required).
    pub fn store(mut self, store: Arc<dyn LedgerStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Register a target system with default settings.
    pub fn system(self, name: impl Into<String>, adapter: Arc<dyn ProvisioningAdapter>) -> Self {
        self.system_with(name, adapter, SystemSettings::new())
    }

    /// Register a target system with settings.
    pub fn system_with(
        mut self,
        name: impl Into<String>,
        adapter: Arc<dyn ProvisioningAdapter>,
        settings: SystemSettings,
    ) -> Self {
        self.systems
            .insert(name.into(), System { adapter, settings });
        self
    }

    /// The receipt signer (required).
    pub fn signer(mut self, signer: ReceiptSigner) -> Self {
        self.signer = Some(signer);
        self
    }

    /// A retired signing key whose receipts must still verify (key rotation).
    pub fn previous_key(mut self, key: VerifyingKey) -> Self {
        self.old_keys.push(key);
        self
    }

    /// A directive source to poll.
    pub fn source(mut self, s: Arc<dyn DirectiveSource>) -> Self {
        self.sources.push(s);
        self
    }

    /// The clock (default: wall clock).
    pub fn clock(mut self, c: SharedClock) -> Self {
        self.clock = c;
        self
    }

    /// This node's name: receipt chains are per (node, system); claimed jobs carry it.
    pub fn node(mut self, n: impl Into<String>) -> Self {
        self.node = n.into();
        self
    }

    /// Dependency configuration for the resolver.
    pub fn resolver(mut self, r: ResolverConfig) -> Self {
        self.resolver = r;
        self
    }

    /// Set a system's coexistence mode at build time.
    pub fn coexistence(mut self, system: impl Into<String>, mode: CoexistenceMode) -> Self {
        self.coexistence.push((system.into(), mode));
        self
    }

    /// How often a job waiting for an external completion is polled (default 30 s).
    pub fn external_poll(mut self, every: Duration) -> Self {
        self.external_poll = every;
        self
    }

    /// Seed of the retry-jitter RNG (reproducible schedules in tests).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Build: store coexistence modes, and re-queue jobs this node left in flight (crash
    /// recovery).
    pub async fn build(self) -> Result<Orchestrator> {
        let store = self
            .store
            .ok_or_else(|| OrchestratorError::Config("a store is required".into()))?;
        let signer = self
            .signer
            .ok_or_else(|| OrchestratorError::Config("a receipt signer is required".into()))?;
        let now = self.clock.now();
        for (system, mode) in &self.coexistence {
            if !self.systems.contains_key(system) {
                return Err(OrchestratorError::Config(format!(
                    "coexistence mode for unknown system `{system}`"
                )));
            }
            store.set_coexistence(system, *mode, now).await?;
        }
        let requeued = store.requeue_in_flight(Some(&self.node), now).await?;
        if requeued > 0 {
            tracing::warn!(requeued, node = %self.node, "re-queued jobs left in flight by a previous run");
        }
        let crash = Failpoints::from_env();
        let mut systems = self.systems;
        if let Some(("mid_batch", n)) = crash.point.as_ref().map(|(p, n)| (p.as_str(), *n)) {
            let calls = Arc::new(AtomicU64::new(0));
            for sys in systems.values_mut() {
                sys.adapter = exec::MidBatchCrash::wrap(sys.adapter.clone(), calls.clone(), n);
            }
        }
        let mut keys = KeyRing::new().with(signer.key().verifying_key().clone());
        for k in self.old_keys {
            keys = keys.with(k);
        }
        Ok(Orchestrator {
            inner: Arc::new(Inner {
                store,
                systems,
                signer,
                keys,
                sources: self.sources,
                clock: self.clock,
                node: self.node,
                resolver: Resolver::new(self.resolver),
                chains: Mutex::new(HashMap::new()),
                external_poll: self.external_poll,
                rng: std::sync::Mutex::new(rand::rngs::StdRng::seed_from_u64(self.seed)),
                batch: iga_batch::BatchEngine::new(self.batch),
                intake: std::sync::Mutex::new(HashMap::new()),
                crash,
                requeued,
            }),
        })
    }
}

struct Inner {
    store: Arc<dyn LedgerStore>,
    systems: BTreeMap<String, System>,
    signer: ReceiptSigner,
    keys: KeyRing,
    sources: Vec<Arc<dyn DirectiveSource>>,
    clock: SharedClock,
    node: String,
    resolver: Resolver,
    chains: Mutex<HashMap<String, ChainState>>,
    external_poll: Duration,
    rng: std::sync::Mutex<rand::rngs::StdRng>,
    batch: iga_batch::BatchEngine,
    crash: Failpoints,
    requeued: usize,
    /// Write-through cache of directives persisted by this process and not yet planned,
    /// so planning does not read back what it just wrote. Entries leave when planned;
    /// bounded by `INTAKE_CACHE_MAX` (misses fall back to the store).
    intake: std::sync::Mutex<HashMap<String, AccessDirective>>,
}

const INTAKE_CACHE_MAX: usize = 200_000;

/// Crash-test hooks: `IGA_CRASH_AT=<point>[:<nth>]` aborts the process the nth time the
/// named step boundary is reached. Points: `after_persist`, `mid_batch`,
/// `after_apply_before_commit`, `after_commit_before_ack`. Unset: no effect.
struct Failpoints {
    point: Option<(String, u64)>,
    hits: AtomicU64,
}

impl Failpoints {
    fn from_env() -> Self {
        let point = std::env::var("IGA_CRASH_AT")
            .ok()
            .map(|v| match v.split_once(':') {
                Some((p, n)) => (p.to_string(), n.parse().unwrap_or(1)),
                None => (v, 1),
            });
        Self {
            point,
            hits: AtomicU64::new(0),
        }
    }

    fn hit(&self, name: &str) {
        if let Some((p, n)) = &self.point
            && p == name
            && self.hits.fetch_add(1, Ordering::SeqCst) + 1 == *n
        {
            eprintln!("failpoint {name} reached: aborting");
            std::process::abort();
        }
    }
}

/// The fulfilment pipeline for embedding. Cheap to clone (shared state).
///
/// persist directive → ledger decides (reference count) → resolver orders → execute in
/// native batches → one unit of work commits job state, ledger confirmation, receipt
/// and audit outbox row. Every step is durable; a restart resumes in-flight work and
/// replays cause no second effective change (operations are idempotent by outcome).
#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

impl fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Orchestrator")
            .field("node", &self.inner.node)
            .field("systems", &self.inner.systems.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

enum Plan {
    Execute,
    Skip(String),
}

fn ctx(d: &AccessDirective, now: Timestamp) -> ChangeContext {
    ChangeContext::from_directive(d, now).actor("iga-orchestrator")
}

fn audit(
    kind: EventKind,
    d: &AccessDirective,
    now: Timestamp,
    msg: impl Into<String>,
) -> AuditEvent {
    let mut e = AuditEvent::for_directive(kind, d, now, msg).job(d.id.as_str());
    if let Some(a) = &d.approval {
        e = e.approval(a.key());
    }
    e
}

/// The commit that escalates a job: its state with the full attempt history, the last
/// attempt, and a `job_escalated` audit event.
fn escalation(
    d: &AccessDirective,
    reason: String,
    attempts: Vec<AttemptRecord>,
    last: AttemptRecord,
    now: Timestamp,
) -> OutcomeCommit {
    let event = audit(EventKind::JobEscalated, d, now, reason.clone())
        .severity(Severity::Error)
        .to_json();
    OutcomeCommit::new(d.id.as_str(), JobState::Escalated { reason, attempts }, now)
        .with_attempt(last)
        .with_audit(event)
}

fn summarize(e: &AdapterError) -> Option<String> {
    let ctx: Vec<String> = e
        .context()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if ctx.is_empty() {
        None
    } else {
        Some(ctx.join(" "))
    }
}

impl Orchestrator {
    /// Start building.
    pub fn builder() -> OrchestratorBuilder {
        OrchestratorBuilder::new()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn LedgerStore> {
        &self.inner.store
    }

    /// Registered system names.
    pub fn systems(&self) -> Vec<String> {
        self.inner.systems.keys().cloned().collect()
    }

    /// The adapter of a system (as registered).
    pub fn adapter(&self, system: &str) -> Option<Arc<dyn ProvisioningAdapter>> {
        self.inner.systems.get(system).map(|s| s.adapter.clone())
    }

    /// Jobs re-queued from a previous crashed run at build time.
    pub fn requeued_at_start(&self) -> usize {
        self.inner.requeued
    }

    /// The public keys receipts verify with, as a JWKS document.
    pub fn jwks_json(&self) -> String {
        self.inner.keys.to_jwks_json()
    }

    /// A delivery pump from this store's audit outbox to `sinks` (CEF, LEEF, RFC 5424,
    /// JSON lines over file/UDP/TCP). Run it beside the orchestrator (`pump.run(..)`); a
    /// slow or absent SIEM never blocks provisioning, and nothing is lost meanwhile.
    pub fn audit_pump(
        &self,
        sinks: Vec<iga_audit::SinkBinding>,
        config: iga_audit::PumpConfig,
    ) -> iga_audit::DeliveryPump {
        let outbox = crate::StoreOutbox::new(
            self.inner.store.clone(),
            self.inner.clock.clone(),
            format!("{}-audit", self.inner.node),
            Duration::from_secs(60),
        );
        iga_audit::DeliveryPump::new(Arc::new(outbox), sinks, config)
    }

    /// The key ring receipts verify with.
    pub fn keys(&self) -> &KeyRing {
        &self.inner.keys
    }

    /// Now, at the store's precision (microseconds), so receipts read back from the
    /// store are byte-identical to what was signed.
    pub(crate) fn now(&self) -> Timestamp {
        let t = self.inner.clock.now();
        chrono::DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
    }

    pub(crate) fn validate(&self, ds: &[AccessDirective]) -> Result<()> {
        for (index, d) in ds.iter().enumerate() {
            if let Err(e) = d.validate() {
                return Err(OrchestratorError::InvalidDirective {
                    index,
                    id: d.id.to_string(),
                    reason: e.to_string(),
                });
            }
            if !self.inner.systems.contains_key(&d.system) {
                return Err(OrchestratorError::UnknownSystem {
                    index,
                    id: d.id.to_string(),
                    system: d.system.clone(),
                    known: self.systems().join(", "),
                });
            }
        }
        Ok(())
    }

    /// Validate and persist directives (all or nothing): each gets a `Pending` job.
    /// A directive already known (same id) is ignored, so re-submitting is safe.
    pub async fn submit(&self, ds: Vec<AccessDirective>) -> Result<SubmitReport> {
        self.validate(&ds)?;
        let r = self.inner.store.persist_directives(&ds, self.now()).await?;
        self.remember(&ds);
        self.inner.crash.hit("after_persist");
        Ok(SubmitReport {
            accepted: r.inserted,
            duplicates: r.duplicates,
        })
    }

    /// Poll every source once; directives and cursor are persisted in one transaction.
    pub async fn poll_sources(&self) -> Result<usize> {
        let mut n = 0;
        for s in &self.inner.sources {
            loop {
                let cursor = self.inner.store.cursor(s.name()).await?.map(SourceCursor);
                let batch = match s.poll(cursor.as_ref()).await {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(source = s.name(), error = %e, "source poll failed");
                        break;
                    }
                };
                for r in &batch.rejected {
                    tracing::warn!(source = s.name(), location = %r.location, reason = %r.reason, "source input rejected");
                }
                let mut good = Vec::new();
                for d in batch.directives {
                    match self.validate(std::slice::from_ref(&d)) {
                        Ok(()) => good.push(d),
                        Err(e) => {
                            tracing::warn!(source = s.name(), error = %e, "directive from source rejected")
                        }
                    }
                }
                let now = self.now();
                let r = match &batch.cursor {
                    Some(c) => {
                        self.inner
                            .store
                            .persist_directives_with_cursor(&good, s.name(), &c.0, now)
                            .await?
                    }
                    None => self.inner.store.persist_directives(&good, now).await?,
                };
                n += r.inserted;
                if !batch.more {
                    break;
                }
            }
        }
        if n > 0 {
            self.inner.crash.hit("after_persist");
        }
        Ok(n)
    }

    /// Run passes until nothing more can happen now (future retries stay scheduled).
    pub async fn run_until_idle(&self) -> Result<PassReport> {
        let mut total = PassReport::default();
        loop {
            let r = self.pass().await?;
            total.add(&r);
            if !r.progressed() {
                return Ok(total);
            }
        }
    }

    /// Long-running loop: poll sources, run until idle, sleep `idle`, until `shutdown`
    /// turns true. In-flight work of the current pass completes before returning.
    pub async fn run(
        &self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
        idle: Duration,
    ) -> Result<()> {
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            if let Err(e) = self.run_until_idle().await {
                tracing::error!(error = %e, "orchestrator pass failed; retrying after the idle interval");
            }
            tokio::select! {
                _ = tokio::time::sleep(idle) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One pass: intake from sources, planning of pending jobs, completion polling of
    /// external work, execution of due jobs.
    pub async fn pass(&self) -> Result<PassReport> {
        let mut r = PassReport {
            intake: self.poll_sources().await?,
            ..Default::default()
        };
        // Planning and execution overlap: jobs planned in one step are claimed and
        // executed while the next step is planned (the store serializes the writes;
        // JSON, signing and the batch engine run meanwhile).
        let planning_done = std::sync::atomic::AtomicBool::new(false);
        let mut planned = PassReport::default();
        let mut executed = PassReport::default();
        let plan = async {
            let res = self.plan_pending(&mut planned).await;
            planning_done.store(true, Ordering::SeqCst);
            res
        };
        let exec = async {
            loop {
                let done_before = planning_done.load(Ordering::SeqCst);
                let claimed = self
                    .inner
                    .store
                    .claim_due(STEP, self.now(), &self.inner.node)
                    .await?;
                if claimed.is_empty() {
                    if done_before {
                        return Ok::<(), OrchestratorError>(());
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                self.execute(claimed, &mut executed).await?;
            }
        };
        let (p, e) = tokio::join!(plan, exec);
        p?;
        e?;
        r.add(&planned);
        r.add(&executed);
        self.poll_external(&mut r).await?;
        loop {
            let claimed = self
                .inner
                .store
                .claim_due(STEP, self.now(), &self.inner.node)
                .await?;
            if claimed.is_empty() {
                break;
            }
            self.execute(claimed, &mut r).await?;
        }
        Ok(r)
    }

    pub(crate) fn remember(&self, ds: &[AccessDirective]) {
        let mut cache = self.inner.intake.lock().expect("intake cache");
        for d in ds {
            if cache.len() >= INTAKE_CACHE_MAX {
                break;
            }
            cache.entry(d.id.0.clone()).or_insert_with(|| d.clone());
        }
    }

    /// Directives of jobs, from the intake cache (taking them out) or the store.
    async fn directives_of(&self, jobs: &[FulfillmentJob]) -> Result<Vec<AccessDirective>> {
        let mut out: Vec<Option<AccessDirective>> = {
            let mut cache = self.inner.intake.lock().expect("intake cache");
            jobs.iter().map(|j| cache.remove(&j.id)).collect()
        };
        for (slot, j) in out.iter_mut().zip(jobs) {
            if slot.is_none() {
                let d = self.inner.store.directive(&j.id).await?.ok_or_else(|| {
                    OrchestratorError::Job {
                        job: j.id.clone(),
                        reason: "directive missing from the store".into(),
                    }
                })?;
                *slot = Some(d);
            }
        }
        Ok(out.into_iter().map(|d| d.expect("filled")).collect())
    }

    /// Which directives a guardrail stages: removals per (tenant, system) counted against
    /// that system's thresholds (count, and fraction of its current assignments).
    async fn guardrail_staging(&self, ds: &[AccessDirective]) -> Result<HashMap<usize, String>> {
        let mut removals: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
        for (i, d) in ds.iter().enumerate() {
            if d.action.operation_kind().removes_access() {
                removals.entry((&d.tenant, &d.system)).or_default().push(i);
            }
        }
        let mut staged = HashMap::new();
        for ((tenant, system), idx) in removals {
            let guard = self
                .inner
                .systems
                .get(system)
                .map(|s| s.settings.guardrail)
                .unwrap_or_default();
            if guard.max_removals.is_none() && guard.max_fraction.is_none() {
                continue;
            }
            let population = self
                .inner
                .store
                .system_assignments(tenant, system, false)
                .await?
                .len();
            if let Some(reason) = guard.trips(idx.len(), population) {
                for i in idx {
                    staged.insert(i, reason.clone());
                }
            }
        }
        Ok(staged)
    }

    /// Ledger decisions for grant/revoke directives, in order, in one transaction.
    async fn decide(
        &self,
        ds: &[&AccessDirective],
        now: Timestamp,
    ) -> Result<Vec<Option<Decision>>> {
        let mut changes = Vec::new();
        let mut idx = Vec::new();
        for (i, d) in ds.iter().enumerate() {
            if let Some(key) = AssignmentKey::from_directive(d) {
                let c = match d.action {
                    Action::Revoke => LedgerChange::revoke(key, d.source.clone(), ctx(d, now)),
                    _ => LedgerChange::grant(key, d.source.clone(), ctx(d, now)),
                };
                changes.push(c);
                idx.push(i);
            }
        }
        let decisions = if changes.is_empty() {
            Vec::new()
        } else {
            self.inner.store.apply_changes(&changes).await?
        };
        let mut out = vec![None; ds.len()];
        for (i, dec) in idx.into_iter().zip(decisions) {
            out[i] = Some(dec);
        }
        Ok(out)
    }

    /// Level-triggered: execute when intent and confirmed target state disagree, so a
    /// re-plan after a crash decides the same way.
    async fn mode_of(
        &self,
        modes: &mut HashMap<String, CoexistenceMode>,
        system: &str,
    ) -> Result<CoexistenceMode> {
        if let Some(m) = modes.get(system) {
            return Ok(*m);
        }
        let m = self.inner.store.coexistence(system).await?;
        modes.insert(system.to_string(), m);
        Ok(m)
    }

    async fn plan_of(
        &self,
        d: &AccessDirective,
        dec: Option<Decision>,
        now: Timestamp,
        modes: &mut HashMap<String, CoexistenceMode>,
    ) -> Result<Plan> {
        let mode = self.mode_of(modes, &d.system).await?;
        let Some(dec) = dec else {
            return Ok(match mode {
                CoexistenceMode::ShadowCompare => Plan::Skip(format!(
                    "{}: computed, not executed (the legacy provisioner executes)",
                    mode.as_str()
                )),
                _ => Plan::Execute,
            });
        };
        let grant = d.action != Action::Revoke;
        let need = if grant {
            dec.intended_sources > 0 && dec.confirmed_sources == 0
        } else {
            dec.intended_sources == 0 && dec.confirmed_sources > 0
        };
        if !need {
            if !grant && dec.intended_sources > 0 {
                // Drop the revoked source's provisional count: the target keeps the
                // access for the remaining sources.
                if let Some(key) = AssignmentKey::from_directive(d) {
                    self.inner
                        .store
                        .confirm(&Confirmation::grant(key, d.source.clone(), ctx(d, now)))
                        .await?;
                }
            }
            let reason = if grant {
                if dec.confirmed_sources > 0 {
                    format!(
                        "no target change: access already provisioned ({} source(s) now intend it)",
                        dec.intended_sources
                    )
                } else {
                    "no target change: source no longer intends this access".to_string()
                }
            } else if dec.intended_sources > 0 {
                format!(
                    "no target change: {} other source(s) still grant this access",
                    dec.intended_sources
                )
            } else {
                "no target change: access was never provisioned".to_string()
            };
            return Ok(Plan::Skip(reason));
        }
        if mode == CoexistenceMode::ShadowCompare {
            return Ok(Plan::Skip(format!(
                "{}: computed, not executed (the legacy provisioner executes)",
                mode.as_str()
            )));
        }
        Ok(Plan::Execute)
    }

    async fn plan_pending(&self, r: &mut PassReport) -> Result<()> {
        loop {
            let now = self.now();
            let jobs = self.inner.store.due_pending(now, PLAN_STEP).await?;
            if jobs.is_empty() {
                return Ok(());
            }
            let ds = self.directives_of(&jobs).await?;
            // Guardrail: removals per (tenant, system) in this step.
            let mut staged = self.guardrail_staging(&ds).await?;
            let unstaged: Vec<&AccessDirective> = ds
                .iter()
                .enumerate()
                .filter(|(i, _)| !staged.contains_key(i))
                .map(|(_, d)| d)
                .collect();
            let decisions = self.decide(&unstaged, now).await?;
            let mut commits = Vec::with_capacity(ds.len());
            let mut modes = HashMap::new();
            let mut k = 0;
            for (i, d) in ds.iter().enumerate() {
                if let Some(reason) = staged.remove(&i) {
                    r.staged += 1;
                    commits.push(
                        OutcomeCommit::new(
                            d.id.as_str(),
                            JobState::Staged {
                                reason: reason.clone(),
                            },
                            now,
                        )
                        .with_audit(
                            audit(EventKind::DirectiveStaged, d, now, reason)
                                .severity(Severity::Warning)
                                .to_json(),
                        ),
                    );
                    continue;
                }
                let dec = decisions[k];
                k += 1;
                match self.plan_of(d, dec, now, &mut modes).await? {
                    Plan::Execute => {
                        r.planned += 1;
                        commits.push(
                            OutcomeCommit::new(d.id.as_str(), JobState::Planned, now).with_audit(
                                audit(EventKind::DirectivePlanned, d, now, "planned").to_json(),
                            ),
                        );
                    }
                    Plan::Skip(reason) => {
                        r.skipped += 1;
                        let mut c = OutcomeCommit::new(
                            d.id.as_str(),
                            JobState::Skipped {
                                reason: reason.clone(),
                            },
                            now,
                        );
                        if dec.is_some() {
                            c = c.with_audit(
                                audit(EventKind::LedgerChanged, d, now, reason.clone())
                                    .detail("source", d.source.key())
                                    .to_json(),
                            );
                        }
                        commits.push(c);
                    }
                }
            }
            for res in self.inner.store.commit_outcomes(&commits).await? {
                res?;
            }
        }
    }

    /// Release staged jobs: their ledger change is applied now and they are planned
    /// (or skipped when the reference count says no target change).
    pub async fn release(&self, job_ids: &[String]) -> Result<usize> {
        let now = self.now();
        let mut n = 0;
        for id in job_ids {
            let job = self.staged_job(id).await?;
            let d = self
                .directives_of(std::slice::from_ref(&job))
                .await?
                .remove(0);
            let dec = self.decide(&[&d], now).await?.remove(0);
            let plan = self.plan_of(&d, dec, now, &mut HashMap::new()).await?;
            let released = audit(
                EventKind::DirectiveReleased,
                &d,
                now,
                "released after review",
            )
            .to_json();
            let mut commits =
                vec![OutcomeCommit::new(id.clone(), JobState::Planned, now).with_audit(released)];
            if let Plan::Skip(reason) = plan {
                commits.push(OutcomeCommit::new(
                    id.clone(),
                    JobState::Skipped { reason },
                    now,
                ));
            }
            for res in self.inner.store.commit_outcomes(&commits).await? {
                res?;
            }
            n += 1;
        }
        Ok(n)
    }

    /// Cancel staged jobs (nothing was applied to the ledger or the target).
    pub async fn cancel(&self, job_ids: &[String], reason: &str) -> Result<usize> {
        let now = self.now();
        for id in job_ids {
            self.staged_job(id).await?;
            self.inner
                .store
                .transition_job(
                    id,
                    JobState::Cancelled {
                        reason: reason.to_string(),
                    },
                    None,
                    now,
                )
                .await?;
        }
        Ok(job_ids.len())
    }

    async fn staged_job(&self, id: &str) -> Result<FulfillmentJob> {
        let job = self
            .inner
            .store
            .job(id)
            .await?
            .ok_or_else(|| OrchestratorError::Job {
                job: id.to_string(),
                reason: "no such job".into(),
            })?;
        if job.state.name() != JobStateName::Staged {
            return Err(OrchestratorError::Job {
                job: id.to_string(),
                reason: format!("is {}, not staged", job.state.name()),
            });
        }
        Ok(job)
    }

    fn retry_delay(&self, system: &str, retry: u32, after: Option<Duration>) -> Duration {
        let policy = &self.inner.systems[system].settings.retry;
        let mut rng = self.inner.rng.lock().expect("rng lock");
        policy.delay(retry, after, &mut *rng)
    }

    async fn execute(&self, claimed: Vec<ClaimedJob>, r: &mut PassReport) -> Result<()> {
        let now = self.now();
        // A directive persisted under a configuration that had its system, run by one
        // that does not: escalate, never guess.
        let (claimed, orphans): (Vec<ClaimedJob>, Vec<ClaimedJob>) = claimed
            .into_iter()
            .partition(|c| self.inner.systems.contains_key(&c.directive.system));
        if !orphans.is_empty() {
            let mut commits = Vec::new();
            let mut reports = Vec::new();
            for c in &orphans {
                let d = &c.directive;
                let reason = format!(
                    "permanent failure: system `{}` is not registered with this orchestrator",
                    d.system
                );
                let mut attempts = c.job.attempts.clone();
                let record = AttemptRecord::new(
                    attempts.len() as u32 + 1,
                    now,
                    ErrorKind::ConfigInvalid.as_str(),
                    reason.clone(),
                    None,
                );
                attempts.push(record.clone());
                commits.push(escalation(d, reason.clone(), attempts, record, now));
                reports.push(FulfillmentReport::NeedsAttention {
                    directive_id: d.id.clone(),
                    approval: d.approval.clone(),
                    message: reason,
                });
            }
            r.executed += commits.len();
            r.escalated += commits.len();
            for res in self.inner.store.commit_outcomes(&commits).await? {
                res?;
            }
            self.report_to_sources(&reports).await;
        }
        if claimed.is_empty() {
            return Ok(());
        }
        // Expand; legacy-proxy systems are not executed by us.
        let mut ops: Vec<Operation> = Vec::new();
        let mut owner: Vec<usize> = Vec::new();
        let mut modes: HashMap<String, CoexistenceMode> = HashMap::new();
        for (j, c) in claimed.iter().enumerate() {
            let settings = &self.inner.systems[&c.directive.system].settings;
            for op in c.directive.operations(settings.expand) {
                ops.push(op);
                owner.push(j);
            }
            if !modes.contains_key(&c.directive.system) {
                let m = self.inner.store.coexistence(&c.directive.system).await?;
                modes.insert(c.directive.system.clone(), m);
            }
        }
        r.operations += ops.len();
        let mut results: Vec<Option<ItemResult>> = vec![None; ops.len()];
        // Legacy-proxy systems: handed to the legacy provisioner, not executed by us.
        let mut native: Vec<usize> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            if modes.get(&op.system) == Some(&CoexistenceMode::LegacyProxy) {
                results[i] = Some(ItemResult {
                    result: Ok(Outcome::Pending {
                        external_ref: format!("legacy:{}", op.system),
                    }),
                    errors: vec![],
                    attempts: 0,
                });
            } else {
                native.push(i);
            }
        }
        let native_ops: Vec<Operation> = native.iter().map(|&i| ops[i].clone()).collect();
        match self.inner.resolver.plan(native_ops) {
            Err(e) => {
                for &i in &native {
                    results[i] = Some(ItemResult::failed(AdapterError::new(
                        ErrorKind::InvalidInput,
                        e.to_string(),
                    )));
                }
            }
            Ok(plan) => {
                let mut targets = iga_batch::Targets::new();
                for &i in &native {
                    let op = &ops[i];
                    if targets.get(&op.tenant, &op.system).is_none() {
                        targets.insert(
                            &op.tenant,
                            &op.system,
                            self.inner.systems[&op.system].adapter.clone(),
                        );
                    }
                }
                let by_id: HashMap<&str, String> = ops
                    .iter()
                    .map(|o| (o.id.0.as_str(), o.describe()))
                    .collect();
                let report = self.inner.batch.run_plan(&targets, &plan).await;
                for item in report.items {
                    let i = native[item.index];
                    results[i] = Some(ItemResult::from_report(item, |id| {
                        by_id.get(id).cloned().unwrap_or_else(|| id.to_string())
                    }));
                }
            }
        }
        self.inner.crash.hit("after_apply_before_commit");

        // One commit per job, all in one transaction; receipts chained per system.
        let mut per_job: Vec<Vec<usize>> = vec![Vec::new(); claimed.len()];
        for (i, &j) in owner.iter().enumerate() {
            per_job[j].push(i);
        }
        let mut chains = self.inner.chains.lock().await;
        // Receipts are chained now (payload hashes, in order) and signed together
        // below, in parallel, before the commit.
        let mut unsigned: Vec<iga_receipt::UnsignedReceipt> = Vec::new();
        let mut commits = Vec::with_capacity(claimed.len());
        let mut reports = Vec::new();
        let mut systems_touched = Vec::new();
        for (j, c) in claimed.iter().enumerate() {
            let d = &c.directive;
            let items: Vec<(&Operation, &ItemResult)> = per_job[j]
                .iter()
                .map(|&i| (&ops[i], results[i].as_ref().expect("result")))
                .collect();
            let first_err = items.iter().find_map(|(_, ir)| ir.result.as_ref().err());
            let pending = items.iter().find_map(|(_, ir)| match &ir.result {
                Ok(Outcome::Pending { external_ref }) => Some(external_ref.clone()),
                _ => None,
            });
            let attempts_so_far = c.job.attempts.len() as u32;
            let commit = match (first_err, pending) {
                (None, None) => {
                    r.succeeded += 1;
                    let mut commit = OutcomeCommit::new(d.id.as_str(), JobState::Succeeded, now);
                    let mut receipt_ids = Vec::new();
                    for (op, ir) in &items {
                        let outcome = match ir.result.as_ref().expect("success") {
                            Outcome::Applied { .. } => iga_receipt::Outcome::Applied,
                            _ => iga_receipt::Outcome::AlreadyInState,
                        };
                        let rec = self
                            .receipt(
                                &mut chains,
                                &mut unsigned,
                                d,
                                op,
                                outcome,
                                ir,
                                attempts_so_far,
                                now,
                            )
                            .await?;
                        receipt_ids.push(rec.receipt_id.clone());
                        commit = commit
                            .with_audit(
                                audit(EventKind::OperationExecuted, d, now, op.describe())
                                    .operation(op.id.0.clone())
                                    .outcome(
                                        ir.result.as_ref().map(|o| o.name()).unwrap_or("error"),
                                    )
                                    .to_json(),
                            )
                            .with_audit(
                                audit(EventKind::ReceiptWritten, d, now, op.describe())
                                    .operation(op.id.0.clone())
                                    .receipt(rec.receipt_id.clone())
                                    .to_json(),
                            )
                            .with_receipt(rec);
                        r.receipts += 1;
                    }
                    if let Some(key) = AssignmentKey::from_directive(d) {
                        let conf = match d.action {
                            Action::Revoke => {
                                Confirmation::revoke(key, d.source.clone(), ctx(d, now))
                            }
                            _ => Confirmation::grant(key, d.source.clone(), ctx(d, now)),
                        };
                        commit = commit.with_confirm(conf).with_audit(
                            audit(EventKind::LedgerChanged, d, now, "confirmed on target")
                                .detail("source", d.source.key())
                                .to_json(),
                        );
                    }
                    reports.push(FulfillmentReport::Fulfilled {
                        directive_id: d.id.clone(),
                        approval: d.approval.clone(),
                        receipt_ids,
                    });
                    commit
                }
                (None, Some(external_ref)) => {
                    r.awaiting += 1;
                    OutcomeCommit::new(
                        d.id.as_str(),
                        JobState::AwaitingExternal {
                            external_ref: external_ref.clone(),
                        },
                        now,
                    )
                    .with_audit(
                        audit(
                            EventKind::OperationExecuted,
                            d,
                            now,
                            format!("awaiting {external_ref}"),
                        )
                        .to_json(),
                    )
                }
                (Some(err), _) => {
                    let attempt = attempts_so_far + 1;
                    let seen: Vec<&str> = items
                        .iter()
                        .flat_map(|(_, ir)| ir.errors.iter().map(|e| e.kind().as_str()))
                        .collect();
                    let summary = match (summarize(err), seen.len()) {
                        (s, 0 | 1) => s,
                        (s, _) => Some(format!(
                            "{}in-pass errors: {}",
                            s.map(|s| format!("{s}; ")).unwrap_or_default(),
                            seen.join(", ")
                        )),
                    };
                    let record = AttemptRecord::new(
                        attempt,
                        now,
                        err.kind().as_str(),
                        err.message().to_string(),
                        summary,
                    );
                    let temporary = matches!(
                        err.retry(),
                        RetryStatus::Temporary { .. } | RetryStatus::Exhausted { .. }
                    );
                    let retries = self.inner.systems[&d.system].settings.retry.max_retries;
                    if temporary && attempt <= retries {
                        r.retrying += 1;
                        let delay = self.retry_delay(&d.system, attempt, err.retry_after());
                        let next_at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                        OutcomeCommit::new(
                            d.id.as_str(),
                            JobState::Retrying { attempt, next_at },
                            now,
                        )
                        .with_attempt(record)
                        .with_audit(
                            audit(EventKind::AttemptFailed, d, now, err.to_string())
                                .severity(Severity::Warning)
                                .detail("next_at", next_at.to_rfc3339())
                                .to_json(),
                        )
                    } else {
                        r.escalated += 1;
                        let reason = if temporary {
                            format!(
                                "retries exhausted after {attempt} attempts: {}",
                                err.summary()
                            )
                        } else {
                            format!("permanent failure: {}", err.summary())
                        };
                        let mut attempts = c.job.attempts.clone();
                        attempts.push(record.clone());
                        let mut commit = escalation(d, reason.clone(), attempts, record, now);
                        for (op, ir) in &items {
                            let outcome = match &ir.result {
                                Ok(Outcome::Applied { .. }) => iga_receipt::Outcome::Applied,
                                Ok(_) => iga_receipt::Outcome::AlreadyInState,
                                Err(e) => {
                                    iga_receipt::Outcome::escalated(e.kind().as_str(), e.message())
                                }
                            };
                            let rec = self
                                .receipt(
                                    &mut chains,
                                    &mut unsigned,
                                    d,
                                    op,
                                    outcome,
                                    ir,
                                    attempts_so_far,
                                    now,
                                )
                                .await?;
                            commit = commit.with_receipt(rec);
                            r.receipts += 1;
                        }
                        reports.push(FulfillmentReport::NeedsAttention {
                            directive_id: d.id.clone(),
                            approval: d.approval.clone(),
                            message: reason,
                        });
                        commit
                    }
                }
            };
            if !systems_touched.contains(&d.system) {
                systems_touched.push(d.system.clone());
            }
            commits.push(commit);
        }
        r.executed += commits.len();
        if let Err(e) = self.sign_receipts(unsigned, &mut commits) {
            for s in &systems_touched {
                chains.remove(s);
            }
            return Err(e);
        }
        let results = match self.inner.store.commit_outcomes(&commits).await {
            Ok(rs) => rs,
            Err(e) => {
                for s in &systems_touched {
                    chains.remove(s);
                }
                return Err(e.into());
            }
        };
        let mut failed = None;
        let mut follow_ups = Vec::new();
        for (res, c) in results.into_iter().zip(&claimed) {
            match res {
                Ok(cr) => {
                    if let Some(co) = cr.confirm
                        && (co.revoke_needed || co.regrant_needed)
                    {
                        follow_ups.push(self.follow_up(&c.directive, co.revoke_needed, now));
                    }
                }
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            for s in &systems_touched {
                chains.remove(s);
            }
            drop(chains);
            self.inner
                .store
                .requeue_in_flight(Some(&self.inner.node), now)
                .await?;
            return Err(e.into());
        }
        drop(chains);
        self.inner.crash.hit("after_commit_before_ack");
        if !follow_ups.is_empty() {
            self.inner
                .store
                .persist_directives(&follow_ups, now)
                .await?;
        }
        self.report_to_sources(&reports).await;
        Ok(())
    }

    /// A directive that re-applies the ledger's intent after a race (a revoke landed
    /// while the grant was in flight, or the reverse).
    fn follow_up(&self, d: &AccessDirective, revoke: bool, now: Timestamp) -> AccessDirective {
        let (action, tag) = if revoke {
            (Action::Revoke, "revoke")
        } else {
            (Action::Grant, "regrant")
        };
        let mut b = AccessDirective::builder(&d.tenant, &d.system, d.identity.clone(), action)
            .source(d.source.clone())
            .id(format!("{}~{tag}", d.id))
            .requested_at(now);
        if let Some(e) = &d.entitlement {
            b = b.entitlement(e.clone());
        }
        if let Some(a) = &d.approval {
            b = b.approval(a.clone());
        }
        b.build().expect("derived from a valid directive")
    }

    async fn report_to_sources(&self, reports: &[FulfillmentReport]) {
        if self.inner.sources.is_empty() {
            return;
        }
        for rep in reports {
            let approval = match rep {
                FulfillmentReport::Fulfilled { approval, .. }
                | FulfillmentReport::NeedsAttention { approval, .. } => approval,
                _ => &None,
            };
            let Some(a) = approval else { continue };
            for s in &self.inner.sources {
                if (s.name() == a.system || self.inner.sources.len() == 1)
                    && let Err(e) = s.report(rep).await
                {
                    tracing::warn!(source = s.name(), error = %e, "write-back to source failed");
                }
            }
        }
    }

    /// Sign the receipts chained during this commit (in parallel for large batches)
    /// and put each JWS into its commit's receipt row.
    fn sign_receipts(
        &self,
        unsigned: Vec<iga_receipt::UnsignedReceipt>,
        commits: &mut [OutcomeCommit],
    ) -> Result<()> {
        if unsigned.is_empty() {
            return Ok(());
        }
        let mut jws: HashMap<String, String> = iga_receipt::sign_all(&self.inner.signer, unsigned)?
            .into_iter()
            .map(|sr| {
                let rec = sr.into_record();
                (rec.receipt_id, rec.jws)
            })
            .collect();
        for rec in commits.iter_mut().flat_map(|c| c.receipts.iter_mut()) {
            if rec.jws.is_empty()
                && let Some(j) = jws.remove(&rec.receipt_id)
            {
                rec.jws = j;
            }
        }
        debug_assert!(jws.is_empty(), "every signed receipt belongs to a commit");
        Ok(())
    }

    /// Chain the receipt of one operation; its signature is added by
    /// [`Orchestrator::sign_receipts`] before the commit.
    #[allow(clippy::too_many_arguments)]
    async fn receipt(
        &self,
        chains: &mut HashMap<String, ChainState>,
        unsigned: &mut Vec<iga_receipt::UnsignedReceipt>,
        d: &AccessDirective,
        op: &Operation,
        outcome: iga_receipt::Outcome,
        ir: &ItemResult,
        previous_attempts: u32,
        now: Timestamp,
    ) -> Result<iga_ledger::ReceiptRecord> {
        if !chains.contains_key(&d.system) {
            let id = ChainId::new(&self.inner.node, &d.system)?;
            let state = match self.inner.store.chain_head(id.as_str()).await? {
                Some(h) => ChainState::resume(id, h.seq, h.payload_sha256),
                None => ChainState::genesis(id),
            };
            chains.insert(d.system.clone(), state);
        }
        let chain = chains.get_mut(&d.system).expect("inserted");
        let mut draft = ReceiptDraft::for_operation(op, outcome, now)?
            .attempts(previous_attempts + ir.attempts.max(1))
            .source(d.source.key());
        if let Some(a) = &d.approval {
            draft = draft.approval(a.clone());
        }
        if let Some(n) = ir.result.as_ref().ok().and_then(|o| o.native_id()) {
            draft = draft.native_id(n);
        }
        let u = chain.append_unsigned(draft, now)?;
        let rec = u.receipt();
        let out = iga_ledger::ReceiptRecord {
            prev_sha256: if rec.seq == 1 {
                None
            } else {
                Some(rec.prev_sha256.clone())
            },
            receipt_id: rec.receipt_id.clone(),
            chain_id: rec.chain_id.clone(),
            seq: rec.seq,
            directive_id: rec.directive_id.0.clone(),
            operation_id: rec.operation_id.0.clone(),
            jws: String::new(),
            payload_sha256: u.payload_sha256().to_string(),
            created_at: rec.issued_at,
        };
        unsigned.push(u);
        Ok(out)
    }

    /// Poll jobs waiting for an external completion (tickets, manual tasks, async APIs,
    /// legacy provisioners): re-applying an operation is idempotent, so it answers
    /// `Pending` while open and applied/already-in-state once done — the job then
    /// succeeds with one receipt per operation, the ledger confirmation and a
    /// `Fulfilled` report. A **permanent** error (a rejected task or ticket, a failure
    /// reported by a callback) escalates the job with the reason, receipts, an audit
    /// event and a `NeedsAttention` report; a temporary error keeps it waiting.
    /// Legacy-proxy jobs complete when the target shows the change.
    async fn poll_external(&self, r: &mut PassReport) -> Result<()> {
        let now = self.now();
        let jobs = self
            .inner
            .store
            .jobs_by_state(JobStateName::AwaitingExternal, STEP)
            .await?;
        let due: Vec<FulfillmentJob> = jobs
            .into_iter()
            .filter(|j| {
                now - j.updated_at
                    >= chrono::Duration::from_std(self.inner.external_poll).unwrap_or_default()
            })
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let ds = self.directives_of(&due).await?;
        for (job, d) in due.iter().zip(&ds) {
            let legacy = matches!(&job.state, JobState::AwaitingExternal { external_ref } if external_ref.starts_with("legacy:"));
            let Some(sys) = self.inner.systems.get(&d.system) else {
                continue;
            };
            if legacy {
                if !self.target_shows(d).await? {
                    continue;
                }
                r.completed_external += 1;
                let mut commit = OutcomeCommit::new(d.id.as_str(), JobState::Succeeded, now)
                    .with_audit(
                        audit(
                            EventKind::OperationExecuted,
                            d,
                            now,
                            "external completion observed",
                        )
                        .to_json(),
                    );
                if let Some(key) = AssignmentKey::from_directive(d) {
                    let conf = match d.action {
                        Action::Revoke => Confirmation::revoke(key, d.source.clone(), ctx(d, now)),
                        _ => Confirmation::grant(key, d.source.clone(), ctx(d, now)),
                    };
                    commit = commit.with_confirm(conf);
                }
                self.inner.store.commit_outcome(&commit).await?;
                continue;
            }
            let ops = d.operations(sys.settings.expand);
            let targets = iga_batch::Targets::new().with(&d.tenant, &d.system, sys.adapter.clone());
            let report = self.inner.batch.run(&targets, ops.clone()).await;
            let items: Vec<(&Operation, ItemResult)> = ops
                .iter()
                .zip(report.items)
                .map(|(op, it)| (op, ItemResult::from_report(it, |id| id.to_string())))
                .collect();
            let permanent = items.iter().find_map(|(_, ir)| {
                ir.result
                    .as_ref()
                    .err()
                    .filter(|e| matches!(e.retry(), RetryStatus::Permanent))
            });
            let done = items
                .iter()
                .all(|(_, ir)| matches!(&ir.result, Ok(o) if o.is_done()));
            if permanent.is_none() && !done {
                continue;
            }
            let attempts_so_far = job.attempts.len() as u32;
            let mut chains = self.inner.chains.lock().await;
            let mut unsigned = Vec::new();
            let (mut commit, report) = if let Some(err) = permanent {
                r.escalated += 1;
                let reason = format!("permanent failure: {}", err.summary());
                let record = AttemptRecord::new(
                    attempts_so_far + 1,
                    now,
                    err.kind().as_str(),
                    err.message().to_string(),
                    summarize(err),
                );
                let mut attempts = job.attempts.clone();
                attempts.push(record.clone());
                let mut commit = escalation(d, reason.clone(), attempts, record, now);
                for (op, ir) in &items {
                    let outcome = match &ir.result {
                        Ok(Outcome::Applied { .. }) => iga_receipt::Outcome::Applied,
                        Ok(Outcome::Pending { .. }) => continue,
                        Ok(_) => iga_receipt::Outcome::AlreadyInState,
                        Err(e) => iga_receipt::Outcome::escalated(e.kind().as_str(), e.message()),
                    };
                    let rec = self
                        .receipt(
                            &mut chains,
                            &mut unsigned,
                            d,
                            op,
                            outcome,
                            ir,
                            attempts_so_far,
                            now,
                        )
                        .await?;
                    commit = commit.with_receipt(rec);
                    r.receipts += 1;
                }
                let rep = FulfillmentReport::NeedsAttention {
                    directive_id: d.id.clone(),
                    approval: d.approval.clone(),
                    message: reason,
                };
                (commit, rep)
            } else {
                r.completed_external += 1;
                let mut commit = OutcomeCommit::new(d.id.as_str(), JobState::Succeeded, now);
                let mut receipt_ids = Vec::new();
                for (op, ir) in &items {
                    let outcome = match &ir.result {
                        Ok(Outcome::Applied { .. }) => iga_receipt::Outcome::Applied,
                        _ => iga_receipt::Outcome::AlreadyInState,
                    };
                    let rec = self
                        .receipt(
                            &mut chains,
                            &mut unsigned,
                            d,
                            op,
                            outcome,
                            ir,
                            attempts_so_far,
                            now,
                        )
                        .await?;
                    receipt_ids.push(rec.receipt_id.clone());
                    commit = commit
                        .with_audit(
                            audit(
                                EventKind::OperationExecuted,
                                d,
                                now,
                                format!("external completion observed: {}", op.describe()),
                            )
                            .operation(op.id.0.clone())
                            .outcome(ir.result.as_ref().map(|o| o.name()).unwrap_or("error"))
                            .to_json(),
                        )
                        .with_receipt(rec);
                    r.receipts += 1;
                }
                if let Some(key) = AssignmentKey::from_directive(d) {
                    let conf = match d.action {
                        Action::Revoke => Confirmation::revoke(key, d.source.clone(), ctx(d, now)),
                        _ => Confirmation::grant(key, d.source.clone(), ctx(d, now)),
                    };
                    commit = commit.with_confirm(conf);
                }
                let rep = FulfillmentReport::Fulfilled {
                    directive_id: d.id.clone(),
                    approval: d.approval.clone(),
                    receipt_ids,
                };
                (commit, rep)
            };
            if let Err(e) = self.sign_receipts(unsigned, std::slice::from_mut(&mut commit)) {
                chains.remove(&d.system);
                return Err(e);
            }
            if let Err(e) = self.inner.store.commit_outcome(&commit).await {
                chains.remove(&d.system);
                return Err(e.into());
            }
            drop(chains);
            self.report_to_sources(&[report]).await;
        }
        Ok(())
    }

    async fn target_shows(&self, d: &AccessDirective) -> Result<bool> {
        let Some(e) = &d.entitlement else {
            return Ok(false);
        };
        let Some(sys) = self.inner.systems.get(&d.system) else {
            return Ok(false);
        };
        let held = sys
            .adapter
            .list_all_assignments(&AssignmentScope::Account(iga_adapter::AccountRef::of(
                &d.identity,
            )))
            .await?
            .iter()
            .any(|a| a.entitlement.kind == e.kind && a.entitlement.id == e.id);
        Ok(held == (d.action != Action::Revoke))
    }

    /// Dry run: exactly what `submit` + `run_until_idle` would execute now, which
    /// directives change nothing (and why), and what a guardrail would stage. Nothing
    /// is persisted or executed.
    pub async fn plan(&self, ds: &[AccessDirective]) -> Result<DryRunPlan> {
        self.validate(ds)?;
        let mut plan = DryRunPlan::default();
        let staged = self.guardrail_staging(ds).await?;
        // Simulated intent per assignment: source key -> (intended, confirmed).
        let mut sim: HashMap<AssignmentKey, BTreeMap<String, (bool, bool)>> = HashMap::new();
        let mut ops = Vec::new();
        for (i, d) in ds.iter().enumerate() {
            if let Some(reason) = staged.get(&i) {
                plan.staged.push(NoOpDirective {
                    directive_id: d.id.clone(),
                    reason: reason.clone(),
                });
                continue;
            }
            let mode = self.inner.store.coexistence(&d.system).await?;
            let execute = match AssignmentKey::from_directive(d) {
                None => true,
                Some(key) => {
                    if !sim.contains_key(&key) {
                        let rows = self
                            .inner
                            .store
                            .sources_of(&key)
                            .await?
                            .into_iter()
                            .map(|s| (s.source.key(), (s.intended, s.confirmed)))
                            .collect();
                        sim.insert(key.clone(), rows);
                    }
                    let rows = sim.get_mut(&key).expect("inserted");
                    let visible = rows.values().any(|(_, c)| *c);
                    if d.action == Action::Revoke {
                        if let Some(r) = rows.get_mut(&d.source.key()) {
                            r.0 = false;
                        }
                        let intended = rows.values().any(|(i, _)| *i);
                        let exec = !intended && visible;
                        if exec {
                            rows.values_mut().for_each(|r| r.1 = false);
                        } else {
                            plan.no_ops.push(NoOpDirective {
                                directive_id: d.id.clone(),
                                reason: if intended {
                                    "other sources still grant this access".into()
                                } else {
                                    "access was never provisioned".into()
                                },
                            });
                        }
                        exec
                    } else {
                        let intended_before = rows.values().any(|(i, _)| *i);
                        rows.insert(d.source.key(), (true, visible));
                        let exec = !visible;
                        if exec {
                            rows.values_mut().for_each(|r| r.1 = true);
                        } else {
                            plan.no_ops.push(NoOpDirective {
                                directive_id: d.id.clone(),
                                reason: if intended_before {
                                    "already granted through another source".into()
                                } else {
                                    "already provisioned".into()
                                },
                            });
                        }
                        exec
                    }
                }
            };
            if !execute {
                continue;
            }
            if mode == CoexistenceMode::ShadowCompare {
                plan.no_ops.push(NoOpDirective {
                    directive_id: d.id.clone(),
                    reason: "SHADOW_COMPARE: computed, not executed".into(),
                });
                continue;
            }
            ops.extend(d.operations(self.inner.systems[&d.system].settings.expand));
        }
        let resolved = self.inner.resolver.plan(ops)?;
        for wave in resolved.waves() {
            plan.waves.push(
                wave.iter()
                    .map(|&i| {
                        let op = resolved.operation(i);
                        PlannedOperation {
                            directive_id: op.directive_id.clone(),
                            operation_id: op.id.0.clone(),
                            description: op.describe(),
                            system: op.system.clone(),
                        }
                    })
                    .collect(),
            );
        }
        Ok(plan)
    }

    /// A job by id (= directive id).
    pub async fn job(&self, id: &str) -> Result<Option<FulfillmentJob>> {
        Ok(self.inner.store.job(id).await?)
    }

    /// Jobs in one state.
    pub async fn jobs(&self, state: JobStateName, limit: usize) -> Result<Vec<FulfillmentJob>> {
        Ok(self.inner.store.jobs_by_state(state, limit).await?)
    }

    /// Jobs of one system in one state.
    pub async fn jobs_of_system(
        &self,
        system: &str,
        state: JobStateName,
        limit: usize,
    ) -> Result<Vec<FulfillmentJob>> {
        Ok(self
            .inner
            .store
            .jobs_by_state(state, usize::MAX >> 1)
            .await?
            .into_iter()
            .filter(|j| j.system == system)
            .take(limit)
            .collect())
    }

    /// Jobs of one identity (any state).
    pub async fn jobs_of_identity(
        &self,
        identity: &str,
    ) -> Result<Vec<(AccessDirective, FulfillmentJob)>> {
        let mut out = Vec::new();
        for s in JobStateName::ALL {
            for j in self.inner.store.jobs_by_state(s, usize::MAX >> 1).await? {
                if let Some(d) = self.inner.store.directive(&j.id).await?
                    && d.identity.id == identity
                {
                    out.push((d, j));
                }
            }
        }
        Ok(out)
    }

    /// Job counts by state.
    pub async fn status(&self) -> Result<StatusSummary> {
        let mut s = StatusSummary::default();
        for n in JobStateName::ALL {
            let c = self
                .inner
                .store
                .jobs_by_state(n, usize::MAX >> 1)
                .await?
                .len();
            if c > 0 {
                s.by_state.insert(n.as_str().to_string(), c);
            }
        }
        Ok(s)
    }

    /// Compare the ledger's intended state of `system` in `tenant` with what its adapter
    /// lists.
    pub async fn reconcile(&self, tenant: &str, system: &str) -> Result<DriftReport> {
        let sys = self
            .inner
            .systems
            .get(system)
            .ok_or_else(|| OrchestratorError::Config(format!("unknown system `{system}`")))?;
        let mut intended = BTreeMap::new();
        for a in self
            .inner
            .store
            .system_assignments(tenant, system, false)
            .await?
        {
            intended.insert(
                (a.key.identity.clone(), a.key.entitlement.key()),
                (a.key.entitlement.clone(), a.intended(), a.target_visible()),
            );
        }
        let mut actual = BTreeMap::new();
        for a in sys
            .adapter
            .list_all_assignments(&AssignmentScope::All)
            .await?
        {
            let who = a.identity_id.clone().unwrap_or(a.account_native_id.clone());
            let e = iga_directive::EntitlementRef::new(
                a.entitlement.kind.clone(),
                a.entitlement.id.clone(),
            );
            actual.insert((who, e.key()), e);
        }
        Ok(reconcile::compare(tenant, system, &intended, &actual))
    }

    /// Switch a system's coexistence mode. Switching to `NATIVE` first adopts what the
    /// target already shows for intended assignments (confirms them in the ledger), so
    /// access the legacy tool provisioned is not provisioned twice.
    pub async fn set_coexistence(
        &self,
        tenant: &str,
        system: &str,
        mode: CoexistenceMode,
    ) -> Result<usize> {
        let now = self.now();
        let mut adopted = 0;
        if mode == CoexistenceMode::Native {
            let report = self.reconcile(tenant, system).await?;
            for item in report
                .mismatched
                .iter()
                .filter(|i| i.detail.starts_with("present"))
            {
                let key =
                    AssignmentKey::new(tenant, &item.identity, system, item.entitlement.clone());
                for s in self.inner.store.sources_of(&key).await? {
                    if s.intended {
                        self.inner
                            .store
                            .confirm(&Confirmation::grant(
                                key.clone(),
                                s.source.clone(),
                                ChangeContext::at(now).actor("coexistence-adoption"),
                            ))
                            .await?;
                        adopted += 1;
                        break;
                    }
                }
            }
        }
        self.inner.store.set_coexistence(system, mode, now).await?;
        Ok(adopted)
    }

    /// Turn drift into directives: a grant for each assignment the ledger intends but the
    /// target lacks (carrying an intended source), so the normal pipeline provisions it.
    /// Access on the target that no source intends is reported, not revoked: removing it
    /// needs a decision (submit a revoke with the right source, or import it). With
    /// `dry_run` nothing is submitted.
    pub async fn remediate(
        &self,
        tenant: &str,
        system: &str,
        dry_run: bool,
    ) -> Result<Vec<AccessDirective>> {
        let report = self.reconcile(tenant, system).await?;
        let now = self.now();
        let mut out = Vec::new();
        for item in &report.missing {
            let key = AssignmentKey::new(tenant, &item.identity, system, item.entitlement.clone());
            let Some(src) = self
                .inner
                .store
                .sources_of(&key)
                .await?
                .into_iter()
                .find(|s| s.intended)
            else {
                continue;
            };
            let id = format!(
                "remediate:{}:{}:{}",
                key,
                src.source.key(),
                now.timestamp_micros()
            );
            let mut b = AccessDirective::builder(
                tenant,
                system,
                iga_directive::Identity::person(&item.identity),
                Action::Grant,
            )
            .entitlement(item.entitlement.clone())
            .source(src.source.clone())
            .id(id)
            .requested_at(now);
            if let GrantSource::Request { approval } = &src.source {
                let (sys, ticket) = approval.split_once(':').unwrap_or((approval.as_str(), ""));
                b = b.approval(iga_directive::ApprovalRef::new(sys, ticket));
            }
            match b.build() {
                Ok(d) => out.push(d),
                Err(e) => tracing::warn!(error = %e, "remediation directive skipped"),
            }
        }
        if !dry_run && !out.is_empty() {
            self.submit(out.clone()).await?;
        }
        Ok(out)
    }

    /// Verify every receipt chain this node wrote (signatures, hashes, order, gaps);
    /// one report per non-empty chain — check [`ChainReport::is_ok`].
    pub async fn verify_receipts(&self) -> Result<Vec<(String, ChainReport)>> {
        let mut out = Vec::new();
        for system in self.inner.systems.keys() {
            let id = ChainId::new(&self.inner.node, system)?;
            let records = self.export_chain(id.as_str()).await?;
            if records.is_empty() {
                continue;
            }
            let report = iga_receipt::verify_chain(&records, None, &self.inner.keys);
            out.push((id.as_str().to_string(), report));
        }
        Ok(out)
    }

    /// Every receipt of a chain, as iga-receipt records (for export and verification).
    pub async fn export_chain(&self, chain_id: &str) -> Result<Vec<iga_receipt::ReceiptRecord>> {
        let mut out = Vec::new();
        let mut from = 1;
        loop {
            let page = self.inner.store.receipts(chain_id, from, 5000).await?;
            if page.is_empty() {
                return Ok(out);
            }
            from = page.last().expect("non-empty").seq + 1;
            for r in page {
                out.push(iga_receipt::ReceiptRecord::new(
                    r.receipt_id,
                    r.chain_id,
                    r.seq,
                    r.directive_id,
                    r.operation_id,
                    r.jws,
                    r.payload_sha256,
                    r.prev_sha256
                        .unwrap_or_else(|| iga_receipt::GENESIS_SHA256.to_string()),
                    r.created_at,
                ));
            }
        }
    }
}
