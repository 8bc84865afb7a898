use std::time::{Duration, Instant};

use super::*;
use crate::tui::state::diagnosis::Judged;
use crate::tui::state::messages::{AppEvent, GatewayEvent, PodInfo, PodTotals, Request, Snapshot};
use crate::tui::state::test_events::{PODS, endpoint, from, gw, request, secs, snapshot, synced_app};

/// Requests from "gw": `n` to each of `pods` (name, IP), spread over `from .. from + 1 s`.
fn traffic(app: &mut App, t0: Instant, from: f64, pods: &[(&str, &str, u64)]) {
    for (name, ip, n) in pods {
        for i in 0..*n {
            let at = t0 + secs(from + i as f64 / *n as f64);
            app.update(request(0, name, ip, 500), at);
        }
    }
}

fn failed(app: &mut App, at: Instant, pod: &str, ip: &str) {
    let event = gw(GatewayEvent::Request(Request {
        name: pod.into(),
        ip: ip.into(),
        grpc_code: 14,
        error: "connection refused".into(),
        ..Request::default()
    }));
    app.update(event, at);
}

fn text(app: &App, now: Instant) -> (Severity, String) {
    let d = diagnose(app, now);
    (d.severity, d.text)
}

#[test]
fn before_the_first_answer_it_waits_and_says_how_long_the_gateway_is_down() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0).expecting("gw");
    assert_eq!(
        text(&app, t0),
        (Severity::Neutral, "waiting for the gateway's first answer".into())
    );
    let down = AppEvent::Disconnected {
        gateway: "gw".into(),
        error: "refused".into(),
        retry_in: secs(1.0),
    };
    app.update(down, t0 + secs(1.0));
    assert_eq!(
        text(&app, t0 + secs(13.5)),
        (
            Severity::Bad,
            "gateway unreachable for 12 s: refused — nothing received yet".into()
        )
    );
}

#[test]
fn sticky_traffic_on_one_pod_is_stuck_and_says_press_m() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    traffic(&mut app, t0, 0.0, &[("pod-b", "10.0.0.2", 30)]);
    assert_eq!(
        text(&app, t0 + secs(2.0)),
        (
            Severity::Bad,
            "STUCK — press m to balance: 100 % on pod-b over the last 2 s".into()
        )
    );
    // The window is at most 10 s.
    traffic(&mut app, t0, 20.0, &[("pod-b", "10.0.0.2", 30)]);
    assert!(text(&app, t0 + secs(21.0)).1.contains("over the last 10 s"));
}

/// A gateway in `mode` whose first second sent 30 requests to each of
/// pod-a and pod-b, none to pod-c.
fn two_of_three_pods(mode: Mode) -> (App, Instant) {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(mode, &PODS, 0), t0);
    traffic(
        &mut app,
        t0,
        0.0,
        &[("pod-a", "10.0.0.1", 30), ("pod-b", "10.0.0.2", 30)],
    );
    (app, t0)
}

#[test]
fn least_loaded_uneven_is_on_purpose_unless_one_pod_takes_everything() {
    let (mut app, t0) = two_of_three_pods(Mode::LeastLoaded);
    assert_eq!(
        text(&app, t0 + secs(10.0)),
        (
            Severity::Neutral,
            "UNEVEN on purpose: least-loaded favours the faster pods; fairness 0.67 over the last 10 s; pod-a takes 50 %"
                .into()
        )
    );
    traffic(&mut app, t0, 10.0, &[("pod-a", "10.0.0.1", 30)]);
    assert_eq!(
        text(&app, t0 + secs(20.5)),
        (
            Severity::Bad,
            "UNEVEN while least-loaded: 100 % on pod-a over the last 10 s; pod-b, pod-c receive nothing".into()
        )
    );
}

