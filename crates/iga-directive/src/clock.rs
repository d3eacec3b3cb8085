use std::fmt;
use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};

use crate::Timestamp;

/// A source of "now". Engines take a clock instead of calling `Utc::now()` so retry
/// schedules, replay windows and timeouts are testable without waiting.
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// A clock shared between components.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now()
    }
}

impl SystemClock {
    /// A shared handle to the wall clock.
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

/// A clock that only moves when told to. Cloning shares the same time.
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Timestamp>>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ManualClock({})", self.now())
    }
}

impl ManualClock {
    /// A manual clock starting at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// A manual clock starting at 2026-01-01T00:00:00Z.
    pub fn at_epoch() -> Self {
        Self::new(
            chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
                .expect("valid constant")
                .with_timezone(&Utc),
        )
    }

    /// Move time forward by `by` (negative durations are rejected).
    pub fn advance(&self, by: std::time::Duration) {
        let by = Duration::from_std(by).expect("duration in range");
        let mut now = self.now.lock().expect("clock lock");
        *now += by;
    }

    /// Set the time (may move backwards, to test clock skew).
    pub fn set(&self, to: Timestamp) {
        *self.now.lock().expect("clock lock") = to;
    }

    /// A shared handle to this clock.
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().expect("clock lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_time() {
        let c = ManualClock::at_epoch();
        let t0 = c.now();
        let shared = c.shared();
        assert_eq!(shared.now(), t0);
        c.advance(std::time::Duration::from_secs(90));
        assert_eq!((shared.now() - t0).num_seconds(), 90);
        c.set(t0);
        assert_eq!(shared.now(), t0);
    }

    #[test]
    fn system_clock_is_close_to_now() {
        let d = SystemClock.now() - Utc::now();
        assert!(d.num_seconds().abs() < 5);
    }
}
