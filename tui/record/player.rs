//! The replay's clock: where in the recording the screen is, whether it
//! plays, how fast. A pure state machine: the caller says how much wall
//! time passed; nothing here reads a clock or a file.

use std::time::Duration;

/// The speeds `<` and `>` step through.
pub(crate) const SPEEDS: [(u32, u32); 7] = [(1, 4), (1, 2), (1, 1), (2, 1), (4, 1), (8, 1), (16, 1)];
const ONE: usize = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Player {
    position: Duration,
    first: Duration,
    end: Duration,
    paused: bool,
    speed: usize,
}

impl Player {
    /// A recording from `first` to `end` (offsets), playing from `first` at 1×.
    pub(crate) fn new(first: Duration, end: Duration) -> Player {
        Player {
            position: first,
            first,
            end: end.max(first),
            paused: false,
            speed: ONE,
        }
    }

    pub(crate) fn position(&self) -> Duration {
        self.position
    }

    pub(crate) fn paused(&self) -> bool {
        self.paused
    }

    /// `wall` passed: playing, the position moves on by it times the
    /// speed, and stops (paused) at the end.
    pub(crate) fn advance(&mut self, wall: Duration) {
        if self.paused {
            return;
        }
        let (num, den) = SPEEDS[self.speed];
        self.position = (self.position + wall * num / den).min(self.end);
        if self.position == self.end {
            self.paused = true;
        }
    }

    /// Space: pause, or play on (from the start again when at the end).
    pub(crate) fn toggle_pause(&mut self) {
        if self.paused && self.position == self.end {
            self.position = self.first;
        }
        self.paused = !self.paused;
    }

    /// ←/→ and the like: `seconds` on (back when negative), within the recording.
    pub(crate) fn seek_by(&mut self, seconds: i32) {
        let by = Duration::from_secs(u64::from(seconds.unsigned_abs()));
        let to = if seconds < 0 {
            self.position.saturating_sub(by)
        } else {
            self.position + by
        };
        self.seek_to(to);
    }

    /// `g`: to `offset`, within the recording.
    pub(crate) fn seek_to(&mut self, offset: Duration) {
        self.position = offset.clamp(self.first, self.end);
    }

    /// `>` (`true`) and `<`: the next speed, up to 16× and down to ¼×.
    pub(crate) fn change_speed(&mut self, faster: bool) {
        self.speed = if faster {
            (self.speed + 1).min(SPEEDS.len() - 1)
        } else {
            self.speed.saturating_sub(1)
        };
    }

    /// `4×`, `¼×`.
    pub(crate) fn speed_text(&self) -> String {
        match SPEEDS[self.speed] {
            (1, 4) => "¼×".to_owned(),
            (1, 2) => "½×".to_owned(),
            (n, _) => format!("{n}×"),
        }
    }
}

#[cfg(test)]
mod tests;
