use std::time::{Duration, Instant};

use super::*;
use crate::state::messages::{AppEvent, GatewayEvent, PodInfo, PodTotals, Request, Snapshot};
use crate::state::test_events::{PODS, endpoint, from, gw, request_event, secs, snapshot, synced_app};

/// Requests from "gw": `n` to each of `pods` (name, IP), spread over
/// `from .. from + 1 s`, routed in the gateway's mode.
fn traffic(app: &mut App, t0: Instant, from: f64, pods: &[(&str, &str, u64)]) {
    for (name, ip, n) in pods {
        for i in 0..*n {
            let at = t0 + secs(from + i as f64 / *n as f64);
            let mode = app.mode();
            let request = Request {
                mode,
                ..request_event(0, name, ip, 500)
            };
            app.update(gw(GatewayEvent::Request(request)), at);
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
fn an_unreachable_gateway_keeps_its_cause_on_a_narrow_screen() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    traffic(&mut app, t0, 0.0, &[("pod-b", "10.0.0.2", 30)]);
    let cause = "gateway unreachable: Connection refused (os error 111) (is it running, or the port-forward up?)";
    app.update(
        AppEvent::Disconnected {
            gateway: "gw".into(),
            error: cause.into(),
            retry_in: secs(1.0),
        },
        t0 + secs(1.0),
    );
    // The header wraps a line too long for the screen; the cause is what
    // tells the user where to look, so it is never dropped to fit.
    assert_eq!(
        diagnose(&app, t0 + secs(5.0)).for_screen(78),
        "gateway unreachable for 4 s: Connection refused (os error 111) (is it running, or the port-forward up?) \
         — last known data shown"
    );
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
fn an_address_that_answered_but_not_as_an_observer_leads_with_why() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0).expecting("gw");
    let cause = "not an Observer endpoint: it answered HTTP 404 Not Found — point --gateway at the \
                 gateway's Observer port (OBSERVE_PORT, default 9092)";
    let wrong_port = AppEvent::Disconnected {
        gateway: "gw".into(),
        error: cause.into(),
        retry_in: secs(1.0),
    };
    app.update(wrong_port, t0 + secs(1.0));
    let verdict = diagnose(&app, t0 + secs(17.0));
    assert_eq!(verdict.verdict, Verdict::Unreachable);
    assert_eq!(
        verdict.text,
        format!("gateway: {cause} — nothing received yet, for 16 s"),
        "it answered: not 'unreachable'"
    );
    // At 80 columns the cause leads; the time and the data shown give way first.
    assert_eq!(
        verdict.for_screen(80),
        "gateway: not an Observer endpoint: it answered HTTP 404 Not Found — point --gateway at the gateway's \
         Observer port (OBSERVE_PORT, default 9092)"
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
    assert_eq!(
        text(&app, now),
        (
            Severity::Neutral,
            "pod-c came back <1 s ago: too soon to judge the spread".into()
        ),
        "the time it had nothing is not the balancer's spread now"
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
    use crate::state::Refusal;
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

mod carried_over;
mod down;
mod now;
mod restart;
mod serving;
mod slow_and_narrow;
