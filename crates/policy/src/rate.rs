//! Rate specifications: `rate = "10/minute"`, `burst = 20`.
//!
//! Only the specification lives here (parsed, checked, shown); the limiter that enforces it
//! per principal × server × tool is the gateway's. The numbers are those of the generic cell
//! rate algorithm (GCRA): one request is let through every [`RateSpec::emission_interval`],
//! and up to `burst` requests may arrive at once after a quiet period.

use std::fmt;
use std::time::Duration;

/// The largest count accepted in a rate, and the largest burst.
pub const MAX_RATE_COUNT: u32 = 1_000_000;

/// The period of a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RatePeriod {
    /// `/second`.
    Second,
    /// `/minute`.
    Minute,
    /// `/hour`.
    Hour,
}

impl RatePeriod {
    /// The period as a duration.
    pub fn duration(self) -> Duration {
        Duration::from_secs(match self {
            RatePeriod::Second => 1,
            RatePeriod::Minute => 60,
            RatePeriod::Hour => 3600,
        })
    }

    /// `second`, `minute`, `hour`.
    pub fn as_str(self) -> &'static str {
        match self {
            RatePeriod::Second => "second",
            RatePeriod::Minute => "minute",
            RatePeriod::Hour => "hour",
        }
    }
}

/// How many calls a principal may make to one tool of one server, and how bursty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateSpec {
    /// Calls per period, at least 1.
    pub count: u32,
    /// The period.
    pub period: RatePeriod,
    /// Calls that may arrive at once (default: `count`), at least 1.
    pub burst: u32,
}

/// Why a rate or burst was refused; the message is complete (callers add which key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RateError(String);

impl RateSpec {
    /// Parses `"<count>/<second|minute|hour>"`, with the burst defaulting to the count.
    pub fn parse(text: &str) -> Result<RateSpec, RateError> {
        let form = || {
            RateError(format!(
                "invalid rate \"{text}\": write <count>/<unit> with unit second, minute or hour, e.g. \"10/minute\""
            ))
        };
        let (count, unit) = text.trim().split_once('/').ok_or_else(form)?;
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(form());
        }
        let period = match unit {
            "second" => RatePeriod::Second,
            "minute" => RatePeriod::Minute,
            "hour" => RatePeriod::Hour,
            _ => {
                return Err(RateError(format!(
                    "unknown rate unit \"{unit}\" in \"{text}\": use second, minute or hour"
                )));
            }
        };
        let count = count
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_RATE_COUNT).contains(n))
            .ok_or_else(|| {
                RateError(format!(
                    "the count in rate \"{text}\" must be between 1 and {MAX_RATE_COUNT}"
                ))
            })?;
        Ok(RateSpec {
            count,
            period,
            burst: count,
        })
    }

    /// The same rate with another burst, between 1 and [`MAX_RATE_COUNT`].
    pub fn with_burst(self, burst: i64) -> Result<RateSpec, RateError> {
        match u32::try_from(burst) {
            Ok(b) if (1..=MAX_RATE_COUNT).contains(&b) => Ok(RateSpec { burst: b, ..self }),
            _ => Err(RateError(format!(
                "burst must be between 1 and {MAX_RATE_COUNT}, not {burst}"
            ))),
        }
    }

    /// GCRA's emission interval: the period divided by the count.
    pub fn emission_interval(&self) -> Duration {
        self.period.duration() / self.count
    }

    /// GCRA's delay variation tolerance: how far ahead of schedule a burst may run,
    /// `emission_interval × (burst − 1)`.
    pub fn burst_tolerance(&self) -> Duration {
        self.emission_interval() * (self.burst - 1)
    }
}

/// `10/minute` or `10/minute, burst 20`.
impl fmt::Display for RateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.period.as_str())?;
        if self.burst != self.count {
            write!(f, ", burst {}", self.burst)?;
        }
        Ok(())
    }
}
