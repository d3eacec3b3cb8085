//! `Retry`: retry retryable failures within one call.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use iga_adapter::{
    Account, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo, Error,
    ObjectRef, Observed, Outcome, Page, PageRequest, ProvisioningAdapter, Result,
};
use iga_directive::Operation;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::backoff::{Backoff, RetryPolicy, exhausted, should_retry};

/// What a [`RetryObserver`] is told before each sleep.
#[derive(Debug)]
#[non_exhaustive]
pub struct RetryEvent<'a> {
    /// The adapter call (`apply`, `apply_batch`, `read`, ...).
    pub call: &'static str,
    /// The retry about to happen (1 = first retry).
    pub retry: u32,
    /// How long the layer will sleep.
    pub delay: Duration,
    /// The error that caused the retry (for a batch, one of them).
    pub error: &'a Error,
    /// How many operations are being retried (1 outside `apply_batch`).
    pub items: usize,
}

/// Hook called before each sleep, for logs and metrics.
pub trait RetryObserver: Send + Sync + 'static {
    /// Called before sleeping `event.delay`.
    fn before_sleep(&self, event: &RetryEvent<'_>);
}

/// One retry sequence: its backoff state and start time.
struct Sequence {
    backoff: Backoff,
    started: Instant,
}

/// Configuration of [`Retry`]: the policy and the jitter seed.
#[derive(Clone)]
pub struct RetryLayer {
    policy: RetryPolicy,
    seed: Option<u64>,
    observer: Option<Arc<dyn RetryObserver>>,
}

impl fmt::Debug for RetryLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer")
            .field("policy", &self.policy)
            .field("seed", &self.seed)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl RetryLayer {
    /// Retry with this policy (random jitter seed).
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            seed: None,
            observer: None,
        }
    }

    /// Seed the jitter RNG (tests).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Observe retries.
    pub fn observer(mut self, o: Arc<dyn RetryObserver>) -> Self {
        self.observer = Some(o);
        self
    }
}

impl<A> tower_layer::Layer<A> for RetryLayer {
    type Service = Retry<A>;
    fn layer(&self, inner: A) -> Retry<A> {
        Retry::new(inner, self.clone())
    }
}

/// Retries retryable failures of one call with exponential backoff and jitter,
/// honouring Retry-After, bounded by attempts and elapsed time. Only what is safe to
/// send again is retried ([`crate::safe_to_resend`]). When retries run out the error
/// is marked `Exhausted`. `apply_batch` re-sends only the failed items.
pub struct Retry<A> {
    inner: A,
    layer: RetryLayer,
    rng: Mutex<StdRng>,
}

impl<A: fmt::Debug> fmt::Debug for Retry<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("layer", &self.layer)
            .field("inner", &self.inner)
            .finish()
    }
}

impl<A: fmt::Display> fmt::Display for Retry<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Retry({})", self.inner)
    }
}

impl<A> Retry<A> {
    /// Wrap `inner`.
    pub fn new(inner: A, layer: RetryLayer) -> Self {
        let rng = match layer.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        Self {
            inner,
            layer,
            rng: Mutex::new(rng),
        }
    }

    /// The wrapped adapter.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    fn sequence(&self) -> Sequence {
        let seed = self.rng.lock().expect("retry rng lock").random();
        Sequence {
            backoff: Backoff::new(self.layer.policy.backoff, seed),
            started: Instant::now(),
        }
    }

    /// Sleep before retry number `retry`, or return false if the policy forbids it.
    async fn pause(
        &self,
        seq: &mut Sequence,
        retry: u32,
        call: &'static str,
        error: &Error,
        retry_after: Option<Duration>,
        items: usize,
    ) -> bool {
        let p = &self.layer.policy;
        if retry >= p.max_attempts {
            return false;
        }
        let delay = seq.backoff.delay(retry, retry_after);
        if seq.started.elapsed() + delay > p.max_elapsed {
            return false;
        }
        if let Some(o) = &self.layer.observer {
            o.before_sleep(&RetryEvent {
                call,
                retry,
                delay,
                error,
                items,
            });
        }
        tracing::debug!(call, retry, delay_ms = delay.as_millis() as u64, error = %error, "retrying");
        tokio::time::sleep(delay).await;
        true
    }
}

impl<A: ProvisioningAdapter> Retry<A> {
    async fn call<T, F, Fut>(&self, name: &'static str, op: Option<&Operation>, f: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut seq = self.sequence();
        let mut attempt = 1;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    if !should_retry(op, &e, self.inner.capabilities()) {
                        return Err(e);
                    }
                    let ra = e.retry_after();
                    if !self.pause(&mut seq, attempt, name, &e, ra, 1).await {
                        return Err(exhausted(e, attempt));
                    }
                    attempt += 1;
                }
            }
        }
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<A: ProvisioningAdapter> ProvisioningAdapter for Retry<A> {
    fn info(&self) -> AdapterInfo {
        self.inner.info()
    }

    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }

    async fn check(&self) -> Result<()> {
        self.call("check", None, || self.inner.check()).await
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.call("apply", Some(op), || self.inner.apply(op)).await
    }

    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        let mut seq = self.sequence();
        let mut results: Vec<Option<Result<Outcome>>> = vec![None; ops.len()];
        let mut pending: Vec<usize> = (0..ops.len()).collect();
        let mut attempt = 1;
        let caps = self.inner.capabilities();
        while !pending.is_empty() {
            let slice: Vec<Operation> = pending.iter().map(|&i| ops[i].clone()).collect();
            let got = self.inner.apply_batch(&slice).await;
            let mut again = Vec::new();
            let mut wait: Option<Duration> = None;
            let mut first_err: Option<Error> = None;
            for (&i, r) in pending.iter().zip(got) {
                match r {
                    Err(e) if should_retry(Some(&ops[i]), &e, caps) => {
                        // Graph rule: retry the failed items after the largest Retry-After.
                        wait = wait.max(e.retry_after());
                        first_err.get_or_insert_with(|| e.clone());
                        results[i] = Some(Err(e));
                        again.push(i);
                    }
                    r => results[i] = Some(r),
                }
            }
            let Some(err) = first_err else { break };
            if !self
                .pause(&mut seq, attempt, "apply_batch", &err, wait, again.len())
                .await
            {
                for &i in &again {
                    if let Some(Err(e)) = results[i].take() {
                        results[i] = Some(Err(exhausted(e, attempt)));
                    }
                }
                break;
            }
            pending = again;
            attempt += 1;
        }
        results
            .into_iter()
            .map(|r| r.expect("every item has a result"))
            .collect()
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        self.call("read", None, || self.inner.read(object)).await
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        self.call("list_accounts", None, || {
            self.inner.list_accounts(page.clone())
        })
        .await
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        self.call("list_entitlements", None, || {
            self.inner.list_entitlements(page.clone())
        })
        .await
    }

    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>> {
        self.call("list_assignments", None, || {
            self.inner.list_assignments(scope, page.clone())
        })
        .await
    }
}
