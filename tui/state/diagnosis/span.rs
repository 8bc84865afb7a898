//! What the verdict judges: the view's window, or, after a change inside
//! it (a mode switch, a pod gone or back, the sticky connection moved),
//! only the time since: the old mode's traffic says nothing about the new
//! one's, and the time a pod had nothing, or held everything, is not the
//! spread of the pods serving now. The span is named.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::seconds;
use super::words::Words;
use crate::state::app::App;
use crate::state::stats::{Change as Changed, PodStats, ServingChange, Stats, Tally, Window};

/// A change that cut the window.
#[derive(Clone, Debug)]
pub(super) struct Cut {
    /// What changed: "the switch to balanced", "…-f5pwc went away".
    what: Change,
    /// The first whole second (since the origin) after the change.
    pub first_second: u64,
    /// How long ago the change was.
    pub ago: Duration,
}

#[derive(Clone, Debug)]
enum Change {
    Switch(greet_proto::Mode),
    /// A pod went away: its name when one pod is gone, else none.
    Gone(Option<String>),
    /// The pods serving changed, or the sticky connection moved.
    Serving(ServingChange),
}

/// What a change of the pods serving did, after its subject: " came back",
/// " moved from acc-pod-2"; and its subject when it names no pod.
fn serving(change: &ServingChange) -> Words {
    match change {
        ServingChange::Joined { name: Some(name), back } => {
            Words::default()
                .name(name)
                .text(if *back { " came back" } else { " joined" })
        }
        ServingChange::Joined { name: None, back } => Words::new(if *back { "pods came back" } else { "pods joined" }),
        ServingChange::Left(Some(name)) => Words::default().name(name).text(" left the rotation"),
        ServingChange::Left(None) => Words::new("pods left the rotation"),
        ServingChange::Moved { from: Some(from), .. } => {
            Words::new("the sticky connection moved").clause(3, |w| w.text(" from ").name(from))
        }
        ServingChange::Moved { from: None, .. } => Words::new("the sticky connection moved"),
    }
}

impl Cut {
    /// " since the switch to balanced 4 s ago" (the mode goes first when
    /// room is short: the header's badge has it), " since …-f5pwc went away 4 s ago".
    fn since(&self) -> Words {
        let ago = seconds(self.ago);
        match &self.what {
            Change::Switch(mode) => Words::new(" since the switch")
                .clause(2, |w| w.text(format!(" to {mode}")))
                .text(format!(" {ago} ago")),
            Change::Gone(Some(name)) => Words::new(" since ").name(name).text(format!(" went away {ago} ago")),
            Change::Gone(None) => Words::new(format!(" since a pod went away {ago} ago")),
            // A narrow screen keeps the verdict and loses when it began.
            Change::Serving(change) => Words::default().clause(2, |w| {
                w.text(" since ").then(serving(change)).text(format!(" {ago} ago"))
            }),
        }
    }

    /// "switched to balanced <1 s ago", "…-f5pwc went away <1 s ago".
    pub(super) fn happened(&self) -> Words {
        let ago = seconds(self.ago);
        match &self.what {
            Change::Switch(mode) => Words::new(format!("switched to {mode} {ago} ago")),
            Change::Gone(Some(name)) => Words::default().name(name).text(format!(" went away {ago} ago")),
            Change::Gone(None) => Words::new(format!("a pod went away {ago} ago")),
            Change::Serving(change) => serving(change).text(format!(" {ago} ago")),
        }
    }
}

/// The span a verdict judges.
#[derive(Clone, Debug)]
pub(super) struct Span {
    /// Where it starts.
    pub from: Instant,
    /// Where the view's window starts (`from` unless a change cut it).
    pub window_from: Instant,
    /// The view's whole window: counts come from the window's own tallies
    /// (since the reset they go back further than the minute kept by time).
    pub whole: bool,
    /// The view's window's phrase, " over the last 10 s".
    window_phrase: String,
    /// The change that cut the window, if one did.
    pub cut: Option<Cut>,
    pub at: Instant,
    /// After a mode switch, the requests in the span that began before it
    /// (per pod key, "" for none named): the old mode's, left out.
    carried_over: BTreeMap<String, Tally>,
}

/// After a change, the spread is judged once this much has been counted:
/// a pod back in the rotation gets its first requests only after the
/// gateway's probe and the next summary.
pub(super) const SETTLE: Duration = Duration::from_secs(1);

impl Span {
    /// Cut at a change less than [`SETTLE`] ago: too soon to judge the spread.
    pub(super) fn settling(&self) -> bool {
        self.cut.is_some() && self.at.saturating_duration_since(self.from) < SETTLE
    }

