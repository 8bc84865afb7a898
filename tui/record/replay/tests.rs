//! Replay draws what was live: a scenario folded live-style (recording as
//! it goes) and drawn at three instants, then replayed from the file and
//! drawn at the same instants; seeks through keyframes against a fold
//! from the start; and the replay screen itself (insta).

use std::path::Path;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

use super::Replay;
use crate::record::format::{AppSpec, Header, ViewsSpec};
use crate::record::tests::scratch;
use crate::record::{Recorder, ReplayScreen};
use crate::state::test_events::{PODS, endpoints_changed, gw, snapshot, summary};
use crate::state::{AppEvent, GatewayEvent, KubeStatus, LoadState, PodInfo, Views, WatchState};
use crate::ui::{self, Chrome, Theme};
use greet_proto::Mode;

/// 2026-12-07T14:00:30.250Z
const STARTED_UNIX_MS: i64 = 1_796_652_030_250;
/// The instants (ms) whose live screens are kept.
const SHOWN_AT_MS: [u64; 3] = [12_000, 30_000, 45_500];
const LENGTH_MS: u64 = 60_000;

fn spec() -> ViewsSpec {
    ViewsSpec::Single(AppSpec {
        expecting: Some("gw".into()),
        demo: true,
        load: Some(LoadState {
            running: true,
            rate: 50,
        }),
        ..AppSpec::new("http://127.0.0.1:9092 (demo)")
    })
}

fn header() -> Header {
    Header {
        greet_top: "0.1.0".into(),
        sources: vec!["demo".into()],
        started_unix_ms: STARTED_UNIX_MS,
        part: 0,
        views: spec(),
    }
}

/// What happens at `ms`: a sticky start, balanced from 20 s, pod-b killed at 35 s,
/// a summary every 250 ms; the user sorts at 10 s and changes the window at 40 s.
enum Step {
    Event(AppEvent),
    Key(KeyEvent),
}

fn steps_at(ms: u64, start: Instant) -> Vec<Step> {
    let mut steps = Vec::new();
    let pods_alive = |ms: u64| PODS.iter().filter(move |(name, ..)| ms < 35_000 || *name != "pod-b");
    if ms == 0 {
        steps.push(Step::Event(AppEvent::Connected { gateway: "gw".into() }));
        steps.push(Step::Event(snapshot(Mode::Sticky, &PODS, 0)));
        steps.push(Step::Event(AppEvent::Kube(KubeStatus {
            context: "kind-greet".into(),
            namespace: "greet".into(),
            watch: WatchState::Synced,
        })));
    }
    if ms == 0 || ms == 35_000 {
        let pods = pods_alive(ms)
            .map(|(name, ip, _)| PodInfo {
                name: (*name).into(),
                ip: (*ip).into(),
                ready: true,
                phase: Some("Running".into()),
                created: Some(start - Duration::from_secs(60)),
                ..PodInfo::default()
            })
            .collect();
        steps.push(Step::Event(AppEvent::Pods(pods)));
    }
    if ms == 35_000 {
        let left: Vec<(&str, &str)> = pods_alive(ms).map(|(n, ip, _)| (*n, *ip)).collect();
        steps.push(Step::Event(endpoints_changed(2, &left)));
    }
    if ms == 20_000 {
        steps.push(Step::Event(gw(GatewayEvent::ModeChanged {
            seq: 1,
            mode: Some(Mode::Balanced),
            unknown: None,
        })));
    }
    if ms == 10_000 {
        steps.push(Step::Key(KeyEvent::from(KeyCode::Char('s'))));
    }
    if ms == 40_000 {
        steps.push(Step::Key(KeyEvent::from(KeyCode::Char('w'))));
    }
    if ms > 0 && ms.is_multiple_of(250) {
        // Sticky: all on pod-a; balanced: spread, pod-b's count frozen once it is gone.
        let n = ms / 250;
        let sticky = n.min(80);
        let balanced = n.saturating_sub(80);
        let b = balanced.min(60);
        let totals: Vec<(&str, &str, u64, u64, Vec<u64>)> = vec![
            (
                "pod-a",
                "10.0.0.1",
                12 * sticky + 4 * balanced,
                0,
                vec![12 * sticky + 4 * balanced],
            ),
            ("pod-b", "10.0.0.2", 4 * b, b / 10, vec![4 * b]),
            (
                "pod-c",
                "10.0.0.3",
                4 * balanced + 4 * balanced.saturating_sub(60),
                0,
                vec![8 * balanced],
            ),
        ];
        let totals: Vec<(&str, &str, u64, u64, &[u64])> = totals
            .iter()
            .map(|(n, ip, r, e, b)| (*n, *ip, *r, *e, b.as_slice()))
            .collect();
        steps.push(Step::Event(summary(&totals)));
    }
    steps
}

