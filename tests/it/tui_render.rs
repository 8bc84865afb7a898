//! Rendering snapshots: the dashboard drawn into ratatui's TestBackend at
//! 80x24 and 120x40 from fixed states, compared with tests/it/snapshots/.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent};
use greet_proto::observe::{self, Endpoint, PodTotals, RequestEvent, State, event};
use greet_proto::{Mode, latency_buckets};
use greet_top::observer_client;
use greet_top::state::{App, AppEvent, KubeStatus, LoadState, PodInfo, WatchState};
use greet_top::ui::{Theme, render};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const PODS: [(&str, &str); 3] = [
    ("greetserver-deploy-7595ccbdd5-67bmd", "172.17.0.4"),
    ("greetserver-deploy-7595ccbdd5-k6zbl", "172.17.0.3"),
    ("greetserver-deploy-7595ccbdd5-l8kmv", "172.17.0.2"),
];

const GATEWAY: &str = "http://127.0.0.1:9092";

/// `insta::assert_snapshot!` for the modules in tests/it/tui_render/, whose
/// snapshots live with the others in tests/it/snapshots (insta looks beside
/// the calling file by default).
macro_rules! snapshot {
    ($($arg:tt)*) => {
        insta::with_settings!({ snapshot_path => "../snapshots" }, {
            insta::assert_snapshot!($($arg)*);
        })
    };
}

mod cut_text;
mod discovery;
mod down;
mod incidents;
mod methods;
mod pods_metrics;
mod refused;

/// An Observer event from the gateway, as the Observer client hands it on.
fn gateway_event(kind: event::Kind) -> AppEvent {
    stream_event(kind, Stream::Raw)
}

/// How the dashboard follows the gateway: every request, or summaries and a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Raw,
    Summaries,
}

fn stream_event(kind: event::Kind, stream: Stream) -> AppEvent {
    AppEvent::Gateway {
        gateway: GATEWAY.into(),
        event: observer_client::gateway_event(kind, stream == Stream::Summaries),
    }
}

/// What a gateway's summary says: cumulative counts and latency buckets per pod.
fn summary(pods: &BTreeMap<(&str, &str), (u64, Vec<u64>)>) -> event::Kind {
    event::Kind::Summary(observe::Summary {
        pods: pods
            .iter()
            .map(|((name, ip), (requests, buckets))| observe::PodSummary {
                pod_name: (*name).into(),
                pod_ip: (*ip).into(),
                endpoint: format!("{ip}:50051"),
                requests: *requests,
                attempts: *requests,
                latency_buckets: buckets.clone(),
                ..observe::PodSummary::default()
            })
            .collect(),
        ..observe::Summary::default()
    })
}

fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

/// A dashboard attached to a gateway, after 10 s of 30 req/s in `mode`:
/// sticky sends them all to one pod, balanced round-robins.
fn scenario(mode: Mode) -> (App, Instant) {
    scenario_as(mode, Stream::Raw)
}

