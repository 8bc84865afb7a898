//! The pods serving changed (a pod back, one skipped, one added, the sticky
//! connection moved): the verdict judges only the time since, and says so.

use std::time::Instant;

use super::traffic;
use crate::state::app::App;
use crate::state::diagnosis::{Verdict, diagnose};
use crate::state::messages::{GatewayEvent, Gauges, PodInfo, PodTotals};
use crate::state::test_events::{PODS, endpoint, gw, secs, snapshot};
use greet_proto::Mode;

fn listed(skipped: &[&str], extra: &[(&str, &str)]) -> Vec<PodInfo> {
    let mut endpoints: Vec<PodInfo> = PODS.iter().map(|(n, ip, _)| endpoint(n, ip)).collect();
    endpoints.extend(extra.iter().map(|(n, ip)| endpoint(n, ip)));
    for pod in &mut endpoints {
        if skipped.contains(&pod.name.as_str()) {
            pod.skipped = Some("connection refused".into());
        }
    }
    endpoints
}

const THIRDS: [(&str, &str, u64); 3] = [
    ("pod-a", "10.0.0.1", 20),
    ("pod-b", "10.0.0.2", 20),
    ("pod-c", "10.0.0.3", 20),
];

#[test]
fn a_skipped_pod_coming_back_cuts_the_span_so_even_thirds_are_even() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Balanced, &PODS, 0), t0);
    app.update(
        gw(GatewayEvent::EndpointsChanged {
            seq: 1,
            endpoints: listed(&["pod-c"], &[]),
        }),
        t0,
    );
    for second in 0..10 {
        traffic(
            &mut app,
            t0,
            f64::from(second),
            &[("pod-a", "10.0.0.1", 30), ("pod-b", "10.0.0.2", 30)],
        );
    }
    // Re-admitted: from now on the client sees exact thirds.
    let endpoints = listed(&[], &[]);
    app.update(
        gw(GatewayEvent::EndpointsChanged { seq: 2, endpoints }),
        t0 + secs(10.2),
    );
    assert_eq!(
        diagnose(&app, t0 + secs(10.5)).text,
        "pod-c came back <1 s ago: too soon to judge the spread"
    );
    // Its first requests take a moment (the gateway's probe, the next
    // summary): 40 to the others in the first 0.6 s is not a verdict yet.
    traffic(
        &mut app,
        t0,
        11.0,
        &[("pod-a", "10.0.0.1", 20), ("pod-b", "10.0.0.2", 20)],
    );
    assert_eq!(
        diagnose(&app, t0 + secs(11.6)).text,
        "pod-c came back 1 s ago: too soon to judge the spread"
    );
    for second in 11..13 {
        traffic(&mut app, t0, f64::from(second), &THIRDS);
    }
    let d = diagnose(&app, t0 + secs(13.0));
    assert_eq!(
        (d.verdict, d.text.as_str()),
        (
            Verdict::Even,
            // 0.97: pod-c's first 0.6 s without requests, not its ten seconds skipped.
            "EVEN: 3 pods, fairness 0.97 since pod-c came back 3 s ago"
        ),
        "the ten seconds pod-c had nothing are not the balancer's spread now"
    );
}

#[test]
fn a_pod_skipped_or_added_cuts_the_span_too_but_the_first_listing_does_not() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Balanced, &PODS, 0), t0);
    for second in 0..5 {
        traffic(&mut app, t0, f64::from(second), &THIRDS);
    }
    assert_eq!(
        diagnose(&app, t0 + secs(5.0)).text,
        "EVEN: 3 pods, fairness 1.00 over the last 5 s"
    );
    let endpoints = listed(&["pod-c"], &[]);
    app.update(gw(GatewayEvent::EndpointsChanged { seq: 1, endpoints }), t0 + secs(5.1));
    traffic(
        &mut app,
        t0,
        6.0,
        &[("pod-a", "10.0.0.1", 30), ("pod-b", "10.0.0.2", 30)],
    );
    // The skip is the headline; the spread of the two serving is since it began.
    assert!(
        diagnose(&app, t0 + secs(7.0))
            .text
            .starts_with("SKIPPING pod-c (connection refused)")
    );
    let endpoints = listed(&[], &[("pod-d", "10.0.0.4")]);
    app.update(gw(GatewayEvent::EndpointsChanged { seq: 2, endpoints }), t0 + secs(7.5));
    assert_eq!(
        diagnose(&app, t0 + secs(8.0)).text,
        "pods joined 1 s ago: too soon to judge the spread",
        "pod-c back and pod-d new in one change"
    );
    let endpoints = listed(&[], &[("pod-d", "10.0.0.4"), ("pod-e", "10.0.0.5")]);
    app.update(gw(GatewayEvent::EndpointsChanged { seq: 3, endpoints }), t0 + secs(8.5));
    assert_eq!(
        diagnose(&app, t0 + secs(9.0)).text,
        "pod-e joined 1 s ago: too soon to judge the spread"
    );
}

/// A summary from "gw" of cumulative requests per pod (name, IP, requests),
/// the pod holding the sticky connection with one connection.
fn sticky_summary(pods: &[(&str, &str, u64)], holder: &str) -> GatewayEvent {
    GatewayEvent::Summary(
        pods.iter()
            .map(|(name, ip, requests)| PodTotals {
                name: (*name).into(),
                ip: (*ip).into(),
                requests: *requests,
                gauges: Some(Gauges {
                    connections: u32::from(*name == holder),
                    ..Gauges::default()
                }),
                ..PodTotals::default()
            })
            .collect(),
    )
}

#[test]
fn in_sticky_mode_the_span_starts_where_the_sticky_connection_moved() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Sticky, &PODS, 0), t0);
    let (mut on_b, mut on_c) = (0, 0);
    // Twice a second: 15 requests on pod-b, which holds the connection.
    for half in 1..=20 {
        on_b += 15;
        let event = sticky_summary(&[("pod-b", "10.0.0.2", on_b), ("pod-c", "10.0.0.3", on_c)], "pod-b");
        app.update(gw(event), t0 + secs(f64::from(half) / 2.0));
    }
    // pod-b died; the connection moved to pod-c at once (its endpoints stay listed).
    for half in 21..=26 {
        on_c += 15;
        let event = sticky_summary(&[("pod-b", "10.0.0.2", on_b), ("pod-c", "10.0.0.3", on_c)], "pod-c");
        app.update(gw(event), t0 + secs(f64::from(half) / 2.0));
    }
    let d = diagnose(&app, t0 + secs(13.0));
    assert_eq!(
        (d.verdict, d.text.as_str()),
        (
            Verdict::Stuck,
            "STUCK — press m to balance: 100 % on pod-c since the sticky connection moved from pod-b 3 s ago"
        ),
        "pod-b's share before the move is not where the traffic goes now"
    );
    // Narrow: the pod the connection left goes first, then when, never a word cut.
    assert_eq!(d.for_screen(60), "STUCK — press m to balance: 100 % on pod-c");
    assert_eq!(
        d.for_screen(84),
        "STUCK — press m to balance: 100 % on pod-c since the sticky connection moved 3 s ago"
    );
}
