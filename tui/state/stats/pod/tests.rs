use std::time::Duration;

use super::*;

#[test]
fn prune_drops_what_left_the_window_and_keeps_the_rest() {
    let t0 = Instant::now();
    let mut pod = PodStats::new("pod-a".into(), "10.0.0.1".into());
    for at in [0, 15, 62] {
        pod.record("gw", t0 + Duration::from_secs(at), at, 100, 0);
    }
    let forty = Tally {
        requests: 40,
        errors: 4,
    };
    pod.counted(t0 + Duration::from_secs(62), 62, forty, &[0, 40]);
    let now = t0 + Duration::from_secs_f64(62.5);
    pod.prune(now, 62);
    assert_eq!(
        pod.recent.len(),
        2,
        "the request 62.5 s old is gone; the two at 62 s share one entry"
    );
    assert_eq!(pod.hits(), 3, "pruning the window is not forgetting hits");
    assert_eq!(pod.latency_window.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [15, 62]);
    assert_eq!(pod.latency_total.iter().sum::<u64>(), 43, "since reset keeps all");
    // The same counts over each window.
    assert_eq!((pod.in_window(now), pod.errors_in_window(now)), (41, 4));
    pod.set_window(Window::Minute);
    assert_eq!((pod.in_window(now), pod.errors_in_window(now)), (42, 4));
    pod.set_window(Window::SinceReset);
    assert_eq!(
        (pod.in_window(now), pod.errors_in_window(now)),
        (3, 0),
        "hits and errors"
    );
}

#[test]
fn requests_within_50_ms_share_an_entry_and_all_count() {
    let t0 = Instant::now();
    let mut pod = PodStats::new("pod-a".into(), "10.0.0.1".into());
    for ms in 0..1_000 {
        pod.record(
            "gw",
            t0 + Duration::from_millis(ms),
            0,
            100,
            if ms % 10 == 0 { 14 } else { 0 },
        );
    }
    assert_eq!(pod.recent.len(), 20, "one entry per 50 ms");
    let now = t0 + Duration::from_secs(1);
    assert_eq!((pod.in_window(now), pod.errors_in_window(now)), (1_000, 100));
}

#[test]
fn percentiles_come_from_the_window_and_since_reset_from_all() {
    let t0 = Instant::now();
    let mut pod = PodStats::new("pod-a".into(), "10.0.0.1".into());
    // Second 0: 100 slow requests (8,192..10,240 µs); second 20: 100 fast (4 µs).
    let mut slow = vec![0; bucket_of(9_000) + 1];
    slow[bucket_of(9_000)] = 100;
    let hundred = Tally {
        requests: 100,
        errors: 0,
    };
    pod.counted(t0, 0, hundred, &slow);
    pod.counted(t0 + Duration::from_secs(20), 20, hundred, &[0, 0, 0, 0, 100]);
    pod.prune(t0 + Duration::from_secs(20), 20);
    pod.refresh_percentiles();
    let ms = |v: Option<f64>| v.map(|ms| (ms * 1e6).round() / 1e6);
    assert_eq!(
        ms(pod.latency_ms(50.0)),
        Some(0.0045),
        "only the fast second is in the window"
    );
    assert_eq!(ms(pod.latency_ms(99.0)), Some(0.00499));
    assert_eq!(ms(pod.latency_since_reset_ms(50.0)), Some(0.005));
    assert_eq!(ms(pod.latency_since_reset_ms(99.0)), Some(10.19904));
    // Any other percentile is computed, not taken from the cache.
    assert_eq!(ms(pod.latency_ms(100.0)), Some(0.005));
}
