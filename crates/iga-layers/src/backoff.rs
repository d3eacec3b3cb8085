//! Backoff, retry policy and the "may this be sent again?" rule, shared by the retry
//! layer and the batch engine.

use std::time::Duration;

use iga_adapter::{Capabilities, Error, ErrorKind};
use iga_directive::{Operation, OperationKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How random the wait between attempts is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// Exactly the exponential delay (tests, deterministic runs).
    None,
    /// Uniform in `0..=exponential delay` (AWS "full jitter"; the default).
    #[default]
    Full,
    /// Uniform in `initial..=previous × base × 3`, capped (AWS "decorrelated jitter").
    Decorrelated,
}

/// Exponential backoff: the n-th retry waits about `initial × base^(n-1)`, at most
/// `max`, randomised by `jitter`. A Retry-After from the target is a floor.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BackoffConfig {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Largest computed delay (a longer Retry-After is still honoured).
    pub max: Duration,
    /// Growth factor per retry.
    pub base: f64,
    /// Randomisation.
    pub jitter: Jitter,
}

impl Default for BackoffConfig {
    /// 100 ms, doubling, at most 10 s, full jitter.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            base: 2.0,
            jitter: Jitter::Full,
        }
    }
}

impl BackoffConfig {
    /// A configuration.
    pub fn new(initial: Duration, max: Duration, base: f64) -> Self {
        Self {
            initial,
            max,
            base: base.max(1.0),
            jitter: Jitter::Full,
        }
    }

    /// Set the jitter.
    pub fn jitter(mut self, j: Jitter) -> Self {
        self.jitter = j;
        self
    }
}

/// Limits of retrying within one pass (seconds to a minute). Long backoff across
/// passes is the orchestrator's durable `Retrying` state, not this.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Total attempts, the first one included (at least 1).
    pub max_attempts: u32,
    /// No retry starts later than this after the first attempt.
    pub max_elapsed: Duration,
    /// Waits between attempts.
    pub backoff: BackoffConfig,
}

impl Default for RetryPolicy {
    /// 5 attempts within 60 s, default backoff.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            max_elapsed: Duration::from_secs(60),
            backoff: BackoffConfig::default(),
        }
    }
}

impl RetryPolicy {
    /// A policy with `max_attempts` attempts within `max_elapsed`.
    pub fn new(max_attempts: u32, max_elapsed: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            max_elapsed,
            backoff: BackoffConfig::default(),
        }
    }

    /// Never retry.
    pub fn none() -> Self {
        Self::new(1, Duration::ZERO)
    }

    /// Set the backoff.
    pub fn backoff(mut self, b: BackoffConfig) -> Self {
        self.backoff = b;
        self
    }
}

/// Stateful delay generator for one retry sequence, with an injectable seed.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    rng: StdRng,
    prev: Duration,
}

impl Backoff {
    /// A generator; the same seed gives the same delays.
    pub fn new(config: BackoffConfig, seed: u64) -> Self {
        Self {
            config,
            rng: StdRng::seed_from_u64(seed),
            prev: config.initial,
        }
    }

    /// The wait before retry number `retry` (1-based), at least `retry_after`.
    pub fn delay(&mut self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let c = &self.config;
        let exp = c.initial.as_secs_f64() * c.base.powi(retry.saturating_sub(1).min(64) as i32);
        let cap = exp.min(c.max.as_secs_f64()).max(0.0);
        let secs = match c.jitter {
            Jitter::None => cap,
            Jitter::Full => self.rng.random_range(0.0..=cap),
            Jitter::Decorrelated => {
                let lo = c.initial.as_secs_f64();
                let hi = (self.prev.as_secs_f64() * c.base * 3.0).max(lo);
                self.rng.random_range(lo..=hi).min(c.max.as_secs_f64())
            }
        };
        let d = Duration::from_secs_f64(secs);
        self.prev = d.max(c.initial);
        retry_after.map_or(d, |ra| d.max(ra))
    }
}

/// Whether `op` may be sent again after `err` without risking a second effective
/// change: every kind converges on a state, except a create on a target that cannot
/// match-then-link, after a timeout (it may have happened).
pub fn safe_to_resend(op: &Operation, err: &Error, caps: &Capabilities) -> bool {
    !(op.kind == OperationKind::CreateAccount
        && !caps.create_links_existing
        && err.kind() == ErrorKind::Timeout)
}

/// Retry `err` for `op` (None for reads and lists, which are always safe)?
pub fn should_retry(op: Option<&Operation>, err: &Error, caps: &Capabilities) -> bool {
    err.is_retryable() && op.is_none_or(|op| safe_to_resend(op, err, caps))
}

/// The final error of a retry sequence: a still-retryable error is marked
/// `Exhausted { attempts }` so nobody above retries it again within this pass.
pub fn exhausted(err: Error, attempts: u32) -> Error {
    if err.is_retryable() {
        err.set_exhausted(attempts)
    } else {
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_without_jitter_is_capped_and_honours_retry_after() {
        let cfg = BackoffConfig::new(Duration::from_millis(100), Duration::from_secs(1), 2.0)
            .jitter(Jitter::None);
        let mut b = Backoff::new(cfg, 1);
        let ms: Vec<u128> = (1..=6).map(|n| b.delay(n, None).as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(
            b.delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn full_jitter_stays_within_bounds_and_is_reproducible() {
        let cfg = BackoffConfig::new(Duration::from_millis(100), Duration::from_secs(2), 2.0);
        let run = |seed| {
            let mut b = Backoff::new(cfg, seed);
            (1..=8).map(|n| b.delay(n, None)).collect::<Vec<_>>()
        };
        let a = run(42);
        assert_eq!(a, run(42));
        assert_ne!(a, run(43));
        for (n, d) in a.iter().enumerate() {
            let cap = (100.0 * 2f64.powi(n as i32)).min(2000.0);
            assert!(d.as_secs_f64() * 1000.0 <= cap + 0.001, "retry {n}: {d:?}");
        }
    }

    #[test]
    fn decorrelated_jitter_stays_between_initial_and_max() {
        let cfg = BackoffConfig::new(Duration::from_millis(50), Duration::from_secs(1), 2.0)
            .jitter(Jitter::Decorrelated);
        let mut b = Backoff::new(cfg, 7);
        for n in 1..50 {
            let d = b.delay(n, None);
            assert!(
                d >= Duration::from_millis(50) && d <= Duration::from_secs(1),
                "{d:?}"
            );
        }
    }

    #[test]
    fn create_after_timeout_is_unsafe_only_without_match_then_link() {
        let op = Operation::new(
            "t",
            "s",
            OperationKind::CreateAccount,
            iga_directive::Identity::person("a"),
        );
        let timeout = Error::new(ErrorKind::Timeout, "x");
        let busy = Error::new(ErrorKind::Unavailable, "x");
        let mut caps = Capabilities::full([]);
        assert!(should_retry(Some(&op), &timeout, &caps));
        caps.create_links_existing = false;
        assert!(!should_retry(Some(&op), &timeout, &caps));
        assert!(should_retry(Some(&op), &busy, &caps));
        assert!(!should_retry(None, &Error::not_found("x"), &caps));
        let e = exhausted(busy, 3);
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("exhausted after 3"));
    }
}
