//! What the keys do: the key table's commands carried out on the state.

use std::time::Instant;

use crossterm::event::KeyEvent;

use super::{App, CONFIRM_FOR, RATE_STEPS};
use crate::tui::state::keys::{self, Command};
use crate::tui::state::messages::{Action, LoadState};

impl App {
    /// Applies a key press; returns what the run loop must do, if anything.
    pub fn on_key(&mut self, key: KeyEvent, now: Instant) -> Option<Action> {
        if self.filter.on_key(key) {
            self.scroll = 0;
            return None;
        }
        let binding = keys::binding_for(key, self.demo)?;
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
            Command::SwitchMode => self.switch_mode(now),
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
                let Some(busiest) = self.stats.busiest(now).map(|p| p.name.clone()) else {
                    self.notify("no running pod to kill", true, now);
                    return None;
                };
                // Twice within a few seconds, on the same pod: a stray key kills nothing.
                let confirmed = self
                    .pending_kill
                    .take()
                    .is_some_and(|(pod, at)| pod == busiest && now.saturating_duration_since(at) < CONFIRM_FOR);
                if confirmed {
                    return Some(Action::KillPod(busiest));
                }
                self.notify(format!("kill {busiest}? press x again to confirm"), true, now);
                self.pending_kill = Some((busiest, now));
                None
            }
            Command::ToggleLoad | Command::RateUp | Command::RateDown => self.change_load(command),
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

    /// `m`: every synced gateway to the next mode (balanced when they disagree).
    fn switch_mode(&mut self, now: Instant) -> Option<Action> {
        let Some((mode, count)) = self.gateways.start_switch() else {
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
