//! What the verdict and the methods panel need by time, beyond the
//! requests and failures `recent` keeps: failures by gRPC code and requests
//! by method, per pod, for the last [`KEPT`]; and the queries over a window
//! that starts at a change (a mode switch, a pod gone or back, the sticky
//! connection moved) rather than a fixed span ago.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::methods::{self, ByMethod};
use super::{KEPT, Mark, PodStats, Stats, Tally};
use greet_proto::Mode;
use greet_proto::latency_buckets::{self, merge_into};

/// Details closer together than this share one entry (as in `recent`).
const COALESCE: Duration = Duration::from_millis(50);

/// Failures by gRPC code.
type ByCode = BTreeMap<i32, u64>;

/// Failures by code and requests by method, per pod key ("" for requests
/// that named no pod), by when they were counted.
#[derive(Clone, Debug, Default)]
pub(super) struct Details {
    codes: BTreeMap<String, VecDeque<(Instant, ByCode)>>,
    methods: BTreeMap<String, VecDeque<(Instant, ByMethod)>>,
    /// Requests (and failures) that began before a mode change and ended
    /// after it, per pod key, by when they were counted.
    carried_over: BTreeMap<String, VecDeque<(Instant, Tally)>>,
    /// Changes of the pods serving, by when and by whole second.
    serving: VecDeque<(Instant, u64, ServingChange)>,
    /// The pods that last held a connection (names): where a sticky
    /// connection is, kept while a summary shows none.
    holders: BTreeSet<String>,
}

/// A change in which pods serve, which cuts what the verdict judges: the
/// time before it says nothing about the spread after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServingChange {
    /// Pods joined the rotation (a skip ended, listed again, ready again,
    /// new): the name when one did, and whether it was known before.
    Joined { name: Option<String>, back: bool },
    /// Pods left it without going away (skipped, not ready): the name when one did.
    Left(Option<String>),
    /// In sticky mode, the connection moved: the pods' names when one each.
    Moved { from: Option<String>, to: Option<String> },
}

/// The last change that cuts what a verdict judges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Mode(Mode),
    PodGone,
    Serving(ServingChange),
}

/// Which pods serve, taken before an event to compare with after it.
#[derive(Clone, Debug, Default)]
pub struct Serving {
    /// Keys of the pods in the rotation (as [`Stats::live_pods`]).
    rotation: BTreeSet<String>,
    /// Keys of every pod known.
    known: BTreeSet<String>,
}

/// The one name of `names`, if there is one.
fn single(names: &BTreeSet<String>) -> Option<String> {
    match names.len() {
        1 => names.first().cloned(),
        _ => None,
    }
}

impl Details {
    /// `n` failures with `code` on `pod` at `now`.
    pub(super) fn failed(&mut self, pod: &str, now: Instant, code: i32, n: u64) {
        if code == 0 || n == 0 {
            return;
        }
        let entries = self.codes.entry(pod.to_owned()).or_default();
        match entries.back_mut() {
            Some((at, codes)) if now.saturating_duration_since(*at) < COALESCE => {
                *codes.entry(code).or_default() += n;
            }
            _ => entries.push_back((now, BTreeMap::from([(code, n)]))),
        }
    }

    /// Failures by code a summary added for `pod`.
    pub(super) fn failed_by_code(&mut self, pod: &str, now: Instant, codes: &BTreeMap<i32, u64>) {
        for (code, n) in codes {
            self.failed(pod, now, *code, *n);
        }
    }

    /// Requests by method a summary added for `pod`.
    pub(super) fn called(&mut self, pod: &str, now: Instant, added: &ByMethod) {
        if added.is_empty() {
            return;
        }
        let entries = self.methods.entry(pod.to_owned()).or_default();
        match entries.back_mut() {
            Some((at, by)) if now.saturating_duration_since(*at) < COALESCE => methods::add(by, added),
            _ => entries.push_back((now, added.clone())),
        }
    }

    /// Requests a summary added for `pod` that began before a mode change.
    pub(super) fn carried_over(&mut self, pod: &str, now: Instant, added: Tally) {
        if added.requests == 0 && added.errors == 0 {
            return;
        }
        self.carried_over
            .entry(pod.to_owned())
            .or_default()
            .push_back((now, added));
    }

