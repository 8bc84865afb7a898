use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::state::messages::PodInfo;
use crate::state::messages::{Action, GatewayEvent};
use crate::state::test_events::{PODS, gw, hits, request, secs, snapshot, synced_app};

fn key(app: &mut App, c: char, now: Instant) -> Option<Action> {
    app.on_key(KeyEvent::from(KeyCode::Char(c)), now)
}

#[test]
fn requests_count_hits_and_shares_and_skip_what_the_snapshot_had() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Sticky, &[("pod-a", "10.0.0.1", 2)], 2), t0);
    app.update(request(2, "pod-a", "10.0.0.1", 100), t0); // already counted
    for seq in 3..=5 {
        app.update(request(seq, "pod-a", "10.0.0.1", 100), t0);
    }
    app.update(request(6, "pod-b", "10.0.0.2", 100), t0);
    assert_eq!(hits(&app), [("pod-a".into(), 5), ("pod-b".into(), 1)]);
    assert_eq!(app.stats().total(), 6);
    let report = crate::report::build(&app, secs(1.0));
    assert_eq!(report.pods[0].share, 5.0 / 6.0);
    assert_eq!(report.pods[1].share, 1.0 / 6.0);
}

#[test]
fn reset_zeroes_counters_and_forgets_gone_pods() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(
        snapshot(Mode::Sticky, &[("pod-a", "10.0.0.1", 40), ("pod-b", "10.0.0.2", 0)], 40),
        t0,
    );
    app.update(
        AppEvent::Pods(vec![PodInfo {
            name: "pod-a".into(),
            ip: "10.0.0.1".into(),
            ready: true,
            ..PodInfo::default()
        }]),
        t0,
    );
    key(&mut app, 'r', t0 + secs(1.0));
    assert_eq!(hits(&app), [("pod-a".into(), 0)]);
    assert_eq!(app.stats().total(), 0);
    assert!(app.stats().tail.is_empty());
    assert_eq!(app.message().unwrap().text, "counters reset");
    assert_eq!(app.observed_for(t0 + secs(3.0)), secs(2.0), "counting restarts");
    app.update(request(41, "pod-a", "10.0.0.1", 100), t0 + secs(2.0));
    assert_eq!(hits(&app), [("pod-a".into(), 1)]);
    // A later snapshot (after a reconnect) keeps counting from the reset.
    app.update(snapshot(Mode::Sticky, &[("pod-a", "10.0.0.1", 45)], 45), t0 + secs(3.0));
    assert_eq!(hits(&app), [("pod-a".into(), 5)]);
}

#[test]
fn mode_key_asks_for_the_next_mode_and_reports_the_result() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    assert_eq!(key(&mut app, 'm', t0), None);
    assert!(app.message().unwrap().error, "no mode before the first snapshot");
    app.update(snapshot(Mode::Sticky, &PODS, 0), t0);
    assert_eq!(key(&mut app, 'm', t0), Some(Action::SetMode(Mode::Balanced)));
    assert_eq!(app.message().unwrap().text, "switching the gateway to balanced…");
    // What the Observer client makes of a failed switch (sanitised there).
    app.update(
        crate::observer_client::mode_set("gw".into(), Err("gateway unreachable\u{1b}[2J".into())),
        t0,
    );
    let message = app.message().cloned().unwrap();
    assert!(message.error);
    assert_eq!(message.text, "mode switch failed: gateway unreachable[2J");
    assert_eq!(app.mode(), Some(Mode::Sticky));
    app.update(
        gw(GatewayEvent::ModeChanged {
            seq: 1,
            mode: Some(Mode::Balanced),
            unknown: None,
        }),
        t0,
    );
    assert_eq!(app.mode(), Some(Mode::Balanced));
    assert_eq!(key(&mut app, 'm', t0), Some(Action::SetMode(Mode::LeastLoaded)));
    app.update(
        gw(GatewayEvent::ModeChanged {
            seq: 2,
            mode: Some(Mode::LeastLoaded),
            unknown: None,
        }),
        t0,
    );
    assert_eq!(key(&mut app, 'm', t0), Some(Action::SetMode(Mode::Dns)));
    app.update(
        gw(GatewayEvent::ModeChanged {
            seq: 3,
            mode: Some(Mode::Dns),
            unknown: None,
        }),
        t0,
    );
    // The cycle closes: back to sticky.
    assert_eq!(key(&mut app, 'm', t0), Some(Action::SetMode(Mode::Sticky)));
}