fn draw(views: &Views, now: Instant, chrome: &Chrome, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
    terminal
        .draw(|f| ui::render_views_with(views, f, now, Theme { color: true }, chrome))
        .expect("drawn");
    terminal.backend().buffer().clone()
}

/// Folds the scenario live-style into views built at `start`, recording
/// to `path` as the frame loop does; the screens drawn at [`SHOWN_AT_MS`].
fn live(path: &Path) -> Vec<Buffer> {
    let start = Instant::now();
    let mut views = spec().build(start);
    let recorder = Recorder::create(path, header(), 1 << 30, start).expect("records");
    let mut shown = Vec::new();
    for ms in (0..=LENGTH_MS).step_by(50) {
        let now = start + Duration::from_millis(ms);
        for step in steps_at(ms, start) {
            match step {
                Step::Event(event) => {
                    recorder.event(&event, now);
                    views.update(event, now);
                }
                Step::Key(key) => {
                    recorder.key(key, now);
                    views.on_key(key, now);
                }
            }
        }
        if ms.is_multiple_of(100) {
            recorder.tick(now);
            views.tick(now);
            if SHOWN_AT_MS.contains(&ms) {
                shown.push(draw(&views, now, &Chrome::default(), 120, 40));
            }
        }
    }
    recorder.finish().expect("finished");
    shown
}

fn replayed(replay: &mut Replay, ms: u64) -> Buffer {
    let offset = Duration::from_millis(ms);
    replay.seek(offset);
    draw(replay.views(), replay.instant(offset), &Chrome::default(), 120, 40)
}

#[test]
fn the_replayed_screen_at_a_recorded_instant_is_the_live_one() {
    let path = scratch("live-vs-replay").join("recording.grt");
    let live = live(&path);
    let mut replay = Replay::open(&path).expect("opens");
    assert_eq!(replay.end(), Duration::from_millis(LENGTH_MS));
    for (ms, screen) in SHOWN_AT_MS.iter().zip(&live) {
        assert_eq!(&replayed(&mut replay, *ms), screen, "at {ms} ms");
    }
    // Backwards, through the keyframes.
    for (ms, screen) in SHOWN_AT_MS.iter().zip(&live).rev() {
        assert_eq!(&replayed(&mut replay, *ms), screen, "back at {ms} ms");
    }
}

#[test]
fn a_seek_through_a_keyframe_equals_folding_from_the_start() {
    let path = scratch("keyframes").join("recording.grt");
    live(&path);
    let mut seeking = Replay::open(&path).expect("opens");
    assert!(seeking.keyframes.len() >= 6, "{} keyframes", seeking.keyframes.len());
    for ms in [59_950, 33_333, 20_000, 7_000, 41_234, 0] {
        let mut folding = Replay::open(&path).expect("opens");
        let offset = Duration::from_millis(ms);
        folding.forward_to(offset);
        let folded = draw(folding.views(), folding.instant(offset), &Chrome::default(), 120, 40);
        assert_eq!(replayed(&mut seeking, ms), folded, "at {ms} ms");
    }
}

fn screen_text(buffer: &Buffer) -> String {
    let mut terminal = Terminal::new(TestBackend::new(buffer.area.width, buffer.area.height)).expect("a terminal");
    terminal.draw(|f| f.buffer_mut().merge(buffer)).expect("drawn");
    terminal.backend().to_string()
}

#[test]
fn the_replay_screen_says_where_it_is() {
    let path = scratch("replay-screen").join("recording.grt");
    live(&path);
    let mut screen = ReplayScreen::new(Replay::open(&path).expect("opens"));
    // To 14:01:15 UTC (+0m45s), paused, at 4×; m only says it is read-only.
    for key in ['g', '1', '4', ':', '0', '1', ':', '1', '5'] {
        screen.on_key(KeyEvent::from(KeyCode::Char(key)));
    }
    screen.on_key(KeyEvent::from(KeyCode::Enter));
    screen.on_key(KeyEvent::from(KeyCode::Char(' ')));
    screen.on_key(KeyEvent::from(KeyCode::Char('>')));
    screen.on_key(KeyEvent::from(KeyCode::Char('>')));
    screen.on_key(KeyEvent::from(KeyCode::Char('m')));
    let now = screen.now();
    assert_eq!(now, screen.replay().instant(Duration::from_millis(44_750)));
    for (width, height) in [(80, 24), (120, 40)] {
        let drawn = draw(screen.replay().views(), now, &screen.chrome(), width, height);
        insta::assert_snapshot!(format!("replay_{width}x{height}"), screen_text(&drawn));
    }
}