    /// Drops what is older than the longest window.
    pub(super) fn prune(&mut self, now: Instant) {
        let old = |at: &Instant| now.saturating_duration_since(*at) >= KEPT;
        for entries in self.codes.values_mut() {
            while entries.front().is_some_and(|(at, _)| old(at)) {
                entries.pop_front();
            }
        }
        for entries in self.methods.values_mut() {
            while entries.front().is_some_and(|(at, _)| old(at)) {
                entries.pop_front();
            }
        }
        for entries in self.carried_over.values_mut() {
            while entries.front().is_some_and(|(at, _)| old(at)) {
                entries.pop_front();
            }
        }
        self.codes.retain(|_, e| !e.is_empty());
        self.methods.retain(|_, e| !e.is_empty());
        self.carried_over.retain(|_, e| !e.is_empty());
        while self.serving.front().is_some_and(|(at, _, _)| old(at)) {
            self.serving.pop_front();
        }
    }

    pub(super) fn clear(&mut self) {
        self.codes.clear();
        self.methods.clear();
        self.carried_over.clear();
        self.serving.clear();
    }
}

/// Whether `at` lies in `[from, now]`.
fn between(at: Instant, from: Instant, now: Instant) -> bool {
    at >= from && at <= now
}

impl Stats {
    /// Where the verdict's window starts: `span` before `now`, or, since the
    /// reset (no span), the first instant counted (`origin`).
    pub fn window_start(&self, now: Instant, origin: Instant) -> Instant {
        match self.window.span() {
            Some(span) => now.checked_sub(span).map_or(origin, |start| start.max(origin)),
            None => origin,
        }
    }

    /// Requests and failures counted from `from` to `now`, unattributed
    /// ones included (as far back as [`KEPT`]).
    pub fn tally_since(&self, from: Instant, now: Instant) -> Tally {
        sum_since(&self.recent, from, now)
    }

    /// The last change that cuts what a verdict judges (a mode switch, a
    /// pod gone, a change of the pods serving; not a reconnect): its whole
    /// second from the origin, and what it was (the last [`KEPT`] only). A
    /// mode switch names a second best.
    pub fn last_change(&self) -> Option<(u64, Change)> {
        let marked = self.marks.iter().rev().find_map(|(second, mark)| match mark {
            Mark::Mode(mode) => Some((*second, Change::Mode(*mode))),
            Mark::PodGone => Some((*second, Change::PodGone)),
            Mark::Reconnected => None,
        });
        let serving = self
            .details
            .serving
            .back()
            .map(|(_, second, change)| (*second, Change::Serving(change.clone())));
        match (marked, serving) {
            (Some(m), Some(s)) if s.0 > m.0 => Some(s),
            (Some(m), _) => Some(m),
            (None, s) => s,
        }
    }

    /// Whether the mode changed after the whole second `second`.
    pub fn switched_after(&self, second: u64) -> bool {
        self.marks
            .iter()
            .any(|(s, mark)| *s > second && matches!(mark, Mark::Mode(_)))
    }

    /// Which pods serve now, to compare with after an event.
    pub fn serving(&self) -> Serving {
        Serving {
            rotation: self.live_pods().map(|p| p.name.clone()).collect(),
            known: self.pods.values().map(|p| p.name.clone()).collect(),
        }
    }

    /// Records, at `now` (whole second `second`), how the pods serving
    /// changed since `before`: pods joined or left the rotation (a pod gone
    /// is marked as such), or, when `sticky`, the connection moved.
    pub fn note_serving(&mut self, before: Serving, second: u64, now: Instant, sticky: bool) {
        let after = self.serving();
        let pod = |name: &str| self.pods.values().find(|p| p.name == name);
        // A pod first seen in a request, which nothing lists, joins nothing.
        let joined: BTreeSet<String> = after
            .rotation
            .difference(&before.rotation)
            .filter(|n| before.known.contains(*n) || pod(n).is_some_and(|p| p.ready == Some(true)))
            .cloned()
            .collect();
        let left: BTreeSet<String> = before
            .rotation
            .difference(&after.rotation)
            .filter(|n| pod(n).is_some_and(|p| !p.gone))
            .cloned()
            .collect();
        let mut changes = Vec::new();
        if !joined.is_empty() {
            let back = joined.iter().all(|n| before.known.contains(n));
            changes.push(ServingChange::Joined {
                name: single(&joined),
                back,
            });
        } else if !left.is_empty() {
            changes.push(ServingChange::Left(single(&left)));
        }
        let holders: BTreeSet<String> = self
            .pods
            .values()
            .filter(|p| !p.gone && p.connections() > 0)
            .map(|p| p.name.clone())
            .collect();
        if !holders.is_empty() {
            let was = std::mem::replace(&mut self.details.holders, holders);
            let now_held = &self.details.holders;
            if sticky && !was.is_empty() && was != *now_held {
                changes.push(ServingChange::Moved {
                    from: single(&was),
                    to: single(now_held),
                });
            }
        }
        for change in changes {
            self.details.serving.push_back((now, second, change));
        }
    }

