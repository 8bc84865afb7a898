//! One gateway's contribution to a pod's counts: replaced by each snapshot
//! or cumulative summary, carried over a gateway restart, and counted from
//! the last reset.

use std::collections::BTreeMap;

use super::Tally;
use super::methods::{self, ByMethod};
use crate::state::messages::PodTotals;
use greet_proto::latency_buckets;

/// One gateway's contribution to a pod's counts.
#[derive(Clone, Debug, Default)]
pub(super) struct Counts {
    // Written by a snapshot or summary that replaces a gateway's share.
    pub(super) total: u64,
    pub(super) errors: u64,
    /// `total` and `errors` at the last reset: hits are counted from there.
    base: u64,
    errors_base: u64,
    /// Hits and errors counted before the gateway last restarted (its
    /// counters then start again from zero).
    carried: u64,
    errors_carried: u64,
    /// The cumulative histogram of this gateway's last summary: the next
    /// one's difference is what happened between them. `None` after a
    /// snapshot, which carries none.
    pub(super) latency_buckets: Option<Vec<u64>>,
    /// The cumulative error codes of the same summary.
    codes_seen: Option<BTreeMap<i32, u64>>,
    /// Its (or the last snapshot's) cumulative requests by method.
    pub(super) methods_seen: Option<ByMethod>,
    /// The cumulative requests (and failures) of the last summary that
    /// began before a mode change and ended after it. `None` after a
    /// snapshot, which carries none.
    carried_over_seen: Option<Tally>,
}

impl Counts {
    pub(super) fn hits(&self) -> u64 {
        self.carried + self.total.saturating_sub(self.base)
    }

    pub(super) fn errors(&self) -> u64 {
        self.errors_carried + self.errors.saturating_sub(self.errors_base)
    }

    /// The gateway restarted: what it counted so far stays counted, and
    /// its new counters count from zero.
    pub(super) fn carry_over(&mut self) {
        self.carried = self.hits();
        self.errors_carried = self.errors();
        self.total = 0;
        self.errors = 0;
        self.base = 0;
        self.errors_base = 0;
        self.latency_buckets = None;
        self.codes_seen = None;
        self.methods_seen = None;
        self.carried_over_seen = None;
    }

    /// A snapshot replaced the counts: the next summary's histograms have no
    /// known baseline.
    pub(super) fn forget_histograms(&mut self) {
        self.latency_buckets = None;
        self.codes_seen = None;
        self.carried_over_seen = None;
    }

    /// Takes in another row's counts of the same gateway (two rows found to
    /// be one pod): the gateway's totals for both land here from now on, so
    /// their baselines add up too.
    pub(super) fn absorb(&mut self, other: Counts) {
        self.total += other.total;
        self.errors += other.errors;
        self.base += other.base;
        self.errors_base += other.errors_base;
        self.carried += other.carried;
        self.errors_carried += other.errors_carried;
        self.latency_buckets = match (self.latency_buckets.take(), other.latency_buckets) {
            (Some(mut mine), Some(theirs)) => {
                latency_buckets::merge_into(&mut mine, &theirs);
                Some(mine)
            }
            _ => None,
        };
        self.codes_seen = match (self.codes_seen.take(), other.codes_seen) {
            (Some(mut mine), Some(theirs)) => {
                for (code, n) in theirs {
                    *mine.entry(code).or_default() += n;
                }
                Some(mine)
            }
            _ => None,
        };
        self.carried_over_seen = match (self.carried_over_seen.take(), other.carried_over_seen) {
            (Some(mine), Some(theirs)) => Some(Tally {
                requests: mine.requests + theirs.requests,
                errors: mine.errors + theirs.errors,
            }),
            _ => None,
        };
        self.methods_seen = match (self.methods_seen.take(), other.methods_seen) {
            (Some(mut mine), Some(theirs)) => {
                methods::add(&mut mine, &theirs);
                Some(mine)
            }
            _ => None,
        };
    }

    pub(super) fn add(&mut self, failed: bool) {
        self.total += 1;
        if failed {
            self.errors += 1;
        }
    }

    pub(super) fn reset(&mut self) {
        self.base = self.total;
        self.errors_base = self.errors;
        self.carried = 0;
        self.errors_carried = 0;
    }

    /// What a summary's cumulative counts add by method; call before [`Self::advance`].
    pub(super) fn advance_methods(&mut self, totals: &PodTotals) -> ByMethod {
        let added = match &self.methods_seen {
            Some(before) => methods::difference(&totals.methods, before),
            None if self.total == 0 => totals.methods.clone(),
            None => ByMethod::new(),
        };
        self.methods_seen = Some(totals.methods.clone());
        added
    }

    /// What a summary's cumulative carried-over counts add (requests that
    /// began before a mode change and ended after it); call before
    /// [`Self::advance`].
    pub(super) fn advance_carried_over(&mut self, totals: &PodTotals) -> Tally {
        let now = totals.carried_over;
        let added = match self.carried_over_seen {
            Some(before) => Tally {
                requests: now.requests.saturating_sub(before.requests),
                errors: now.errors.saturating_sub(before.errors),
            },
            None if self.total == 0 => now,
            None => Tally::default(),
        };
        self.carried_over_seen = Some(now);
        added
    }

    /// Takes a summary's cumulative counts: how many requests they add, and
    /// those requests' latencies and error codes (none known after a snapshot).
    pub(super) fn advance(&mut self, totals: &PodTotals) -> (Tally, Vec<u64>, BTreeMap<i32, u64>) {
        let codes = match &self.codes_seen {
            Some(before) => code_difference(&totals.error_codes, before),
            None if self.total == 0 => totals.error_codes.clone(),
            None => BTreeMap::new(),
        };
        self.codes_seen = Some(totals.error_codes.clone());
        let added = Tally {
            requests: totals.requests.saturating_sub(self.total),
            errors: totals.errors.saturating_sub(self.errors),
        };
        let buckets = totals.latency_buckets.clone().unwrap_or_default();
        // Nothing counted before: every request in the histogram is new.
        let before = match &self.latency_buckets {
            None if self.total == 0 => Some(&[][..]),
            known => known.as_deref(),
        };
        let latencies = before.map_or_else(Vec::new, |before| latency_buckets::difference(&buckets, before));
        self.total = totals.requests;
        self.errors = totals.errors;
        self.latency_buckets = Some(buckets);
        (added, latencies, codes)
    }
}

/// `later - earlier` per code (a code that shrank, after a restart, counts 0).
fn code_difference(later: &BTreeMap<i32, u64>, earlier: &BTreeMap<i32, u64>) -> BTreeMap<i32, u64> {
    later
        .iter()
        .map(|(code, n)| (*code, n.saturating_sub(earlier.get(code).copied().unwrap_or(0))))
        .filter(|(_, n)| *n > 0)
        .collect()
}
