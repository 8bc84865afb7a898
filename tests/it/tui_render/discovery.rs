//! What discovery says on the screen: pods served while terminating (no pod
//! of the Service is ready), and a discovery that is failing.

use std::time::Instant;

use greet_proto::Mode;
use greet_proto::observe::{self, event};
use greet_top::state::App;

use super::{PODS, draw, gateway_event, scenario};

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
