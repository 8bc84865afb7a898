//! The screen during an incident: failures, a down or restarted gateway, a
//! narrow terminal. Each state drawn as greet-top draws it.

use std::time::{Duration, Instant};

use greet_proto::Mode;
use greet_proto::observe::{self, RequestEvent, State, event};
use greet_top::state::{App, AppEvent};
use ratatui::style::Modifier;

use super::{PODS, draw, gateway_event, scenario};

/// Sticky, then the pinned pod dies: 40 requests to its address fail with
/// UNAVAILABLE in the last 2 s (the gateway dialled it directly, so the
/// failures are its own).
fn pinned_pod_killed() -> (App, Instant) {
    let (mut app, now) = scenario(Mode::Sticky);
    for i in 0..40u64 {
        let failed = RequestEvent {
            seq: 301 + i,
            pod_ip: PODS[2].1.into(),
            endpoint: format!("{}:50051", PODS[2].1),
            mode: observe::Mode::Sticky as i32,
            latency_us: 800,
            grpc_code: 14,
            error: "connection refused".into(),
            ..RequestEvent::default()
        };
        let at = now + Duration::from_millis(50 * i);
        app.update(gateway_event(event::Kind::Request(failed)), at);
    }
    let now = now + Duration::from_secs(2);
    app.tick(now);
    (app, now)
}

#[test]
fn failures_in_sticky_mode_80x24() {
    let (app, now) = pinned_pod_killed();
    let screen = draw(&app, now, 80, 24);
    assert!(
        screen.contains("FAILING — press m to balance: 40 of 278 failed (…-l8kmv 40 UNAVAILABLE)"),
        "{screen}"
    );
    snapshot!(screen);
}

#[test]
fn failures_in_sticky_mode_120x40() {
    let (app, now) = pinned_pod_killed();
    snapshot!(draw(&app, now, 120, 40));
}

#[test]
fn failures_keep_their_columns_and_the_verdict_at_60x15() {
    let (app, now) = pinned_pod_killed();
    let screen = draw(&app, now, 60, 15);
    assert!(screen.contains("FAILING — press m to balance"), "{screen}");
    assert!(screen.contains("q quit  ? help"), "{screen}");
    assert!(screen.contains("ERR") && screen.contains("OK%"), "{screen}");
    snapshot!(screen);
}

/// The gateway has been down for 12 s after the sticky scenario.
fn gateway_down() -> (App, Instant) {
    let (mut app, now) = scenario(Mode::Sticky);
    for (after, retry) in [(0, 1), (1, 2), (3, 4), (7, 5)] {
        let down = AppEvent::Disconnected {
            gateway: super::GATEWAY.into(),
            error: "gateway unreachable: connection refused (is it running, or the port-forward up?)".into(),
            retry_in: Duration::from_secs(retry),
        };
        app.update(down, now + Duration::from_secs(after));
    }
    // Frames go on while it is down (a tick each): the windows move on.
    let now = now + Duration::from_secs(12);
    app.tick(now);
    (app, now)
}

#[test]
fn a_down_gateway_dims_everything_it_no_longer_feeds_80x24() {
    let (app, now) = gateway_down();
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
    terminal
        .draw(|frame| greet_top::ui::render(&app, frame, now, greet_top::ui::Theme { color: true }))
        .unwrap();
    let buffer = terminal.backend().buffer();
    // The header stays bright: it is what says the data is stale.
    assert!(!buffer[(2, 2)].modifier.contains(Modifier::DIM));
    // Every row of the panels below it (the header has grown a line for the
    // cause) is dimmed, the hit count included.
    for y in 6..23 {
        assert!(
            buffer[(40, y)].modifier.contains(Modifier::DIM),
            "row {y} is not dimmed"
        );
    }
    let screen = draw(&app, now, 80, 24);
    assert!(
        screen.contains("gateway unreachable for 12 s: connection refused (is it running, or the"),
        "{screen}"
    );
    snapshot!(screen);
}

#[test]
fn a_down_gateway_120x40() {
    let (app, now) = gateway_down();
    snapshot!(draw(&app, now, 120, 40));
}

/// Balanced, then the gateway comes back from a restart in sticky mode;
/// drawn 3 s later.
fn restarted_sticky() -> (App, Instant) {
    let (mut app, now) = scenario(Mode::Balanced);
    let restarted = State {
        mode: observe::Mode::Sticky as i32,
        started_unix_us: 1,
        endpoints: PODS
            .iter()
            .map(|(name, ip)| observe::Endpoint {
                address: format!("{ip}:50051"),
                pod_name: (*name).into(),
                ready: true,
                ..Default::default()
            })
            .collect(),
        ..State::default()
    };
    let back = now + Duration::from_secs(5);
    app.update(gateway_event(event::Kind::Snapshot(restarted)), back);
    (app, back + Duration::from_secs(3))
}

#[test]
fn a_gateway_back_in_sticky_mode_after_a_restart_80x24() {
    let (app, now) = restarted_sticky();
    snapshot!(draw(&app, now, 80, 24));
}

#[test]
fn a_gateway_back_in_sticky_mode_after_a_restart_120x40() {
    let (app, now) = restarted_sticky();
    let screen = draw(&app, now, 120, 40);
    assert!(
        screen.contains("gateway restarted in sticky mode 3 s ago — press m to balance again"),
        "{screen}"
    );
    // The header and the rows count the same window: 19 + 19 + 20 = 58.
    assert!(screen.contains("│mode  STICKY   58 req  5.8/s"), "{screen}");
    assert!(screen.contains("yes          20  34.5%"), "{screen}");
    snapshot!(screen);
}

