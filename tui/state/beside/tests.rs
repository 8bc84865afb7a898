use std::time::Instant;

use super::*;
use crate::state::test_events::{secs, summary, synced_app};

/// A view, started at `t0`, that counted `per_pod` (name, requests) in the
/// 10 s up to `t0` + 20 s.
fn counted(t0: Instant, per_pod: &[(&str, u64)]) -> App {
    let mut app = synced_app(t0);
    let zero: Vec<(&str, &str, u64, u64, &[u64])> = per_pod.iter().map(|(n, _)| (*n, "", 0, 0, &[][..])).collect();
    app.update(summary(&zero), t0 + secs(10.0));
    let rows: Vec<(&str, &str, u64, u64, &[u64])> = per_pod.iter().map(|(n, r)| (*n, "", *r, 0, &[][..])).collect();
    app.update(summary(&rows), t0 + secs(20.0));
    app
}

#[test]
fn pods_serving_more_than_the_gateway_sent_are_named_as_bypassed() {
    let t0 = Instant::now();
    let at = t0 + secs(20.0);
    let gateway = counted(t0, &[("pod-a", 500), ("pod-b", 500), ("pod-c", 500)]);
    let pods = counted(t0, &[("pod-a", 1500), ("pod-b", 500), ("pod-c", 500)]);
    assert_eq!(
        comparison(&gateway, &pods, &own_rates(&pods, at), at),
        (
            "pods served 250.0/s, the gateway sent 150.0/s: 100.0/s reach them another way \
             (clients that bypass the gateway; most on pod-a +100.0/s)"
                .to_owned(),
            true
        )
    );
    assert_eq!(own_rates(&pods, at)["pod-a"], 150.0);
}

#[test]
fn within_a_tenth_the_views_agree() {
    let t0 = Instant::now();
    let at = t0 + secs(20.0);
    let gateway = counted(t0, &[("pod-a", 500), ("pod-b", 500)]);
    let pods = counted(t0, &[("pod-a", 520), ("pod-b", 500)]);
    assert_eq!(
        comparison(&gateway, &pods, &own_rates(&pods, at), at),
        (
            "pods' own metrics agree: they served 102.0/s, the gateway sent 100.0/s".to_owned(),
            false
        )
    );
}

#[test]
fn fewer_served_than_sent_points_at_stale_metrics() {
    let t0 = Instant::now();
    let at = t0 + secs(20.0);
    let gateway = counted(t0, &[("pod-a", 500), ("pod-b", 500)]);
    let pods = counted(t0, &[("pod-a", 500), ("pod-b", 0)]);
    assert_eq!(
        comparison(&gateway, &pods, &own_rates(&pods, at), at).0,
        "pods served 50.0/s, the gateway sent 100.0/s: some pods' metrics are stale or missing"
    );
}

#[test]
fn the_views_are_not_compared_before_both_counted_a_whole_window() {
    let t0 = Instant::now();
    let gateway = counted(t0, &[("pod-a", 500), ("pod-b", 500)]);
    let pods = counted(t0, &[("pod-a", 500), ("pod-b", 0)]);
    assert_eq!(
        comparison(&gateway, &pods, &own_rates(&pods, t0 + secs(11.0)), t0 + secs(11.0)),
        (
            "pods' own metrics beside: they served 50.0/s, the gateway sent 100.0/s (too soon to compare: 12 s of both needed)"
                .to_owned(),
            false
        )
    );
}
