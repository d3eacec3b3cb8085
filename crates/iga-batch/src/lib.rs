//! # iga-batch — execute many operations with native batches
//!
//! [`BatchEngine::run`] takes the operations of one pass and:
//!
//! 1. checks each against its target's capabilities (no I/O) and finds its adapter in
//!    [`Targets`] by (tenant, system);
//! 2. groups them by **(tenant, system, operation kind)** and chunks each group to the
//!    adapter's declared `capabilities().batch_max`;
//! 3. runs the chunks with **bounded concurrency per target** (the adapter's
//!    `max_concurrency`, else [`BatchConfig::default_concurrency`]), each call paying
//!    one token per operation to the target's [`TargetLimiter`] (governor), which
//!    pauses and slows down when the target answers 429;
//! 4. keeps the successes of a partially failed batch and **re-batches only the
//!    failures** that are retryable and safe to resend, after exponential backoff with
//!    full jitter and at least the largest Retry-After seen, bounded by
//!    [`RetryPolicy::max_attempts`] and [`RetryPolicy::max_elapsed`];
//! 5. returns **one final [`ItemReport`] per operation**, in input order, with every
//!    error seen; what still fails is returned as a permanent failure or as a
//!    temporary one marked `Exhausted`, for the orchestrator's durable retry.
//!
//! "Applied but response lost" is safe: the re-sent operation answers
//! `AlreadyInState`, which is success.
//!
//! [`BatchEngine::run_plan`] runs an [`iga_resolver::Plan`] wave by wave and applies
//! each dependency's strictness (strict → [`ItemResult::DependencyFailed`], relaxed →
//! [`ItemResult::Skipped`], lax → run anyway).
//!
//! ```
//! use std::sync::Arc;
//! use iga_adapter::MemoryAdapter;
//! use iga_batch::{BatchConfig, BatchEngine, Targets};
//! use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let entra = MemoryAdapter::config("entra").batch_max(20).build();
//! let ops: Vec<Operation> = (0..50)
//!     .map(|i| {
//!         let who = Identity::person(format!("u{i}"));
//!         entra.seed_membership(&who, &EntitlementRef::group("G"));
//!         Operation::new("acme", "entra", OperationKind::Revoke, who)
//!             .with_entitlement(EntitlementRef::group("G"))
//!     })
//!     .collect();
//! let targets = Targets::new().with("acme", "entra", Arc::new(entra.clone()));
//! let report = BatchEngine::new(BatchConfig::default()).run(&targets, ops).await;
//! assert!(report.all_succeeded());
//! assert_eq!(report.calls, 3); // 20 + 20 + 10
//! # });
//! ```
#![deny(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use iga_adapter::{Error, ErrorKind, Outcome, ProvisioningAdapter, RetryStatus};
use iga_directive::{Operation, OperationId, OperationKind};
use iga_layers::{Backoff, RateLimitConfig, TargetLimiter, exhausted, should_retry};
use iga_resolver::{Gate, OpStatus, Plan};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Semaphore;
use tokio::time::Instant;

pub use iga_layers::{BackoffConfig, Jitter, RetryPolicy};

/// The adapters of a pass, by (tenant, system).
#[derive(Clone, Default)]
pub struct Targets {
    map: HashMap<(String, String), Arc<dyn ProvisioningAdapter>>,
}

impl fmt::Debug for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        let mut keys: Vec<_> = self.map.iter().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        for ((t, s), a) in keys {
            m.entry(&format!("{t}/{s}"), &a.to_string());
        }
        m.finish()
    }
}

impl Targets {
    /// No targets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register the adapter of `system` in `tenant`.
    pub fn insert(
        &mut self,
        tenant: impl Into<String>,
        system: impl Into<String>,
        adapter: Arc<dyn ProvisioningAdapter>,
    ) {
        self.map.insert((tenant.into(), system.into()), adapter);
    }

    /// Builder form of [`Targets::insert`].
    pub fn with(
        mut self,
        tenant: impl Into<String>,
        system: impl Into<String>,
        adapter: Arc<dyn ProvisioningAdapter>,
    ) -> Self {
        self.insert(tenant, system, adapter);
        self
    }

