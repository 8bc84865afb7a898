use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent};
use greet_proto::Mode;

use super::*;
use crate::state::test_events::{from, snapshot};

fn key(c: char) -> KeyEvent {
    KeyEvent::from(KeyCode::Char(c))
}

fn paired(now: Instant) -> Views {
    let mut views = Views::paired(App::new("gw", now), App::new(POD_METRICS, now));
    views.update(snapshot(Mode::Sticky, &[("a", "10.0.0.1", 30)], 0), now);
    let AppEvent::Gateway { event, .. } = snapshot(Mode::Sticky, &[("a", "10.0.0.1", 50)], 0) else {
        unreachable!()
    };
    views.update(from(POD_METRICS, event), now);
    views
}

#[test]
fn each_source_counts_in_its_own_view() {
    let now = Instant::now();
    let views = paired(now);
    assert_eq!(views.main().stats().pods["a"].hits(), 30);
    assert_eq!(views.pods().unwrap().stats().pods["a"].hits(), 50);
}

#[test]
fn v_steps_through_both_the_gateway_and_the_pods_views() {
    let now = Instant::now();
    let mut views = paired(now);
    let drawn = |views: &Views| {
        let (app, beside) = views.drawn();
        (app.title().to_owned(), beside.is_some())
    };
    assert_eq!((views.shown(), drawn(&views)), (Shown::Both, ("gw".into(), true)));
    assert_eq!(views.on_key(key('v'), now), None);
    assert_eq!((views.shown(), drawn(&views)), (Shown::Gateway, ("gw".into(), false)));
    views.on_key(key('v'), now);
    assert_eq!(
        (views.shown(), drawn(&views)),
        (Shown::Pods, (POD_METRICS.into(), false))
    );
    views.on_key(key('v'), now);
    assert_eq!(views.shown(), Shown::Both);
}

#[test]
fn a_mode_key_reaches_the_gateways_from_the_pods_view_and_sorting_applies_to_both() {
    let now = Instant::now();
    let mut views = paired(now);
    views.on_key(key('v'), now);
    views.on_key(key('v'), now);
    assert_eq!(views.shown(), Shown::Pods);
    assert_eq!(views.on_key(key('m'), now), Some(Action::SetMode(Mode::Balanced)));
    views.on_key(key('v'), now);
    views.on_key(key('s'), now);
    let sorted = |app: &App| app.message().map(|m| m.text.clone());
    assert_eq!(sorted(views.main()), Some("rows sorted by name".into()));
    assert_eq!(sorted(views.pods().unwrap()), Some("rows sorted by name".into()));
}

#[test]
fn quit_works_in_every_view_and_one_view_has_no_view_key() {
    let now = Instant::now();
    let mut views = paired(now);
    views.on_key(key('v'), now);
    views.on_key(key('v'), now);
    assert_eq!(views.on_key(KeyEvent::from(KeyCode::Esc), now), Some(Action::Quit));
    assert_eq!(views.on_key(key('q'), now), Some(Action::Quit));
    let mut single = Views::single(App::new("gw", now));
    assert_eq!(single.on_key(key('v'), now), None);
    assert_eq!(single.shown(), Shown::Gateway);
}
