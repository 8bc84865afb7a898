//! The counters: per-pod hits and errors (kept per gateway, so one gateway's
//! snapshot can replace its own share), rates over a sliding window,
//! latency percentiles, the per-second series and Jain's fairness index.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::messages::{PodInfo, PodTotals, Request};
use crate::common::Mode;

/// Window of the per-pod and total request rates.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Seconds of history in the RPS sparkline.
pub const SPARK_SECONDS: usize = 60;
/// Recent requests kept for the event tail.
pub const TAIL_LEN: usize = 200;
/// Latency samples kept per pod for p50/p99.
pub const LATENCY_SAMPLES: usize = 1024;
/// A value that changed this recently is highlighted.
pub const HIGHLIGHT_FOR: Duration = Duration::from_millis(1000);

/// One gateway's contribution to a pod's counts.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    total: u64,
    errors: u64,
    /// `total` and `errors` at the last reset: hits are counted from there.
    base: u64,
    errors_base: u64,
}

impl Counts {
    fn hits(&self) -> u64 {
        self.total.saturating_sub(self.base)
    }

    fn errors(&self) -> u64 {
        self.errors.saturating_sub(self.errors_base)
    }

    fn add(&mut self, failed: bool) {
        self.total += 1;
        if failed {
            self.errors += 1;
        }
    }

