//! The time the resource server reads, injectable so that expiry, cache ages and rate limits
//! can be tested without sleeping.
//!
//! Two readings, because they answer different questions: token claims (`exp`, `nbf`, `iat`)
//! are wall-clock dates, while cache ages and refetch intervals must not jump when the system
//! clock is set, so they use a monotonic reading.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// A source of time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Wall-clock time, compared with the NumericDate claims of tokens.
    fn now(&self) -> SystemTime;
    /// Monotonic time since an arbitrary fixed origin, for cache ages and rate limits.
    fn monotonic(&self) -> Duration;
}

/// The real clock. The monotonic reading is tokio's, so `tokio::time::pause()` also drives it.
#[derive(Debug)]
pub struct SystemClock {
    origin: tokio::time::Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to, for tests: both readings advance together.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<(SystemTime, Duration)>,
}

impl ManualClock {
    /// Starts at the current wall-clock time (so tokens signed "now" by a test are valid).
    pub fn new() -> Self {
        ManualClock {
            state: Mutex::new((SystemTime::now(), Duration::ZERO)),
        }
    }

    /// Moves both readings forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.0 += by;
        state.1 += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    fn monotonic(&self) -> Duration {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_both_readings_together_and_only_when_told() {
        let clock = ManualClock::new();
        let (wall, mono) = (clock.now(), clock.monotonic());
        assert_eq!(clock.now(), wall);
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now().duration_since(wall).unwrap().as_secs(), 90);
        assert_eq!(clock.monotonic() - mono, Duration::from_secs(90));
    }

    #[tokio::test(start_paused = true)]
    async fn the_system_clock_follows_paused_tokio_time() {
        let clock = SystemClock::new();
        tokio::time::advance(Duration::from_secs(600)).await;
        assert!(clock.monotonic() >= Duration::from_secs(600));
    }
}
