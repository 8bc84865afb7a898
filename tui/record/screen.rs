//! The replay's screen state: the [`Player`]'s clock over a [`Replay`],
//! the keys a replay has (pause, seek, go to, speed, help), the line it
//! shows in the footer and the badge in the header. The keys that act on
//! the live system (mode, load, pods, reset, freeze) say "read-only"; the
//! ones that only arrange the view (sort, window, view, filter, scroll)
//! apply to the replayed model and are applied again after each seek
//! that starts from a keyframe, so the arrangement stays.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind};

use super::player::Player;
use super::replay::Replay;
use super::{offset_text, when};
use crate::state::keys::{self, Command};
use crate::ui::Chrome;

/// Longest time a user types for `g`.
const MAX_TYPED: usize = 40;

pub(crate) struct ReplayScreen {
    replay: Replay,
    player: Player,
    /// `g` pressed: the time typed so far.
    typing: Option<String>,
    /// A line for the footer until the next key: (text, an error).
    message: Option<(String, bool)>,
    help: bool,
    /// The user's own keys that arrange the view, in order.
    arranged: Vec<KeyEvent>,
}

impl ReplayScreen {
    pub(crate) fn new(replay: Replay) -> ReplayScreen {
        let player = Player::new(replay.first(), replay.end());
        let message = match (replay.damage(), replay.header().part) {
            (Some(damage), _) => Some((damage.to_string(), true)),
            (None, 0) => None,
            (None, part) => Some((mid_incident(part, replay.first()), false)),
        };
        ReplayScreen {
            replay,
            player,
            typing: None,
            message,
            help: false,
            arranged: Vec::new(),
        }
    }

    /// Starts at `offset` (`--from`) and plays on from there.
    pub(crate) fn start_at(&mut self, offset: Duration) {
        self.player.seek_to(offset);
        self.sync();
    }

    pub(crate) fn replay(&self) -> &Replay {
        &self.replay
    }

    /// The model's clock at the position shown.
    pub(crate) fn now(&self) -> Instant {
        self.replay.instant(self.player.position())
    }

    /// `wall` time passed: play on.
    pub(crate) fn advance(&mut self, wall: Duration) {
        self.player.advance(wall);
        self.sync();
    }

    /// The model at the player's position, the user's arrangement kept.
    fn sync(&mut self) {
        let position = self.player.position();
        if self.replay.seek(position) {
            let now = self.now();
            for key in &self.arranged {
                self.replay.views_mut().on_key(*key, now);
            }
        }
    }

    /// A key; `true` to quit.
    pub(crate) fn on_key(&mut self, key: KeyEvent) -> bool {
        if key.kind == KeyEventKind::Release {
            return false;
        }
        self.message = None;
        if let Some(typed) = &mut self.typing {
            match key.code {
                KeyCode::Enter => self.go_to(),
                KeyCode::Esc => self.typing = None,
                KeyCode::Backspace => drop(typed.pop()),
                KeyCode::Char(c) if !c.is_control() && typed.chars().count() < MAX_TYPED => typed.push(c),
                _ => {}
            }
            return false;
        }
        let (shown, _) = self.replay.views().drawn();
        if shown.filtering() {
            self.arrange(key);
            return false;
        }
        let Some(command) = keys::replay_command(key, shown.key_scope()) else {
            return false;
        };
        match command {
            Command::Quit => return true,
            Command::Escape if self.help => self.help = false,
            Command::Escape => return true,
            Command::ToggleHelp => self.help = !self.help,
            Command::Pause => self.player.toggle_pause(),
            Command::Seek(seconds) => self.player.seek_by(seconds),
            Command::GoTo => self.typing = Some(String::new()),
            Command::Speed(faster) => self.player.change_speed(faster),
            command if command.acts() => {
                let text = "replay: read-only — the recording shows what was done then; \
                            keys that act (mode, load, pods, reset, freeze) do nothing here";
                self.message = Some((text.to_owned(), true));
            }
            _ => self.arrange(key),
        }
        self.sync();
        false
    }

    fn arrange(&mut self, key: KeyEvent) {
        let now = self.now();
        self.replay.views_mut().on_key(key, now);
        self.arranged.push(key);
    }

    fn go_to(&mut self) {
        let Some(typed) = self.typing.take() else { return };
        match when::parse(&typed, self.replay.header().started_unix_ms) {
            Ok(offset) if offset > self.replay.end() => {
                self.message = Some((
                    format!(
                        "{typed} is after the recording ends ({}): went to its end",
                        offset_text(self.replay.end())
                    ),
                    true,
                ));
                self.player.seek_to(offset);
            }
            Ok(offset) => self.player.seek_to(offset),
            Err(err) => self.message = Some((err, true)),
        }
        self.sync();
    }

    /// The header's badge, the footer's line, the replay's keys.
    pub(crate) fn chrome(&self) -> Chrome {
        let position = self.player.position();
        let started = self.replay.header().started_unix_ms;
        let mut badge = format!(
            "REPLAY {} ({} of {}) {}",
            when::clock_text(started, position),
            offset_text(position),
            offset_text(self.replay.end()).trim_start_matches('+'),
            self.player.speed_text(),
        );
        if self.player.paused() {
            badge.push_str(" PAUSED");
        }
        let footer = match &self.typing {
            Some(typed) => Some((
                format!("go to: {typed}▏  HH:MM:SS (UTC) or +offset; Enter goes, Esc cancels"),
                false,
            )),
            None => self.message.clone(),
        };
        Chrome {
            badge: Some(badge),
            footer,
            replay: true,
            help: self.help,
        }
    }
}

/// What a rotated recording's later file says first.
pub(crate) fn mid_incident(part: u32, first: Duration) -> String {
    format!(
        "this file begins mid-incident (part {} of a rotated recording, from {}): \
         counts start at its first frame; the part before is FILE.1",
        part + 1,
        offset_text(first)
    )
}