/// The same traffic as [`scenario`], followed as `stream`: with summaries
/// every 250 ms and every request as a sample.
fn scenario_as(mode: Mode, stream: Stream) -> (App, Instant) {
    let t0 = Instant::now();
    let mut totals = BTreeMap::new();
    let mut next_summary = 250;
    let mut app = App::new(GATEWAY, t0).with_load(LoadState {
        running: true,
        rate: 30,
    });
    app.update(
        AppEvent::Connected {
            gateway: GATEWAY.into(),
        },
        t0,
    );
    app.update(
        gateway_event(event::Kind::Snapshot(State {
            mode: mode.to_proto() as i32,
            endpoints: PODS
                .iter()
                .map(|(name, ip)| Endpoint {
                    address: format!("{ip}:50051"),
                    pod_name: (*name).into(),
                    ready: true,
                    ..Default::default()
                })
                .collect(),
            pods: vec![PodTotals {
                pod_name: PODS[2].0.into(),
                pod_ip: PODS[2].1.into(),
                requests: 0,
                ..PodTotals::default()
            }],
            ..State::default()
        })),
        t0,
    );
    for i in 0..300u64 {
        let arrival = 33 * i + 20;
        while stream == Stream::Summaries && next_summary < arrival {
            app.update(stream_event(summary(&totals), stream), at(t0, next_summary));
            next_summary += 250;
        }
        let pod = match mode {
            Mode::Sticky => PODS[2],
            Mode::Balanced | Mode::LeastLoaded | Mode::Dns => PODS[(i % 3) as usize],
        };
        let latency_us = 400 + (i % 7) * 150;
        let (requests, buckets) = totals.entry(pod).or_insert((0, Vec::new()));
        *requests += 1;
        let bucket = latency_buckets::bucket_of(latency_us);
        buckets.resize(buckets.len().max(bucket + 1), 0);
        buckets[bucket] += 1;
        let request = RequestEvent {
            seq: i + 1,
            pod_name: pod.0.into(),
            pod_ip: pod.1.into(),
            endpoint: format!("{}:50051", pod.1),
            mode: mode.to_proto() as i32,
            latency_us,
            ..RequestEvent::default()
        };
        app.update(stream_event(event::Kind::Request(request), stream), at(t0, arrival));
    }
    while stream == Stream::Summaries && next_summary <= 10_000 {
        app.update(stream_event(summary(&totals), stream), at(t0, next_summary));
        next_summary += 250;
    }
    let now = at(t0, 10_000);
    app.tick(now);
    (app, now)
}

/// A dashboard following a gateway that has answered with an empty snapshot.
fn connected(t0: Instant) -> App {
    let mut app = App::new(GATEWAY, t0);
    let connected = AppEvent::Connected {
        gateway: GATEWAY.into(),
    };
    app.update(connected, t0);
    app.update(gateway_event(event::Kind::Snapshot(State::default())), t0);
    app
}

fn draw(app: &App, now: Instant, width: u16, height: u16) -> String {
    screen(width, height, |frame| render(app, frame, now, Theme { color: true }))
}

/// What `draw_frame` leaves on a `width` x `height` screen.
fn screen(width: u16, height: u16, draw_frame: impl FnOnce(&mut ratatui::Frame)) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(draw_frame).unwrap();
    terminal.backend().to_string()
}