#[test]
fn dns_mode_uneven_is_on_purpose_and_names_the_pods_the_last_answer_lacks() {
    let (app, t0) = two_of_three_pods(Mode::Dns);
    assert_eq!(
        text(&app, t0 + secs(10.0)),
        (
            Severity::Neutral,
            "UNEVEN on purpose: dns mode routes by the last DNS answer; pod-c receives nothing; fairness 0.67 over the last 10 s"
                .into()
        )
    );
}

#[test]
fn balanced_but_uneven_names_the_pods_that_get_nothing() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Balanced, &PODS, 0), t0);
    traffic(&mut app, t0, 0.0, &[("pod-a", "10.0.0.1", 30)]);
    assert_eq!(
        text(&app, t0 + secs(10.0)),
        (
            Severity::Bad,
            "UNEVEN while balanced: 100 % on pod-a over the last 10 s; pod-b, pod-c receive nothing".into()
        )
    );
    // Two of three, evenly: the index is 2/3, not stuck.
    traffic(
        &mut app,
        t0,
        10.0,
        &[("pod-a", "10.0.0.1", 30), ("pod-b", "10.0.0.2", 30)],
    );
    assert_eq!(
        text(&app, t0 + secs(20.5)),
        (
            Severity::Warning,
            "UNEVEN while balanced: fairness 0.67 over the last 10 s; pod-a takes 50 %; pod-c receives nothing".into()
        )
    );
    traffic(
        &mut app,
        t0,
        21.0,
        &[
            ("pod-a", "10.0.0.1", 30),
            ("pod-b", "10.0.0.2", 30),
            ("pod-c", "10.0.0.3", 29),
        ],
    );
    assert_eq!(
        text(&app, t0 + secs(31.5)),
        (Severity::Good, "EVEN: 3 pods, fairness 1.00 over the last 10 s".into())
    );
}

#[test]
fn failures_come_first_and_name_where_they_happen() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    traffic(&mut app, t0, 0.0, &[("pod-b", "10.0.0.2", 30)]);
    for i in 0..5 {
        failed(&mut app, t0 + secs(1.0 + 0.1 * i as f64), "pod-b", "10.0.0.2");
    }
    failed(&mut app, t0 + secs(1.5), "", "greetserver.default.svc");
    assert_eq!(
        text(&app, t0 + secs(2.0)),
        (
            Severity::Bad,
            "FAILING — press m to balance: 6 of 36 requests failed over the last 2 s (pod-b 5 UNAVAILABLE, 1 naming no pod)".into()
        )
    );
    // Ten seconds later the failures have left the window.
    traffic(
        &mut app,
        t0,
        12.0,
        &[
            ("pod-a", "10.0.0.1", 10),
            ("pod-b", "10.0.0.2", 10),
            ("pod-c", "10.0.0.3", 10),
        ],
    );
    assert_eq!(text(&app, t0 + secs(13.0)).0, Severity::Good);
}

#[test]
fn an_unreachable_gateway_shows_the_last_known_data_for_how_long() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    traffic(&mut app, t0, 0.0, &[("pod-b", "10.0.0.2", 30)]);
    for (at, retry) in [(1.0, 1.0), (2.0, 2.0), (4.0, 4.0)] {
        let down = AppEvent::Disconnected {
            gateway: "gw".into(),
            error: "refused".into(),
            retry_in: secs(retry),
        };
        app.update(down, t0 + secs(at));
    }
    assert_eq!(
        text(&app, t0 + secs(13.0)),
        (
            Severity::Bad,
            "gateway unreachable for 12 s: refused — last known data shown".into()
        )
    );
}

#[test]
fn a_gateway_back_in_sticky_mode_after_a_restart_is_the_headline_for_a_minute() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    let started = |started_unix_us, mode| {
        gw(GatewayEvent::Snapshot(Snapshot {
            mode: Some(mode),
            started_unix_us,
            pods: vec![PodTotals {
                name: "pod-a".into(),
                requests: 1,
                ..PodTotals::default()
            }],
            ..Snapshot::default()
        }))
    };
    app.update(started(1, Mode::Balanced), t0);
    app.update(started(2, Mode::Sticky), t0 + secs(5.0));
    assert_eq!(
        text(&app, t0 + secs(17.0)),
        (
            Severity::Bad,
            "gateway restarted in sticky mode 12 s ago — press m to balance again".into()
        )
    );
    assert_ne!(text(&app, t0 + secs(5.0) + RESTART_NOTICE).0, Severity::Bad);
}