    /// The adapter of `system` in `tenant`.
    pub fn get(&self, tenant: &str, system: &str) -> Option<&Arc<dyn ProvisioningAdapter>> {
        self.map.get(&(tenant.to_string(), system.to_string()))
    }
}

/// Engine configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BatchConfig {
    /// Retrying within the pass.
    pub retry: RetryPolicy,
    /// Concurrent calls per target when its capabilities state no limit.
    pub default_concurrency: usize,
    /// Rate limits by system name (applied per tenant+system).
    pub rate_limits: HashMap<String, RateLimitConfig>,
    /// Rate limit for systems not in `rate_limits` (default: no quota, but a 429
    /// still pauses and slows the target).
    pub default_rate_limit: RateLimitConfig,
    /// Jitter seed (None = from the OS).
    pub seed: Option<u64>,
}

impl Default for BatchConfig {
    /// 5 attempts within 60 s, 4 concurrent calls per target, no quota.
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            default_concurrency: 4,
            rate_limits: HashMap::new(),
            default_rate_limit: RateLimitConfig::unlimited(),
            seed: None,
        }
    }
}

impl BatchConfig {
    /// Set the retry policy.
    pub fn retry(mut self, p: RetryPolicy) -> Self {
        self.retry = p;
        self
    }

    /// Set the default per-target concurrency.
    pub fn default_concurrency(mut self, n: usize) -> Self {
        self.default_concurrency = n.max(1);
        self
    }

    /// Rate-limit one system (per tenant).
    pub fn rate_limit(mut self, system: impl Into<String>, c: RateLimitConfig) -> Self {
        self.rate_limits.insert(system.into(), c);
        self
    }

    /// Seed the jitter.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

/// The final result of one operation in a pass.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ItemResult {
    /// Applied, already in state, or accepted for later completion (`Pending`).
    Succeeded(Outcome),
    /// Failed: permanent, or temporary with retries exhausted within the pass
    /// (`error.retry()` tells which; the orchestrator may retry the latter later).
    Failed(Error),
    /// Not attempted: a strict dependency did not succeed.
    DependencyFailed {
        /// The dependency's operation id.
        dependency: OperationId,
    },
    /// Not attempted: a relaxed dependency did not succeed.
    Skipped {
        /// The dependency's operation id.
        dependency: OperationId,
    },
}

/// How an item ended, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemStatus {
    /// Succeeded.
    Succeeded,
    /// Failed, but a later pass may succeed (retries exhausted within this pass).
    TemporaryFailure,
    /// Failed for good (or because a strict dependency failed).
    PermanentFailure,
    /// Skipped because a relaxed dependency did not succeed.
    Skipped,
}

/// What happened to one operation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ItemReport {
    /// Input (or plan) index.
    pub index: usize,
    /// The operation id.
    pub op_id: OperationId,
    /// The final result.
    pub result: ItemResult,
    /// Attempts made (0 when not attempted).
    pub attempts: u32,
    /// Every error seen, in order (the final one included).
    pub errors: Vec<Error>,
}

impl ItemReport {
    /// The status in one word.
    pub fn status(&self) -> ItemStatus {
        match &self.result {
            ItemResult::Succeeded(_) => ItemStatus::Succeeded,
            ItemResult::Failed(e) => match e.retry() {
                RetryStatus::Permanent => ItemStatus::PermanentFailure,
                _ => ItemStatus::TemporaryFailure,
            },
            ItemResult::DependencyFailed { .. } => ItemStatus::PermanentFailure,
            ItemResult::Skipped { .. } => ItemStatus::Skipped,
        }
    }

    /// Whether it succeeded.
    pub fn succeeded(&self) -> bool {
        matches!(self.result, ItemResult::Succeeded(_))
    }

    fn not_attempted(index: usize, op: &Operation, result: ItemResult) -> Self {
        Self {
            index,
            op_id: op.id.clone(),
            result,
            attempts: 0,
            errors: Vec::new(),
        }
    }
}

