use super::*;
use crate::state::messages::PodTotals;
use crate::state::test_events::{PODS, endpoint, request_event, secs};

mod pods;

const GREET: &str = "/greet.GreetService/Greet";

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

    fn clock(&self, now: Instant) -> Clock {
        Clock { now, origin: self.t0 }
    }

    fn record(&mut self, pod: &str, ip: &str, latency_us: u64, at: Instant) {
        let clock = self.clock(at);
        self.stats
            .record("gw", request_event(0, pod, ip, latency_us), clock, false);
    }

    /// A summary from "gw" at `at`: cumulative (requests, errors, histogram) per pod.
    fn summary(&mut self, at: Instant, pods: &[(&str, &str, u64, u64, &[u64])]) {
        let totals = pods
            .iter()
            .map(|(name, ip, requests, errors, buckets)| PodTotals {
                name: (*name).into(),
                ip: (*ip).into(),
                requests: *requests,
                errors: *errors,
                latency_buckets: Some(buckets.to_vec()),
                // Every failure an UNAVAILABLE, every request a Greet through the ingress.
                error_codes: [(14, *errors)].into_iter().filter(|(_, n)| *n > 0).collect(),
                methods: [(
                    GREET.to_owned(),
                    Tally {
                        requests: *requests,
                        errors: *errors,
                    },
                )]
                .into_iter()
                .filter(|(_, n)| n.requests > 0)
                .collect(),
                ..PodTotals::default()
            })
            .collect();
        let clock = self.clock(at);
        self.stats.apply_summary("gw", totals, clock);
    }

    fn tick(&mut self, now: Instant) {
        let second = self.second(now);
        self.stats.tick(now, second);
    }

    fn rps(&self, now: Instant) -> f64 {
        self.stats.rps(now, now.saturating_duration_since(self.t0))
    }
}

/// Milliseconds to the nanosecond, for exact comparisons.
fn rounded(ms: Option<f64>) -> Option<f64> {
    ms.map(|ms| (ms * 1e6).round() / 1e6)
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
fn percentiles_come_from_the_latency_buckets() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    // Buckets: 1,000 µs in 896..1,024; 2,000 in 1,792..2,048; 3,000 in
    // 2,560..3,072; 10,000 in 8,192..10,240. One request each: the
    // nearest-rank bucket's upper end.
    for latency in [1000, 3000, 2000, 10_000] {
        counter.record("pod-a", "10.0.0.1", latency, t0);
    }
    let pod = &counter.stats.pods["pod-a"];
    assert_eq!(pod.latency_ms(50.0), Some(2.048));
    assert_eq!(pod.latency_ms(99.0), Some(10.24));
    assert_eq!(counter.stats.pods["pod-b"].latency_ms(50.0), None);
}

#[test]
fn latency_percentiles_cover_the_rate_window_only() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    for _ in 0..10 {
        counter.record("pod-a", "10.0.0.1", 1_000_000, t0);
    }
    for _ in 0..10 {
        counter.record("pod-a", "10.0.0.1", 1000, t0 + secs(11.0));
    }
    counter.tick(t0 + secs(11.0));
    let pod = &counter.stats.pods["pod-a"];
    // The slow second left the window; --once still reports it.
    assert_eq!(pod.latency_ms(100.0), Some(1.024));
    assert_eq!(pod.latency_since_reset_ms(100.0), Some(1_048.576));
}