#[test]
fn one_of_several_gateways_down_is_a_warning_and_disagreeing_modes_are_named() {
    let t0 = Instant::now();
    let mut app = App::new("two", t0);
    for name in ["gw-1", "gw-2"] {
        let state = Snapshot {
            mode: Some(Mode::Balanced),
            ..Snapshot::default()
        };
        app.update(from(name, GatewayEvent::Snapshot(state)), t0);
    }
    let down = AppEvent::Disconnected {
        gateway: "gw-2".into(),
        error: "refused".into(),
        retry_in: secs(1.0),
    };
    app.update(down, t0 + secs(1.0));
    assert_eq!(
        text(&app, t0 + secs(4.0)),
        (
            Severity::Warning,
            "gw-2 unreachable for 3 s — its share is stale".into()
        )
    );
    let sticky = Snapshot {
        mode: Some(Mode::Sticky),
        ..Snapshot::default()
    };
    app.update(from("gw-2", GatewayEvent::Snapshot(sticky)), t0 + secs(5.0));
    app.update(AppEvent::Connected { gateway: "gw-2".into() }, t0 + secs(5.0));
    assert_eq!(
        text(&app, t0 + secs(5.0)),
        (
            Severity::Warning,
            "MIXED: the gateways disagree on the mode — press m to switch them all".into()
        )
    );
}

#[test]
fn quiet_or_single_pod_traffic_gets_no_verdict_on_the_spread() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    assert_eq!(
        text(&app, t0 + Duration::from_secs(5)),
        (Severity::Neutral, "no requests over the last 5 s".into())
    );
    traffic(&mut app, t0, 5.0, &[("pod-a", "10.0.0.1", 5)]);
    assert_eq!(
        text(&app, t0 + secs(6.0)),
        (
            Severity::Neutral,
            "5 requests over the last 6 s: too few to judge the spread".into()
        )
    );
}

#[test]
fn a_pod_the_balancer_skips_is_named_with_its_reason_and_left_out_of_fairness() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Balanced, &PODS, 0), t0);
    let mut endpoints: Vec<PodInfo> = PODS.iter().map(|(n, ip, _)| endpoint(n, ip)).collect();
    endpoints[2].skipped = Some("connection refused".into());
    app.update(gw(GatewayEvent::EndpointsChanged { seq: 1, endpoints }), t0);
    traffic(
        &mut app,
        t0,
        0.0,
        &[("pod-a", "10.0.0.1", 15), ("pod-b", "10.0.0.2", 15)],
    );
    let now = t0 + secs(2.0);
    assert_eq!(
        text(&app, now),
        (
            Severity::Warning,
            "SKIPPING pod-c (connection refused): the gateway routes around it; 2 pods serving".into()
        )
    );
    assert_eq!(app.stats().fairness(now), Some(1.0), "the two serving pods are even");
    // Back: no longer skipped, and it counts again.
    let endpoints = PODS.iter().map(|(n, ip, _)| endpoint(n, ip)).collect();
    app.update(gw(GatewayEvent::EndpointsChanged { seq: 2, endpoints }), now);
    assert!(app.stats().pods["pod-c"].skipped.is_none());
    assert!(
        text(&app, now).1.starts_with("UNEVEN while balanced"),
        "{:?}",
        text(&app, now)
    );
}

