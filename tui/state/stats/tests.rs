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
    // Two pods are enough to judge: even, or one taking all (1/n).
    assert_eq!(jain_index(&[10.0, 10.0]), Some(1.0));
    assert_eq!(jain_index(&[10.0, 0.0]), Some(0.5));

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

#[test]
fn a_request_exactly_one_window_old_no_longer_counts() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    let at = t0 + secs(1.0);
    counter.record("pod-a", "10.0.0.1", 100, at);
    // No tick in between: the window itself excludes it, not pruning.
    assert_eq!(counter.rps(at + RATE_WINDOW - secs(0.001)), 0.1);
    assert_eq!(counter.rps(at + RATE_WINDOW), 0.0);
    let pod = &counter.stats.pods["pod-a"];
    assert_eq!(pod.in_window(at + RATE_WINDOW - secs(0.001)), 1);
    assert_eq!(pod.in_window(at + RATE_WINDOW), 0);
}

#[test]
fn a_pod_first_known_without_an_ip_takes_the_first_one_reported() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    counter.stats.list_pods(vec![endpoint("pod-z", "")], true);
    assert_eq!(counter.stats.pods["pod-z"].ip, "");
    counter.record("pod-z", "10.0.0.26", 100, t0);
    assert_eq!(counter.stats.pods["pod-z"].ip, "10.0.0.26");
}

#[test]
fn the_pod_sources_ip_is_not_moved_by_what_a_request_reports() {
    // The pod source (kube) is authoritative for a listed pod, as for readiness.
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    counter.record("pod-a", "192.168.7.7", 100, t0);
    assert_eq!(counter.stats.pods["pod-a"].ip, "10.0.0.1");
    assert_eq!(counter.stats.pods["pod-a"].hits(), 1);
}

#[test]
fn tick_keeps_the_rate_window_and_the_last_minute_of_seconds_only() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    // One request a second for 71 seconds: seconds 0 ..= 70.
    for s in 0..=70 {
        counter.record("pod-a", "10.0.0.1", 100, t0 + secs(s as f64));
    }
    let now = t0 + secs(70.5);
    counter.tick(now);
    // The sparkline keeps seconds 10 ..= 70 (60 back from now), no more.
    assert_eq!(counter.stats.per_second.len(), 61);
    assert_eq!(counter.stats.per_second.front(), Some(&(10, 1)));
    // The rate window keeps the requests of the last 10 s: 61 ..= 70.
    assert_eq!(counter.stats.recent.len(), 10);
    counter.tick(now + secs(3600.0));
    assert!(counter.stats.per_second.is_empty() && counter.stats.recent.is_empty());
}

#[test]
fn snapshot_totals_carry_errors_and_add_up_on_one_pod() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    let totals = |name: &str, ip: &str, requests, errors| PodTotals {
        name: name.into(),
        ip: ip.into(),
        requests,
        errors,
    };
    // pod-a named in one total, known only by its IP in another.
    counter.stats.replace_totals(
        "gw",
        &[totals("pod-a", "10.0.0.1", 7, 2), totals("", "10.0.0.1", 5, 3)],
        false,
    );
    let pod = &counter.stats.pods["pod-a"];
    assert_eq!((pod.hits(), pod.errors()), (12, 5));
    assert_eq!((counter.stats.total(), counter.stats.errors()), (12, 5));
}

#[test]
fn a_listed_pod_follows_its_ip_in_the_pod_source() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    counter.stats.list_pods(vec![endpoint("pod-a", "10.0.0.9")], true);
    assert_eq!(counter.stats.pods["pod-a"].ip, "10.0.0.9");
    // A listing without an IP (a pending pod) does not erase the known one.
    counter.stats.list_pods(vec![endpoint("pod-a", "")], true);
    assert_eq!(counter.stats.pods["pod-a"].ip, "10.0.0.9");
}
