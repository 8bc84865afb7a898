//! `greet-top replay FILE`: the dashboard driven by a recording. The same
//! drawing as live, at the player's position on the recording's clock;
//! the terminal is restored on every exit path, as live.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossterm::event::{Event, EventStream};
use tokio_stream::StreamExt as _;

use super::{Signals, frame_clock, needs_a_terminal};
use crate::record::ReplayScreen;
use crate::ui::{self, Theme};

pub(crate) async fn dashboard(mut screen: ReplayScreen) -> anyhow::Result<()> {
    needs_a_terminal()?;
    let signals = Signals::new()?;
    let theme = Theme::from_env();
    let mut terminal = ratatui::init();
    let result = frame_loop(&mut terminal, &mut screen, theme, signals).await;
    drop(terminal);
    let _ = ratatui::try_restore();
    result
}

fn draw(terminal: &mut ratatui::DefaultTerminal, screen: &ReplayScreen, theme: Theme) -> anyhow::Result<()> {
    let chrome = screen.chrome();
    let now = screen.now();
    terminal
        .draw(|f| ui::render_views_with(screen.replay().views(), f, now, theme, &chrome))
        .context("drawing the replay")?;
    Ok(())
}

async fn frame_loop(
    terminal: &mut ratatui::DefaultTerminal,
    screen: &mut ReplayScreen,
    theme: Theme,
    mut signals: Signals,
) -> anyhow::Result<()> {
    let (mut keys, mut frame) = (EventStream::new(), frame_clock());
    let mut last = Instant::now();
    loop {
        tokio::select! {
            stopped = signals.recv() => return Err(stopped.into()),
            _ = frame.tick() => {
                let now = Instant::now();
                screen.advance(now.saturating_duration_since(last).min(Duration::from_secs(1)));
                last = now;
                draw(terminal, screen, theme)?;
            }
            input = keys.next() => match input {
                Some(Ok(Event::Key(key))) => {
                    if screen.on_key(key) {
                        return Ok(());
                    }
                    draw(terminal, screen, theme)?;
                }
                Some(Ok(Event::Resize(..))) => draw(terminal, screen, theme)?,
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err).context("reading the keyboard"),
                None => return Ok(()),
            },
        }
    }
}