#[test]
fn quit_keys_quit_and_esc_closes_help_first() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    assert_eq!(key(&mut app, 'q', t0), Some(Action::Quit));
    assert_eq!(
        app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), t0),
        Some(Action::Quit)
    );
    key(&mut app, '?', t0);
    assert!(app.show_help());
    assert_eq!(app.on_key(KeyEvent::from(KeyCode::Esc), t0), None);
    assert!(!app.show_help());
    assert_eq!(app.on_key(KeyEvent::from(KeyCode::Esc), t0), Some(Action::Quit));
}

#[test]
fn load_keys_toggle_and_step_the_rate() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    assert_eq!(key(&mut app, 'l', t0), None);
    assert!(app.message().unwrap().text.contains("--load-url"));
    assert_eq!(key(&mut app, '+', t0), None, "no load generator to speed up");
    let mut app = app.with_load(LoadState {
        running: true,
        rate: 50,
    });
    let load = |running, rate| Some(Action::SetLoad(LoadState { running, rate }));
    assert_eq!(key(&mut app, 'l', t0), load(false, 50));
    assert_eq!(key(&mut app, '+', t0), load(false, 100));
    assert_eq!(key(&mut app, '-', t0), load(false, 50));
    assert_eq!(key(&mut app, '-', t0), load(false, 20));
    assert_eq!(
        app.load(),
        Some(LoadState {
            running: false,
            rate: 20
        })
    );
    app.update(
        AppEvent::Load(LoadState {
            running: true,
            rate: 5000,
        }),
        t0,
    );
    assert_eq!(key(&mut app, '+', t0), load(true, 5000));
    app.update(AppEvent::Load(LoadState { running: true, rate: 1 }), t0);
    assert_eq!(key(&mut app, '-', t0), load(true, 1));
}

#[test]
fn demo_keys_add_and_kill_the_busiest_pod() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    assert_eq!(key(&mut app, 'a', t0), None, "demo only");
    assert_eq!(key(&mut app, 'd', t0), None, "demo only");
    let mut app = app.with_demo();
    assert_eq!(key(&mut app, 'a', t0), Some(Action::AddPod));
    assert_eq!(key(&mut app, 'd', t0), Some(Action::ToggleSlowPod));
    assert_eq!(key(&mut app, 'g', t0), Some(Action::ToggleConnectionAge));
    // The header shows the age the demo reports, until it reports none.
    assert_eq!(app.connection_age(), None);
    app.update(AppEvent::ConnectionAge(Some(Duration::from_secs(3))), t0);
    assert_eq!(app.connection_age(), Some(Duration::from_secs(3)));
    app.update(AppEvent::ConnectionAge(None), t0);
    assert_eq!(app.connection_age(), None);
    app.update(request(1, "pod-c", "10.0.0.3", 100), t0);
    // Asked once: it asks again, naming the pod.
    assert_eq!(key(&mut app, 'x', t0), None);
    assert_eq!(app.message().unwrap().text, "kill pod-c? press x again to confirm");
    assert_eq!(
        key(&mut app, 'x', t0 + secs(1.0)),
        Some(Action::KillPod("pod-c".into()))
    );
    // A confirmation that comes too late asks again.
    assert_eq!(key(&mut app, 'x', t0 + secs(2.0)), None);
    assert_eq!(key(&mut app, 'x', t0 + secs(8.0)), None);
    assert_eq!(
        key(&mut app, 'x', t0 + secs(9.0)),
        Some(Action::KillPod("pod-c".into()))
    );
    // The second x kills the pod the first one named, even when another pod
    // became the busiest in between (balanced: near-equal pods swap).
    app.update(request(2, "pod-c", "10.0.0.3", 100), t0 + secs(10.0));
    assert_eq!(key(&mut app, 'x', t0 + secs(10.0)), None);
    for seq in 3..=5 {
        app.update(request(seq, "pod-a", "10.0.0.1", 100), t0 + secs(10.5));
    }
    assert_eq!(app.stats().busiest(t0 + secs(10.5)).unwrap().name, "pod-a");
    assert_eq!(
        key(&mut app, 'x', t0 + secs(10.6)),
        Some(Action::KillPod("pod-c".into()))
    );
    let mut empty = App::new("gw", t0).with_demo();
    assert_eq!(key(&mut empty, 'x', t0), None);
    assert_eq!(empty.message().unwrap().text, "no running pod to kill");
}

#[test]
fn freezing_keeps_the_view_while_counting_continues() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    app.update(request(1, "pod-a", "10.0.0.1", 100), t0);
    key(&mut app, ' ', t0);
    assert!(app.frozen());
    app.update(request(2, "pod-a", "10.0.0.1", 100), t0 + secs(1.0));
    let (shown, at) = app.view(t0 + secs(2.0));
    assert_eq!(shown.total(), 1);
    assert_eq!(at, t0);
    assert_eq!(app.stats().total(), 2);
    key(&mut app, ' ', t0 + secs(2.0));
    assert_eq!(app.view(t0 + secs(2.0)).0.total(), 2);
}