#[test]
fn sticky_80x24() {
    let (app, now) = scenario(Mode::Sticky);
    let screen = draw(&app, now, 80, 24);
    assert!(screen.contains("STUCK — press m to balance: 100 % on"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn sticky_120x40() {
    let (app, now) = scenario(Mode::Sticky);
    insta::assert_snapshot!(draw(&app, now, 120, 40));
}

#[test]
fn balanced_80x24() {
    let (app, now) = scenario(Mode::Balanced);
    let screen = draw(&app, now, 80, 24);
    // The title states the window once; the verdict and the figures are over it.
    assert!(screen.contains("┌ greet-top · over the last 10 s ─"), "{screen}");
    assert!(screen.contains("│EVEN: 3 pods, fairness 1.00   "), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn balanced_120x40() {
    let (app, now) = scenario(Mode::Balanced);
    insta::assert_snapshot!(draw(&app, now, 120, 40));
}

/// greet-top's default stream (summaries every 250 ms, a sample for the
/// tail) counts exactly what every request would: the same hits, rates,
/// fairness and header. Latencies land in the window by the summary that
/// brought them, so p50/p99 may differ by the requests at the window's edge.
#[test]
fn summaries_count_what_every_request_counts() {
    for mode in [Mode::Sticky, Mode::Balanced] {
        let (raw, now) = scenario(mode);
        let (summarised, then) = scenario_as(mode, Stream::Summaries);
        let figures = |app: &App, at: Instant| {
            let (stats, _) = app.view(at);
            let pods: Vec<(String, u64, u64, u64)> = stats
                .pods
                .values()
                .map(|p| (p.name.clone(), p.hits(), p.errors(), p.in_window(at)))
                .collect();
            let observed = app.observed_for(at);
            (pods, stats.total(), stats.rps(at, observed), stats.fairness(at))
        };
        assert_eq!(figures(&raw, now), figures(&summarised, then), "{mode}");
        for pod in summarised.stats().pods.values().filter(|p| p.hits() > 0) {
            let exact = &raw.stats().pods[&pod.name];
            for percentile in [50.0, 99.0] {
                let (a, b) = (
                    exact.latency_ms(percentile).unwrap(),
                    pod.latency_ms(percentile).unwrap(),
                );
                assert!((a - b).abs() <= a * 0.25, "{mode} p{percentile}: {a} vs {b}");
            }
        }
        let (raw, summarised) = (draw(&raw, now, 120, 40), draw(&summarised, then, 120, 40));
        // The header and the share bars read the same.
        let panels = |screen: &str| -> Vec<String> {
            let lines: Vec<&str> = screen.lines().collect();
            [&lines[..5], &lines[11..16]]
                .concat()
                .iter()
                .map(|l| (*l).to_owned())
                .collect()
        };
        assert_eq!(panels(&raw), panels(&summarised), "{mode}");
        assert!(summarised.contains("Recent requests, a sample, newest first"));
    }
}

#[test]
fn help_overlay_80x24() {
    let (app, now) = scenario(Mode::Sticky);
    let mut app = app.with_demo();
    app.on_key(KeyEvent::from(KeyCode::Char('?')), now);
    insta::assert_snapshot!(draw(&app, now, 80, 24));
}

#[test]
fn the_demo_header_shows_the_max_connection_age_while_it_is_set() {
    let (app, now) = scenario(Mode::Sticky);
    let mut app = app.with_demo();
    let header = |app: &App| draw(app, now, 80, 24).lines().nth(1).unwrap().to_owned();
    let without = header(&app);
    app.update(AppEvent::ConnectionAge(Some(Duration::from_secs(3))), now);
    let with = header(&app);
    assert!(with.contains("  max age 3s  ● connected"), "{with}");
    app.update(AppEvent::ConnectionAge(None), now);
    assert_eq!(header(&app), without);
}

#[test]
fn gone_pod_and_reconnecting_gateway_120x40() {
    let (mut app, now) = scenario(Mode::Balanced);
    app.update(
        AppEvent::Pods(
            PODS[..2]
                .iter()
                .map(|(name, ip)| PodInfo {
                    name: (*name).into(),
                    ip: (*ip).into(),
                    ready: true,
                    ..PodInfo::default()
                })
                .collect(),
        ),
        now,
    );
    app.update(
        gateway_event(event::Kind::Request(RequestEvent {
            seq: 301,
            endpoint: "172.17.0.9:50051".into(),
            mode: observe::Mode::Balanced as i32,
            latency_us: 1_000_000,
            grpc_code: 14,
            error: "greet-server at 172.17.0.9:50051 is unavailable (tcp connect error)".into(),
            ..RequestEvent::default()
        })),
        now,
    );
    app.update(
        AppEvent::Disconnected {
            gateway: GATEWAY.into(),
            error: "gateway unreachable (is it running, or the port-forward up?)".into(),
            retry_in: Duration::from_secs(4),
        },
        now,
    );
    insta::assert_snapshot!(draw(&app, now, 120, 40));
}

#[test]
fn too_small_terminal_gets_a_message() {
    let (app, now) = scenario(Mode::Sticky);
    let screen = draw(&app, now, 40, 10);
    insta::assert_snapshot!(screen);
}

#[test]
fn every_size_from_tiny_to_wide_renders_without_panicking() {
    let (mut app, now) = scenario(Mode::Balanced);
    app.on_key(KeyEvent::from(KeyCode::Char('?')), now);
    assert!(app.show_help());
    for width in (1..=140).step_by(7) {
        for height in (1..=45).step_by(4) {
            draw(&app, now, width, height);
        }
    }
}

/// Pods from a Kubernetes watch: one pending, one restarted, ages shown.
fn kube_scenario(watch: WatchState) -> (App, Instant) {
    let (mut app, now) = scenario(Mode::Sticky);
    app.update(
        AppEvent::Kube(KubeStatus {
            context: "minikube".into(),
            namespace: "default".into(),
            watch,
        }),
        now,
    );
    let pods = PODS
        .iter()
        .enumerate()
        .map(|(i, (name, ip))| PodInfo {
            name: (*name).into(),
            ip: (*ip).into(),
            endpoint: String::new(),
            ready: i != 0,
            skipped: None,
            down: None,
            serving_terminating: false,
            phase: Some(if i == 0 { "Pending" } else { "Running" }.into()),
            restarts: i as u32,
            node: Some("minikube".into()),
            created: now.checked_sub(Duration::from_secs(91 + 3600 * i as u64)),
            metrics_family: None,
        })
        .collect();
    app.update(AppEvent::Pods(pods), now);
    (app, now)
}

#[test]
fn kube_pods_120x40() {
    let (app, now) = kube_scenario(WatchState::Synced);
    let screen = draw(&app, now, 120, 40);
    assert!(screen.contains("kube minikube/default  pods synced"));
    insta::assert_snapshot!(screen);
}

#[test]
fn kube_forbidden_80x24() {
    let (app, now) = kube_scenario(WatchState::Forbidden(
        "needs get, list and watch on pods in namespace default (apply k8s/greet-top-rbac.yaml)".into(),
    ));
    insta::assert_snapshot!(draw(&app, now, 80, 24));
}

#[test]
fn first_frame_before_the_gateway_answers_80x24() {
    let t0 = Instant::now();
    let app = App::new(GATEWAY, t0).expecting(GATEWAY);
    let screen = draw(&app, at(t0, 100), 80, 24);
    assert!(screen.contains("◌ connecting…"));
    assert!(screen.contains("No pods yet: waiting for the gateway's endpoint list."));
    insta::assert_snapshot!(screen);
}

#[test]
fn many_pods_keep_every_panel_and_show_the_busiest() {
    let t0 = Instant::now();
    let mut app = App::new(GATEWAY, t0).expecting(GATEWAY);
    let endpoints = (0..60)
        .map(|i| Endpoint {
            address: format!("10.0.{}.{}:50051", i / 200, i % 200),
            pod_name: format!("greetserver-{i:02}"),
            ready: true,
            ..Default::default()
        })
        .collect();
    app.update(
        gateway_event(event::Kind::Snapshot(State {
            mode: observe::Mode::Balanced as i32,
            endpoints,
            ..State::default()
        })),
        t0,
    );
    for i in 0..20u64 {
        let request = RequestEvent {
            seq: i + 1,
            pod_name: format!("greetserver-{:02}", 50 + i % 2),
            mode: observe::Mode::Balanced as i32,
            latency_us: 500,
            ..RequestEvent::default()
        };
        app.update(gateway_event(event::Kind::Request(request)), at(t0, 100 * i));
    }
    let now = at(t0, 2_500);
    app.tick(now);
    let screen = draw(&app, now, 80, 24);
    assert!(
        screen.contains("Pods (60; 1-6 of 60, ↑↓ to scroll) · by rate"),
        "{screen}"
    );
    assert!(
        screen.contains("Recent requests"),
        "the tail stays on screen:\n{screen}"
    );
    insta::assert_snapshot!(screen);
    // Scrolling moves through the rest; the offset stops at the last page.
    for _ in 0..100 {
        app.on_key(KeyEvent::from(KeyCode::Down), now);
    }
    let screen = draw(&app, now, 80, 24);
    assert!(screen.contains("55-60 of 60"), "{screen}");
    app.on_key(KeyEvent::from(KeyCode::Home), now);
    assert!(draw(&app, now, 80, 24).contains("1-6 of 60"));
}

#[test]
fn no_color_draws_without_colours() {
    let (app, now) = scenario(Mode::Sticky);
    for (color, expect_colours) in [(true, true), (false, false)] {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal
            .draw(|frame| render(&app, frame, now, Theme { color }))
            .unwrap();
        let buffer = terminal.backend().buffer();
        let coloured = buffer
            .content()
            .iter()
            .any(|cell| cell.fg != ratatui::style::Color::Reset || cell.bg != ratatui::style::Color::Reset);
        assert_eq!(coloured, expect_colours, "color={color}");
        // The mode badge stands out either way: coloured, or reversed.
        let badge = buffer.content().iter().find(|cell| {
            cell.symbol() == "S"
                && (cell.bg != ratatui::style::Color::Reset
                    || cell.modifier.contains(ratatui::style::Modifier::REVERSED))
        });
        assert!(badge.is_some(), "color={color}: the STICKY badge is not highlighted");
    }
}

/// Calls through the gateway's gRPC ingress add a panel of hits by method
/// and pod above the recent requests; REST's requests show as POST /greet.
#[test]
fn ingress_calls_are_shown_by_method_and_pod() {
    let t0 = Instant::now();
    let mut app = connected(t0);
    let pods = |greets: u64| {
        PODS.iter()
            .take(2)
            .enumerate()
            .map(|(i, (name, ip))| {
                let method = |method: &str, requests, errors| observe::MethodCount {
                    method: method.into(),
                    requests,
                    errors,
                };
                let (health, rest) = (u64::from(i == 0) * greets, u64::from(i == 1) * 3);
                observe::PodSummary {
                    pod_name: (*name).into(),
                    pod_ip: (*ip).into(),
                    endpoint: format!("{ip}:50051"),
                    requests: greets + health + rest,
                    errors: u64::from(i == 1),
                    error_codes: vec![observe::CodeCount {
                        code: 14,
                        count: u64::from(i == 1),
                    }]
                    .into_iter()
                    .filter(|c| c.count > 0)
                    .collect(),
                    methods: [
                        method("", rest, 0),
                        method("/greet.GreetService/Greet", greets, u64::from(i == 1)),
                        method("/grpc.health.v1.Health/Check", health, 0),
                    ]
                    .into_iter()
                    .filter(|m| m.requests > 0)
                    .collect(),
                    ..observe::PodSummary::default()
                }
            })
            .collect()
    };
    let summary = |greets| {
        stream_event(
            event::Kind::Summary(observe::Summary {
                pods: pods(greets),
                ..observe::Summary::default()
            }),
            Stream::Summaries,
        )
    };
    app.update(summary(0), at(t0, 250));
    app.update(summary(40), at(t0, 500));
    let now = at(t0, 1_000);
    app.tick(now);
    let screen = draw(&app, now, 80, 30);
    let panel: Vec<&str> = screen
        .lines()
        .skip_while(|line| !line.contains("Hits by method and pod"))
        .take(7)
        .collect();
    assert_eq!(
        panel,
        [
            "\"┌ Hits by method and pod, busiest first ───────────────────────────────────────┐\"",
            "\"│METHOD                        POD                                 HITS     ERR│\"",
            "\"│/greet.GreetService/Greet     …server-deploy-7595ccbdd5-67bmd       40       0│\"",
            "\"│/greet.GreetService/Greet     …server-deploy-7595ccbdd5-k6zbl       40       1│\"",
            "\"│/grpc.health.v1.Health/Check  …server-deploy-7595ccbdd5-67bmd       40       0│\"",
            "\"│POST /greet                   …server-deploy-7595ccbdd5-k6zbl        3       0│\"",
            "\"└──────────────────────────────────────────────────────────────────────────────┘\"",
        ],
        "{screen}"
    );
}

/// dns mode: its badge and its line in the header; round robin over the
/// last answer reads as even.
#[test]
fn dns_80x24() {
    let (app, now) = scenario(Mode::Dns);
    let screen = draw(&app, now, 80, 24);
    assert!(
        screen.contains("mode  DNS   300 req  30.0/s  fairness 1.00  · DNS round robin: new pods wait"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
}

#[test]
fn least_loaded_80x24() {
    let (app, now) = scenario(Mode::LeastLoaded);
    let screen = draw(&app, now, 80, 24);
    assert!(
        screen.contains("mode  LEAST-LOADED   300 req  30.0/s  fairness 1.00  · avoids slow pods"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
}
