//! Verdicts about now: a mode switch cuts what is judged, failures that
//! stopped are named as such, and the callers' errors are not the pods'.

use std::time::Instant;

use super::{failed, text, traffic};
use crate::state::app::App;
use crate::state::diagnosis::{Judged, Severity, Verdict, diagnose};
use crate::state::messages::{GatewayEvent, PodTotals, Request};
use crate::state::test_events::{PODS, endpoint, gw, secs, snapshot, synced_app};
use greet_proto::Mode;

pub(super) fn switch_to(app: &mut App, mode: Mode, at: Instant) {
    let event = gw(GatewayEvent::ModeChanged {
        seq: 0,
        mode: Some(mode),
        unknown: None,
    });
    app.update(event, at);
}

fn failed_with(app: &mut App, at: Instant, pod: &str, ip: &str, code: i32) {
    let event = gw(GatewayEvent::Request(Request {
        name: pod.into(),
        ip: ip.into(),
        grpc_code: code,
        error: "failed".into(),
        ..Request::default()
    }));
    app.update(event, at);
}

const EVERY_POD: [(&str, &str, u64); 3] = [
    ("pod-a", "10.0.0.1", 30),
    ("pod-b", "10.0.0.2", 30),
    ("pod-c", "10.0.0.3", 30),
];

#[test]
fn after_a_mode_switch_the_verdict_judges_only_the_time_since_and_says_so() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    for second in 0..5 {
        traffic(&mut app, t0, f64::from(second), &[("pod-b", "10.0.0.2", 30)]);
    }
    switch_to(&mut app, Mode::Balanced, t0 + secs(5.2));
    traffic(&mut app, t0, 6.0, &EVERY_POD);
    let d = diagnose(&app, t0 + secs(7.0));
    assert_eq!(
        (d.verdict, d.text.as_str()),
        (
            Verdict::Even,
            "EVEN: 3 pods, fairness 1.00 since the switch to balanced 2 s ago"
        ),
        "the 150 sticky requests before the switch are not the balancer's"
    );
    // From least-loaded's skew to dns: dns is judged on its own.
    switch_to(&mut app, Mode::LeastLoaded, t0 + secs(7.5));
    traffic(
        &mut app,
        t0,
        8.0,
        &[("pod-a", "10.0.0.1", 50), ("pod-b", "10.0.0.2", 5)],
    );
    switch_to(&mut app, Mode::Dns, t0 + secs(9.1));
    assert_eq!(
        text(&app, t0 + secs(9.5)).1,
        "switched to dns <1 s ago: too soon to judge the spread"
    );
    traffic(&mut app, t0, 10.0, &EVERY_POD);
    assert_eq!(
        text(&app, t0 + secs(11.0)),
        (
            Severity::Good,
            "EVEN: 3 pods, fairness 1.00 since the switch to dns 2 s ago".into()
        )
    );
    // A minute on, the switch has left the window: back to the window.
    traffic(&mut app, t0, 70.0, &EVERY_POD);
    assert_eq!(
        text(&app, t0 + secs(71.0)).1,
        "EVEN: 3 pods, fairness 1.00 over the last 10 s"
    );
}

#[test]
fn failures_that_stopped_are_not_failing_and_the_verdict_says_when_they_stopped() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    // Sticky to a dying pod: every request fails.
    for i in 0..40 {
        failed(&mut app, t0 + secs(0.1 * f64::from(i)), "pod-b", "10.0.0.2");
    }
    assert_eq!(
        text(&app, t0 + secs(4.0)).1,
        "FAILING — press m to balance: 40 of 40 requests failed over the last 4 s (pod-b 40 UNAVAILABLE)"
    );
    // m: balanced, and nothing fails any more.
    switch_to(&mut app, Mode::Balanced, t0 + secs(4.2));
    traffic(&mut app, t0, 5.0, &EVERY_POD);
    traffic(&mut app, t0, 6.0, &EVERY_POD);
    traffic(&mut app, t0, 7.0, &EVERY_POD);
    assert_eq!(
        text(&app, t0 + secs(8.0)),
        (
            Severity::Good,
            "EVEN: 3 pods, fairness 1.00 since the switch to balanced 4 s ago; errors stopped 4 s ago (40 failed)"
                .into()
        )
    );
    // In balanced mode a pod fails for a while, then recovers.
    for i in 0..10 {
        failed(&mut app, t0 + secs(20.0 + 0.1 * f64::from(i)), "pod-c", "10.0.0.3");
    }
    traffic(
        &mut app,
        t0,
        20.0,
        &[("pod-a", "10.0.0.1", 30), ("pod-b", "10.0.0.2", 30)],
    );
    assert_eq!(text(&app, t0 + secs(21.5)).0, Severity::Bad, "failing while it fails");
    traffic(&mut app, t0, 21.0, &EVERY_POD);
    traffic(&mut app, t0, 22.0, &EVERY_POD);
    traffic(&mut app, t0, 23.0, &EVERY_POD);
    let d = diagnose(&app, t0 + secs(24.0));
    assert_eq!(
        d.text,
        "EVEN: 3 pods, fairness 0.99 over the last 10 s; errors stopped 3 s ago (10 failed)"
    );
    assert_eq!(d.judged.pod_failures, 10, "still in the window, for --fail-on");
}