#[test]
fn scrolling_stays_within_the_pods() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    for _ in 0..5 {
        app.on_key(KeyEvent::from(KeyCode::Down), t0);
    }
    assert_eq!(app.scroll(), 2);
    app.on_key(KeyEvent::from(KeyCode::Up), t0);
    assert_eq!(app.scroll(), 1);
    app.on_key(KeyEvent::from(KeyCode::Home), t0);
    assert_eq!(app.scroll(), 0);
    // A page is ten rows, capped at the last pod either way.
    app.on_key(KeyEvent::from(KeyCode::PageDown), t0);
    assert_eq!(app.scroll(), 2);
    app.on_key(KeyEvent::from(KeyCode::PageUp), t0);
    assert_eq!(app.scroll(), 0);
}

#[test]
fn lag_is_counted_and_reported() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    app.update(gw(GatewayEvent::Lagged { dropped: 12 }), t0);
    assert_eq!(app.lagged(), 12);
    assert!(app.message().unwrap().text.contains("dropped 12 events"));
    // The footer message expires.
    app.tick(t0 + MESSAGE_FOR + secs(0.1));
    assert!(app.message().is_none());
}

#[test]
fn disconnection_shows_when_the_retry_comes() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(
        AppEvent::Disconnected {
            gateway: "gw".into(),
            error: "gateway unreachable".into(),
            retry_in: secs(2.0),
        },
        t0,
    );
    assert_eq!(
        app.gateways()["gw"].connection,
        Connection::Reconnecting {
            retry_at: t0 + secs(2.0),
            error: "gateway unreachable".into(),
            down_since: t0,
        }
    );
    // Still down at the next attempt: down since the first failure.
    let retry = AppEvent::Disconnected {
        gateway: "gw".into(),
        error: "gateway unreachable".into(),
        retry_in: secs(4.0),
    };
    app.update(retry, t0 + secs(2.0));
    assert_eq!(
        app.gateways()["gw"].connection,
        Connection::Reconnecting {
            retry_at: t0 + secs(6.0),
            error: "gateway unreachable".into(),
            down_since: t0,
        }
    );
    app.update(AppEvent::Connected { gateway: "gw".into() }, t0 + secs(2.0));
    assert_eq!(
        app.gateways()["gw"].connection,
        Connection::Connected { since: t0 + secs(2.0) }
    );
}

#[test]
fn w_cycles_the_window_of_rates_shares_and_latency_and_says_so() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    // 10 requests to pod-a 30 s ago, 5 to pod-b now.
    for _ in 0..10 {
        app.update(request(0, "pod-a", "10.0.0.1", 100), t0);
    }
    let now = t0 + secs(30.0);
    for _ in 0..5 {
        app.update(request(0, "pod-b", "10.0.0.2", 100), now);
    }
    let in_window = |app: &App| {
        let stats = app.stats();
        (
            stats.pods["pod-a"].in_window(now),
            stats.pods["pod-b"].in_window(now),
            stats.window(now).requests,
        )
    };
    assert_eq!(in_window(&app), (0, 5, 5), "the last 10 s");
    key(&mut app, 'w', now);
    assert_eq!(in_window(&app), (10, 5, 15), "the last minute");
    assert_eq!(
        app.message().unwrap().text,
        "rates, shares and latency over the last 30 s"
    );
    key(&mut app, 'w', now);
    assert_eq!(in_window(&app), (10, 5, 15), "since the reset");
    assert_eq!(app.message().unwrap().text, "rates, shares and latency since the reset");
    key(&mut app, 'w', now);
    assert_eq!(in_window(&app), (0, 5, 5), "back to 10 s");
    // A pod first seen later follows the chosen window too.
    key(&mut app, 'w', now);
    app.update(request(0, "pod-z", "10.0.0.26", 100), t0 + secs(1.0));
    assert_eq!(app.stats().pods["pod-z"].in_window(now), 1);
}

#[test]
fn s_cycles_the_sort_key_and_rows_follow_it_at_each_tick() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    for _ in 0..20 {
        app.update(request(0, "pod-c", "10.0.0.3", 100), t0);
    }
    app.update(request(0, "pod-b", "10.0.0.2", 100), t0);
    let rows = |app: &App| app.rows(app.stats()).map(|p| p.name.clone()).collect::<Vec<_>>();
    app.tick(t0);
    assert_eq!(rows(&app), ["pod-c", "pod-b", "pod-a"], "by rate, the default");
    key(&mut app, 's', t0);
    assert_eq!(app.message().unwrap().text, "rows sorted by name");
    assert_eq!(rows(&app), ["pod-a", "pod-b", "pod-c"]);
}

