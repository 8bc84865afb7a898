//! The order of the pods' rows: by a chosen key (`s` cycles it), gone pods
//! last. Values are compared by bucket (a quarter of a power of two apart,
//! so 30 and 31 req/s are equal and 30 and 60 are not), and equal rows keep
//! the order they had: rows never swap between frames over noise.

use std::cmp::Reverse;
use std::collections::HashSet;
use std::time::Instant;

use super::stats::{PodStats, Stats};
use greet_proto::latency_buckets::bucket_of;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Requests in the window, most first.
    #[default]
    Rate,
    Name,
    /// Errors in the window, most first.
    Errors,
    /// p99 latency in the window, slowest first.
    Latency,
}

impl SortKey {
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Rate => SortKey::Name,
            SortKey::Name => SortKey::Errors,
            SortKey::Errors => SortKey::Latency,
            SortKey::Latency => SortKey::Rate,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Rate => "rate",
            SortKey::Name => "name",
            SortKey::Errors => "errors",
            SortKey::Latency => "p99",
        }
    }

    /// Sorts before: gone pods last, then the larger bucket of the key.
    fn rank(self, pod: &PodStats, at: Instant) -> (bool, Reverse<usize>) {
        let value = match self {
            SortKey::Rate => pod.in_window(at),
            SortKey::Name => 0,
            SortKey::Errors => pod.errors_in_window(at),
            SortKey::Latency => pod.latency_ms(99.0).map_or(0, |ms| (ms * 1000.0) as u64 + 1),
        };
        (pod.gone, Reverse(bucket(value)))
    }
}

/// 0 for nothing, else the latency histogram's bucket: values within about
/// a quarter of each other share one.
fn bucket(value: u64) -> usize {
    if value == 0 { 0 } else { bucket_of(value) + 1 }
}

/// The pods of `stats` in row order: `previous` (the order shown so far)
/// re-sorted by `key`, new pods placed by name among their equals.
pub(crate) fn ordered(stats: &Stats, at: Instant, key: SortKey, previous: &[String]) -> Vec<String> {
    let known: HashSet<&str> = previous.iter().map(String::as_str).collect();
    let mut names: Vec<&str> = previous
        .iter()
        .map(String::as_str)
        .filter(|name| stats.pods.contains_key(*name))
        .collect();
    // New pods after the known ones, by name (the map's order).
    names.extend(stats.pods.keys().map(String::as_str).filter(|n| !known.contains(n)));
    if key == SortKey::Name {
        names.sort_unstable();
    }
    // Stable: equal ranks keep the order above.
    names.sort_by_key(|name| key.rank(&stats.pods[*name], at));
    names.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests;
