//! `r`: a clean slate that stays clean while the gateways keep reporting
//! what they counted before it.

use super::*;
use crate::state::test_events::{endpoints_changed, summary};

/// Latencies of `n` requests of about 1 ms (bucket 35: 896..1,024 µs).
fn one_ms(n: u64) -> Vec<u64> {
    let mut buckets = vec![0; 36];
    buckets[35] = n;
    buckets
}

#[test]
fn reset_forgets_a_gone_pod_though_summaries_still_name_it() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Balanced, &PODS, 0), t0);
    let (a, b, c) = (one_ms(100), one_ms(100), one_ms(139));
    let before: [(&str, &str, u64, u64, &[u64]); 3] = [
        ("pod-a", "10.0.0.1", 100, 0, &a),
        ("pod-b", "10.0.0.2", 100, 0, &b),
        ("pod-c", "10.0.0.3", 139, 0, &c),
    ];
    app.update(summary(&before), t0 + secs(5.0));
    // pod-c is killed: the gateway's endpoint set drops it.
    app.update(
        endpoints_changed(1, &[("pod-a", "10.0.0.1"), ("pod-b", "10.0.0.2")]),
        t0 + secs(5.5),
    );
    assert!(app.stats().pods["pod-c"].gone);
    let t1 = t0 + secs(6.0);
    key(&mut app, 'r', t1);
    // The gateway still reports pod-c's lifetime totals in every summary.
    let (a, b) = (one_ms(110), one_ms(110));
    let after: [(&str, &str, u64, u64, &[u64]); 3] = [
        ("pod-a", "10.0.0.1", 110, 0, &a),
        ("pod-b", "10.0.0.2", 110, 0, &b),
        ("pod-c", "10.0.0.3", 139, 0, &c),
    ];
    for i in 1..=4 {
        app.update(summary(&after), t1 + secs(0.25 * f64::from(i)));
    }
    let now = t1 + secs(1.0);
    app.tick(now);
    assert_eq!(
        hits(&app),
        [("pod-a".into(), 10), ("pod-b".into(), 10)],
        "pod-c stays forgotten"
    );
    assert_eq!(app.stats().total(), 20);
    assert_eq!(app.stats().window(now).requests, 20, "no lifetime total in the window");
    assert!(app.stats().spark(1).iter().all(|n| *n <= 20), "nor on the chart");
    // Listed again without it, summarised again: still forgotten.
    app.update(
        endpoints_changed(2, &[("pod-a", "10.0.0.1"), ("pod-b", "10.0.0.2")]),
        now,
    );
    app.update(summary(&after), now + secs(0.25));
    assert!(!app.stats().pods.contains_key("pod-c"));
    // A snapshot after a reconnect (its totals name pod-c, its endpoints
    // do not) does not bring it back either.
    let GatewayEvent::Snapshot(mut reconnect) = (match snapshot(
        Mode::Balanced,
        &[
            ("pod-a", "10.0.0.1", 110),
            ("pod-b", "10.0.0.2", 110),
            ("pod-c", "10.0.0.3", 139),
        ],
        9,
    ) {
        AppEvent::Gateway { event, .. } => event,
        other => panic!("not a gateway event: {other:?}"),
    }) else {
        panic!("not a snapshot")
    };
    reconnect.endpoints.truncate(2);
    app.update(gw(GatewayEvent::Snapshot(reconnect)), now + secs(0.5));
    assert_eq!(hits(&app), [("pod-a".into(), 10), ("pod-b".into(), 10)]);
}

#[test]
fn a_forgotten_pod_that_serves_again_comes_back_with_only_its_new_requests() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Balanced, &PODS, 0), t0);
    let c = one_ms(139);
    app.update(summary(&[("pod-c", "10.0.0.3", 139, 0, &c)]), t0 + secs(1.0));
    app.update(
        endpoints_changed(1, &[("pod-a", "10.0.0.1"), ("pod-b", "10.0.0.2")]),
        t0 + secs(1.5),
    );
    key(&mut app, 'r', t0 + secs(2.0));
    app.update(endpoints_changed(2, &PODS.map(|(n, ip, _)| (n, ip))), t0 + secs(2.5));
    let c = one_ms(142);
    app.update(summary(&[("pod-c", "10.0.0.3", 142, 0, &c)]), t0 + secs(3.0));
    let pod = &app.stats().pods["pod-c"];
    assert!(!pod.gone);
    assert_eq!((pod.hits(), pod.in_window(t0 + secs(3.0))), (3, 3));
}

#[test]
fn latency_percentiles_keep_working_after_a_reset() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Balanced, &PODS, 0), t0);
    // Summaries every 250 ms for 30 s, 10 requests of about 1 ms each.
    let mut requests = 0;
    let mut at = t0;
    for _ in 0..120 {
        requests += 10;
        at += secs(0.25);
        app.update(summary(&[("pod-a", "10.0.0.1", requests, 0, &one_ms(requests))]), at);
        app.tick(at);
    }
    let before = app.stats().pods["pod-a"].latency_ms(50.0);
    assert!(before.is_some_and(|ms| (0.896..=1.024).contains(&ms)), "{before:?}");
    key(&mut app, 'r', at);
    for _ in 0..8 {
        requests += 10;
        at += secs(0.25);
        app.update(summary(&[("pod-a", "10.0.0.1", requests, 0, &one_ms(requests))]), at);
        app.tick(at);
    }
    let pod = &app.stats().pods["pod-a"];
    assert_eq!(pod.hits(), 80);
    for percentile in [50.0, 99.0] {
        let ms = pod.latency_ms(percentile);
        assert!(
            ms.is_some_and(|ms| (0.896..=1.024).contains(&ms)),
            "p{percentile}: {ms:?}"
        );
    }
}

#[test]
fn a_gone_pods_last_requests_reported_after_the_reset_do_not_bring_it_back() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Balanced, &PODS, 0), t0);
    let c = one_ms(139);
    app.update(summary(&[("pod-c", "10.0.0.3", 139, 0, &c)]), t0 + secs(1.0));
    app.update(
        endpoints_changed(1, &[("pod-a", "10.0.0.1"), ("pod-b", "10.0.0.2")]),
        t0 + secs(1.2),
    );
    key(&mut app, 'r', t0 + secs(1.3));
    // Requests it answered just before it died, in the next summaries.
    let c = one_ms(141);
    for i in 1..=3 {
        app.update(
            summary(&[("pod-c", "10.0.0.3", 141, 0, &c)]),
            t0 + secs(1.3 + 0.25 * f64::from(i)),
        );
    }
    let now = t0 + secs(2.1);
    assert!(!app.stats().pods.contains_key("pod-c"), "still forgotten");
    assert_eq!(app.stats().total(), 0);
    assert_eq!(app.stats().window(now).requests, 0, "nor counted as traffic");
}