/// The outcome of a pass.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BatchReport {
    /// One report per operation, in input (plan) order.
    pub items: Vec<ItemReport>,
    /// Adapter calls made (`apply_batch` or `apply`).
    pub calls: u64,
    /// Operations re-sent after a failure (sum over rounds).
    pub retries: u64,
    /// Rate-limit answers (429) seen.
    pub throttled: u64,
    /// Wall time of the pass (tokio time).
    pub elapsed: Duration,
}

impl BatchReport {
    /// Whether every operation succeeded.
    pub fn all_succeeded(&self) -> bool {
        self.items.iter().all(ItemReport::succeeded)
    }

    /// Number of succeeded operations.
    pub fn succeeded(&self) -> usize {
        self.items.iter().filter(|i| i.succeeded()).count()
    }

    /// Counts per status.
    pub fn counts(&self) -> BTreeMap<ItemStatus, usize> {
        let mut m = BTreeMap::new();
        for i in &self.items {
            *m.entry(i.status()).or_default() += 1;
        }
        m
    }

    /// Items that did not succeed.
    pub fn failures(&self) -> impl Iterator<Item = &ItemReport> {
        self.items.iter().filter(|i| !i.succeeded())
    }
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
}

struct Target {
    adapter: Arc<dyn ProvisioningAdapter>,
    semaphore: Arc<Semaphore>,
    limiter: Arc<TargetLimiter>,
}

/// The batch engine. Holds per-target rate limiters across passes (so a target that
/// throttled in one pass is still paced in the next).
pub struct BatchEngine {
    config: BatchConfig,
    limiters: Mutex<HashMap<(String, String), Arc<TargetLimiter>>>,
    rng: Mutex<StdRng>,
}