#[test]
fn summaries_count_their_differences_exactly_and_spread_them_over_seconds() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    counter.stats.replace_totals("gw", &[], false, t0 + secs(0.5));
    // 0.5 s .. 1.5 s: pod-a 30 (2 failed, latencies in buckets 1 and 4), pod-b 10.
    counter.summary(
        t0 + secs(1.5),
        &[
            ("pod-a", "10.0.0.1", 30, 2, &[0, 10, 0, 0, 20]),
            ("pod-b", "10.0.0.2", 10, 0, &[0, 10]),
        ],
    );
    // 1.5 s .. 2.5 s: pod-a 30 more, pod-b none.
    counter.summary(
        t0 + secs(2.5),
        &[
            ("pod-a", "10.0.0.1", 60, 2, &[0, 10, 0, 0, 50]),
            ("pod-b", "10.0.0.2", 10, 0, &[0, 10]),
        ],
    );
    let (a, b) = (&counter.stats.pods["pod-a"], &counter.stats.pods["pod-b"]);
    assert_eq!((a.hits(), a.errors(), b.hits()), (60, 2, 10));
    assert_eq!((counter.stats.total(), counter.stats.errors()), (70, 2));
    let now = t0 + secs(2.5);
    assert_eq!((a.in_window(now), b.in_window(now)), (60, 10));
    assert_eq!(counter.rps(now), 28.0, "70 requests over the 2.5 s observed");
    // 40 over 0.5..1.5 s, half in second 0 and half in second 1; 30 over
    // 1.5..2.5 s, half in second 1 and half in second 2.
    assert_eq!(counter.stats.spark(2)[SPARK_SECONDS - 3..], [20, 35, 15]);
    // The 2 failures (0.5 s .. 1.5 s) the same way, for the chart's error series.
    assert_eq!(counter.stats.spark_errors(2)[SPARK_SECONDS - 3..], [1, 1, 0]);
    // Latencies: pod-a's 50 in bucket 4 (4..5 µs) and 10 in bucket 1.
    assert_eq!(rounded(a.latency_since_reset_ms(50.0)), Some(0.0044));
    assert_eq!(rounded(b.latency_since_reset_ms(50.0)), Some(0.0015));
    assert_eq!(a.error_codes, [(14, 2)].into(), "failures by code");
    assert!(b.error_codes.is_empty());
    let greets = |requests, errors| [(GREET.to_owned(), Tally { requests, errors })].into();
    assert_eq!((&a.methods, &b.methods), (&greets(60, 2), &greets(10, 0)), "by method");
}

#[test]
fn a_summary_spreads_over_every_second_it_covers_in_proportion() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    counter.stats.replace_totals("gw", &[], false, t0 + secs(0.5));
    // 40 requests over 0.5 .. 2.5 s: a quarter, a half and a quarter.
    counter.summary(t0 + secs(2.5), &[("pod-a", "10.0.0.1", 40, 0, &[])]);
    assert_eq!(counter.stats.spark(2)[SPARK_SECONDS - 3..], [10, 20, 10]);
}

#[test]
fn a_summary_after_a_snapshot_counts_from_the_snapshot_without_latencies_before_it() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    let snapshot = PodTotals {
        name: "pod-a".into(),
        ip: "10.0.0.1".into(),
        requests: 1_000,
        ..PodTotals::default()
    };
    counter.stats.replace_totals("gw", &[snapshot], true, t0);
    // The gateway's histogram covers all 1,010 requests since it started;
    // only 10 are new, and which latencies they had is not known yet.
    counter.summary(t0 + secs(0.25), &[("pod-a", "10.0.0.1", 1_010, 0, &[0, 1_010])]);
    let pod = &counter.stats.pods["pod-a"];
    assert_eq!((pod.hits(), pod.in_window(t0 + secs(0.25))), (10, 10));
    assert_eq!(pod.latency_since_reset_ms(50.0), None);
    counter.summary(t0 + secs(0.5), &[("pod-a", "10.0.0.1", 1_014, 0, &[0, 1_010, 0, 4])]);
    let pod = &counter.stats.pods["pod-a"];
    assert_eq!(pod.hits(), 14);
    let greets = [(GREET.to_owned(), Tally { requests: 4, errors: 0 })].into();
    assert_eq!(pod.methods, greets, "by method from the first summary's on, as codes");
    assert_eq!(
        rounded(pod.latency_since_reset_ms(50.0)),
        Some(0.0035),
        "the 4 new ones, in the 3 µs bucket"
    );
}

#[test]
fn a_snapshot_with_methods_is_their_exact_baseline_and_a_later_one_adds_the_rest() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    let snapshot = |requests| PodTotals {
        name: "pod-a".into(),
        ip: "10.0.0.1".into(),
        requests,
        methods: [(GREET.to_owned(), Tally { requests, errors: 0 })].into(),
        ..PodTotals::default()
    };
    counter.stats.replace_totals("gw", &[snapshot(1_000)], true, t0);
    counter.summary(t0 + secs(0.25), &[("pod-a", "10.0.0.1", 1_010, 0, &[])]);
    let greets = |requests| [(GREET.to_owned(), Tally { requests, errors: 0 })].into();
    assert_eq!(counter.stats.pods["pod-a"].methods, greets(10));
    // The final count (--once's GetState) adds what the last summary missed.
    counter
        .stats
        .replace_totals("gw", &[snapshot(1_017)], false, t0 + secs(0.4));
    assert_eq!(counter.stats.pods["pod-a"].methods, greets(17));
    assert_eq!(counter.stats.pods["pod-a"].hits(), 17);
}