#[test]
fn with_a_pod_source_the_gateways_still_say_which_pods_they_skip() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(
        AppEvent::Pods(PODS.iter().map(|(n, ip, _)| endpoint(n, ip)).collect()),
        t0,
    );
    app.update(snapshot(Mode::Balanced, &PODS, 0), t0);
    let mut endpoints: Vec<PodInfo> = PODS.iter().map(|(n, ip, _)| endpoint(n, ip)).collect();
    endpoints[0].skipped = Some("connection timed out".into());
    app.update(gw(GatewayEvent::EndpointsChanged { seq: 1, endpoints }), t0);
    assert_eq!(
        app.stats().pods["pod-a"].skipped.as_deref(),
        Some("connection timed out")
    );
    // A new listing from the pod source keeps the gateway's word.
    app.update(
        AppEvent::Pods(PODS.iter().map(|(n, ip, _)| endpoint(n, ip)).collect()),
        t0,
    );
    assert_eq!(
        app.stats().pods["pod-a"].skipped.as_deref(),
        Some("connection timed out")
    );
    assert_eq!(app.stats().live_pods().count(), 2);
}

#[test]
fn a_refusal_is_the_headline_before_unreachable_and_named_when_partial() {
    use crate::tui::state::Refusal;
    let t0 = Instant::now();
    let mut app = App::new("two", t0).expecting("gw-1").expecting("gw-2");
    let event = |gateway: &str, refusal| AppEvent::Refused {
        gateway: gateway.into(),
        refusal,
        retry_in: secs(1.0),
    };
    let down = AppEvent::Disconnected {
        gateway: "gw-1".into(),
        error: "gateway unreachable".into(),
        retry_in: secs(1.0),
    };
    app.update(down, t0);
    app.update(event("gw-2", Refusal::NoToken), t0);
    assert_eq!(
        text(&app, t0 + secs(3.0)),
        (
            Severity::Bad,
            "REFUSED — restart with --token or GREET_TOP_TOKEN: the gateway wants a token".into()
        )
    );
    app.update(event("gw-2", Refusal::WrongToken), t0);
    assert_eq!(
        text(&app, t0 + secs(3.0)).1,
        "REFUSED — check --token or GREET_TOP_TOKEN: the gateway says the token is wrong"
    );
    // gw-1 answers: gw-2's refusal is named.
    app.update(
        from(
            "gw-1",
            GatewayEvent::Snapshot(Snapshot {
                mode: Some(Mode::Balanced),
                ..Snapshot::default()
            }),
        ),
        t0 + secs(1.0),
    );
    app.update(AppEvent::Connected { gateway: "gw-1".into() }, t0 + secs(1.0));
    assert_eq!(
        text(&app, t0 + secs(3.0)),
        (
            Severity::Warning,
            "gw-2 refused: wrong token — check --token or GREET_TOP_TOKEN".into()
        )
    );
}