#[test]
fn client_errors_are_named_as_the_callers_and_never_make_the_pods_failing() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Balanced, &PODS, 0), t0);
    traffic(&mut app, t0, 0.0, &EVERY_POD);
    for i in 0..12 {
        failed_with(&mut app, t0 + secs(0.05 * f64::from(i)), "pod-a", "10.0.0.1", 12);
    }
    failed_with(&mut app, t0 + secs(0.7), "pod-b", "10.0.0.2", 3);
    let d = diagnose(&app, t0 + secs(1.0));
    assert_eq!(
        (d.verdict, d.severity, d.text.as_str()),
        (
            Verdict::ClientErrors,
            Severity::Warning,
            "client errors: 12 UNIMPLEMENTED, 1 INVALID_ARGUMENT in 103 requests over the last 1 s — the callers' mistakes, not the pods'"
        )
    );
    assert_eq!(
        d.judged,
        Judged {
            requests: 103,
            pod_failures: 0,
            client_errors: 13
        }
    );
    // A pod's own failures are FAILING, the callers' beside them.
    failed(&mut app, t0 + secs(0.8), "pod-c", "10.0.0.3");
    let d = diagnose(&app, t0 + secs(1.0));
    assert_eq!(
        (d.verdict, d.text.as_str()),
        (
            Verdict::Failing,
            "FAILING: 1 of 104 requests failed over the last 1 s (pod-c 1 UNAVAILABLE); and 13 client errors (12 UNIMPLEMENTED, 1 INVALID_ARGUMENT)"
        )
    );
    assert_eq!(d.judged.pod_failures, 1);
    assert_eq!(
        (d.verdict.label(), Verdict::ClientErrors.label()),
        ("FAILING", "CLIENT_ERRORS")
    );
}

#[test]
fn client_errors_a_summary_reports_are_the_callers_too() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Balanced, &PODS, 0), t0);
    let summary = |requests: u64, unimplemented: u64| {
        gw(GatewayEvent::Summary(
            PODS.iter()
                .map(|(name, ip, _)| PodTotals {
                    name: (*name).into(),
                    ip: (*ip).into(),
                    requests,
                    errors: unimplemented,
                    error_codes: [(12, unimplemented)].into_iter().filter(|(_, n)| *n > 0).collect(),
                    latency_buckets: Some(vec![0, requests]),
                    ..PodTotals::default()
                })
                .collect(),
        ))
    };
    app.update(summary(0, 0), t0 + secs(0.25));
    app.update(summary(20, 2), t0 + secs(0.5));
    let d = diagnose(&app, t0 + secs(1.0));
    assert_eq!(d.verdict, Verdict::ClientErrors, "{}", d.text);
    assert!(
        d.text.starts_with("client errors: 6 UNIMPLEMENTED in 60 requests"),
        "{}",
        d.text
    );
}

#[test]
fn a_pod_gone_cuts_the_window_so_its_old_share_is_not_read_as_the_live_pods_spread() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    for second in 0..5 {
        traffic(&mut app, t0, f64::from(second), &[("pod-b", "10.0.0.2", 30)]);
    }
    // pod-b is killed; sticky traffic moves to pod-a.
    let left = PODS
        .iter()
        .filter(|(n, _, _)| *n != "pod-b")
        .map(|(n, ip, _)| endpoint(n, ip))
        .collect();
    app.update(
        gw(GatewayEvent::EndpointsChanged {
            seq: 1,
            endpoints: left,
        }),
        t0 + secs(5.3),
    );
    traffic(&mut app, t0, 5.5, &[("pod-a", "10.0.0.1", 30)]);
    assert_eq!(
        text(&app, t0 + secs(5.9)).1,
        "pod-b went away <1 s ago: too soon to judge the spread"
    );
    traffic(&mut app, t0, 6.5, &[("pod-a", "10.0.0.1", 30)]);
    assert_eq!(
        text(&app, t0 + secs(7.5)).1,
        "STUCK — press m to balance: 100 % on pod-a since pod-b went away 2 s ago",
        "pod-a's 100 % is of what came after pod-b, not of the window pod-b filled"
    );
}
