//! One pod's counters across scrapes: what each series counted since the
//! last scrape, folded into cumulative [`Totals`].
//!
//! A series' identity is its name and every label (method, code, `le`, and
//! whatever else tells two series apart, such as OTel's scope labels). Resets
//! work as Prometheus' `rate()`: a value that went down means the series
//! started again, so the new value is what it counted (never negative). The
//! first scrape is the baseline: a pod's history before greet-top looked
//! counts nothing, so it never shows up as one burst. A series that appears
//! later counts from zero (py-grpc-prometheus creates a code's series on its
//! first call); one that vanishes is forgotten (state stays bounded by the
//! last scrape).

use std::collections::HashMap;

use greet_proto::latency_buckets::BUCKETS;
use greet_proto::limits::MAX_METHODS;

use crate::families::Observed;
use crate::histogram::spread_into;
use crate::reading::Totals;

/// Where calls of methods beyond the first MAX_METHODS are counted (the
/// gateway's spelling).
pub(crate) const OTHER_METHODS: &str = "(other methods)";

/// A pod's counters as of its last scrape.
#[derive(Debug, Default)]
pub(crate) struct PodCounters {
    /// Each series' last value; `None` before the baseline.
    last: Option<HashMap<u64, f64>>,
    totals: Totals,
}

impl PodCounters {
    /// Counters whose first scrape is the baseline.
    pub(crate) fn new() -> Self {
        PodCounters::default()
    }

    /// Counters that count everything a pod ever reported (for one-shot
    /// reads: no baseline).
    pub(crate) fn lifetime() -> Self {
        PodCounters {
            last: Some(HashMap::new()),
            totals: Totals::default(),
        }
    }

    pub(crate) fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Folds one scrape in.
    pub(crate) fn apply(&mut self, observed: &Observed) {
        let baseline = self.last.is_none();
        let last = self.last.take().unwrap_or_default();
        let mut now = HashMap::with_capacity(observed.calls.len() + observed.buckets.len());
        let totals = &mut self.totals;
        totals.in_flight = observed.in_flight;
        for calls in &observed.calls {
            now.entry(calls.id).or_insert(calls.value);
            let key = method_slot(&mut totals.methods, &calls.method);
            let counted = if baseline {
                0
            } else {
                to_count(increase(last.get(&calls.id).copied(), calls.value))
            };
            let failed = calls.code != 0;
            let entry = totals.methods.entry(key).or_default();
            entry.0 = entry.0.saturating_add(counted);
            if counted == 0 {
                continue;
            }
            totals.requests = totals.requests.saturating_add(counted);
            if failed {
                entry.1 = entry.1.saturating_add(counted);
                totals.errors = totals.errors.saturating_add(counted);
                let by_code = totals.error_codes.entry(calls.code).or_default();
                *by_code = by_code.saturating_add(counted);
            }
        }
        if observed.has_histogram {
            let latency = totals.latency_buckets.get_or_insert_with(|| vec![0; BUCKETS]);
            let mut buckets: Vec<&crate::families::Bucket> = observed.buckets.iter().collect();
            buckets.sort_by(|a, b| a.histogram.cmp(&b.histogram).then(a.le_us.total_cmp(&b.le_us)));
            for histogram in buckets.chunk_by(|a, b| a.histogram == b.histogram) {
                let mut below = 0;
                let mut calls = Vec::with_capacity(histogram.len());
                for bucket in histogram {
                    now.entry(bucket.id).or_insert(bucket.value);
                    let cumulative = if baseline {
                        0
                    } else {
                        to_count(increase(last.get(&bucket.id).copied(), bucket.value))
                    };
                    // Cumulative buckets: this bucket's own calls are what it
                    // counted beyond the one below (never negative, even
                    // when one bucket reset and another did not).
                    calls.push((bucket.le_us, cumulative.saturating_sub(below)));
                    below = below.max(cumulative);
                }
                spread_into(latency, &calls);
            }
        }
        self.last = Some(now);
    }
}

/// What a counter counted between two readings, as `rate()` sees it: the
/// difference, or after a reset (the value went down) the new value.
fn increase(before: Option<f64>, now: f64) -> f64 {
    match before {
        Some(before) if now >= before => now - before,
        _ => now,
    }
}

/// A non-negative, finite count as an integer (counters of calls are whole
/// numbers; anything else counts 0).
pub(crate) fn to_count(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        // `as` saturates at u64::MAX.
        value.round() as u64
    } else {
        0
    }
}

/// The key `method`'s calls are counted under: its own while fewer than
/// MAX_METHODS are named, else [`OTHER_METHODS`]. A method keeps the slot it
/// first got.
fn method_slot(methods: &mut std::collections::BTreeMap<String, (u64, u64)>, method: &str) -> String {
    if methods.contains_key(method) {
        return method.to_owned();
    }
    let named = methods.len() - usize::from(methods.contains_key(OTHER_METHODS));
    if named < MAX_METHODS && method != OTHER_METHODS {
        method.to_owned()
    } else {
        OTHER_METHODS.to_owned()
    }
}

#[cfg(test)]
mod tests;