    /// Failures by code from `from` to `now`, per pod key ("" for those
    /// that named no pod).
    pub fn codes_since(&self, from: Instant, now: Instant) -> BTreeMap<&str, BTreeMap<i32, u64>> {
        let mut by_pod: BTreeMap<&str, BTreeMap<i32, u64>> = BTreeMap::new();
        for (pod, entries) in &self.details.codes {
            for (_, codes) in entries.iter().filter(|(at, _)| between(*at, from, now)) {
                let into = by_pod.entry(pod.as_str()).or_default();
                for (code, n) in codes {
                    *into.entry(*code).or_default() += n;
                }
            }
        }
        by_pod
    }

    /// When the newest failure with a code `counts` accepts was counted.
    pub fn last_failure(&self, counts: impl Fn(i32) -> bool) -> Option<Instant> {
        self.details
            .codes
            .values()
            .filter_map(|entries| {
                entries
                    .iter()
                    .rev()
                    .find(|(_, codes)| codes.keys().any(|c| counts(*c)))
                    .map(|(at, _)| *at)
            })
            .max()
    }

    /// When the newest failure (of any code, or none known) was counted.
    pub fn last_error(&self) -> Option<Instant> {
        self.recent.iter().rev().find(|(_, t)| t.errors > 0).map(|(at, _)| *at)
    }

    /// Requests (and failures) counted from `from` to `now` that began
    /// before a mode change, per pod key ("" for those that named no pod):
    /// the old mode's, not the new one's.
    pub fn carried_over_since(&self, from: Instant, now: Instant) -> BTreeMap<String, Tally> {
        self.details
            .carried_over
            .iter()
            .map(|(pod, entries)| (pod.clone(), sum_since(entries, from, now)))
            .filter(|(_, t)| t.requests > 0 || t.errors > 0)
            .collect()
    }

    /// Requests by pod key and method from `from` to `now`.
    pub fn methods_since(&self, from: Instant, now: Instant) -> BTreeMap<&str, ByMethod> {
        let mut by_pod: BTreeMap<&str, ByMethod> = BTreeMap::new();
        for (pod, entries) in &self.details.methods {
            for (_, by) in entries.iter().filter(|(at, _)| between(*at, from, now)) {
                methods::add(by_pod.entry(pod.as_str()).or_default(), by);
            }
        }
        by_pod.retain(|_, by| !by.is_empty());
        by_pod
    }
}

impl PodStats {
    /// This pod's requests and failures from `from` to `now`.
    pub fn tally_since(&self, from: Instant, now: Instant) -> Tally {
        sum_since(&self.recent, from, now)
    }

    /// Latency percentile (0..=100) over the whole seconds from
    /// `first_second` (since the origin) on, in milliseconds.
    pub fn latency_since_ms(&self, first_second: u64, percentile: f64) -> Option<f64> {
        let mut merged = Vec::new();
        for (_, counts) in self.latency_window.iter().filter(|(s, _)| *s >= first_second) {
            merge_into(&mut merged, counts);
        }
        latency_buckets::percentile_us(&merged, percentile).map(|us| us / 1000.0)
    }
}

fn sum_since(recent: &VecDeque<(Instant, Tally)>, from: Instant, now: Instant) -> Tally {
    recent
        .iter()
        .filter(|(at, _)| between(*at, from, now))
        .fold(Tally::default(), |sum, (_, t)| Tally {
            requests: sum.requests + t.requests,
            errors: sum.errors + t.errors,
        })
}

#[cfg(test)]
mod tests;