#[test]
fn summaries_of_unnamed_endpoints_count_as_unattributed() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    counter.summary(
        t0,
        &[
            ("", "10.9.9.9", 5, 5, &[]),
            ("", "10.0.0.2", 3, 0, &[]),
            ("pod-x", "10.0.0.24", 1, 0, &[]),
        ],
    );
    assert_eq!(
        counter.stats.pods["pod-x"].ip, "10.0.0.24",
        "a new pod takes its IP from the summary"
    );
    assert_eq!(counter.stats.unattributed(), 5, "a Service address names no pod");
    assert_eq!(counter.stats.pods["pod-b"].hits(), 3, "a listed pod's IP names it");
    assert_eq!((counter.stats.total(), counter.stats.errors()), (9, 5));
}

#[test]
fn samples_reach_the_tail_without_being_counted() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    assert!(!counter.stats.tail_sampled);
    counter.stats.sample(request_event(9, "", "10.0.0.3", 700), t0);
    assert_eq!(counter.stats.tail.len(), 1);
    assert!(counter.stats.tail_sampled, "the tail says it is a sample");
    assert_eq!(counter.stats.tail[0].pod, "pod-c", "named through its IP");
    assert_eq!(counter.stats.total(), 0);
    assert_eq!(counter.stats.pods["pod-c"].in_window(t0), 0);
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
    assert_eq!(counter.stats.pods["pod-a"].latency_ms(50.0), Some(2.048));
    counter.record("pod-a", "10.0.0.1", 9000, t0);
    // Stale cache: computed fresh until the next tick.
    assert_eq!(counter.stats.pods["pod-a"].latency_ms(99.0), Some(10.24));
    counter.tick(t0);
    assert_eq!(counter.stats.pods["pod-a"].latency_ms(99.0), Some(10.24));
    assert_eq!(counter.stats.pods["pod-a"].latency_ms(50.0), Some(2.048));
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
    // The windows keep the requests of the last minute: 11 ..= 70.
    assert_eq!(counter.stats.recent.len(), 60);
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
        ..PodTotals::default()
    };
    // pod-a named in one total, known only by its IP in another.
    counter.stats.replace_totals(
        "gw",
        &[totals("pod-a", "10.0.0.1", 7, 2), totals("", "10.0.0.1", 5, 3)],
        false,
        t0,
    );
    let pod = &counter.stats.pods["pod-a"];
    assert_eq!((pod.hits(), pod.errors()), (12, 5));
    assert_eq!((counter.stats.total(), counter.stats.errors()), (12, 5));
}

#[test]
fn failures_by_code_come_from_raw_requests_and_summary_differences() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    let clock = counter.clock(t0);
    let mut failed = request_event(0, "pod-a", "10.0.0.1", 100);
    failed.grpc_code = 4;
    counter.stats.record("gw", failed, clock, false);
    assert_eq!(counter.stats.pods["pod-a"].error_codes, [(4, 1)].into());
    // A snapshot with failures: which codes they had is not known; the
    // next summaries add only what they add.
    let snapshot = PodTotals {
        name: "pod-b".into(),
        ip: "10.0.0.2".into(),
        requests: 50,
        errors: 5,
        ..PodTotals::default()
    };
    counter.stats.replace_totals("gw", &[snapshot], false, t0);
    counter.summary(t0 + secs(0.25), &[("pod-b", "10.0.0.2", 60, 7, &[])]);
    counter.summary(t0 + secs(0.5), &[("pod-b", "10.0.0.2", 70, 10, &[])]);
    assert_eq!(counter.stats.pods["pod-b"].error_codes, [(14, 3)].into(), "7 -> 10");
    assert_eq!(counter.stats.pods["pod-b"].errors(), 10, "the count itself is exact");
    counter.stats.reset();
    assert!(counter.stats.pods["pod-b"].error_codes.is_empty());
}