/// Balanced, then the gateway reports that its balancer skips one pod.
fn pod_skipped() -> (App, Instant) {
    first_endpoint_reported(Mode::Balanced, |e| e.skipped_reason = "connection refused".into())
}

/// The `mode` scenario, then an endpoint list from the gateway in which the
/// first pod's endpoint is as `mark` leaves it.
pub(super) fn first_endpoint_reported(mode: Mode, mark: impl Fn(&mut observe::Endpoint)) -> (App, Instant) {
    let (mut app, now) = scenario(mode);
    let endpoints = PODS
        .iter()
        .enumerate()
        .map(|(i, (name, ip))| {
            let mut endpoint = observe::Endpoint {
                address: format!("{ip}:50051"),
                pod_name: (*name).into(),
                ready: true,
                ..observe::Endpoint::default()
            };
            if i == 0 {
                mark(&mut endpoint);
            }
            endpoint
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
fn a_pod_the_gateway_skips_80x24() {
    let (app, now) = pod_skipped();
    let screen = draw(&app, now, 80, 24);
    assert!(
        screen.contains("SKIPPING …-67bmd (connection refused): the gateway routes around it"),
        "{screen}"
    );
    assert!(screen.contains(" skip "), "{screen}");
    snapshot!(screen);
}

#[test]
fn a_pod_the_gateway_skips_120x40() {
    let (app, now) = pod_skipped();
    snapshot!(draw(&app, now, 120, 40));
}

/// A pod killed under balanced load: the pod source no longer lists it.
#[test]
fn a_dead_pod_80x24() {
    let (mut app, now) = scenario(Mode::Balanced);
    let listed = PODS[..2]
        .iter()
        .map(|(name, ip)| greet_top::state::PodInfo {
            name: (*name).into(),
            ip: (*ip).into(),
            ready: true,
            ..Default::default()
        })
        .collect();
    app.update(AppEvent::Pods(listed), now);
    let screen = draw(&app, now, 80, 24);
    assert!(screen.contains(" gone "), "{screen}");
    snapshot!(screen);
}

#[test]
fn the_chart_draws_failed_requests_per_second_in_the_error_style() {
    let (app, now) = pinned_pod_killed();
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
    terminal
        .draw(|frame| greet_top::ui::render(&app, frame, now, greet_top::ui::Theme { color: true }))
        .unwrap();
    let buffer = terminal.backend().buffer();
    let screen = draw(&app, now, 120, 40);
    let lines: Vec<&str> = screen.lines().collect();
    let title = lines
        .iter()
        .position(|l| l.contains("Requests and errors per second"))
        .unwrap_or_else(|| panic!("no errors chart: {screen}"));
    // 40 failures over the 2 s before `now`: the last two whole seconds'
    // bars (the right edge of the chart, above the marks row) are red from
    // the bottom; the seconds before had none.
    assert!(lines[title + 1].contains("last"), "{screen}");
    assert!(lines[title + 3].contains("err 20/s"), "{screen}");
    let bottom = u16::try_from(title + 2).unwrap();
    let right = 118;
    let red = |x: u16| buffer[(x, bottom)].fg == ratatui::style::Color::Red;
    assert!(red(right) && red(right - 1), "the failing seconds are red");
    assert!(!red(right - 3), "an earlier second is not");
}

/// Balanced, then one pod stops answering (SIGSTOP): the gateway's next
/// summary has 40 requests waiting on it, the oldest for 800 ms.
fn pod_hung() -> (App, Instant) {
    let (mut app, now) = super::scenario_as(Mode::Balanced, super::Stream::Summaries);
    let pods = PODS
        .iter()
        .enumerate()
        .map(|(i, (name, ip))| observe::PodSummary {
            pod_name: (*name).into(),
            pod_ip: (*ip).into(),
            endpoint: format!("{ip}:50051"),
            requests: 100,
            attempts: 100,
            in_flight: if i == 0 { 40 } else { 0 },
            oldest_in_flight_us: if i == 0 { 800_000 } else { 0 },
            connections: 1,
            ..observe::PodSummary::default()
        })
        .collect();
    let summary = event::Kind::Summary(observe::Summary {
        pods,
        ..observe::Summary::default()
    });
    let now = now + Duration::from_millis(250);
    app.update(super::stream_event(summary, super::Stream::Summaries), now);
    app.tick(now);
    (app, now)
}

#[test]
fn a_hung_pod_reads_hung_with_its_requests_in_flight_120x40() {
    let (app, now) = pod_hung();
    let screen = draw(&app, now, 120, 40);
    let row = screen
        .lines()
        .find(|l| l.starts_with(&format!("\"│{}", PODS[0].0)))
        .unwrap_or_else(|| panic!("no row for the pod: {screen}"));
    assert!(row.contains(" hung? "), "{screen}");
    assert!(row.contains("   40    1 "), "INFL 40, CONN 1: {screen}");
    // The verdict names it too: an even spread says nothing while a pod holds 40 requests.
    assert!(
        screen.contains("│HUNG?: greetserver-deploy-7595ccbdd5-67bmd 40 requests unanswered for 0.8 s"),
        "{screen}"
    );
    snapshot!(screen);
}

#[test]
fn a_hung_pod_reads_hung_at_80x24_too() {
    let (app, now) = pod_hung();
    let screen = draw(&app, now, 80, 24);
    assert!(
        screen
            .lines()
            .any(|l| l.contains("…tserver-deploy-7595ccbdd5-67bmd hung?")),
        "{screen}"
    );
    assert!(
        screen.contains("│HUNG?: …-67bmd 40 requests unanswered for 0.8 s"),
        "{screen}"
    );
}
