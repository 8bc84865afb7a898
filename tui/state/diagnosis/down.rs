//! Pods a gateway's health checks find down, which no request of theirs
//! says more about (in sticky mode, the pods the connection is not on):
//! a clause after the verdict, cause first, so a pod that would take the
//! traffic after a switch is known not to.

use std::collections::BTreeMap;
use std::time::Instant;

use super::words::Words;
use super::{Diagnosis, Severity};
use crate::state::stats::{PodState, Stats};

/// "; connection refused: p2, p3 down" for the pods reading `down`.
pub(super) fn clause(stats: &Stats, at: Instant) -> Words {
    let mut by_cause: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for pod in stats.pods.values().filter(|p| p.state(at) == PodState::Down) {
        let cause = pod.down.as_deref().unwrap_or_default();
        by_cause.entry(cause).or_default().push(pod.name.as_str());
    }
    if by_cause.is_empty() {
        return Words::default();
    }
    Words::default().clause(2, |mut w| {
        for (i, (cause, names)) in by_cause.into_iter().enumerate() {
            let sep = if i == 0 { "; " } else { ", " };
            w = w.text(format!("{sep}{cause}: ")).names(names).text(" down");
        }
        w
    })
}

impl Diagnosis {
    /// The verdict with the down pods named; a good or quiet one is a
    /// warning with a pod down.
    pub(super) fn with_down(mut self, stats: &Stats, at: Instant) -> Self {
        let clause = clause(stats, at);
        if clause != Words::default() && self.severity < Severity::Warning {
            self.severity = Severity::Warning;
        }
        self.with(clause)
    }
}
