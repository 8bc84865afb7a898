use std::time::Instant;

use super::*;
use crate::state::App;
use crate::state::test_events::{request, secs, synced_app};

/// `n` requests to each (pod, IP) at `at`.
fn traffic(app: &mut App, at: Instant, pods: &[(&str, &str, u64)]) {
    for (name, ip, n) in pods {
        for _ in 0..*n {
            app.update(request(0, name, ip, 500), at);
        }
    }
}

fn order(app: &App, at: Instant, key: SortKey, previous: &[&str]) -> Vec<String> {
    let previous: Vec<String> = previous.iter().map(|s| (*s).to_owned()).collect();
    ordered(app.stats(), at, key, &previous)
}

#[test]
fn rows_follow_the_rate_but_near_equal_ones_keep_their_place() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    traffic(
        &mut app,
        t0,
        &[
            ("pod-a", "10.0.0.1", 30),
            ("pod-b", "10.0.0.2", 31),
            ("pod-c", "10.0.0.3", 60),
        ],
    );
    // 30 and 31 share a bucket: a and b stay as they were shown; c goes first.
    assert_eq!(
        order(&app, t0, SortKey::Rate, &["pod-a", "pod-b", "pod-c"]),
        ["pod-c", "pod-a", "pod-b"]
    );
    assert_eq!(
        order(&app, t0, SortKey::Rate, &["pod-b", "pod-a", "pod-c"]),
        ["pod-c", "pod-b", "pod-a"]
    );
    // Nothing shown yet: equals by name.
    assert_eq!(order(&app, t0, SortKey::Rate, &[]), ["pod-c", "pod-a", "pod-b"]);
    assert_eq!(
        order(&app, t0, SortKey::Name, &["pod-c", "pod-b", "pod-a"]),
        ["pod-a", "pod-b", "pod-c"]
    );
}

#[test]
fn gone_pods_go_last_and_new_ones_join_by_name() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    traffic(&mut app, t0, &[("pod-a", "10.0.0.1", 50), ("pod-z", "10.0.0.26", 5)]);
    let mut listed = vec![
        crate::state::test_events::endpoint("pod-b", "10.0.0.2"),
        crate::state::test_events::endpoint("pod-c", "10.0.0.3"),
    ];
    listed.push(crate::state::test_events::endpoint("pod-z", "10.0.0.26"));
    app.update(crate::state::AppEvent::Pods(listed), t0);
    assert!(app.stats().pods["pod-a"].gone);
    // pod-z is new to the order; pod-a, the busiest, is gone: last.
    assert_eq!(
        order(&app, t0, SortKey::Rate, &["pod-a", "pod-b", "pod-c"]),
        ["pod-z", "pod-b", "pod-c", "pod-a"]
    );
}

#[test]
fn errors_and_latency_sort_the_worst_first() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    traffic(&mut app, t0, &[("pod-a", "10.0.0.1", 10), ("pod-c", "10.0.0.3", 10)]);
    app.update(request(0, "pod-b", "10.0.0.2", 90_000), t0);
    app.tick(t0 + secs(0.5));
    assert_eq!(order(&app, t0, SortKey::Latency, &[]), ["pod-b", "pod-a", "pod-c"]);
    let failed = crate::state::test_events::gw(crate::state::GatewayEvent::Request(crate::state::Request {
        name: "pod-c".into(),
        grpc_code: 14,
        ..crate::state::Request::default()
    }));
    app.update(failed, t0);
    assert_eq!(
        order(&app, t0, SortKey::Errors, &["pod-a", "pod-b", "pod-c"]),
        ["pod-c", "pod-a", "pod-b"]
    );
    assert_eq!(SortKey::Rate.next().next().next().next(), SortKey::Rate);
}
