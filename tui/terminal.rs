//! The dashboard in a terminal: the frame loop that drains events into the
//! [`Views`], draws it, and hands key presses' [`Action`]s to the controls.

use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{Event, EventStream};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

use super::controls::Controls;
use super::record::Recorder;
use super::state::{Action, AppEvent, Views};
use super::ui::{self, Chrome, Theme};

pub(crate) mod replay;

/// Frames per second of the dashboard.
const FRAME: Duration = Duration::from_millis(100);
/// Events queued for the UI before the network workers wait.
pub(crate) const EVENT_QUEUE: usize = 64 * 1024;
/// Longest a frame folds in events: under a flood (a hostile or very busy
/// gateway) the rest wait in the queue, and keys and drawing are not delayed.
const DRAIN_BUDGET: Duration = Duration::from_millis(40);

/// The dashboard ended on a signal (SIGTERM, SIGHUP, SIGINT) after restoring
/// the terminal; the process should exit 128 + `number`, as a shell reports it.
#[derive(Debug, thiserror::Error)]
#[error("stopped by {name}")]
pub(crate) struct StoppedBySignal {
    pub number: i32,
    pub name: &'static str,
}

/// Runs the dashboard until the user quits or a signal ends it. The terminal
/// is restored on every exit path: q, SIGTERM, SIGHUP, SIGINT, and panics
/// (`ratatui::init` installs a hook that restores first).
pub(crate) async fn dashboard(
    mut app: Views,
    mut events: mpsc::Receiver<AppEvent>,
    controls: Controls,
    recorder: Option<Recorder>,
) -> anyhow::Result<()> {
    needs_a_terminal()?;
    // Before raw mode, so a signal can never find the terminal half set up
    // without a handler to restore it.
    let signals = Signals::new()?;
    let theme = Theme::from_env();
    let mut terminal = ratatui::init();
    let mut live = Live {
        app: &mut app,
        recorder: recorder.as_ref(),
    };
    let result = frame_loop(&mut terminal, &mut live, &mut events, &controls, theme, signals).await;
    drop(terminal);
    // Not ratatui::restore(): it prints with eprintln!, which panics when a
    // SIGHUP has taken the terminal away; there is nobody to tell then.
    let _ = ratatui::try_restore();
    let recorded = recorder.map_or(Ok(()), Recorder::finish);
    result.and(recorded)
}

pub(crate) fn needs_a_terminal() -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!("the dashboard needs a terminal (stdin and stdout); for scripts use --once 10s --output json");
    }
    Ok(())
}

/// The views, and the recorder (`--record`) that keeps what they fold.
struct Live<'a> {
    app: &'a mut Views,
    recorder: Option<&'a Recorder>,
}

impl Live<'_> {
    fn update(&mut self, event: AppEvent, now: Instant) {
        if let Some(recorder) = self.recorder {
            recorder.event(&event, now);
        }
        self.app.update(event, now);
    }

    fn tick(&mut self, now: Instant) {
        if let Some(recorder) = self.recorder {
            recorder.tick(now);
        }
        self.app.tick(now);
    }

    fn on_key(&mut self, key: crossterm::event::KeyEvent, now: Instant) -> Option<Action> {
        if let Some(recorder) = self.recorder {
            recorder.key(key, now);
        }
        self.app.on_key(key, now)
    }

    fn draw(&self, terminal: &mut ratatui::DefaultTerminal, now: Instant, theme: Theme) -> anyhow::Result<()> {
        let chrome = Chrome {
            badge: self.recorder.map(Recorder::badge),
            ..Chrome::default()
        };
        terminal
            .draw(|f| ui::render_views_with(self.app, f, now, theme, &chrome))
            .context("drawing the dashboard")?;
        Ok(())
    }
}

/// The signals that end the dashboard instead of killing it outright, which
/// would leave the terminal raw and on the alternate screen.
pub(crate) struct Signals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &str| {
            signal(kind).with_context(|| format!("cannot listen for {name}, so the terminal could not be restored"))
        };
        Ok(Signals {
            term: listen(SignalKind::terminate(), "SIGTERM")?,
            hup: listen(SignalKind::hangup(), "SIGHUP")?,
            int: listen(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    pub(crate) async fn recv(&mut self) -> StoppedBySignal {
        let (number, name) = tokio::select! {
            _ = self.term.recv() => (15, "SIGTERM"),
            _ = self.hup.recv() => (1, "SIGHUP"),
            _ = self.int.recv() => (2, "SIGINT"),
        };
        StoppedBySignal { number, name }
    }
}

async fn frame_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut Live<'_>,
    events: &mut mpsc::Receiver<AppEvent>,
    controls: &Controls,
    theme: Theme,
    mut signals: Signals,
) -> anyhow::Result<()> {
    let (mut keys, mut frame) = (EventStream::new(), frame_clock());
    loop {
        tokio::select! {
            stopped = signals.recv() => return Err(stopped.into()),
            _ = frame.tick() => {
                let now = Instant::now();
                // Drain what arrived since the last frame (bounded in count
                // and time, so a flood cannot starve the keyboard).
                let until = now + DRAIN_BUDGET;
                for n in 0..EVENT_QUEUE {
                    match events.try_recv() {
                        Ok(event) => app.update(event, now),
                        Err(_) => break,
                    }
                    // The clock every 64 events: far below the budget in any build.
                    if n % 64 == 63 && Instant::now() >= until {
                        break;
                    }
                }
                app.tick(now);
                app.draw(terminal, now, theme)?;
            }
            input = keys.next() => match input {
                Some(Ok(Event::Key(key))) => {
                    panic_for_tests(&key);
                    let now = Instant::now();
                    match app.on_key(key, now) {
                        Some(Action::Quit) => return Ok(()),
                        Some(action) => controls.perform(action),
                        None => {}
                    }
                    app.draw(terminal, now, theme)?;
                }
                Some(Ok(Event::Resize(..))) => {
                    let now = Instant::now();
                    app.draw(terminal, now, theme)?;
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err).context("reading the keyboard"),
                None => return Ok(()),
            },
        }
    }
}

/// A frame every [`FRAME`]; frames missed on a busy machine are skipped.
fn frame_clock() -> tokio::time::Interval {
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    frame
}

/// Debug builds only, with GREET_TOP_TEST_PANIC set: `!` panics, so the PTY
/// test can prove a panic leaves the terminal restored. Release builds
/// compile this to nothing.
fn panic_for_tests(key: &crossterm::event::KeyEvent) {
    if cfg!(debug_assertions)
        && key.code == crossterm::event::KeyCode::Char('!')
        && std::env::var_os("GREET_TOP_TEST_PANIC").is_some()
    {
        panic!("GREET_TOP_TEST_PANIC: the test asked for a panic");
    }
}
