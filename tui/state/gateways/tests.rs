use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent};

use super::*;
use crate::state::App;
use crate::state::messages::{Action, AppEvent, PodTotals, Request};
use crate::state::test_events::{PODS, endpoint, from, gw, hits, request, snapshot, synced_app};

fn request_from(seq: u64, pod: &str) -> GatewayEvent {
    GatewayEvent::Request(Request {
        seq,
        name: pod.into(),
        ip: "10.0.0.1".into(),
        ..Request::default()
    })
}

fn state(mode: Mode, pods: &[(&str, u64)], last_seq: u64) -> GatewayEvent {
    GatewayEvent::Snapshot(Snapshot {
        mode: Some(mode),
        pods: pods
            .iter()
            .map(|(name, requests)| PodTotals {
                name: (*name).into(),
                requests: *requests,
                ..PodTotals::default()
            })
            .collect(),
        last_seq,
        ..Snapshot::default()
    })
}

fn endpoints_changed(seq: u64, endpoints: Vec<PodInfo>) -> AppEvent {
    gw(GatewayEvent::EndpointsChanged { seq, endpoints })
}

#[test]
fn snapshot_lists_every_pod_even_with_zero_hits() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(
        snapshot(Mode::Sticky, &[("pod-a", "10.0.0.1", 7), ("pod-b", "10.0.0.2", 0)], 7),
        t0,
    );
    assert!(app.synced());
    assert_eq!(app.mode(), Some(Mode::Sticky));
    assert_eq!(hits(&app), [("pod-a".into(), 7), ("pod-b".into(), 0)]);
    assert_eq!(app.stats().total(), 7);
    assert_eq!(app.stats().pods["pod-b"].ip, "10.0.0.2");
    assert_eq!(app.stats().pods["pod-b"].ready, Some(true));
}

#[test]
fn pods_that_vanish_are_marked_gone_and_come_back() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    app.update(request(1, "pod-c", "10.0.0.3", 100), t0);
    let two = vec![endpoint("pod-a", "10.0.0.1"), endpoint("pod-b", "10.0.0.2")];
    app.update(endpoints_changed(2, two), t0);
    let pod_c = &app.stats().pods["pod-c"];
    assert!(pod_c.gone);
    assert_eq!(pod_c.hits(), 1, "a gone pod keeps its history");
    assert_eq!(app.stats().live_pods().count(), 2);

    let three = PODS.iter().map(|(n, ip, _)| endpoint(n, ip)).collect();
    app.update(endpoints_changed(3, three), t0);
    assert!(!app.stats().pods["pod-c"].gone);
}

#[test]
fn an_external_pod_source_owns_the_pod_list() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    app.update(
        AppEvent::Pods(vec![PodInfo {
            name: "pod-a".into(),
            ip: "10.0.0.1".into(),
            ready: false,
            ..PodInfo::default()
        }]),
        t0,
    );
    assert_eq!(app.pod_source(), PodSourceKind::External);
    assert!(app.stats().pods["pod-b"].gone);
    assert_eq!(app.stats().pods["pod-a"].ready, Some(false));
    // The pod source is authoritative: endpoint events neither resurrect
    // pod-b nor override pod-a's readiness.
    app.update(
        endpoints_changed(1, PODS.iter().map(|(n, ip, _)| endpoint(n, ip)).collect()),
        t0,
    );
    assert!(app.stats().pods["pod-b"].gone);
    assert_eq!(app.stats().pods["pod-a"].ready, Some(false));
}

#[test]
fn a_pod_known_by_ip_takes_its_name_on_first_answer() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    let by_ip = || vec![endpoint("10.0.0.9", "10.0.0.9")];
    app.update(
        gw(GatewayEvent::Snapshot(Snapshot {
            endpoints: by_ip(),
            ..Snapshot::default()
        })),
        t0,
    );
    assert!(app.stats().pods.contains_key("10.0.0.9"));
    app.update(request(1, "pod-z", "10.0.0.9", 100), t0);
    assert_eq!(hits(&app), [("pod-z".into(), 1)]);
    // The next name-less endpoint list still means pod-z.
    app.update(endpoints_changed(2, by_ip()), t0);
    assert_eq!(hits(&app), [("pod-z".into(), 1)]);
    assert!(!app.stats().pods["pod-z"].gone);
}

