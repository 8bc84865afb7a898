//! The latency histogram's fixed log-linear buckets (documented in
//! proto/observe.proto): four per power of two, so percentiles are within
//! 25 %, and the same everywhere, so histograms merge by adding counts.

use std::sync::atomic::{AtomicU64, Ordering};

/// Buckets in every histogram; the last one is open-ended.
pub const BUCKETS: usize = 100;

/// The bucket counting a latency of `latency_us` microseconds.
pub fn bucket_of(latency_us: u64) -> usize {
    if latency_us < 4 {
        return latency_us as usize;
    }
    // 2^e <= latency < 2^(e+1), e >= 2; the two bits below the top one pick
    // the quarter of that octave.
    let e = 63 - latency_us.leading_zeros();
    let quarter = ((latency_us >> (e - 2)) & 3) as usize;
    (4 * (e as usize - 1) + quarter).min(BUCKETS - 1)
}

/// The smallest latency, in microseconds, that bucket `b` counts.
pub fn lower_bound_us(b: usize) -> u64 {
    if b < 4 {
        return b as u64;
    }
    let e = b / 4 + 1;
    ((4 + b % 4) as u64) << (e - 2)
}

/// A histogram the request path updates without a lock.
pub struct Histogram([AtomicU64; BUCKETS]);

impl Default for Histogram {
    fn default() -> Self {
        Histogram(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl Histogram {
    pub fn record(&self, latency_us: u64) {
        self.0[bucket_of(latency_us)].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts, trailing empty buckets left out.
    pub fn counts(&self) -> Vec<u64> {
        let mut counts: Vec<u64> = self.0.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        while counts.last() == Some(&0) {
            counts.pop();
        }
        counts
    }
}

/// Adds `from` into `into`, bucket by bucket (how histograms merge).
pub fn merge_into(into: &mut Vec<u64>, from: &[u64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (total, count) in into.iter_mut().zip(from) {
        *total += count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_below_8_us_then_four_per_power_of_two() {
        for us in 0..8 {
            assert_eq!(bucket_of(us), us as usize);
        }
        let pairs: Vec<(u64, usize)> = [8, 9, 10, 15, 16, 19, 20, 23, 24, 31, 32, 39, 40, 1_000, 1_023, 1_024]
            .iter()
            .map(|&us| (us, bucket_of(us)))
            .collect();
        assert_eq!(
            pairs,
            [
                (8, 8),
                (9, 8),
                (10, 9),
                (15, 11),
                (16, 12),
                (19, 12),
                (20, 13),
                (23, 13),
                (24, 14),
                (31, 15),
                (32, 16),
                (39, 16),
                (40, 17),
                (1_000, 35),
                (1_023, 35),
                (1_024, 36)
            ]
        );
        assert_eq!(lower_bound_us(35), 896);
        assert_eq!(lower_bound_us(36), 1_024);
    }

    #[test]
    fn every_bucket_starts_where_the_previous_one_ends() {
        for b in 1..BUCKETS {
            let lower = lower_bound_us(b);
            assert_eq!(bucket_of(lower), b, "bucket {b} starts at {lower}");
            assert_eq!(bucket_of(lower - 1), b - 1, "bucket {b} starts at {lower}");
            // Never wider than a quarter of where it starts (from 4 µs on).
            if b >= 4 && b + 1 < BUCKETS {
                assert!(lower_bound_us(b + 1) - lower <= lower / 4, "bucket {b}");
            }
        }
        assert_eq!(lower_bound_us(BUCKETS - 1), 58_720_256);
        assert_eq!(bucket_of(58_720_255), BUCKETS - 2);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn counts_trim_trailing_empty_buckets_and_merge_by_adding() {
        let h = Histogram::default();
        assert_eq!(h.counts(), Vec::<u64>::new());
        for us in [0, 2, 2, 5, 17] {
            h.record(us);
        }
        assert_eq!(h.counts(), [1, 0, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]);
        let mut merged = vec![1, 1];
        merge_into(&mut merged, &h.counts());
        assert_eq!(merged, [2, 1, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]);
        merge_into(&mut merged, &[0, 3]);
        assert_eq!(merged[..3], [2, 4, 2]);
        assert_eq!(merged.len(), 13);
    }
}
