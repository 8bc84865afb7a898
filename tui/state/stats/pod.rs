//! One pod's counters: hits and errors per gateway, the recent requests for
//! its rate, and its latency samples for p50/p99.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use super::{LATENCY_SAMPLES, RATE_WINDOW};
use crate::tui::state::messages::PodInfo;

/// One gateway's contribution to a pod's counts.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Counts {
    // Written by a snapshot that replaces a gateway's share.
    pub(super) total: u64,
    pub(super) errors: u64,
    /// `total` and `errors` at the last reset: hits are counted from there.
    base: u64,
    errors_base: u64,
}

impl Counts {
    pub(super) fn hits(&self) -> u64 {
        self.total.saturating_sub(self.base)
    }

    pub(super) fn errors(&self) -> u64 {
        self.errors.saturating_sub(self.errors_base)
    }

    pub(super) fn add(&mut self, failed: bool) {
        self.total += 1;
        if failed {
            self.errors += 1;
        }
    }

    pub(super) fn reset(&mut self) {
        self.base = self.total;
        self.errors_base = self.errors;
    }
}

#[derive(Clone, Debug)]
pub struct PodStats {
    pub name: String,
    pub ip: String,
    /// `None` when no pod source has listed it (seen only in requests).
    pub ready: Option<bool>,
    /// Listed once, no longer: shown as gone instead of dropped.
    pub gone: bool,
    /// What the pod source says beyond readiness (kube).
    pub info: Option<PodInfo>,
    pub(super) by_gateway: BTreeMap<String, Counts>,
    latencies_us: VecDeque<u64>,
    /// p50 and p99 of `latencies_us`, refreshed by [`super::Stats::tick`] so a frame
    /// does not sort every pod's samples.
    percentiles_us: Option<(u64, u64)>,
    percentiles_stale: bool,
    recent: VecDeque<Instant>,
    pub last_hit: Option<Instant>,
    pub changed_at: Option<Instant>,
}

impl PodStats {
    pub(super) fn new(name: String, ip: String) -> Self {
        PodStats {
            name,
            ip,
            ready: None,
            gone: false,
            info: None,
            by_gateway: BTreeMap::new(),
            latencies_us: VecDeque::new(),
            percentiles_us: None,
            percentiles_stale: false,
            recent: VecDeque::new(),
            last_hit: None,
            changed_at: None,
        }
    }

    pub fn hits(&self) -> u64 {
        self.by_gateway.values().map(Counts::hits).sum()
    }

    pub fn errors(&self) -> u64 {
        self.by_gateway.values().map(Counts::errors).sum()
    }

    /// Requests in the rate window ending at `now`.
    pub fn in_window(&self, now: Instant) -> usize {
        self.recent
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < RATE_WINDOW)
            .count()
    }

    /// Latency percentile (0..=100) over the recent samples, in milliseconds.
    /// p50 and p99 come from the cache while it is fresh.
    pub fn latency_ms(&self, percentile: f64) -> Option<f64> {
        let cached = match (self.percentiles_stale, self.percentiles_us) {
            (false, Some((p50, _))) if percentile == 50.0 => Some(p50),
            (false, Some((_, p99))) if percentile == 99.0 => Some(p99),
            _ => percentile_us(&self.latencies_us, percentile),
        };
        cached.map(|us| us as f64 / 1000.0)
    }

    pub(super) fn refresh_percentiles(&mut self) {
        if self.percentiles_stale {
            let p50 = percentile_us(&self.latencies_us, 50.0);
            let p99 = percentile_us(&self.latencies_us, 99.0);
            self.percentiles_us = p50.zip(p99);
            self.percentiles_stale = false;
        }
    }

    pub(super) fn record(&mut self, gateway: &str, now: Instant, latency_us: u64, failed: bool) {
        match self.by_gateway.get_mut(gateway) {
            Some(counts) => counts.add(failed),
            None => self.by_gateway.entry(gateway.to_owned()).or_default().add(failed),
        }
        if !failed {
            if self.latencies_us.len() == LATENCY_SAMPLES {
                self.latencies_us.pop_front();
            }
            self.latencies_us.push_back(latency_us);
            self.percentiles_stale = true;
        }
        self.recent.push_back(now);
        self.last_hit = Some(now);
        self.changed_at = Some(now);
    }

    pub(super) fn prune(&mut self, now: Instant) {
        prune_window(&mut self.recent, now);
    }

    pub(super) fn reset(&mut self) {
        self.by_gateway.values_mut().for_each(Counts::reset);
        self.latencies_us.clear();
        self.percentiles_us = None;
        self.percentiles_stale = false;
        self.recent.clear();
        self.last_hit = None;
        self.changed_at = None;
    }
}

/// Drops the instants that slid out of the rate window ending at `now`.
pub(super) fn prune_window(recent: &mut VecDeque<Instant>, now: Instant) {
    while recent
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= RATE_WINDOW)
    {
        recent.pop_front();
    }
}

/// The nearest-rank percentile of `samples`.
pub fn percentile_us(samples: &VecDeque<u64>, percentile: f64) -> Option<u64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted: Vec<u64> = samples.iter().copied().collect();
    sorted.sort_unstable();
    let rank = ((percentile / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn prune_drops_what_left_the_window_and_keeps_the_rest() {
        let t0 = Instant::now();
        let mut pod = PodStats::new("pod-a".into(), "10.0.0.1".into());
        for at in [0.0, 5.0, 12.0] {
            pod.record("gw", t0 + Duration::from_secs_f64(at), 100, false);
        }
        pod.prune(t0 + Duration::from_secs_f64(12.5));
        assert_eq!(pod.recent.len(), 2, "the request 12.5 s old is gone");
        assert_eq!(pod.hits(), 3, "pruning the window is not forgetting hits");
    }

    #[test]
    fn cached_percentiles_answer_only_p50_and_p99() {
        let t0 = Instant::now();
        let mut pod = PodStats::new("pod-a".into(), "10.0.0.1".into());
        for latency_us in 1..=1000 {
            pod.record("gw", t0, latency_us, false);
        }
        pod.refresh_percentiles();
        assert_eq!(pod.latency_ms(50.0), Some(0.5));
        assert_eq!(pod.latency_ms(99.0), Some(0.99));
        // Any other percentile is computed, not taken from the cache.
        assert_eq!(pod.latency_ms(100.0), Some(1.0));
        assert_eq!(pod.latency_ms(90.0), Some(0.9));
    }
}
