//! What discovery says on the screen: pods served while terminating (no pod
//! of the Service is ready), and a discovery that is failing.

use std::time::{Duration, Instant};

use greet_proto::Mode;
use greet_proto::observe::{self, event};
use greet_top::observer_client;
use greet_top::state::{App, AppEvent};

use super::{GATEWAY, PODS, draw, gateway_event, scenario};

/// Balanced traffic, then a rolling update: the first pod terminates but
/// still serves and takes the traffic, the other two are not ready.
fn serving_while_terminating() -> (App, Instant) {
    let (mut app, now) = scenario(Mode::Balanced);
    let endpoints = PODS
        .iter()
        .enumerate()
        .map(|(i, (name, ip))| observe::Endpoint {
            address: format!("{ip}:50051"),
            pod_name: (*name).into(),
            ready: i == 0,
            serving_terminating: i == 0,
            ..observe::Endpoint::default()
        })
        .collect();
    let changed = observe::EndpointsChanged {
        seq: 301,
        endpoints,
        ..observe::EndpointsChanged::default()
    };
    app.update(gateway_event(event::Kind::EndpointsChanged(changed)), now);
    (app, now)
}

#[test]
fn a_pod_serving_while_terminating_is_said_in_the_pods_panel_80x24() {
    let (app, now) = serving_while_terminating();
    let screen = draw(&app, now, 80, 24);
    assert!(screen.contains("…tserver-deploy-7595ccbdd5-67bmd term "), "{screen}");
    assert!(
        screen.contains(" serving while terminating: greetserver-deploy-7595ccbdd5-67bmd — no pod i… "),
        "{screen}"
    );
    snapshot!(screen);
}

#[test]
fn a_pod_serving_while_terminating_is_said_in_the_pods_panel_120x40() {
    let (app, now) = serving_while_terminating();
    let screen = draw(&app, now, 120, 40);
    assert!(
        screen.contains(" serving while terminating: greetserver-deploy-7595ccbdd5-67bmd — no pod is ready "),
        "{screen}"
    );
    snapshot!(screen);
}

/// Balanced traffic; then the gateway says its discovery has failed for 8 s.
fn discovery_failing() -> (App, Instant) {
    let (mut app, now) = scenario(Mode::Balanced);
    let endpoints = PODS
        .iter()
        .map(|(name, ip)| observe::Endpoint {
            address: format!("{ip}:50051"),
            pod_name: (*name).into(),
            ready: true,
            ..observe::Endpoint::default()
        })
        .collect();
    let changed = event::Kind::EndpointsChanged(observe::EndpointsChanged {
        seq: 301,
        endpoints,
        discovery: Some(observe::DiscoveryState {
            source: "kube".into(),
            failing_since_unix_us: 1_700_000_000_000_000,
            last_error: "EndpointSlice watch: the API server refuses connections — down or restarting?\u{1b}[2J".into(),
            set_age_ms: 8_200,
        }),
        ..observe::EndpointsChanged::default()
    });
    let discovery = observer_client::discovery_event(&changed).unwrap();
    app.update(gateway_event(changed), now);
    app.update(
        AppEvent::Gateway {
            gateway: GATEWAY.into(),
            event: discovery,
        },
        now,
    );
    (app, now)
}

#[test]
fn a_failing_discovery_is_said_in_the_header_with_its_age_80x24() {
    let (app, now) = discovery_failing();
    let screen = draw(&app, now, 80, 24);
    assert!(
        screen.contains("│discovery stale 8 s — last error EndpointSlice watch: the API server refuses …│"),
        "{screen}"
    );
    // The set keeps ageing between the gateway's messages.
    let later = draw(&app, now + Duration::from_secs(3), 80, 24);
    assert!(later.contains("discovery stale 11 s — last error"), "{later}");
    snapshot!(screen);
}

#[test]
fn a_failing_discovery_is_said_in_the_header_with_its_age_120x40() {
    let (app, now) = discovery_failing();
    let screen = draw(&app, now, 120, 40);
    assert!(
        screen.contains(
            "discovery stale 8 s — last error EndpointSlice watch: the API server refuses connections — down or restarting?[2J "
        ),
        "{screen}"
    );
    snapshot!(screen);
}

#[test]
fn a_discovery_that_works_adds_nothing_to_the_header() {
    let (mut app, now) = scenario(Mode::Balanced);
    let before = draw(&app, now, 80, 24);
    let ok = event::Kind::EndpointsChanged(observe::EndpointsChanged {
        seq: 301,
        endpoints: PODS
            .iter()
            .map(|(name, ip)| observe::Endpoint {
                address: format!("{ip}:50051"),
                pod_name: (*name).into(),
                ready: true,
                ..observe::Endpoint::default()
            })
            .collect(),
        discovery: Some(observe::DiscoveryState {
            source: "kube".into(),
            ..observe::DiscoveryState::default()
        }),
        ..observe::EndpointsChanged::default()
    });
    let discovery = observer_client::discovery_event(&ok).unwrap();
    app.update(gateway_event(ok), now);
    app.update(
        AppEvent::Gateway {
            gateway: GATEWAY.into(),
            event: discovery,
        },
        now,
    );
    let after = draw(&app, now, 80, 24);
    assert!(!after.contains("discovery"), "{after}");
    assert_eq!(before, after);
}
