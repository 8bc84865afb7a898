//! Time as the counters see it: the selectable window of rates, shares,
//! fairness and latency, and the clock a count is taken at.

use std::time::{Duration, Instant};

/// The default window of rates, shares, fairness and latency.
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(10);
/// The longest window: how much history the windows keep.
pub(crate) const KEPT: Duration = Duration::from_secs(60);

/// The time window of every figure in the pods table (requests, errors,
/// rates, shares, latency) and of fairness; `w` cycles it. The totals
/// (`PodStats::hits`, `Stats::total`) count since the reset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Window {
    #[default]
    TenSeconds,
    Minute,
    SinceReset,
}

impl Window {
    pub fn next(self) -> Window {
        match self {
            Window::TenSeconds => Window::Minute,
            Window::Minute => Window::SinceReset,
            Window::SinceReset => Window::TenSeconds,
        }
    }

    /// Its length; `None` since the reset.
    pub fn span(self) -> Option<Duration> {
        match self {
            Window::TenSeconds => Some(RATE_WINDOW),
            Window::Minute => Some(KEPT),
            Window::SinceReset => None,
        }
    }

    /// The time the window covers after `observed` of counting (at least 1 s).
    pub fn covered(self, observed: Duration) -> Duration {
        let observed = observed.max(Duration::from_secs(1));
        self.span().map_or(observed, |span| observed.min(span))
    }

    /// "over the last 10 s", "over the last 1 min", "since the reset": for titles and verdicts.
    pub fn phrase(self, observed: Duration) -> String {
        // Rounded, not cut: 7.9 s of counting reads "8 s" beside its rate.
        let covered = self.covered(observed).as_secs_f64().round() as u64;
        match self {
            Window::SinceReset => "since the reset".to_owned(),
            _ if covered >= 60 => "over the last 1 min".to_owned(),
            _ => format!("over the last {covered} s"),
        }
    }
}
/// When something is counted, and the origin of the per-second series.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    pub now: Instant,
    pub origin: Instant,
}

impl Clock {
    /// Whole seconds from the origin to `at`.
    pub(crate) fn second_of(self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_secs()
    }

    pub(crate) fn second(self) -> u64 {
        self.second_of(self.now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Window;

    #[test]
    fn the_phrase_rounds_the_time_counted_to_the_nearest_second() {
        let phrase = |ms| Window::TenSeconds.phrase(Duration::from_millis(ms));
        assert_eq!(phrase(7_900), "over the last 8 s", "the rate beside it is over 7.9 s");
        assert_eq!(phrase(7_400), "over the last 7 s");
        assert_eq!(phrase(300), "over the last 1 s", "at least a second");
        assert_eq!(phrase(59_600), "over the last 10 s", "the window, once full");
        assert_eq!(
            Window::Minute.phrase(Duration::from_millis(59_600)),
            "over the last 1 min"
        );
    }
}
