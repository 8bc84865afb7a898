//! A pod's row is the endpoint the gateway dialled joined to the name its
//! replies carry: pods on one host (one IP, several ports) stay apart, and
//! a skip or a failure at an endpoint lands on its pod's row.

use super::*;
use crate::state::PodStats;
use crate::state::stats::PodKind;
use crate::state::test_events::secs;

const SERVICE: &str = "127.0.0.1:27850";

/// An endpoint as a gateway that knows no pod name lists it.
fn at(address: &str, skipped: Option<&str>) -> PodInfo {
    PodInfo {
        name: address.into(),
        ip: "127.0.0.1".into(),
        endpoint: address.into(),
        ready: true,
        skipped: skipped.map(Into::into),
        ..PodInfo::default()
    }
}

/// Cumulative totals for `name` (empty: unknown) dialled at `endpoint`.
fn totals(name: &str, endpoint: &str, requests: u64, errors: u64) -> PodTotals {
    PodTotals {
        name: name.into(),
        ip: "127.0.0.1".into(),
        endpoint: endpoint.into(),
        requests,
        errors,
        latency_buckets: Some(Vec::new()),
        error_codes: [(14, errors)].into_iter().filter(|(_, n)| *n > 0).collect(),
        ..PodTotals::default()
    }
}

fn rows(app: &App) -> Vec<(String, PodKind, Option<String>, u64, u64)> {
    let row = |p: &PodStats| (p.name.clone(), p.kind, p.skipped.clone(), p.hits(), p.errors());
    app.stats().pods.values().map(row).collect()
}

#[test]
fn pods_on_one_host_are_told_apart_by_endpoint_and_a_skip_lands_on_the_pod() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    let listing = |dead: Option<&str>| {
        (1..=3)
            .map(|i| at(&format!("127.0.0.1:2785{i}"), dead.filter(|_| i == 2)))
            .collect::<Vec<_>>()
    };
    app.update(
        gw(GatewayEvent::Snapshot(Snapshot {
            mode: Some(Mode::Balanced),
            started_unix_us: 1,
            sticky_target: SERVICE.into(),
            endpoints: listing(None),
            ..Snapshot::default()
        })),
        t0,
    );
    assert_eq!(app.stats().pods.len(), 3, "three endpoints, three rows");
    let answered = (1..=3)
        .map(|i| totals(&format!("acc-pod-{i}"), &format!("127.0.0.1:2785{i}"), 10, 0))
        .collect();
    app.update(gw(GatewayEvent::Summary(answered)), t0 + secs(0.25));
    let names: Vec<String> = app.stats().pods.keys().cloned().collect();
    assert_eq!(names, ["acc-pod-1", "acc-pod-2", "acc-pod-3"], "named by their replies");
    // acc-pod-2 is killed: its endpoint is skipped, its failures name no pod.
    app.update(
        gw(GatewayEvent::EndpointsChanged {
            seq: 1,
            endpoints: listing(Some("connection refused")),
        }),
        t0 + secs(0.3),
    );
    let after = vec![
        totals("acc-pod-1", "127.0.0.1:27851", 15, 0),
        totals("acc-pod-2", "127.0.0.1:27852", 10, 0),
        totals("acc-pod-3", "127.0.0.1:27853", 15, 0),
        totals("", "127.0.0.1:27852", 4, 4),
    ];
    app.update(gw(GatewayEvent::Summary(after)), t0 + secs(0.5));
    let refused = Some("connection refused".to_owned());
    assert_eq!(
        rows(&app),
        [
            ("acc-pod-1".into(), PodKind::Pod, None, 15, 0),
            ("acc-pod-2".into(), PodKind::Pod, refused, 14, 4),
            ("acc-pod-3".into(), PodKind::Pod, None, 15, 0),
        ]
    );
    assert_eq!(app.stats().live_pods().count(), 2);
    assert_eq!(app.stats().unattributed(), 0);
}

