//! What the keys do: the key table's commands carried out on the state.

use std::time::Instant;

use crossterm::event::{KeyEvent, KeyEventKind};

use super::{App, CONFIRM_FOR, RATE_STEPS};
use crate::state::keys::{self, Command};
use crate::state::messages::{Action, LoadState};

impl App {
    /// Applies a key press; returns what the run loop must do, if anything.
    pub fn on_key(&mut self, key: KeyEvent, now: Instant) -> Option<Action> {
        if self.filter.on_key(key) {
            self.scroll = 0;
            return None;
        }
        if self.mode_menu && key.kind != KeyEventKind::Release {
            self.mode_menu = false;
            return match keys::mode_menu_choice(key) {
                Some(mode) => self.switch_mode(Some(mode), now),
                None => {
                    self.notify("mode unchanged", false, now);
                    None
                }
            };
        }
        let binding = keys::binding_for(key, self.key_scope())?;
        if binding.needs_load && self.load.is_none() {
            self.notify(
                "no load generator: run `greet-top demo`, or pass --load-url http://<gateway>:9091",
                true,
                now,
            );
            return None;
        }
        self.run(binding.command, now)
    }

    /// Carries out what a key asks for.
    fn run(&mut self, command: Command, now: Instant) -> Option<Action> {
        match command {
            Command::Quit => Some(Action::Quit),
            Command::Escape if self.show_help => {
                self.show_help = false;
                None
            }
            Command::Escape => Some(Action::Quit),
            Command::ToggleHelp => {
                self.show_help = !self.show_help;
                None
            }
            Command::Scroll(rows) => {
                // The renderer clamps it to what fits.
                let last = self.stats.pods.len().saturating_sub(1);
                self.scroll = self.scroll.saturating_add_signed(rows).min(last);
                None
            }
            Command::Filter => {
                self.filter.start();
                None
            }
            Command::CycleSort => {
                self.sort = self.sort.next();
                self.reorder(now);
                self.notify(format!("rows sorted by {}", self.sort.label()), false, now);
                None
            }
            Command::CycleView => Some(Action::CycleView),
            Command::ToggleBypass => Some(Action::ToggleBypass),
            Command::SwitchMode => self.switch_mode(None, now),
            Command::ModeMenu => {
                self.mode_menu = true;
                None
            }
            Command::Reset => {
                self.reset(now);
                self.notify("counters reset", false, now);
                None
            }
            Command::Freeze => {
                self.frozen = match self.frozen.take() {
                    Some(_) => None,
                    None => Some((Box::new(self.stats.clone()), now)),
                };
                None
            }
            Command::CycleWindow => {
                let window = self.stats.time_window().next();
                self.stats.set_window(window);
                if let Some((frozen, _)) = &mut self.frozen {
                    frozen.set_window(window);
                }
                let phrase = window.phrase(self.observed_for(now));
                self.notify(format!("rates, shares and latency {phrase}"), false, now);
                None
            }
            Command::AddPod => Some(Action::AddPod),
            Command::SlowPod => Some(Action::ToggleSlowPod),
            Command::ConnectionAge => Some(Action::ToggleConnectionAge),
            Command::KillPod => {
                // Twice within a few seconds: a stray key kills nothing. The
                // second press kills the pod the first one named, though
                // another may be the busiest by then (balanced pods swap).
                let pending = self.pending_kill.take().filter(|(pod, at)| {
                    now.saturating_duration_since(*at) < CONFIRM_FOR
                        && self.stats.pods.get(pod).is_some_and(|p| !p.gone)
                });
                if let Some((pod, _)) = pending {
                    return Some(Action::KillPod(pod));
                }
                let Some(busiest) = self.stats.busiest(now).map(|p| p.name.clone()) else {
                    self.notify("no running pod to kill", true, now);
                    return None;
                };
                self.notify(format!("kill {busiest}? press x again to confirm"), true, now);
                self.pending_kill = Some((busiest, now));
                None
            }
            Command::ToggleLoad | Command::RateUp | Command::RateDown => self.change_load(command),
            // The replay's own (record/replay.rs): never the model's.
            Command::Pause | Command::Seek(_) | Command::GoTo | Command::Speed(_) => None,
        }
    }

