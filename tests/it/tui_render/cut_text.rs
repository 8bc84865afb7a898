//! Long text the user must read whole (a cause, what to do, a notice) is
//! never cut where the terminal ends: it wraps, or ends in "…" on purpose
//! where another line says it whole.

use std::time::{Duration, Instant};

use greet_top::state::{App, AppEvent};

use super::{GATEWAY, draw, scenario};

/// What the Observer client says of an address that answered as another server.
const WRONG_PORT: &str = "not an Observer endpoint: it answered HTTP 404 Not Found — point --gateway at the \
                          gateway's Observer port (OBSERVE_PORT, default 9092)";

/// greet-top pointed at the gateway's REST port: 17 s of refusals.
fn wrong_port() -> (App, Instant) {
    let t0 = Instant::now();
    let mut app = App::new(GATEWAY, t0).expecting(GATEWAY);
    app.update(
        AppEvent::Disconnected {
            gateway: GATEWAY.into(),
            error: WRONG_PORT.into(),
            retry_in: Duration::from_secs(1),
        },
        t0 + Duration::from_secs(1),
    );
    let now = t0 + Duration::from_secs(17);
    app.tick(now);
    (app, now)
}

/// The screen's lines, each without its border and trailing blanks, joined by spaces.
fn read(screen: &str) -> String {
    screen
        .lines()
        .map(|l| l.trim_matches('"').trim_matches(|c| c == '│' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_wrong_port_is_said_whole_in_the_verdict_and_the_pods_panel_80x24() {
    let (app, now) = wrong_port();
    let screen = draw(&app, now, 80, 24);
    let text = read(&screen);
    assert!(text.contains(&format!("gateway: {WRONG_PORT}")), "{screen}");
    assert!(text.contains(&format!("No pods: {WRONG_PORT}")), "{screen}");
    assert!(!screen.contains("waiting for the gateway's endpoint list"), "{screen}");
    snapshot!(screen);
}

#[test]
fn a_wrong_port_is_said_whole_in_the_verdict_and_the_pods_panel_120x40() {
    let (app, now) = wrong_port();
    let screen = draw(&app, now, 120, 40);
    let text = read(&screen);
    assert!(text.contains(&format!("gateway: {WRONG_PORT}")), "{screen}");
    assert!(text.contains(&format!("No pods: {WRONG_PORT}")), "{screen}");
    snapshot!(screen);
}

/// The notice greet-top shows when it finds no kubeconfig, as `kube` words it.
const NO_KUBE: &str = "no Kubernetes access (failed to infer config: in-cluster: (failed to read the \
                       service account token), kubeconfig: (failed to read kubeconfig from \
                       \"/home/oncall/.kube/config\": No such file or directory (os error 2))); pods come from \
                       the gateway";

fn without_kube(width: u16, height: u16) -> String {
    let (mut app, now) = scenario(greet_proto::Mode::Balanced);
    app.update(
        AppEvent::Notice {
            text: NO_KUBE.into(),
            error: false,
        },
        now,
    );
    draw(&app, now, width, height)
}

#[test]
fn the_no_kubernetes_notice_wraps_and_keeps_what_it_means_80x24() {
    let screen = without_kube(80, 24);
    let footer: Vec<&str> = screen.lines().rev().take(2).collect();
    assert!(
        footer[1].starts_with("\"no Kubernetes access (failed to infer config"),
        "{screen}"
    );
    assert!(
        footer[0].ends_with("…; pods come from the gateway\""),
        "two lines: the middle gives way, what it means stays: {screen}"
    );
    snapshot!(screen);
}

#[test]
fn the_no_kubernetes_notice_wraps_and_keeps_what_it_means_120x40() {
    let screen = without_kube(120, 40);
    let footer: Vec<&str> = screen.lines().rev().take(2).collect();
    assert!(footer[0].contains("; pods come from the gateway"), "{screen}");
    assert!(
        footer[1].starts_with("\"no Kubernetes access (failed to infer config"),
        "{screen}"
    );
    assert!(read(&screen).contains("\"/home/oncall/.kube/config\""), "{screen}");
    snapshot!(screen);
}

/// A watch error as kube words it: long, with a URL no space breaks.
const WATCH_ERROR: &str = "ApiError: the server could not find the requested resource (get \
                           https://kubernetes.default.svc:443/api/v1/namespaces/default/pods?watch=true&resourceVersion=48213): \
                           NotFound (ErrorResponse { status: \"Failure\", code: 404 })";

#[test]
fn a_long_kube_watch_error_wraps_in_the_header_80x24() {
    let (app, now) = super::kube_scenario(greet_top::state::WatchState::Retrying(WATCH_ERROR.into()));
    let screen = draw(&app, now, 80, 24);
    assert!(
        read(&screen).contains("pod watch retrying: ApiError: the server could not find"),
        "{screen}"
    );
    assert!(
        screen.contains("/api/v1/namespac│") && screen.contains("│es/default/pods?watch=true"),
        "the URL breaks at the edge and goes on: {screen}"
    );
    assert!(
        screen.contains("NotFound (ErrorResponse {… │"),
        "three lines, then '…': {screen}"
    );
    snapshot!(screen);
}

#[test]
fn a_long_kube_watch_error_wraps_in_the_header_120x40() {
    let (app, now) = super::kube_scenario(greet_top::state::WatchState::Retrying(WATCH_ERROR.into()));
    let screen = draw(&app, now, 120, 40);
    let text: String = read(&screen).split_whitespace().collect();
    let whole: String = format!("pod watch retrying: {WATCH_ERROR}")
        .split_whitespace()
        .collect();
    assert!(text.contains(&whole), "{screen}");
    snapshot!(screen);
}

#[test]
fn an_ipv6_pod_address_keeps_its_end_marked_as_cut_120x40() {
    use greet_proto::observe::{self, Endpoint, State, event};

    let t0 = Instant::now();
    let mut app = App::new(GATEWAY, t0);
    let snapshot = State {
        mode: observe::Mode::Balanced as i32,
        started_unix_us: 1,
        endpoints: vec![Endpoint {
            address: "[fd00:1234:5678:9abc::17]:50051".into(),
            pod_name: "greetserver-v6".into(),
            ready: true,
            ..Default::default()
        }],
        ..State::default()
    };
    app.update(super::gateway_event(event::Kind::Snapshot(snapshot)), t0);
    let screen = draw(&app, t0, 120, 40);
    assert!(screen.contains("greetserver-v6 …:5678:9abc::17 yes"), "{screen}");
}

#[test]
fn at_the_smallest_size_a_wrong_port_still_says_what_to_do_60x15() {
    let (app, now) = wrong_port();
    let screen = draw(&app, now, 60, 15);
    let text = read(&screen);
    assert!(text.contains(&format!("gateway: {WRONG_PORT}")), "{screen}");
    assert!(screen.lines().last().is_some_and(|l| l.contains("q quit")), "{screen}");
}
