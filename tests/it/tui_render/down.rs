//! A pod the gateway's health checks find down while sticky mode sends it
//! nothing: READY `down`, and the verdict names it with its cause.

use std::time::Instant;

use greet_proto::Mode;
use greet_proto::observe::{self, event};
use greet_top::state::App;

use super::{PODS, draw, gateway_event, scenario};

/// Sticky on one pod; the gateway's checks of the first listed one fail.
fn pod_down() -> (App, Instant) {
    let (mut app, now) = scenario(Mode::Sticky);
    let endpoints = PODS
        .iter()
        .enumerate()
        .map(|(i, (name, ip))| observe::Endpoint {
            address: format!("{ip}:50051"),
            pod_name: (*name).into(),
            ready: true,
            health_failure: if i == 0 {
                "connection refused".into()
            } else {
                String::new()
            },
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
fn a_pod_down_while_sticky_reads_down_and_the_verdict_names_it_120x40() {
    let (app, now) = pod_down();
    let screen = draw(&app, now, 120, 40);
    assert!(
        screen.contains("STUCK — press m to balance: 100 % on …-l8kmv; connection refused: …-67bmd down"),
        "{screen}"
    );
    assert!(
        screen.contains("greetserver-deploy-7595ccbdd5-67bmd 172.17.0.4      down "),
        "{screen}"
    );
    snapshot!(screen);
}

#[test]
fn a_pod_down_while_sticky_reads_down_80x24() {
    let (app, now) = pod_down();
    let screen = draw(&app, now, 80, 24);
    assert!(screen.contains("…tserver-deploy-7595ccbdd5-67bmd down "), "{screen}");
    snapshot!(screen);
}
