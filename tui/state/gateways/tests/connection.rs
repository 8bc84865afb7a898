//! The gateways' own state: mode announcements, restarts and refusals.

use crossterm::event::{KeyCode, KeyEvent};

use super::super::*;
use crate::state::App;
use crate::state::messages::{Action, AppEvent, PodTotals};
use crate::state::test_events::{gw, hits, request, secs, synced_app};

#[test]
fn a_mode_change_is_announced_once_all_agree_and_unknown_modes_keep_the_last() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    app.update(
        gw(GatewayEvent::ModeChanged {
            seq: 1,
            mode: None,
            unknown: None,
        }),
        t0,
    );
    assert_eq!(app.mode(), Some(Mode::Sticky));
    assert!(app.message().is_none());
    app.update(
        gw(GatewayEvent::ModeChanged {
            seq: 2,
            mode: Some(Mode::Balanced),
            unknown: None,
        }),
        t0,
    );
    assert_eq!(app.message().unwrap().text, "gateway is now balanced");
    // The change's seq counts as seen: an older request is not counted again.
    app.update(request(2, "pod-a", "10.0.0.1", 100), t0);
    assert_eq!(app.stats().total(), 0);
}

/// Cumulative totals of pod-a in a summary from "gw".
fn summary_of_pod_a(requests: u64, errors: u64) -> AppEvent {
    gw(GatewayEvent::Summary(vec![PodTotals {
        name: "pod-a".into(),
        ip: "10.0.0.1".into(),
        requests,
        errors,
        latency_buckets: Some(Vec::new()),
        ..PodTotals::default()
    }]))
}

#[test]
fn a_restarted_gateway_keeps_what_it_counted_before_and_is_marked_restarted() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    let snapshot_started = |started_unix_us, requests| {
        gw(GatewayEvent::Snapshot(Snapshot {
            mode: Some(Mode::Sticky),
            started_unix_us,
            pods: vec![PodTotals {
                name: "pod-a".into(),
                requests,
                errors: 1,
                ..PodTotals::default()
            }],
            ..Snapshot::default()
        }))
    };
    app.update(snapshot_started(1_000, 100), t0);
    app.update(summary_of_pod_a(120, 3), t0 + secs(1.0));
    // Reconnected to the same process: its totals replace, nothing is added.
    app.update(snapshot_started(1_000, 130), t0 + secs(2.0));
    assert_eq!(hits(&app), [("pod-a".to_owned(), 130)]);
    assert_eq!(app.gateways()["gw"].restarted_at, None);
    // A new process (another start time) counts from zero again.
    app.update(snapshot_started(2_000, 5), t0 + secs(3.0));
    assert_eq!(hits(&app), [("pod-a".to_owned(), 135)]);
    assert_eq!(app.stats().pods["pod-a"].errors(), 2);
    assert_eq!(app.gateways()["gw"].restarted_at, Some(t0 + secs(3.0)));
    app.update(summary_of_pod_a(7, 1), t0 + secs(4.0));
    assert_eq!(hits(&app), [("pod-a".to_owned(), 137)]);
    // A reset counts from the restarted gateway's present totals.
    app.reset(t0 + secs(5.0));
    app.update(summary_of_pod_a(10, 1), t0 + secs(6.0));
    assert_eq!(hits(&app), [("pod-a".to_owned(), 3)]);
    assert_eq!(app.stats().errors(), 0);
}

fn refused(gateway: &str, refusal: Refusal, retry_in: f64) -> AppEvent {
    AppEvent::Refused {
        gateway: gateway.into(),
        refusal,
        retry_in: secs(retry_in),
    }
}

#[test]
fn a_refusing_gateway_is_a_state_of_its_own_and_down_since_its_first_failure() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0).expecting("gw");
    app.update(
        AppEvent::Disconnected {
            gateway: "gw".into(),
            error: "gateway unreachable".into(),
            retry_in: secs(0.25),
        },
        t0,
    );
    app.update(refused("gw", Refusal::NoToken, 0.5), t0 + secs(1.0));
    assert_eq!(
        app.gateways()["gw"].connection,
        Connection::Refused {
            refusal: Refusal::NoToken,
            retry_at: t0 + secs(1.5),
            down_since: t0,
        }
    );
    assert!(app.disconnected(), "a refusing gateway feeds nothing");
    assert_eq!(
        app.refused().collect::<Vec<_>>(),
        [(&"gw".to_owned(), Refusal::NoToken)]
    );
    app.update(AppEvent::Connected { gateway: "gw".into() }, t0 + secs(2.0));
    assert_eq!(
        app.gateways()["gw"].connection,
        Connection::Connected { since: t0 + secs(2.0) }
    );
    assert_eq!(app.refused().count(), 0);
}

#[test]
fn refusals_say_what_to_do() {
    assert_eq!(
        Refusal::NoToken.to_string(),
        "refused: the gateway wants a token — start greet-top with --token or GREET_TOP_TOKEN"
    );
    assert_eq!(
        Refusal::WrongToken.to_string(),
        "refused: wrong token — check --token or GREET_TOP_TOKEN"
    );
    assert!(
        Refusal::TokenLost
            .to_string()
            .starts_with("refused: the gateway got no token")
    );
}

#[test]
fn a_refused_mode_switch_says_why_in_the_footer() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    let action = app.on_key(KeyEvent::from(KeyCode::Char('m')), t0);
    assert_eq!(action, Some(Action::SetMode(Mode::Balanced)));
    app.update(
        AppEvent::ModeSet {
            gateway: "gw".into(),
            result: Err(Refusal::WrongToken.to_string()),
        },
        t0,
    );
    assert_eq!(
        app.message().map(|m| (m.text.as_str(), m.error)),
        Some((
            "mode switch failed: refused: wrong token — check --token or GREET_TOP_TOKEN",
            true
        ))
    );
    assert_eq!(app.mode(), Some(Mode::Sticky), "nothing changed");
}

#[test]
fn a_newer_gateways_mode_is_known_by_its_number() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(
        gw(GatewayEvent::Snapshot(Snapshot {
            mode: None,
            unknown_mode: Some(7),
            ..Snapshot::default()
        })),
        t0,
    );
    assert_eq!((app.mode(), app.unknown_mode()), (None, Some(7)));
    let change = |mode, unknown| gw(GatewayEvent::ModeChanged { seq: 0, mode, unknown });
    app.update(change(Some(Mode::Balanced), None), t0);
    assert_eq!((app.mode(), app.unknown_mode()), (Some(Mode::Balanced), None));
    // A switch to an unknown mode replaces the known one; unspecified keeps it.
    app.update(change(None, Some(9)), t0);
    assert_eq!((app.mode(), app.unknown_mode()), (None, Some(9)));
    app.update(change(None, None), t0);
    assert_eq!((app.mode(), app.unknown_mode()), (None, Some(9)));
}
