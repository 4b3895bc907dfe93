//! Rate limits: the generic cell rate algorithm (GCRA), one cell per principal × server ×
//! name.
//!
//! GCRA keeps one instant per key — the theoretical arrival time of the next conforming call
//! — instead of a counter and a window, so it is exact (no bursts at window edges), costs one
//! map entry per active key, and says precisely when the next call will be allowed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use portcullis_policy::RateSpec;

/// How many keys the limiter tracks before it forgets the ones that have fully recovered.
const PRUNE_AT: usize = 100_000;

/// What a rate limit is kept for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateKey {
    pub principal: String,
    pub server: String,
    pub name: String,
}

/// Too many calls: the next one conforms after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

#[derive(Default)]
pub struct RateLimiter {
    /// Theoretical arrival time per key.
    cells: Mutex<HashMap<RateKey, Instant>>,
}

impl RateLimiter {
    /// Counts one call against `rate`, or says how long to wait.
    pub fn check(&self, key: &RateKey, rate: &RateSpec, now: Instant) -> Result<(), RetryAfter> {
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        if cells.len() >= PRUNE_AT {
            // A key whose arrival time has passed is indistinguishable from a new one.
            cells.retain(|_, tat| *tat > now);
        }
        let tat = cells.get(key).copied().unwrap_or(now).max(now);
        let allowed_from = tat.checked_sub(rate.burst_tolerance()).unwrap_or(now);
        if now < allowed_from {
            return Err(RetryAfter(allowed_from - now));
        }
        cells.insert(key.clone(), tat + rate.emission_interval());
        Ok(())
    }

    pub fn tracked(&self) -> usize {
        self.cells.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &str) -> RateKey {
        RateKey {
            principal: p.into(),
            server: "s".into(),
            name: "t".into(),
        }
    }

    fn per_minute(count: u32, burst: u32) -> RateSpec {
        RateSpec::parse(&format!("{count}/minute"))
            .and_then(|r| r.with_burst(burst.into()))
            .expect("a valid rate")
    }

    #[test]
    fn a_burst_passes_then_calls_are_spaced_by_the_interval() {
        let limiter = RateLimiter::default();
        let rate = per_minute(60, 3); // one a second, three at once
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(&key("a"), &rate, t0).is_ok());
        }
        let refused = limiter.check(&key("a"), &rate, t0).unwrap_err();
        assert_eq!(refused, RetryAfter(Duration::from_secs(1)));
        assert!(
            limiter
                .check(&key("a"), &rate, t0 + Duration::from_millis(999))
                .is_err()
        );
        assert!(
            limiter
                .check(&key("a"), &rate, t0 + Duration::from_secs(1))
                .is_ok()
        );
        assert!(
            limiter
                .check(&key("a"), &rate, t0 + Duration::from_secs(1))
                .is_err()
        );
    }

    #[test]
    fn keys_are_independent() {
        let limiter = RateLimiter::default();
        let rate = per_minute(1, 1);
        let t0 = Instant::now();
        assert!(limiter.check(&key("a"), &rate, t0).is_ok());
        assert!(limiter.check(&key("a"), &rate, t0).is_err());
        assert!(
            limiter.check(&key("b"), &rate, t0).is_ok(),
            "another principal has its own budget"
        );
    }

    #[test]
    fn the_long_run_rate_holds_whatever_the_burst() {
        let limiter = RateLimiter::default();
        let rate = per_minute(600, 50); // ten a second
        let t0 = Instant::now();
        let mut allowed = 0;
        // Hammer every millisecond for ten seconds.
        for ms in 0..10_000 {
            if limiter
                .check(&key("a"), &rate, t0 + Duration::from_millis(ms))
                .is_ok()
            {
                allowed += 1;
            }
        }
        // 50 at once, then ten a second for ten seconds.
        assert!((145..=151).contains(&allowed), "allowed {allowed}");
    }

    #[test]
    fn recovered_keys_are_forgotten_when_the_table_is_full() {
        let limiter = RateLimiter::default();
        let rate = per_minute(60, 1);
        let t0 = Instant::now();
        for i in 0..PRUNE_AT {
            let _ = limiter.check(&key(&i.to_string()), &rate, t0);
        }
        let later = t0 + Duration::from_secs(2);
        assert!(limiter.check(&key("new"), &rate, later).is_ok());
        assert!(
            limiter.tracked() < 10,
            "old cells were pruned: {}",
            limiter.tracked()
        );
    }
}
