//! A mode switch sent to every synced gateway (`m`, `M`), and the one
//! notice its answers add up to.

use std::collections::BTreeMap;

use super::{Gateways, Notice};
use greet_proto::Mode;

/// A mode switch sent to several gateways, waiting for their answers.
#[derive(Clone, Debug)]
pub(super) struct PendingSwitch {
    mode: Mode,
    answers: BTreeMap<String, Option<Result<(), String>>>,
}

impl Gateways {
    /// `m`: every synced gateway to `to`, or the next mode (balanced when
    /// they disagree). The mode and how many gateways were asked, or `None`
    /// when no gateway is synced yet.
    pub(in crate::state) fn start_switch(&mut self, to: Option<Mode>) -> Option<(Mode, usize)> {
        let targets: BTreeMap<String, Option<Result<(), String>>> = self
            .views
            .iter()
            .filter(|(_, g)| g.synced)
            .map(|(name, _)| (name.clone(), None))
            .collect();
        if targets.is_empty() {
            return None;
        }
        let mode = to.unwrap_or_else(|| self.mode().map_or(Mode::Balanced, Mode::next));
        let count = targets.len();
        self.pending_switch = Some(PendingSwitch { mode, answers: targets });
        Some((mode, count))
    }

    /// One gateway's answer to a mode switch; the outcome once all have answered.
    pub(in crate::state) fn answer_switch(&mut self, gateway: String, result: Result<Mode, String>) -> Option<Notice> {
        if let Ok(mode) = result {
            self.view_mut(&gateway).mode = Some(mode);
        }
        // An answer nobody waits for (e.g. after a reset of the view) is dropped.
        let pending = self.pending_switch.as_mut()?;
        pending.answers.insert(gateway, Some(result.map(|_| ())));
        if pending.answers.values().any(Option::is_none) {
            return None;
        }
        let pending = self.pending_switch.take()?;
        let failures: Vec<String> = pending
            .answers
            .iter()
            .filter_map(|(gw, answer)| match answer {
                Some(Err(error)) => Some(format!("{gw}: {error}")),
                _ => None,
            })
            .collect();
        let total = pending.answers.len();
        let mode = pending.mode;
        let text = match (failures.len(), total) {
            (0, 1) => format!("gateway switched to {mode}"),
            (0, n) => format!("all {n} gateways switched to {mode}"),
            (1, 1) => format!(
                "mode switch failed: {}",
                pending
                    .answers
                    .values()
                    .flatten()
                    .find_map(|a| a.clone().err())
                    .unwrap_or_default()
            ),
            (failed, n) => format!(
                "switched {} of {n} gateways to {mode}; failed: {}",
                n - failed,
                failures.join("; ")
            ),
        };
        Some(Notice::new(text, !failures.is_empty()))
    }
}