    /// `l`, `+`, `-`: the next load state (`on_key` checked there is a load generator).
    fn change_load(&mut self, command: Command) -> Option<Action> {
        let load = self.load?;
        let next = match command {
            Command::ToggleLoad => LoadState {
                running: !load.running,
                ..load
            },
            Command::RateUp => LoadState {
                rate: RATE_STEPS.iter().copied().find(|r| *r > load.rate).unwrap_or(load.rate),
                ..load
            },
            _ => LoadState {
                rate: RATE_STEPS
                    .iter()
                    .rev()
                    .copied()
                    .find(|r| *r < load.rate)
                    .unwrap_or(load.rate),
                ..load
            },
        };
        self.load = Some(next);
        Some(Action::SetLoad(next))
    }

    /// Every figure over the whole time counted (`--once`: the report's
    /// one window), not the dashboard's last 10 s.
    pub fn over_everything_counted(mut self) -> Self {
        self.stats.set_window(crate::state::stats::Window::SinceReset);
        self
    }

    /// Whether `M` opened the mode menu (the footer shows it).
    pub fn mode_menu_open(&self) -> bool {
        self.mode_menu
    }

    /// `m`: every synced gateway to the next mode (balanced when they
    /// disagree); the menu's digit: to `to`.
    fn switch_mode(&mut self, to: Option<greet_proto::Mode>, now: Instant) -> Option<Action> {
        let Some((mode, count)) = self.gateways.start_switch(to) else {
            let text = match self.refused().next() {
                Some((_, refusal)) => format!("cannot switch mode: {refusal}"),
                None => "cannot switch mode: not connected to a gateway yet".to_owned(),
            };
            self.notify(text, true, now);
            return None;
        };
        let text = if count == 1 {
            format!("switching the gateway to {mode}…")
        } else {
            format!("switching {count} gateways to {mode}…")
        };
        self.notify(text, false, now);
        Some(Action::SetMode(mode))
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyModifiers};

    use super::*;
    use crate::state::test_events::synced_app;
    use greet_proto::Mode;

    fn key(c: char) -> KeyEvent {
        KeyEvent::from(KeyCode::Char(c))
    }

    #[test]
    fn the_mode_menu_picks_any_mode_directly_and_cancels_on_any_other_key() {
        let t0 = Instant::now();
        let mut app = synced_app(t0);
        let current = app.mode();
        let shift_m = KeyEvent::new(KeyCode::Char('M'), KeyModifiers::SHIFT);
        for (digit, mode) in [
            ('4', Mode::Dns),
            ('1', Mode::Sticky),
            ('3', Mode::LeastLoaded),
            ('2', Mode::Balanced),
        ] {
            assert_eq!(app.on_key(shift_m, t0), None);
            assert!(app.mode_menu_open());
            assert_eq!(app.on_key(key(digit), t0), Some(Action::SetMode(mode)), "{digit}");
            assert!(!app.mode_menu_open());
            assert_eq!(app.message().unwrap().text, format!("switching the gateway to {mode}…"));
        }
        // Esc cancels the menu without quitting; so does any other key,
        // without doing what it would otherwise do.
        for cancel in [KeyEvent::from(KeyCode::Esc), key('q'), key('m')] {
            app.on_key(shift_m, t0);
            assert_eq!(app.on_key(cancel, t0), None, "{cancel:?}");
            assert!(!app.mode_menu_open());
            assert_eq!(app.message().unwrap().text, "mode unchanged");
        }
        assert_eq!(app.mode(), current, "nothing switched without an answer");
    }
}