#[test]
fn mode_switches_pods_gone_and_reconnects_are_marked_on_the_chart() {
    use crate::state::stats::{Mark, SPARK_SECONDS};
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    let switched = gw(GatewayEvent::ModeChanged {
        seq: 1,
        mode: Some(Mode::Balanced),
        unknown: None,
    });
    app.update(switched, t0 + secs(2.5));
    let down = AppEvent::Disconnected {
        gateway: "gw".into(),
        error: "refused".into(),
        retry_in: secs(1.0),
    };
    app.update(down, t0 + secs(3.0));
    app.update(AppEvent::Connected { gateway: "gw".into() }, t0 + secs(4.2));
    app.update(
        AppEvent::Pods(vec![PodInfo {
            name: "pod-a".into(),
            ready: true,
            ..PodInfo::default()
        }]),
        t0 + secs(5.0),
    );
    let marks = app.stats().spark_marks(5);
    assert_eq!(
        marks[SPARK_SECONDS - 4..],
        [
            Some(Mark::Mode(Mode::Balanced)),
            None,
            Some(Mark::Reconnected),
            Some(Mark::PodGone)
        ]
    );
    assert!(marks[..SPARK_SECONDS - 4].iter().all(Option::is_none));
    // The same mode again marks nothing.
    let again = gw(GatewayEvent::ModeChanged {
        seq: 2,
        mode: Some(Mode::Balanced),
        unknown: None,
    });
    app.update(again, t0 + secs(6.0));
    assert_eq!(app.stats().spark_marks(6)[SPARK_SECONDS - 1], None);
}

#[test]
fn a_switch_of_several_gateways_is_marked_when_the_last_one_agrees() {
    use crate::state::stats::{Mark, SPARK_SECONDS};
    use crate::state::test_events::from;
    let t0 = Instant::now();
    let mut app = App::new("2 gateways", t0);
    for name in ["gw-1", "gw-2"] {
        let AppEvent::Gateway { event, .. } = snapshot(Mode::Sticky, &PODS, 0) else {
            unreachable!()
        };
        app.update(from(name, event), t0);
    }
    let balanced = |seq| GatewayEvent::ModeChanged {
        seq,
        mode: Some(Mode::Balanced),
        unknown: None,
    };
    // The first replica switches: the gateways disagree for a moment.
    app.update(from("gw-1", balanced(1)), t0 + secs(2.2));
    assert!(app.mixed_modes());
    app.update(from("gw-2", balanced(1)), t0 + secs(2.4));
    assert_eq!(app.mode(), Some(Mode::Balanced));
    let marks = app.stats().spark_marks(2);
    assert_eq!(
        marks[SPARK_SECONDS - 1],
        Some(Mark::Mode(Mode::Balanced)),
        "sticky, mixed, balanced is a switch to balanced"
    );
    // Back to where they were through a mixed moment: a switch too.
    let sticky = |seq| GatewayEvent::ModeChanged {
        seq,
        mode: Some(Mode::Sticky),
        unknown: None,
    };
    app.update(from("gw-2", sticky(2)), t0 + secs(4.1));
    app.update(from("gw-1", sticky(2)), t0 + secs(4.3));
    assert_eq!(
        app.stats().spark_marks(4)[SPARK_SECONDS - 1],
        Some(Mark::Mode(Mode::Sticky))
    );
}

#[test]
fn slash_filters_the_rows_and_keys_type_into_it_until_enter() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    let rows = |app: &App| app.rows(app.stats()).map(|p| p.name.clone()).collect::<Vec<_>>();
    assert_eq!(key(&mut app, '/', t0), None);
    // While typing, m and q are text, not a mode switch or quit.
    for c in ['p', 'o', 'd', '-', 'b'] {
        assert_eq!(key(&mut app, c, t0), None);
    }
    assert_eq!(rows(&app), ["pod-b"]);
    assert_eq!(key(&mut app, 'q', t0), None, "q is text while typing");
    assert_eq!(rows(&app), Vec::<String>::new());
    app.on_key(KeyEvent::from(KeyCode::Backspace), t0);
    app.on_key(KeyEvent::from(KeyCode::Enter), t0);
    assert_eq!(rows(&app), ["pod-b"]);
    assert_eq!(
        key(&mut app, 'q', t0),
        Some(Action::Quit),
        "after Enter keys are commands again"
    );
    key(&mut app, '/', t0);
    app.on_key(KeyEvent::from(KeyCode::Esc), t0);
    assert_eq!(rows(&app).len(), 3, "Esc clears it");
}

mod ready;
mod reset;
