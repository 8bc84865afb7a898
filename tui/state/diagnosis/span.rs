//! What the verdict judges: the view's window, or, after a mode switch
//! inside it, only the time since (the old mode's traffic says nothing
//! about the new one's), with the span named.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::seconds;
use super::words::Words;
use crate::common::Mode;
use crate::tui::state::app::App;
use crate::tui::state::stats::{PodStats, Stats, Tally, Window};

/// The span a verdict judges.
#[derive(Clone, Debug)]
pub(super) struct Span {
    /// Where it starts.
    pub from: Instant,
    /// Where the view's window starts (`from` unless a switch cut it).
    pub window_from: Instant,
    /// The view's whole window: counts come from the window's own tallies
    /// (since the reset they go back further than the minute kept by time).
    pub whole: bool,
    /// " over the last 10 s", or " since the switch to balanced 4 s ago".
    pub phrase: String,
    /// The view's window's phrase.
    window_phrase: String,
    /// When cut: the switch's mode, the first whole second (since the
    /// origin) after it, and how long ago it was.
    pub switched: Option<(Mode, u64, Duration)>,
    pub at: Instant,
}

impl Span {
    /// The view's window at `at`, cut at the last mode switch inside it.
    pub fn judged(app: &App, stats: &Stats, at: Instant) -> Span {
        let observed = app.observed_for(at);
        let origin = at.checked_sub(observed).unwrap_or(at);
        let window_from = stats.window_start(at, origin);
        let phrase = format!(" {}", stats.time_window().phrase(observed));
        let whole = Span {
            from: window_from,
            window_from,
            whole: true,
            phrase: phrase.clone(),
            window_phrase: phrase,
            switched: None,
            at,
        };
        let Some((second, mode)) = stats.last_mode_switch() else {
            return whole;
        };
        // The chart marks the switch by its whole second: the span starts
        // at the end of that second, so none of the old mode's requests
        // are judged as the new one's.
        let switched = origin + Duration::from_secs(second);
        let cut = switched + Duration::from_secs(1);
        if cut <= window_from {
            return whole;
        }
        let cut = cut.min(at);
        Span {
            from: cut,
            whole: false,
            phrase: format!(
                " since the switch to {mode} {} ago",
                seconds(at.saturating_duration_since(switched))
            ),
            switched: Some((mode, second + 1, at.saturating_duration_since(switched))),
            ..whole
        }
    }

    /// The same span without the cut: the view's whole window.
    pub fn window(&self) -> Span {
        Span {
            from: self.window_from,
            whole: true,
            phrase: self.window_phrase.clone(),
            switched: None,
            ..self.clone()
        }
    }

    /// The phrase as words: the window is the header's to state on screen.
    pub fn words(&self) -> Words {
        if self.whole {
            Words::default().window(self.phrase.clone())
        } else {
            Words::default().text(self.phrase.clone())
        }
    }

    /// Requests and failures in the span, unattributed ones included.
    pub fn tally(&self, stats: &Stats) -> Tally {
        if self.whole {
            stats.window(self.at)
        } else {
            stats.tally_since(self.from, self.at)
        }
    }

    /// One pod's requests and failures in the span.
    pub fn pod(&self, pod: &PodStats) -> Tally {
        if self.whole {
            Tally {
                requests: pod.in_window(self.at),
                errors: pod.errors_in_window(self.at),
            }
        } else {
            pod.tally_since(self.from, self.at)
        }
    }

    /// A pod's p99 in the span, in milliseconds.
    pub fn p99_ms(&self, pod: &PodStats) -> Option<f64> {
        match self.switched {
            Some((_, first_second, _)) => pod.latency_since_ms(first_second, 99.0),
            None => pod.latency_ms(99.0),
        }
    }

    /// Failures by code in the span, per pod key ("" for none named).
    pub fn codes<'s>(&self, stats: &'s Stats) -> BTreeMap<&'s str, BTreeMap<i32, u64>> {
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