fn switch_to(app: &mut App, mode: Mode, at: Instant) {
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
        "no requests since the switch to dns <1 s ago"
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

/// "greetserver-demo-b9qnp-" and a suffix, as the demo names its pods.
const DEMO: [(&str, &str, u64); 3] = [
    ("greetserver-demo-b9qnp-9hlbq", "10.0.0.1", 0),
    ("greetserver-demo-b9qnp-b8lmv", "10.0.0.2", 0),
    ("greetserver-demo-b9qnp-x2zl7", "10.0.0.3", 0),
];

#[test]
fn a_narrow_screen_shortens_the_shared_prefix_instead_of_cutting_a_name_and_reports_have_no_keys() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Sticky, &DEMO, 0), t0);
    traffic(&mut app, t0, 0.0, &[("greetserver-demo-b9qnp-9hlbq", "10.0.0.1", 30)]);
    for i in 0..3 {
        failed(
            &mut app,
            t0 + secs(0.5 + 0.1 * f64::from(i)),
            "greetserver-demo-b9qnp-9hlbq",
            "10.0.0.1",
        );
    }
    let d = diagnose(&app, t0 + secs(1.0));
    assert_eq!(
        d.text,
        "FAILING — press m to balance: 3 of 33 requests failed over the last 1 s (greetserver-demo-b9qnp-9hlbq 3 UNAVAILABLE)"
    );
    assert_eq!(
        d.for_screen(120),
        "FAILING — press m to balance: 3 of 33 requests failed (greetserver-demo-b9qnp-9hlbq 3 UNAVAILABLE)",
        "the header states the window"
    );
    assert_eq!(
        d.for_screen(78),
        "FAILING — press m to balance: 3 of 33 requests failed (…-9hlbq 3 UNAVAILABLE)"
    );
    assert_eq!(
        d.for_report(),
        "FAILING: 3 of 33 requests failed over the last 1 s (greetserver-demo-b9qnp-9hlbq 3 UNAVAILABLE)"
    );
    // Balanced, one pod taking all: at 80 columns the idle pods' names
    // shorten, at 58 their clause goes; no name is ever cut.
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Balanced, &DEMO, 0), t0);
    traffic(&mut app, t0, 0.0, &[("greetserver-demo-b9qnp-9hlbq", "10.0.0.1", 30)]);
    let d = diagnose(&app, t0 + secs(1.0));
    assert_eq!(
        d.for_screen(118),
        "UNEVEN while balanced: 100 % on …-9hlbq; …-b8lmv, …-x2zl7 receive nothing"
    );
    assert_eq!(d.for_screen(58), "UNEVEN while balanced: 100 % on …-9hlbq");
}

/// Traffic over `from .. from + 1 s`, each request to pod `name` taking `latency_us`.
fn timed(app: &mut App, t0: Instant, from: f64, pods: &[(&str, &str, u64, u64)]) {
    for (name, ip, n, latency_us) in pods {
        for i in 0..*n {
            let at = t0 + secs(from + i as f64 / *n as f64);
            app.update(request(0, name, ip, *latency_us), at);
        }
    }
}

#[test]
fn a_much_slower_pod_is_named_in_every_mode() {
    let t0 = Instant::now();
    let slow_c = [
        ("pod-a", "10.0.0.1", 30, 1_000),
        ("pod-b", "10.0.0.2", 30, 1_000),
        ("pod-c", "10.0.0.3", 8, 70_000),
    ];
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::LeastLoaded, &PODS, 0), t0);
    timed(&mut app, t0, 0.0, &slow_c);
    let d = diagnose(&app, t0 + secs(1.0));
    assert_eq!((d.verdict, d.severity), (Verdict::Slow, Severity::Neutral));
    assert_eq!(
        d.text,
        "SLOW: pod-c p99 82 ms vs 1.0 ms for the others — least-loaded sends it less; fairness 0.83 over the last 1 s"
    );
    // dns mode spreads evenly over it: EVEN, but slow.
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Dns, &PODS, 0), t0);
    timed(
        &mut app,
        t0,
        0.0,
        &[
            ("pod-a", "10.0.0.1", 30, 1_000),
            ("pod-b", "10.0.0.2", 30, 1_000),
            ("pod-c", "10.0.0.3", 30, 70_000),
        ],
    );
    let d = diagnose(&app, t0 + secs(1.0));
    assert_eq!((d.verdict, d.severity), (Verdict::Slow, Severity::Warning));
    assert_eq!(
        d.text,
        "EVEN: 3 pods, fairness 1.00 over the last 1 s, but pod-c is 80× slower (p99 82 ms vs 1.0 ms)"
    );
    // 3 ms is three times 1 ms, but no one waits for it: not slow.
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Dns, &PODS, 0), t0);
    timed(
        &mut app,
        t0,
        0.0,
        &[
            ("pod-a", "10.0.0.1", 30, 1_000),
            ("pod-b", "10.0.0.2", 30, 1_000),
            ("pod-c", "10.0.0.3", 30, 3_500),
        ],
    );
    assert_eq!(diagnose(&app, t0 + secs(1.0)).verdict, Verdict::Even);
}
