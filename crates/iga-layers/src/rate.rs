//! `RateLimit`: a per-target token bucket (governor) that slows down further when the
//! target answers 429.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use iga_adapter::{
    Account, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo, Error,
    ErrorKind, ObjectRef, Observed, Outcome, Page, PageRequest, ProvisioningAdapter, Result,
};
use iga_directive::Operation;
use tokio::time::Instant;

/// A governor clock on tokio time, so `tokio::time::pause()` drives the limiter in
/// tests exactly as it drives sleeps.
#[derive(Debug, Clone)]
pub struct TokioClock {
    origin: Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

type Governor = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

/// Rate-limit configuration of one target.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// Sustained operations per second (None = no quota, only the 429 back-off).
    pub per_second: Option<f64>,
    /// Burst size (tokens available at once).
    pub burst: u32,
    /// After a 429, the rate is divided by this factor...
    pub slow_factor: u32,
    /// ...for this long.
    pub slow_for: Duration,
    /// After a 429, nothing is sent to the target until its Retry-After has passed
    /// (this default when it gave none), capped at `max_pause`.
    pub default_pause: Duration,
    /// Longest pause a Retry-After can impose.
    pub max_pause: Duration,
}

impl RateLimitConfig {
    /// `per_second` operations per second with a burst of `burst`.
    pub fn per_second(per_second: f64, burst: u32) -> Self {
        Self {
            per_second: Some(per_second),
            burst: burst.max(1),
            ..Self::unlimited()
        }
    }

    /// No quota; only pauses after 429.
    pub fn unlimited() -> Self {
        Self {
            per_second: None,
            burst: 1,
            slow_factor: 2,
            slow_for: Duration::from_secs(10),
            default_pause: Duration::from_secs(1),
            max_pause: Duration::from_secs(60),
        }
    }

    /// Microsoft Graph writes per app+tenant: 3,000 per 150 s = 20/s, burst 20
    /// (protocols.md §1.3).
    pub fn graph_writes() -> Self {
        Self::per_second(20.0, 20)
    }

    /// Set the slow-down after a 429.
    pub fn slow_down(mut self, factor: u32, for_: Duration) -> Self {
        self.slow_factor = factor.max(1);
        self.slow_for = for_;
        self
    }

    fn quota(&self, factor: u32) -> Option<Quota> {
        let per_second = self.per_second.filter(|r| *r > 0.0)?;
        let period = Duration::from_secs_f64(factor.max(1) as f64 / per_second);
        Quota::with_period(period.max(Duration::from_nanos(1)))
            .map(|q| q.allow_burst(NonZeroU32::new(self.burst.max(1)).expect("burst >= 1")))
    }
}

#[derive(Debug, Default)]
struct Throttle {
    pause_until: Option<Instant>,
    slow_until: Option<Instant>,
    throttled: u64,
}

/// The shared limiter of one target: a governor token bucket on tokio time, a
/// slower one used for a while after a 429, and a pause until the target's
/// Retry-After has passed. Share one (in an `Arc`) between everything that calls the
/// same target.
pub struct TargetLimiter {
    config: RateLimitConfig,
    clock: TokioClock,
    normal: Option<Governor>,
    slow: Option<Governor>,
    throttle: Mutex<Throttle>,
}

impl fmt::Debug for TargetLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetLimiter")
            .field("config", &self.config)
            .field("throttle", &self.throttle)
            .finish()
    }
}

