//! The gateway's latency histogram: the fixed buckets of
//! proto/latency_buckets.rs, counted without a lock.

use std::sync::atomic::{AtomicU64, Ordering};

use greet_proto::latency_buckets::{BUCKETS, bucket_of};

/// A histogram the request path updates without a lock.
pub(crate) struct Histogram([AtomicU64; BUCKETS]);

impl Default for Histogram {
    fn default() -> Self {
        Histogram(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl Histogram {
    pub(crate) fn record(&self, latency_us: u64) {
        self.0[bucket_of(latency_us)].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts, trailing empty buckets left out.
    pub(crate) fn counts(&self) -> Vec<u64> {
        let mut counts: Vec<u64> = self.0.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        while counts.last() == Some(&0) {
            counts.pop();
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use greet_proto::latency_buckets::merge_into;

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
