//! Direct and through the gateway, measured in alternation.
//!
//! Both targets (or all three, with the gateway with everything on) are up at the same time
//! (an idle one costs nothing) and each phase is cut into rounds that alternate between them,
//! the first of each pair swapping every round (with three: the order rotating by one). A
//! burst of load from elsewhere on the machine then falls on both sides alike instead of on
//! whichever happened to run at the time.
//!
//! Wall-clock figures still move with whatever else the machine runs. CPU time does not (much):
//! the CPU each side's server processes spend per call in the concurrency phase is measured
//! too, and so is the client's own, from `/proc/<pid>/stat`.

use std::sync::Arc;

use crate::http_client::HttpSession;
use crate::procs::{self, TICK};
use crate::scenarios::Settings;
use crate::stats::{Latency, Samples, Throughput};
use crate::stdio_client::StdioClient;

/// Something that answers `echo` calls: the fixture or the gateway, over stdio or HTTP.
pub trait Target {
    /// `calls` calls, one after the other.
    async fn sequential(&mut self, calls: usize) -> anyhow::Result<Samples>;
    /// `calls` calls, `concurrency` of them in flight at all times.
    async fn concurrent(&mut self, calls: usize, concurrency: usize) -> anyhow::Result<Samples>;
}

impl Target for StdioClient {
    async fn sequential(&mut self, calls: usize) -> anyhow::Result<Samples> {
        StdioClient::sequential(self, calls).await
    }

    async fn concurrent(&mut self, calls: usize, concurrency: usize) -> anyhow::Result<Samples> {
        StdioClient::concurrent(self, calls, concurrency).await
    }
}

impl Target for Arc<HttpSession> {
    async fn sequential(&mut self, calls: usize) -> anyhow::Result<Samples> {
        HttpSession::sequential(self, calls).await
    }

    async fn concurrent(&mut self, calls: usize, concurrency: usize) -> anyhow::Result<Samples> {
        HttpSession::concurrent(self, calls, concurrency).await
    }
}

/// A target, and the processes whose CPU time its calls cost.
pub struct Contestant<'a, T> {
    pub target: &'a mut T,
    /// Every server process that works for this side's calls (the gateway's upstream too).
    pub servers: Vec<u32>,
    /// The gateway process, on the gateway's side.
    pub gateway: Option<u32>,
}

/// CPU time per call, in µs.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuPerCall {
    /// All of this side's server processes.
    pub servers_us: f64,
    /// The gateway alone (0 on the direct side).
    pub gateway_us: f64,
    /// The benchmark's own client.
    pub client_us: f64,
}

/// One target's figures.
#[derive(Debug, Clone)]
pub struct Measured {
    pub latency: Latency,
    pub throughput: Throughput,
    /// CPU per call at concurrency 1, and at full concurrency.
    pub cpu_sequential: CpuPerCall,
    pub cpu_concurrent: CpuPerCall,
}

#[derive(Clone, Copy)]
enum Phase {
    Sequential,
    Concurrent,
}

/// What one side's rounds of one phase add up to.
#[derive(Default)]
struct Tally {
    samples: Samples,
    /// CPU ticks of [servers, gateway, client].
    ticks: [u64; 3],
}

impl Tally {
    fn cpu(&self) -> CpuPerCall {
        let calls = self.samples.times.len().max(1) as f64;
        let per_call = |ticks: u64| ticks as f64 * TICK.as_secs_f64() * 1e6 / calls;
        CpuPerCall {
            servers_us: per_call(self.ticks[0]),
            gateway_us: per_call(self.ticks[1]),
            client_us: per_call(self.ticks[2]),
        }
    }
}

#[derive(Default)]
struct Acc {
    sequential: Tally,
    concurrent: Tally,
}

impl<T: Target> Contestant<'_, T> {
    fn ticks(&self) -> anyhow::Result<[u64; 3]> {
        let mut servers = 0;
        for pid in &self.servers {
            servers += procs::cpu_ticks(*pid)?;
        }
        let gateway = match self.gateway {
            Some(pid) => procs::cpu_ticks(pid)?,
            None => 0,
        };
        Ok([servers, gateway, procs::own_cpu_ticks()?])
    }

    /// One round of `phase`, `n` calls, added to `acc`.
    async fn round(
        &mut self,
        phase: Phase,
        n: usize,
        s: &Settings,
        acc: &mut Acc,
    ) -> anyhow::Result<()> {
        let before = self.ticks()?;
        let (samples, tally) = match phase {
            Phase::Sequential => (self.target.sequential(n).await?, &mut acc.sequential),
            Phase::Concurrent => (
                self.target.concurrent(n, s.concurrency).await?,
                &mut acc.concurrent,
            ),
        };
        let after = self.ticks()?;
        tally.samples.add(samples);
        for (sum, (a, b)) in tally.ticks.iter_mut().zip(after.iter().zip(before)) {
            *sum += a.saturating_sub(b);
        }
        Ok(())
    }
}

/// Warms every target up, then measures them round by round, each round in an order rotated
/// by one from the last (with two: the first of each pair swaps every round); the figures
/// in the contestants' order.
pub async fn compare_all<T: Target>(
    mut contestants: Vec<Contestant<'_, T>>,
    s: &Settings,
) -> anyhow::Result<Vec<Measured>> {
    for c in &mut contestants {
        c.target.sequential(s.warmup).await?;
        c.target.concurrent(s.warmup, s.concurrency).await?;
    }
    let n = contestants.len();
    let rounds = s.rounds.max(1);
    let mut accs: Vec<Acc> = (0..n).map(|_| Acc::default()).collect();
    for (phase, total) in [
        (Phase::Sequential, s.latency_calls),
        (Phase::Concurrent, s.throughput_calls),
    ] {
        for r in 0..rounds {
            let calls = share(total, rounds, r);
            for i in round_order(r, n) {
                contestants[i].round(phase, calls, s, &mut accs[i]).await?;
            }
        }
    }
    let done = |acc: Acc| Measured {
        cpu_sequential: acc.sequential.cpu(),
        cpu_concurrent: acc.concurrent.cpu(),
        latency: Latency::from_samples(acc.sequential.samples.times),
        throughput: Throughput::new(s.concurrency, acc.concurrent.samples),
    };
    Ok(accs.into_iter().map(done).collect())
}

/// The order of the contestants in round `r`: rotated by one each round.
pub(crate) fn round_order(r: usize, n: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |k| (r + k) % n)
}

/// Round `r`'s part of `total` calls spread over `rounds` rounds.
fn share(total: usize, rounds: usize, r: usize) -> usize {
    total / rounds + usize::from(r < total % rounds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_share_every_call() {
        let total: usize = (0..3).map(|r| share(2000, 3, r)).sum();
        assert_eq!(total, 2000);
        assert_eq!(share(10, 4, 0), 3);
        assert_eq!(share(10, 4, 3), 2);
    }

    #[test]
    fn each_round_starts_with_the_next_contestant() {
        let order = |r, n| round_order(r, n).collect::<Vec<_>>();
        assert_eq!(order(0, 2), [0, 1]);
        assert_eq!(order(1, 2), [1, 0]);
        assert_eq!(order(2, 3), [2, 0, 1]);
    }
}