impl TargetLimiter {
    /// A limiter.
    pub fn new(config: RateLimitConfig) -> Self {
        let clock = TokioClock::default();
        let make = |f| {
            config
                .quota(f)
                .map(|q| RateLimiter::direct_with_clock(q, clock.clone()))
        };
        Self {
            normal: make(1),
            slow: make(config.slow_factor),
            throttle: Mutex::new(Throttle::default()),
            clock,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// How many 429s were reported.
    pub fn throttled(&self) -> u64 {
        self.throttle.lock().expect("throttle lock").throttled
    }

    /// Wait until `n` operations may be sent (taken in steps of at most the burst size).
    pub async fn acquire(&self, n: usize) {
        let burst = self.config.burst.max(1) as usize;
        let mut left = n.max(1);
        while left > 0 {
            let take = left.min(burst);
            self.acquire_at_most_burst(take).await;
            left -= take;
        }
    }

    async fn acquire_at_most_burst(&self, n: usize) {
        let n = NonZeroU32::new(n as u32).expect("n >= 1");
        loop {
            let (pause, slowed) = {
                let t = self.throttle.lock().expect("throttle lock");
                let now = Instant::now();
                (
                    t.pause_until.filter(|u| *u > now),
                    t.slow_until.is_some_and(|u| u > now),
                )
            };
            if let Some(until) = pause {
                tokio::time::sleep_until(until).await;
                continue;
            }
            let limiter = if slowed { &self.slow } else { &self.normal };
            let Some(limiter) = limiter else { return };
            match limiter.check_n(n) {
                Ok(Ok(())) => return,
                Ok(Err(not_until)) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    tokio::time::sleep(wait.max(Duration::from_micros(100))).await;
                }
                // Clamped to the burst above; cannot happen, but never spin.
                Err(_) => return,
            }
        }
    }

    /// Report a 429 (or other rate-limit answer): pause until its Retry-After, then
    /// run at the slowed rate for `slow_for`.
    pub fn on_throttled(&self, retry_after: Option<Duration>) {
        let pause = retry_after
            .unwrap_or(self.config.default_pause)
            .min(self.config.max_pause);
        let now = Instant::now();
        let mut t = self.throttle.lock().expect("throttle lock");
        t.throttled += 1;
        t.pause_until = t.pause_until.max(Some(now + pause));
        t.slow_until = t.slow_until.max(Some(now + pause + self.config.slow_for));
        tracing::debug!(
            pause_ms = pause.as_millis() as u64,
            "target throttled; pausing and slowing down"
        );
    }

    /// Inspect results and report the first rate-limit error, if any.
    pub fn observe<'a>(&self, errors: impl IntoIterator<Item = &'a Error>) {
        let mut worst: Option<Option<Duration>> = None;
        for e in errors {
            if e.kind() == ErrorKind::RateLimited {
                let ra = e.retry_after();
                worst = Some(worst.flatten().max(ra));
            }
        }
        if let Some(ra) = worst {
            self.on_throttled(ra);
        }
    }
}

/// Configuration of [`RateLimit`].
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    limiter: Arc<TargetLimiter>,
}

impl RateLimitLayer {
    /// A layer with its own limiter.
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            limiter: Arc::new(TargetLimiter::new(config)),
        }
    }

    /// A layer sharing an existing limiter (e.g. with the batch engine).
    pub fn shared(limiter: Arc<TargetLimiter>) -> Self {
        Self { limiter }
    }

    /// The limiter.
    pub fn limiter(&self) -> &Arc<TargetLimiter> {
        &self.limiter
    }
}

impl<A> tower_layer::Layer<A> for RateLimitLayer {
    type Service = RateLimit<A>;
    fn layer(&self, inner: A) -> RateLimit<A> {
        RateLimit {
            inner,
            limiter: self.limiter.clone(),
        }
    }
}

/// Every call takes tokens (one per operation for `apply_batch`, as Graph counts each
/// inner request); a 429 from the target pauses and slows the limiter.
pub struct RateLimit<A> {
    inner: A,
    limiter: Arc<TargetLimiter>,
}

impl<A> RateLimit<A> {
    /// Wrap `inner`.
    pub fn new(inner: A, config: RateLimitConfig) -> Self {
        Self {
            inner,
            limiter: Arc::new(TargetLimiter::new(config)),
        }
    }

    /// The shared limiter.
    pub fn limiter(&self) -> &Arc<TargetLimiter> {
        &self.limiter
    }

    async fn guard<T>(&self, n: usize, fut: impl Future<Output = Result<T>>) -> Result<T> {
        self.limiter.acquire(n).await;
        let r = fut.await;
        if let Err(e) = &r {
            self.limiter.observe([e]);
        }
        r
    }
}

use std::future::Future;

impl<A: fmt::Debug> fmt::Debug for RateLimit<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("limiter", &self.limiter)
            .field("inner", &self.inner)
            .finish()
    }
}

impl<A: fmt::Display> fmt::Display for RateLimit<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RateLimit({})", self.inner)
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<A: ProvisioningAdapter> ProvisioningAdapter for RateLimit<A> {
    fn info(&self) -> AdapterInfo {
        self.inner.info()
    }

    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }

    async fn check(&self) -> Result<()> {
        self.guard(1, self.inner.check()).await
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.guard(1, self.inner.apply(op)).await
    }

    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        if ops.is_empty() {
            return Vec::new();
        }
        self.limiter.acquire(ops.len()).await;
        let results = self.inner.apply_batch(ops).await;
        self.limiter
            .observe(results.iter().filter_map(|r| r.as_ref().err()));
        results
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        self.guard(1, self.inner.read(object)).await
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        self.guard(1, self.inner.list_accounts(page)).await
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        self.guard(1, self.inner.list_entitlements(page)).await
    }

    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>> {
        self.guard(1, self.inner.list_assignments(scope, page))
            .await
    }
}