#[test]
fn counting_from_now_ignores_the_gateways_history() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0).counting_from_now();
    app.update(snapshot(Mode::Balanced, &[("pod-a", "10.0.0.1", 1000)], 1000), t0);
    assert_eq!(hits(&app), [("pod-a".into(), 0)]);
    app.update(request(1001, "pod-a", "10.0.0.1", 100), t0);
    assert_eq!(app.stats().total(), 1);
}

#[test]
fn several_gateways_add_up_with_their_own_sequence_numbers() {
    let t0 = Instant::now();
    let mut app = App::new("cluster", t0);
    app.update(from("gw-1", state(Mode::Sticky, &[("pod-a", 10)], 10)), t0);
    app.update(from("gw-2", state(Mode::Sticky, &[("pod-a", 5), ("pod-b", 7)], 12)), t0);
    assert_eq!(hits(&app), [("pod-a".into(), 15), ("pod-b".into(), 7)]);
    // seq 11 is new for gw-1 but already counted for gw-2.
    app.update(from("gw-1", request_from(11, "pod-a")), t0);
    app.update(from("gw-2", request_from(11, "pod-b")), t0);
    app.update(from("gw-2", request_from(13, "pod-b")), t0);
    assert_eq!(hits(&app), [("pod-a".into(), 16), ("pod-b".into(), 8)]);
    // gw-2 reconnects: its snapshot replaces only its own share.
    app.update(from("gw-2", state(Mode::Sticky, &[("pod-b", 20)], 30)), t0);
    assert_eq!(hits(&app), [("pod-a".into(), 11), ("pod-b".into(), 20)]);
    assert_eq!(app.mode(), Some(Mode::Sticky));
}

#[test]
fn disagreeing_gateways_show_mixed_and_m_switches_all_to_balanced() {
    let t0 = Instant::now();
    let mut app = App::new("cluster", t0);
    app.update(from("gw-1", state(Mode::Sticky, &[], 0)), t0);
    app.update(from("gw-2", state(Mode::Balanced, &[], 0)), t0);
    assert_eq!(app.mode(), None);
    assert!(app.mixed_modes());
    assert_eq!(
        app.on_key(KeyEvent::from(KeyCode::Char('m')), t0),
        Some(Action::SetMode(Mode::Balanced))
    );
    assert_eq!(app.message().unwrap().text, "switching 2 gateways to balanced…");
}

#[test]
fn a_mode_switch_reports_each_gateways_failure() {
    let t0 = Instant::now();
    let mut app = App::new("cluster", t0);
    for gateway in ["gw-1", "gw-2", "gw-3"] {
        app.update(from(gateway, state(Mode::Sticky, &[], 0)), t0);
    }
    assert_eq!(
        app.on_key(KeyEvent::from(KeyCode::Char('m')), t0),
        Some(Action::SetMode(Mode::Balanced))
    );
    let answer = |gateway: &str, result: Result<Mode, String>| AppEvent::ModeSet {
        gateway: gateway.into(),
        result,
    };
    app.update(answer("gw-1", Ok(Mode::Balanced)), t0);
    app.update(answer("gw-3", Err("the gateway did not answer within 5 s".into())), t0);
    assert!(
        app.message().unwrap().text.starts_with("switching"),
        "waits for all answers"
    );
    app.update(answer("gw-2", Ok(Mode::Balanced)), t0);
    let message = app.message().cloned().unwrap();
    assert!(message.error);
    assert_eq!(
        message.text,
        "switched 2 of 3 gateways to balanced; failed: gw-3: the gateway did not answer within 5 s"
    );
    assert!(app.mixed_modes());
}

