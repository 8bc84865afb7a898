//! A pod the gateway's health checks find down while sticky mode sends it
//! nothing: READY `down`, and the verdict names it with its cause.

use std::time::Instant;

use greet_proto::Mode;
use greet_top::state::App;

use super::draw;
use super::incidents::first_endpoint_reported;

/// Sticky on one pod; the gateway's checks of the first listed one fail.
fn pod_down() -> (App, Instant) {
    first_endpoint_reported(Mode::Sticky, |e| e.health_failure = "connection refused".into())
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
