//! Per-system settings: long-retry policy, guardrail thresholds, expansion.

use std::time::Duration;

use iga_directive::ExpandOptions;
use rand::Rng;

/// The durable, long retry schedule of a system (the orchestrator's `Retrying` state;
/// short retries within one pass are the executor's).
///
/// Default: 5 retries at 1, 2, 4, 8 and 16 minutes (≈ 31 minutes in all), ±10 % jitter;
/// then the job is escalated with its full attempt history.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt before escalation.
    pub max_retries: u32,
    /// Delay before the first retry.
    pub initial: Duration,
    /// Growth factor per retry.
    pub factor: f64,
    /// Upper bound of one delay.
    pub max_delay: Duration,
    /// Relative jitter (0.1 = ±10 %).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial: Duration::from_secs(60),
            factor: 2.0,
            max_delay: Duration::from_secs(16 * 60),
            jitter: 0.1,
        }
    }
}

impl RetryPolicy {
    /// A policy with `max_retries` and a fixed `delay` (no growth, no jitter); handy in
    /// tests.
    pub fn fixed(max_retries: u32, delay: Duration) -> Self {
        Self {
            max_retries,
            initial: delay,
            factor: 1.0,
            max_delay: delay,
            jitter: 0.0,
        }
    }

    /// The delay before retry number `retry` (1-based), at least the target's
    /// Retry-After when it gave one.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, rng: &mut impl Rng) -> Duration {
        let exp = self.factor.powi(retry.saturating_sub(1) as i32);
        let base = (self.initial.as_secs_f64() * exp).min(self.max_delay.as_secs_f64());
        let j = if self.jitter > 0.0 {
            rng.random_range(-self.jitter..=self.jitter)
        } else {
            0.0
        };
        let d = Duration::from_secs_f64((base * (1.0 + j)).max(0.0));
        d.max(retry_after.unwrap_or_default())
    }

    /// The nominal total wait over all retries (without jitter).
    pub fn total(&self) -> Duration {
        (1..=self.max_retries)
            .map(|r| {
                let exp = self.factor.powi(r as i32 - 1);
                Duration::from_secs_f64(
                    (self.initial.as_secs_f64() * exp).min(self.max_delay.as_secs_f64()),
                )
            })
            .sum()
    }
}

/// Mass-revocation guardrail of one system: above either threshold in one planning
/// pass, revocations (revoke, disable, delete) are `Staged` instead of executed, until
/// released or cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct Guardrail {
    /// Stage when more than this many removals are planned at once.
    pub max_removals: Option<usize>,
    /// Stage when removals exceed this fraction (0.0–1.0) of the system's current
    /// holders (ledger assignments) — checked only with at least `min_population`.
    pub max_fraction: Option<f64>,
    /// Smallest population the fraction applies to.
    pub min_population: usize,
}

impl Guardrail {
    /// No guardrail.
    pub fn off() -> Self {
        Self::default()
    }

    /// Stage above `n` removals per pass.
    pub fn max_removals(n: usize) -> Self {
        Self {
            max_removals: Some(n),
            ..Self::default()
        }
    }

    /// Also stage above `fraction` of the population (with at least `min_population`).
    pub fn with_fraction(mut self, fraction: f64, min_population: usize) -> Self {
        self.max_fraction = Some(fraction);
        self.min_population = min_population;
        self
    }

    /// Whether `removals` out of `population` trip the guardrail; the reason if so.
    pub fn trips(&self, removals: usize, population: usize) -> Option<String> {
        if let Some(max) = self.max_removals.filter(|max| removals > *max) {
            return Some(format!(
                "mass-revocation guardrail: {removals} removals planned, threshold {max}"
            ));
        }
        if let Some(f) = self
            .max_fraction
            .filter(|_| population >= self.min_population.max(1))
        {
            {
                let frac = removals as f64 / population as f64;
                if frac > f {
                    return Some(format!(
                        "mass-revocation guardrail: {removals} of {population} assignments ({:.0}%) planned for removal, threshold {:.0}%",
                        frac * 100.0,
                        f * 100.0
                    ));
                }
            }
        }
        None
    }
}

/// Settings of one registered system.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct SystemSettings {
    /// Long retries.
    pub retry: RetryPolicy,
    /// Mass-revocation guardrail.
    pub guardrail: Guardrail,
    /// How directives expand into operations (e.g. ensure the account before a grant).
    pub expand: ExpandOptions,
}

impl SystemSettings {
    /// Defaults: default retry policy, no guardrail, no account expansion. (Short
    /// in-pass retries, batching, concurrency and rate limits are the batch engine's:
    /// `OrchestratorBuilder::batch`.)
    pub fn new() -> Self {
        Self {
            retry: RetryPolicy::default(),
            guardrail: Guardrail::off(),
            expand: ExpandOptions::default(),
        }
    }

    /// Set the retry policy.
    pub fn retry(mut self, r: RetryPolicy) -> Self {
        self.retry = r;
        self
    }

    /// Set the guardrail.
    pub fn guardrail(mut self, g: Guardrail) -> Self {
        self.guardrail = g;
        self
    }

    /// Ensure the account exists before each grant.
    pub fn ensure_accounts(mut self) -> Self {
        self.expand = ExpandOptions::ensure_account();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn default_policy_is_five_retries_over_about_thirty_minutes() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_retries, 5);
        let total = p.total().as_secs();
        assert!((28 * 60..=35 * 60).contains(&total), "{total}s");
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let d1 = p.delay(1, None, &mut rng).as_secs_f64();
        assert!((54.0..=66.0).contains(&d1), "{d1}");
        let d5 = p.delay(5, None, &mut rng).as_secs_f64();
        assert!((864.0..=1056.0).contains(&d5), "{d5}");
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(600)), &mut rng)
                .as_secs(),
            600
        );
    }

    #[test]
    fn guardrail_thresholds() {
        let g = Guardrail::max_removals(10).with_fraction(0.2, 50);
        assert!(g.trips(10, 1000).is_none());
        assert!(
            g.trips(11, 1000)
                .unwrap()
                .contains("11 removals planned, threshold 10")
        );
        assert!(g.trips(9, 40).is_none(), "population below minimum");
        assert!(g.trips(9, 50).is_none(), "18% is under 20%");
        let g = Guardrail::off().with_fraction(0.3, 10);
        assert!(g.trips(4, 10).unwrap().contains("40%"));
        assert!(g.trips(3, 10).is_none());
    }
}
