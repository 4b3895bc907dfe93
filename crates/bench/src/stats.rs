//! Latency samples and throughput: the numbers the report prints.

use std::time::Duration;

/// Call durations from one or more runs of a phase, and the wall time they took.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    pub times: Vec<Duration>,
    pub elapsed: Duration,
}

impl Samples {
    pub fn add(&mut self, other: Samples) {
        self.times.extend(other.times);
        self.elapsed += other.elapsed;
    }
}

/// Summary of one latency phase (sequential calls, concurrency 1).
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub calls: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
}

impl Latency {
    /// Summarizes `samples` (one per call). Empty input gives zeros.
    pub fn from_samples(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let total: Duration = samples.iter().sum();
        let mean_us = if samples.is_empty() {
            0.0
        } else {
            micros(total) / samples.len() as f64
        };
        Latency {
            calls: samples.len(),
            p50_us: percentile(&samples, 50.0),
            p99_us: percentile(&samples, 99.0),
            mean_us,
        }
    }
}

/// Summary of one throughput phase (calls kept in flight at a fixed concurrency).
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub calls: usize,
    pub concurrency: usize,
    pub elapsed: Duration,
    /// Median time from sending a call to its answer, under this load.
    pub p50_us: f64,
}

impl Throughput {
    pub fn new(concurrency: usize, samples: Samples) -> Self {
        Throughput {
            calls: samples.times.len(),
            concurrency,
            elapsed: samples.elapsed,
            p50_us: Latency::from_samples(samples.times).p50_us,
        }
    }

    pub fn per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.calls as f64 / secs
        } else {
            0.0
        }
    }
}

/// Summary of a few dozen timed runs of something slow (a process start): the median, the
/// 95th percentile and the extremes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spread {
    pub runs: usize,
    pub p50_us: f64,
    pub p95_us: f64,
    pub min_us: f64,
    pub max_us: f64,
}

impl Spread {
    /// Summarizes `samples`. Empty input gives zeros.
    pub fn from_samples(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Spread {
            runs: samples.len(),
            p50_us: percentile(&samples, 50.0),
            p95_us: percentile(&samples, 95.0),
            min_us: samples.first().copied().map_or(0.0, micros),
            max_us: samples.last().copied().map_or(0.0, micros),
        }
    }
}

/// Nearest-rank percentile of sorted samples, in microseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    micros(sorted[index])
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert!((percentile(&samples, 50.0) - 50.0).abs() < 1e-6);
        assert!((percentile(&samples, 99.0) - 99.0).abs() < 1e-6);
        assert!((percentile(&samples, 100.0) - 100.0).abs() < 1e-6);
        assert!((percentile(&[Duration::from_micros(7)], 99.0) - 7.0).abs() < 1e-6);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn spread_of_thirty_runs() {
        let samples: Vec<Duration> = (1..=30).rev().map(Duration::from_millis).collect();
        let s = Spread::from_samples(samples);
        assert_eq!(s.runs, 30);
        assert!((s.p50_us - 15_000.0).abs() < 1e-6);
        assert!((s.p95_us - 29_000.0).abs() < 1e-6);
        assert!((s.min_us - 1_000.0).abs() < 1e-6 && (s.max_us - 30_000.0).abs() < 1e-6);
        assert_eq!(Spread::from_samples(Vec::new()).p95_us, 0.0);
    }

    #[test]
    fn throughput_is_calls_over_elapsed() {
        let samples = Samples {
            times: vec![Duration::from_micros(10); 1000],
            elapsed: Duration::from_millis(500),
        };
        let t = Throughput::new(32, samples);
        assert!((t.per_sec() - 2000.0).abs() < 1e-6);
    }
}