#[test]
fn all_gateways_switching_is_one_success_message() {
    let t0 = Instant::now();
    let mut app = App::new("cluster", t0);
    for gateway in ["gw-1", "gw-2"] {
        app.update(from(gateway, state(Mode::Dns, &[], 0)), t0);
    }
    app.on_key(KeyEvent::from(KeyCode::Char('m')), t0);
    for gateway in ["gw-1", "gw-2"] {
        app.update(
            AppEvent::ModeSet {
                gateway: gateway.into(),
                result: Ok(Mode::Sticky),
            },
            t0,
        );
    }
    let message = app.message().cloned().unwrap();
    assert!(!message.error);
    assert_eq!(message.text, "all 2 gateways switched to sticky");
    assert_eq!(app.mode(), Some(Mode::Sticky));
}

#[test]
fn a_removed_gateways_endpoints_leave_the_pod_list() {
    let t0 = Instant::now();
    let mut app = App::new("cluster", t0);
    let endpoints = |names: &[&str]| GatewayEvent::EndpointsChanged {
        seq: 0,
        endpoints: names.iter().map(|n| endpoint(n, &format!("ip-{n}"))).collect(),
    };
    app.update(from("gw-1", endpoints(&["pod-a"])), t0);
    app.update(from("gw-2", endpoints(&["pod-b"])), t0);
    assert_eq!(
        app.stats().live_pods().count(),
        2,
        "the union of both gateways' endpoints"
    );
    app.update(AppEvent::GatewayRemoved { gateway: "gw-2".into() }, t0);
    assert!(app.stats().pods["pod-b"].gone);
    assert!(!app.stats().pods["pod-a"].gone);
}

#[test]
fn failures_naming_no_pod_are_counted_but_never_shown_as_a_pod() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    // The IP the Observer client takes from the address dialled: the
    // Service's host in sticky mode, none with no endpoint at all.
    let failed = |seq, ip: &str| {
        gw(GatewayEvent::Request(Request {
            seq,
            ip: ip.into(),
            grpc_code: 14,
            error: "unavailable".into(),
            ..Request::default()
        }))
    };
    // Sticky to a dead Service, and balanced with no endpoint at all.
    app.update(failed(1, "greetserver.default.svc.cluster.local"), t0);
    app.update(failed(2, ""), t0);
    // Balanced to a listed pod's address: that pod's error.
    app.update(failed(3, "10.0.0.2"), t0);
    assert_eq!(app.stats().pods.len(), 3, "no made-up pods");
    assert_eq!(app.stats().pods["pod-b"].errors(), 1);
    assert_eq!(app.stats().total(), 3);
    assert_eq!(app.stats().errors(), 3);
    assert_eq!(app.stats().unattributed(), 2);
    assert_eq!(app.stats().tail[1].pod, "", "the tail shows it as no pod");
    // A later snapshot keeps them apart the same way.
    let state = Snapshot {
        last_seq: 3,
        started_unix_us: 1,
        pods: vec![PodTotals {
            ip: "greetserver.default.svc.cluster.local".into(),
            requests: 5,
            errors: 5,
            ..PodTotals::default()
        }],
        ..Snapshot::default()
    };
    app.update(gw(GatewayEvent::Snapshot(state)), t0);
    assert_eq!(app.stats().unattributed(), 5);
    assert_eq!(app.stats().pods.len(), 3);
    app.reset(t0);
    assert_eq!((app.stats().total(), app.stats().errors()), (0, 0));
}

#[test]
fn late_events_of_a_removed_gateway_are_ignored() {
    let t0 = Instant::now();
    let mut app = App::new("cluster", t0);
    app.update(from("gw-1", state(Mode::Sticky, &[], 0)), t0);
    app.update(AppEvent::GatewayRemoved { gateway: "gw-1".into() }, t0);
    app.update(
        AppEvent::Disconnected {
            gateway: "gw-1".into(),
            error: "stream ended".into(),
            retry_in: Duration::from_secs(1),
        },
        t0,
    );
    assert!(app.gateways().is_empty());
}

mod connection;
mod identity;