#[test]
fn the_sticky_target_listed_as_an_endpoint_is_the_service_not_a_pod() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    // DNS discovery of the Service's own name lists its address.
    app.update(
        gw(GatewayEvent::Snapshot(Snapshot {
            mode: Some(Mode::Sticky),
            started_unix_us: 1,
            sticky_target: SERVICE.into(),
            endpoints: vec![at(SERVICE, None), at("127.0.0.1:27851", None)],
            ..Snapshot::default()
        })),
        t0,
    );
    // Sticky replies come through the Service and name their pod.
    let sticky = vec![totals("acc-pod-1", SERVICE, 20, 0), totals("", SERVICE, 3, 3)];
    app.update(gw(GatewayEvent::Summary(sticky)), t0 + secs(0.25));
    assert_eq!(
        rows(&app),
        [
            (SERVICE.into(), PodKind::Service, None, 3, 3),
            ("acc-pod-1".into(), PodKind::Pod, None, 20, 0),
        ],
        "the Service's failures on its row; the pod took its address's listing"
    );
    assert_eq!(app.stats().pods["acc-pod-1"].endpoint, "127.0.0.1:27851");
    let live: Vec<&str> = app.stats().live_pods().map(|p| p.name.as_str()).collect();
    assert_eq!(live, ["acc-pod-1"], "the Service is not in the spread");
}

#[test]
fn a_pod_named_through_the_service_and_listed_later_by_name_is_one_row() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    let listing = |named: bool| {
        (1..=3)
            .map(|i| {
                let mut e = at(&format!("127.0.0.1:2785{i}"), None);
                if named {
                    e.name = format!("acc-pod-{i}");
                }
                e
            })
            .collect::<Vec<_>>()
    };
    app.update(
        gw(GatewayEvent::Snapshot(Snapshot {
            mode: Some(Mode::Sticky),
            started_unix_us: 1,
            sticky_target: SERVICE.into(),
            endpoints: listing(false),
            ..Snapshot::default()
        })),
        t0,
    );
    // Sticky: the replies name acc-pod-1, dialled at the Service. Three
    // endpoints share its IP, so none of them can be told to be it yet.
    app.update(
        gw(GatewayEvent::Summary(vec![totals("acc-pod-1", SERVICE, 30, 0)])),
        t0 + secs(0.25),
    );
    assert_eq!(app.stats().pods.len(), 4);
    // The gateway learns the names its endpoints' replies carry.
    app.update(
        gw(GatewayEvent::EndpointsChanged {
            seq: 1,
            endpoints: listing(true),
        }),
        t0 + secs(0.5),
    );
    app.update(
        gw(GatewayEvent::Summary(vec![totals("acc-pod-1", SERVICE, 33, 0)])),
        t0 + secs(0.75),
    );
    let names: Vec<String> = app.stats().pods.keys().cloned().collect();
    assert_eq!(names, ["acc-pod-1", "acc-pod-2", "acc-pod-3"]);
    let pod = &app.stats().pods["acc-pod-1"];
    assert_eq!(
        (pod.hits(), pod.ready, pod.endpoint.as_str()),
        (33, Some(true), "127.0.0.1:27851")
    );
    assert_eq!(
        app.stats().window(t0 + secs(0.75)).requests,
        33,
        "nothing counted twice"
    );
}

#[test]
fn a_pod_reached_through_the_service_is_a_pod_and_sticky_reads_stuck() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    // Static endpoints the gateway has never dialled (sticky from the start):
    // listed by address, no name known for any of them.
    let listing: Vec<PodInfo> = (1..=3).map(|i| at(&format!("127.0.0.1:2785{i}"), None)).collect();
    app.update(
        gw(GatewayEvent::Snapshot(Snapshot {
            mode: Some(Mode::Sticky),
            started_unix_us: 1,
            sticky_target: SERVICE.into(),
            endpoints: listing,
            ..Snapshot::default()
        })),
        t0,
    );
    for (i, requests) in [(1, 400), (2, 800), (3, 1000)] {
        let sticky = vec![totals("acc-pod-1", SERVICE, requests, 0)];
        app.update(gw(GatewayEvent::Summary(sticky)), t0 + secs(f64::from(i)));
        app.tick(t0 + secs(f64::from(i)));
    }
    let pod = &app.stats().pods["acc-pod-1"];
    assert_eq!(pod.kind, PodKind::Pod, "the replies named a pod: the row is that pod");
    let verdict = crate::state::diagnose(&app, t0 + secs(3.0));
    assert!(
        verdict
            .text
            .starts_with("STUCK — press m to balance: 100 % on acc-pod-1"),
        "{}",
        verdict.text
    );
}
