//! Recording what the dashboard folds (`--record FILE`) and playing it back
//! (`greet-top replay FILE`).
//!
//! What is recorded: every [`AppEvent`](crate::state::AppEvent) the model
//! folds, every tick and every key press that reached it, each with the
//! `now` it was folded at as an offset from the recording's start. The
//! point of recording is the fold itself (the frame loop, the `--once`
//! loops), not the network side: what the queue held but the model never
//! saw is not in the file, and what the model saw is, in its order and at
//! its instant. The model takes `now` injected, so replay drives the same
//! [`Views`](crate::state::Views) with the same (event, now) pairs and
//! draws the screen that was live at any recorded instant.
//!
//! - `format`: the file's layout (magic, version, header, frames).
//! - `epoch`: `Instant`s inside events as offsets from the start; `sparse`:
//!   latency histograms as runs (most of a recording's bytes otherwise).
//! - `sanitize`: a recording is input from disk: its text is sanitised again.
//! - `writer`: [`Recorder`]: entries encoded on the caller's thread into
//!   the block being gathered, compressed and written off it, rotating.
//! - `reader`: frames back, up to the damage, and what the damage is.
//! - `replay`: the recording as a model at any instant (keyframes for seeks).
//! - `player`: the replay's clock (pause, seek, speed): a pure state machine.
//! - `screen`: the replay's keys, badge and footer; `when`: times as typed.

pub mod bench;
pub(crate) mod epoch;
mod format;
mod player;
mod reader;
mod replay;
mod sanitize;
pub(crate) mod screen;
pub(crate) mod sparse;
pub(crate) mod when;
mod writer;

pub(crate) use format::{AppSpec, Header, ViewsSpec};
pub(crate) use reader::unix_ms_now;
pub(crate) use replay::Replay;
pub(crate) use screen::ReplayScreen;
pub(crate) use writer::Recorder;

/// A recording's wall-clock start (its offset 0) and its last frame's
/// offset, read up to any damage: what a script or a test checks of a
/// file without replaying it on a screen.
pub fn recorded_span(path: &std::path::Path) -> Result<(std::time::SystemTime, std::time::Duration), String> {
    let replay = Replay::open(path).map_err(|err| err.to_string())?;
    let start = when::wall(replay.header().started_unix_ms, std::time::Duration::ZERO);
    Ok((start, replay.end()))
}

/// `+4m03s`: an offset into a recording, as the screen and errors say it.
pub(crate) fn offset_text(offset: std::time::Duration) -> String {
    let secs = offset.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("+{h}h{m:02}m{s:02}s")
    } else {
        format!("+{m}m{s:02}s")
    }
}

#[cfg(test)]
pub(crate) mod tests;