    fn reset(&mut self) {
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
    by_gateway: BTreeMap<String, Counts>,
    latencies_us: VecDeque<u64>,
    /// p50 and p99 of `latencies_us`, refreshed by [`Stats::tick`] so a frame
    /// does not sort every pod's samples.
    percentiles_us: Option<(u64, u64)>,
    percentiles_stale: bool,
    recent: VecDeque<Instant>,
    pub last_hit: Option<Instant>,
    pub changed_at: Option<Instant>,
}

impl PodStats {
    fn new(name: String, ip: String) -> Self {
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

    fn refresh_percentiles(&mut self) {
        if self.percentiles_stale {
            let p50 = percentile_us(&self.latencies_us, 50.0);
            let p99 = percentile_us(&self.latencies_us, 99.0);
            self.percentiles_us = p50.zip(p99);
            self.percentiles_stale = false;
        }
    }

    fn record(&mut self, gateway: &str, now: Instant, latency_us: u64, failed: bool) {
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

    fn prune(&mut self, now: Instant) {
        prune_window(&mut self.recent, now);
    }

    fn reset(&mut self) {
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
fn prune_window(recent: &mut VecDeque<Instant>, now: Instant) {
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

/// Jain's fairness index of `counts`: 1.0 when even, 1/n when one takes all.
/// `None` with fewer than two values or nothing counted.
pub fn jain_index(counts: &[f64]) -> Option<f64> {
    let sum: f64 = counts.iter().sum();
    let squares: f64 = counts.iter().map(|c| c * c).sum();
    if counts.len() < 2 || squares == 0.0 {
        return None;
    }
    Some(sum * sum / (counts.len() as f64 * squares))
}

/// One completed request, for the tail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailEntry {
    pub at: Instant,
    pub pod: String,
    pub mode: Option<Mode>,
    pub latency_us: u64,
    pub grpc_code: i32,
    pub error: String,
}

/// Everything the counters show; cloned to freeze the view.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Keyed by pod name (or IP when the name is unknown).
    pub pods: BTreeMap<String, PodStats>,
    /// Requests per whole second since the app's origin, for the sparkline.
    per_second: VecDeque<(u64, u64)>,
    pub tail: VecDeque<TailEntry>,
    recent: VecDeque<Instant>,
    /// Failed requests no pod can be named for (sticky to a dead Service,
    /// no endpoints), per gateway: counted in totals, never shown as a pod.
    unattributed: BTreeMap<String, Counts>,
}

impl Stats {
    /// Requests counted since the last reset.
    pub fn total(&self) -> u64 {
        self.pods.values().map(PodStats::hits).sum::<u64>() + self.unattributed()
    }

    pub fn errors(&self) -> u64 {
        self.pods.values().map(PodStats::errors).sum::<u64>()
            + self.unattributed.values().map(Counts::errors).sum::<u64>()
    }

    /// Failed requests that named no pod.
    pub fn unattributed(&self) -> u64 {
        self.unattributed.values().map(Counts::hits).sum()
    }

    /// The key of the pod a request or total belongs to: its name, else the
    /// pod listed with that IP; `None` when nothing names a pod.
    fn attribute(&self, name: &str, ip: &str) -> Option<String> {
        if !name.is_empty() {
            return Some(name.to_owned());
        }
        if ip.is_empty() {
            return None;
        }
        self.pods.values().find(|p| p.ip == ip).map(|p| p.name.clone())
    }

    pub fn rps(&self, now: Instant, observed_for: Duration) -> f64 {
        let in_window = self
            .recent
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < RATE_WINDOW)
            .count();
        in_window as f64 / observed_for.clamp(Duration::from_secs(1), RATE_WINDOW).as_secs_f64()
    }

    /// Requests per second for the last `SPARK_SECONDS` seconds up to
    /// `now_second`, oldest first (seconds before the start count 0).
    pub fn spark(&self, now_second: u64) -> Vec<u64> {
        (0..SPARK_SECONDS as u64)
            .rev()
            .map(|back| {
                now_second.checked_sub(back).map_or(0, |s| {
                    self.per_second
                        .iter()
                        .find(|(second, _)| *second == s)
                        .map_or(0, |(_, n)| *n)
                })
            })
            .collect()
    }

    /// The pods that can take traffic: listed and not gone, or, when nothing
    /// lists pods, every pod that answered.
    pub fn live_pods(&self) -> impl Iterator<Item = &PodStats> {
        self.pods.values().filter(|p| !p.gone && p.ready != Some(false))
    }

    /// Jain's index over the live pods' requests in the rate window.
    pub fn fairness(&self, now: Instant) -> Option<f64> {
        let counts: Vec<f64> = self.live_pods().map(|p| p.in_window(now) as f64).collect();
        jain_index(&counts)
    }

    /// The live pod with the most requests in the window (then most hits).
    pub fn busiest(&self, now: Instant) -> Option<&PodStats> {
        self.live_pods().max_by_key(|p| (p.in_window(now), p.hits()))
    }

    fn pod_mut(&mut self, name: &str, ip: &str) -> &mut PodStats {
        // A pod first known only by IP (DNS discovery) gets its name on its
        // first answer: re-key it instead of showing it twice.
        if !name.is_empty()
            && !self.pods.contains_key(name)
            && !ip.is_empty()
            && let Some(mut by_ip) = self.pods.remove(ip)
        {
            by_ip.name = name.to_owned();
            self.pods.insert(name.to_owned(), by_ip);
        }
        let key = if name.is_empty() { ip } else { name };
        let pod = self
            .pods
            .entry(key.to_owned())
            .or_insert_with(|| PodStats::new(key.to_owned(), ip.to_owned()));
        if pod.ip.is_empty() && !ip.is_empty() {
            ip.clone_into(&mut pod.ip);
        }
        pod
    }

    /// Counts one request `gateway` reported, at `now` (whole `second` since
    /// the origin, for the sparkline).
    pub(super) fn record(&mut self, gateway: &str, request: Request, now: Instant, second: u64) {
        let failed = request.grpc_code != 0;
        let pod_key = match self.attribute(&request.name, &request.ip) {
            Some(key) => {
                self.pod_mut(&key, &request.ip)
                    .record(gateway, now, request.latency_us, failed);
                key
            }
            None => {
                self.unattributed.entry(gateway.to_owned()).or_default().add(failed);
                String::new()
            }
        };
        self.recent.push_back(now);
        match self.per_second.back_mut() {
            Some((s, n)) if *s == second => *n += 1,
            _ => self.per_second.push_back((second, 1)),
        }
        if self.tail.len() == TAIL_LEN {
            self.tail.pop_back();
        }
        self.tail.push_front(TailEntry {
            at: now,
            pod: pod_key,
            mode: request.mode,
            latency_us: request.latency_us,
            grpc_code: request.grpc_code,
            error: request.error,
        });
    }

    /// `gateway`'s totals replace what it contributed before: they include
    /// whatever this view missed while disconnected. With `from_here` they
    /// count as already seen (counting starts now).
    pub(super) fn replace_totals(&mut self, gateway: &str, totals: &[PodTotals], from_here: bool) {
        let contributions = self
            .pods
            .values_mut()
            .filter_map(|pod| pod.by_gateway.get_mut(gateway))
            .chain(self.unattributed.get_mut(gateway));
        for counts in contributions {
            counts.total = 0;
            counts.errors = 0;
        }
        for pod in totals {
            let counts = match self.attribute(&pod.name, &pod.ip) {
                Some(key) => self
                    .pod_mut(&key, &pod.ip)
                    .by_gateway
                    .entry(gateway.to_owned())
                    .or_default(),
                None => self.unattributed.entry(gateway.to_owned()).or_default(),
            };
            // Several totals can land on one entry (a pod named in one, known
            // by its IP in another): they add up.
            counts.total += pod.requests;
            counts.errors += pod.errors;
            if from_here {
                counts.reset();
            }
        }
    }

    /// Pods in `pods` are listed (added if new); listed pods missing from it
    /// are gone. `keep_info`: the list comes from a pod source whose details
    /// (phase, node, ...) are shown.
    pub(super) fn list_pods(&mut self, pods: Vec<PodInfo>, keep_info: bool) {
        let mut listed = HashSet::with_capacity(pods.len());
        for info in pods {
            let ip = info.ip.clone();
            let mut name = info.name.clone();
            // A source that knows only the IP (DNS) lists a pod that has
            // since answered under its name: keep the named entry.
            if name == ip
                && let Some(known) = self.pods.values().find(|p| p.ip == ip)
            {
                name.clone_from(&known.name);
            }
            let pod = self.pod_mut(&name, &ip);
            pod.ready = Some(info.ready);
            pod.gone = false;
            if !ip.is_empty() {
                pod.ip = ip;
            }
            if keep_info {
                pod.info = Some(info);
            }
            listed.insert(name);
        }
        for (name, pod) in &mut self.pods {
            if pod.ready.is_some() && !listed.contains(name) {
                pod.gone = true;
            }
        }
    }

    /// Drops what slid out of the rate windows and refreshes cached percentiles.
    pub(super) fn tick(&mut self, now: Instant, now_second: u64) {
        for pod in self.pods.values_mut() {
            pod.prune(now);
            pod.refresh_percentiles();
        }
        prune_window(&mut self.recent, now);
        let first = now_second.saturating_sub(SPARK_SECONDS as u64);
        while self.per_second.front().is_some_and(|(s, _)| *s < first) {
            self.per_second.pop_front();
        }
    }

    /// Counters restart at zero; gone pods are dropped.
    pub(super) fn reset(&mut self) {
        self.pods.retain(|_, p| !p.gone);
        for pod in self.pods.values_mut() {
            pod.reset();
        }
        self.unattributed.values_mut().for_each(Counts::reset);
        self.per_second.clear();
        self.tail.clear();
        self.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::state::test_events::{PODS, endpoint, request_event, secs};

    /// Stats listing [`PODS`], its clock starting at `t0`.
    struct Counter {
        stats: Stats,
        t0: Instant,
    }

    impl Counter {
        fn new(t0: Instant) -> Self {
            let mut stats = Stats::default();
            stats.list_pods(PODS.iter().map(|(n, ip, _)| endpoint(n, ip)).collect(), false);
            Counter { stats, t0 }
        }

        fn second(&self, at: Instant) -> u64 {
            at.saturating_duration_since(self.t0).as_secs()
        }

        fn record(&mut self, pod: &str, ip: &str, latency_us: u64, at: Instant) {
            let second = self.second(at);
            self.stats
                .record("gw", request_event(0, pod, ip, latency_us), at, second);
        }

        fn tick(&mut self, now: Instant) {
            let second = self.second(now);
            self.stats.tick(now, second);
        }

        fn rps(&self, now: Instant) -> f64 {
            self.stats.rps(now, now.saturating_duration_since(self.t0))
        }
    }

    #[test]
    fn rps_is_counted_over_a_sliding_window() {
        let t0 = Instant::now();
        let mut counter = Counter::new(t0);
        // 5 requests per second on pod-a for 20 seconds.
        for i in 0..100u64 {
            counter.record("pod-a", "10.0.0.1", 100, t0 + secs(i as f64 * 0.2));
        }
        // The window (9.9 s, 19.9 s] holds the requests at 10.0 ..= 19.8 s.
        let now = t0 + secs(19.9);
        counter.tick(now);
        let pod = &counter.stats.pods["pod-a"];
        assert_eq!(pod.in_window(now), 50);
        assert_eq!(counter.rps(now), 5.0);
        // Ten seconds of silence empties the window.
        let later = now + RATE_WINDOW;
        counter.tick(later);
        assert_eq!(counter.stats.pods["pod-a"].in_window(later), 0);
        assert_eq!(counter.rps(later), 0.0);
        assert_eq!(counter.stats.pods["pod-a"].hits(), 100);
    }

    #[test]
    fn rps_at_start_up_divides_by_the_time_observed() {
        let t0 = Instant::now();
        let mut counter = Counter::new(t0);
        for i in 0..10 {
            counter.record("pod-a", "10.0.0.1", 100, t0 + secs(0.1 * i as f64));
        }
        assert_eq!(counter.rps(t0 + secs(2.0)), 5.0);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: VecDeque<u64> = (1..=100).collect();
        assert_eq!(percentile_us(&samples, 50.0), Some(50));
        assert_eq!(percentile_us(&samples, 99.0), Some(99));
        assert_eq!(percentile_us(&samples, 100.0), Some(100));
        assert_eq!(percentile_us(&VecDeque::from([7]), 99.0), Some(7));
        assert_eq!(percentile_us(&VecDeque::new(), 50.0), None);

        let t0 = Instant::now();
        let mut counter = Counter::new(t0);
        for latency in [1000, 3000, 2000, 10_000] {
            counter.record("pod-a", "10.0.0.1", latency, t0);
        }
        let pod = &counter.stats.pods["pod-a"];
        assert_eq!(pod.latency_ms(50.0), Some(2.0));
        assert_eq!(pod.latency_ms(99.0), Some(10.0));
        assert_eq!(counter.stats.pods["pod-b"].latency_ms(50.0), None);
    }

    #[test]
    fn latency_samples_are_bounded() {
        let t0 = Instant::now();
        let mut counter = Counter::new(t0);
        for i in 0..(LATENCY_SAMPLES as u64 + 10) {
            counter.record("pod-a", "10.0.0.1", if i < 10 { 1_000_000 } else { 1000 }, t0);
        }
        // The ten slow samples have been pushed out.
        assert_eq!(counter.stats.pods["pod-a"].latency_ms(100.0), Some(1.0));
    }

    #[test]
    fn fairness_tells_stuck_from_even() {
        assert_eq!(jain_index(&[30.0, 0.0, 0.0]).map(|j| (j * 1000.0).round()), Some(333.0));
        assert_eq!(jain_index(&[10.0, 10.0, 10.0]), Some(1.0));
        assert_eq!(jain_index(&[10.0]), None);
        assert_eq!(jain_index(&[0.0, 0.0]), None);

        let t0 = Instant::now();
        let mut counter = Counter::new(t0);
        for _ in 1..=30 {
            counter.record("pod-b", "10.0.0.2", 100, t0);
        }
        assert_eq!(counter.stats.busiest(t0).map(|p| p.name.as_str()), Some("pod-b"));
        let stuck = counter.stats.fairness(t0).unwrap();
        assert!((stuck - 1.0 / 3.0).abs() < 1e-9, "{stuck}");
    }

    #[test]
    fn spark_series_is_sixty_seconds_newest_last() {
        let t0 = Instant::now();
        let mut counter = Counter::new(t0);
        counter.record("pod-a", "10.0.0.1", 100, t0 + secs(0.5));
        counter.record("pod-a", "10.0.0.1", 100, t0 + secs(2.5));
        counter.record("pod-a", "10.0.0.1", 100, t0 + secs(2.7));
        let series = counter.stats.spark(2);
        assert_eq!(series.len(), SPARK_SECONDS);
        assert_eq!(series[SPARK_SECONDS - 3..], [1, 0, 2]);
        assert_eq!(series[..SPARK_SECONDS - 3].iter().sum::<u64>(), 0);
    }

    #[test]
    fn percentiles_are_cached_per_frame_and_follow_new_samples() {
        let t0 = Instant::now();
        let mut counter = Counter::new(t0);
        for latency in [1000, 2000, 3000] {
            counter.record("pod-a", "10.0.0.1", latency, t0);
        }
        counter.tick(t0);
        assert_eq!(counter.stats.pods["pod-a"].latency_ms(50.0), Some(2.0));
        counter.record("pod-a", "10.0.0.1", 9000, t0);
        // Stale cache: computed fresh until the next tick.
        assert_eq!(counter.stats.pods["pod-a"].latency_ms(99.0), Some(9.0));
        counter.tick(t0);
        assert_eq!(counter.stats.pods["pod-a"].latency_ms(99.0), Some(9.0));
        assert_eq!(counter.stats.pods["pod-a"].latency_ms(50.0), Some(2.0));
    }
}
