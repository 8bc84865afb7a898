//! The dashboard in a terminal: the frame loop that drains events into the
//! [`App`], draws it, and hands key presses' [`Action`]s to the controls.

use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{Event, EventStream};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

use super::controls::Controls;
use super::state::{Action, App, AppEvent};
use super::ui::{self, Theme};

/// Frames per second of the dashboard.
const FRAME: Duration = Duration::from_millis(100);
/// Events queued for the UI before the network workers wait.
pub const EVENT_QUEUE: usize = 64 * 1024;
/// Longest a frame folds in events: under a flood (a hostile or very busy
/// gateway) the rest wait in the queue, and keys and drawing are not delayed.
const DRAIN_BUDGET: Duration = Duration::from_millis(40);

/// Runs the dashboard until the user quits. The terminal is restored on
/// every exit path, panics included (`ratatui::init` installs the hook).
pub async fn dashboard(mut app: App, mut events: mpsc::Receiver<AppEvent>, controls: Controls) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!("the dashboard needs a terminal (stdin and stdout); for scripts use --once 10s --output json");
    }
    let theme = Theme::from_env();
    let mut terminal = ratatui::init();
    let result = frame_loop(&mut terminal, &mut app, &mut events, &controls, theme).await;
    ratatui::restore();
    result
}

async fn frame_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    events: &mut mpsc::Receiver<AppEvent>,
    controls: &Controls,
    theme: Theme,
) -> anyhow::Result<()> {
    let mut keys = EventStream::new();
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
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
                terminal.draw(|f| ui::render(app, f, now, theme)).context("drawing the dashboard")?;
            }
            input = keys.next() => match input {
                Some(Ok(Event::Key(key))) => {
                    let now = Instant::now();
                    match app.on_key(key, now) {
                        Some(Action::Quit) => return Ok(()),
                        Some(action) => controls.perform(action),
                        None => {}
                    }
                    terminal.draw(|f| ui::render(app, f, now, theme)).context("drawing the dashboard")?;
                }
                Some(Ok(Event::Resize(..))) => {
                    let now = Instant::now();
                    terminal.draw(|f| ui::render(app, f, now, theme)).context("drawing the dashboard")?;
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err).context("reading the keyboard"),
                None => return Ok(()),
            },
        }
    }
}