impl fmt::Debug for BatchEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchEngine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl BatchEngine {
    /// An engine.
    pub fn new(config: BatchConfig) -> Self {
        let rng = match config.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        Self {
            config,
            limiters: Mutex::new(HashMap::new()),
            rng: Mutex::new(rng),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BatchConfig {
        &self.config
    }

    /// The rate limiter of (tenant, system), created on first use.
    pub fn limiter(&self, tenant: &str, system: &str) -> Arc<TargetLimiter> {
        let mut m = self.limiters.lock().expect("limiters lock");
        m.entry((tenant.to_string(), system.to_string()))
            .or_insert_with(|| {
                let c = self
                    .config
                    .rate_limits
                    .get(system)
                    .copied()
                    .unwrap_or(self.config.default_rate_limit);
                Arc::new(TargetLimiter::new(c))
            })
            .clone()
    }

    /// Execute `ops` (one pass): one report per operation, in input order.
    pub async fn run(&self, targets: &Targets, ops: Vec<Operation>) -> BatchReport {
        let indexed: Vec<(usize, Operation)> = ops.into_iter().enumerate().collect();
        let n = indexed.len();
        let started = Instant::now();
        let counters = Counters::default();
        let mut reports = self.run_indexed(targets, indexed, &counters).await;
        reports.sort_by_key(|r| r.index);
        debug_assert_eq!(reports.len(), n);
        BatchReport {
            items: reports,
            calls: counters.calls.load(Ordering::SeqCst),
            retries: counters.retries.load(Ordering::SeqCst),
            throttled: counters.throttled.load(Ordering::SeqCst),
            elapsed: started.elapsed(),
        }
    }

    /// Execute a resolver plan wave by wave, gating each operation on its
    /// dependencies' results. Reports are by plan index.
    pub async fn run_plan(&self, targets: &Targets, plan: &Plan) -> BatchReport {
        let started = Instant::now();
        let counters = Counters::default();
        let mut reports: Vec<Option<ItemReport>> = vec![None; plan.len()];
        let mut status: Vec<Option<OpStatus>> = vec![None; plan.len()];
        for wave in plan.waves() {
            let mut runnable = Vec::new();
            for &i in wave {
                let op = plan.operation(i);
                match plan.gate(i, |d| status[d]) {
                    Gate::Run => runnable.push((i, op.clone())),
                    Gate::Fail { dependency } => {
                        status[i] = Some(OpStatus::Failed);
                        reports[i] = Some(ItemReport::not_attempted(
                            i,
                            op,
                            ItemResult::DependencyFailed {
                                dependency: plan.operation(dependency).id.clone(),
                            },
                        ));
                    }
                    Gate::Skip { dependency } | Gate::Waiting { dependency } => {
                        status[i] = Some(OpStatus::Skipped);
                        reports[i] = Some(ItemReport::not_attempted(
                            i,
                            op,
                            ItemResult::Skipped {
                                dependency: plan.operation(dependency).id.clone(),
                            },
                        ));
                    }
                }
            }
            for r in self.run_indexed(targets, runnable, &counters).await {
                status[r.index] = Some(if r.succeeded() {
                    OpStatus::Succeeded
                } else {
                    OpStatus::Failed
                });
                let i = r.index;
                reports[i] = Some(r);
            }
        }
        BatchReport {
            items: reports
                .into_iter()
                .map(|r| r.expect("every plan index is in a wave"))
                .collect(),
            calls: counters.calls.load(Ordering::SeqCst),
            retries: counters.retries.load(Ordering::SeqCst),
            throttled: counters.throttled.load(Ordering::SeqCst),
            elapsed: started.elapsed(),
        }
    }

    async fn run_indexed(
        &self,
        targets: &Targets,
        ops: Vec<(usize, Operation)>,
        counters: &Counters,
    ) -> Vec<ItemReport> {
        let mut done = Vec::with_capacity(ops.len());
        // (tenant, system) -> target; (tenant, system, kind) -> group.
        let mut live: HashMap<(String, String), Arc<Target>> = HashMap::new();
        let mut groups: BTreeMap<(String, String, OperationKind), Vec<(usize, Operation)>> =
            BTreeMap::new();
        for (i, op) in ops {
            let Some(adapter) = targets.get(&op.tenant, &op.system) else {
                let e = Error::new(
                    ErrorKind::ConfigInvalid,
                    format!(
                        "no adapter is registered for system `{}` in tenant `{}`",
                        op.system, op.tenant
                    ),
                )
                .with_operation("batch engine")
                .with_context("operation_id", &op.id);
                done.push(failed_before_io(i, &op, e));
                continue;
            };
            if let Err(e) = adapter.capabilities().check(&op) {
                let e = e
                    .with_connector(adapter.info().kind)
                    .with_operation("batch engine capability check");
                done.push(failed_before_io(i, &op, e));
                continue;
            }
            let key = (op.tenant.clone(), op.system.clone());
            live.entry(key.clone()).or_insert_with(|| {
                let caps = adapter.capabilities();
                let n = caps
                    .max_concurrency
                    .unwrap_or(self.config.default_concurrency)
                    .max(1);
                Arc::new(Target {
                    adapter: adapter.clone(),
                    semaphore: Arc::new(Semaphore::new(n)),
                    limiter: self.limiter(&key.0, &key.1),
                })
            });
            groups
                .entry((op.tenant.clone(), op.system.clone(), op.kind))
                .or_default()
                .push((i, op));
        }
        let runs = groups.into_iter().map(|((t, s, _), items)| {
            let target = live[&(t, s)].clone();
            let seed: u64 = self.rng.lock().expect("rng lock").random();
            async move { self.run_group(&target, items, seed, counters).await }
        });
        for g in join_all(runs).await {
            done.extend(g);
        }
        done
    }

    /// One (tenant, system, kind) group: rounds of chunked calls, re-batching only
    /// the retryable failures.
    async fn run_group(
        &self,
        target: &Target,
        items: Vec<(usize, Operation)>,
        seed: u64,
        counters: &Counters,
    ) -> Vec<ItemReport> {
        let policy = self.config.retry;
        let caps = target.adapter.capabilities();
        let batch_max = caps.batch_max.max(1);
        let started = Instant::now();
        let mut backoff = Backoff::new(policy.backoff, seed);
        let mut errors: Vec<Vec<Error>> = vec![Vec::new(); items.len()];
        let mut finals: Vec<Option<ItemResult>> = vec![None; items.len()];
        let mut pending: Vec<usize> = (0..items.len()).collect();
        let mut attempt: u32 = 1;
        loop {
            let chunks: Vec<Vec<usize>> =
                pending.chunks(batch_max).map(<[usize]>::to_vec).collect();
            let calls = chunks.iter().map(|chunk| {
                let ops: Vec<Operation> = chunk.iter().map(|&k| items[k].1.clone()).collect();
                async move {
                    let _permit = target
                        .semaphore
                        .acquire()
                        .await
                        .expect("engine never closes a semaphore");
                    target.limiter.acquire(ops.len()).await;
                    counters.calls.fetch_add(1, Ordering::SeqCst);
                    let mut results = if batch_max == 1 {
                        vec![target.adapter.apply(&ops[0]).await]
                    } else {
                        target.adapter.apply_batch(&ops).await
                    };
                    if results.len() != ops.len() {
                        let e = Error::new(
                            ErrorKind::Unexpected,
                            format!(
                                "adapter returned {} results for {} operations",
                                results.len(),
                                ops.len()
                            ),
                        )
                        .with_connector(target.adapter.info().kind)
                        .with_operation("apply_batch");
                        results = ops.iter().map(|_| Err(e.clone())).collect();
                    }
                    let throttled = results
                        .iter()
                        .filter(|r| matches!(r, Err(e) if e.kind() == ErrorKind::RateLimited))
                        .count();
                    if throttled > 0 {
                        counters
                            .throttled
                            .fetch_add(throttled as u64, Ordering::SeqCst);
                        target
                            .limiter
                            .observe(results.iter().filter_map(|r| r.as_ref().err()));
                    }
                    results
                }
            });
            let round = join_all(calls).await;
            let mut again = Vec::new();
            let mut wait: Option<Duration> = None;
            for (chunk, results) in chunks.iter().zip(round) {
                for (&k, r) in chunk.iter().zip(results) {
                    match r {
                        Ok(o) => finals[k] = Some(ItemResult::Succeeded(o)),
                        Err(e) => {
                            errors[k].push(e.clone());
                            if should_retry(Some(&items[k].1), &e, caps) {
                                wait = wait.max(e.retry_after());
                                again.push(k);
                            } else {
                                finals[k] = Some(ItemResult::Failed(e));
                            }
                        }
                    }
                }
            }
            if again.is_empty() {
                break;
            }
            let delay = backoff.delay(attempt, wait);
            if attempt >= policy.max_attempts || started.elapsed() + delay > policy.max_elapsed {
                for &k in &again {
                    let last = errors[k].last().cloned().expect("an error was recorded");
                    finals[k] = Some(ItemResult::Failed(exhausted(last, attempt)));
                }
                break;
            }
            tracing::debug!(
                target_system = %items[again[0]].1.system,
                tenant = %items[again[0]].1.tenant,
                retrying = again.len(),
                delay_ms = delay.as_millis() as u64,
                "batch engine retrying failed items"
            );
            counters
                .retries
                .fetch_add(again.len() as u64, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            pending = again;
            attempt += 1;
        }
        let attempts_of = |k: usize| -> u32 {
            let failures = errors[k].len() as u32;
            match &finals[k] {
                Some(ItemResult::Succeeded(_)) => failures + 1,
                _ => failures,
            }
        };
        items
            .iter()
            .enumerate()
            .map(|(k, (i, op))| ItemReport {
                index: *i,
                op_id: op.id.clone(),
                attempts: attempts_of(k),
                result: finals[k].clone().expect("every item ends with a result"),
                errors: errors[k].clone(),
            })
            .collect()
    }
}

fn failed_before_io(i: usize, op: &Operation, e: Error) -> ItemReport {
    ItemReport {
        index: i,
        op_id: op.id.clone(),
        result: ItemResult::Failed(e.clone()),
        attempts: 0,
        errors: vec![e],
    }
}