    /// The view's window at `at`, cut at the last change inside it.
    pub(super) fn judged(app: &App, stats: &Stats, at: Instant) -> Span {
        let observed = app.observed_for(at);
        let origin = at.checked_sub(observed).unwrap_or(at);
        let window_from = stats.window_start(at, origin);
        let whole = Span {
            from: window_from,
            window_from,
            whole: true,
            window_phrase: format!(" {}", stats.time_window().phrase(observed)),
            cut: None,
            at,
            carried_over: BTreeMap::new(),
        };
        let Some((second, mark)) = stats.last_change() else {
            return whole;
        };
        // The chart marks a change by its whole second: the span starts at
        // the end of that second, so none of the requests before it are
        // judged as coming after.
        let changed = origin + Duration::from_secs(second);
        let from = changed + Duration::from_secs(1);
        if from <= window_from {
            return whole;
        }
        let what = match mark {
            Changed::Mode(mode) => Change::Switch(mode),
            Changed::Serving(change) => Change::Serving(change),
            Changed::PodGone => {
                let mut gone = stats.pods.values().filter(|p| p.gone);
                match (gone.next(), gone.next()) {
                    (Some(pod), None) => Change::Gone(Some(pod.name.clone())),
                    _ => Change::Gone(None),
                }
            }
        };
        // Requests in flight at the switch that end after it (a sticky one
        // timing out in balanced mode) are the old mode's doing.
        let carried_over = match what {
            Change::Switch(_) => stats.carried_over_since(from.min(at), at),
            _ => BTreeMap::new(),
        };
        Span {
            from: from.min(at),
            whole: false,
            carried_over,
            cut: Some(Cut {
                what,
                first_second: second + 1,
                ago: at.saturating_duration_since(changed),
            }),
            ..whole
        }
    }

    /// The same span without the cut: the view's whole window.
    pub(super) fn window(&self) -> Span {
        Span {
            from: self.window_from,
            whole: true,
            cut: None,
            carried_over: BTreeMap::new(),
            ..self.clone()
        }
    }

    /// The span in words: the window (which the screen's header states),
    /// or since the change.
    pub(super) fn words(&self) -> Words {
        match &self.cut {
            Some(cut) => cut.since(),
            None => Words::default().window(self.window_phrase.clone()),
        }
    }

    /// "; 10 requests from before the switch failed after it": what the
    /// span leaves out, said instead of when the window's failures stopped.
    pub(super) fn carried_over_note(&self) -> Option<Words> {
        let failed: u64 = self.carried_over.values().map(|t| t.errors).sum();
        let s = if failed == 1 { "" } else { "s" };
        (failed > 0).then(|| {
            Words::default().clause(2, |w| {
                w.text(format!("; {failed} request{s} from before the switch failed after it"))
            })
        })
    }

    /// A latency percentile (0..=100) of `pod` over the span.
    pub(super) fn percentile_ms(&self, pod: &PodStats, percentile: f64) -> Option<f64> {
        match &self.cut {
            Some(cut) => pod.latency_since_ms(cut.first_second, percentile),
            None => pod.latency_ms(percentile),
        }
    }

    /// Requests and failures in the span, unattributed ones included
    /// (those carried over a mode switch left out).
    pub(super) fn tally(&self, stats: &Stats) -> Tally {
        if self.whole {
            stats.window(self.at)
        } else {
            let carried = self.carried_over.values().fold(Tally::default(), |sum, t| Tally {
                requests: sum.requests + t.requests,
                errors: sum.errors + t.errors,
            });
            without(stats.tally_since(self.from, self.at), carried)
        }
    }

    /// One pod's requests and failures in the span (those carried over a
    /// mode switch left out).
    pub(super) fn pod(&self, pod: &PodStats) -> Tally {
        if self.whole {
            Tally {
                requests: pod.in_window(self.at),
                errors: pod.errors_in_window(self.at),
            }
        } else {
            let carried = self.carried_over.get(&pod.name).copied().unwrap_or_default();
            without(pod.tally_since(self.from, self.at), carried)
        }
    }

    /// Failures by code in the span, per pod key ("" for none named).
    pub(super) fn codes<'s>(&self, stats: &'s Stats) -> BTreeMap<&'s str, BTreeMap<i32, u64>> {
        let mut codes = stats.codes_since(self.from, self.at);
        if self.whole && stats.time_window() == Window::SinceReset {
            // The pods keep their codes since the reset; only those naming
            // no pod are the last minute's.
            codes.retain(|pod, _| pod.is_empty());
            for (key, pod) in &stats.pods {
                if !pod.error_codes.is_empty() {
                    codes.insert(key.as_str(), pod.error_codes.clone());
                }
            }
        }
        codes
    }
}

/// `tally` less `carried`.
fn without(tally: Tally, carried: Tally) -> Tally {
    Tally {
        requests: tally.requests.saturating_sub(carried.requests),
        errors: tally.errors.saturating_sub(carried.errors),
    }
}
