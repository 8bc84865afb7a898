//! A pod's recent requests, coalesced by time: what its rate windows sum.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::super::{KEPT, Tally};

/// Requests closer together than this share one entry of a `recent`
/// window: at thousands of raw events a second a minute would otherwise
/// keep (and every frame sum) hundreds of thousands of entries.
const COALESCE: Duration = Duration::from_millis(50);

/// Adds `tally` counted at `now` to `recent`, into the newest entry when it
/// is less than [`COALESCE`] older (a window edge moves by at most that).
pub(in crate::state) fn push_recent(recent: &mut VecDeque<(Instant, Tally)>, now: Instant, tally: Tally) {
    match recent.back_mut() {
        Some((at, sum)) if now.saturating_duration_since(*at) < COALESCE => *sum = sum.add(tally),
        _ => recent.push_back((now, tally)),
    }
}

/// What `recent` counted in the `span` ending at `now`.
pub(in crate::state) fn in_window(recent: &VecDeque<(Instant, Tally)>, now: Instant, span: Duration) -> Tally {
    recent
        .iter()
        .filter(|(t, _)| now.saturating_duration_since(*t) < span)
        .fold(Tally::default(), |sum, (_, tally)| sum.add(*tally))
}

/// Drops the entries older than the longest window.
pub(in crate::state) fn prune_window(recent: &mut VecDeque<(Instant, Tally)>, now: Instant) {
    while recent
        .front()
        .is_some_and(|(t, _)| now.saturating_duration_since(*t) >= KEPT)
    {
        recent.pop_front();
    }
}
